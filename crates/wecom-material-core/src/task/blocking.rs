//! The body moves of a blocking transport, over the `Read` and `Write` it hands in: reading
//! a whole (bounded) answer, and moving one buffer of a media body into the sink. Each turns
//! the outcome into the [`Event`] to report, the same way for every blocking transport. They
//! own no socket or file: they only call the reader and writer they are given.

use std::io::{self, Read, Write};

use bytes::Bytes;

use crate::error::{DecodeError, Error, TransportError};
use crate::task::Event;

/// The largest buffer [`stream_once`] moves at a time.
pub const STREAM_BUFFER: usize = 64 * 1024;

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
/// at most `buf.len()`) of `body` and writes them to `sink`.
pub fn stream_once(body: &mut impl Read, buf: &mut [u8], max: u64, sink: &mut dyn Write) -> Event {
    let want = usize::try_from(max).map_or(buf.len(), |m| m.min(buf.len()));
    let n = loop {
        match body.read(&mut buf[..want]) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Event::TransportFailed(TransportError::maybe_sent(e.to_string())),
            Ok(n) => break n,
        }
    };
    if n == 0 {
        return Event::BodyEnd;
    }
    match sink.write_all(&buf[..n]) {
        Ok(()) => Event::Written(n as u64),
        Err(e) => Event::Local(Error::io("writing the download", e)),
    }
}

/// Answers [`Exchange::Write`](crate::task::Exchange::Write): all of `bytes` into `sink`.
pub fn write_all(sink: Option<&mut (dyn Write + '_)>, bytes: &[u8]) -> Event {
    match sink.map(|sink| sink.write_all(bytes)) {
        Some(Ok(())) => Event::Written(bytes.len() as u64),
        Some(Err(e)) => Event::Local(Error::io("writing the download", e)),
        None => Event::Local(Error::io(
            "writing the download",
            io::ErrorKind::NotFound.into(),
        )),
    }
}

/// Answers [`Exchange::FlushSink`](crate::task::Exchange::FlushSink).
pub fn flush(sink: Option<&mut (dyn Write + '_)>) -> Event {
    Event::Flushed(sink.and_then(|sink| sink.flush().err()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_over_the_limit_is_a_decode_error_and_one_within_is_the_body() {
        assert!(matches!(read_body(&b"12345"[..], 200, 5), Event::Body(b) if &b[..] == b"12345"));
        let long = read_body(&b"123456"[..], 502, 5);
        assert!(
            matches!(long, Event::Local(Error::Decode(ref d)) if d.status == 502),
            "{long:?}"
        );
    }

    #[test]
    fn one_buffer_moves_at_most_max_bytes_and_an_empty_read_is_the_end() {
        let (mut body, mut buf, mut sink) = (&b"abcdef"[..], [0u8; 4], Vec::new());
        assert!(matches!(
            stream_once(&mut body, &mut buf, 3, &mut sink),
            Event::Written(3)
        ));
        assert!(matches!(
            stream_once(&mut body, &mut buf, 9, &mut sink),
            Event::Written(3)
        ));
        assert!(matches!(
            stream_once(&mut body, &mut buf, 9, &mut sink),
            Event::BodyEnd
        ));
        assert_eq!(sink, b"abcdef");
        let mut full = [0u8; 0];
        let mut small = &mut full[..];
        let failed = stream_once(&mut &b"x"[..], &mut buf, 1, &mut small);
        assert!(
            matches!(failed, Event::Local(Error::Io { .. })),
            "{failed:?}"
        );
    }
}
