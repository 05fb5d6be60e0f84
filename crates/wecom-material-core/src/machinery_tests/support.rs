//! The transport side of the task loop, in memory and at virtual time (after quinn-proto's
//! `tests/util.rs` `Pair::drive`): a scripted [`Server`] answers gettoken and business
//! requests, a `Vec` is the sink, and a virtual clock jumps to the end of every `Wait`.
//!
//! [`Transport::step`] does one turn of the loop of `crate::task` exactly as
//! its docs say a transport does it; [`Transport::run`] turns it until `Done`.
#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::names::{
    Action, Body, ClientState, CorpSecret, DecodeError, Error, Event, Exchange, GetToken, LaneId,
    Payload, PayloadMeter, Replay, Task, Timeouts, TransportError,
};
use bytes::Bytes;

/// The most turns [`Transport::run`] takes before it calls the task stuck.
pub const MAX_STEPS: usize = 10_000;

/// A request as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `gettoken`, or `METHOD PATH token=T` plus ` range=…` when a Range header was sent.
    pub line: String,
    /// The timeout profile the task asked for.
    pub lane: Timeouts,
    /// The body bytes as they went on the wire.
    pub body: Vec<u8>,
    /// Virtual time since the transport started.
    pub at: Duration,
    /// The request's URI (for signed object-storage URLs).
    pub uri: String,
}

/// Where a scripted body stops early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// The whole body is delivered.
    No,
    /// The body ends (cleanly) after this many bytes.
    EndAfter(usize),
    /// The connection fails after this many bytes.
    FailAfter(usize),
}

/// One scripted answer.
#[derive(Debug)]
pub enum Reply {
    /// Sending fails.
    Fail(TransportError),
    /// A response.
    Answer {
        /// Its head.
        head: http::response::Parts,
        /// Its whole body (as announced).
        body: Vec<u8>,
        /// Where it stops.
        cut: Cut,
    },
}

impl Reply {
    /// The same reply with its body cut.
    pub fn cut(self, at: Cut) -> Self {
        match self {
            Reply::Answer { head, body, .. } => Reply::Answer {
                head,
                body,
                cut: at,
            },
            fail => fail,
        }
    }
}

/// A response with these headers and body.
pub fn answer(status: u16, headers: &[(&str, String)], body: impl Into<Vec<u8>>) -> Reply {
    let mut builder = http::Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    let (head, ()) = builder.body(()).unwrap().into_parts();
    Reply::Answer {
        head,
        body: body.into(),
        cut: Cut::No,
    }
}

/// A JSON answer on HTTP 200.
pub fn json(body: &str) -> Reply {
    let len = body.len().to_string();
    answer(
        200,
        &[
            ("content-type", "application/json; charset=UTF-8".into()),
            ("content-length", len),
        ],
        body.as_bytes(),
    )
}

/// A gettoken answer with this token.
pub fn token(token: &str) -> Reply {
    json(&format!(
        r#"{{"errcode":0,"errmsg":"ok","access_token":"{token}","expires_in":7200}}"#
    ))
}

/// An error answer with this code, on HTTP 200.
pub fn errcode(code: i64) -> Reply {
    json(&format!(
        r#"{{"errcode":{code},"errmsg":"scripted {code}"}}"#
    ))
}

/// An upload answer.
pub fn uploaded(media_id: &str) -> Reply {
    json(&format!(
        r#"{{"errcode":0,"errmsg":"ok","type":"file","media_id":"{media_id}","created_at":"1380000000"}}"#
    ))
}

/// A media answer: 200 with the whole `bytes`.
pub fn media_whole(bytes: &[u8]) -> Reply {
    answer(
        200,
        &[
            ("content-type", "application/octet-stream".into()),
            ("content-length", bytes.len().to_string()),
            (
                "content-disposition",
                r#"attachment; filename="a.bin""#.into(),
            ),
        ],
        bytes,
    )
}

/// A 206 answer with `media[first..=last]`.
pub fn media_range(media: &[u8], first: usize, last: usize) -> Reply {
    answer(
        206,
        &[
            ("content-type", "application/octet-stream".into()),
            ("content-length", (last - first + 1).to_string()),
            (
                "content-range",
                format!("bytes {first}-{last}/{}", media.len()),
            ),
        ],
        &media[first..=last],
    )
}

/// Parses `bytes=A-B` (as the core sends it).
pub fn parse_range(range: &str) -> (usize, usize) {
    let (a, b) = range
        .strip_prefix("bytes=")
        .and_then(|r| r.split_once('-'))
        .unwrap_or_else(|| panic!("unexpected Range {range:?}"));
    (a.parse().unwrap(), b.parse().unwrap())
}

type Business = Box<dyn FnMut(&Seen) -> Reply>;

/// A scripted server: gettoken answers from a queue, business answers from a queue or a
/// closure; it records every request.
pub struct Server {
    tokens: VecDeque<Reply>,
    business: Business,
    /// Every request received, in order.
    pub seen: Vec<Seen>,
}

impl Server {
    /// Answers business requests from `business`, in order.
    pub fn scripted(
        tokens: impl IntoIterator<Item = Reply>,
        business: impl IntoIterator<Item = Reply>,
    ) -> Self {
        let mut queue: VecDeque<Reply> = business.into_iter().collect();
        Self::with(tokens, move |seen| {
            queue
                .pop_front()
                .unwrap_or_else(|| panic!("unexpected business request {}", seen.line))
        })
    }

    /// Answers business requests with `business`.
    pub fn with(
        tokens: impl IntoIterator<Item = Reply>,
        business: impl FnMut(&Seen) -> Reply + 'static,
    ) -> Self {
        Self {
            tokens: tokens.into_iter().collect(),
            business: Box::new(business),
            seen: Vec::new(),
        }
    }

    /// Serves `media` like WeCom: a request without Range gets 830002 when the media is
    /// larger than `whole_limit`, else the whole media; a Range request gets a 206.
    pub fn media(
        tokens: impl IntoIterator<Item = Reply>,
        media: Vec<u8>,
        whole_limit: usize,
    ) -> Self {
        Self::with(tokens, move |seen| match seen.line.split_once(" range=") {
            None if media.len() > whole_limit => errcode(830002),
            None => media_whole(&media),
            Some((_, range)) => {
                let (first, last) = parse_range(range);
                media_range(&media, first, last.min(media.len() - 1))
            }
        })
    }

    /// The request lines, in order.
    pub fn lines(&self) -> Vec<&str> {
        self.seen.iter().map(|s| s.line.as_str()).collect()
    }

    /// The bodies of the requests whose line starts with `prefix`.
    pub fn bodies(&self, prefix: &str) -> Vec<&[u8]> {
        self.seen
            .iter()
            .filter(|s| s.line.starts_with(prefix))
            .map(|s| s.body.as_slice())
            .collect()
    }

    fn answer(&mut self, seen: Seen) -> Reply {
        let reply = if seen.line == "gettoken" {
            self.tokens.pop_front().expect("unexpected gettoken")
        } else {
            (self.business)(&seen)
        };
        self.seen.push(seen);
        reply
    }
}

/// What the transport did besides sending and streaming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// A wait: how long the clock moved, and whether it was wakeable.
    Wait {
        /// How far the virtual clock moved (0 when woken at once).
        slept: Duration,
        /// Whether a wake-up could end it.
        wakeable: bool,
    },
    /// `WakeOthers`.
    WakeOthers,
    /// `FlushSink`.
    Flush,
}

/// The payload source of an upload whose bytes the transport holds (a file, a reader).
#[derive(Debug)]
pub struct Source {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// How often it was read from the start.
    pub reads: u32,
}

type WakeHook = Box<dyn FnMut(&mut ClientState) -> bool>;
type EventHook = Box<dyn FnMut(Event) -> Event>;

/// The transport: moves bytes between a task, the server, the sink and the source.
pub struct Transport {
    /// The virtual clock.
    pub now: Instant,
    start: Instant,
    /// The server.
    pub server: Server,
    /// The download sink.
    pub sink: Vec<u8>,
    /// The upload source for `Payload::External`.
    pub source: Option<Source>,
    /// The most bytes one `Stream` step moves (a transport's buffer).
    pub buffer: u64,
    /// Waits, wake-ups and flushes, in order.
    pub notes: Vec<Note>,
    /// Cancel the task once the sink holds at least this many bytes.
    pub cancel_at: Option<u64>,
    /// Called at a wakeable wait: returns whether something woke the task (then the clock
    /// does not move).
    pub on_wakeable_wait: Option<WakeHook>,
    /// Sees (and may change) every event before the task does: for misuse tests.
    pub tamper: Option<EventHook>,
    /// Every flush fails.
    pub fail_flush: bool,
    /// The shared token store `Store` actions run on (none: they fail).
    pub store: Option<std::sync::Arc<dyn super::names::TokenStore>>,
    bodies: std::collections::HashMap<LaneId, (Vec<u8>, usize, Cut, u16)>,
    /// Turns taken.
    pub steps: usize,
}

impl Transport {
    /// A transport talking to `server`.
    pub fn new(server: Server) -> Self {
        let now = Instant::now();
        Self {
            now,
            start: now,
            server,
            sink: Vec::new(),
            source: None,
            buffer: 1 << 20,
            notes: Vec::new(),
            cancel_at: None,
            on_wakeable_wait: None,
            tamper: None,
            fail_flush: false,
            store: None,
            bodies: std::collections::HashMap::new(),
            steps: 0,
        }
    }

    /// With an upload source of these bytes.
    pub fn with_source(mut self, bytes: Vec<u8>) -> Self {
        self.source = Some(Source { bytes, reads: 0 });
        self
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// The waits taken, as `(slept, wakeable)`.
    pub fn waits(&self) -> Vec<(Duration, bool)> {
        self.notes
            .iter()
            .filter_map(|n| match n {
                Note::Wait { slept, wakeable } => Some((*slept, *wakeable)),
                _ => None,
            })
            .collect()
    }

    /// How often the notes hold `note`.
    pub fn count(&self, note: Note) -> usize {
        self.notes.iter().filter(|n| **n == note).count()
    }

    /// Turns the loop until the task is done.
    pub fn run<T: Task>(
        &mut self,
        task: &mut T,
        state: &mut ClientState,
    ) -> Result<T::Output, Error> {
        for _ in 0..MAX_STEPS {
            if let Some(result) = self.step(task, state) {
                return result;
            }
        }
        panic!("the task did not end in {MAX_STEPS} steps");
    }

    /// One turn: poll, carry the action out, report. `Some` when the task is done.
    pub fn step<T: Task>(
        &mut self,
        task: &mut T,
        state: &mut ClientState,
    ) -> Option<Result<T::Output, Error>> {
        self.steps += 1;
        if self
            .cancel_at
            .is_some_and(|at| self.sink.len() as u64 >= at)
        {
            self.cancel_at = None;
            task.cancel(state);
        }
        let now = self.now;
        let (lane, event) = match task.poll(now, state) {
            Action::Exchange(lane, step) => (lane, self.exchange(lane, step)),
            Action::Wait { until, wakeable } => {
                let woken = wakeable && self.on_wakeable_wait.as_mut().is_some_and(|f| f(state));
                let slept = match until {
                    Some(until) if !woken => until.saturating_duration_since(now),
                    _ => Duration::ZERO,
                };
                assert!(
                    until.is_some() || woken,
                    "a task of this one-step-at-a-time transport waits for nothing"
                );
                self.now += slept;
                self.notes.push(Note::Wait { slept, wakeable });
                return None;
            }
            Action::WakeOthers => {
                self.notes.push(Note::WakeOthers);
                return None;
            }
            Action::Done(result) => return Some(result),
        };
        let event = match self.tamper.as_mut() {
            Some(tamper) => tamper(event),
            None => event,
        };
        task.on_event(self.now, state, lane, event);
        None
    }

    /// Carries one exchange step out (what `step` does with an `Exchange` action).
    pub fn exchange(&mut self, lane: LaneId, step: Exchange) -> Event {
        match step {
            Exchange::Send { request, timeouts } => self.send(lane, request, timeouts),
            Exchange::ReadBody { limit } => self.read_body(lane, limit),
            Exchange::Stream { max, at } => self.stream(lane, max, at),
            Exchange::Write { at, bytes } => {
                self.write_at(lane, at, &bytes);
                Event::Written(bytes.len() as u64)
            }
            Exchange::FlushSink => {
                self.notes.push(Note::Flush);
                Event::Flushed(self.fail_flush.then(|| std::io::Error::other("disk full")))
            }
            Exchange::Store(command) => Event::from_store(self.store.as_deref(), command),
        }
    }

    /// Bytes into the sink: appended on lane 0 (a stream), at their offset on other lanes (a
    /// file).
    fn write_at(&mut self, lane: LaneId, at: u64, bytes: &[u8]) {
        if lane == LaneId::MAIN {
            self.sink.extend_from_slice(bytes);
            return;
        }
        let at = usize::try_from(at).unwrap();
        if self.sink.len() < at + bytes.len() {
            self.sink.resize(at + bytes.len(), 0);
        }
        self.sink[at..at + bytes.len()].copy_from_slice(bytes);
    }

    fn send(&mut self, lane_id: LaneId, request: http::Request<Body>, lane: Timeouts) -> Event {
        // A body the task did not read (it ended, or moved on) goes with its response.
        self.bodies.remove(&lane_id);
        let uri = request.uri();
        let line = if uri.path() == "/cgi-bin/gettoken" {
            assert_eq!(lane, Timeouts::Json, "gettoken is a JSON call");
            "gettoken".to_owned()
        } else {
            let token = uri
                .query()
                .unwrap_or("")
                .split('&')
                .find_map(|kv| kv.strip_prefix("access_token="));
            let mut line = format!("{} {}", request.method(), uri.path());
            // Every WeCom request carries the token; an object-storage request a signature.
            match token {
                Some(token) => line.push_str(&format!(" token={token}")),
                None => assert!(uri.query().is_some_and(|q| q.contains("X-Amz-Signature="))),
            }
            if let Some(range) = request.headers().get(http::header::RANGE) {
                line.push_str(" range=");
                line.push_str(range.to_str().unwrap());
            }
            line
        };
        let body = self.encode(request.body());
        if let Some(len) = request.headers().get(http::header::CONTENT_LENGTH) {
            assert_eq!(
                len.to_str().unwrap(),
                body.len().to_string(),
                "Content-Length"
            );
        }
        let seen = Seen {
            line,
            lane,
            body,
            at: self.elapsed(),
            uri: uri.to_string(),
        };
        match self.server.answer(seen) {
            Reply::Fail(error) => Event::TransportFailed(error),
            Reply::Answer { head, body, cut } => {
                let status = head.status.as_u16();
                self.bodies.insert(lane_id, (body, 0, cut, status));
                Event::Head(head)
            }
        }
    }

    /// The wire bytes of a body; an external payload is read from the source through a
    /// [`PayloadMeter`], as a transport streams a file.
    fn encode(&mut self, body: &Body) -> Vec<u8> {
        match body {
            Body::Empty => Vec::new(),
            Body::Bytes(b) => b.to_vec(),
            Body::Upload(upload) => {
                let mut wire = upload.head.to_vec();
                match &upload.payload {
                    Payload::Bytes(b) => wire.extend_from_slice(b),
                    Payload::External { len, replay } => {
                        let source = self.source.as_mut().expect("an upload source");
                        if *replay == Replay::OneShot {
                            assert_eq!(source.reads, 0, "a one-shot source was read twice");
                        }
                        source.reads += 1;
                        let meter = PayloadMeter::new(*len, *replay);
                        let mut meter = meter.for_attempt(upload);
                        let mut from = source.bytes.as_slice();
                        let mut buf = [0u8; 4096];
                        loop {
                            let want = meter.want(buf.len());
                            if want == 0 {
                                break;
                            }
                            let n = std::io::Read::read(&mut from, &mut buf[..want]).unwrap();
                            let chunk = &buf[..n];
                            meter.on_chunk(chunk).expect("the source fits its length");
                            wire.extend_from_slice(&buf[..n]);
                        }
                    }
                }
                wire.extend_from_slice(&upload.tail);
                wire
            }
        }
    }

    fn read_body(&mut self, lane: LaneId, limit: usize) -> Event {
        let (body, pos, cut, status) = self
            .bodies
            .remove(&lane)
            .expect("ReadBody without a response");
        let rest = &body[pos..];
        match cut {
            Cut::FailAfter(_) => {
                Event::TransportFailed(TransportError::maybe_sent("connection reset"))
            }
            _ if rest.len() > limit => Event::Local(Error::Decode(DecodeError::new(
                status,
                format!("body longer than {limit} bytes"),
                b"",
            ))),
            Cut::EndAfter(n) => Event::Body(Bytes::copy_from_slice(&rest[..n.min(rest.len())])),
            Cut::No => Event::Body(Bytes::copy_from_slice(rest)),
        }
    }

    fn stream(&mut self, lane: LaneId, max: u64, at: u64) -> Event {
        assert!(max >= 1, "Stream asks for at least one byte");
        let (body, pos, cut, status) = self
            .bodies
            .remove(&lane)
            .expect("Stream without a response");
        let end = match cut {
            Cut::No => body.len(),
            Cut::EndAfter(n) | Cut::FailAfter(n) => n.min(body.len()),
        };
        let n = (end - pos).min(usize::try_from(max.min(self.buffer)).unwrap());
        if n == 0 {
            return match cut {
                Cut::FailAfter(_) => {
                    Event::TransportFailed(TransportError::maybe_sent("connection reset"))
                }
                _ => Event::BodyEnd,
            };
        }
        self.write_at(lane, at, &body[pos..pos + n]);
        self.bodies.insert(lane, (body, pos + n, cut, status));
        Event::Written(n as u64)
    }
}

/// A client's shared state with the test credentials.
pub fn client() -> ClientState {
    ClientState::new(GetToken::new("ww1", CorpSecret::new("secret-xyz")))
}
