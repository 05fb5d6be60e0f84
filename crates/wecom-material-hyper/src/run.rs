//! The one loop that drives any core [`Task`] over hyper: it sends what the task says, reads
//! or streams bodies within the limits the task gives, sleeps, wakes, and reports back. No
//! protocol decision is made here.

use std::io;
use std::pin::pin;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body_util::channel::{Channel, Sender};
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Incoming;
use tokio::fs::File;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWrite, AsyncWriteExt};
use wecom_material_core::task::{Action, Event, Lane, PayloadMeter, Task};
use wecom_material_core::{Body, DecodeError, Error, Payload, RedactedUri, Transfer};
use wecom_material_core::{TransportError, UploadBody};

use crate::client::{Client, Inner};

/// Frames of an upload payload: big enough for throughput, small enough that a few of them
/// in flight keep memory constant.
const FRAME: usize = 512 * 1024;
/// Frames queued between the task reading the payload and hyper writing the socket.
const QUEUED_FRAMES: usize = 4;
const USER_AGENT: &str = concat!("wecom-material/", env!("CARGO_PKG_VERSION"), " (hyper)");

/// The body hyper sends: whole bytes, or the frames the task reading an upload's payload
/// feeds through a channel. hyper keeps the core's `Content-Length` header as it is (it never
/// switches a request with one to chunked encoding).
pub(crate) type OutBody = Either<Full<Bytes>, Channel<Bytes, io::Error>>;

/// The hyper client of the crate.
pub(crate) type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    OutBody,
>;

/// Where an upload's external payload comes from.
pub(crate) enum Source<'a> {
    /// A file, rewound for each attempt.
    File(File),
    /// A reader that can be read once.
    Reader(Option<Box<dyn AsyncRead + Send + Unpin + 'a>>),
}

/// A download's sink.
pub(crate) type Sink<'a> = &'a mut (dyn AsyncWrite + Send + Unpin);

/// The task's I/O ends: an upload source with its meter (`.0`) and a download sink (`.1`).
#[derive(Default)]
pub(crate) struct Ends<'a>(
    pub(crate) Option<(Source<'a>, PayloadMeter)>,
    pub(crate) Option<Sink<'a>>,
);

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
    let late = |_| TransportError::maybe_sent(format!("{what}: nothing moved in time"));
    tokio::time::timeout_at(at, f).await.map_err(late)
}

/// A task being driven. Dropped before it ended (the caller's future was dropped), it is
/// cancelled, so that a token refresh it held is handed back at once.
struct Running<'s, T: Task> {
    task: T,
    shared: &'s Inner,
    over: bool,
}

impl<T: Task> Drop for Running<'_, T> {
    fn drop(&mut self) {
        if !self.over {
            self.task.cancel(&mut self.shared.lock());
            self.shared.wake.notify_waiters();
        }
    }
}

impl Client {
    /// Runs `task` to its end.
    pub(crate) async fn drive<T: Task>(
        &self,
        task: T,
        mut ends: Ends<'_>,
        transfer: &Transfer<'_>,
    ) -> Result<T::Output, Error> {
        let shared = &*self.0;
        let mut run = Running {
            task,
            shared,
            over: false,
        };
        let mut body: Option<(u16, Incoming, Limit)> = None;
        let mut pending = Bytes::new();
        loop {
            let (action, woken) = {
                let mut state = shared.lock();
                if transfer.is_cancelled() {
                    run.task.cancel(&mut state);
                }
                let action = run.task.poll(Instant::now(), &mut state);
                // Enabled while the state is still locked: every wake-up comes after it.
                let woken = action.wakeable_until().map(|_| {
                    let mut woken = Box::pin(shared.wake.notified());
                    woken.as_mut().enable();
                    woken
                });
                (action, woken)
            };
            let event = match action {
                Action::Done(result) => {
                    run.over = true;
                    return result;
                }
                Action::Wait { until, .. } => {
                    let until = tokio::time::Instant::from_std(until);
                    match woken {
                        Some(woken) => drop(tokio::time::timeout_at(until, woken).await),
                        None => tokio::time::sleep_until(until).await,
                    }
                    continue;
                }
                Action::WakeOthers => {
                    shared.wake.notify_waiters();
                    continue;
                }
                Action::Store(c) => Event::from_async_store(shared.store.as_deref(), c).await,
                Action::Send { request, lane } => {
                    let limit = match lane {
                        Lane::Json => Limit::Deadline(
                            tokio::time::Instant::now() + self.0.settings.json_timeout,
                        ),
                        Lane::Media => Limit::Idle(self.0.settings.media_idle_timeout),
                    };
                    pending.clear();
                    match self.send(request, limit, &mut ends, transfer).await {
                        Ok(response) => {
                            let (head, incoming) = response.into_parts();
                            body = Some((head.status.as_u16(), incoming, limit));
                            Event::Head(head)
                        }
                        Err(event) => event,
                    }
                }
                Action::ReadBody { limit } => read_whole(body.take(), limit).await,
                Action::Stream { max } => {
                    let sink = ends.1.as_deref_mut();
                    stream_once(body.as_mut(), &mut pending, max, sink).await
                }
                Action::Write(bytes) => match ends.1.as_deref_mut() {
                    Some(sink) => written(sink.write_all(&bytes).await, bytes.len()),
                    None => Event::Local(Error::io("writing", io::ErrorKind::NotFound.into())),
                },
                Action::FlushSink => Event::Flushed(match ends.1.as_deref_mut() {
                    Some(sink) => sink.flush().await.err(),
                    None => None,
                }),
            };
            let written = matches!(event, Event::Written(_));
            run.task.on_event(Instant::now(), &mut shared.lock(), event);
            if written && let Some(p) = run.task.progress() {
                transfer.report(p.done, p.total);
            }
        }
    }

    /// Sends one request and returns the head with its unread body.
    async fn send(
        &self,
        request: http::Request<Body>,
        limit: Limit,
        ends: &mut Ends<'_>,
        transfer: &Transfer<'_>,
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
            let message = error_chain(&e);
            match e.is_connect() {
                true => Event::TransportFailed(TransportError::not_sent(message)),
                false => Event::TransportFailed(TransportError::maybe_sent(message)),
            }
        };
        let whole =
            |bytes| http::Request::from_parts(parts.clone(), Either::Left(Full::new(bytes)));
        let upload = match body {
            Body::Empty => whole(Bytes::new()),
            Body::Bytes(bytes) => whole(bytes),
            Body::Upload(upload) => {
                let (tx, rx) = Channel::new(QUEUED_FRAMES);
                let request = http::Request::from_parts(parts, Either::Right(rx));
                let mut response = pin!(client.request(request));
                let pump = pump(tx, upload, ends.0.as_mut(), transfer, limit);
                // The head may come before the whole body went out (an early error answer).
                let early = tokio::select! {
                    response = &mut response => Some(response),
                    // A local failure returns here: dropping the request aborts the connection.
                    outcome = pump => { outcome?; None }
                };
                let response = match early {
                    Some(response) => response,
                    None => within(limit, "waiting for the response", response)
                        .await
                        .map_err(Event::TransportFailed)?,
                };
                return response.map_err(failed);
            }
        };
        within(limit, "waiting for the response", client.request(upload))
            .await
            .map_err(Event::TransportFailed)?
            .map_err(failed)
    }
}

/// Feeds `head ‖ payload ‖ tail` into the body channel: exactly the announced payload length
/// (the core's meter decides), progress reported, stopped when cancelled.
async fn pump(
    tx: Sender<Bytes, io::Error>,
    upload: UploadBody,
    source: Option<&mut (Source<'_>, PayloadMeter)>,
    transfer: &Transfer<'_>,
    limit: Limit,
) -> Result<(), Event> {
    let mut out = Outlet {
        tx,
        transfer,
        limit,
    };
    let local = |e| Event::Local(Error::io("reading the upload payload", e));
    if !out.push(upload.head.clone()).await? {
        return Ok(());
    }
    match (&upload.payload, source) {
        (Payload::Bytes(bytes), _) => {
            // Slices share the caller's buffer: nothing is copied.
            for at in (0..bytes.len()).step_by(FRAME) {
                let end = (at + FRAME).min(bytes.len());
                if !out.push(bytes.slice(at..end)).await? {
                    return Ok(());
                }
                transfer.report(end as u64, Some(bytes.len() as u64));
            }
        }
        (Payload::External { .. }, Some((source, meter))) => {
            let mut meter = meter.for_attempt(&upload);
            let mut reader: Box<dyn AsyncRead + Send + Unpin + '_> = match source {
                Source::File(file) => {
                    file.seek(io::SeekFrom::Start(0)).await.map_err(local)?;
                    Box::new(file)
                }
                Source::Reader(reader) => reader.take().ok_or_else(|| {
                    local(io::Error::other("a one-shot payload was already sent"))
                })?,
            };
            loop {
                let want = meter.want(FRAME);
                if want == 0 {
                    break;
                }
                let mut buf = BytesMut::with_capacity(want);
                let read = (&mut reader).take(want as u64).read_buf(&mut buf).await;
                read.map_err(local)?;
                meter.on_chunk(&buf).map_err(Event::Local)?;
                if !buf.is_empty() && !out.push(buf.freeze()).await? {
                    return Ok(());
                }
                let p = meter.progress();
                transfer.report(p.done, p.total);
            }
        }
        (Payload::External { .. }, None) => {
            return Err(local(io::Error::other("no source for an external payload")));
        }
    }
    out.push(upload.tail.clone()).await?;
    Ok(())
}

/// The sending end of the body channel.
struct Outlet<'t, 'a> {
    tx: Sender<Bytes, io::Error>,
    transfer: &'t Transfer<'a>,
    limit: Limit,
}

impl Outlet<'_, '_> {
    /// Queues one frame. `Ok(false)`: hyper dropped the body (the connection failed or the
    /// server answered early); the response future tells what happened.
    async fn push(&mut self, bytes: Bytes) -> Result<bool, Event> {
        if self.transfer.is_cancelled() {
            return Err(Event::Local(Error::Cancelled { bytes_written: 0 }));
        }
        let sent = within(self.limit, "sending the upload", self.tx.send_data(bytes)).await;
        Ok(sent.map_err(Event::TransportFailed)?.is_ok())
    }
}

/// Reads the rest of a body, at most `limit` bytes.
async fn read_whole(body: Option<(u16, Incoming, Limit)>, limit: usize) -> Event {
    let Some((status, body, deadline)) = body else {
        return Event::BodyEnd;
    };
    let collected = within(
        deadline,
        "reading the answer",
        Limited::new(body, limit).collect(),
    );
    match collected.await {
        Err(error) => Event::TransportFailed(error),
        Ok(Ok(collected)) => Event::Body(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            let message = format!("answer larger than {limit} bytes");
            Event::Local(DecodeError::new(status, message, b"").into())
        }
        Ok(Err(e)) => Event::TransportFailed(TransportError::maybe_sent(match e.downcast_ref() {
            Some(e) => error_chain::<hyper::Error>(e),
            None => e.to_string(),
        })),
    }
}

/// Moves at most `max` bytes of the body into the sink.
async fn stream_once<'w>(
    body: Option<&mut (u16, Incoming, Limit)>,
    pending: &mut Bytes,
    max: u64,
    sink: Option<&mut (dyn AsyncWrite + Send + Unpin + 'w)>,
) -> Event {
    let (Some((_, body, limit)), Some(sink)) = (body, sink) else {
        return Event::BodyEnd;
    };
    while pending.is_empty() {
        match within(*limit, "downloading", body.frame()).await {
            Err(error) => return Event::TransportFailed(error),
            Ok(None) => return Event::BodyEnd,
            Ok(Some(Err(e))) => {
                return Event::TransportFailed(TransportError::maybe_sent(error_chain(&e)));
            }
            Ok(Some(Ok(frame))) => *pending = frame.into_data().unwrap_or_default(),
        }
    }
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    let chunk = pending.split_to(pending.len().min(max));
    written(sink.write_all(&chunk).await, chunk.len())
}

/// The event for bytes written to the sink.
fn written(result: io::Result<()>, n: usize) -> Event {
    match result {
        Ok(()) => Event::Written(n as u64),
        Err(e) => Event::Local(Error::io("writing the download", e)),
    }
}

/// An error with its causes, which never hold the URI (and so never the token).
fn error_chain<E: std::error::Error + 'static>(error: &E) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
