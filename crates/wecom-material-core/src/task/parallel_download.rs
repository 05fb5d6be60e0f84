//! A download into a positioned sink (a file) with several Range requests in flight: the
//! ranges to fetch, how many at once (adaptive: WeCom answers 45033 to a client that
//! hammers one media), busy retries of a range, and a resume record of the bytes that
//! arrived. Each range is an ordinary [`DownloadTask`] (token, retries, truncated bodies,
//! 830002 — all as for one stream), which the transport drives with a sink positioned at the
//! range's start; this value only coordinates them.
//!
//! # The loop a transport implements
//!
//! ```text
//! let mut download = ParallelDownload::new(media_id, options, &settings, seed, resume)?;
//! loop {
//!     match download.poll(clock.now()) {
//!         ParallelStep::Start(job) => spawn(drive(job.task, sink_at(job.start)) → report(job.id, result)),
//!         ParallelStep::CancelRunning => cancel every running range (they still report their end),
//!         ParallelStep::Wait { until } => wait for a report (or until `until`),
//!                                         then download.on_range_done(now, id, result),
//!         ParallelStep::Done(result) => return result,
//!     }
//! }
//! ```
//!
//! # States
//!
//! ```text
//!   no total known ──▶ Probe: one small range [0, 1 MiB) ──done──▶ total known:
//!       the missing bytes are split into ranges of ≤ the chunk size (about four per
//!       connection, so connections finish together)
//!   Ranges: start ranges while fewer than `limit` run ──▶ every range done ──▶ Done(Ok)
//!     a range ends with 45033 ──▶ limit = max(1, limit / 2), the range goes back to the
//!                                 queue after a backoff (at most 8 times)
//!     a range ends with -1   ──▶ back to the queue after a backoff (at most 3 times)
//!     a range fails for good, or cancel ──▶ CancelRunning ──all ended──▶ Done(Err)
//! ```
//!
//! A range task never retries a busy answer itself (its retry policy has no busy retries):
//! the coordinator retries it, so that a 45033 lowers the concurrency at once.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::client_settings::ClientSettings;
use crate::driver::RetryPolicy;
use crate::errcode::ErrCode;
use crate::error::{DecodeError, Error, Invalid};
use crate::media_type::MediaId;
use crate::ops::get_media::MediaInfo;
use crate::task::download_task::{DownloadOptions, DownloadTask};
use crate::transfer::Downloaded;

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
        self.done.iter().map(|(s, e)| e - s).sum()
    }

    /// Whether every byte arrived.
    pub fn is_complete(&self) -> bool {
        self.done == [(0, self.total)] || self.total == 0
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

    /// The intervals still missing.
    fn gaps(&self) -> Vec<(u64, u64)> {
        let mut gaps = Vec::new();
        let mut at = 0;
        for &(s, e) in &self.done {
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

/// A range to run: drive `task` with a sink positioned at byte `start` of the media, and
/// report its result with [`ParallelDownload::on_range_done`] under `id`.
#[derive(Debug)]
pub struct RangeJob {
    /// The job's id.
    pub id: u64,
    /// The media byte the range starts at.
    pub start: u64,
    /// The range's download.
    pub task: DownloadTask,
}

/// What the transport does next for a [`ParallelDownload`].
// A step is matched at once, and a start happens once per range: boxing the job would cost
// an allocation for no gain.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum ParallelStep {
    /// Start this range.
    Start(RangeJob),
    /// Cancel every running range; each still reports its end.
    CancelRunning,
    /// Wait for a running range to report, or until `until`.
    Wait {
        /// When to poll again at the latest (a queued range's backoff ends).
        until: Option<Instant>,
    },
    /// The download is over.
    Done(Result<Downloaded, Error>),
}

#[derive(Debug)]
struct Queued {
    start: u64,
    end: u64,
    throttled: u32,
    busy: u32,
    not_before: Option<Instant>,
}

/// A parallel download (see the [module docs](self)).
#[derive(Debug)]
pub struct ParallelDownload {
    media_id: MediaId,
    settings: ClientSettings,
    range_policy: RetryPolicy,
    max: usize,
    limit: usize,
    seed: u64,
    next_id: u64,
    record: Option<ResumeRecord>,
    info: Option<MediaInfo>,
    queue: VecDeque<Queued>,
    running: Vec<(u64, Queued)>,
    written: u64,
    throttled: u32,
    failure: Option<Error>,
    cancelling: bool,
    cancel_sent: bool,
}

impl ParallelDownload {
    /// A download of `media_id` with up to `options.connections` ranges in flight, using the
    /// client's settings; `resume` is the record a previous run left (the bytes it wrote are
    /// not fetched again).
    pub fn new(
        media_id: MediaId,
        options: &DownloadOptions,
        settings: &ClientSettings,
        seed: u64,
        resume: Option<ResumeRecord>,
    ) -> Result<Self, Error> {
        if options.hd_voice || options.max_len.is_some() || options.resume_from > 0 {
            return Err(Invalid::BadRange {
                reason: "a parallel download is of media/get into a file, resumed by its record"
                    .into(),
            }
            .into());
        }
        let range_policy = RetryPolicy {
            max_busy_retries: 0,
            ..settings.retry_policy
        };
        let max = options.connections.max(1);
        let mut download = Self {
            media_id,
            settings: settings.clone(),
            range_policy,
            max,
            limit: max,
            seed,
            next_id: 0,
            record: None,
            info: None,
            queue: VecDeque::new(),
            running: Vec::new(),
            written: 0,
            throttled: 0,
            failure: None,
            cancelling: false,
            cancel_sent: false,
        };
        match resume {
            Some(record) => download.plan_ranges(record),
            None => download.queue.push_back(Queued::new(0, PROBE_LEN)),
        }
        Ok(download)
    }

    /// How many 45033 answers the ranges got.
    pub fn throttled(&self) -> u32 {
        self.throttled
    }

    /// How many ranges may run at once now.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// What arrived so far, once the size is known: keep it to resume later.
    pub fn resume_record(&self) -> Option<&ResumeRecord> {
        self.record.as_ref()
    }

    /// Stops the download: running ranges are cancelled, and it ends with
    /// [`Error::Cancelled`].
    pub fn cancel(&mut self) {
        self.cancelling = true;
    }

    /// What to do next.
    pub fn poll(&mut self, now: Instant) -> ParallelStep {
        if self.failure.is_some() || self.cancelling {
            if !self.running.is_empty() {
                if !std::mem::replace(&mut self.cancel_sent, true) {
                    return ParallelStep::CancelRunning;
                }
                return ParallelStep::Wait { until: None };
            }
            let bytes_written = self.written;
            let error = self.failure.take();
            return ParallelStep::Done(Err(error.unwrap_or(Error::Cancelled { bytes_written })));
        }
        let room = self.running.len() < self.limit;
        let due = self
            .queue
            .front()
            .is_some_and(|q| q.not_before.is_none_or(|t| t <= now));
        if room
            && due
            && let Some(queued) = self.queue.pop_front()
        {
            return self.start(now, queued);
        }
        if self.queue.is_empty() && self.running.is_empty() {
            return ParallelStep::Done(self.finished());
        }
        let until = if room {
            self.queue.front().and_then(|q| q.not_before)
        } else {
            None
        };
        ParallelStep::Wait { until }
    }

    /// Reports how the range job `id` ended.
    pub fn on_range_done(&mut self, now: Instant, id: u64, result: Result<Downloaded, Error>) {
        let Some(at) = self.running.iter().position(|(i, _)| *i == id) else {
            return;
        };
        let (_, mut range) = self.running.swap_remove(at);
        match result {
            Ok(done) => {
                self.written += done.bytes_written;
                if self.record.is_none() {
                    self.info = Some(done.info);
                    let mut record = ResumeRecord {
                        total: done.total,
                        done: Vec::new(),
                    };
                    record.add(range.start, range.start + done.bytes_written);
                    return self.plan_ranges(record);
                }
                let known = self.record.as_ref().map_or(done.total, |r| r.total);
                if done.total != known {
                    let message =
                        format!("media size changed from {known} to {} bytes", done.total);
                    self.fail(DecodeError::new(206, message, b"").into());
                }
                if let Some(record) = &mut self.record {
                    record.add(range.start, range.start + done.bytes_written);
                }
                if self.info.is_none() {
                    self.info = Some(done.info);
                }
            }
            Err(Error::Cancelled { bytes_written }) => {
                self.written += bytes_written;
                if let Some(record) = &mut self.record {
                    record.add(range.start, range.start + bytes_written);
                }
                if !self.cancelling && self.failure.is_none() {
                    self.fail(Error::Cancelled { bytes_written });
                }
            }
            Err(error) => match error.errcode() {
                Some(ErrCode::TooManyConcurrent) if range.throttled < MAX_THROTTLED_RETRIES => {
                    self.throttled += 1;
                    self.limit = (self.limit / 2).max(1);
                    range.throttled += 1;
                    let retry = range.throttled + range.busy;
                    range.not_before = Some(now + self.backoff(retry));
                    self.queue.push_front(range);
                }
                Some(ErrCode::SystemBusy) if range.busy < MAX_BUSY_RETRIES => {
                    range.busy += 1;
                    let retry = range.throttled + range.busy;
                    range.not_before = Some(now + self.backoff(retry));
                    self.queue.push_front(range);
                }
                _ => self.fail(error),
            },
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

    fn start(&mut self, now: Instant, queued: Queued) -> ParallelStep {
        let id = self.next_id;
        self.next_id += 1;
        let seed = self.seed.wrapping_add(id);
        let range = (queued.start, queued.end);
        let media_id = self.media_id.clone();
        match DownloadTask::range(media_id, range, &self.settings, self.range_policy, seed) {
            Ok(task) => {
                self.running.push((id, queued));
                ParallelStep::Start(RangeJob {
                    id,
                    start: range.0,
                    task,
                })
            }
            Err(error) => {
                self.fail(error);
                self.poll(now)
            }
        }
    }

    /// The size is known: queue the missing bytes in ranges small enough that the
    /// connections finish together, never over the chunk size.
    fn plan_ranges(&mut self, record: ResumeRecord) {
        let gaps = record.gaps();
        let missing: u64 = gaps.iter().map(|(s, e)| e - s).sum();
        let per_range = missing.div_ceil(self.max as u64 * 4).max(PROBE_LEN);
        let size = per_range.min(self.settings.chunk_size).max(1);
        for (start, end) in gaps {
            let mut at = start;
            while at < end {
                let next = (at + size).min(end);
                self.queue.push_back(Queued::new(at, next));
                at = next;
            }
        }
        self.record = Some(record);
    }

    fn finished(&mut self) -> Result<Downloaded, Error> {
        let record = self.record.as_ref();
        let complete = record.is_some_and(ResumeRecord::is_complete);
        match (self.info.take(), record) {
            (Some(info), Some(record)) if complete => Ok(Downloaded {
                info,
                bytes_written: self.written,
                total: record.total,
            }),
            _ => Err(DecodeError::new(0, "the ranges did not cover the media", b"").into()),
        }
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
