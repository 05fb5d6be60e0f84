//! The body moves of an async transport, over the chunks its HTTP library hands out: reading a
//! whole (bounded) answer, and taking at most `max` bytes of a media body for the sink. Each
//! turns the outcome into the [`Event`] to report, the same way for every async transport
//! (the counterpart of [`blocking`](super::blocking)). No runtime and no I/O: the
//! transport's [`Chunks::next_chunk`] does the awaiting, within its own timeouts.

use std::future::Future;
use std::io;

use bytes::{Bytes, BytesMut};

use crate::error::{DecodeError, TransportError};
use crate::task::Event;

/// An async HTTP library's response body, read chunk by chunk.
pub trait Chunks {
    /// The next chunk (`None`: the body ended; an empty chunk is skipped), or why none came
    /// (the network failed, nothing arrived within the transport's timeout).
    fn next_chunk(&mut self) -> impl Future<Output = Result<Option<Bytes>, TransportError>> + Send;
}

/// The response body of one lane between its steps: the HTTP library's body and the part of
/// its last chunk not taken yet (a chunk may hold more than a `Stream` step's `max`). Made
/// from the response of a `Send`; the default has no body (a step reading it sees the end).
#[derive(Debug)]
pub struct ChunkedBody<B> {
    status: u16,
    body: Option<B>,
    rest: Bytes,
}

impl<B> Default for ChunkedBody<B> {
    fn default() -> Self {
        Self {
            status: 0,
            body: None,
            rest: Bytes::new(),
        }
    }
}

impl<B: Chunks> ChunkedBody<B> {
    /// The unread body of a response with `status`.
    pub fn new(status: u16, body: B) -> Self {
        Self {
            status,
            body: Some(body),
            rest: Bytes::new(),
        }
    }

    /// Answers [`Exchange::Send`](crate::task::Exchange::Send) with its outcome: the
    /// response's head is the event to report and its body is kept for the lane's next
    /// steps; after a failure the lane has no body.
    pub fn receive(&mut self, sent: Result<http::Response<B>, Event>) -> Event {
        match sent {
            Ok(response) => {
                let (head, body) = response.into_parts();
                *self = Self::new(head.status.as_u16(), body);
                Event::Head(head)
            }
            Err(event) => {
                *self = Self::default();
                event
            }
        }
    }

    /// Answers [`Exchange::ReadBody`](crate::task::Exchange::ReadBody): the rest of the body,
    /// at most `limit` bytes (a longer answer is a decode error of the response's status,
    /// found at the first chunk past the limit: never buffered whole).
    pub async fn read_whole(&mut self, limit: usize) -> Event {
        let mut whole = BytesMut::new();
        loop {
            match self.next(u64::MAX).await {
                Ok(chunk) if chunk.is_empty() => return Event::Body(whole.freeze()),
                Ok(chunk) if whole.len() + chunk.len() <= limit => whole.extend_from_slice(&chunk),
                Ok(_) => {
                    let message = format!("answer larger than {limit} bytes");
                    return Event::Local(DecodeError::new(self.status, message, b"").into());
                }
                Err(error) => return Event::TransportFailed(error),
            }
        }
    }

    /// Answers [`Exchange::Stream`](crate::task::Exchange::Stream): hands at most `max` bytes
    /// of the body to `write` (the sink, at the step's offset); the end of the body is
    /// [`Event::BodyEnd`].
    pub async fn stream<F>(&mut self, max: u64, write: impl FnOnce(Bytes) -> F) -> Event
    where
        F: Future<Output = io::Result<()>>,
    {
        match self.next(max).await {
            Ok(chunk) if chunk.is_empty() => Event::BodyEnd,
            Ok(chunk) => {
                let len = chunk.len();
                Event::written(write(chunk).await, len)
            }
            Err(error) => Event::TransportFailed(error),
        }
    }

    /// At most `max` bytes of the body, the rest of the last chunk first (empty: the body
    /// ended).
    async fn next(&mut self, max: u64) -> Result<Bytes, TransportError> {
        while self.rest.is_empty() {
            let Some(body) = &mut self.body else {
                return Ok(Bytes::new());
            };
            match body.next_chunk().await? {
                Some(chunk) => self.rest = chunk,
                None => self.body = None,
            }
        }
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        Ok(self.rest.split_to(self.rest.len().min(max)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use std::collections::VecDeque;

    use super::*;
    use crate::error::Error;

    /// A body that hands out these chunks, then its end (or a failure, if one is queued).
    struct Queued(VecDeque<Result<&'static [u8], &'static str>>);

    impl Chunks for Queued {
        async fn next_chunk(&mut self) -> Result<Option<Bytes>, TransportError> {
            match self.0.pop_front() {
                None => Ok(None),
                Some(Ok(chunk)) => Ok(Some(Bytes::from_static(chunk))),
                Some(Err(message)) => Err(TransportError::maybe_sent(message)),
            }
        }
    }

    fn body(chunks: &[Result<&'static [u8], &'static str>]) -> ChunkedBody<Queued> {
        ChunkedBody::new(502, Queued(chunks.iter().copied().collect()))
    }

    #[tokio::test]
    async fn a_whole_body_is_its_chunks_up_to_the_limit_and_one_past_it_is_a_decode_error() {
        let within = body(&[Ok(b"12"), Ok(b""), Ok(b"345")]).read_whole(5).await;
        assert!(matches!(within, Event::Body(b) if &b[..] == b"12345"));
        let long = body(&[Ok(b"123"), Ok(b"456")]).read_whole(5).await;
        assert!(
            matches!(long, Event::Local(Error::Decode(ref d)) if d.status == 502),
            "{long:?}"
        );
        let cut = body(&[Ok(b"12"), Err("reset")]).read_whole(5).await;
        assert!(matches!(cut, Event::TransportFailed(ref e) if e.message == "reset"));
        let none = ChunkedBody::<Queued>::default().read_whole(5).await;
        assert!(matches!(none, Event::Body(b) if b.is_empty()));
    }

    #[tokio::test]
    async fn a_response_s_body_is_kept_for_the_next_steps_and_a_failure_leaves_none() {
        let mut lane = body(&[Ok(b"old")]);
        let response = http::Response::builder().status(404);
        let response = response.body(Queued([Ok(&b"{}"[..])].into())).unwrap();
        assert!(matches!(lane.receive(Ok(response)), Event::Head(h) if h.status == 404));
        assert!(matches!(lane.read_whole(5).await, Event::Body(b) if &b[..] == b"{}"));
        let failed = Event::TransportFailed(TransportError::not_sent("refused"));
        let mut lane = body(&[Ok(b"old")]);
        assert!(matches!(
            lane.receive(Err(failed)),
            Event::TransportFailed(_)
        ));
        assert!(matches!(lane.read_whole(5).await, Event::Body(b) if b.is_empty()));
    }

    #[tokio::test]
    async fn a_stream_step_takes_at_most_max_bytes_and_keeps_the_rest_of_the_chunk() {
        let (mut media, mut sink) = (body(&[Ok(b"abcde"), Ok(b"f")]), Vec::new());
        for (max, expected) in [(3, Some(3)), (9, Some(2)), (9, Some(1)), (9, None)] {
            let write = |chunk: Bytes| {
                sink.extend_from_slice(&chunk);
                std::future::ready(Ok(()))
            };
            match (media.stream(max, write).await, expected) {
                (Event::Written(n), Some(expected)) => assert_eq!(n, expected),
                (Event::BodyEnd, None) => {}
                (event, _) => panic!("{event:?} where {expected:?} was due"),
            }
        }
        assert_eq!(sink, b"abcdef");
        let full = |_| std::future::ready(Err(io::Error::other("disk full")));
        let failed = body(&[Ok(b"x")]).stream(1, full).await;
        assert!(
            matches!(failed, Event::Local(Error::Io { .. })),
            "{failed:?}"
        );
    }
}
