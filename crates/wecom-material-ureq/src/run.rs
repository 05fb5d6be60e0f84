//! The one loop that drives any core [`Task`] over ureq: it runs the exchange steps the task
//! hands out — lane 0 in the loop, every other lane on a thread of its own so that ranges
//! run at once — sleeps, wakes, and reports back. No protocol decision is made here.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::mpsc::{self, Sender};
use std::task::{Wake, Waker};
use std::thread::Scope;
use std::time::Instant;

use wecom_material_core::task::{Action, Controlled, Event, Exchange, LaneId, Task, Timeouts};
use wecom_material_core::task::{UploadReader, blocking};
use wecom_material_core::{Error, Transfer, TransportError, body::Body, secret::RedactedUri};
use wecom_material_host::FileSink;

use crate::client::Client;

/// Where an upload's payload comes from: a file, or a reader read once.
pub type Source<'a> = wecom_material_host::Source<Box<dyn Read + Send + 'a>>;

/// Where a download's bytes go.
pub enum Sink<'a> {
    /// Nowhere (a JSON call).
    None,
    /// A stream: bytes come in order, from lane 0 only.
    Stream(&'a mut dyn Write),
    /// A file, written at offsets from any lane.
    File(FileSink<'a>),
}

/// What reaches a loop: a lane's event, or a wake-up from another task of the client.
enum Msg {
    Event(LaneId, Event),
    Wake,
}

/// Wakes a loop through its channel.
struct WakeLoop(Sender<Msg>);

impl Wake for WakeLoop {
    fn wake(self: Arc<Self>) {
        let _ = self.0.send(Msg::Wake);
    }
}

/// A lane's response body and read buffer.
#[derive(Default)]
struct LaneIo {
    body: Option<(u16, ureq::BodyReader<'static>)>,
    buf: Vec<u8>,
}

impl Client {
    /// Runs any core [`Task`] to its end over this client (its connection pool, token
    /// cache and wake-ups): the entry point for an operation the client has no method for,
    /// and what the conformance kit drives. `source` gives an upload's payload, `sink`
    /// takes a download's bytes; `transfer` reports progress and carries the cancel flag and
    /// the deadline (applied by the core's [`Controlled`]). A step in flight (an upload's
    /// body, a wait for an answer) is not interrupted: the idle timeout bounds it, and the
    /// cancel or deadline ends the task right after it.
    pub fn drive<T: Task>(
        &self,
        task: &mut T,
        mut source: Option<Source<'_>>,
        mut sink: Sink<'_>,
        transfer: &Transfer,
    ) -> Result<T::Output, Error> {
        let shared = &self.0.shared;
        let (tx, rx) = mpsc::channel();
        let file = match &sink {
            Sink::File(file) => Some(*file),
            _ => None,
        };
        let mut task = Controlled::new(task, transfer.clone());
        std::thread::scope(|scope| {
            let (mut main, mut lanes) = (LaneIo::default(), HashMap::new());
            loop {
                let mut state = shared.lock();
                let now = Instant::now();
                let (lane, event) = match task.poll(now, &mut state) {
                    Action::Exchange(LaneId::MAIN, step) => {
                        drop(state);
                        let io = (&mut main, source.as_mut(), &mut sink);
                        (LaneId::MAIN, self.exchange(step, io, transfer))
                    }
                    Action::Exchange(lane, step) => {
                        drop(state);
                        let worker = lanes
                            .entry(lane)
                            .or_insert_with(|| self.worker(scope, lane, file, tx.clone()));
                        let _ = worker.send(step);
                        continue;
                    }
                    Action::Wait { until, wakeable } => {
                        if wakeable {
                            let waker = Waker::from(Arc::new(WakeLoop(tx.clone())));
                            shared.register(&state, waker);
                        }
                        drop(state);
                        let msg = match until {
                            Some(until) => {
                                rx.recv_timeout(until.saturating_duration_since(now)).ok()
                            }
                            None => rx.recv().ok(),
                        };
                        match msg {
                            Some(Msg::Event(lane, event)) => (lane, event),
                            _ => continue,
                        }
                    }
                    Action::WakeOthers => {
                        drop(state);
                        shared.wake_all();
                        continue;
                    }
                    Action::Done(result) => return result,
                };
                task.on_event(Instant::now(), &mut shared.lock(), lane, event);
            }
        })
    }

    /// A thread that runs the steps of `lane` (a range of a download into a file).
    fn worker<'s>(
        &'s self,
        scope: &'s Scope<'s, '_>,
        lane: LaneId,
        file: Option<FileSink<'s>>,
        events: Sender<Msg>,
    ) -> Sender<Exchange> {
        let (tx, steps) = mpsc::channel::<Exchange>();
        scope.spawn(move || {
            let (mut io, mut sink) = (LaneIo::default(), file.map_or(Sink::None, Sink::File));
            let none = &Transfer::default();
            for step in steps {
                let event = self.exchange(step, (&mut io, None, &mut sink), none);
                if events.send(Msg::Event(lane, event)).is_err() {
                    break;
                }
            }
        });
        tx
    }

    /// Runs one exchange step of a lane.
    fn exchange(
        &self,
        step: Exchange,
        (lane, source, sink): (&mut LaneIo, Option<&mut Source<'_>>, &mut Sink<'_>),
        transfer: &Transfer,
    ) -> Event {
        match step {
            Exchange::Send { request, timeouts } => {
                lane.body = None;
                match self.send(request, timeouts, source, transfer) {
                    Ok((head, reader)) => {
                        lane.body = Some((head.status.as_u16(), reader));
                        Event::Head(head)
                    }
                    Err(event) => event,
                }
            }
            Exchange::ReadBody { limit } => match lane.body.take() {
                Some((status, reader)) => blocking::read_body(reader, status, limit),
                None => Event::BodyEnd,
            },
            Exchange::Stream { max, at } => match lane.body.as_mut() {
                Some((_, reader)) => {
                    lane.buf.resize(blocking::STREAM_BUFFER, 0);
                    blocking::stream_once(reader, &mut lane.buf, max, |b| sink.write_at(at, b))
                }
                None => Event::BodyEnd,
            },
            Exchange::Write { at, bytes } => Event::written(sink.write_at(at, &bytes), bytes.len()),
            Exchange::FlushSink => Event::Flushed(sink.flush().err()),
            Exchange::Store(command) => Event::from_store(self.0.shared.store.as_deref(), command),
        }
    }

    /// Sends one request; an upload's payload comes from `source`.
    fn send(
        &self,
        request: http::Request<Body>,
        timeouts: Timeouts,
        source: Option<&mut Source<'_>>,
        transfer: &Transfer,
    ) -> Result<(http::response::Parts, ureq::BodyReader<'static>), Event> {
        log::debug!("{} {}", request.method(), RedactedUri(request.uri()));
        let agent = match timeouts {
            Timeouts::Json => &self.0.json_agent,
            Timeouts::Media => &self.0.media_agent,
        };
        let (parts, body) = request.into_parts();
        let result = match body {
            Body::Empty => agent.run(http::Request::from_parts(parts, ())),
            Body::Bytes(bytes) => agent.run(http::Request::from_parts(parts, &bytes[..])),
            Body::Upload(upload) => {
                let opened = source
                    .map(|s| s.open(|file| Box::new(file) as _))
                    .transpose();
                let opened =
                    opened.map_err(|e| Event::Local(Error::io("reading the upload", e)))?;
                let mut reader =
                    UploadReader::new(upload, opened, transfer.clone()).map_err(Event::Local)?;
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

impl Sink<'_> {
    fn write_at(&mut self, at: u64, bytes: &[u8]) -> io::Result<()> {
        match self {
            Sink::Stream(stream) => stream.write_all(bytes),
            Sink::File(file) => file.write_at(at, bytes),
            Sink::None => Err(io::Error::other("this call has no download sink")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Stream(stream) => stream.flush(),
            Sink::File(file) => file.flush(),
            Sink::None => Ok(()),
        }
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
