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

/// A response head with its unread body, or what to report instead.
type Sent = Result<(http::response::Parts, ureq::BodyReader<'static>), Event>;

/// The task's I/O ends: an upload source with its meter (`.0`) and a download sink (`.1`).
#[derive(Default)]
pub(crate) struct Ends<'a>(
    pub(crate) Option<(Source<'a>, PayloadMeter)>,
    pub(crate) Option<&'a mut dyn Write>,
);

impl Client {
    /// Runs `task` to its end.
    pub(crate) fn drive<T: Task>(
        &self,
        mut task: T,
        mut ends: Ends<'_>,
        transfer: &Transfer<'_>,
    ) -> Result<T::Output, Error> {
        let shared = &*self.0;
        let mut body: Option<(u16, ureq::BodyReader<'static>)> = None;
        let mut buf = Vec::new();
        loop {
            let mut state = shared.lock();
            if transfer.is_cancelled() {
                task.cancel(&mut state);
            }
            let now = Instant::now();
            let action = task.poll(now, &mut state);
            if let Action::Wait {
                until,
                wakeable: true,
            } = action
            {
                // Waited on with the lock held since the poll: no wake-up is missed.
                drop(
                    shared
                        .wake
                        .wait_timeout(state, until.saturating_duration_since(now)),
                );
                continue;
            }
            drop(state);
            let event = match action {
                Action::Done(result) => return result,
                Action::Wait { until, .. } => {
                    std::thread::sleep(until.saturating_duration_since(now));
                    continue;
                }
                Action::WakeOthers => {
                    shared.wake.notify_all();
                    continue;
                }
                Action::Send { request, lane } => {
                    body = None;
                    let sent = self.send(request, lane, &mut ends, transfer);
                    sent.map_or_else(
                        |event| event,
                        |(head, reader)| {
                            body = Some((head.status.as_u16(), reader));
                            Event::Head(head)
                        },
                    )
                }
                Action::ReadBody { limit } => read_whole(body.take(), limit),
                Action::Stream { max } => {
                    buf.resize(usize::try_from(max).unwrap_or(usize::MAX).min(64 * 1024), 0);
                    let body = body.as_mut().map(|(_, reader)| reader);
                    stream_once(body, &mut buf, ends.1.as_deref_mut())
                }
                Action::FlushSink => {
                    Event::Flushed(ends.1.as_deref_mut().and_then(|s| s.flush().err()))
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
    fn send(&self, req: http::Request<Body>, lane: Lane, ends: &mut Ends, t: &Transfer) -> Sent {
        log::debug!("{} {}", req.method(), RedactedUri(req.uri()));
        let agent = match lane {
            Lane::Json => &self.0.json_agent,
            Lane::Media => &self.0.media_agent,
        };
        let (parts, body) = req.into_parts();
        let result = match body {
            Body::Empty => agent.run(http::Request::from_parts(parts, ())),
            Body::Bytes(bytes) => agent.run(http::Request::from_parts(parts, &bytes[..])),
            Body::Upload(upload) => {
                let mut failure = None;
                let (reader, meter): (Box<dyn Read + Send>, _) =
                    match (&upload.payload, &mut ends.0) {
                        (Payload::Bytes(b), _) => (
                            Box::new(Cursor::new(b.clone())),
                            PayloadMeter::new(b.len() as u64, Replay::OneShot),
                        ),
                        (Payload::External { .. }, Some((source, meter))) => (
                            open(source).map_err(|e| local("reading the upload", e))?,
                            meter.clone(),
                        ),
                        (Payload::External { .. }, None) => {
                            return Err(local("sending an upload", io::ErrorKind::NotFound.into()));
                        }
                    };
                let payload = Metered {
                    reader,
                    meter,
                    transfer: t,
                    failure: &mut failure,
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
fn open<'s>(source: &'s mut Source<'_>) -> io::Result<Box<dyn Read + Send + 's>> {
    match source {
        Source::File(file) => file.seek(SeekFrom::Start(0)).map(|_| Box::new(&*file) as _),
        Source::Reader(reader) => reader
            .take()
            .ok_or_else(|| io::Error::other("sent already")),
    }
}

fn local(context: &str, error: io::Error) -> Event {
    Event::Local(Error::io(context, error))
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
        let want = self.meter.want(buf.len());
        let read = match self.transfer.is_cancelled() {
            true => Err(Error::Cancelled { bytes_written: 0 }),
            false => {
                (self.reader.read(&mut buf[..want])).map_err(|e| Error::io("reading the upload", e))
            }
        };
        let counted = read.and_then(|n| self.meter.on_read(n as u64).map(|()| n));
        let p = self.meter.progress();
        self.transfer.report(p.done, p.total);
        counted.map_err(|error| {
            let message = error.to_string();
            *self.failure = Some(error);
            io::Error::other(message)
        })
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
        Err(e) => local("writing the download", e),
    }
}

/// Maps ureq's error to whether the request may have left. Its text never holds the URI
/// (and so never the token): ureq's errors name hosts, not URIs.
fn transport_error(error: ureq::Error) -> TransportError {
    use ureq::{Error as E, Timeout as T};
    let refused = |e: &io::Error| e.kind() == io::ErrorKind::ConnectionRefused;
    match &error {
        E::BadUri(_) | E::Http(_) => TransportError::not_sent("invalid request URI"),
        E::HostNotFound | E::ConnectionFailed | E::Timeout(T::Resolve | T::Connect) => {
            TransportError::not_sent(error.to_string())
        }
        E::Io(e) if refused(e) => TransportError::not_sent(error.to_string()),
        _ => TransportError::maybe_sent(error.to_string()),
    }
}
