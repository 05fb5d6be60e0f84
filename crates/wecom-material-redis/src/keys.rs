//! The Redis keys of one app: three keys under one hash tag that is a digest of the app's
//! identity, never the secret or a part of it.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};
use wecom_material_core::ops::gettoken::GetToken;
use wecom_material_core::{BaseUrl, ClientSettings};

/// The prefix of every key this crate writes.
pub const KEY_PREFIX: &str = "wecom-material";

/// The keys of one app (one base URL + corp id + secret).
///
/// The hash tag is the first 128 bits of SHA-256 over a version label, the base URL, the corp
/// id and the secret (each length-prefixed), in hex: the same app on every host maps to the
/// same keys, two apps never share them, and the keys reveal nothing of the secret. All three
/// keys share the tag, so in a Redis Cluster they live in one slot and one script can touch
/// them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppKeys {
    tag: String,
}

impl AppKeys {
    /// The keys for the app `credentials` at `base`.
    pub fn new(base: &BaseUrl, credentials: &GetToken) -> Self {
        Self::from_parts(
            base.as_str(),
            &credentials.corp_id,
            credentials.secret.expose(),
        )
    }

    /// The keys for the app a client is configured for (e.g. `builder.settings()` of a
    /// client builder, before [`token_store`](wecom_material_core::ClientBuilder::token_store)).
    pub fn for_client(settings: &ClientSettings) -> Self {
        Self::from_parts(
            settings.base.as_str(),
            &settings.corp_id,
            settings.secret.expose(),
        )
    }

    /// The keys for a base URL, corp id and secret given as text.
    pub fn from_parts(base_url: &str, corp_id: &str, secret: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"wecom-material shared token v1");
        for part in [base_url, corp_id, secret] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        let digest = hasher.finalize();
        let mut tag = String::with_capacity(32);
        for byte in &digest[..16] {
            let _ = write!(tag, "{byte:02x}");
        }
        Self { tag }
    }

    /// The hash tag (32 hex digits).
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The token record: a hash of `token`, `gen`, `exp` and `ref` (expiry and refresh-ahead
    /// point, in milliseconds of the server's clock). It expires with the token.
    pub fn token(&self) -> String {
        format!("{KEY_PREFIX}:{{{}}}:token", self.tag)
    }

    /// The refresh lock: `r:<fence>` while a refresh is in flight, `c:<fence>` during the
    /// cool-down after a failed one; its TTL is the lease (or the cool-down).
    pub fn lock(&self) -> String {
        format!("{KEY_PREFIX}:{{{}}}:lock", self.tag)
    }

    /// The fencing counter: the newest fencing number handed out.
    pub fn fence(&self) -> String {
        format!("{KEY_PREFIX}:{{{}}}:fence", self.tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_one_hash_tag_and_hold_no_secret() {
        let k = AppKeys::from_parts("https://qyapi.weixin.qq.com", "ww1", "s3cr3t-value");
        assert_eq!(k.tag().len(), 32);
        assert!(k.tag().bytes().all(|b| b.is_ascii_hexdigit()));
        for key in [k.token(), k.lock(), k.fence()] {
            assert!(
                key.starts_with(&format!("wecom-material:{{{}}}:", k.tag())),
                "{key}"
            );
            assert!(!key.contains("s3cr3t") && !key.contains("ww1"), "{key}");
        }
        // Deterministic, and every part of the identity counts.
        assert_eq!(
            k,
            AppKeys::from_parts("https://qyapi.weixin.qq.com", "ww1", "s3cr3t-value")
        );
        assert_ne!(
            k,
            AppKeys::from_parts("https://qyapi.weixin.qq.com", "ww1", "other")
        );
        assert_ne!(
            k,
            AppKeys::from_parts("https://qyapi.weixin.qq.com", "ww2", "s3cr3t-value")
        );
        assert_ne!(
            k,
            AppKeys::from_parts("http://127.0.0.1:1", "ww1", "s3cr3t-value")
        );
        // Length prefixes: moving a character between parts changes the tag.
        assert_ne!(
            AppKeys::from_parts("a", "bc", "d"),
            AppKeys::from_parts("ab", "c", "d")
        );
    }
}
