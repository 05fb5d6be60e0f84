//! Response bodies that stream slices of shared `Bytes`, and a request-body tap that counts
//! and hashes what the emulator reads.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_core::Stream;
use http_body_util::BodyDataStream;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use md5::{Digest, Md5};

use crate::state::InFlight;

/// Frames of at most this size are sent; each one is a `Bytes::slice`, never a copy.
const FRAME: usize = 64 * 1024;

/// How a response body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// All bytes, then the end.
    Complete,
    /// Stop after this many bytes without an error.
    TruncateAfter(u64),
    /// Stop after this many bytes with an error (hyper aborts the connection).
    ErrorAfter(u64),
}

/// The emulator's response body.
#[derive(Debug)]
pub(crate) struct MockBody {
    data: Bytes,
    pos: usize,
    stop: usize,
    fail_at_stop: bool,
    /// A cut body pauses before ending so that hyper flushes what was sent (it would
    /// otherwise drop buffered bytes together with the connection).
    cut_pause: CutPause,
    /// Send nothing for this long once `pos` reaches the offset (a stall fault).
    stall: Option<(usize, Duration)>,
    /// Bytes per second (the bandwidth setting) and when the first byte went out.
    rate: Option<(u64, Option<Instant>)>,
    /// A pause in progress (stall or bandwidth pacing).
    wait: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Held while the body is being sent (the per-media concurrency count).
    _guard: Option<InFlight>,
}

#[derive(Debug)]
enum CutPause {
    /// The body is not cut, or the pause is over.
    None,
    /// Not started yet.
    Pending,
    /// Running.
    Sleeping(Pin<Box<tokio::time::Sleep>>),
}

/// How a download body is shaped on the way out, besides how it ends.
#[derive(Debug, Default)]
pub(crate) struct Shape {
    /// Pause once after this many bytes, for this long.
    pub(crate) stall: Option<(u64, Duration)>,
    /// Bytes per second.
    pub(crate) bandwidth: Option<u64>,
    /// The per-media concurrency guard, released when the body ends or is dropped.
    pub(crate) guard: Option<InFlight>,
}

impl MockBody {
    pub(crate) fn empty() -> Self {
        Self::new(Bytes::new(), Ending::Complete)
    }

    pub(crate) fn full(data: impl Into<Bytes>) -> Self {
        Self::new(data.into(), Ending::Complete)
    }

    pub(crate) fn new(data: Bytes, ending: Ending) -> Self {
        Self::shaped(data, ending, Shape::default())
    }

    pub(crate) fn shaped(data: Bytes, ending: Ending, shape: Shape) -> Self {
        let len = data.len();
        let clamp = |n: u64| usize::try_from(n).unwrap_or(usize::MAX).min(len);
        let (stop, fail_at_stop) = match ending {
            Ending::Complete => (len, false),
            Ending::TruncateAfter(n) => (clamp(n), false),
            Ending::ErrorAfter(n) => (clamp(n), true),
        };
        let cut_pause = if stop < len || fail_at_stop {
            CutPause::Pending
        } else {
            CutPause::None
        };
        MockBody {
            data,
            pos: 0,
            stop,
            fail_at_stop,
            cut_pause,
            stall: shape.stall.map(|(at, d)| (clamp(at), d)),
            rate: shape.bandwidth.filter(|&b| b > 0).map(|b| (b, None)),
            wait: None,
            _guard: shape.guard,
        }
    }

    /// The end of the next frame, or a pause to wait for first.
    fn next_frame(&mut self) -> Result<usize, Duration> {
        let mut end = (self.pos + FRAME).min(self.stop);
        if let Some((at, pause)) = self.stall {
            if self.pos >= at {
                self.stall = None;
                return Err(pause);
            }
            end = end.min(at);
        }
        if let Some((rate, started)) = &mut self.rate {
            let rate = *rate;
            let started = *started.get_or_insert_with(Instant::now);
            // Frames of about 1/50 s of data keep the pace smooth.
            let frame = usize::try_from(rate / 50)
                .unwrap_or(FRAME)
                .clamp(1024, FRAME);
            end = end.min(self.pos + frame);
            // A frame goes out once the pace allows its last byte: never faster than `rate`.
            let due = Duration::from_secs_f64(end as f64 / rate as f64);
            let elapsed = started.elapsed();
            if due > elapsed {
                return Err(due - elapsed);
            }
        }
        Ok(end)
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        while this.pos < this.stop {
            if let Some(wait) = &mut this.wait {
                std::task::ready!(wait.as_mut().poll(cx));
                this.wait = None;
            }
            match this.next_frame() {
                Ok(end) => {
                    let chunk = this.data.slice(this.pos..end);
                    this.pos = end;
                    return Poll::Ready(Some(Ok(Frame::data(chunk))));
                }
                Err(pause) => this.wait = Some(Box::pin(tokio::time::sleep(pause))),
            }
        }
        loop {
            match &mut this.cut_pause {
                CutPause::None => break,
                CutPause::Pending => {
                    this.cut_pause = CutPause::Sleeping(Box::pin(tokio::time::sleep(
                        std::time::Duration::from_millis(100),
                    )));
                }
                CutPause::Sleeping(sleep) => {
                    std::task::ready!(sleep.as_mut().poll(cx));
                    this.cut_pause = CutPause::None;
                }
            }
        }
        this._guard = None;
        if this.fail_at_stop {
            this.fail_at_stop = false;
            this.stop = this.data.len();
            this.pos = this.stop;
            return Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "injected fault: connection dropped mid-body",
            ))));
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.pos >= self.stop && !self.fail_at_stop
    }

    fn size_hint(&self) -> SizeHint {
        if self.stop == self.data.len() && !self.fail_at_stop {
            SizeHint::with_exact((self.stop - self.pos) as u64)
        } else {
            SizeHint::default()
        }
    }
}

/// Counts and hashes request-body bytes as they are read.
#[derive(Debug, Default)]
pub(crate) struct Tap {
    pub(crate) len: u64,
    md5: Md5,
}

impl Tap {
    pub(crate) fn md5_hex(&self) -> String {
        hex(&self.md5.clone().finalize())
    }
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The request body as a stream of data chunks, feeding a shared [`Tap`].
pub(crate) struct TappedBody {
    inner: BodyDataStream<Incoming>,
    tap: Arc<Mutex<Tap>>,
}

impl TappedBody {
    pub(crate) fn new(body: Incoming, tap: Arc<Mutex<Tap>>) -> Self {
        TappedBody {
            inner: BodyDataStream::new(body),
            tap,
        }
    }

    /// The next chunk, `None` at the end.
    pub(crate) async fn chunk(&mut self) -> Option<Result<Bytes, hyper::Error>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// Reads the whole body, refusing more than `limit` bytes (`Err(None)` then).
    pub(crate) async fn collect(&mut self, limit: u64) -> Result<Bytes, Option<hyper::Error>> {
        let mut buf = bytes::BytesMut::new();
        while let Some(chunk) = self.chunk().await {
            let chunk = chunk.map_err(Some)?;
            if (buf.len() + chunk.len()) as u64 > limit {
                return Err(None);
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }

    /// Reads and discards the rest (still counted and hashed), up to `limit` bytes.
    pub(crate) async fn drain(&mut self, limit: u64) {
        let mut seen = 0u64;
        while let Some(Ok(chunk)) = self.chunk().await {
            seen += chunk.len() as u64;
            if seen > limit {
                break;
            }
        }
    }
}

impl Stream for TappedBody {
    type Item = Result<Bytes, hyper::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let item = std::task::ready!(Pin::new(&mut this.inner).poll_next(cx));
        if let Some(Ok(chunk)) = &item {
            let mut tap = this.tap.lock().unwrap_or_else(|e| e.into_inner());
            tap.len += chunk.len() as u64;
            tap.md5.update(chunk);
        }
        Poll::Ready(item)
    }
}
