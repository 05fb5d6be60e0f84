//! The admin API under `/__mock/`: the [`MockHandle`](crate::MockHandle) features over HTTP,
//! so that a client written in any language can drive the emulator in its tests.
//!
//! JSON in and out, no access token. Bad input (malformed JSON, an unknown field, a missing
//! or out-of-range value) answers **400** with `{"error": "<message>"}`; an unknown path
//! 404 and a wrong method 405, in the same form. Admin requests are not recorded, not delayed
//! by the latency setting and never meet a fault.
//!
//! | method and path | does |
//! |---|---|
//! | `GET /__mock/requests` | the request log: `[{"method","path","query" (token and secret masked),"status","errcode" (or null),"body_len","response_len","range" (or null)}]` |
//! | `DELETE /__mock/requests` | clears it (and the stats): `{"cleared": n}` |
//! | `GET /__mock/stats` | `{"gettoken": n, "media/upload": n, …, "throttled_45033": n}` |
//! | `POST /__mock/faults` | queues a fault (forms below): `{"endpoint","fault","times"}` |
//! | `DELETE /__mock/faults` | clears every fault |
//! | `POST /__mock/tokens/revoke` | every token issued so far answers 42001: `{"revoked": n}` |
//! | `GET` / `POST /__mock/clock` | `{"now": unix}`; POST `{"advance_secs": N}` moves the clock first |
//! | `POST /__mock/media?filename=F&content_type=T[&type=K]` | stores the raw body: `{"media_id": "…"}` |
//! | `GET` / `POST /__mock/settings` | `{"latency_ms","bandwidth","max_concurrent_per_media"}`; POST changes the fields given (`null` turns one off) |
//!
//! Fault forms (`"endpoint"` is the path after `/cgi-bin/`, e.g. `media/get`; `"times"`
//! omitted means every request until `DELETE /__mock/faults`):
//! `{"errcode": N}`; `{"errcode": N, "content_type": "application/octet-stream" | "" (no
//! header), "error_code_header": N}`; `{"status": 502, "body": "…"}`;
//! `{"status": 502, "echo_url": true}`; `{"delay_ms": N}`; `{"drop_before_body": true}`;
//! `{"drop_after_bytes": N}` (downloads: body cut with an error; uploads: request read that
//! far, then closed); `{"truncate_after_bytes": N}` (downloads); `{"stall_ms": N,
//! "stall_after_bytes": M}` (downloads); `{"expires_in": N}` (gettoken).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::{Map, Value, json};

use crate::body::MockBody;
use crate::config::MediaKind;
use crate::fault::{Endpoint, Fault};
use crate::state::{Settings, State};

/// Every admin path starts with this.
pub(crate) const PREFIX: &str = "/__mock/";

/// The largest body the admin API reads (a media upload).
const BODY_LIMIT: usize = 512 * 1024 * 1024;

type Answer = Result<Value, (StatusCode, String)>;

fn bad(message: impl Into<String>) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, message.into())
}

pub(crate) async fn handle(state: &Arc<State>, req: Request<Incoming>) -> Response<MockBody> {
    let (parts, body) = req.into_parts();
    let route = parts.uri.path().strip_prefix(PREFIX).unwrap_or("");
    let query = parts.uri.query().unwrap_or("").to_owned();
    let body = match Limited::new(body, BODY_LIMIT).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return answer(Err(bad(format!(
                "the body could not be read or is over {BODY_LIMIT} bytes"
            ))));
        }
    };
    let method = parts.method;
    let result = match (route, &method) {
        ("requests", &Method::GET) => Ok(requests(state)),
        ("requests", &Method::DELETE) => Ok(json!({ "cleared": state.clear_requests() })),
        ("stats", &Method::GET) => Ok(stats(state)),
        ("faults", &Method::POST) => add_fault(state, &body),
        ("faults", &Method::DELETE) => {
            state.lock().faults.clear();
            Ok(json!({ "cleared": true }))
        }
        ("tokens/revoke", &Method::POST) => Ok(json!({ "revoked": state.expire_tokens() })),
        ("clock", &Method::GET) => Ok(json!({ "now": state.config.clock.now_unix() })),
        ("clock", &Method::POST) => advance_clock(state, &body),
        ("media", &Method::POST) => add_media(state, &query, body),
        ("settings", &Method::GET) => Ok(settings_json(state.settings())),
        ("settings", &Method::POST) => change_settings(state, &body),
        ("requests" | "stats" | "faults" | "tokens/revoke" | "clock" | "media" | "settings", _) => {
            Err((
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not allowed on {PREFIX}{route}"),
            ))
        }
        _ => Err((
            StatusCode::NOT_FOUND,
            format!(
                "no admin endpoint {PREFIX}{route}; there are requests, stats, faults, \
                 tokens/revoke, clock, media, settings"
            ),
        )),
    };
    answer(result)
}

fn answer(result: Answer) -> Response<MockBody> {
    let (status, value) = match result {
        Ok(v) => (StatusCode::OK, v),
        Err((status, message)) => (status, json!({ "error": message })),
    };
    let text = value.to_string();
    let mut r = Response::new(MockBody::empty());
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(CONTENT_LENGTH, text.len().into());
    *r.body_mut() = MockBody::full(text);
    r
}

fn requests(state: &State) -> Value {
    Value::Array(state.lock().requests.iter().map(|r| r.to_json()).collect())
}

fn stats(state: &State) -> Value {
    let mut map = Map::new();
    for (name, n) in state.stats() {
        map.insert(name, n.into());
    }
    map.insert("throttled_45033".into(), state.lock().throttled.into());
    Value::Object(map)
}

/// The body as a JSON object (an empty body is an empty object when `empty_ok`).
fn object(body: &[u8], empty_ok: bool) -> Result<Map<String, Value>, (StatusCode, String)> {
    if body.iter().all(u8::is_ascii_whitespace) && empty_ok {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad("the body must be a JSON object")),
        Err(e) => Err(bad(format!("the body is not JSON: {e}"))),
    }
}

/// Reads typed fields out of a JSON object and refuses any field left unread.
struct Fields {
    map: Map<String, Value>,
}

impl Fields {
    fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key)
    }

    fn u64(&mut self, key: &str) -> Result<Option<u64>, (StatusCode, String)> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| bad(format!("\"{key}\" must be a non-negative integer"))),
        }
    }

    fn i64(&mut self, key: &str) -> Result<Option<i64>, (StatusCode, String)> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| bad(format!("\"{key}\" must be an integer"))),
        }
    }

    fn string(&mut self, key: &str) -> Result<Option<String>, (StatusCode, String)> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(bad(format!("\"{key}\" must be a string"))),
        }
    }

    fn bool(&mut self, key: &str) -> Result<Option<bool>, (StatusCode, String)> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(bad(format!("\"{key}\" must be true or false"))),
        }
    }

    fn finish(self) -> Result<(), (StatusCode, String)> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(k) => Err(bad(format!("unknown or misplaced field \"{k}\""))),
        }
    }
}

fn add_fault(state: &State, body: &[u8]) -> Answer {
    let mut f = Fields {
        map: object(body, false)?,
    };
    let name = f
        .string("endpoint")?
        .ok_or_else(|| bad("\"endpoint\" is required (e.g. \"media/get\")"))?;
    let endpoint = Endpoint::from_name(&name).ok_or_else(|| {
        let names: Vec<&str> = Endpoint::ALL.iter().map(|e| e.name()).collect();
        bad(format!(
            "unknown endpoint \"{name}\"; one of {}",
            names.join(", ")
        ))
    })?;
    let times = match f.u64("times")? {
        None => Fault::FOREVER,
        Some(0) => {
            return Err(bad(
                "\"times\" must be at least 1 (omit it for every request)",
            ));
        }
        Some(n) => u32::try_from(n)
            .ok()
            .filter(|&n| n < Fault::FOREVER)
            .ok_or_else(|| bad("\"times\" is too large"))?,
    };
    let download = endpoint.is_download();
    let need_download = |what: &str| {
        if download {
            Ok(())
        } else {
            Err(bad(format!(
                "\"{what}\" applies to download endpoints only (media/get, media/get/jssdk)"
            )))
        }
    };
    let fault = if let Some(code) = f.i64("errcode")? {
        let content_type = f.take("content_type");
        let header = f.i64("error_code_header")?;
        match (content_type, header) {
            (None, None) => Fault::Errcode { code, times },
            (ct, error_code_header) => {
                let content_type = match ct {
                    None => Some(state.config.error_content_type.header_value().to_owned()),
                    Some(Value::Null) => None,
                    Some(Value::String(s)) if s.is_empty() => None,
                    Some(Value::String(s)) => {
                        if http::HeaderValue::from_str(&s).is_err() {
                            return Err(bad("\"content_type\" is not a valid header value"));
                        }
                        Some(s)
                    }
                    Some(_) => return Err(bad("\"content_type\" must be a string or null")),
                };
                Fault::ErrorBody {
                    code,
                    content_type,
                    error_code_header,
                    times,
                }
            }
        }
    } else if let Some(status) = f.u64("status")? {
        let status = u16::try_from(status)
            .ok()
            .filter(|s| (100..=599).contains(s))
            .ok_or_else(|| bad("\"status\" must be an HTTP status (100-599)"))?;
        if f.bool("echo_url")? == Some(true) {
            Fault::EchoUrl { status, times }
        } else {
            Fault::HttpStatus {
                status,
                body: f.string("body")?.unwrap_or_default(),
                times,
            }
        }
    } else if let Some(ms) = f.u64("delay_ms")? {
        Fault::Delay {
            delay: Duration::from_millis(ms),
            times,
        }
    } else if f.bool("drop_before_body")? == Some(true) {
        Fault::DropBeforeBody { times }
    } else if let Some(after_bytes) = f.u64("drop_after_bytes")? {
        if download {
            Fault::DropMidBody { after_bytes, times }
        } else {
            Fault::DropMidRequest { after_bytes, times }
        }
    } else if let Some(after_bytes) = f.u64("truncate_after_bytes")? {
        need_download("truncate_after_bytes")?;
        Fault::TruncateBody { after_bytes, times }
    } else if let Some(ms) = f.u64("stall_ms")? {
        need_download("stall_ms")?;
        Fault::Stall {
            after_bytes: f.u64("stall_after_bytes")?.unwrap_or(0),
            pause: Duration::from_millis(ms),
            times,
        }
    } else if let Some(secs) = f.u64("expires_in")? {
        if endpoint != Endpoint::GetToken {
            return Err(bad("\"expires_in\" applies to gettoken only"));
        }
        Fault::ExpiresIn { secs, times }
    } else {
        return Err(bad(
            "say what to do: one of \"errcode\", \"status\", \"delay_ms\", \"drop_before_body\", \
             \"drop_after_bytes\", \"truncate_after_bytes\", \"stall_ms\", \"expires_in\"",
        ));
    };
    f.finish()?;
    let kind = fault_kind(&fault);
    state.lock().faults.push(endpoint, fault);
    Ok(json!({
        "endpoint": endpoint.name(),
        "fault": kind,
        "times": (times != Fault::FOREVER).then_some(times),
    }))
}

fn fault_kind(f: &Fault) -> &'static str {
    match f {
        Fault::Errcode { .. } => "errcode",
        Fault::HttpStatus { .. } => "status",
        Fault::Delay { .. } => "delay",
        Fault::DropBeforeBody { .. } => "drop_before_body",
        Fault::DropMidRequest { .. } => "drop_mid_request",
        Fault::DropMidBody { .. } => "drop_mid_body",
        Fault::TruncateBody { .. } => "truncate",
        Fault::ErrorBody { .. } => "error_body",
        Fault::ExpiresIn { .. } => "expires_in",
        Fault::Stall { .. } => "stall",
        Fault::EchoUrl { .. } => "echo_url",
    }
}

fn advance_clock(state: &State, body: &[u8]) -> Answer {
    let mut f = Fields {
        map: object(body, false)?,
    };
    let secs = f
        .u64("advance_secs")?
        .ok_or_else(|| bad("\"advance_secs\" is required"))?;
    f.finish()?;
    let clock = &state.config.clock;
    if !clock.can_advance() {
        return Err(bad(
            "this emulator runs on Clock::real, which cannot move (use Clock::adjustable)",
        ));
    }
    clock.advance(Duration::from_secs(secs));
    Ok(json!({ "now": clock.now_unix() }))
}

fn add_media(state: &State, query: &str, body: Bytes) -> Answer {
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let key = pair.split_once('=').map_or(pair, |(k, _)| k);
        if !matches!(key, "filename" | "content_type" | "type") {
            return Err(bad(format!("unknown query parameter \"{key}\"")));
        }
    }
    let filename = crate::query::param(query, "filename")
        .filter(|f| !f.is_empty())
        .ok_or_else(|| bad("the query needs filename=NAME (and may give content_type=TYPE)"))?;
    let content_type = crate::query::param(query, "content_type")
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| crate::endpoints::upload::content_type_for(&filename, None));
    if http::HeaderValue::from_str(&content_type).is_err() {
        return Err(bad("content_type is not a valid header value"));
    }
    let kind = match crate::query::param(query, "type") {
        None => None,
        Some(t) => Some(MediaKind::from_wire(&t).ok_or_else(|| {
            bad(format!(
                "unknown type \"{t}\"; one of image, voice, video, file"
            ))
        })?),
    };
    let len = body.len();
    let media_id = state.store_new_media(kind, body, &content_type, &filename);
    Ok(json!({ "media_id": media_id, "bytes": len, "content_type": content_type }))
}

fn settings_json(s: Settings) -> Value {
    json!({
        "latency_ms": u64::try_from(s.latency.as_millis()).unwrap_or(u64::MAX),
        "bandwidth": s.bandwidth,
        "max_concurrent_per_media": s.max_concurrent_per_media,
    })
}

fn change_settings(state: &State, body: &[u8]) -> Answer {
    let mut f = Fields {
        map: object(body, false)?,
    };
    let mut s = state.settings();
    let positive =
        |f: &mut Fields, key: &str| -> Result<Option<Option<u64>>, (StatusCode, String)> {
            match f.take(key) {
                None => Ok(None),
                Some(Value::Null) => Ok(Some(None)),
                Some(v) => match v.as_u64() {
                    Some(n) if n > 0 => Ok(Some(Some(n))),
                    _ => Err(bad(format!("\"{key}\" must be a positive integer or null"))),
                },
            }
        };
    if let Some(ms) = f.u64("latency_ms")? {
        s.latency = Duration::from_millis(ms);
    }
    if let Some(b) = positive(&mut f, "bandwidth")? {
        s.bandwidth = b;
    }
    if let Some(k) = positive(&mut f, "max_concurrent_per_media")? {
        s.max_concurrent_per_media = k.map(|k| usize::try_from(k).unwrap_or(usize::MAX));
    }
    f.finish()?;
    state.set_settings(s);
    Ok(settings_json(s))
}
