//! One module per endpoint, plus the response helpers they share.

pub(crate) mod download;
pub(crate) mod gettoken;
pub(crate) mod job_result;
pub(crate) mod multipart;
pub(crate) mod upload;
pub(crate) mod upload_by_url;
pub(crate) mod uploadimg;

use std::sync::Arc;

use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{Response, StatusCode};
use wecom_material_core::errcode::ErrCode;

use crate::body::{Ending, MockBody};
use crate::state::State;

/// What a handler gets besides the body.
pub(crate) struct Ctx {
    pub(crate) state: Arc<State>,
    pub(crate) parts: http::request::Parts,
    /// How a download body must end (a fault may cut it).
    pub(crate) ending: Ending,
}

impl Ctx {
    pub(crate) fn query(&self, name: &str) -> Option<String> {
        crate::query::param(self.parts.uri.query().unwrap_or(""), name)
    }

    /// Checks `access_token`; on failure, the error response.
    pub(crate) fn app(&self) -> Result<usize, Box<Response<MockBody>>> {
        self.state
            .check_token(self.query("access_token").as_deref())
            .map_err(|code| Box::new(self.error(code)))
    }

    pub(crate) fn corp_id(&self, app: usize) -> String {
        self.state.config.apps[app].corp_id.clone()
    }

    /// A JSON error with HTTP 200 and the configured error content type.
    pub(crate) fn error(&self, code: i64) -> Response<MockBody> {
        error_response(&self.state, code)
    }

    /// A JSON success (`errcode` 0 and `errmsg` "ok" are added in front of `fields`).
    pub(crate) fn ok(&self, fields: serde_json::Value) -> Response<MockBody> {
        let mut map = serde_json::Map::new();
        map.insert("errcode".into(), 0.into());
        map.insert("errmsg".into(), "ok".into());
        if let serde_json::Value::Object(extra) = fields {
            map.extend(extra);
        }
        json_response(
            serde_json::Value::Object(map).to_string(),
            "application/json; charset=UTF-8",
        )
    }
}

/// The errmsg for a code, with a changing-looking suffix like the real server's (clients must
/// decide by errcode, never by errmsg).
pub(crate) fn errmsg(code: i64) -> String {
    format!(
        "{}, hint: [mock-{code}], from ip: 127.0.0.1, more info at https://open.work.weixin.qq.com/devtool/query?e={code}",
        match code {
            40058 => "invalid parameter",
            47001 => "data format error",
            _ => ErrCode::from_code(code).meaning(),
        }
    )
}

pub(crate) fn error_response(state: &State, code: i64) -> Response<MockBody> {
    let body = serde_json::json!({"errcode": code, "errmsg": errmsg(code)}).to_string();
    json_response(body, state.config.error_content_type.header_value())
}

pub(crate) fn json_response(body: String, content_type: &'static str) -> Response<MockBody> {
    let len = body.len();
    Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, content_type)
        .header(CONTENT_LENGTH, len)
        .body(MockBody::full(body))
        .unwrap_or_else(|_| Response::new(MockBody::empty()))
}

pub(crate) fn status_response(status: StatusCode) -> Response<MockBody> {
    let mut r = Response::new(MockBody::empty());
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_LENGTH, 0.into());
    r
}
