//! `PUT /BUCKET/KEY` through a presigned URL: the file, streamed by the transport from its
//! source as the external payload of a [`Body::Upload`] with empty head and tail (exactly
//! `len` bytes, `Content-Length` set), and digested on the way (see
//! [`PayloadDigest`](crate::task::PayloadDigest)).

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};

use crate::body::{Body, Payload, Replay, UploadBody};
use crate::error::Invalid;
use crate::task::PayloadDigest;

/// How long the PUT's signature is valid: S3 checks it when the request starts.
const SIGNATURE_EXPIRY: Duration = Duration::from_secs(15 * 60);

/// The PUT of `len` bytes from the transport's source to `key`, signed at `wall`.
pub(crate) fn request(
    relay: &super::BucketRelay,
    key: &str,
    (len, replay): (u64, Replay),
    digest: &PayloadDigest,
    wall: SystemTime,
) -> Result<http::Request<Body>, Invalid> {
    let action = rusty_s3::actions::PutObject::new(&relay.bucket, Some(&relay.credentials), key);
    let uri = super::presign::signed_uri(&action, SIGNATURE_EXPIRY, wall)?;
    let body = Body::Upload(UploadBody {
        head: Bytes::new(),
        payload: Payload::External { len, replay },
        tail: Bytes::new(),
        digest: Some(digest.clone()),
        sent: Default::default(),
    });
    http::Request::put(uri)
        .header(CONTENT_LENGTH, len)
        .header(CONTENT_TYPE, "application/octet-stream")
        .body(body)
        .map_err(|_| Invalid::BadRelay {
            reason: "the PUT request cannot be built".into(),
        })
}
