//! A local file up to 200 MB into WeCom through S3-compatible object storage (feature
//! `s3-relay`).
//!
//! WeCom takes at most 20 MB in a direct upload (10 MB for video); bigger files (≤ 200 MB) only
//! by URL, fetched by WeCom with Range requests. [`RelayUploadTask`] is that whole operation as
//! one [`Task`](crate::task::Task): it PUTs the file to `s3://BUCKET/PREFIX/<unique name>`
//! (streamed by the transport in constant memory, its MD5 computed in the same pass), presigns
//! a GET URL valid long enough for the job, asks `upload_by_url` with that URL and MD5, waits
//! for the job (polls and callback events, as a [`JobWaitTask`](crate::task::JobWaitTask)
//! does), and DELETEs the object at the end — after success, failure and cancel — unless asked
//! to keep it. Signing is rusty-s3's (SigV4 presigned URLs, sans-IO); the wall clock for the
//! signatures and the entropy of the object name are inputs.
//!
//! ```text
//!   Check: DELETE of the fresh key (an access check: 403 → error naming the bucket, nothing
//!          sent to WeCom, no byte of the file read)
//!   Put:   PUT of the file (retried like a call: transport failures and 5xx)
//!          ──▶ the digest of exactly len bytes → presign GET
//!   Call:  upload_by_url (a CallTask, forwarded)  ──▶ job id
//!   Wait:  the job (a JobWaitTask, forwarded)     ──▶ Finished / Failed / still Processing
//!   Clean: DELETE (unless keep, or no PUT may have stored anything) ──▶ Done
//!   any failure or cancel before Clean ──▶ Clean ──▶ Done(that failure)
//! ```
//!
//! The transports run it like any task: every request is an
//! [`Exchange::Send`](crate::task::Exchange::Send); the PUT's body is a
//! [`Body::Upload`](crate::body::Body::Upload) whose external payload is the file.

mod delete_object;
pub mod presign;
mod put_object;
mod relay_task;
mod s3_error;

pub use relay_task::RelayUploadTask;

use std::fmt;
use std::time::Duration;

use crate::error::Invalid;
use crate::job_wait::PollPolicy;
use crate::media_type::{JobId, MediaId};

/// Credentials for the bucket (an access key, its secret, and a session token for temporary
/// credentials). `Debug` shows the access key id only.
#[derive(Clone)]
pub struct S3Credentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

impl S3Credentials {
    /// An access key and its secret.
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
        }
    }

    /// Adds the session token of temporary credentials (STS).
    pub fn with_session_token(mut self, token: impl Into<String>) -> Self {
        self.session_token = Some(token.into());
        self
    }

    /// The access key id (not a secret: it names the key).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }
}

impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let token = self.session_token.as_ref().map(|_| "***");
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"***")
            .field("session_token", &token)
            .finish()
    }
}

/// How object URLs name the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddressingStyle {
    /// Path style for an IP address or `localhost` endpoint (a virtual host cannot be an
    /// IP), virtual-hosted style otherwise.
    #[default]
    Auto,
    /// `https://ENDPOINT/BUCKET/KEY` (MinIO, most self-hosted servers).
    Path,
    /// `https://BUCKET.ENDPOINT/KEY` (AWS S3, Tencent COS, Alibaba OSS).
    VirtualHost,
}

/// Where a relayed file goes: an endpoint, a bucket, a key prefix, a region and the
/// credentials. `Debug` never shows the secret key or the session token.
#[derive(Clone)]
pub struct BucketRelay {
    bucket: rusty_s3::Bucket,
    credentials: rusty_s3::Credentials,
    prefix: String,
    endpoint: String,
    path_style: bool,
}

impl BucketRelay {
    /// A relay into `bucket` at `endpoint` (`https://…`, or `http://…` for a test server),
    /// signed for `region`.
    pub fn new(
        endpoint: &str,
        bucket: &str,
        region: &str,
        style: AddressingStyle,
        credentials: S3Credentials,
    ) -> Result<Self, Invalid> {
        let bad = |reason: String| Invalid::BadRelay { reason };
        let url = url::Url::parse(endpoint)
            .map_err(|e| bad(format!("endpoint {endpoint:?} is not a URL: {e}")))?;
        if bucket.is_empty() || bucket.contains('/') {
            return Err(bad(format!("bucket name {bucket:?} is empty or holds '/'")));
        }
        if region.is_empty() {
            return Err(bad("the region is empty".into()));
        }
        let path_style = match style {
            AddressingStyle::Path => true,
            AddressingStyle::VirtualHost => false,
            AddressingStyle::Auto => matches!(
                url.host(),
                Some(url::Host::Ipv4(_) | url::Host::Ipv6(_) | url::Host::Domain("localhost"))
            ),
        };
        let style = if path_style {
            rusty_s3::UrlStyle::Path
        } else {
            rusty_s3::UrlStyle::VirtualHost
        };
        let endpoint_text = url.as_str().trim_end_matches('/').to_owned();
        let bucket = rusty_s3::Bucket::new(url, style, bucket.to_owned(), region.to_owned())
            .map_err(|e| {
                bad(format!(
                    "endpoint {endpoint:?} with bucket {bucket:?}: {e:?}"
                ))
            })?;
        let credentials = match credentials.session_token {
            Some(token) => rusty_s3::Credentials::new_with_token(
                credentials.access_key_id,
                credentials.secret_access_key,
                token,
            ),
            None => {
                rusty_s3::Credentials::new(credentials.access_key_id, credentials.secret_access_key)
            }
        };
        Ok(Self {
            bucket,
            credentials,
            prefix: String::new(),
            endpoint: endpoint_text,
            path_style,
        })
    }

    /// A relay for `s3://BUCKET/PREFIX/`: the bucket and key prefix from the URL, the
    /// endpoint given or else AWS S3's for the region (`https://s3.REGION.amazonaws.com`).
    pub fn from_s3_url(
        s3_url: &str,
        endpoint: Option<&str>,
        region: &str,
        style: AddressingStyle,
        credentials: S3Credentials,
    ) -> Result<Self, Invalid> {
        let (bucket, prefix) = parse_s3_url(s3_url)?;
        let aws = Self::aws_endpoint(region);
        Self::new(endpoint.unwrap_or(&aws), bucket, region, style, credentials)?.with_prefix(prefix)
    }

    /// AWS S3's endpoint for `region`.
    pub fn aws_endpoint(region: &str) -> String {
        format!("https://s3.{region}.amazonaws.com")
    }

    /// Puts the objects under `prefix` (`relay/` → `relay/<unique name>`; a `/` is not added).
    pub fn with_prefix(mut self, prefix: &str) -> Result<Self, Invalid> {
        if prefix.len() > 512 || prefix.starts_with('/') || prefix.chars().any(char::is_control) {
            return Err(Invalid::BadRelay {
                reason: format!(
                    "key prefix {prefix:?} must not start with '/', hold control characters \
                     or be longer than 512 bytes"
                ),
            });
        }
        self.prefix = prefix.to_owned();
        Ok(self)
    }

    /// The bucket name.
    pub fn bucket(&self) -> &str {
        self.bucket.name()
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The region the requests are signed for.
    pub fn region(&self) -> &str {
        self.bucket.region()
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Whether object URLs are path-style.
    pub fn is_path_style(&self) -> bool {
        self.path_style
    }

    /// The key a relayed `filename` gets: the prefix, 16 hex digits of `entropy` (unique per
    /// upload), then the filename's ASCII letters, digits and `. - _` (others become `_`).
    pub fn object_key(&self, filename: &str, entropy: u64) -> String {
        let safe: String = filename
            .chars()
            .rev()
            .take(100)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_' => c,
                _ => '_',
            })
            .collect();
        format!("{}{entropy:016x}-{safe}", self.prefix)
    }
}

impl fmt::Debug for BucketRelay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let token = self.credentials.token().map(|_| "***");
        f.debug_struct("BucketRelay")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket())
            .field("prefix", &self.prefix)
            .field("region", &self.region())
            .field("path_style", &self.is_path_style())
            .field("access_key_id", &self.credentials.key())
            .field("secret_access_key", &"***")
            .field("session_token", &token)
            .finish()
    }
}

/// `s3://BUCKET/PREFIX` → `(BUCKET, PREFIX)` (the prefix may be empty).
pub fn parse_s3_url(s3_url: &str) -> Result<(&str, &str), Invalid> {
    let bad = || Invalid::BadRelay {
        reason: format!("{s3_url:?} is not s3://BUCKET/ or s3://BUCKET/PREFIX/"),
    };
    let rest = s3_url.strip_prefix("s3://").ok_or_else(bad)?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(bad());
    }
    Ok((bucket, prefix))
}

/// How a relayed upload runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayOptions {
    /// How long the presigned GET URL WeCom fetches stays valid. Default 1 hour; at most
    /// [`presign::MAX_EXPIRY`] (7 days).
    pub url_expiry: Duration,
    /// How long to wait for the job; default: as long as the URL is valid.
    pub job_timeout: Option<Duration>,
    /// Keep the object in the bucket afterwards (it is deleted by default, whatever the
    /// outcome).
    pub keep_object: bool,
    /// How the job is polled; default: the client's poll policy. A caller who waits
    /// interactively may poll more often (the job cannot be seen done before the next poll).
    pub poll_policy: Option<PollPolicy>,
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            url_expiry: Duration::from_secs(3600),
            job_timeout: None,
            keep_object: false,
            poll_policy: None,
        }
    }
}

impl RelayOptions {
    /// Sets how long the GET URL is valid.
    pub fn url_expiry(mut self, expiry: Duration) -> Self {
        self.url_expiry = expiry;
        self
    }

    /// Sets how long to wait for the job.
    pub fn job_timeout(mut self, timeout: Duration) -> Self {
        self.job_timeout = Some(timeout);
        self
    }

    /// Keeps the object in the bucket.
    pub fn keep_object(mut self, keep: bool) -> Self {
        self.keep_object = keep;
        self
    }

    /// Polls the job with `policy`.
    pub fn poll_policy(mut self, policy: PollPolicy) -> Self {
        self.poll_policy = Some(policy);
        self
    }
}

/// What became of the relayed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectFate {
    /// Deleted (or it was never written).
    Deleted,
    /// Kept, as asked.
    Kept,
    /// The clean-up failed: the object is still in the bucket.
    NotDeleted(String),
}

/// A relayed upload that WeCom finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayedUpload {
    /// The media id (valid 3 days).
    pub media_id: MediaId,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds when the media id expires.
    pub expires_at: u64,
    /// The async job that fetched the file.
    pub job_id: JobId,
    /// The file's MD5, 32 lowercase hex digits.
    pub md5: String,
    /// The file's length.
    pub len: u64,
    /// Where the object was: `s3://BUCKET/KEY`.
    pub object: String,
    /// Whether it is still there.
    pub fate: ObjectFate,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A relay keeps the bucket, region and prefix it was given; a prefix is at most 512
    /// bytes, never starts with `/` and holds no control character.
    #[test]
    fn a_relay_keeps_its_settings_and_refuses_a_bad_prefix() {
        let credentials = S3Credentials::new("AKIDEXAMPLE", "not-shown");
        assert_eq!(credentials.access_key_id(), "AKIDEXAMPLE");
        let relay = BucketRelay::new(
            "http://127.0.0.1:9000",
            "media",
            "cn-north-1",
            AddressingStyle::Path,
            credentials,
        )
        .unwrap();
        assert_eq!(
            (relay.bucket(), relay.region(), relay.prefix()),
            ("media", "cn-north-1", "")
        );
        assert_eq!(
            relay.clone().with_prefix("wecom/").unwrap().prefix(),
            "wecom/"
        );
        let longest = "a".repeat(512);
        assert_eq!(
            relay.clone().with_prefix(&longest).unwrap().prefix(),
            longest
        );
        for bad in ["a".repeat(513), "/wecom".to_owned(), "we\ncom".to_owned()] {
            assert!(
                matches!(
                    relay.clone().with_prefix(&bad),
                    Err(Invalid::BadRelay { .. })
                ),
                "{bad:?}"
            );
        }
    }
}
