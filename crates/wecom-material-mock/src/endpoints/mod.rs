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

use crate::body::{Ending, MockBody, Shape};
use crate::state::{InFlight, State};

/// What a handler gets besides the body.
pub(crate) struct Ctx {
    pub(crate) state: Arc<State>,
    pub(crate) parts: http::request::Parts,
    /// How a download body must end (a fault may cut it).
    pub(crate) ending: Ending,
    /// A stall fault for a download body: pause after this many bytes for this long.
    pub(crate) stall: Option<(u64, std::time::Duration)>,
    /// An `expires_in` fault for gettoken.
    pub(crate) expires_in: Option<u64>,
}

/// The errcode of a JSON answer, kept in the response's extensions for the request log.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Errcode(pub(crate) i64);

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

    /// A download body of `bytes`, shaped by the request's faults and the bandwidth setting;
    /// `guard` is held until the body ends.
    pub(crate) fn body(&self, bytes: bytes::Bytes, guard: Option<InFlight>) -> MockBody {
        MockBody::shaped(
            bytes,
            self.ending,
            Shape {
                stall: self.stall,
                bandwidth: self.state.settings().bandwidth,
                guard,
            },
        )
    }

    /// A JSON success (`errcode` 0 and `errmsg` "ok" are added in front of `fields`), as the
    /// official examples of gettoken and the upload_by_url calls show it.
    pub(crate) fn ok(&self, fields: serde_json::Value) -> Response<MockBody> {
        success(fields, "ok")
    }

    /// A JSON success with `"errmsg":""`, as the official examples of `media/upload` and
    /// `media/uploadimg` show it (SPEC §2, §3).
    pub(crate) fn ok_empty_errmsg(&self, fields: serde_json::Value) -> Response<MockBody> {
        success(fields, "")
    }
}

/// `{"errcode":0,"errmsg":…` first, as in the official examples, then `fields`.
fn success(fields: serde_json::Value, errmsg: &str) -> Response<MockBody> {
    let head = format!(
        r#"{{"errcode":0,"errmsg":{}"#,
        serde_json::Value::from(errmsg)
    );
    let rest = match &fields {
        serde_json::Value::Object(m) if !m.is_empty() => fields.to_string(),
        _ => String::new(),
    };
    let body = match rest.strip_prefix('{') {
        Some(tail) => format!("{head},{tail}"),
        None => format!("{head}}}"),
    };
    let mut r = json_response(body, "application/json; charset=UTF-8");
    r.extensions_mut().insert(Errcode(0));
    r
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
    let mut r = json_response(body, state.config.error_content_type.header_value());
    r.extensions_mut().insert(Errcode(code));
    r
}

/// The error object with any `Content-Type` (or none) and an optional `Error-Code` header:
/// [`crate::Fault::ErrorBody`].
pub(crate) fn hostile_error_response(
    code: i64,
    content_type: Option<&str>,
    error_code_header: Option<i64>,
) -> Response<MockBody> {
    let msg = errmsg(code);
    let body = serde_json::json!({"errcode": code, "errmsg": msg}).to_string();
    let mut r = Response::new(MockBody::empty());
    let h = r.headers_mut();
    if let Some(ct) = content_type.and_then(|c| http::HeaderValue::from_str(c).ok()) {
        h.insert(CONTENT_TYPE, ct);
    }
    h.insert(CONTENT_LENGTH, body.len().into());
    if let Some(n) = error_code_header {
        h.insert("error-code", n.into());
        if let Ok(v) = http::HeaderValue::from_str(&msg) {
            h.insert("error-msg", v);
        }
    }
    *r.body_mut() = MockBody::full(body);
    r.extensions_mut().insert(Errcode(code));
    r
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
