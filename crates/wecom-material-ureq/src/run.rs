//! The one loop that drives any core [`Task`] over ureq: it sends what the task says, reads
//! or streams bodies within the limits the task gives, sleeps, wakes, and reports back. No
//! protocol decision is made here.

use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::time::Instant;

use bytes::Bytes;
use wecom_material_core::task::{Action, Event, Lane, PayloadMeter, Task};
use wecom_material_core::{
    Body, DecodeError, Error, Payload, RedactedUri, Replay, Transfer, TransportError,
};

use crate::client::Client;

/// Where an upload's external payload comes from.
pub(crate) enum Source<'a> {
    /// A file, rewound for each attempt.
    File(File),
    /// A reader that can be read once.
    Reader(Option<Box<dyn Read + Send + 'a>>),
}

/// The task's I/O ends: an upload source (with its meter) and a download sink.
#[derive(Default)]
pub(crate) struct Ends<'a> {
    pub(crate) source: Option<(Source<'a>, PayloadMeter)>,
    pub(crate) sink: Option<&'a mut dyn Write>,
}

impl Client {
    /// Runs `task` to its end.
    pub(crate) fn drive<T: Task>(
        &self,
        mut task: T,
        mut ends: Ends<'_>,
        transfer: &Transfer<'_>,
    ) -> Result<T::Output, Error> {
        let shared = &*self.inner.shared;
        let mut body: Option<(u16, ureq::BodyReader<'static>)> = None;
        let mut buf = Vec::new();
        loop {
            let mut state = shared.lock();
            if transfer.is_cancelled() {
                task.cancel(&mut state);
            }
            let now = Instant::now();
            let event = match task.poll(now, &mut state) {
                Action::Done(result) => return result,
                Action::Wait { until, wakeable } => {
                    let wait = until.saturating_duration_since(now);
                    if wakeable {
                        // Waited on with the lock held since the poll: no wake-up is missed.
                        drop(shared.wake.wait_timeout(state, wait));
                    } else {
                        drop(state);
                        std::thread::sleep(wait);
                    }
                    continue;
                }
                Action::WakeOthers => {
                    drop(state);
                    shared.wake.notify_all();
                    continue;
                }
                Action::Send { request, lane } => {
                    drop(state);
                    body = None;
                    match self.send(request, lane, &mut ends, transfer) {
                        Ok((head, reader)) => {
                            body = Some((head.status.as_u16(), reader));
                            Event::Head(head)
                        }
                        Err(event) => event,
                    }
                }
                Action::ReadBody { limit } => {
                    drop(state);
                    read_whole(body.take(), limit)
                }
                Action::Stream { max } => {
                    drop(state);
                    let want = usize::try_from(max).unwrap_or(usize::MAX).min(64 * 1024);
                    buf.resize(want, 0);
                    stream_once(
                        body.as_mut().map(|(_, r)| r),
                        &mut buf,
                        ends.sink.as_deref_mut(),
                    )
                }
                Action::FlushSink => {
                    drop(state);
                    Event::Flushed(ends.sink.as_deref_mut().and_then(|s| s.flush().err()))
                }
            };
            let written = matches!(event, Event::Written(_));
            task.on_event(Instant::now(), &mut shared.lock(), event);
            if written && let Some(p) = task.progress() {
                transfer.report(p.done, p.total);
            }
        }
    }

    /// Sends one request; its payload (if external) comes from the ends' source.
    fn send(
        &self,
        request: http::Request<Body>,
        lane: Lane,
        ends: &mut Ends<'_>,
        transfer: &Transfer<'_>,
    ) -> Result<(http::response::Parts, ureq::BodyReader<'static>), Event> {
        log::debug!("{} {}", request.method(), RedactedUri(request.uri()));
        let agent = match lane {
            Lane::Json => &self.inner.json_agent,
            Lane::Media => &self.inner.media_agent,
        };
        let (parts, body) = request.into_parts();
        let result = match body {
            Body::Empty => agent.run(http::Request::from_parts(parts, ())),
            Body::Bytes(bytes) => agent.run(http::Request::from_parts(parts, &bytes[..])),
            Body::Upload(upload) => {
                let mut failure = None;
                let payload: Box<dyn Read + Send + '_> = match (&upload.payload, &mut ends.source) {
                    (Payload::Bytes(b), _) => Box::new(Metered {
                        reader: Box::new(Cursor::new(b.clone())),
                        meter: PayloadMeter::new(b.len() as u64, Replay::OneShot),
                        transfer,
                        failure: &mut failure,
                    }),
                    (Payload::External { .. }, Some((source, meter))) => Box::new(Metered {
                        reader: open(source).map_err(Event::Local)?,
                        meter: meter.clone(),
                        transfer,
                        failure: &mut failure,
                    }),
                    (Payload::External { .. }, None) => {
                        let e = io::Error::other("no source for an external payload");
                        return Err(Event::Local(Error::io("sending an upload", e)));
                    }
                };
                let mut reader = Cursor::new(upload.head.clone())
                    .chain(payload)
                    .chain(Cursor::new(upload.tail.clone()));
                let body = ureq::SendBody::from_reader(&mut reader);
                let result = agent.run(http::Request::from_parts(parts, body));
                drop(reader);
                if let Some(failure) = failure {
                    return Err(Event::Local(failure));
                }
                result
            }
        };
        let response = result.map_err(|e| Event::TransportFailed(transport_error(e)))?;
        let (head, body) = response.into_parts();
        Ok((head, body.into_reader()))
    }
}

/// A reader positioned at the payload's start, for one attempt.
fn open<'s>(source: &'s mut Source<'_>) -> Result<Box<dyn Read + Send + 's>, Error> {
    match source {
        Source::File(file) => {
            let rewound = file.seek(SeekFrom::Start(0));
            rewound.map_err(|e| Error::io("rewinding the upload", e))?;
            Ok(Box::new(&*file))
        }
        Source::Reader(reader) => match reader.take() {
            Some(reader) => Ok(reader),
            None => Err(Error::io(
                "sending an upload",
                io::Error::other("a one-shot payload was already sent"),
            )),
        },
    }
}

/// The payload as read for one attempt: exactly the announced length (the core's meter
/// decides), progress reported, stopped when cancelled. A local failure is kept for the loop
/// (ureq only sees an I/O error).
struct Metered<'r, 't, 'f> {
    reader: Box<dyn Read + Send + 'r>,
    meter: PayloadMeter,
    transfer: &'t Transfer<'t>,
    failure: &'f mut Option<Error>,
}

impl Read for Metered<'_, '_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let result = if self.transfer.is_cancelled() {
            Err(Error::Cancelled { bytes_written: 0 })
        } else {
            let want = self.meter.want(buf.len());
            match self.reader.read(&mut buf[..want]) {
                Ok(n) => self.meter.on_read(n as u64).map(|()| n),
                Err(e) => Err(Error::io("reading the upload payload", e)),
            }
        };
        match result {
            Ok(n) => {
                let p = self.meter.progress();
                self.transfer.report(p.done, p.total);
                Ok(n)
            }
            Err(error) => {
                let message = error.to_string();
                *self.failure = Some(error);
                Err(io::Error::other(message))
            }
        }
    }
}

/// Reads the rest of a body, at most `limit` bytes.
fn read_whole(body: Option<(u16, ureq::BodyReader<'static>)>, limit: usize) -> Event {
    let Some((status, reader)) = body else {
        return Event::BodyEnd;
    };
    let mut bytes = Vec::new();
    match reader.take(limit as u64 + 1).read_to_end(&mut bytes) {
        Ok(n) if n > limit => {
            let message = format!("answer larger than {limit} bytes");
            Event::Local(DecodeError::new(status, message, b"").into())
        }
        Ok(_) => Event::Body(Bytes::from(bytes)),
        Err(e) => Event::TransportFailed(TransportError::maybe_sent(e.to_string())),
    }
}

/// Moves one buffer of the body into the sink.
fn stream_once<'w>(
    body: Option<&mut ureq::BodyReader<'static>>,
    buf: &mut [u8],
    sink: Option<&mut (dyn Write + 'w)>,
) -> Event {
    let (Some(body), Some(sink)) = (body, sink) else {
        return Event::BodyEnd;
    };
    let n = loop {
        match body.read(buf) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Event::TransportFailed(TransportError::maybe_sent(e.to_string())),
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

/// Maps ureq's error to whether the request may have left.
fn transport_error(error: ureq::Error) -> TransportError {
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
