//! A whole download as one [`Task`]: into a stream, one request at a time; or into a
//! positioned sink (a file) with several Range requests in flight, each on a lane of its own.
//!
//! Each stream of bytes is a [`RangeDownload`] (token, retries, truncated bodies, 830002 —
//! the same for one stream as for a range); this task runs one, or coordinates many: the
//! ranges to fetch, how many at once (adaptive: WeCom answers 45033 to a client that
//! hammers one media), busy retries of a range, and the [`ResumeRecord`] of the bytes that
//! arrived. A transport that runs the task loop gets all of it: it only has to run the
//! steps of several lanes at once and write at the offsets it is given.
//!
//! # Modes
//!
//! * **One stream** (`connections` ≤ 1 without a record, HD voice, an in-memory limit, or
//!   `resume_from`): the whole media on [`LaneId::MAIN`]; writes come in order, so any sink
//!   serves.
//! * **Ranges** (`connections` > 1, or a record to resume from): ranges on lanes
//!   `1 ..= connections`, written at their offsets; the sink must be positioned.
//!
//! # States of the ranges mode
//!
//! ```text
//!   no record ──▶ Probe: one small range [0, 1 MiB) ──done──▶ total known:
//!       the missing bytes are split into ranges of ≤ the chunk size (about four per
//!       connection, so connections finish together)
//!   Ranges: start ranges on free lanes while fewer than `limit` run ──▶ every range done
//!     a range ends with 45033 ──▶ limit = max(1, limit / 2), its missing part goes back to
//!                                 the queue after a backoff (at most 8 times)
//!     a range ends with -1   ──▶ back to the queue after a backoff (at most 3 times)
//!     a range fails for good, or cancel ──▶ every running range is cancelled (each after
//!                                           its outstanding step) ──all ended──┐
//!   every range done ──────────────────────────────────────────────────────────┤
//!                                FlushSink on lane 0 ──Flushed──▶ Done(result) ◀┘
//! ```
//!
//! A range never retries a busy answer itself (its retry policy has no busy retries): this
//! task retries it, so that a 45033 lowers the concurrency at once. The ranges' own flushes
//! are answered here; the sink is flushed once, at the end, also after a failure or cancel.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::client_settings::ClientSettings;
use crate::driver::RetryPolicy;
use crate::errcode::ErrCode;
use crate::error::{DecodeError, Error, Invalid, TransportError};
use crate::media_type::MediaId;
use crate::ops::get_media::MediaInfo;
use crate::task::download_task::{DownloadOptions, RangeDownload, cancelled};
use crate::task::{Action, ClientState, Event, Exchange, LaneId, Slot, Task, misuse};
use crate::transfer::{Downloaded, Progress};

/// The size of the first range, which tells the media's size.
pub const PROBE_LEN: u64 = 1024 * 1024;
/// How often one range may be sent back to the queue after 45033.
const MAX_THROTTLED_RETRIES: u32 = 8;
/// How often one range may be sent back to the queue after -1.
const MAX_BUSY_RETRIES: u32 = 3;

/// What arrived of a media so far: its size and the byte intervals `[start, end)` written.
/// Kept by a caller next to a partial file so that a later run fetches only what is missing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeRecord {
    /// The media's size.
    pub total: u64,
    /// Intervals written, sorted and merged.
    pub done: Vec<(u64, u64)>,
}

impl ResumeRecord {
    /// Bytes written.
    pub fn bytes_done(&self) -> u64 {
        self.done
            .iter()
            .map(|(s, e)| e.saturating_sub(*s))
            .fold(0, u64::saturating_add)
    }

    /// Whether every byte arrived.
    pub fn is_complete(&self) -> bool {
        self.done == [(0, self.total)] || self.total == 0
    }

    /// Checks a record read back from outside: every interval non-empty, inside the total,
    /// sorted and disjoint. Anything else is not to be trusted (a crafted or corrupt record
    /// could claim bytes that never arrived, or make the plan huge).
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut at = 0;
        for (i, &(start, end)) in self.done.iter().enumerate() {
            if start >= end || end > self.total || (i > 0 && start <= at) {
                return Err(Invalid::BadRange {
                    reason: format!(
                        "resume record interval {i} [{start}, {end}) is not a sorted, \
                         disjoint interval inside the {} bytes of the media",
                        self.total
                    ),
                });
            }
            at = end;
        }
        Ok(())
    }

    fn add(&mut self, start: u64, end: u64) {
        if end > start {
            self.done.push((start, end));
        }
        self.done.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.done.len());
        for &(s, e) in &self.done {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.done = merged;
    }

    /// The intervals still missing, never past the total.
    fn gaps(&self) -> Vec<(u64, u64)> {
        let mut gaps = Vec::new();
        let mut at = 0;
        for &(s, e) in &self.done {
            let (s, e) = (s.min(self.total), e.min(self.total));
            if s > at {
                gaps.push((at, s));
            }
            at = at.max(e);
        }
        if at < self.total {
            gaps.push((at, self.total));
        }
        gaps
    }
}

/// A range waiting to run.
#[derive(Debug, Clone)]
struct Queued {
    start: u64,
    end: u64,
    throttled: u32,
    busy: u32,
    not_before: Option<Instant>,
}

/// A range running on a lane.
struct RangeLane {
    lane: LaneId,
    slot: Slot<RangeDownload>,
    range: Queued,
    /// Bytes of this range that reached the sink (from `range.start` on, in order).
    written: u64,
}

/// The end of the ranges mode: the sink's flush, then the result.
enum Finish {
    Running,
    FlushDue(Result<Downloaded, Error>),
    FlushAsked(Result<Downloaded, Error>),
    Ready(Result<Downloaded, Error>),
    Returned,
}

struct Ranges {
    media_id: MediaId,
    settings: ClientSettings,
    range_policy: RetryPolicy,
    max: usize,
    limit: usize,
    seed: u64,
    started: u64,
    record: Option<ResumeRecord>,
    resumed: u64,
    info: Option<MediaInfo>,
    queue: VecDeque<Queued>,
    lanes: Vec<RangeLane>,
    written: u64,
    throttled: u32,
    failure: Option<Error>,
    cancelling: bool,
    finish: Finish,
    /// How long the ranges cut from the queued gaps are (set when the size is known).
    range_size: u64,
    /// A save (see [`DownloadTask::for_save`]): one range runs until the first one is done.
    save: bool,
    /// The size a resumed save's first range found, when it is not the record's.
    total_changed: Option<u64>,
    /// When the record was last brought up to date, and `written` then.
    recorded: (Option<Instant>, u64),
}

enum Mode {
    One(Box<Slot<RangeDownload>>),
    Ranges(Box<Ranges>),
}

/// A download of one media (see the [`task`](crate::task) module docs).
pub struct DownloadTask {
    mode: Mode,
}

impl std::fmt::Debug for DownloadTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.mode {
            Mode::One(slot) => f.debug_tuple("DownloadTask").field(&slot.machine).finish(),
            Mode::Ranges(r) => f
                .debug_struct("DownloadTask")
                .field("media_id", &r.media_id)
                .field("running", &r.lanes.len())
                .field("queued", &r.queue.len())
                .field("limit", &r.limit)
                .field("written", &r.written)
                .finish_non_exhaustive(),
        }
    }
}

impl DownloadTask {
    /// A download of `media_id` with a client's settings (chunk size, base URL, retry
    /// policy); `options.connections` > 1 fetches ranges at once into a positioned sink.
    /// `jitter_seed` makes the backoff jitter.
    pub fn new(
        media_id: MediaId,
        options: DownloadOptions,
        settings: &ClientSettings,
        jitter_seed: u64,
    ) -> Result<Self, Error> {
        let one = options.connections <= 1
            || options.hd_voice
            || options.max_len.is_some()
            || options.resume_from > 0;
        if one {
            let machine = RangeDownload::for_client(media_id, options, settings, jitter_seed)?;
            return Ok(Self {
                mode: Mode::One(Box::new(Slot::new(machine))),
            });
        }
        Ranges::task(media_id, &options, settings, jitter_seed, None)
    }

    /// A download in ranges into a positioned sink (a file), `options.connections` at once
    /// (at least one), keeping a [`ResumeRecord`]. With `record` (a previous run's), the sink
    /// already holds the bytes it names and only the missing ones are fetched; a record that
    /// fails [`ResumeRecord::validate`] is refused.
    pub fn in_ranges(
        media_id: MediaId,
        options: DownloadOptions,
        settings: &ClientSettings,
        jitter_seed: u64,
        record: Option<ResumeRecord>,
    ) -> Result<Self, Error> {
        if let Some(record) = &record {
            record.validate()?;
        }
        Ranges::task(media_id, &options, settings, jitter_seed, record)
    }

    /// A save of `media_id` into a file (see [`crate::save`]): in ranges, `options.connections`
    /// at once, except HD voice, which is one stream from byte 0. The first range (at most
    /// [`PROBE_LEN`] bytes: the first missing ones of `record`, or the media's first) runs
    /// alone: its head names the file ([`DownloadTask::media_info`]) and tells whether the
    /// media still has the record's size ([`DownloadTask::total_changed`]) before any other
    /// range is asked for. `record` must pass [`ResumeRecord::validate`] (see
    /// [`ResumeDecision`](crate::save::ResumeDecision)).
    pub fn for_save(
        media_id: MediaId,
        options: DownloadOptions,
        settings: &ClientSettings,
        jitter_seed: u64,
        record: Option<ResumeRecord>,
    ) -> Result<Self, Error> {
        if options.hd_voice {
            let options = DownloadOptions::default().hd_voice();
            return Self::new(media_id, options, settings, jitter_seed);
        }
        if let Some(record) = &record {
            record.validate()?;
        }
        let options = DownloadOptions::default().connections(options.connections);
        let mut task = Ranges::task(media_id, &options, settings, jitter_seed, record)?;
        if let Mode::Ranges(r) = &mut task.mode {
            r.save = true;
            // The first range is a probe: split it off the front of the plan.
            if let Some(first) = r.queue.front_mut()
                && first.end - first.start > PROBE_LEN
            {
                let rest = Queued::new(first.start + PROBE_LEN, first.end);
                first.end = first.start + PROBE_LEN;
                r.queue.insert(1, rest);
            }
        }
        Ok(task)
    }

    /// What the first response head said about the media (its filename, type), as soon as
    /// one arrived: a save checks its target then, before the body is read.
    pub fn media_info(&self) -> Option<&MediaInfo> {
        match &self.mode {
            Mode::One(slot) => slot.machine.info(),
            Mode::Ranges(r) => r
                .info
                .as_ref()
                .or_else(|| r.lanes.iter().find_map(|l| l.slot.machine.info())),
        }
    }

    /// The size the media has now, when a resumed save's first range found it differs from
    /// the record's: the save starts over with the part set aside.
    pub fn total_changed(&self) -> Option<u64> {
        match &self.mode {
            Mode::Ranges(r) => r.total_changed,
            Mode::One(_) => None,
        }
    }

    /// Whether the record kept beside the file is due to be brought up to date
    /// ([`DownloadTask::resume_record`], then [`DownloadTask::mark_recorded`]): bytes arrived
    /// since the last time and either [`RECORD_EVERY_BYTES`](crate::save::RECORD_EVERY_BYTES)
    /// of them or [`RECORD_EVERY`](crate::save::RECORD_EVERY) passed (or it was never
    /// recorded). Check it after each event; never due in one stream.
    pub fn record_due(&self, now: Instant) -> bool {
        let Mode::Ranges(r) = &self.mode else {
            return false;
        };
        let (at, bytes) = r.recorded;
        let fresh = r.written.saturating_sub(bytes);
        r.record.is_some()
            && fresh > 0
            && (fresh >= crate::save::RECORD_EVERY_BYTES
                || at.is_none_or(|at| {
                    now.saturating_duration_since(at) >= crate::save::RECORD_EVERY
                }))
    }

    /// The record was brought up to date at `now` (see [`DownloadTask::record_due`]).
    pub fn mark_recorded(&mut self, now: Instant) {
        if let Mode::Ranges(r) = &mut self.mode {
            r.recorded = (Some(now), r.written);
        }
    }

    /// A one-stream download with explicit parts (the machinery's tests).
    #[cfg(test)]
    pub(crate) fn from_parts(
        media_id: MediaId,
        options: DownloadOptions,
        chunk_size: u64,
        base: crate::endpoint::BaseUrl,
        policy: RetryPolicy,
        jitter_seed: u64,
    ) -> Result<Self, Error> {
        let machine = RangeDownload::new(media_id, options, chunk_size, base, policy, jitter_seed)?;
        Ok(Self {
            mode: Mode::One(Box::new(Slot::new(machine))),
        })
    }

    /// What arrived so far, once the size is known (the ranges mode only), the bytes of
    /// running ranges included: keep it next to the partial file to resume later.
    pub fn resume_record(&self) -> Option<ResumeRecord> {
        let Mode::Ranges(r) = &self.mode else {
            return None;
        };
        let mut record = r.record.clone()?;
        for lane in &r.lanes {
            let end = lane.range.start.saturating_add(lane.written);
            record.add(lane.range.start, end);
        }
        Some(record)
    }

    /// How many 45033 answers the ranges got.
    pub fn throttled(&self) -> u32 {
        match &self.mode {
            Mode::Ranges(r) => r.throttled,
            Mode::One(_) => 0,
        }
    }

    /// How many ranges may run at once now (1 for one stream).
    pub fn limit(&self) -> usize {
        match &self.mode {
            Mode::Ranges(r) => r.limit,
            Mode::One(_) => 1,
        }
    }
}

impl Task for DownloadTask {
    type Output = Downloaded;

    fn poll(&mut self, now: Instant, state: &mut ClientState) -> Action<Downloaded> {
        match &mut self.mode {
            Mode::One(slot) => slot.poll(now, state, LaneId::MAIN).unwrap_or(Action::Wait {
                until: None,
                wakeable: false,
            }),
            Mode::Ranges(ranges) => ranges.poll(now, state),
        }
    }

    fn on_event(&mut self, now: Instant, state: &mut ClientState, lane: LaneId, event: Event) {
        match &mut self.mode {
            Mode::One(slot) => {
                let event = if lane == LaneId::MAIN {
                    event
                } else {
                    Event::Local(misuse(&event, "an event on the download's one lane (0)"))
                };
                slot.on_event(now, state, event);
            }
            Mode::Ranges(ranges) => ranges.on_event(now, state, lane, event),
        }
    }

    fn progress(&self) -> Option<Progress> {
        match &self.mode {
            Mode::One(slot) => Some(slot.machine.progress()),
            Mode::Ranges(r) => Some(Progress {
                done: r.resumed.saturating_add(r.written),
                total: r.record.as_ref().map(|record| record.total),
            }),
        }
    }

    fn cancel(&mut self, state: &mut ClientState) {
        match &mut self.mode {
            Mode::One(slot) => slot.cancel(state),
            Mode::Ranges(ranges) => ranges.cancelling = true,
        }
    }
}

impl Ranges {
    /// A task in the ranges mode.
    fn task(
        media_id: MediaId,
        options: &DownloadOptions,
        settings: &ClientSettings,
        seed: u64,
        resume: Option<ResumeRecord>,
    ) -> Result<DownloadTask, Error> {
        if options.hd_voice || options.max_len.is_some() || options.resume_from > 0 {
            return Err(Invalid::BadRange {
                reason: "a download in ranges is of media/get into a file, resumed by its record"
                    .into(),
            }
            .into());
        }
        let range_policy = RetryPolicy {
            max_busy_retries: 0,
            ..settings.retry_policy
        };
        let max = options.connections.clamp(1, usize::from(u16::MAX));
        let mut ranges = Self {
            media_id,
            settings: settings.clone(),
            range_policy,
            max,
            limit: max,
            seed,
            started: 0,
            record: None,
            resumed: 0,
            info: None,
            queue: VecDeque::new(),
            lanes: Vec::new(),
            written: 0,
            throttled: 0,
            failure: None,
            cancelling: false,
            finish: Finish::Running,
            range_size: PROBE_LEN,
            save: false,
            total_changed: None,
            recorded: (None, 0),
        };
        match resume {
            Some(record) => {
                ranges.resumed = record.bytes_done();
                ranges.plan_ranges(record);
            }
            None => ranges.queue.push_back(Queued::new(0, PROBE_LEN)),
        }
        Ok(DownloadTask {
            mode: Mode::Ranges(Box::new(ranges)),
        })
    }

    fn poll(&mut self, now: Instant, state: &mut ClientState) -> Action<Downloaded> {
        match std::mem::replace(&mut self.finish, Finish::Returned) {
            Finish::Running => self.finish = Finish::Running,
            Finish::FlushDue(result) => {
                self.finish = Finish::FlushAsked(result);
                return Action::Exchange(LaneId::MAIN, Exchange::FlushSink);
            }
            asked @ Finish::FlushAsked(_) => {
                self.finish = asked;
                return Action::Wait {
                    until: None,
                    wakeable: false,
                };
            }
            Finish::Ready(result) => return Action::Done(result),
            Finish::Returned => {
                let error = misuse(&Event::BodyEnd, "nothing: the task had ended");
                return Action::Done(Err(error));
            }
        }
        // A cancel (the caller's, or a deadline's: see `Controlled`) stops every range; the
        // record keeps what arrived.
        let stopping = self.failure.is_some() || self.cancelling;
        // (A lane's cancel acts once: `Slot::cancel` ignores the repeats.)
        if stopping {
            for lane in &mut self.lanes {
                lane.slot.cancel(state);
            }
        }
        let (mut until, mut wakeable) = (None::<Instant>, false);
        let mut i = 0;
        while i < self.lanes.len() {
            let lane = &mut self.lanes[i];
            match lane.slot.poll(now, state, lane.lane) {
                None => i += 1,
                // The sink is flushed once, at the end: a range's own flush is answered here.
                Some(Action::Exchange(_, Exchange::FlushSink)) => {
                    lane.slot.on_event(now, state, Event::Flushed(None));
                }
                Some(Action::Done(result)) => {
                    let lane = self.lanes.swap_remove(i);
                    self.on_range_done(now, lane, result);
                    (until, wakeable, i) = (None, false, 0);
                }
                Some(Action::Wait {
                    until: lane_until,
                    wakeable: lane_wakeable,
                }) => {
                    until = earliest(until, lane_until);
                    wakeable |= lane_wakeable;
                    i += 1;
                }
                Some(action) => return action,
            }
            if i == self.lanes.len() && self.start_due(now) {
                // A new range is on a lane now: poll it too.
                (until, wakeable, i) = (None, false, 0);
            }
        }
        if self.lanes.is_empty() && self.start_due(now) {
            return self.poll(now, state);
        }
        if self.lanes.is_empty()
            && (self.failure.is_some() || self.cancelling || self.queue.is_empty())
        {
            let result = self.result();
            self.finish = Finish::FlushDue(result);
            return self.poll(now, state);
        }
        if self.lanes.len() < self.limit && self.failure.is_none() && !self.cancelling {
            until = earliest(until, self.queue.front().and_then(|q| q.not_before));
        }
        Action::Wait { until, wakeable }
    }

    /// Starts the next queued range on a free lane if there is room and it is due.
    fn start_due(&mut self, now: Instant) -> bool {
        if self.failure.is_some() || self.cancelling || self.lanes.len() >= self.limit {
            return false;
        }
        if self.save && self.info.is_none() && !self.lanes.is_empty() {
            // A save's first range runs alone: its answer decides the rest.
            return false;
        }
        let due = self
            .queue
            .front()
            .is_some_and(|q| q.not_before.is_none_or(|t| t <= now));
        let Some(mut queued) = due.then(|| self.queue.pop_front()).flatten() else {
            return false;
        };
        if queued.end - queued.start > self.range_size {
            let cut = queued.start + self.range_size;
            self.queue.push_front(Queued::new(cut, queued.end));
            queued.end = cut;
        }
        self.started = self.started.wrapping_add(1);
        let seed = self.seed.wrapping_add(self.started);
        let media_id = self.media_id.clone();
        let range = (queued.start, queued.end);
        match RangeDownload::range(media_id, range, &self.settings, self.range_policy, seed) {
            Ok(machine) => {
                // The lowest free lane from 1: a lane whose range ended is used again.
                let lane = (1..=u16::MAX)
                    .map(LaneId)
                    .find(|id| self.lanes.iter().all(|l| l.lane != *id))
                    .unwrap_or(LaneId(u16::MAX));
                self.lanes.push(RangeLane {
                    lane,
                    slot: Slot::new(machine),
                    range: queued,
                    written: 0,
                });
                true
            }
            Err(error) => {
                self.fail(error);
                false
            }
        }
    }

    fn on_event(&mut self, now: Instant, state: &mut ClientState, lane: LaneId, event: Event) {
        if lane == LaneId::MAIN {
            self.finish = match std::mem::replace(&mut self.finish, Finish::Returned) {
                Finish::FlushAsked(result) => Finish::Ready(match (result, event) {
                    (result, Event::Flushed(None)) => result,
                    (Ok(_), Event::Flushed(Some(e))) => Err(Error::io("flushing the download", e)),
                    (Err(error), Event::Flushed(Some(_))) => Err(error),
                    (_, other) => Err(misuse(&other, "Flushed")),
                }),
                other => {
                    self.fail(misuse(&event, "no event on lane 0 (poll first)"));
                    other
                }
            };
            return;
        }
        let Some(running) = self.lanes.iter_mut().find(|l| l.lane == lane) else {
            return self.fail(misuse(&event, "no event on a lane that is not running"));
        };
        if let Event::Written(n) = event {
            // Counted only when the range takes it, and never past the range's end: a count past
            // what it asked for ends the range, and must not put bytes into the record that no
            // one wrote there.
            if running.slot.is_busy() {
                let room = (running.range.end - running.range.start) - running.written;
                let n = n.min(room);
                running.written += n;
                self.written = self.written.saturating_add(n);
            }
        }
        running.slot.on_event(now, state, event);
    }

    /// Bookkeeping of a range that ended.
    fn on_range_done(&mut self, now: Instant, lane: RangeLane, result: Result<Downloaded, Error>) {
        let RangeLane {
            mut range, written, ..
        } = lane;
        let reached = range.start.saturating_add(written);
        if let Some(record) = &mut self.record {
            record.add(range.start, reached);
        }
        match result {
            Ok(done) => {
                if self.info.is_none() {
                    self.info = Some(done.info);
                }
                match &self.record {
                    None => {
                        let mut record = ResumeRecord {
                            total: done.total,
                            done: Vec::new(),
                        };
                        record.add(range.start, reached);
                        self.plan_ranges(record);
                    }
                    Some(record) if record.total != done.total => {
                        if self.save {
                            self.total_changed = Some(done.total);
                        }
                        let message = format!(
                            "media size changed from {} to {} bytes",
                            record.total, done.total
                        );
                        self.fail(DecodeError::new(206, message, b"").into());
                    }
                    Some(_) => {}
                }
            }
            // A range ends cancelled when the task stops it; the result counts the bytes at
            // the end (a first failure, kept by `fail`, still wins).
            Err(Error::Cancelled { .. }) => self.fail(cancelled(self.written)),
            Err(error) => {
                range.start = reached;
                let retry = match error.errcode() {
                    Some(ErrCode::TooManyConcurrent) if range.throttled < MAX_THROTTLED_RETRIES => {
                        self.throttled = self.throttled.saturating_add(1);
                        self.limit = (self.limit / 2).max(1);
                        range.throttled += 1;
                        true
                    }
                    Some(ErrCode::SystemBusy) if range.busy < MAX_BUSY_RETRIES => {
                        range.busy += 1;
                        true
                    }
                    _ => false,
                };
                if retry && range.end > range.start {
                    let delay = self.backoff(range.throttled + range.busy);
                    range.not_before = Some(now.checked_add(delay).unwrap_or(now));
                    self.queue.push_front(range);
                } else if !retry {
                    self.fail(error);
                }
            }
        }
    }

    fn fail(&mut self, error: Error) {
        if self.failure.is_none() {
            self.failure = Some(error);
        }
    }

    fn backoff(&self, retry: u32) -> Duration {
        self.settings
            .retry_policy
            .backoff(retry.saturating_sub(1), self.seed ^ u64::from(retry))
    }

    /// The size is known: queue the missing bytes in ranges small enough that the
    /// connections finish together, never over the chunk size.
    fn plan_ranges(&mut self, record: ResumeRecord) {
        let gaps = record.gaps();
        let missing = gaps.iter().map(|(s, e)| e - s).fold(0, u64::saturating_add);
        let per_range = missing
            .div_ceil((self.max as u64).saturating_mul(4))
            .max(PROBE_LEN);
        // The gaps are queued whole and cut into ranges of this size as they start: the
        // queue stays as small as the record, whatever the media's size and the chunk size.
        self.range_size = per_range.min(self.settings.chunk_size).max(1);
        for (start, end) in gaps {
            self.queue.push_back(Queued::new(start, end));
        }
        self.record = Some(record);
    }

    fn result(&mut self) -> Result<Downloaded, Error> {
        if self.cancelling && self.failure.is_none() {
            return Err(cancelled(self.written));
        }
        if let Some(error) = self.failure.take() {
            return Err(match error {
                Error::Cancelled { .. } => cancelled(self.written),
                error => error,
            });
        }
        let record = self.record.as_ref();
        let complete = record.is_some_and(ResumeRecord::is_complete);
        match (self.info.take(), record) {
            (Some(info), Some(record)) if complete => Ok(Downloaded {
                info,
                bytes_written: self.written,
                total: record.total,
            }),
            _ => Err(Error::Transport(TransportError::maybe_sent(
                "the ranges did not cover the media",
            ))),
        }
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Queued {
    fn new(start: u64, end: u64) -> Self {
        Self {
            start,
            end,
            throttled: 0,
            busy: 0,
            not_before: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_with_intervals_past_the_total_or_out_of_order_is_refused() {
        let ok = ResumeRecord {
            total: 100,
            done: vec![(0, 10), (20, 100)],
        };
        assert!(ok.validate().is_ok());
        for done in [
            vec![(0, 101)],
            vec![(20, 30), (0, 10)],
            vec![(0, 10), (5, 20)],
            vec![(10, 10)],
            vec![(9_223_372_036_854_775_808, 0)],
        ] {
            let record = ResumeRecord { total: 100, done };
            assert!(
                matches!(record.validate(), Err(Invalid::BadRange { .. })),
                "{record:?}"
            );
        }
    }

    /// Intervals that touch or overlap merge; intervals with a hole between them stay apart,
    /// so the hole is fetched on resume.
    #[test]
    fn a_record_merges_touching_intervals_and_keeps_holes() {
        let mut record = ResumeRecord {
            total: 100,
            done: Vec::new(),
        };
        record.add(50, 60);
        record.add(0, 10);
        record.add(10, 20);
        record.add(5, 15);
        record.add(70, 70);
        assert_eq!(record.done, [(0, 20), (50, 60)]);
        assert_eq!(record.gaps(), [(20, 50), (60, 100)]);
        record.add(20, 50);
        assert_eq!(record.done, [(0, 60)]);
    }

    /// The ranges mode is a `media/get` into a file resumed by its record: HD voice, an
    /// in-memory limit and a byte offset are each refused on their own.
    #[test]
    fn a_download_in_ranges_refuses_each_option_it_cannot_honour() {
        let settings = ClientSettings::new("ww1", "s");
        let base = DownloadOptions::default().connections(4);
        for options in [
            base.clone().hd_voice(),
            base.clone().max_len(10),
            base.clone().resume_from(1),
        ] {
            let refused = Ranges::task(MediaId::new("m"), &options, &settings, 1, None);
            assert!(
                matches!(refused, Err(Error::Invalid(Invalid::BadRange { .. }))),
                "{options:?}"
            );
        }
        assert!(Ranges::task(MediaId::new("m"), &base, &settings, 1, None).is_ok());
    }

    /// A record is brought up to date only when bytes arrived since the last time: never
    /// for nothing, however long ago it was written.
    #[test]
    fn a_record_is_never_due_without_new_bytes() {
        let settings = ClientSettings::new("ww1", "s");
        let record = ResumeRecord {
            total: 100,
            done: Vec::new(),
        };
        let options = DownloadOptions::default().connections(2);
        let mut task =
            DownloadTask::in_ranges(MediaId::new("m"), options, &settings, 1, Some(record))
                .unwrap();
        let now = Instant::now();
        let later = now + crate::save::RECORD_EVERY * 10;
        assert!(!task.record_due(later));
        task.mark_recorded(now);
        assert!(!task.record_due(later));
    }

    #[test]
    fn gaps_never_reach_past_the_total() {
        let record = ResumeRecord {
            total: 10,
            done: vec![(20, 30)],
        };
        assert_eq!(record.gaps(), vec![(0, 10)]);
    }
}
