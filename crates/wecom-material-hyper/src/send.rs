//! Turning the core's `http::Request<Body>` into a hyper request, and hyper's failures into
//! the core's typed errors. No protocol decisions are made here.

use std::collections::VecDeque;
use std::io;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use wecom_material_core::Transfer;
use wecom_material_core::{Body, DecodeError, Error, Payload, TransportError, UploadBody};

use crate::source::PayloadSource;

/// Frames of an upload payload: big enough for throughput, small enough that a few of them
/// in flight keep memory constant.
const FRAME: usize = 512 * 1024;
/// Frames queued between the task reading the payload and hyper writing the socket.
const QUEUED_FRAMES: usize = 4;

/// Why a send did not produce a response.
pub(crate) enum SendFailure {
    /// The network failed: the driver decides whether to retry.
    Transport(TransportError),
    /// A local failure (cancelled, unreadable file, oversized answer): the call ends with it.
    Local(Error),
}

/// The body hyper sends: fixed frames, or frames fed through a channel by the task that reads
/// the payload. Either way the size hint is exact, so hyper keeps the core's
/// `Content-Length` and never switches to chunked encoding.
pub(crate) struct OutBody {
    remaining: u64,
    frames: Frames,
}

enum Frames {
    Fixed(VecDeque<Bytes>),
    Channel(mpsc::Receiver<Bytes>),
}

impl OutBody {
    fn fixed(frames: VecDeque<Bytes>) -> Self {
        let remaining = frames.iter().map(|b| b.len() as u64).sum();
        Self {
            remaining,
            frames: Frames::Fixed(frames),
        }
    }

    fn channel(len: u64, rx: mpsc::Receiver<Bytes>) -> Self {
        Self {
            remaining: len,
            frames: Frames::Channel(rx),
        }
    }
}

impl http_body::Body for OutBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        let next = match &mut this.frames {
            Frames::Fixed(frames) => frames.pop_front(),
            Frames::Channel(rx) => match rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(next) => next,
            },
        };
        match next {
            Some(bytes) => {
                let n = bytes.len() as u64;
                if n > this.remaining {
                    return Poll::Ready(Some(Err(io::Error::other(
                        "upload body longer than announced",
                    ))));
                }
                this.remaining -= n;
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            None if this.remaining > 0 => Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "upload body ended early",
            )))),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// The hyper client of the crate.
pub(crate) type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    OutBody,
>;

/// How long a transfer may stand still, if at all.
async fn within<F: Future>(
    idle: Option<Duration>,
    what: &str,
    f: F,
) -> Result<F::Output, SendFailure> {
    match idle {
        None => Ok(f.await),
        Some(limit) => tokio::time::timeout(limit, f).await.map_err(|_| {
            SendFailure::Transport(TransportError::maybe_sent(format!(
                "{what}: nothing moved for {limit:?}"
            )))
        }),
    }
}

/// Sends one request and returns the response head with its unread body. `idle` bounds each
/// wait (for the head, for room to write the next upload frame).
pub(crate) async fn send(
    client: &HttpClient,
    request: http::Request<Body>,
    source: Option<&mut PayloadSource<'_>>,
    watch: &Transfer<'_>,
    idle: Option<Duration>,
) -> Result<http::Response<Incoming>, SendFailure> {
    let (mut parts, body) = request.into_parts();
    parts
        .headers
        .entry(http::header::USER_AGENT)
        .or_insert(http::HeaderValue::from_static(USER_AGENT));
    log::debug!(
        "{} {}",
        parts.method,
        wecom_material_core::RedactedUri(&parts.uri)
    );
    let upload = match body {
        Body::Empty => {
            let request = http::Request::from_parts(parts, OutBody::fixed(VecDeque::new()));
            return head(client.request(request), idle).await;
        }
        Body::Bytes(bytes) => {
            let request = http::Request::from_parts(parts, OutBody::fixed(VecDeque::from([bytes])));
            return head(client.request(request), idle).await;
        }
        Body::Upload(upload) => upload,
    };
    let total = upload.content_length();
    let (tx, rx) = mpsc::channel(QUEUED_FRAMES);
    let request = http::Request::from_parts(parts, OutBody::channel(total, rx));
    let mut response = pin!(client.request(request));
    let pump = pump(tx, upload, source, watch, idle);
    // While the body goes out, the pump watches for stalls; the head may come early (an
    // error answer before the whole body was read).
    let early = tokio::select! {
        response = &mut response => Some(response),
        outcome = pump => {
            // A local failure returns here: dropping the request future aborts the connection.
            outcome?;
            None
        }
    };
    let response = match early {
        Some(response) => response,
        // hyper has every byte (or gave up on the body: the response future says why).
        None => within(idle, "waiting for the response", response).await?,
    };
    response.map_err(|e| SendFailure::Transport(transport_error(&e)))
}

const USER_AGENT: &str = concat!("wecom-material/", env!("CARGO_PKG_VERSION"), " (hyper)");

async fn head(
    response: hyper_util::client::legacy::ResponseFuture,
    idle: Option<Duration>,
) -> Result<http::Response<Incoming>, SendFailure> {
    within(idle, "waiting for the response", response)
        .await?
        .map_err(|e| SendFailure::Transport(transport_error(&e)))
}

/// Feeds `head ‖ payload ‖ tail` into the body channel: checks that the payload has exactly
/// the announced length, reports progress and stops when cancelled.
async fn pump(
    tx: mpsc::Sender<Bytes>,
    upload: UploadBody,
    source: Option<&mut PayloadSource<'_>>,
    watch: &Transfer<'_>,
    idle: Option<Duration>,
) -> Result<(), SendFailure> {
    let total = upload.content_length();
    let mut out = Outlet {
        tx,
        sent: 0,
        total,
        watch,
        idle,
    };
    if !out.push(upload.head.clone()).await? {
        return Ok(());
    }
    match (&upload.payload, source) {
        (Payload::Bytes(bytes), _) => {
            // Slices share the caller's buffer: nothing is copied.
            let mut at = 0;
            while at < bytes.len() {
                let end = (at + FRAME).min(bytes.len());
                if !out.push(bytes.slice(at..end)).await? {
                    return Ok(());
                }
                at = end;
            }
        }
        (Payload::External { len, .. }, Some(source)) => {
            let strict = source.must_end_at_len();
            let reader = source
                .open()
                .await
                .map_err(|e| SendFailure::Local(Error::io("opening the upload payload", e)))?;
            if !stream_payload(&mut out, reader, *len, strict).await? {
                return Ok(());
            }
        }
        (Payload::External { .. }, None) => {
            return Err(SendFailure::Local(Error::io(
                "sending an upload",
                io::Error::other("no payload source for an external payload"),
            )));
        }
    }
    out.push(upload.tail.clone()).await?;
    Ok(())
}

/// Reads exactly `len` bytes from `reader` into the outlet. Returns `false` when hyper stopped
/// taking the body.
async fn stream_payload(
    out: &mut Outlet<'_, '_>,
    mut reader: Box<dyn AsyncRead + Send + Unpin + '_>,
    len: u64,
    strict: bool,
) -> Result<bool, SendFailure> {
    let read_error = |e: io::Error| SendFailure::Local(Error::io("reading the upload payload", e));
    let mut left = len;
    while left > 0 {
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(FRAME);
        let mut buf = BytesMut::with_capacity(want);
        while buf.len() < want {
            let n = (&mut reader)
                .take((want - buf.len()) as u64)
                .read_buf(&mut buf)
                .await
                .map_err(read_error)?;
            if n == 0 {
                return Err(read_error(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "payload ended after {} of {len} bytes",
                        len - left + buf.len() as u64
                    ),
                )));
            }
        }
        left -= buf.len() as u64;
        if !out.push(buf.freeze()).await? {
            return Ok(false);
        }
    }
    if strict {
        let mut extra = [0u8; 1];
        if reader.read(&mut extra).await.map_err(read_error)? != 0 {
            return Err(read_error(io::Error::other(format!(
                "payload longer than the announced {len} bytes (the file grew)"
            ))));
        }
    }
    Ok(true)
}

/// The sending end of the body channel, with progress and cancellation.
struct Outlet<'w, 'a> {
    tx: mpsc::Sender<Bytes>,
    sent: u64,
    total: u64,
    watch: &'w Transfer<'a>,
    idle: Option<Duration>,
}

impl Outlet<'_, '_> {
    /// Queues one frame. `Ok(false)`: hyper dropped the body (the connection failed or the
    /// server answered early); the response future tells what happened.
    async fn push(&mut self, bytes: Bytes) -> Result<bool, SendFailure> {
        if self.watch.is_cancelled() {
            return Err(SendFailure::Local(Error::Cancelled { bytes_written: 0 }));
        }
        if bytes.is_empty() {
            return Ok(true);
        }
        let n = bytes.len() as u64;
        if within(self.idle, "sending the upload", self.tx.send(bytes))
            .await?
            .is_err()
        {
            return Ok(false);
        }
        self.sent += n;
        self.watch.report(self.sent, Some(self.total));
        Ok(true)
    }
}

/// Maps hyper-util's error to whether the request may have left. The message is the error
/// chain, which never holds the URI (and so never the token).
pub(crate) fn transport_error(error: &hyper_util::client::legacy::Error) -> TransportError {
    let message = error_chain(error);
    if error.is_connect() {
        TransportError::not_sent(message)
    } else {
        TransportError::maybe_sent(message)
    }
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// A broken response body as the core's transport error.
pub(crate) fn body_error(error: &hyper::Error) -> TransportError {
    TransportError::maybe_sent(error_chain(error))
}

/// Reads a whole (JSON or error) body, at most `limit` bytes, each frame within `idle`.
pub(crate) async fn read_bounded(
    response: http::Response<Incoming>,
    limit: usize,
    idle: Option<Duration>,
) -> Result<http::Response<Bytes>, SendFailure> {
    let (parts, body) = response.into_parts();
    let status = parts.status.as_u16();
    let mut body = Limited::new(body, limit);
    let mut bytes = BytesMut::new();
    while let Some(frame) = within(idle, "reading the answer", body.frame()).await? {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    bytes.extend_from_slice(&data);
                }
            }
            Err(e) if e.is::<LengthLimitError>() => {
                return Err(SendFailure::Local(
                    DecodeError::new(status, format!("answer larger than {limit} bytes"), b"")
                        .into(),
                ));
            }
            Err(e) => {
                let message = match e.downcast_ref::<hyper::Error>() {
                    Some(e) => error_chain(e),
                    None => e.to_string(),
                };
                return Err(SendFailure::Transport(TransportError::maybe_sent(message)));
            }
        }
    }
    Ok(http::Response::from_parts(parts, bytes.freeze()))
}
