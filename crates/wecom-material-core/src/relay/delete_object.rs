//! `DELETE /BUCKET/KEY` through a presigned URL: the relay's clean-up, and (on the object
//! not yet written) its access check before the upload, which needs no permission the relay
//! does not need anyway and leaves nothing behind.

use std::time::{Duration, SystemTime};

use crate::body::Body;
use crate::error::Invalid;

/// How long the DELETE's signature is valid.
const SIGNATURE_EXPIRY: Duration = Duration::from_secs(15 * 60);

/// The DELETE of `key`, signed at `wall`.
pub(crate) fn request(
    relay: &super::BucketRelay,
    key: &str,
    wall: SystemTime,
) -> Result<http::Request<Body>, Invalid> {
    let action = rusty_s3::actions::DeleteObject::new(&relay.bucket, Some(&relay.credentials), key);
    let uri = super::presign::signed_uri(&action, SIGNATURE_EXPIRY, wall)?;
    http::Request::delete(uri)
        .body(Body::Empty)
        .map_err(|_| Invalid::BadRelay {
            reason: "the DELETE request cannot be built".into(),
        })
}

/// Whether a DELETE answer means the object is not there (any more): 2xx, or 404 for the
/// key (not for the bucket: `NoSuchBucket` is an error).
pub(crate) fn gone(status: u16, code: Option<&str>) -> bool {
    (200..300).contains(&status) || (status == 404 && code != Some("NoSuchBucket"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2xx and a 404 for the key mean the object is gone; a 404 for the bucket does not,
    /// nor does any other status.
    #[test]
    fn an_object_is_gone_after_2xx_or_a_404_for_its_key() {
        for (status, code, is_gone) in [
            (204, None, true),
            (200, None, true),
            (404, Some("NoSuchKey"), true),
            (404, None, true),
            (404, Some("NoSuchBucket"), false),
            (403, Some("AccessDenied"), false),
            (500, None, false),
        ] {
            assert_eq!(gone(status, code), is_gone, "{status} {code:?}");
        }
    }

    /// The DELETE's presigned URL is valid for 15 minutes.
    #[test]
    fn the_delete_is_signed_for_fifteen_minutes() {
        let credentials = super::super::S3Credentials::new("AKID", "secret-key");
        let relay = super::super::BucketRelay::from_s3_url(
            "s3://media/in/",
            Some("http://127.0.0.1:9000"),
            "us-east-1",
            super::super::AddressingStyle::Auto,
            credentials,
        )
        .unwrap();
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_536_800);
        let request = request(&relay, "in/k.mp4", wall).unwrap();
        assert_eq!(request.method(), http::Method::DELETE);
        let query = request.uri().query().unwrap_or_default();
        assert!(query.contains("X-Amz-Expires=900"), "{query}");
    }
}
