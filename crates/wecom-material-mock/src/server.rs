//! The accept loop and per-request dispatch: the admin API (`/__mock/`) apart; for the rest
//! the latency setting, then faults, then the endpoint, then recording.

use std::io;
use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::body::{Ending, MockBody, Tap, TappedBody};
use crate::endpoints::{self, Ctx, download, status_response};
use crate::fault::{Endpoint, Fault};
use crate::record::RecordedRequest;
use crate::state::State;

/// The error that makes hyper close a connection without answering.
#[derive(Debug)]
pub(crate) struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("injected fault: connection dropped")
    }
}

impl std::error::Error for DropConnection {}

/// Accepts connections until `shutdown` turns true; one task per connection.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    mut shutdown: watch::Receiver<bool>,
) {
    {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = shutdown.wait_for(|stop| *stop) => return,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    if is_transient(&e) {
                        continue;
                    }
                    // Out of file descriptors and the like: back off instead of spinning.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let state = state.clone();
            let mut conn_shutdown = shutdown.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| handle(state.clone(), req));
                let conn = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service);
                tokio::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => {}
                    _ = conn_shutdown.wait_for(|stop| *stop) => {}
                }
            });
        }
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<MockBody>, DropConnection> {
    if req.uri().path().starts_with(crate::admin::PREFIX) {
        return Ok(crate::admin::handle(&state, req).await);
    }
    let latency = state.settings().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let (parts, body) = req.into_parts();
    let endpoint = Endpoint::from_path(parts.uri.path());
    let tap = Arc::new(Mutex::new(Tap::default()));
    let mut body = TappedBody::new(body, tap.clone());
    let fault = endpoint.and_then(|e| state.lock().faults.take(e));
    let mut ctx = Ctx {
        state: state.clone(),
        parts,
        ending: Ending::Complete,
        stall: None,
        expires_in: None,
    };
    let outcome: Result<Response<MockBody>, DropConnection> = match fault {
        Some(Fault::DropBeforeBody { .. }) => Err(DropConnection),
        Some(Fault::DropMidRequest { after_bytes, .. }) => {
            let mut seen = 0u64;
            while seen < after_bytes {
                match body.chunk().await {
                    Some(Ok(c)) => seen += c.len() as u64,
                    _ => break,
                }
            }
            Err(DropConnection)
        }
        Some(Fault::Errcode { code, .. }) => {
            body.drain(crate::DRAIN_LIMIT).await;
            Ok(endpoints::error_response(&state, code))
        }
        Some(Fault::ErrorBody {
            code,
            content_type,
            error_code_header,
            ..
        }) => {
            body.drain(crate::DRAIN_LIMIT).await;
            Ok(endpoints::hostile_error_response(
                code,
                content_type.as_deref(),
                error_code_header,
            ))
        }
        Some(Fault::EchoUrl { status, .. }) => {
            body.drain(crate::DRAIN_LIMIT).await;
            let html = format!(
                "<html><head><title>{status} Bad Gateway</title></head><body><h1>{status}</h1>\
                 <p>The upstream server failed to answer <code>{} {}</code></p></body></html>",
                ctx.parts.method, ctx.parts.uri
            );
            let mut r = endpoints::json_response(html, "text/html; charset=utf-8");
            *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            Ok(r)
        }
        Some(Fault::HttpStatus {
            status, body: html, ..
        }) => {
            body.drain(crate::DRAIN_LIMIT).await;
            let mut r = endpoints::json_response(html, "text/html; charset=utf-8");
            *r.status_mut() =
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Ok(r)
        }
        other => {
            match other {
                Some(Fault::Delay { delay, .. }) => tokio::time::sleep(delay).await,
                Some(Fault::DropMidBody { after_bytes, .. }) => {
                    ctx.ending = Ending::ErrorAfter(after_bytes)
                }
                Some(Fault::TruncateBody { after_bytes, .. }) => {
                    ctx.ending = Ending::TruncateAfter(after_bytes)
                }
                Some(Fault::Stall {
                    after_bytes, pause, ..
                }) => ctx.stall = Some((after_bytes, pause)),
                Some(Fault::ExpiresIn { secs, .. }) => ctx.expires_in = Some(secs),
                _ => {}
            }
            Ok(dispatch(&ctx, endpoint, body).await)
        }
    };
    let (body_len, body_md5) = {
        let tap = tap.lock().unwrap_or_else(|e| e.into_inner());
        (tap.len, tap.md5_hex())
    };
    let (status, errcode, response_len) = match &outcome {
        Ok(r) => (
            r.status().as_u16(),
            r.extensions().get::<endpoints::Errcode>().map(|e| e.0),
            r.headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok()),
        ),
        Err(_) => (0, None, None),
    };
    let record = RecordedRequest {
        endpoint,
        method: ctx.parts.method.clone(),
        path: ctx.parts.uri.path().to_owned(),
        query: ctx.parts.uri.query().map(str::to_owned),
        headers: own_headers(&ctx.parts.headers),
        body_len,
        body_md5,
        status,
        errcode,
        response_len,
        fetched_for_job: None,
    };
    if let Some(hook) = &state.config.on_request {
        hook(&record);
    }
    state.record(record);
    outcome
}

async fn dispatch(
    ctx: &Ctx,
    endpoint: Option<Endpoint>,
    mut body: TappedBody,
) -> Response<MockBody> {
    let Some(endpoint) = endpoint else {
        body.drain(crate::DRAIN_LIMIT).await;
        if ctx.parts.uri.path().starts_with("/cgi-bin/") {
            return out_of_scope(ctx);
        }
        return status_response(StatusCode::NOT_FOUND);
    };
    let path = ctx.parts.uri.path();
    let resp = match endpoint {
        Endpoint::Upload => return endpoints::upload::handle(ctx, body).await,
        Endpoint::UploadImg => return endpoints::uploadimg::handle(ctx, body).await,
        Endpoint::UploadByUrl => return endpoints::upload_by_url::handle(ctx, body).await,
        Endpoint::GetUploadByUrlResult => {
            return endpoints::job_result::handle(ctx, body).await;
        }
        Endpoint::GetToken => endpoints::gettoken::handle(ctx),
        Endpoint::Get => download::media_get(ctx, false),
        Endpoint::GetJssdk => download::media_get(ctx, true),
        Endpoint::Image => {
            let key = path.strip_prefix(crate::IMAGE_PREFIX).unwrap_or("");
            let file = ctx.state.lock().store.image(key).cloned();
            download::plain_file(ctx, file)
        }
        Endpoint::ServedFile => {
            let key = path.strip_prefix(crate::FILE_PREFIX).unwrap_or("");
            let file = ctx.state.lock().served.get(key).cloned();
            if let Some(gate) = file.as_ref().and_then(|f| f.gate.as_ref()) {
                // Held until the test opens the gate (or the emulator shuts down, which drops
                // this connection's task). The sender lives in the state: never closed here.
                let _ = gate.subscribe().wait_for(|open| *open).await;
            }
            download::plain_file(ctx, file)
        }
    };
    body.drain(crate::DRAIN_LIMIT).await;
    resp
}

/// A WeCom API the emulator does not implement (`/cgi-bin/message/send`, …): WeCom's JSON
/// error shape, never an empty 404, so a JSON client reads a typed error. The token is checked
/// first as on every business call (41001 / 40014 / 42001); a valid one gets 48002 ("api
/// forbidden").
fn out_of_scope(ctx: &Ctx) -> Response<MockBody> {
    match ctx.app() {
        Err(resp) => *resp,
        Ok(_) => ctx.error(48002),
    }
}

/// A copy of the headers that owns its bytes. hyper parses header values as slices of the
/// connection's read buffer, which also held the request body: a plain clone kept in the log
/// would pin a whole buffer (up to hundreds of KB) per logged request.
fn own_headers(headers: &http::HeaderMap) -> http::HeaderMap {
    let mut out = http::HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let mut copy = http::HeaderValue::from_bytes(value.as_bytes())
            .unwrap_or_else(|_| http::HeaderValue::from_static(""));
        copy.set_sensitive(value.is_sensitive());
        out.append(name.clone(), copy);
    }
    out
}
