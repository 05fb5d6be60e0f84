//! The admin API under `/__mock/`: the [`MockHandle`](crate::MockHandle) features over HTTP,
//! so that a client written in any language can drive the emulator in its tests. The
//! contract is the OpenAPI 3 document `openapi.json` next to this crate's `Cargo.toml`,
//! served at `GET /__mock/openapi.json`; a test checks it against [`ROUTES`] and the answers.
//!
//! JSON in and out, no access token. Bad input (malformed JSON, an unknown field, a missing
//! or out-of-range value) answers **400** with `{"error": "<message>"}`; an unknown path
//! 404 and a wrong method 405, in the same form. Admin requests are not recorded, not delayed
//! by the latency setting and never meet a fault. Every clearing call answers how many things
//! it cleared (`{"cleared": n}`, `{"revoked": n}`, `{"deleted": n}`).
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
use crate::config::{CallbackTarget, MediaKind};
use crate::fault::{Endpoint, Fault};
use crate::state::{Rules, State};

/// Every admin path starts with this.
pub(crate) const PREFIX: &str = "/__mock/";

/// The OpenAPI 3 document of the admin API, as served at `GET /__mock/openapi.json`.
pub(crate) const OPENAPI: &str = include_str!("../openapi.json");

/// Every admin operation: method and path template (as the OpenAPI document writes it).
pub(crate) const ROUTES: &[(&str, &str)] = &[
    ("GET", "/__mock/requests"),
    ("DELETE", "/__mock/requests"),
    ("GET", "/__mock/stats"),
    ("POST", "/__mock/faults"),
    ("DELETE", "/__mock/faults"),
    ("POST", "/__mock/tokens/revoke"),
    ("GET", "/__mock/clock"),
    ("POST", "/__mock/clock"),
    ("POST", "/__mock/media"),
    ("DELETE", "/__mock/media/{media_id}"),
    ("POST", "/__mock/files"),
    ("GET", "/__mock/settings"),
    ("POST", "/__mock/settings"),
    ("POST", "/__mock/reset"),
    ("GET", "/__mock/openapi.json"),
];

/// The largest body the admin API reads (a media or a served file).
const BODY_LIMIT: usize = 512 * 1024 * 1024;

type Answer = Result<Value, (StatusCode, String)>;

fn bad(message: impl Into<String>) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, message.into())
}

/// The path template a request path matches, and the path parameter if any.
fn template(path: &str) -> (String, Option<String>) {
    if let Some(id) = path.strip_prefix("/__mock/media/")
        && !id.is_empty()
    {
        let id = percent_encoding::percent_decode_str(id)
            .decode_utf8_lossy()
            .into_owned();
        return ("/__mock/media/{media_id}".to_owned(), Some(id));
    }
    (path.to_owned(), None)
}

pub(crate) async fn handle(state: &Arc<State>, req: Request<Incoming>) -> Response<MockBody> {
    let (parts, body) = req.into_parts();
    let (route, param) = template(parts.uri.path());
    let query = parts.uri.query().unwrap_or("").to_owned();
    let method = parts.method;
    if route == "/__mock/openapi.json" && method == Method::GET {
        return respond(StatusCode::OK, OPENAPI.to_owned());
    }
    let body = match Limited::new(body, BODY_LIMIT).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return answer(Err(bad(format!(
                "the body could not be read or is over {BODY_LIMIT} bytes"
            ))));
        }
    };
    let result = match (method.as_str(), route.as_str()) {
        ("GET", "/__mock/requests") => Ok(requests(state)),
        ("DELETE", "/__mock/requests") => Ok(json!({ "cleared": state.clear_requests() })),
        ("GET", "/__mock/stats") => Ok(stats(state)),
        ("POST", "/__mock/faults") => add_fault(state, &body),
        ("DELETE", "/__mock/faults") => Ok(json!({ "cleared": state.lock().faults.clear() })),
        ("POST", "/__mock/tokens/revoke") => Ok(json!({ "revoked": state.expire_tokens() })),
        ("GET", "/__mock/clock") => Ok(json!({ "now": state.config.clock.now_unix() })),
        ("POST", "/__mock/clock") => move_clock(state, &body),
        ("POST", "/__mock/media") => add_media(state, &query, &body),
        ("DELETE", "/__mock/media/{media_id}") => {
            let id = param.unwrap_or_default();
            if state.delete_media(&id) {
                Ok(json!({ "deleted": 1 }))
            } else {
                Err((StatusCode::NOT_FOUND, format!("no media {id}")))
            }
        }
        ("POST", "/__mock/files") => serve_file(state, &query, &body),
        ("GET", "/__mock/settings") => Ok(settings_json(state)),
        ("POST", "/__mock/settings") => change_settings(state, &body),
        ("POST", "/__mock/reset") => {
            state.reset();
            Ok(json!({ "reset": true, "now": state.config.clock.now_unix() }))
        }
        _ if ROUTES.iter().any(|(_, p)| *p == route) => Err((
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed on {route}"),
        )),
        _ => {
            let known: Vec<&str> = ROUTES.iter().map(|(_, p)| *p).collect();
            Err((
                StatusCode::NOT_FOUND,
                format!(
                    "no admin endpoint {route}; there are {} (contract: {PREFIX}openapi.json)",
                    dedup(known).join(", ")
                ),
            ))
        }
    };
    answer(result)
}

fn dedup(mut v: Vec<&str>) -> Vec<&str> {
    v.dedup();
    v
}

fn answer(result: Answer) -> Response<MockBody> {
    let (status, value) = match result {
        Ok(v) => (StatusCode::OK, v),
        Err((status, message)) => (status, json!({ "error": message })),
    };
    respond(status, value.to_string())
}

fn respond(status: StatusCode, text: String) -> Response<MockBody> {
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

/// Request counts by endpoint (every one, zero included), then the counters and gauges.
fn stats(state: &State) -> Value {
    let mut map = Map::new();
    for (name, n) in state.stats() {
        map.insert(name, n.into());
    }
    let inner = state.lock();
    map.insert("throttled_45033".into(), inner.throttled.into());
    map.insert("evicted_expired".into(), inner.evicted_expired.into());
    map.insert("evicted_budget".into(), inner.evicted_budget.into());
    map.insert("media_count".into(), inner.store.media_count().into());
    map.insert("image_count".into(), inner.store.image_count().into());
    map.insert("media_bytes".into(), inner.store.bytes().into());
    map.insert("requests_logged".into(), inner.requests.len().into());
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

/// `{"advance_secs": N}` moves the clock forward, `{"now": UNIX}` sets it (forward or back);
/// expired media are evicted at once.
fn move_clock(state: &State, body: &[u8]) -> Answer {
    let mut f = Fields {
        map: object(body, false)?,
    };
    let advance = f.u64("advance_secs")?;
    let set = f.u64("now")?;
    f.finish()?;
    let clock = &state.config.clock;
    if !clock.can_advance() {
        return Err(bad(
            "this emulator runs on Clock::real, which cannot move (use Clock::adjustable)",
        ));
    }
    match (advance, set) {
        (Some(secs), None) => clock.advance(Duration::from_secs(secs)),
        (None, Some(now)) => {
            clock.set_unix(now);
        }
        _ => return Err(bad("give exactly one of \"advance_secs\" and \"now\"")),
    }
    state.evict_expired();
    Ok(json!({ "now": clock.now_unix() }))
}

/// Checks that the query has only these keys.
fn only_keys(query: &str, allowed: &[&str]) -> Result<(), (StatusCode, String)> {
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let key = pair.split_once('=').map_or(pair, |(k, _)| k);
        if !allowed.contains(&key) {
            return Err(bad(format!(
                "unknown query parameter \"{key}\"; allowed: {}",
                allowed.join(", ")
            )));
        }
    }
    Ok(())
}

fn add_media(state: &State, query: &str, body: &Bytes) -> Answer {
    only_keys(query, &["filename", "content_type", "type", "corp_id"])?;
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
    let corp_id = match crate::query::param(query, "corp_id") {
        None => None,
        Some(c) if state.config.apps.iter().any(|a| a.corp_id == c) => Some(c),
        Some(c) => return Err(bad(format!("no app of corp id \"{c}\""))),
    };
    if body.is_empty() {
        return Err(bad(
            "the body is empty: send the media's bytes (curl --data-binary @FILE)",
        ));
    }
    let len = body.len();
    // A copy: the collected body may be a slice of a larger buffer.
    let bytes = state.slabs.store(std::slice::from_ref(body));
    let media_id = state.store_new_media(kind, bytes, &content_type, &filename, corp_id);
    Ok(json!({ "media_id": media_id, "bytes": len, "content_type": content_type }))
}

/// `POST /__mock/files?name=NAME[&range_support=false]`: serves the body at
/// `{base}/mock-files/NAME` (for upload_by_url from any language).
fn serve_file(state: &State, query: &str, body: &Bytes) -> Answer {
    only_keys(query, &["name", "range_support"])?;
    let name = crate::query::param(query, "name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad("the query needs name=NAME (the file's path under /mock-files/)"))?;
    let name = name.trim_start_matches('/').to_owned();
    if name.is_empty()
        || name.len() > 200
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
        || name.split('/').any(|seg| seg.is_empty() || seg == "..")
    {
        return Err(bad(
            "name must be 1-200 characters of [A-Za-z0-9._-/] without empty or \"..\" segments",
        ));
    }
    let range_support = match crate::query::param(query, "range_support").as_deref() {
        None | Some("true") => true,
        Some("false") => false,
        Some(_) => return Err(bad("range_support must be true or false")),
    };
    if body.is_empty() {
        return Err(bad("the body is empty: send the file's bytes"));
    }
    let url = format!("{}{}{name}", state.base_url, crate::FILE_PREFIX);
    let content_type = crate::endpoints::upload::content_type_for(&name, None);
    let len = body.len();
    state.lock().served.insert(
        name,
        crate::state::ServedFile {
            bytes: Bytes::copy_from_slice(body),
            content_type,
            range_support,
            gate: None,
        },
    );
    Ok(json!({ "url": url, "bytes": len, "range_support": range_support }))
}

fn settings_json(state: &State) -> Value {
    let s = state.settings();
    let r = state.rules();
    let l = &r.limits;
    json!({
        "latency_ms": u64::try_from(s.latency.as_millis()).unwrap_or(u64::MAX),
        "bandwidth": s.bandwidth,
        "max_concurrent_per_media": s.max_concurrent_per_media,
        "upload_img_daily_quota": r.upload_img_daily_quota,
        "strict_ids": r.strict_ids,
        "request_log_capacity": r.request_log_capacity,
        "max_media_bytes": r.max_media_bytes,
        "limits": {
            "min_exclusive_bytes": l.min_exclusive_bytes,
            "image": l.image.max_bytes,
            "voice": l.voice.max_bytes,
            "video": l.video.max_bytes,
            "file": l.file.max_bytes,
            "upload_img": l.upload_img.max_bytes,
            "upload_by_url": l.upload_by_url_max_bytes,
            "max_download_chunk": l.max_download_chunk,
        },
        // The token and the AES key are write-only: never shown.
        "callback": r.callback.as_ref().map(|c| json!({
            "url": c.url,
            "receive_id": c.receive_id,
            "timeout_ms": u64::try_from(c.timeout.as_millis()).unwrap_or(u64::MAX),
            "retries": c.retries,
        })),
    })
}

/// A positive integer or null (turns the setting off); `None` when the key is absent.
fn positive_or_null(
    f: &mut Fields,
    key: &str,
) -> Result<Option<Option<u64>>, (StatusCode, String)> {
    match f.take(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 => Ok(Some(Some(n))),
            _ => Err(bad(format!("\"{key}\" must be a positive integer or null"))),
        },
    }
}

fn change_settings(state: &State, body: &[u8]) -> Answer {
    let mut f = Fields {
        map: object(body, false)?,
    };
    let mut s = state.settings();
    let mut r: Rules = (*state.rules()).clone();
    if let Some(ms) = f.u64("latency_ms")? {
        s.latency = Duration::from_millis(ms);
    }
    if let Some(b) = positive_or_null(&mut f, "bandwidth")? {
        s.bandwidth = b;
    }
    if let Some(k) = positive_or_null(&mut f, "max_concurrent_per_media")? {
        s.max_concurrent_per_media = k.map(|k| usize::try_from(k).unwrap_or(usize::MAX));
    }
    if let Some(q) = f.u64("upload_img_daily_quota")? {
        r.upload_img_daily_quota =
            u32::try_from(q).map_err(|_| bad("\"upload_img_daily_quota\" is too large"))?;
    }
    if let Some(strict) = f.bool("strict_ids")? {
        r.strict_ids = strict;
    }
    if let Some(n) = f.u64("request_log_capacity")? {
        r.request_log_capacity = usize::try_from(n)
            .ok()
            .filter(|&n| n <= 10_000_000)
            .ok_or_else(|| bad("\"request_log_capacity\" must be at most 10000000"))?;
    }
    if let Some(n) = f.u64("max_media_bytes")? {
        r.max_media_bytes = n;
    }
    if let Some(limits) = f.take("limits") {
        let Value::Object(map) = limits else {
            return Err(bad("\"limits\" must be an object"));
        };
        let mut l = Fields { map };
        let l_ = &mut r.limits;
        if let Some(n) = l.u64("min_exclusive_bytes")? {
            l_.min_exclusive_bytes = n;
        }
        for (key, slot) in [
            ("image", &mut l_.image.max_bytes),
            ("voice", &mut l_.voice.max_bytes),
            ("video", &mut l_.video.max_bytes),
            ("file", &mut l_.file.max_bytes),
            ("upload_img", &mut l_.upload_img.max_bytes),
            ("upload_by_url", &mut l_.upload_by_url_max_bytes),
            ("max_download_chunk", &mut l_.max_download_chunk),
        ] {
            if let Some(n) = l.u64(key)? {
                *slot = n;
            }
        }
        l.finish().map_err(|(st, m)| (st, format!("limits: {m}")))?;
    }
    match f.take("callback") {
        None => {}
        Some(Value::Null) => r.callback = None,
        Some(Value::Object(map)) => {
            let mut c = Fields { map };
            let need = |c: &mut Fields, key: &str| {
                c.string(key)?
                    .ok_or_else(|| bad(format!("callback: \"{key}\" is required")))
            };
            let mut target = CallbackTarget::new(
                need(&mut c, "url")?,
                need(&mut c, "token")?,
                need(&mut c, "encoding_aes_key")?,
                need(&mut c, "receive_id")?,
            );
            if let Some(ms) = c.u64("timeout_ms")? {
                target.timeout = Duration::from_millis(ms.max(1));
            }
            if let Some(n) = c.u64("retries")? {
                target.retries =
                    u32::try_from(n).map_err(|_| bad("callback: \"retries\" is too large"))?;
            }
            c.finish()
                .map_err(|(st, m)| (st, format!("callback: {m}")))?;
            crate::callback::check_target(&target).map_err(|m| bad(format!("callback: {m}")))?;
            r.callback = Some(target);
        }
        Some(_) => return Err(bad("\"callback\" must be an object or null")),
    }
    f.finish()?;
    state.set_settings(s);
    state.set_rules(r);
    Ok(settings_json(state))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The document names exactly the operations the handler answers.
    #[test]
    fn the_openapi_document_lists_exactly_the_routes() {
        let doc: Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let mut documented = BTreeSet::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for method in ops.as_object().unwrap().keys() {
                documented.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
        let routes: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        assert_eq!(documented, routes);
    }

    #[test]
    fn path_templates() {
        assert_eq!(
            template("/__mock/media/3abc%2B"),
            (
                "/__mock/media/{media_id}".to_owned(),
                Some("3abc+".to_owned())
            )
        );
        assert_eq!(
            template("/__mock/media/"),
            ("/__mock/media/".to_owned(), None)
        );
        assert_eq!(
            template("/__mock/media"),
            ("/__mock/media".to_owned(), None)
        );
    }
}
