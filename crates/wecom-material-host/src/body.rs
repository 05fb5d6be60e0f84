//! An upload's body for an async HTTP library (feature `async`): see [`UploadBody`].

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, ReadBuf};
use wecom_material_core::task::{NextFrame, UploadFrames};
use wecom_material_core::{Error, Transfer, body};

/// An upload's body for an async HTTP library: the core's [`UploadFrames`] as an
/// [`http_body::Body`] that the library polls itself, on a task of its own if it likes — the
/// body owns all it needs (`'static`), so it goes into hyper's or reqwest's request as it is,
/// with no channel and no loop beside the request. `R` is the payload's async reader (a file
/// opened for this attempt, or the caller's one-shot reader).
///
/// ```text
/// let (body, watch) = UploadBody::new(upload, reader, transfer)?;
/// let response = watch.idle_bounded(idle, send(request_with(body)), sleep).await;
/// // a failure the body stopped on is local, not the connection's:
/// if let Some(error) = watch.take_failure() { return Event::Local(error) }
/// ```
///
/// The frames decide everything (multipart head and tail, the payload's length rule and
/// digest, progress, cancel); the body reads the payload from the reader when they ask and
/// hands each frame on.
pub struct UploadBody<R> {
    frames: UploadFrames,
    /// In a mutex only so that the body is `Sync` (reqwest asks it); polling takes it with
    /// `get_mut`, never locking.
    reader: Mutex<Option<R>>,
    /// The buffer of a payload read in progress (the frames asked for its length).
    reading: Option<BytesMut>,
    len: u64,
    watch: Arc<Shared>,
    ended: bool,
}

/// What the transport learns of a body the HTTP library owns: whether it moved, and the
/// typed failure it stopped on.
#[derive(Clone)]
pub struct BodyWatch(Arc<Shared>);

#[derive(Default)]
struct Shared {
    /// Frames handed to the HTTP library so far.
    moved: AtomicU64,
    failure: Mutex<Option<Error>>,
}

impl<R: AsyncRead + Unpin + Send> UploadBody<R> {
    /// The body of `upload` (from a request the core built); `reader` supplies an external
    /// payload, positioned at its start; `transfer` gets the payload's progress and may
    /// cancel.
    pub fn new(
        upload: body::UploadBody,
        reader: Option<R>,
        transfer: Transfer,
    ) -> Result<(Self, BodyWatch), Error> {
        let len = upload.content_length();
        let frames = UploadFrames::new(upload, transfer);
        if frames.needs_source() && reader.is_none() {
            return Err(Error::io(
                "reading the upload payload",
                io::Error::other("no source for an external payload"),
            ));
        }
        let watch = Arc::new(Shared::default());
        let body = Self {
            frames,
            reader: Mutex::new(reader),
            reading: None,
            len,
            watch: Arc::clone(&watch),
            ended: false,
        };
        Ok((body, BodyWatch(watch)))
    }

    /// Ends the body on `error`: kept for the transport, an I/O error for the library.
    fn fail(&mut self, error: Error) -> io::Error {
        let message = error.to_string();
        *self.watch.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
        self.ended = true;
        io::Error::other(message)
    }

    fn next(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, Error>> {
        loop {
            if let Some(buf) = &mut self.reading {
                let reader = self.reader.get_mut().unwrap_or_else(|e| e.into_inner());
                let Some(reader) = reader.as_mut() else {
                    let none = io::Error::other("no source for an external payload");
                    return Poll::Ready(Err(Error::io("reading the upload payload", none)));
                };
                let mut read = ReadBuf::new(buf);
                let polled = ready!(Pin::new(reader).poll_read(cx, &mut read));
                let n = read.filled().len();
                let mut buf = self.reading.take().unwrap_or_default();
                polled.map_err(|e| Error::io("reading the upload payload", e))?;
                buf.truncate(n);
                // Also the length rule: a byte past the announced length is an error.
                self.frames.on_read(&buf)?;
                if n > 0 {
                    return Poll::Ready(Ok(Some(buf.freeze())));
                }
                continue;
            }
            match self.frames.next_frame()? {
                NextFrame::Bytes(bytes) => return Poll::Ready(Ok(Some(bytes))),
                NextFrame::Read { max } => self.reading = Some(BytesMut::zeroed(max)),
                NextFrame::End => return Poll::Ready(Ok(None)),
            }
        }
    }
}

impl<R: AsyncRead + Unpin + Send> http_body::Body for UploadBody<R> {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        Poll::Ready(match ready!(this.next(cx)) {
            Ok(Some(bytes)) => {
                this.watch.moved.fetch_add(1, Ordering::Relaxed);
                Some(Ok(Frame::data(bytes)))
            }
            Ok(None) => {
                this.ended = true;
                None
            }
            Err(error) => Some(Err(this.fail(error))),
        })
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }

    /// Exact: the library keeps the core's `Content-Length` and never switches to chunked.
    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

impl BodyWatch {
    /// The failure the body stopped on (cancelled, the reader failed, the payload broke its
    /// length rule), if any: a local failure, not the connection's.
    pub fn take_failure(&self) -> Option<Error> {
        self.0
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// `request` (sending the body, then waiting for the answer), given up when nothing
    /// moved for `idle`: no frame was taken by the library and no answer came (`None`).
    /// `sleep` is the runtime's timer. A stall is seen between `idle` and twice `idle`
    /// after the last frame.
    pub async fn idle_bounded<F: Future, S: Future<Output = ()>>(
        &self,
        idle: Duration,
        request: F,
        sleep: impl Fn(Duration) -> S,
    ) -> Option<F::Output> {
        let mut request = std::pin::pin!(request);
        loop {
            let seen = self.0.moved.load(Ordering::Relaxed);
            let mut timer = std::pin::pin!(sleep(idle));
            let outcome = std::future::poll_fn(|cx| {
                if let Poll::Ready(out) = request.as_mut().poll(cx) {
                    return Poll::Ready(Some(out));
                }
                timer.as_mut().poll(cx).map(|()| None)
            })
            .await;
            match outcome {
                Some(out) => return Some(out),
                None if self.0.moved.load(Ordering::Relaxed) != seen => continue,
                None => return None,
            }
        }
    }
}

impl std::fmt::Debug for BodyWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyWatch")
            .field("moved", &self.0.moved.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<R> std::fmt::Debug for UploadBody<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadBody")
            .field("frames", &self.frames)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use std::task::Waker;

    use http_body::Body as _;
    use wecom_material_core::CancelFlag;
    use wecom_material_core::body::{Payload, Replay, UploadBody as Framed};

    use super::*;

    fn framed(payload: Payload) -> Framed {
        Framed {
            head: Bytes::from_static(b"HEAD|"),
            payload,
            tail: Bytes::from_static(b"|TAIL"),
            digest: None,
            sent: Default::default(),
        }
    }

    fn external(len: u64) -> Payload {
        Payload::External {
            len,
            replay: Replay::Replayable,
        }
    }

    /// Polls `body` to its end (an in-memory reader is always ready): its frames, or the
    /// I/O error it ended on.
    fn drain<R: AsyncRead + Unpin + Send>(body: &mut UploadBody<R>) -> Result<Vec<Bytes>, String> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut frames = Vec::new();
        loop {
            match Pin::new(&mut *body).poll_frame(&mut cx) {
                Poll::Ready(Some(Ok(frame))) => frames.push(frame.into_data().unwrap()),
                Poll::Ready(Some(Err(e))) => return Err(e.to_string()),
                Poll::Ready(None) => return Ok(frames),
                Poll::Pending => panic!("an in-memory reader is always ready"),
            }
        }
    }

    #[test]
    fn the_body_is_head_payload_tail_with_its_exact_length_and_progress() {
        let seen = Arc::new(AtomicU64::new(0));
        let log = Arc::clone(&seen);
        let transfer =
            Transfer::default().with_progress(move |p| log.store(p.done, Ordering::SeqCst));
        let reader: &[u8] = b"0123456789";
        let (mut body, watch) =
            UploadBody::new(framed(external(10)), Some(reader), transfer).unwrap();
        assert_eq!(body.size_hint().exact(), Some(20));
        let frames = drain(&mut body).unwrap();
        assert_eq!(frames, [&b"HEAD|"[..], b"0123456789", b"|TAIL"]);
        assert!(body.is_end_stream());
        assert_eq!(
            seen.load(Ordering::SeqCst),
            10,
            "progress counts payload bytes"
        );
        assert_eq!(
            watch.0.moved.load(Ordering::SeqCst),
            3,
            "each frame handed on counts"
        );
        assert!(watch.take_failure().is_none());

        let held = Payload::Bytes(Bytes::from_static(b"abc"));
        let (mut body, _) =
            UploadBody::<&[u8]>::new(framed(held), None, Transfer::default()).unwrap();
        assert_eq!(drain(&mut body).unwrap().concat(), b"HEAD|abc|TAIL");
    }

    #[test]
    fn a_body_stops_on_a_changed_file_or_a_cancel_with_the_typed_failure_for_the_transport() {
        let grown: &[u8] = b"0123X";
        let (mut body, watch) =
            UploadBody::new(framed(external(4)), Some(grown), Transfer::default()).unwrap();
        let stopped = drain(&mut body).unwrap_err();
        let failure = watch.take_failure().unwrap();
        assert!(matches!(failure, Error::Io { .. }), "{failure}");
        assert_eq!(
            stopped,
            failure.to_string(),
            "the library sees the same message"
        );
        assert!(body.is_end_stream(), "nothing after the failure");

        let shrunk: &[u8] = b"01";
        let (mut body, watch) =
            UploadBody::new(framed(external(4)), Some(shrunk), Transfer::default()).unwrap();
        drain(&mut body).unwrap_err();
        assert!(matches!(watch.take_failure(), Some(Error::Io { .. })));

        let cancel = CancelFlag::new();
        cancel.cancel();
        let reader: &[u8] = b"0123";
        let transfer = Transfer::default().cancelled_by(&cancel);
        let (mut body, watch) =
            UploadBody::new(framed(external(4)), Some(reader), transfer).unwrap();
        drain(&mut body).unwrap_err();
        assert!(matches!(
            watch.take_failure(),
            Some(Error::Cancelled { .. })
        ));

        let none = UploadBody::<&[u8]>::new(framed(external(4)), None, Transfer::default());
        assert!(matches!(none.unwrap_err(), Error::Io { .. }), "no source");
    }

    /// A timer that is due at once, counting how often it was set.
    fn due_at_once(count: &AtomicU64) -> impl Fn(Duration) -> std::future::Ready<()> + '_ {
        move |_| {
            count.fetch_add(1, Ordering::SeqCst);
            std::future::ready(())
        }
    }

    #[test]
    fn the_exchange_is_idle_only_when_neither_the_body_nor_the_answer_moved() {
        let mut cx = Context::from_waker(Waker::noop());
        let reader: &[u8] = b"0123456789";
        let (_body, watch) =
            UploadBody::new(framed(external(10)), Some(reader), Transfer::default()).unwrap();
        // An answer that never comes: idle as soon as a timer ends with nothing moved.
        let timers = AtomicU64::new(0);
        let stuck = watch.idle_bounded(
            Duration::ZERO,
            std::future::pending::<()>(),
            due_at_once(&timers),
        );
        assert_eq!(std::pin::pin!(stuck).poll(&mut cx), Poll::Ready(None));
        assert_eq!(timers.load(Ordering::SeqCst), 1);

        // The body moving during the first window gives the exchange a second one.
        let (timers, moved) = (AtomicU64::new(0), &watch.0.moved);
        let moving = |_| {
            if timers.fetch_add(1, Ordering::SeqCst) == 0 {
                moved.fetch_add(1, Ordering::SeqCst); // a frame went out meanwhile
            }
            std::future::ready(())
        };
        let waited = watch.idle_bounded(Duration::ZERO, std::future::pending::<()>(), moving);
        assert_eq!(std::pin::pin!(waited).poll(&mut cx), Poll::Ready(None));
        assert_eq!(timers.load(Ordering::SeqCst), 2);

        // An answer that is there is taken at once.
        let answered =
            watch.idle_bounded(Duration::ZERO, std::future::ready(7), due_at_once(&timers));
        assert_eq!(std::pin::pin!(answered).poll(&mut cx), Poll::Ready(Some(7)));
    }
}
