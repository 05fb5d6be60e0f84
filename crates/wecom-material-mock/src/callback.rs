//! Delivery of the encrypted `upload_media_job_finish` callback (SPEC §8) to
//! [`MockConfig::callback`](crate::MockConfig::callback) when a job ends.
//!
//! The event is built and encrypted with the client core's callback module
//! (`event_xml_upload_media_job_finish` + `build_event_request`), with a fresh nonce, the
//! emulator clock's time and 16 random bytes per attempt, and POSTed with a hyper client to a
//! **loopback** URL only. An attempt that gets no 200 within the target's timeout (refused,
//! reset, another status, too slow) is followed by another, up to `retries` more, as WeCom
//! does. Every attempt is recorded ([`CallbackDelivery`]).

use std::sync::Arc;

use bytes::Bytes;
use http::header::HOST;
use http::{StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use wecom_material_core::JobId;
use wecom_material_core::callback::{
    CallbackConfig, build_event_request, event_xml_upload_media_job_finish,
};

use crate::config::{CallbackTarget, JobFinished};
use crate::endpoints::upload_by_url::loopback_addr;
use crate::state::State;

/// One delivery attempt of a job-finished callback, as the emulator made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackDelivery {
    /// The job the event names.
    pub job_id: String,
    /// 1 for the first attempt, then 2, 3, …
    pub attempt: u32,
    /// How it went.
    pub outcome: DeliveryOutcome,
}

/// How a delivery attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The callback server answered with this HTTP status (200 ends the delivery).
    Status(u16),
    /// No answer within the target's timeout.
    TimedOut,
    /// The connection failed (refused, reset, …).
    Failed(String),
    /// Nothing was sent: the URL is not `http://` on a loopback host, or the key is not a
    /// valid `EncodingAESKey`. Not retried.
    Refused(String),
}

/// Starts delivering `job`'s callback on the current tokio runtime, if a target is set.
pub(crate) fn spawn_delivery(state: &Arc<State>, job: &JobFinished) {
    if state.rules().callback.is_none() {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(deliver(state.clone(), job.clone()));
}

async fn deliver(state: Arc<State>, job: JobFinished) {
    let Some(target) = state.rules().callback.clone() else {
        return;
    };
    let record = |attempt: u32, outcome: DeliveryOutcome| {
        state.record_delivery(CallbackDelivery {
            job_id: job.job_id.clone(),
            attempt,
            outcome,
        })
    };
    let (uri, config) = match prepare(&target) {
        Ok(ready) => ready,
        Err(reason) => return record(1, DeliveryOutcome::Refused(reason)),
    };
    for attempt in 1..=target.retries.saturating_add(1) {
        let now = state.config.clock.now_unix();
        let xml = event_xml_upload_media_job_finish(&job.corp_id, now, &JobId::new(&job.job_id));
        let nonce = (state.random_u64() % 10_000_000_000).to_string();
        let random16 = {
            let mut r = [0u8; 16];
            r[..8].copy_from_slice(&state.random_u64().to_le_bytes());
            r[8..].copy_from_slice(&state.random_u64().to_le_bytes());
            r
        };
        let request = build_event_request(&config, &uri, &now.to_string(), &nonce, random16, &xml);
        let outcome = match request {
            // An event of over 4 GiB cannot be sealed: not one the emulator makes.
            Err(error) => DeliveryOutcome::Failed(error.to_string()),
            Ok(request) => match tokio::time::timeout(target.timeout, post(request)).await {
                Err(_) => DeliveryOutcome::TimedOut,
                Ok(Err(message)) => DeliveryOutcome::Failed(message),
                Ok(Ok(status)) => DeliveryOutcome::Status(status.as_u16()),
            },
        };
        let delivered = outcome == DeliveryOutcome::Status(200);
        record(attempt, outcome);
        if delivered {
            return;
        }
    }
}

/// Why a target can never be delivered to (a URL that is not loopback `http://`, a key that
/// is no `EncodingAESKey`), checked when it is set through the admin API or a flag.
pub(crate) fn check_target(target: &CallbackTarget) -> Result<(), String> {
    prepare(target).map(|_| ())
}

/// The checked URL and the crypto configuration, or why nothing may be sent.
fn prepare(target: &CallbackTarget) -> Result<(Uri, CallbackConfig), String> {
    let uri: Uri = target
        .url
        .parse()
        .map_err(|_| "callback URL does not parse".to_owned())?;
    if uri.scheme_str() != Some("http") || loopback_addr(&uri).is_none() {
        return Err("callback URL is not http:// on a loopback host".into());
    }
    let config = CallbackConfig::new(
        target.token.clone(),
        &target.encoding_aes_key,
        target.receive_id.clone(),
    )
    // The error names the problem, never the key.
    .map_err(|e| e.to_string())?;
    Ok((uri, config))
}

/// One POST; the status of the answer (its body is read and dropped).
async fn post(request: http::Request<Bytes>) -> Result<StatusCode, String> {
    let addr = loopback_addr(request.uri()).ok_or("not loopback")?;
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let (mut parts, body) = request.into_parts();
    let host = parts
        .uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_else(|| addr.to_string());
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    parts.uri = path.parse().map_err(|_| "bad path".to_owned())?;
    parts
        .headers
        .insert(HOST, host.parse().map_err(|_| "bad host".to_owned())?);
    let request = http::Request::from_parts(parts, Full::new(body));
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("send: {e}"))?;
    let status = response.status();
    let _ = response.into_body().collect().await;
    Ok(status)
}
