//! `POST /cgi-bin/media/upload_by_url?access_token=T` (SPEC §6) and the job that fetches the
//! URL.
//!
//! Validation, answered at once: token; a JSON object (else 47001 data format error);
//! `scene` = 1, `filename` 1..=128 bytes, `url` ≤ 1024 bytes, `md5` 32 lower-case hex digits
//! (else 40058 invalid parameter); `type` `video` or `file` (else 40004); a `video` named other
//! than `.mp4` → 40005; `url` must be `https://…` or `http://` on a loopback host
//! (`127.0.0.0/8`, `::1`, `localhost`), else 830001.
//!
//! Then the job (status 1) fetches the URL **itself, loopback only**, in Range chunks of
//! `fetch_chunk_bytes` with a hyper client. It never touches the network beyond loopback: an
//! `https` URL or a non-loopback host fails the job with 830003 (the emulator has no TLS and
//! refuses to reach out). A 200 answer to a Range request (no Range support) → 830001; refused
//! connection, timeout, other statuses, a `Content-Range` that does not start where asked or a
//! short chunk → 830003; a total over `upload_by_url_max_bytes` → 45001 (checked on the first
//! chunk, before reading the rest); MD5 mismatch → 301019. Success stores the file as new media
//! (status 2), whose `media/get` then follows the 20 MB Range rule. When the job ends, the
//! job-finished callback is delivered if one is configured (see `crate::callback`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_RANGE, HOST, RANGE};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use md5::{Digest, Md5};

use super::Ctx;
use crate::body::{MockBody, TappedBody, hex};
use crate::config::MediaKind;
use crate::state::{Job, JobStatus, State, StoredMedia};

pub(crate) async fn handle(ctx: &Ctx, mut body: TappedBody) -> Response<MockBody> {
    let app = match ctx.app() {
        Ok(app) => app,
        Err(resp) => {
            body.drain(super::super::DRAIN_LIMIT).await;
            return *resp;
        }
    };
    let Ok(raw) = body.collect(64 * 1024).await else {
        body.drain(super::super::DRAIN_LIMIT).await;
        return ctx.error(47001);
    };
    let Ok(serde_json::Value::Object(req)) = serde_json::from_slice::<serde_json::Value>(&raw)
    else {
        return ctx.error(47001);
    };
    let text = |k: &str| req.get(k).and_then(|v| v.as_str()).unwrap_or("");
    if req.get("scene").and_then(|v| v.as_i64()) != Some(1) {
        return ctx.error(40058);
    }
    let kind = match text("type") {
        "video" => MediaKind::Video,
        "file" => MediaKind::File,
        _ => return ctx.error(40004),
    };
    let filename = text("filename");
    if filename.is_empty() || filename.len() > 128 {
        return ctx.error(40058);
    }
    if !kind.accepts_file_name(filename) {
        return ctx.error(40005);
    }
    let md5 = text("md5");
    if md5.len() != 32 || !md5.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return ctx.error(40058);
    }
    let url = text("url");
    if url.is_empty() || url.len() > 1024 {
        return ctx.error(40058);
    }
    let Ok(uri) = url.parse::<Uri>() else {
        return ctx.error(830001);
    };
    let acceptable = match uri.scheme_str() {
        Some("https") => uri.host().is_some(),
        Some("http") => loopback_addr(&uri).is_some(),
        _ => false,
    };
    if !acceptable {
        return ctx.error(830001);
    }
    let job_id = format!("jobid_{}", ctx.state.random_id(43));
    ctx.state.lock().jobs.insert(
        job_id.clone(),
        Job {
            corp_id: ctx.corp_id(app),
            status: JobStatus::Processing,
        },
    );
    let job = FetchJob {
        generation: ctx.state.generation(),
        corp_id: ctx.corp_id(app),
        state: ctx.state.clone(),
        job_id: job_id.clone(),
        kind,
        filename: filename.to_owned(),
        uri,
        md5: md5.to_owned(),
    };
    tokio::spawn(job.run());
    ctx.ok(serde_json::json!({ "jobid": job_id }))
}

/// The socket address of an `http` URL on a loopback host, if it is one.
pub(crate) fn loopback_addr(uri: &Uri) -> Option<SocketAddr> {
    let host = uri.host()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.parse().ok()?
    };
    ip.is_loopback()
        .then(|| SocketAddr::new(ip, uri.port_u16().unwrap_or(80)))
}

struct FetchJob {
    state: Arc<State>,
    /// The reset generation the job started in: after a reset it stores nothing.
    generation: u64,
    corp_id: String,
    job_id: String,
    kind: MediaKind,
    filename: String,
    uri: Uri,
    md5: String,
}

impl FetchJob {
    async fn run(self) {
        let clock = &self.state.config.clock;
        let start = clock.now() + self.state.config.fetch_delay;
        while clock.now() < start {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let status = match self.fetch().await {
            Err(code) => JobStatus::Failed { errcode: code },
            Ok(bytes) if hex(&Md5::digest(&bytes)) != self.md5 => {
                JobStatus::Failed { errcode: 301019 }
            }
            Ok(_) if self.state.generation() != self.generation => return,
            Ok(bytes) => {
                let created_at = self.state.config.clock.now_unix();
                let media_id = self.state.store_media(StoredMedia {
                    kind: self.kind,
                    bytes,
                    content_type: super::upload::content_type_for(&self.filename, None),
                    filename: self.filename.clone(),
                    created_at,
                    corp_id: Some(self.corp_id.clone()),
                });
                JobStatus::Finished {
                    media_id,
                    created_at,
                }
            }
        };
        if let Some(finished) = self.state.finish_job(&self.job_id, status) {
            crate::callback::spawn_delivery(&self.state, &finished);
        }
    }

    /// The whole file, or the job's failure code.
    async fn fetch(&self) -> Result<Bytes, i64> {
        if self.uri.scheme_str() != Some("http") {
            return Err(830003);
        }
        let addr = loopback_addr(&self.uri).ok_or(830003)?;
        let chunk = self.state.config.fetch_chunk_bytes.max(1);
        let max = self.state.rules().limits.upload_by_url_max_bytes;
        let timeout = self.state.config.fetch_timeout;
        let mut buf = BytesMut::new();
        let mut total: Option<u64> = None;
        loop {
            let start = buf.len() as u64;
            if total.is_some_and(|t| start >= t) {
                return Ok(buf.freeze());
            }
            let end = start + chunk - 1;
            let (got_total, data) =
                tokio::time::timeout(timeout, self.fetch_range(addr, start, end))
                    .await
                    .map_err(|_| 830003)??;
            if got_total > max {
                return Err(45001);
            }
            if total.is_none() {
                buf.reserve(usize::try_from(got_total).map_err(|_| 45001)?);
            } else if total != Some(got_total) {
                return Err(830003);
            }
            total = Some(got_total);
            buf.extend_from_slice(&data);
        }
    }

    /// One `Range: bytes=start-end` request: `(total, bytes)`.
    async fn fetch_range(
        &self,
        addr: SocketAddr,
        start: u64,
        end: u64,
    ) -> Result<(u64, Bytes), i64> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|_| 830003)?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| 830003)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let path = self.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let host = self
            .uri
            .authority()
            .map(|a| a.as_str())
            .unwrap_or("127.0.0.1");
        let range = format!("bytes={start}-{end}");
        let req = Request::get(path)
            .header(HOST, host)
            .header(RANGE, &range)
            .body(Empty::<Bytes>::new())
            .map_err(|_| 830003)?;
        let resp = sender.send_request(req).await;
        let answered = resp.as_ref().ok();
        let length = answered.and_then(|r| r.headers().get(http::header::CONTENT_LENGTH));
        let length = length.and_then(|v| v.to_str().ok()?.parse().ok());
        self.record_fetch(&range, answered.map_or(0, |r| r.status().as_u16()), length);
        let resp = resp.map_err(|_| 830003)?;
        match resp.status() {
            StatusCode::OK => return Err(830001),
            StatusCode::PARTIAL_CONTENT => {}
            _ => return Err(830003),
        }
        let (first, last, total) = resp
            .headers()
            .get(CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_content_range)
            .ok_or(830003)?;
        if first != start || last < first || last >= total {
            return Err(830003);
        }
        let total_max = self.state.rules().limits.upload_by_url_max_bytes;
        if total > total_max {
            return Err(45001);
        }
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|_| 830003)?
            .to_bytes();
        if body.len() as u64 != last - first + 1 {
            return Err(830003);
        }
        Ok((total, body))
    }
}

impl FetchJob {
    /// Puts the Range GET the job made into the request log (see
    /// [`RecordedRequest::fetched_for_job`](crate::RecordedRequest::fetched_for_job)).
    fn record_fetch(&self, range: &str, status: u16, response_len: Option<u64>) {
        let mut headers = http::HeaderMap::new();
        if let Ok(value) = http::HeaderValue::from_str(range) {
            headers.insert(RANGE, value);
        }
        let (scheme, authority) = (
            self.uri.scheme_str().unwrap_or("http"),
            self.uri.authority().map_or("", |a| a.as_str()),
        );
        let record = crate::RecordedRequest {
            endpoint: None,
            method: http::Method::GET,
            path: format!("{scheme}://{authority}{}", self.uri.path()),
            query: self.uri.query().map(str::to_owned),
            headers,
            body_len: 0,
            body_md5: hex(&Md5::digest(b"")),
            status,
            errcode: None,
            response_len,
            fetched_for_job: Some(self.job_id.clone()),
        };
        self.state.record(record.clone());
        if let Some(hook) = &self.state.config.on_request {
            hook(&record);
        }
    }
}

/// `bytes a-b/total`.
fn parse_content_range(v: &str) -> Option<(u64, u64, u64)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    Some((
        a.trim().parse().ok()?,
        b.trim().parse().ok()?,
        total.trim().parse().ok()?,
    ))
}
