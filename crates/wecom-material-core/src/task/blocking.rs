//! The body moves of a blocking transport, over the `Read` and `Write` it hands in: reading
//! a whole (bounded) answer, and moving one buffer of a media body into the sink. Each turns
//! the outcome into the [`Event`] to report, the same way for every blocking transport. They
//! own no socket or file: they only call the reader and writer they are given.

use std::io::{self, Read};

use bytes::Bytes;

use crate::error::{DecodeError, TransportError};
use crate::task::Event;

/// The largest buffer [`stream_once`] moves at a time.
pub const STREAM_BUFFER: usize = 256 * 1024;

/// Answers [`Exchange::ReadBody`](crate::task::Exchange::ReadBody): the rest of `body`, at most
/// `limit` bytes (a longer answer is a decode error of a response with `status`; reading
/// stops one byte past the limit).
pub fn read_body(body: impl Read, status: u16, limit: usize) -> Event {
    let mut bytes = Vec::new();
    match body.take(limit as u64 + 1).read_to_end(&mut bytes) {
        Ok(n) if n > limit => {
            let message = format!("answer larger than {limit} bytes");
            Event::Local(DecodeError::new(status, message, b"").into())
        }
        Ok(_) => Event::Body(Bytes::from(bytes)),
        Err(e) => Event::TransportFailed(TransportError::maybe_sent(e.to_string())),
    }
}

/// Answers [`Exchange::Stream`](crate::task::Exchange::Stream): reads at most `max` bytes (and
/// at most `buf.len()`) of `body` and hands them to `write` (the sink, at the step's offset).
pub fn stream_once(
    body: &mut impl Read,
    buf: &mut [u8],
    max: u64,
    write: impl FnOnce(&[u8]) -> io::Result<()>,
) -> Event {
    let want = usize::try_from(max).map_or(buf.len(), |m| m.min(buf.len()));
    let Some(buf) = buf.get_mut(..want) else {
        return Event::BodyEnd;
    };
    let n = loop {
        match body.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Event::TransportFailed(TransportError::maybe_sent(e.to_string())),
            Ok(n) => break n.min(buf.len()),
        }
    };
    if n == 0 {
        return Event::BodyEnd;
    }
    Event::written(write(&buf[..n]), n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A blocking transport's buffer moves 256 KiB at a time: a longer body takes more steps.
    #[test]
    fn the_stream_buffer_moves_256_kib_at_a_time() {
        let body = vec![7u8; 400 * 1024];
        let (mut reader, mut buf) = (&body[..], vec![0u8; STREAM_BUFFER]);
        let mut moved = Vec::new();
        for _ in 0..3 {
            stream_once(&mut reader, &mut buf, u64::MAX, |b| {
                moved.push(b.len());
                Ok(())
            });
        }
        assert_eq!(moved, [262_144, 147_456]);
    }

    #[test]
    fn a_body_over_the_limit_is_a_decode_error_and_one_within_is_the_body() {
        assert!(matches!(read_body(&b"12345"[..], 200, 5), Event::Body(b) if &b[..] == b"12345"));
        let long = read_body(&b"123456"[..], 502, 5);
        assert!(
            matches!(long, Event::Local(Error::Decode(ref d)) if d.status == 502),
            "{long:?}"
        );
    }

    /// A read interrupted by a signal is read again, as `std::io::Read` asks; any other read
    /// error is the transport's failure.
    #[test]
    fn an_interrupted_body_read_is_read_again_and_another_error_is_a_failure() {
        struct Flaky(io::ErrorKind, bool);
        impl Read for Flaky {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if !std::mem::replace(&mut self.1, true) {
                    return Err(self.0.into());
                }
                buf[0] = b'x';
                Ok(1)
            }
        }
        let mut buf = [0; 8];
        let mut body = Flaky(io::ErrorKind::Interrupted, false);
        let event = stream_once(&mut body, &mut buf, 8, |b| {
            assert_eq!(b, b"x");
            Ok(())
        });
        assert!(matches!(event, Event::Written(1)), "{event:?}");
        let mut body = Flaky(io::ErrorKind::ConnectionReset, false);
        let event = stream_once(&mut body, &mut buf, 8, |_| Ok(()));
        assert!(matches!(event, Event::TransportFailed(_)), "{event:?}");
    }

    use std::io::Write;

    use crate::error::Error;

    #[test]
    fn one_buffer_moves_at_most_max_bytes_and_an_empty_read_is_the_end() {
        let (mut body, mut buf, mut sink) = (&b"abcdef"[..], [0u8; 4], Vec::new());
        assert!(matches!(
            stream_once(&mut body, &mut buf, 3, |b| sink.write_all(b)),
            Event::Written(3)
        ));
        assert!(matches!(
            stream_once(&mut body, &mut buf, 9, |b| sink.write_all(b)),
            Event::Written(3)
        ));
        assert!(matches!(
            stream_once(&mut body, &mut buf, 9, |b| sink.write_all(b)),
            Event::BodyEnd
        ));
        assert_eq!(sink, b"abcdef");
        let mut full = [0u8; 0];
        let mut small = &mut full[..];
        let failed = stream_once(&mut &b"x"[..], &mut buf, 1, |b| small.write_all(b));
        assert!(
            matches!(failed, Event::Local(Error::Io { .. })),
            "{failed:?}"
        );
    }
}
