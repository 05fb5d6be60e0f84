//! The whole-operation tasks (`DownloadTask`, `CallTask`, `JobWaitTask`) driven by a transport
//! that answers from the fuzzer's bytes: arbitrary heads (status, Content-Type, Content-Range,
//! Content-Length, Content-Disposition), bodies, byte counts, transport and sink failures,
//! cancels, callback events during a job wait, and now and then an event that answers nothing.
//! One run in three shares the token through a store that answers from the fuzzer's bytes
//! too (any LOOKUP / COMMIT reply, a reply of the wrong kind, an unreachable store).
//! Numbers from outside are huge now and then (issue 19): `expires_in` up to 2^64 − 1,
//! tokens over 512 bytes, store grants living for centuries, `Content-Length` and
//! `Content-Range` totals near 2^64, download deadlines (through `Controlled`) of any length, and jumps of the
//! clock by up to 136 years between events.
//!
//! Checked: no panic; no request asks for a Range of more than 20,000,000 bytes (or of more
//! than the task's chunk size, or open-ended); `Stream` never asks for 0 bytes; a download's
//! result and `Error::Cancelled` count exactly the bytes that reached the sink; a job wait's
//! mailbox is closed when it ends; a finished task polled again says so instead of panicking;
//! and every task ends. Once the input is used up, the transport fails every request and ends
//! every body, so a task that has not ended within a few hundred turns after that is stuck
//! (virtual time jumps over every wait).
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use wecom_material_core::download::MAX_CHUNK_SIZE;
use wecom_material_core::multipart::Boundary;
use wecom_material_core::ops::upload_media::UploadMedia;
use wecom_material_core::shared_token::CommitReply;
use wecom_material_core::shared_token::LookupReply;
use wecom_material_core::shared_token::StoreCommand;
use wecom_material_core::shared_token::StoreReply;
use wecom_material_core::shared_token::StoredGrant;
use wecom_material_core::task::{Controlled, Exchange, LaneId};
use wecom_material_core::Transfer;
use wecom_material_core::{AccessToken, ClientSettings, Fallback, SharedTokenPolicy, StoreError};
use wecom_material_core::{
    Action, BaseUrl, CallTask, ClientState, DecodeError, DownloadOptions, DownloadTask, Error,
    Event, JobId, JobWaitTask, Limits, MediaId, MediaType, PollPolicy, ResumeRecord, RetryPolicy,
    Task, Timeouts, TransportError,
};

/// Turns allowed once the input is used up.
const TAIL_STEPS: usize = 500;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let _ = run(&mut u, data.len());
});

fn run(u: &mut Unstructured<'_>, input_len: usize) -> Result<()> {
    let base = BaseUrl::parse("http://127.0.0.1:1").unwrap();
    let mut settings = ClientSettings::new("ww1", "s3cret");
    settings.base = base.clone();
    let mut state = ClientState::for_client(&settings);
    if u.ratio(1, 3)? {
        let fallback = if u.arbitrary()? {
            Fallback::Local
        } else {
            Fallback::Fail
        };
        settings.shared_token = Some(SharedTokenPolicy {
            fallback,
            ..SharedTokenPolicy::default()
        });
        state = ClientState::for_client(&settings);
    }
    let policy = RetryPolicy::default();
    let kind = u.int_in_range(0..=3u8)?;
    if kind == 0 {
        let chunk = if u.arbitrary::<bool>()? {
            MAX_CHUNK_SIZE
        } else {
            u.int_in_range(1..=MAX_CHUNK_SIZE)?
        };
        let mut options = DownloadOptions::default();
        if u.arbitrary::<bool>()? {
            options = options.hd_voice();
        }
        if u.ratio(1, 4)? {
            options = options.resume_from(u.arbitrary()?);
        }
        if u.ratio(1, 4)? {
            options = options.max_len(u.arbitrary()?);
        }
        let mut transfer = Transfer::default();
        if u.ratio(1, 4)? {
            transfer = transfer.with_deadline(Duration::from_secs(u.arbitrary()?));
        }
        settings.chunk_size = chunk;
        let Ok(mut task) = DownloadTask::new(MediaId::new("m"), options, &settings, 1) else {
            return Ok(());
        };
        let mut fuzz = Fuzz::new(u, chunk, input_len);
        let result = fuzz.drive(&mut Controlled::new(&mut task, transfer), &mut state);
        match result {
            Ok(done) => assert_eq!(done.bytes_written, fuzz.written),
            Err(Error::Cancelled { bytes, .. } | Error::DeadlineExceeded { bytes, .. }) => {
                assert_eq!(bytes, fuzz.written)
            }
            Err(_) => {}
        }
        assert!(matches!(
            task.poll(fuzz.now, &mut state),
            Action::Done(Err(_))
        ));
    } else if kind == 2 {
        let wait = Duration::from_secs(u.int_in_range(0..=120)?);
        let mut fuzz = Fuzz::new(u, MAX_CHUNK_SIZE, input_len);
        fuzz.deliver_events = true;
        let deadline = fuzz.now + wait;
        settings.poll_policy = PollPolicy::default();
        let mut task = JobWaitTask::new(JobId::new("J1"), deadline, &settings, 3).unwrap();
        let _ = fuzz.drive(&mut task, &mut state);
        assert_eq!(state.waiting_jobs(), 0, "the mailbox is closed at the end");
        assert!(matches!(
            task.poll(fuzz.now, &mut state),
            Action::Done(Err(_))
        ));
    } else if kind == 3 {
        // A download in ranges: several lanes, positioned writes, 45033 halving, a record
        // (sometimes one from a previous run, sometimes a crafted one).
        let chunk = u.int_in_range(1..=MAX_CHUNK_SIZE)?;
        settings.chunk_size = chunk;
        let options = DownloadOptions::default().connections(u.int_in_range(0..=16)?);
        let record = if u.ratio(1, 3)? {
            let total = u.arbitrary()?;
            let done = (0..u.int_in_range(0..=4)?)
                .map(|_| Ok((u.arbitrary()?, u.arbitrary()?)))
                .collect::<Result<Vec<(u64, u64)>>>()?;
            Some(ResumeRecord { total, done })
        } else {
            None
        };
        let Ok(mut task) =
            DownloadTask::in_ranges(MediaId::new("m"), options, &settings, 1, record)
        else {
            return Ok(());
        };
        let mut fuzz = Fuzz::new(u, chunk, input_len);
        let result = fuzz.drive(&mut task, &mut state);
        if let Some(record) = task.resume_record() {
            assert!(
                record.validate().is_ok(),
                "the record it keeps is well-formed: {record:?}"
            );
        }
        if result.is_ok() {
            assert!(task.resume_record().is_some_and(|r| r.is_complete()));
        }
        assert!(matches!(
            task.poll(fuzz.now, &mut state),
            Action::Done(Err(_))
        ));
    } else {
        let op = UploadMedia::from_bytes(
            MediaType::File,
            "a.bin",
            bytes::Bytes::from_static(b"0123456789"),
            Boundary::from_entropy([3; 16]),
            &Limits::default(),
        )
        .unwrap();
        let mut task = CallTask::new(op, base, policy, 2, Timeouts::Media);
        let mut fuzz = Fuzz::new(u, MAX_CHUNK_SIZE, input_len);
        let _ = fuzz.drive(&mut task, &mut state);
        assert!(matches!(
            task.poll(fuzz.now, &mut state),
            Action::Done(Err(_))
        ));
    }
    Ok(())
}

/// The transport: every answer comes from the fuzzer's bytes.
struct Fuzz<'u, 'a> {
    u: &'u mut Unstructured<'a>,
    chunk: u64,
    input_len: usize,
    now: Instant,
    /// Each lane's current body: bytes the transport can still deliver.
    body_left: std::collections::HashMap<LaneId, u64>,
    /// Bytes reported as written within the `max` asked.
    written: u64,
    /// At wakeable waits, deliver job-finished events (for job waits).
    deliver_events: bool,
    /// Lanes whose step was answered on another lane: still owed their one event.
    misrouted: Vec<LaneId>,
}

impl<'u, 'a> Fuzz<'u, 'a> {
    fn new(u: &'u mut Unstructured<'a>, chunk: u64, input_len: usize) -> Self {
        Self {
            u,
            chunk,
            input_len,
            now: Instant::now(),
            body_left: Default::default(),
            written: 0,
            deliver_events: false,
            misrouted: Vec::new(),
        }
    }

    fn drive<T: Task>(
        &mut self,
        task: &mut T,
        state: &mut ClientState,
    ) -> Result<T::Output, Error> {
        let mut tail = 0;
        for _ in 0..self.input_len + TAIL_STEPS {
            if self.u.is_empty() {
                tail += 1;
            }
            if self.pick(1, 100) {
                task.cancel(state);
            }
            let action = task.poll(self.now, state);
            let stray = self.pick(1, 50);
            // Now and then the clock jumps far ahead (never past what `Instant` holds).
            if self.pick(1, 40) {
                let jump = Duration::from_secs(u64::from(self.u.arbitrary::<u32>().unwrap_or(0)));
                self.now = self.now.checked_add(jump).unwrap_or(self.now);
            }
            let (lane, step) = match action {
                Action::Done(result) => return result,
                Action::WakeOthers => continue,
                Action::Wait { until, wakeable } => {
                    // A callback event for this job or another one; a wake-up ends the wait.
                    if wakeable && self.deliver_events && self.pick(1, 3) {
                        let job = if self.pick(1, 2) { "J1" } else { "J2" };
                        if state.deliver_job_finished(&JobId::new(job)) {
                            continue;
                        }
                    }
                    // This transport answers every step at once, so a wait without an end
                    // waits for a step answered on the wrong lane: its event comes now.
                    let Some(until) = until else {
                        let lane = self
                            .misrouted
                            .pop()
                            .expect("a wait with nothing in flight has an end");
                        let late = Event::TransportFailed(TransportError::maybe_sent("late"));
                        task.on_event(self.now, state, lane, late);
                        continue;
                    };
                    // Virtual time: the wait is over at once.
                    assert!(
                        until <= self.now + Duration::from_secs(24 * 3600),
                        "a wait of a day"
                    );
                    self.now = self.now.max(until);
                    continue;
                }
                Action::Exchange(lane, step) => (lane, step),
            };
            let event = match step {
                // Now and then an event that answers nothing asked (or, by chance, does).
                Exchange::Stream { max, .. } if stray => {
                    let event = self.stray_event();
                    if let Event::Written(n) = event
                        && (1..=max).contains(&n)
                    {
                        self.written = self.written.saturating_add(n); // a valid answer after all
                    }
                    event
                }
                _ if stray => self.stray_event(),
                Exchange::Send { request, .. } => self.send(lane, &request),
                Exchange::ReadBody { limit } => self.read_body(limit),
                Exchange::Stream { max, .. } => self.stream(lane, max),
                Exchange::Write { bytes, .. } => {
                    if self.pick(1, 8) {
                        Event::Local(Error::io("writing", std::io::ErrorKind::Other.into()))
                    } else {
                        self.written = self.written.saturating_add(bytes.len() as u64);
                        Event::Written(bytes.len() as u64)
                    }
                }
                Exchange::Store(command) => Event::Store(self.store_reply(&command)),
                Exchange::FlushSink => {
                    if self.pick(1, 8) {
                        Event::Flushed(Some(std::io::Error::other("flush failed")))
                    } else {
                        Event::Flushed(None)
                    }
                }
            };
            // Now and then the answer is reported on another lane (the step's own lane is then
            // still owed its event, which comes when the task waits for it).
            let to = if self.pick(1, 100) {
                LaneId(self.u.arbitrary().unwrap_or(0))
            } else {
                lane
            };
            if to != lane {
                self.misrouted.push(lane);
            }
            task.on_event(self.now, state, to, event);
        }
        panic!("the task did not end {tail} turns after the input was used up");
    }

    /// The store's answer: mostly one of the kind asked for, with arbitrary contents; now and
    /// then another kind or a failure; always a failure once the input is used up.
    fn store_reply(
        &mut self,
        command: &StoreCommand,
    ) -> std::result::Result<StoreReply, StoreError> {
        if self.u.is_empty() || self.pick(1, 10) {
            return Err(StoreError::new("fuzz://store: down"));
        }
        let kind = match (command, self.pick(1, 10)) {
            (_, true) => self.u.int_in_range(0..=4u8).unwrap_or(0),
            (StoreCommand::Lookup { .. }, _) => 0,
            (StoreCommand::Commit { .. }, _) => 1,
            (StoreCommand::Invalidate { .. }, _) => 2,
            (StoreCommand::Fail { .. }, _) => 3,
            (StoreCommand::Warn(_), _) => 4,
        };
        Ok(match kind {
            0 => StoreReply::Lookup(match self.u.int_in_range(0..=2u8).unwrap_or(0) {
                0 => LookupReply::Ready(self.grant()),
                1 => LookupReply::Refresh {
                    fence: self.u.arbitrary().unwrap_or(1),
                    lease: self.millis(),
                    current: self.pick(1, 3).then(|| self.grant()),
                },
                _ => LookupReply::Wait {
                    retry_in: self.millis(),
                    cooling_down: self.pick(1, 2),
                },
            }),
            1 if self.pick(1, 2) => StoreReply::Commit(CommitReply::Stored {
                generation: self.u.arbitrary().unwrap_or(1),
            }),
            1 => StoreReply::Commit(CommitReply::Superseded {
                current: self.pick(1, 2).then(|| self.grant()),
            }),
            2 => StoreReply::Invalidated,
            3 => StoreReply::Failed,
            _ => StoreReply::Warned,
        })
    }

    fn millis(&mut self) -> Duration {
        Duration::from_millis(self.u.int_in_range(0..=120_000u64).unwrap_or(0))
    }

    fn grant(&mut self) -> StoredGrant {
        let expires_in = if self.pick(1, 4) {
            Duration::ZERO
        } else if self.pick(1, 8) {
            // A store (not only Redis: any `TokenStore`) may claim any lifetime.
            Duration::from_millis(self.u.arbitrary().unwrap_or(u64::MAX))
        } else {
            Duration::from_secs(self.u.int_in_range(0..=7200u64).unwrap_or(0))
        };
        StoredGrant {
            token: AccessToken::new(if self.pick(1, 2) { "S1" } else { "S2" })
                .expect("a short token"),
            generation: self.u.arbitrary().unwrap_or(0),
            expires_in,
        }
    }

    /// `true` with probability `num / den` while input lasts, never after.
    fn pick(&mut self, num: u32, den: u32) -> bool {
        !self.u.is_empty() && self.u.ratio(num, den).unwrap_or(false)
    }

    fn send(
        &mut self,
        lane: LaneId,
        request: &http::Request<wecom_material_core::body::Body>,
    ) -> Event {
        self.body_left.insert(lane, 0);
        let range = request.headers().get(http::header::RANGE).map(|range| {
            let text = range.to_str().expect("an ASCII Range header");
            let (start, end) = text
                .strip_prefix("bytes=")
                .and_then(|r| r.split_once('-'))
                .expect("a bytes range");
            let start: u64 = start.parse().expect("a range start");
            let end: u64 = end.parse().expect("a bounded range");
            assert!(end >= start, "{text}");
            let len = end - start + 1;
            assert!(len <= MAX_CHUNK_SIZE, "a range of {len} bytes: {text}");
            assert!(
                len <= self.chunk,
                "a range of {len} bytes over the chunk size"
            );
            (start, end)
        });
        if self.u.is_empty() || self.pick(1, 10) {
            let error = if self.pick(1, 2) {
                TransportError::maybe_sent("reset")
            } else {
                TransportError::not_sent("refused")
            };
            return Event::TransportFailed(error);
        }
        let token = request.uri().path() == "/cgi-bin/gettoken";
        let mut head = http::Response::builder();
        if token && !self.pick(1, 8) {
            head = head.status(200).header("content-type", "application/json");
            return Event::Head(head.body(()).unwrap().into_parts().0);
        }
        let status = match self.u.int_in_range(0..=5).unwrap_or(0) {
            0 | 1 => 200,
            2 | 3 => 206,
            4 => 416,
            _ => self.u.int_in_range(100..=599).unwrap_or(500),
        };
        head = head.status(status);
        let content_type = match self.u.int_in_range(0..=4).unwrap_or(0) {
            0 => Some("application/octet-stream"),
            1 => Some("application/json"),
            2 => Some("text/plain"),
            3 => None,
            _ => Some("image/jpeg"),
        };
        if let Some(ct) = content_type {
            head = head.header("content-type", ct);
        }
        // A consistent Content-Range most of the time (so the fuzzer gets deep), else
        // arbitrary text.
        let (start, end) = range.unwrap_or((0, 0));
        let total: u64 = if self.pick(1, 2) {
            end.saturating_add(1 + u64::from(self.u.arbitrary::<u16>().unwrap_or(0)))
        } else {
            self.u.arbitrary().unwrap_or(0)
        };
        let body_len = if range.is_some() {
            end - start + 1
        } else {
            u64::from(self.u.arbitrary::<u16>().unwrap_or(0))
        };
        match self.u.int_in_range(0..=3).unwrap_or(0) {
            0 if range.is_some() => {
                head = head.header("content-range", format!("bytes {start}-{end}/{total}"));
            }
            1 => {
                let text: &str = self.u.arbitrary().unwrap_or("");
                head = head.header("content-range", text);
            }
            _ => {}
        }
        match self.u.int_in_range(0..=4).unwrap_or(0) {
            0 | 1 => head = head.header("content-length", body_len),
            // A length near 2^64 (a 200 past the largest media, or a lie).
            4 => {
                let huge = u64::MAX - u64::from(self.u.arbitrary::<u32>().unwrap_or(0));
                head = head.header("content-length", huge);
            }
            2 => {
                let text: &str = self.u.arbitrary().unwrap_or("");
                head = head.header("content-length", text);
            }
            _ => {}
        }
        if self.pick(1, 2) {
            let text: &str = self.u.arbitrary().unwrap_or("");
            head = head.header("content-disposition", text);
        }
        let left = if self.pick(1, 4) {
            self.u.arbitrary().unwrap_or(0)
        } else {
            body_len
        };
        self.body_left.insert(lane, left);
        match head.body(()) {
            Ok(response) => Event::Head(response.into_parts().0),
            // A header value http refuses: the transport would have failed to read the head.
            Err(_) => Event::TransportFailed(TransportError::maybe_sent("bad head")),
        }
    }

    fn read_body(&mut self, limit: usize) -> Event {
        if self.u.is_empty() || self.pick(1, 10) {
            return Event::TransportFailed(TransportError::maybe_sent("reset in body"));
        }
        let body: Vec<u8> = match self.u.int_in_range(0..=12).unwrap_or(0) {
            0 => br#"{"errcode":0,"errmsg":"ok","access_token":"T","expires_in":7200}"#.to_vec(),
            1 => br#"{"errcode":-1,"errmsg":"busy"}"#.to_vec(),
            2 => br#"{"errcode":42001,"errmsg":"expired"}"#.to_vec(),
            3 => br#"{"errcode":830002,"errmsg":"too large"}"#.to_vec(),
            4 => br#"{"errcode":45009,"errmsg":"freq"}"#.to_vec(),
            5 => br#"{"errcode":0,"errmsg":"ok","type":"file","media_id":"M","created_at":1}"#
                .to_vec(),
            6 => br#"{"errcode":0,"errmsg":"ok","access_token":"T","expires_in":1}"#.to_vec(),
            // Huge numbers and long tokens from a hostile server.
            10 if self.pick(1, 2) => {
                let expires_in: u64 = self.u.arbitrary().unwrap_or(u64::MAX);
                format!(r#"{{"errcode":0,"access_token":"T","expires_in":{expires_in}}}"#)
                    .into_bytes()
            }
            10 => {
                let len = self.u.int_in_range(500..=600usize).unwrap_or(513);
                format!(
                    r#"{{"access_token":"{}","expires_in":7200}}"#,
                    "t".repeat(len)
                )
                .into_bytes()
            }
            7 => br#"{"errcode":0,"errmsg":"ok","status":1}"#.to_vec(),
            8 => br#"{"errcode":0,"status":2,"detail":{"media_id":"M","created_at":"1"}}"#.to_vec(),
            9 => br#"{"errcode":0,"status":3,"detail":{"errcode":40004,"errmsg":"x"}}"#.to_vec(),
            _ => self.u.arbitrary::<&[u8]>().unwrap_or_default().to_vec(),
        };
        if body.len() > limit {
            return Event::Local(DecodeError::new(200, "body over the limit", b"").into());
        }
        Event::Body(body.into())
    }

    fn stream(&mut self, lane: LaneId, max: u64) -> Event {
        assert!(max >= 1, "Stream asks for at least one byte");
        let left = self.body_left.get(&lane).copied().unwrap_or(0);
        if self.u.is_empty() || left == 0 {
            return Event::BodyEnd;
        }
        match self.u.int_in_range(0..=15).unwrap_or(0) {
            0 => Event::TransportFailed(TransportError::maybe_sent("reset mid-body")),
            1 => Event::Local(Error::io("writing", std::io::Error::other("disk full"))),
            2 => Event::BodyEnd,
            _ => {
                let most = max.min(left);
                let n = self.u.int_in_range(1..=most).unwrap_or(most);
                self.body_left.insert(lane, left - n);
                self.written = self.written.saturating_add(n);
                Event::Written(n)
            }
        }
    }

    fn stray_event(&mut self) -> Event {
        match self.u.int_in_range(0..=5).unwrap_or(0) {
            0 => Event::Written(self.u.arbitrary().unwrap_or(0)),
            1 => Event::BodyEnd,
            2 => Event::Flushed(None),
            3 => Event::Body(bytes::Bytes::from_static(b"{}")),
            4 => {
                let head = http::Response::builder().status(200).body(()).unwrap();
                Event::Head(head.into_parts().0)
            }
            _ => Event::TransportFailed(TransportError::maybe_sent("stray")),
        }
    }
}
