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

/// The longest token WeCom documents.
pub const MAX_TOKEN_LEN: usize = 512;

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
        http::Request::get(uri)
            .body(Body::Empty)
            .expect("valid request parts")
    }

    /// Reads the answer; a missing `errcode` counts as success (old answers omit it).
    pub fn parse<B: AsRef<[u8]>>(&self, response: http::Response<B>) -> Result<TokenGrant, Error> {
        let answer: Answer = parse_json(&response)?;
        if answer.access_token.is_empty() || answer.access_token.len() > MAX_TOKEN_LEN {
            return Err(DecodeError::new(
                response.status().as_u16(),
                format!("access_token of {} bytes", answer.access_token.len()),
                b"",
            )
            .into());
        }
        Ok(TokenGrant {
            token: AccessToken::new(answer.access_token),
            expires_in: Duration::from_secs(answer.expires_in),
        })
    }
}
