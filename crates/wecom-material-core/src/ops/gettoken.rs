//! `GET /cgi-bin/gettoken`: exchange the corp id and an app's secret for an access token
//! (SPEC §1).

use std::time::Duration;

use serde::Deserialize;

use crate::api_json::parse_json;
use crate::body::Body;
use crate::endpoint::BaseUrl;
use crate::error::{DecodeError, Error};
use crate::secret::{AccessToken, CorpSecret};

/// The gettoken path.
pub const PATH: &str = "/cgi-bin/gettoken";

/// The shortest `expires_in` accepted: 60 s. WeCom grants 7200 s; an answer below the floor
/// (0, or a few seconds, from a broken proxy or emulator) would have every call fetch a new
/// token — a gettoken storm that gets an IP banned (SPEC §1) — so it is a decode error, not a
/// token.
pub const MIN_EXPIRES_IN: Duration = Duration::from_secs(60);

/// The longest `expires_in` accepted: one day. WeCom grants 7200 s; a larger value (up to
/// 2^64 − 1 from a hostile server) would overflow the clock arithmetic of the token cache or
/// cache a token for decades, so it is a decode error.
pub const MAX_EXPIRES_IN: Duration = Duration::from_secs(86_400);

pub use crate::secret::MAX_TOKEN_LEN;

/// The credentials of one app: corp id and that app's secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetToken {
    /// The corp id (`corpid`).
    pub corp_id: String,
    /// The app's secret (`corpsecret`); never printed.
    pub secret: CorpSecret,
}

/// A token and how long WeCom says it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    /// The access token.
    pub token: AccessToken,
    /// `expires_in` (7200 s normally). WeCom may invalidate the token earlier.
    pub expires_in: Duration,
}

#[derive(Deserialize)]
struct Answer {
    access_token: String,
    expires_in: u64,
}

impl GetToken {
    /// Credentials for one app.
    pub fn new(corp_id: impl Into<String>, secret: CorpSecret) -> Self {
        Self {
            corp_id: corp_id.into(),
            secret,
        }
    }

    /// `GET /cgi-bin/gettoken?corpid=…&corpsecret=…`.
    pub fn build(&self, base: &BaseUrl) -> http::Request<Body> {
        let uri = base.uri(
            PATH,
            &[
                ("corpid", &self.corp_id),
                ("corpsecret", self.secret.expose()),
            ],
        );
        crate::endpoint::request(http::Method::GET, uri, &[], Body::Empty)
    }

    /// Reads the answer; a missing `errcode` counts as success (old answers omit it).
    pub fn parse<B: AsRef<[u8]>>(&self, response: http::Response<B>) -> Result<TokenGrant, Error> {
        // A gettoken answer that does not decode may still hold a token: its error keeps
        // neither a body excerpt nor serde's message (which can quote field values).
        let answer: Answer = parse_json(&response).map_err(|e| match e {
            Error::Decode(d) => Error::Decode(DecodeError {
                reason: "malformed gettoken answer".to_owned(),
                excerpt: String::new(),
                ..d
            }),
            other => other,
        })?;
        let status = response.status().as_u16();
        let token = AccessToken::new(answer.access_token)
            .map_err(|e| DecodeError::new(status, format!("unusable access_token: {e}"), b""))?;
        let (min, max) = (MIN_EXPIRES_IN.as_secs(), MAX_EXPIRES_IN.as_secs());
        if answer.expires_in < min {
            return Err(DecodeError::new(
                status,
                format!(
                    "expires_in of {} s is below the floor of {min} s",
                    answer.expires_in
                ),
                b"",
            )
            .into());
        }
        if answer.expires_in > max {
            return Err(DecodeError::new(
                status,
                format!(
                    "expires_in of {} s is above the ceiling of {max} s",
                    answer.expires_in
                ),
                b"",
            )
            .into());
        }
        Ok(TokenGrant {
            token,
            expires_in: Duration::from_secs(answer.expires_in),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_answer_does_not_echo_the_token() {
        let op = GetToken::new("ww", CorpSecret::new("s"));
        for body in [
            r#"{"errcode":0,"access_token":"TOKEN-abc123","expires_in":"soon"}"#,
            r#"{"errcode":0,"access_token":"TOKEN-abc123"}"#,
            r#"{"access_token":"TOKEN-abc123","expires_in":7200"#,
        ] {
            let err = op.parse(http::Response::new(body)).unwrap_err();
            assert!(matches!(err, Error::Decode(_)), "{err}");
            let text = format!("{err} {err:?}");
            assert!(!text.contains("TOKEN-abc123"), "{text}");
            // Neither an excerpt nor serde's message (which can quote a value): only that.
            assert_eq!(
                err.to_string(),
                "undecodable response (HTTP 200): malformed gettoken answer"
            );
        }
    }

    #[test]
    fn expires_in_below_the_floor_is_a_decode_error_not_a_token() {
        let op = GetToken::new("ww", CorpSecret::new("s"));
        for expires_in in [0, 1, 59] {
            let body = format!(
                r#"{{"errcode":0,"access_token":"TOKEN-abc123","expires_in":{expires_in}}}"#
            );
            match op.parse(http::Response::new(body)).unwrap_err() {
                Error::Decode(e) => {
                    assert!(e.reason.contains("below the floor of 60 s"), "{}", e.reason);
                    assert!(!format!("{e:?}").contains("TOKEN-abc123"));
                }
                other => panic!("{other:?}"),
            }
        }
        let body = r#"{"errcode":0,"access_token":"TOKEN-abc123","expires_in":60}"#;
        assert_eq!(
            op.parse(http::Response::new(body)).unwrap().expires_in,
            MIN_EXPIRES_IN
        );
    }

    /// `expires_in` near 2^63 overflowed the token cache's `Instant` arithmetic (a panic);
    /// 10^18 was cached for decades. Anything above one day is a decode error now.
    #[test]
    fn expires_in_above_one_day_is_a_decode_error() {
        let op = GetToken::new("ww", CorpSecret::new("s"));
        for expires_in in [
            86_401u64,
            1_000_000_000_000_000_000,
            1 << 63,
            (1 << 63) + 12345,
            u64::MAX,
        ] {
            let body = format!(
                r#"{{"errcode":0,"access_token":"TOKEN-abc123","expires_in":{expires_in}}}"#
            );
            match op.parse(http::Response::new(body)).unwrap_err() {
                Error::Decode(e) => {
                    assert!(
                        e.reason.contains("above the ceiling of 86400 s"),
                        "{}",
                        e.reason
                    );
                }
                other => panic!("{other:?}"),
            }
        }
        let body = r#"{"errcode":0,"access_token":"TOKEN-abc123","expires_in":86400}"#;
        assert_eq!(
            op.parse(http::Response::new(body)).unwrap().expires_in,
            MAX_EXPIRES_IN
        );
    }

    #[test]
    fn an_oversized_or_empty_token_is_a_decode_error_that_names_only_its_length() {
        let op = GetToken::new("ww", CorpSecret::new("s"));
        for token in [String::new(), "T".repeat(513)] {
            let body = format!(r#"{{"access_token":"{token}","expires_in":7200}}"#);
            match op.parse(http::Response::new(body)).unwrap_err() {
                Error::Decode(e) => {
                    assert!(e.reason.starts_with("unusable access_token"), "{e}");
                    assert!(!e.to_string().contains("TTTT"), "{e}");
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
