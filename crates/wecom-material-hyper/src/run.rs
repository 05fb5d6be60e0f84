//! The one loop that drives any core [`Task`] over hyper: it runs the exchange steps the task
//! hands out — each lane's step as a future, so that the ranges of a download run at once on
//! the caller's task — sleeps, wakes, and reports back. No protocol decision is made here.

use std::collections::HashMap;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use http_body_util::channel::{Channel, Sender};
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Incoming;
use tokio::fs::File;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Mutex, Notify};
use wecom_material_core::task::Timeouts;
use wecom_material_core::task::UploadFrames;
use wecom_material_core::task::{Action, Controlled, Event, Exchange, LaneId, NextFrame, Task};
use wecom_material_core::{DecodeError, Error, Transfer, TransportError};
use wecom_material_core::{body::Body, error::with_causes, secret::RedactedUri};
use wecom_material_host::FileSink;

use crate::client::Client;

/// Frames (at most the core's `FRAME` each) queued between the task reading the payload and hyper writing the socket.
const QUEUED_FRAMES: usize = 4;
const USER_AGENT: &str = concat!("wecom-material/", env!("CARGO_PKG_VERSION"), " (hyper)");

/// The body hyper sends: whole bytes, or the frames of an upload fed through a channel.
/// hyper keeps the core's `Content-Length` header as it is (it never switches a request with
/// one to chunked encoding).
///
/// Why a channel and not a body type over [`UploadFrames`] that hyper polls itself: hyper
/// takes only `'static` request bodies (`B: Body + 'static` on the legacy client and on
/// `client::conn`, the body being polled by the connection's spawned task), while the frames
/// borrow the caller's [`Transfer`] (progress callback, cancel flag) and a one-shot upload
/// reads a caller's borrowed reader (`Source::Reader`). Both borrows come from the public
/// API and `unsafe` is forbidden, so the frames are pulled on the caller's future ([`pump`])
/// and only owned `Bytes` cross to hyper.
pub(crate) type OutBody = Either<Full<Bytes>, Channel<Bytes, io::Error>>;

/// The hyper client of the crate.
pub(crate) type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    OutBody,
>;

/// Where an upload's external payload comes from.
pub enum Source<'a> {
    /// A file, rewound for each attempt.
    File(File),
    /// A reader that can be read once.
    Reader(Option<Box<dyn AsyncRead + Send + Unpin + 'a>>),
}

/// Where a download's bytes go.
pub enum Sink<'a> {
    /// Nowhere (a JSON call).
    None,
    /// A stream: bytes come in order, from lane 0 only.
    Stream(Mutex<&'a mut (dyn AsyncWrite + Send + Unpin)>),
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
    let late = |_| TransportError::maybe_sent(format!("{what}: nothing moved in time"));
    tokio::time::timeout_at(at, f).await.map_err(late)
}

/// A lane's response body (with its time limit) and the part of a frame not yet written.
#[derive(Default)]
struct LaneIo {
    body: Option<(u16, Incoming, Limit)>,
    pending: Bytes,
}

/// Wakes a loop waiting on its notification (a permit is kept if it is not waiting yet).
struct WakeLoop(Arc<Notify>);

impl Wake for WakeLoop {
    fn wake(self: Arc<Self>) {
        self.0.notify_one();
    }
}

/// A task being driven. Dropped before it ended (the caller's future was dropped), it is
/// cancelled, so that a token refresh it held is handed back at once.
struct Running<'s, T: Task> {
    task: Controlled<'s, T>,
    client: &'s Client,
    over: bool,
}

impl<T: Task> Drop for Running<'_, T> {
    fn drop(&mut self) {
        if !self.over {
            self.task.cancel(&mut self.client.0.shared.lock());
            self.client.0.shared.wake_all();
        }
    }
}

type Step<'f> = Pin<Box<dyn Future<Output = (LaneId, LaneIo, Event)> + Send + 'f>>;

impl Client {
    /// Runs any core [`Task`] to its end over this client (its connection pool, token
    /// cache and wake-ups): the entry point for an operation the client has no method for,
    /// and what the conformance kit drives. `source` gives an upload's payload, `sink`
    /// takes a download's bytes; `transfer` reports progress and carries the cancel flag and
    /// the deadline (applied by the core's [`Controlled`]; the loop wakes for the deadline).
    /// Dropping the future cancels the task.
    pub async fn drive<T: Task>(
        &self,
        task: &mut T,
        source: Option<Source<'_>>,
        sink: Sink<'_>,
        transfer: &Transfer<'_>,
    ) -> Result<T::Output, Error> {
        let (source, sink) = (&Mutex::new(source), &sink);
        let mut run = Running {
            task: Controlled::new(task, *transfer),
            client: self,
            over: false,
        };
        let (mut idle, mut running) = (HashMap::new(), FuturesUnordered::<Step<'_>>::new());
        let (shared, woken) = (&self.0.shared, Arc::new(Notify::new()));
        loop {
            let action = {
                let mut state = shared.lock();
                let action = run.task.poll(Instant::now(), &mut state);
                if action.is_wakeable() {
                    let waker = Waker::from(Arc::new(WakeLoop(Arc::clone(&woken))));
                    shared.register(&state, waker);
                }
                action
            };
            let (lane, io, event) = match action {
                Action::Exchange(lane, step) => {
                    let io = idle.remove(&lane).unwrap_or_default();
                    running.push(Box::pin(
                        self.exchange(lane, step, io, sink, source, transfer),
                    ));
                    continue;
                }
                Action::Wait { until, wakeable } => {
                    let until = until.map(tokio::time::Instant::from_std);
                    let late = async {
                        match until {
                            Some(until) => tokio::time::sleep_until(until).await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        Some(done) = running.next() => done,
                        _ = woken.notified(), if wakeable => continue,
                        () = late => continue,
                    }
                }
                Action::WakeOthers => {
                    shared.wake_all();
                    continue;
                }
                Action::Done(result) => {
                    run.over = true;
                    return result;
                }
            };
            idle.insert(lane, io);
            run.task
                .on_event(Instant::now(), &mut shared.lock(), lane, event);
        }
    }

    /// Runs one exchange step of a lane.
    async fn exchange(
        &self,
        lane: LaneId,
        step: Exchange,
        mut io: LaneIo,
        sink: &Sink<'_>,
        source: &Mutex<Option<Source<'_>>>,
        transfer: &Transfer<'_>,
    ) -> (LaneId, LaneIo, Event) {
        let event = match step {
            Exchange::Send { request, timeouts } => {
                let limit = match timeouts {
                    Timeouts::Json => Limit::Deadline(
                        tokio::time::Instant::now() + self.0.shared.settings.json_timeout,
                    ),
                    Timeouts::Media => Limit::Idle(self.0.shared.settings.media_idle_timeout),
                };
                io = LaneIo::default();
                match self.send(request, limit, source, transfer).await {
                    Ok(response) => {
                        let (head, incoming) = response.into_parts();
                        io.body = Some((head.status.as_u16(), incoming, limit));
                        Event::Head(head)
                    }
                    Err(event) => event,
                }
            }
            Exchange::ReadBody { limit } => read_whole(io.body.take(), limit).await,
            Exchange::Stream { max, at } => match next_chunk(&mut io, max).await {
                Ok(chunk) if chunk.is_empty() => Event::BodyEnd,
                Ok(chunk) => Event::written(sink.write_at(at, &chunk).await, chunk.len()),
                Err(event) => event,
            },
            Exchange::Write { at, bytes } => {
                Event::written(sink.write_at(at, &bytes).await, bytes.len())
            }
            Exchange::FlushSink => Event::Flushed(sink.flush().await.err()),
            Exchange::Store(command) => {
                let store = self.0.shared.store.as_deref();
                Event::from_async_store(store, command).await
            }
        };
        (lane, io, event)
    }

    /// Sends one request and returns the head with its unread body.
    async fn send(
        &self,
        request: http::Request<Body>,
        limit: Limit,
        source: &Mutex<Option<Source<'_>>>,
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
            let message = with_causes(&e);
            match e.is_connect() {
                true => Event::TransportFailed(TransportError::not_sent(message)),
                false => Event::TransportFailed(TransportError::maybe_sent(message)),
            }
        };
        let whole =
            |bytes| http::Request::from_parts(parts.clone(), Either::Left(Full::new(bytes)));
        let request = match body {
            Body::Empty => whole(Bytes::new()),
            Body::Bytes(bytes) => whole(bytes),
            Body::Upload(upload) => {
                let (tx, rx) = Channel::new(QUEUED_FRAMES);
                let request = http::Request::from_parts(parts, Either::Right(rx));
                let mut response = pin!(client.request(request));
                let mut source = source.lock().await;
                let frames = UploadFrames::new(upload, *transfer);
                let pump = pump(tx, frames, source.as_mut(), limit);
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
        within(limit, "waiting for the response", client.request(request))
            .await
            .map_err(Event::TransportFailed)?
            .map_err(failed)
    }
}

impl Sink<'_> {
    async fn write_at(&self, at: u64, bytes: &[u8]) -> io::Result<()> {
        match self {
            Sink::Stream(stream) => stream.lock().await.write_all(bytes).await,
            Sink::File(file) => file.write_at(at, bytes),
            Sink::None => Err(io::Error::other("this call has no download sink")),
        }
    }

    async fn flush(&self) -> io::Result<()> {
        match self {
            Sink::Stream(stream) => stream.lock().await.flush().await,
            Sink::File(file) => file.flush(),
            Sink::None => Ok(()),
        }
    }
}

/// Feeds the core's upload frames into the body channel; the payload is read from `source`.
/// It decides nothing: each frame is what [`UploadFrames`] asked for (see [`OutBody`] for why
/// this runs on the caller's future rather than inside hyper), and only handing a frame to
/// hyper is timed (the media idle timeout: nothing taken in time is a stalled send).
async fn pump(
    mut tx: Sender<Bytes, io::Error>,
    mut frames: UploadFrames<'_>,
    source: Option<&mut Source<'_>>,
    limit: Limit,
) -> Result<(), Event> {
    let local = |e| Event::Local(Error::io("reading the upload payload", e));
    let mut reader: Option<Box<dyn AsyncRead + Send + Unpin + '_>> = match source {
        Some(Source::File(file)) => {
            file.seek(io::SeekFrom::Start(0)).await.map_err(local)?;
            Some(Box::new(file))
        }
        Some(Source::Reader(once)) => once.take(),
        None => None,
    };
    loop {
        let frame = match frames.next_frame().map_err(Event::Local)? {
            NextFrame::End => return Ok(()),
            NextFrame::Bytes(bytes) => bytes,
            NextFrame::Read { max } => {
                let no_source = || local(io::Error::other("no source (or one already sent)"));
                let reader = reader.as_mut().ok_or_else(no_source)?;
                let mut buf = BytesMut::with_capacity(max);
                let read = reader.take(max as u64).read_buf(&mut buf).await;
                read.map_err(local)?;
                frames.on_read(&buf).map_err(Event::Local)?;
                buf.freeze()
            }
        };
        let sent = within(limit, "sending the upload", tx.send_data(frame)).await;
        if sent.map_err(Event::TransportFailed)?.is_err() {
            // hyper dropped the body (the connection failed, or the server answered early):
            // the response tells what happened.
            return Ok(());
        }
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
        Ok(Err(e)) => Event::TransportFailed(TransportError::maybe_sent(with_causes(&*e))),
    }
}

/// At most `max` bytes of the lane's body (empty: the body ended).
async fn next_chunk(io: &mut LaneIo, max: u64) -> Result<Bytes, Event> {
    let Some((_, body, limit)) = io.body.as_mut() else {
        return Ok(Bytes::new());
    };
    while io.pending.is_empty() {
        match within(*limit, "downloading", body.frame()).await {
            Err(error) => return Err(Event::TransportFailed(error)),
            Ok(None) => return Ok(Bytes::new()),
            Ok(Some(Err(e))) => {
                return Err(Event::TransportFailed(TransportError::maybe_sent(
                    with_causes(&e),
                )));
            }
            Ok(Some(Ok(frame))) => io.pending = frame.into_data().unwrap_or_default(),
        }
    }
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    Ok(io.pending.split_to(io.pending.len().min(max)))
}
