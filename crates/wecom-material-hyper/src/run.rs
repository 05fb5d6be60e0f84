//! Any core [`Task`] driven over hyper: the async loop is the host's
//! ([`Running::run`](wecom_material_host::Running::run): each lane's step a future, so that
//! the ranges of a download run at once on the caller's task; sleeps and wake-ups); this
//! runs one exchange step with hyper and tokio. No protocol decision is made here.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::Mutex;
use tokio::time::sleep;
use wecom_material_core::task::chunked::{ChunkedBody, Chunks};
use wecom_material_core::task::{Event, Exchange, Task, Timeouts};
use wecom_material_core::{Error, Transfer, TransportError};
use wecom_material_core::{body::Body, error::with_causes, secret::RedactedUri};
use wecom_material_host::{FileSink, UploadBody};

use crate::client::Client;

const USER_AGENT: &str = concat!("wecom-material/", env!("CARGO_PKG_VERSION"), " (hyper)");

/// The body hyper sends: whole bytes, or an upload's frames that hyper polls itself (the
/// host's [`UploadBody`]: it owns its reader and the caller's controls, so it is `'static`
/// as hyper requires). hyper keeps the core's `Content-Length` header as it is (it never
/// switches a request with one to chunked encoding).
pub(crate) type OutBody = Either<Full<Bytes>, UploadBody<Reader>>;

/// An upload's one-shot reader, or a file opened for one attempt.
type Reader = Box<dyn AsyncRead + Send + Unpin>;

/// The hyper client of the crate.
pub(crate) type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    OutBody,
>;

/// Where an upload's payload comes from: a file, or a reader read once.
pub type Source = wecom_material_host::Source<Reader>;

/// Where a download's bytes go.
pub enum Sink<'a> {
    /// Nowhere (a JSON call).
    None,
    /// A stream: bytes come in order, from lane 0 only.
    Stream(&'a mut (dyn AsyncWrite + Send + Unpin)),
    /// A file, written at offsets from any lane (positioned writes to the page cache).
    File(FileSink<'a>),
}

/// How long an exchange may take: JSON calls have a deadline, media transfers an idle
/// timeout for every wait.
#[derive(Clone, Copy)]
enum Limit {
    Deadline(tokio::time::Instant),
    Idle(Duration),
}

async fn within<F: Future>(limit: Limit, what: &str, f: F) -> Result<F::Output, TransportError> {
    let at = match limit {
        Limit::Deadline(at) => at,
        Limit::Idle(idle) => tokio::time::Instant::now() + idle,
    };
    tokio::time::timeout_at(at, f)
        .await
        .map_err(|_| stalled(what))
}

fn stalled(what: &str) -> TransportError {
    TransportError::maybe_sent(format!("{what}: nothing moved in time"))
}

/// A response's body being read, each frame within the exchange's time limit.
struct Reply {
    body: Incoming,
    limit: Limit,
}

impl Chunks for Reply {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, TransportError> {
        match within(self.limit, "receiving the answer", self.body.frame()).await? {
            None => Ok(None),
            Some(Ok(frame)) => Ok(Some(frame.into_data().unwrap_or_default())),
            Some(Err(e)) => Err(TransportError::maybe_sent(with_causes(&e))),
        }
    }
}

/// A lane's response body, read as its steps ask.
type LaneIo = ChunkedBody<Reply>;

impl Client {
    /// Runs any core [`Task`] to its end over this client (its connection pool, token
    /// cache and wake-ups): the entry point for an operation the client has no method for,
    /// and what the conformance kit drives. `source` gives an upload's payload, `sink`
    /// takes a download's bytes; `transfer` reports progress and carries the cancel flag and
    /// the deadline (applied by the core's
    /// [`Controlled`](wecom_material_core::task::Controlled); the loop wakes for the deadline).
    /// Dropping the future cancels the task.
    pub async fn drive<T: Task>(
        &self,
        task: &mut T,
        source: Option<Source>,
        sink: Sink<'_>,
        transfer: &Transfer,
    ) -> Result<T::Output, Error> {
        // The lanes' steps share the sink and the source (only lane 0 streams or uploads).
        let (source, sink) = (&Mutex::new(source), &Mutex::new(sink));
        // Cancelled if this future is dropped before the task ended.
        let task = self.0.shared.start(task, transfer.clone());
        let step = |_, io, step| self.exchange(step, io, sink, source, transfer);
        task.run(step, |at| tokio::time::sleep_until(at.into()))
            .await
    }

    /// Runs one exchange step of a lane.
    async fn exchange(
        &self,
        step: Exchange,
        mut io: LaneIo,
        sink: &Mutex<Sink<'_>>,
        source: &Mutex<Option<Source>>,
        transfer: &Transfer,
    ) -> (LaneIo, Event) {
        let event = match step {
            Exchange::Send { request, timeouts } => {
                let limit = match timeouts {
                    Timeouts::Json => Limit::Deadline(
                        tokio::time::Instant::now() + self.0.shared.settings.json_timeout,
                    ),
                    Timeouts::Media => Limit::Idle(self.0.shared.settings.media_idle_timeout),
                };
                let sent = self.send(request, limit, source, transfer).await;
                io.receive(sent.map(|response| response.map(|body| Reply { body, limit })))
            }
            Exchange::ReadBody { limit } => io.read_whole(limit).await,
            Exchange::Stream { max, at } => {
                let write =
                    |chunk: Bytes| async move { sink.lock().await.write_at(at, &chunk).await };
                io.stream(max, write).await
            }
            Exchange::Write { at, bytes } => {
                Event::written(sink.lock().await.write_at(at, &bytes).await, bytes.len())
            }
            Exchange::FlushSink => Event::Flushed(sink.lock().await.flush().await.err()),
            Exchange::Store(command) => {
                let store = self.0.shared.store.as_deref();
                Event::from_async_store(store, command).await
            }
        };
        (io, event)
    }

    /// Sends one request and returns the head with its unread body.
    async fn send(
        &self,
        request: http::Request<Body>,
        limit: Limit,
        source: &Mutex<Option<Source>>,
        transfer: &Transfer,
    ) -> Result<http::Response<Incoming>, Event> {
        let (mut parts, body) = request.into_parts();
        let agent = http::HeaderValue::from_static(USER_AGENT);
        parts
            .headers
            .entry(http::header::USER_AGENT)
            .or_insert(agent);
        log::debug!("{} {}", parts.method, RedactedUri(&parts.uri));
        let client = &self.0.http;
        let failed = |e: hyper_util::client::legacy::Error| {
            let message = with_causes(&e);
            Event::from(match e.is_connect() {
                true => TransportError::not_sent(message),
                false => TransportError::maybe_sent(message),
            })
        };
        let whole =
            |bytes| http::Request::from_parts(parts.clone(), Either::Left(Full::new(bytes)));
        let request = match body {
            Body::Empty => whole(Bytes::new()),
            Body::Bytes(bytes) => whole(bytes),
            Body::Upload(upload) => {
                let local = |e| Event::Local(Error::io("reading the upload payload", e));
                let file = |file| Box::new(file) as Reader;
                let reader = source.lock().await.as_mut().map(|s| s.open(file));
                let reader = reader.transpose().map_err(local)?;
                let upload = UploadBody::new(upload, reader, transfer.clone());
                let (body, watch) = upload.map_err(Event::Local)?;
                let request = client.request(http::Request::from_parts(parts, Either::Right(body)));
                // The body moving counts as the exchange moving: idle means neither it nor
                // the answer did.
                let response = match limit {
                    Limit::Idle(idle) => watch.idle_bounded(idle, request, sleep).await,
                    Limit::Deadline(at) => tokio::time::timeout_at(at, request).await.ok(),
                };
                let response = response.ok_or_else(|| stalled("sending the upload"))?;
                if let Some(failure) = watch.take_failure() {
                    return Err(Event::Local(failure));
                }
                return response.map_err(failed);
            }
        };
        let response = within(limit, "waiting for the response", client.request(request));
        response.await?.map_err(failed)
    }
}

impl Sink<'_> {
    async fn write_at(&mut self, at: u64, bytes: &[u8]) -> io::Result<()> {
        match self {
            Sink::Stream(stream) => stream.write_all(bytes).await,
            Sink::File(file) => file.write_at(at, bytes),
            Sink::None => Err(io::Error::other("this call has no download sink")),
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Stream(stream) => stream.flush().await,
            Sink::File(file) => file.flush(),
            Sink::None => Ok(()),
        }
    }
}
