//! Turning the core's `http::Request<Body>` into bytes on a ureq connection, and ureq's
//! failures into the core's typed errors. No protocol decisions are made here.

use std::io::{self, Cursor, Read};

use bytes::Bytes;
use wecom_material_core::Transfer;
use wecom_material_core::{Body, DecodeError, Error, Payload, TransportError};

use crate::source::PayloadSource;

/// Why a send did not produce a response.
pub(crate) enum SendFailure {
    /// The network failed: the driver decides whether to retry.
    Transport(TransportError),
    /// A local failure (cancelled, unreadable file): the call ends with it.
    Local(Error),
}

/// Streams `head ‖ payload ‖ tail`, checks that the payload has exactly the announced length,
/// reports progress and stops when cancelled.
struct UploadReader<'a, 'w> {
    inner: Box<dyn Read + Send + 'a>,
    sent: u64,
    total: u64,
    watch: &'a Transfer<'w>,
    local_error: Option<Error>,
}

impl Read for UploadReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.watch.is_cancelled() {
            self.local_error = Some(Error::Cancelled { bytes_written: 0 });
            return Err(io::Error::other("cancelled"));
        }
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) => {
                self.local_error = Some(Error::io(
                    "reading the upload payload",
                    io::Error::new(e.kind(), e.to_string()),
                ));
                return Err(e);
            }
        };
        if n == 0 && self.sent < self.total {
            let e = io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("payload ended after {} of {} bytes", self.sent, self.total),
            );
            self.local_error = Some(Error::io(
                "reading the upload payload",
                io::Error::new(e.kind(), e.to_string()),
            ));
            return Err(e);
        }
        self.sent += n as u64;
        self.watch.report(self.sent, Some(self.total));
        Ok(n)
    }
}

/// Sends one request and returns the response head with its unread body.
pub(crate) fn send(
    agent: &ureq::Agent,
    request: http::Request<Body>,
    source: Option<&mut PayloadSource<'_>>,
    watch: &Transfer<'_>,
) -> Result<http::Response<ureq::Body>, SendFailure> {
    let (parts, body) = request.into_parts();
    let result = match body {
        Body::Empty => agent.run(http::Request::from_parts(parts, ())),
        Body::Bytes(bytes) => agent.run(http::Request::from_parts(parts, &bytes[..])),
        Body::Upload(upload) => {
            let total = upload.content_length();
            let payload: Box<dyn Read + Send + '_> = match (&upload.payload, source) {
                (Payload::Bytes(b), _) => Box::new(Cursor::new(b.clone())),
                (Payload::External { len, .. }, Some(source)) => {
                    let reader = source.open().map_err(|e| {
                        SendFailure::Local(Error::io("opening the upload payload", e))
                    })?;
                    Box::new(reader.take(*len))
                }
                (Payload::External { .. }, None) => {
                    return Err(SendFailure::Local(Error::io(
                        "sending an upload",
                        io::Error::other("no payload source for an external payload"),
                    )));
                }
            };
            let inner = Box::new(
                Cursor::new(upload.head.clone())
                    .chain(payload)
                    .chain(Cursor::new(upload.tail.clone())),
            );
            let mut reader = UploadReader {
                inner,
                sent: 0,
                total,
                watch,
                local_error: None,
            };
            let result = agent.run(http::Request::from_parts(
                parts,
                ureq::SendBody::from_reader(&mut reader),
            ));
            if let Some(e) = reader.local_error.take() {
                return Err(SendFailure::Local(e));
            }
            result
        }
    };
    result.map_err(|e| SendFailure::Transport(transport_error(e)))
}

/// Maps ureq's error to whether the request may have left.
pub(crate) fn transport_error(error: ureq::Error) -> TransportError {
    use ureq::{Error as E, Timeout};
    match error {
        E::HostNotFound | E::ConnectionFailed => TransportError::not_sent(error.to_string()),
        E::Timeout(Timeout::Resolve | Timeout::Connect) => {
            TransportError::not_sent(error.to_string())
        }
        // Never echo a URI: it may hold the token.
        E::BadUri(_) | E::Http(_) => TransportError::not_sent("invalid request URI"),
        E::Io(ref e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            TransportError::not_sent(error.to_string())
        }
        other => TransportError::maybe_sent(other.to_string()),
    }
}

/// Reads a whole (JSON or error) body, at most `limit` bytes.
pub(crate) fn read_bounded(
    response: http::Response<ureq::Body>,
    limit: usize,
) -> Result<http::Response<Bytes>, SendFailure> {
    let (parts, mut body) = response.into_parts();
    let status = parts.status.as_u16();
    let bytes = body
        .with_config()
        .limit(limit as u64)
        .read_to_vec()
        .map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => SendFailure::Local(
                DecodeError::new(status, format!("answer larger than {limit} bytes"), b"").into(),
            ),
            other => SendFailure::Transport(transport_error(other)),
        })?;
    Ok(http::Response::from_parts(parts, Bytes::from(bytes)))
}
