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
