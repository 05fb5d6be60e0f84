//! The MD5 of an upload's payload, computed while the transport streams it (the file is
//! read once), for a task that needs the digest after sending (the object-storage relay
//! hands it to `upload_by_url`).
//!
//! A task puts a [`PayloadDigest`] into the [`UploadBody`](crate::body::UploadBody) it sends;
//! the transport's [`PayloadMeter`](super::PayloadMeter) (through
//! [`PayloadMeter::for_attempt`](super::PayloadMeter::for_attempt)) restarts it for every
//! attempt and feeds it every payload byte it counts, so no transport has code of its own
//! for it. The task reads it with [`PayloadDigest::finish`] once the request succeeded.

use std::sync::{Arc, Mutex, PoisonError};

/// A shared MD5 of the payload bytes of the current attempt, fed by the upload frames as the
/// transport streams the payload (the file is read once).
/// Clones share the same digest. Without the `md5` feature it digests nothing and
/// [`PayloadDigest::finish`] is always `None`.
#[derive(Clone, Default)]
pub struct PayloadDigest(Arc<Mutex<Digesting>>);

#[derive(Default)]
struct Digesting {
    #[cfg(feature = "md5")]
    md5: crate::md5sum::Md5Hex,
    bytes: u64,
}

impl PayloadDigest {
    /// A digest of nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut Digesting) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Starts over: a new attempt streams the payload from its first byte.
    pub(crate) fn restart(&self) {
        self.with(|d| *d = Digesting::default());
    }

    /// Feeds the next payload bytes.
    pub(crate) fn update(&self, chunk: &[u8]) {
        self.with(|d| {
            #[cfg(feature = "md5")]
            d.md5.update(chunk);
            d.bytes += chunk.len() as u64;
        });
    }

    /// The payload bytes digested in the current attempt.
    #[cfg(feature = "s3-relay")]
    pub(crate) fn bytes(&self) -> u64 {
        self.with(|d| d.bytes)
    }

    /// The MD5 as 32 lowercase hex digits when exactly `len` payload bytes were digested in
    /// the last attempt; `None` otherwise (the attempt stopped early, or no `md5` feature).
    pub fn finish(&self, len: u64) -> Option<String> {
        self.with(|d| {
            #[cfg(feature = "md5")]
            if d.bytes == len {
                return Some(d.md5.clone().finish());
            }
            let _ = (d, len);
            None
        })
    }
}

impl std::fmt::Debug for PayloadDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bytes = self.with(|d| d.bytes);
        f.debug_struct("PayloadDigest")
            .field("bytes", &bytes)
            .finish()
    }
}

/// Two digests are equal when they are the same shared digest.
impl PartialEq for PayloadDigest {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for PayloadDigest {}

#[cfg(all(test, feature = "md5"))]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_of_the_last_attempt_and_only_when_it_was_whole() {
        let digest = PayloadDigest::new();
        digest.update(b"abc");
        assert_eq!(
            digest.finish(3).as_deref(),
            Some("900150983cd24fb0d6963f7d28e17f72")
        );
        assert_eq!(digest.finish(4), None, "short of the announced length");
        digest.restart();
        digest.update(b"a");
        digest.update(b"bc");
        assert_eq!(
            digest.finish(3).as_deref(),
            Some("900150983cd24fb0d6963f7d28e17f72"),
            "a retry starts over"
        );
        assert_eq!(digest.clone(), digest);
        assert_ne!(PayloadDigest::new(), digest);
    }

    /// A digest shows how many bytes it has taken, never the digest state.
    #[test]
    fn a_digest_debugs_as_its_byte_count() {
        let digest = PayloadDigest::new();
        digest.update(b"abcd");
        assert_eq!(format!("{digest:?}"), "PayloadDigest { bytes: 4 }");
    }
}
