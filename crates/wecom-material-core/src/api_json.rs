//! Reading WeCom's JSON answers: the `errcode`/`errmsg` envelope shared by every endpoint.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::errcode::ErrCode;
use crate::error::{ApiError, DecodeError, Error};

/// The largest JSON answer the core reads; transports use it as their response size limit.
pub const MAX_JSON_RESPONSE: usize = 64 * 1024;

#[derive(Deserialize)]
struct Envelope {
    // Old gettoken answers omit errcode on success: a missing code means 0.
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

/// Turns a non-zero `errcode` into the matching error (45009 becomes
/// [`Error::RateLimited`]).
pub(crate) fn api_error(code: i64, errmsg: String) -> Error {
    let err = ApiError {
        code: ErrCode::from_code(code),
        errmsg,
    };
    if err.code == ErrCode::RateLimited {
        Error::RateLimited(err)
    } else {
        Error::Api(err)
    }
}

/// Parses a JSON answer: a non-zero `errcode` becomes an API error whatever the HTTP status;
/// otherwise the body is decoded as `T`. A body that is not JSON (an HTML page from a proxy,
/// a truncated answer) becomes a [`DecodeError`] with the status and an excerpt.
pub(crate) fn parse_json<T: DeserializeOwned, B: AsRef<[u8]>>(
    response: &http::Response<B>,
) -> Result<T, Error> {
    let status = response.status().as_u16();
    let body = response.body().as_ref();
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| {
        let reason = if response.status().is_success() {
            format!("not a JSON answer: {e}")
        } else {
            format!("HTTP error without a JSON answer: {e}")
        };
        DecodeError::new(status, reason, body)
    })?;
    if envelope.errcode != 0 {
        return Err(api_error(envelope.errcode, envelope.errmsg));
    }
    if !response.status().is_success() {
        return Err(DecodeError::new(status, "HTTP error with errcode 0", body).into());
    }
    serde_json::from_slice(body)
        .map_err(|e| DecodeError::new(status, format!("unexpected JSON answer: {e}"), body).into())
}

/// A Unix timestamp that WeCom sends as a JSON string in some answers and as a number in
/// others.
pub(crate) mod flexible_u64 {
    use serde::{Deserialize, Deserializer, de::Error};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum StrOrNum {
        Num(u64),
        Str(String),
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        match StrOrNum::deserialize(d)? {
            StrOrNum::Num(n) => Ok(n),
            StrOrNum::Str(s) => s.trim().parse().map_err(D::Error::custom),
        }
    }
}
