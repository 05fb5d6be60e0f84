//! Waiting for an async upload job: "wait for job J until deadline D", finished by whichever
//! comes first — a poll of `get_upload_by_url_result` (SPEC §7) or the job-finished callback
//! (SPEC §8) fed in by the application.
//!
//! A [`JobWait`] decides when to poll and when the wait is over; it reads no clock (`now` is
//! an argument), sleeps on nothing and sends nothing. The transport runs each
//! [`JobWaitStep::Poll`] operation through its [`Call`](crate::driver::Call) driver (which
//! owns the token, busy retries and transport retries of that one query), sleeps until the
//! time it is given **or until a callback event arrives**, and feeds events in with
//! [`JobWait::on_event`] (or [`JobWait::on_job_finished`] when it has only the job id).
//!
//! # The run loop a transport implements
//!
//! ```text
//! let mut wait = JobWait::new(job_id, deadline, policy)?;
//! loop {
//!     for event in events_received_since_last_turn() { wait.on_event(&event); }
//!     match wait.next(clock.now()) {
//!         JobWaitStep::Poll(op)         => {
//!             let result = run_through_the_driver(op);          // Result<JobStatus, Error>
//!             wait.on_poll_result(clock.now(), result);
//!         }
//!         JobWaitStep::SleepUntil(when) => sleep_until_or_event(when),
//!         JobWaitStep::Done(result)     => return result,
//!     }
//! }
//! ```
//!
//! After `Poll`, [`JobWait::on_poll_result`] must be called before the next
//! [`JobWait::next`]. Events may be fed at any time, also while a poll is out.
//!
//! # States
//!
//! ```text
//!   JobWait::new ──> Due                     (the first poll is immediate)
//!
//!   Scheduled { at } ── next(now < at) ──> SleepUntil(at)         (stays Scheduled)
//!   Scheduled { at } ── event names the job ──> Due (interval reset)
//!   Scheduled { at } ── next(now ≥ at) ─┐
//!   Due ─────────────── next ───────────┴──> Poll(op), Polling
//!
//!   Polling ── event names the job ──> Polling, remembering it (interval reset)
//!   Polling ── on_poll_result:
//!      Finished / Failed                              ──> Done(Ok(status))
//!      Processing at or after the deadline            ──> Done(Ok(Processing))
//!      Processing, an event came while polling        ──> Due
//!      Processing                                     ──> Scheduled { at: min(now + interval,
//!                                                          deadline) }, interval doubles up
//!                                                          to max_interval
//!      transient error, at most max_consecutive_errors
//!        in a row, before the deadline                ──> Scheduled (as for Processing)
//!      any other error                                ──> Done(Err(error))
//!
//!   Done(result) ── next ──> JobWaitStep::Done(result), Returned (next again panics)
//! ```
//!
//! # Rules
//!
//! * **Schedule**: the first poll is at once; after a `Processing` answer the next poll is
//!   [`PollPolicy::first_interval`] later, then twice that, … capped at
//!   [`PollPolicy::max_interval`] (default 1 s, 2 s, 4 s, 8 s, 15 s, 15 s, …). No poll is
//!   scheduled past the deadline: the last one is sent **at** the deadline (its answer may
//!   arrive a little after it).
//! * **Events**: the callback carries only the job id, so an event naming this job makes the
//!   next poll immediate (it fetches the result) and resets the interval to its first value.
//!   An event that arrives while a poll is out makes a `Processing` answer to that poll be
//!   followed at once by another poll (the answer may predate the job's end). Events for
//!   other jobs, and events of other kinds, are ignored. Repeated deliveries of the same
//!   event are harmless (at most one extra poll each, none once the wait is done).
//! * **Deadline**: the wait ends with the last status, `Ok(JobStatus::Processing)`, rather
//!   than a timeout error: the job keeps running at WeCom and the caller decides whether to
//!   wait more (the media id arrives later through the callback or another wait). A wait
//!   whose deadline has already passed still polls once.
//! * **Errors of a poll**: the driver has already retried what it retries (busy -1/45033,
//!   token refresh, transport failures) within its budget. What it gives up on is still
//!   **transient** for a wait that may last minutes — a transport failure, a busy code, a
//!   token rejection, an undecodable 5xx page from a proxy — so the wait keeps its schedule
//!   and ends with the error only after [`PollPolicy::max_consecutive_errors`] failed polls
//!   in a row, or when the poll at the deadline failed (the status at the deadline is then
//!   unknown, and saying `Processing` would hide the failure). Everything else ends the wait
//!   at once: invalid input, a fatal code such as 40058 (unknown job), a rate limit (45009,
//!   never polled through), an undecodable non-5xx answer, cancellation.

use std::time::{Duration, Instant};

use crate::errcode::Disposition;
use crate::error::{Error, Invalid, TransportError};
use crate::media_type::JobId;
use crate::ops::upload_by_url_result::{GetUploadByUrlResult, JobStatus};

#[cfg(feature = "callback")]
#[cfg(test)]
use crate::callback::CallbackEvent;

/// How often a job wait ([`JobWaitTask`](crate::JobWaitTask)) polls, and how many failed polls in a row it tolerates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollPolicy {
    /// The pause after the first `Processing` answer. Default 1 s.
    pub first_interval: Duration,
    /// The longest pause between two polls (the doubling stops here). Default 15 s.
    pub max_interval: Duration,
    /// How many polls in a row may fail transiently before the wait ends with the error.
    /// Default 3. 0 ends the wait at the first failed poll.
    pub max_consecutive_errors: u32,
}

impl Default for PollPolicy {
    fn default() -> Self {
        Self {
            first_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(15),
            max_consecutive_errors: 3,
        }
    }
}

/// What the transport does next for a [`JobWait`].
#[derive(Debug)]
pub(crate) enum JobWaitStep {
    /// Run this query through the driver and report its outcome with
    /// [`JobWait::on_poll_result`].
    Poll(GetUploadByUrlResult),
    /// Nothing to do until this time, or until an event is fed in (then call
    /// [`JobWait::next`] again).
    SleepUntil(Instant),
    /// The wait is over: the job's final status, `Processing` at the deadline, or the error
    /// that ended the wait.
    Done(Result<JobStatus, Error>),
}

#[derive(Debug)]
enum State {
    /// The next poll is due now.
    Due,
    /// The next poll is due at this time.
    Scheduled { at: Instant },
    /// A poll is out.
    Polling,
    /// The outcome is known; the next `next` returns it.
    Done(Result<JobStatus, Error>),
    /// The outcome was returned.
    Returned,
}

/// Waits for one async upload job until a deadline. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct JobWait {
    op: GetUploadByUrlResult,
    deadline: Instant,
    policy: PollPolicy,
    state: State,
    /// The pause after the next `Processing` answer.
    interval: Duration,
    /// An event named the job while a poll was out.
    event_during_poll: bool,
    consecutive_errors: u32,
    polls: u32,
    events: u32,
}

impl JobWait {
    /// A wait for `job_id` until `deadline`. The first [`JobWait::next`] asks for a poll.
    ///
    /// Fails if `job_id` is empty.
    pub(crate) fn new(
        job_id: JobId,
        deadline: Instant,
        policy: PollPolicy,
    ) -> Result<Self, Invalid> {
        Ok(Self {
            op: GetUploadByUrlResult::new(job_id)?,
            deadline,
            policy,
            state: State::Due,
            interval: policy.first_interval,
            event_during_poll: false,
            consecutive_errors: 0,
            polls: 0,
            events: 0,
        })
    }

    /// How many polls were handed out.
    pub(crate) fn polls(&self) -> u32 {
        self.polls
    }

    /// How many fed events named this job.
    pub(crate) fn events(&self) -> u32 {
        self.events
    }

    /// Whether the outcome is known (the next [`JobWait::next`] returns
    /// [`JobWaitStep::Done`]) or was returned.
    #[cfg(test)]
    pub(crate) fn is_done(&self) -> bool {
        matches!(self.state, State::Done(_) | State::Returned)
    }

    /// What to do next.
    ///
    /// # Panics
    /// When called again after it returned [`JobWaitStep::Done`] (like a finished future).
    pub(crate) fn next(&mut self, now: Instant) -> JobWaitStep {
        match std::mem::replace(&mut self.state, State::Returned) {
            State::Scheduled { at } if now < at => {
                self.state = State::Scheduled { at };
                JobWaitStep::SleepUntil(at)
            }
            State::Scheduled { .. } | State::Due => {
                self.state = State::Polling;
                self.polls += 1;
                JobWaitStep::Poll(self.op.clone())
            }
            State::Polling => JobWaitStep::Done(Err(Error::Transport(TransportError::maybe_sent(
                "the transport asked for the next step without reporting the poll's outcome",
            )))),
            State::Done(result) => JobWaitStep::Done(result),
            State::Returned => {
                JobWaitStep::Done(Err(Error::Transport(TransportError::maybe_sent(
                    "transport misuse: a job wait polled again after its result",
                ))))
            }
        }
    }

    /// Reports the outcome of the last [`JobWaitStep::Poll`], as the driver returned it.
    ///
    /// A wait with no poll out ignores it.
    pub(crate) fn on_poll_result(&mut self, now: Instant, result: Result<JobStatus, Error>) {
        if !matches!(self.state, State::Polling) {
            return;
        }
        let event_during_poll = std::mem::take(&mut self.event_during_poll);
        match result {
            Ok(JobStatus::Processing) => {
                self.consecutive_errors = 0;
                if now >= self.deadline {
                    self.state = State::Done(Ok(JobStatus::Processing));
                } else if event_during_poll {
                    self.state = State::Due;
                } else {
                    self.schedule_after(now);
                }
            }
            Ok(status) => self.state = State::Done(Ok(status)),
            Err(error) => {
                self.consecutive_errors = self.consecutive_errors.saturating_add(1);
                if !is_transient(&error)
                    || self.consecutive_errors > self.policy.max_consecutive_errors
                    || now >= self.deadline
                {
                    self.state = State::Done(Err(error));
                } else {
                    self.schedule_after(now);
                }
            }
        }
    }

    /// Feeds a notice that `job_id` ended (the content of a job-finished callback). Returns
    /// whether it names this job; if so and the wait is not over, the next poll is immediate.
    pub(crate) fn on_job_finished(&mut self, job_id: &JobId) -> bool {
        if job_id != self.op.jobid() {
            return false;
        }
        self.events = self.events.saturating_add(1);
        match self.state {
            State::Scheduled { .. } | State::Due => {
                self.state = State::Due;
                self.interval = self.policy.first_interval;
            }
            State::Polling => {
                self.event_during_poll = true;
                self.interval = self.policy.first_interval;
            }
            State::Done(_) | State::Returned => {}
        }
        true
    }

    /// Feeds a received callback event. Returns whether it is the job-finished event of this
    /// job (see [`JobWait::on_job_finished`]); any other event is ignored.
    #[cfg(all(test, feature = "callback"))]
    pub(crate) fn on_event(&mut self, event: &CallbackEvent) -> bool {
        match event.job_id() {
            Some(job_id) => self.on_job_finished(job_id),
            None => false,
        }
    }

    fn schedule_after(&mut self, now: Instant) {
        let at = now
            .checked_add(self.interval)
            .unwrap_or(self.deadline)
            .min(self.deadline);
        self.interval = self
            .interval
            .saturating_mul(2)
            .min(self.policy.max_interval);
        self.state = State::Scheduled { at };
    }
}

/// Whether a failed poll may succeed later (see the module rules).
fn is_transient(error: &Error) -> bool {
    match error {
        Error::Transport(_) => true,
        Error::Api(e) => matches!(
            e.disposition(),
            Disposition::Retry | Disposition::RefreshToken
        ),
        Error::Decode(e) => e.status >= 500,
        Error::Invalid(_)
        | Error::RateLimited(_)
        | Error::NotReplayable(_)
        | Error::Cancelled { .. }
        | Error::Stalled(_)
        | Error::DeadlineExceeded { .. }
        | Error::ObjectStorage(_)
        | Error::JobUnfinished { .. }
        | Error::Io { .. }
        | Error::Save(_) => false,
    }
}

/// One mailbox per waiting call, for a transport that hands received callback events to the
/// calls waiting on jobs: [`Mailboxes::deliver`] drops a copy of an event in every open mailbox,
/// each call [`take`](Mailboxes::take)s its own and feeds them to its [`JobWait`]. Plain data:
/// the transport keeps it behind its lock and wakes the waiters with its own primitive.
#[derive(Debug)]
pub(crate) struct Mailboxes<E> {
    next_id: u64,
    open: std::collections::HashMap<u64, Vec<E>>,
}

impl<E> Default for Mailboxes<E> {
    fn default() -> Self {
        Self {
            next_id: 0,
            open: std::collections::HashMap::new(),
        }
    }
}

impl<E: Clone> Mailboxes<E> {
    /// Opens a mailbox; returns its id.
    pub(crate) fn open(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.open.insert(id, Vec::new());
        id
    }

    /// Closes a mailbox, dropping what it still holds.
    pub(crate) fn close(&mut self, id: u64) {
        self.open.remove(&id);
    }

    /// Drops a copy of `event` in every open mailbox. Returns whether any was open (whether
    /// waiters need waking); with none open the event is dropped: a wait that starts later
    /// polls first.
    pub(crate) fn deliver(&mut self, event: &E) -> bool {
        for mailbox in self.open.values_mut() {
            mailbox.push(event.clone());
        }
        !self.open.is_empty()
    }

    /// The events mailbox `id` received since the last call.
    pub(crate) fn take(&mut self, id: u64) -> Vec<E> {
        self.open
            .get_mut(&id)
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Whether mailbox `id` holds an event.
    #[cfg(test)]
    pub(crate) fn has_mail(&self, id: u64) -> bool {
        self.open.get(&id).is_some_and(|m| !m.is_empty())
    }

    /// How many mailboxes are open (calls waiting).
    pub(crate) fn open_count(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errcode::ErrCode;
    use crate::error::{ApiError, DecodeError};
    use crate::media_type::MediaId;

    const S: Duration = Duration::from_secs(1);

    fn finished() -> JobStatus {
        JobStatus::Finished {
            media_id: MediaId::new("3media"),
            created_at: 1_700_000_000,
            expires_at: 1_700_259_200,
        }
    }

    fn wait(t0: Instant, deadline: Duration) -> JobWait {
        JobWait::new(JobId::new("job-1"), t0 + deadline, PollPolicy::default()).unwrap()
    }

    #[track_caller]
    fn expect_poll(w: &mut JobWait, now: Instant) {
        match w.next(now) {
            JobWaitStep::Poll(op) => assert_eq!(op.jobid().as_str(), "job-1"),
            other => panic!("expected a poll, got {other:?}"),
        }
    }

    #[track_caller]
    fn expect_sleep(w: &mut JobWait, now: Instant) -> Instant {
        match w.next(now) {
            JobWaitStep::SleepUntil(at) => at,
            other => panic!("expected a sleep, got {other:?}"),
        }
    }

    #[track_caller]
    fn expect_done(w: &mut JobWait, now: Instant) -> Result<JobStatus, Error> {
        match w.next(now) {
            JobWaitStep::Done(result) => result,
            other => panic!("expected done, got {other:?}"),
        }
    }

    /// Drives polls answered `Processing` at exactly the scheduled times; returns the offsets
    /// (from `t0`) of every poll.
    fn poll_offsets_until_done(t0: Instant, w: &mut JobWait) -> Vec<Duration> {
        let mut now = t0;
        let mut offsets = Vec::new();
        loop {
            match w.next(now) {
                JobWaitStep::Poll(_) => {
                    offsets.push(now - t0);
                    w.on_poll_result(now, Ok(JobStatus::Processing));
                }
                JobWaitStep::SleepUntil(at) => {
                    assert!(at > now, "sleeps move forward");
                    now = at;
                }
                JobWaitStep::Done(result) => {
                    assert_eq!(result.unwrap(), JobStatus::Processing);
                    return offsets;
                }
            }
        }
    }

    #[test]
    fn polling_alone_finishes() {
        let t0 = Instant::now();
        let mut w = wait(t0, 600 * S);
        expect_poll(&mut w, t0);
        w.on_poll_result(t0, Ok(JobStatus::Processing));
        let at = expect_sleep(&mut w, t0);
        assert_eq!(at, t0 + S);
        // Waking early (a spurious wake-up) sleeps again until the same time.
        assert_eq!(expect_sleep(&mut w, t0 + S / 2), t0 + S);
        expect_poll(&mut w, at);
        w.on_poll_result(at, Ok(finished()));
        assert!(w.is_done());
        assert_eq!(expect_done(&mut w, at).unwrap(), finished());
        assert_eq!(w.polls(), 2);
        assert_eq!(w.events(), 0);
    }

    #[test]
    fn a_failed_job_is_an_ok_outcome() {
        let t0 = Instant::now();
        let mut w = wait(t0, 60 * S);
        expect_poll(&mut w, t0);
        let failed = JobStatus::Failed {
            errcode: ErrCode::from_code(301019),
            errmsg: "md5 mismatch".into(),
        };
        w.on_poll_result(t0, Ok(failed.clone()));
        assert_eq!(expect_done(&mut w, t0).unwrap(), failed);
    }

    #[test]
    fn event_arriving_before_the_first_poll_result_triggers_an_immediate_second_poll() {
        let t0 = Instant::now();
        let policy = PollPolicy {
            first_interval: Duration::from_secs(3600),
            ..PollPolicy::default()
        };
        let mut w = JobWait::new(JobId::new("job-1"), t0 + 7200 * S, policy).unwrap();
        expect_poll(&mut w, t0);
        // The callback arrives while the first query is out; its answer predates the end.
        assert!(w.on_job_finished(&JobId::new("job-1")));
        let t1 = t0 + Duration::from_millis(30);
        w.on_poll_result(t1, Ok(JobStatus::Processing));
        expect_poll(&mut w, t1);
        w.on_poll_result(t1, Ok(finished()));
        assert_eq!(expect_done(&mut w, t1).unwrap(), finished());
        assert_eq!(w.polls(), 2);
        assert_eq!(w.events(), 1);
    }

    #[test]
    fn event_while_sleeping_wakes_the_poll_and_resets_the_backoff() {
        let t0 = Instant::now();
        let mut w = wait(t0, 600 * S);
        let mut now = t0;
        // Poll at 0, 1, 3, 7 s: the next pause would be 8 s.
        for _ in 0..4 {
            expect_poll(&mut w, now);
            w.on_poll_result(now, Ok(JobStatus::Processing));
            now = expect_sleep(&mut w, now);
        }
        assert_eq!(now, t0 + 15 * S);
        let t = t0 + 8 * S;
        assert!(w.on_job_finished(&JobId::new("job-1")));
        expect_poll(&mut w, t);
        // The query still says processing (WeCom's view lags): back to a 1 s pause.
        w.on_poll_result(t, Ok(JobStatus::Processing));
        assert_eq!(expect_sleep(&mut w, t), t + S);
    }

    #[test]
    fn events_for_other_jobs_are_ignored() {
        let t0 = Instant::now();
        let mut w = wait(t0, 600 * S);
        expect_poll(&mut w, t0);
        w.on_poll_result(t0, Ok(JobStatus::Processing));
        assert!(!w.on_job_finished(&JobId::new("job-2")));
        assert_eq!(expect_sleep(&mut w, t0), t0 + S);
        assert_eq!(w.events(), 0);
    }

    #[cfg(feature = "callback")]
    #[test]
    fn callback_events_are_matched_by_job_id_and_kind() {
        let t0 = Instant::now();
        let mut w = wait(t0, 600 * S);
        expect_poll(&mut w, t0);
        w.on_poll_result(t0, Ok(JobStatus::Processing));
        let other_job = CallbackEvent::UploadMediaJobFinish {
            job_id: JobId::new("job-2"),
            create_time: 1,
            corp_id: "ww".into(),
        };
        let other_kind = crate::callback::parse_event(
            b"<xml><MsgType>text</MsgType><Content>job-1</Content></xml>",
        )
        .unwrap();
        assert!(!w.on_event(&other_job));
        assert!(!w.on_event(&other_kind));
        assert_eq!(expect_sleep(&mut w, t0), t0 + S);
        let ours = CallbackEvent::UploadMediaJobFinish {
            job_id: JobId::new("job-1"),
            create_time: 1,
            corp_id: "ww".into(),
        };
        assert!(w.on_event(&ours));
        expect_poll(&mut w, t0 + S / 10);
    }

    #[test]
    fn deadline_returns_processing_after_a_last_poll_at_the_deadline() {
        let t0 = Instant::now();
        let mut w = wait(t0, 10 * S);
        let offsets = poll_offsets_until_done(t0, &mut w);
        // 0, 1, 3, 7, then 15 would be past the deadline: the last poll is at 10 s.
        let secs: Vec<u64> = offsets.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [0, 1, 3, 7, 10]);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_never_passes_the_deadline() {
        let t0 = Instant::now();
        let mut w = wait(t0, 100 * S);
        let offsets = poll_offsets_until_done(t0, &mut w);
        let gaps: Vec<u64> = offsets
            .windows(2)
            .map(|p| (p[1] - p[0]).as_secs())
            .collect();
        // 1, 2, 4, 8, then capped at 15; the last gap is cut by the deadline (100 s).
        assert_eq!(gaps, [1, 2, 4, 8, 15, 15, 15, 15, 15, 10]);
        assert!(offsets.iter().all(|o| *o <= 100 * S));
        assert_eq!(*offsets.last().unwrap(), 100 * S);
    }

    #[test]
    fn a_deadline_already_past_still_polls_once() {
        let t0 = Instant::now();
        let mut w = JobWait::new(JobId::new("job-1"), t0, PollPolicy::default()).unwrap();
        let late = t0 + 5 * S;
        expect_poll(&mut w, late);
        w.on_poll_result(late, Ok(JobStatus::Processing));
        assert_eq!(expect_done(&mut w, late).unwrap(), JobStatus::Processing);
        assert_eq!(w.polls(), 1);
    }

    #[test]
    fn transient_errors_keep_the_schedule_until_too_many_in_a_row() {
        let t0 = Instant::now();
        let policy = PollPolicy {
            max_consecutive_errors: 2,
            ..PollPolicy::default()
        };
        let mut w = JobWait::new(JobId::new("job-1"), t0 + 600 * S, policy).unwrap();
        let transport = || Error::Transport(TransportError::maybe_sent("connection reset"));
        let busy = || {
            Error::Api(ApiError {
                code: ErrCode::from_code(-1),
                errmsg: "system busy".into(),
            })
        };
        let mut now = t0;
        expect_poll(&mut w, now);
        w.on_poll_result(now, Err(transport()));
        now = expect_sleep(&mut w, now);
        expect_poll(&mut w, now);
        w.on_poll_result(now, Err(busy()));
        now = expect_sleep(&mut w, now);
        // A success in between resets the count.
        expect_poll(&mut w, now);
        w.on_poll_result(now, Ok(JobStatus::Processing));
        for _ in 0..2 {
            now = expect_sleep(&mut w, now);
            expect_poll(&mut w, now);
            w.on_poll_result(now, Err(transport()));
        }
        now = expect_sleep(&mut w, now);
        expect_poll(&mut w, now);
        w.on_poll_result(now, Err(transport()));
        assert!(matches!(expect_done(&mut w, now), Err(Error::Transport(_))));
    }

    #[test]
    fn fatal_errors_end_the_wait_at_once() {
        let t0 = Instant::now();
        let fatal = [
            Error::Api(ApiError {
                code: ErrCode::from_code(40058),
                errmsg: "invalid jobid".into(),
            }),
            Error::RateLimited(ApiError {
                code: ErrCode::from_code(45009),
                errmsg: "api freq out of limit".into(),
            }),
            Error::Decode(DecodeError::new(200, "not JSON", b"<html>")),
            Error::Cancelled {
                operation: crate::error::OperationKind::JobWait,
                bytes: 0,
                total: None,
            },
        ];
        for error in fatal {
            let mut w = wait(t0, 600 * S);
            expect_poll(&mut w, t0);
            w.on_poll_result(t0, Err(error));
            assert!(expect_done(&mut w, t0).is_err());
        }
        // A proxy's 502 page is transient.
        let mut w = wait(t0, 600 * S);
        expect_poll(&mut w, t0);
        w.on_poll_result(
            t0,
            Err(Error::Decode(DecodeError::new(502, "html", b"<h1>"))),
        );
        assert_eq!(expect_sleep(&mut w, t0), t0 + S);
    }

    #[test]
    fn a_transient_error_at_the_deadline_is_returned() {
        let t0 = Instant::now();
        let mut w = wait(t0, 2 * S);
        expect_poll(&mut w, t0);
        w.on_poll_result(t0, Ok(JobStatus::Processing));
        let at = expect_sleep(&mut w, t0);
        expect_poll(&mut w, at);
        w.on_poll_result(at, Ok(JobStatus::Processing));
        let at = expect_sleep(&mut w, at);
        assert_eq!(at, t0 + 2 * S);
        expect_poll(&mut w, at);
        w.on_poll_result(
            at,
            Err(Error::Transport(TransportError::not_sent("refused"))),
        );
        assert!(matches!(expect_done(&mut w, at), Err(Error::Transport(_))));
    }

    #[test]
    fn events_after_the_end_and_out_of_order_calls_are_harmless() {
        let t0 = Instant::now();
        let mut w = wait(t0, 60 * S);
        // A result with no poll out is ignored.
        w.on_poll_result(t0, Ok(finished()));
        expect_poll(&mut w, t0);
        w.on_poll_result(t0, Ok(finished()));
        assert!(w.on_job_finished(&JobId::new("job-1")));
        assert_eq!(expect_done(&mut w, t0).unwrap(), finished());
        assert!(w.on_job_finished(&JobId::new("job-1")));
        assert_eq!(w.polls(), 1);
    }

    #[test]
    fn asking_for_a_step_with_a_poll_out_ends_the_wait() {
        let t0 = Instant::now();
        let mut w = wait(t0, 60 * S);
        expect_poll(&mut w, t0);
        assert!(matches!(expect_done(&mut w, t0), Err(Error::Transport(_))));
    }

    #[test]
    fn an_empty_job_id_is_refused() {
        let err = JobWait::new(JobId::new(""), Instant::now(), PollPolicy::default());
        assert!(err.is_err());
    }

    #[test]
    fn every_open_mailbox_gets_a_copy_and_closed_ones_get_none() {
        let mut boxes = Mailboxes::default();
        assert!(!boxes.deliver(&"before"), "nobody waits: dropped");
        let (a, b) = (boxes.open(), boxes.open());
        assert!(boxes.deliver(&"j1"));
        assert!(boxes.has_mail(a) && boxes.has_mail(b));
        assert_eq!(boxes.take(a), vec!["j1"]);
        assert!(boxes.take(a).is_empty() && !boxes.has_mail(a));
        boxes.close(b);
        boxes.deliver(&"j2");
        assert_eq!((boxes.take(a), boxes.take(b)), (vec!["j2"], vec![]));
        boxes.close(a);
        assert_eq!(boxes.open_count(), 0);
    }
}
