//! The one loop that drives any core [`Task`] over ureq: it sends what the task says, reads
//! or streams bodies within the limits the task gives, sleeps, wakes, and reports back. No
//! protocol decision is made here.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::time::Instant;

use wecom_material_core::task::{Action, Event, Lane, Task, UploadReader, blocking};
use wecom_material_core::{Body, Error, RedactedUri, Transfer, TransportError};

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

/// The task's I/O ends: an upload source (`.0`) and a download sink (`.1`).
#[derive(Default)]
pub(crate) struct Ends<'a>(
    pub(crate) Option<Source<'a>>,
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
                Action::ReadBody { limit } => match body.take() {
                    Some((status, reader)) => blocking::read_body(reader, status, limit),
                    None => Event::BodyEnd,
                },
                Action::Stream { max } => match (body.as_mut(), ends.1.as_deref_mut()) {
                    (Some((_, reader)), Some(sink)) => {
                        buf.resize(blocking::STREAM_BUFFER, 0);
                        blocking::stream_once(reader, &mut buf, max, sink)
                    }
                    _ => Event::BodyEnd,
                },
                Action::Write(bytes) => blocking::write_all(ends.1.as_deref_mut(), &bytes),
                Action::FlushSink => blocking::flush(ends.1.as_deref_mut()),
                Action::Store(command) => Event::from_store(shared.store.as_deref(), command),
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
                let source = ends.0.as_mut().map(open).transpose();
                let source =
                    source.map_err(|e| Event::Local(Error::io("reading the upload", e)))?;
                let mut reader = UploadReader::new(upload, source, *t).map_err(Event::Local)?;
                let body = ureq::SendBody::from_reader(&mut reader);
                let result = agent.run(http::Request::from_parts(parts, body));
                if let Some(failure) = reader.take_failure() {
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
        Source::Reader(once) => once.take().ok_or_else(|| io::Error::other("sent already")),
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
