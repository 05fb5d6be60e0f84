//! Presigned URLs (SigV4 in the query string) for the relay's requests, signed by rusty-s3
//! at a wall-clock time the caller gives: the GET URL WeCom fetches with Range, and the
//! URLs of the relay's own PUT and DELETE.

use std::time::{Duration, SystemTime};

use rusty_s3::S3Action;

use crate::error::Invalid;

/// The longest validity S3 accepts for a presigned URL (SigV4: 7 days).
pub const MAX_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// `action` signed at `wall`, valid for `expiry`, as a URI.
pub(crate) fn signed_uri<'a>(
    action: &impl S3Action<'a>,
    expiry: Duration,
    wall: SystemTime,
) -> Result<http::Uri, Invalid> {
    let url = signed_url(action, expiry, wall)?;
    url.parse().map_err(|_| Invalid::BadRelay {
        reason: "the signed object URL is not a valid URI".into(),
    })
}

/// `action` signed at `wall`, valid for `expiry`, as text.
pub(crate) fn signed_url<'a>(
    action: &impl S3Action<'a>,
    expiry: Duration,
    wall: SystemTime,
) -> Result<String, Invalid> {
    let time = jiff::Timestamp::try_from(wall).map_err(|_| Invalid::BadRelay {
        reason: "the wall clock is outside the range a signature can carry".into(),
    })?;
    Ok(action.sign_with_time(expiry, &time).into())
}

/// The presigned GET URL of `key` that WeCom fetches (it supports Range).
pub(crate) fn get_url(
    relay: &super::BucketRelay,
    key: &str,
    expiry: Duration,
    wall: SystemTime,
) -> Result<String, Invalid> {
    let action = rusty_s3::actions::GetObject::new(&relay.bucket, Some(&relay.credentials), key);
    signed_url(&action, expiry, wall)
}
