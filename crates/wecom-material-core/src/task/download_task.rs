//! A whole download as a [`Task`]: Range planning, per-request calls (token, retries),
//! classification of every head, streaming into the sink, resuming broken bodies, the
//! in-memory limit, and the final flush.
//!
//! ```text
//!        ┌──────────────────────── next request of the plan ◀──────────────────────┐
//!        ▼                                                                         │
//!   Calling (a CallMachine<GetMedia>: token, busy/transport retries)                  │
//!     │ business head = media ──▶ Streaming{left} ──Written(n)…──▶ left = 0 ───────┤
//!     │                               │ BodyEnd / TransportFailed: resume from the │
//!     │                               │   byte reached (≤ 3 stalls) ───────────────┤
//!     │ head = error: the call reads and parses it; 830002 → chunks ───────────────┘
//!     │ the call ends with another error ──┐
//!   plan complete ──▶ Ok(Downloaded) ──────┤
//!   cancel / Local(error) ─────────────────┤
//!                                          ▼
//!                        Finishing: FlushSink ──Flushed──▶ Done(result)
//! ```
//!
//! The sink is flushed before every result, also after a failure or a cancel, so a caller
//! that resumes from the size of a partial file resumes from the right byte; the result (or
//! [`Error::Cancelled`]) says how many bytes reached the sink.

use std::time::{Duration, Instant};

use crate::client_settings::{ClientSettings, DEFAULT_MEDIA_IDLE_TIMEOUT};
use crate::download::content_range::ContentRange;
use crate::download::plan::{Download, Expect};
use crate::driver::RetryPolicy;
use crate::endpoint::BaseUrl;
use crate::error::{DecodeError, Error, Stall, StallKind};
use crate::media_type::MediaId;
use crate::ops::get_media::{GetMedia, MediaEndpoint, MediaHead};
use crate::task::call_task::CallMachine;
use crate::task::{Action, ClientState, Event, Exchange, LaneId, Machine, Timeouts, misuse};
use crate::transfer::{Downloaded, Progress};

/// How to download: which endpoint, from which byte, and whether into memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownloadOptions {
    /// HD voice (`media/get/jssdk`) instead of `media/get`.
    pub hd_voice: bool,
    /// The caller already has the first `resume_from` bytes (a partial file): fetch the rest.
    pub resume_from: u64,
    /// At most this many bytes may be downloaded (an in-memory download); a larger media
    /// fails with a decode error before its body is read. `None`: no limit.
    pub max_len: Option<u64>,
    /// How many ranges may be in flight at once for a download into a file (see
    /// [`DownloadTask`](crate::DownloadTask)); 0 and 1 mean one at a time.
    pub connections: usize,
}

impl DownloadOptions {
    /// Downloads HD voice (speex 16 kHz) instead of the stored media.
    pub fn hd_voice(mut self) -> Self {
        self.hd_voice = true;
        self
    }

    /// Continues after the first `offset` bytes.
    pub fn resume_from(mut self, offset: u64) -> Self {
        self.resume_from = offset;
        self
    }

    /// Fetches up to `n` ranges at once (a download into a file; HD voice is always fetched
    /// in one stream, as Range is not documented for it).
    pub fn connections(mut self, n: usize) -> Self {
        self.connections = n;
        self
    }

    /// Refuses media longer than `max` bytes.
    pub fn max_len(mut self, max: u64) -> Self {
        self.max_len = Some(max);
        self
    }

    fn endpoint(&self) -> MediaEndpoint {
        if self.hd_voice {
            MediaEndpoint::HdVoice
        } else {
            MediaEndpoint::Media
        }
    }
}

/// The slowest body accepted: 1 KiB/s, measured over windows as long as the media idle
/// timeout. A server that trickles a byte now and then never trips the idle timeout; a body
/// under this floor for a whole window is broken off as stalled and resumed from the byte
/// reached (and counts toward the plan's bound on attempts without progress).
pub(super) const MIN_BODY_BYTES_PER_SEC: u64 = 1024;

enum Phase {
    /// Between requests, or a call is running.
    // Boxed: a call is large, and the other phases are a few words.
    Calling(Option<Box<CallMachine<GetMedia>>>),
    /// A media body is being streamed; `left` bytes are due (`u64::MAX` with `until_end`: a
    /// 200 answer without `Content-Length`, read to its end).
    Streaming { left: u64, until_end: bool },
    /// A short media answer without `Content-Disposition` is read whole first: a WeCom error
    /// object is an error whatever its `Content-Type` (see [`GetMedia::classify_probe`]).
    Probing {
        call: Box<CallMachine<GetMedia>>,
        head: http::response::Parts,
        expected: u64,
    },
    /// The probed body is media: its bytes go to the sink, then the rest of the body.
    Writing { bytes: bytes::Bytes, left: u64 },
    /// A range without `Content-Length` delivered every byte of its `Content-Range`: the body
    /// must end here (`ReadBody { limit: 0 }`); a byte more is a decode error.
    Verifying,
    /// The result is known; the sink is flushed before it is returned.
    Finishing {
        result: Result<Downloaded, Error>,
        flush: Flush,
    },
    /// The result was returned.
    Returned,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flush {
    /// `FlushSink` is still to be handed out.
    Due,
    /// `FlushSink` is out; `Flushed` is awaited.
    Asked,
    /// Flushed: the next poll returns the result.
    Done,
}

/// One stream of a download: the whole media, or one range of a parallel download (see the
/// [`task`](crate::task) module docs and [`DownloadTask`](crate::task::DownloadTask)).
pub(crate) struct RangeDownload {
    plan: Download,
    options: DownloadOptions,
    base: BaseUrl,
    policy: RetryPolicy,
    jitter_seed: u64,
    requests: u64,
    written: u64,
    phase: Phase,
    /// A call dropped while it held the token refresh: the others are to be woken.
    wake: bool,
    /// The window a streamed body's rate is measured over (the media idle timeout).
    stall_window: Duration,
    /// The current window's start and the offset then.
    window: Option<(Instant, u64)>,
    /// The answer being streamed has no `Content-Length`: its end is checked.
    unframed: bool,
}

impl std::fmt::Debug for RangeDownload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RangeDownload")
            .field("plan", &self.plan)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl RangeDownload {
    /// A download of `media_id` in chunks of at most `chunk_size` bytes (WeCom's maximum is
    /// [`crate::MAX_CHUNK_SIZE`]).
    pub(crate) fn new(
        media_id: MediaId,
        options: DownloadOptions,
        chunk_size: u64,
        base: BaseUrl,
        policy: RetryPolicy,
        jitter_seed: u64,
    ) -> Result<Self, Error> {
        let plan = Download::new(options.endpoint(), media_id, chunk_size)?
            .resume_from(options.resume_from);
        Ok(Self {
            plan,
            options,
            base,
            policy,
            jitter_seed,
            requests: 0,
            written: 0,
            phase: Phase::Calling(None),
            wake: false,
            stall_window: DEFAULT_MEDIA_IDLE_TIMEOUT,
            window: None,
            unframed: false,
        })
    }

    /// A download with a client's settings (chunk size, base URL, retry policy).
    pub(crate) fn for_client(
        media_id: MediaId,
        options: DownloadOptions,
        settings: &ClientSettings,
        jitter_seed: u64,
    ) -> Result<Self, Error> {
        let (base, policy) = (settings.base.clone(), settings.retry_policy);
        let task = Self::new(
            media_id,
            options,
            settings.chunk_size,
            base,
            policy,
            jitter_seed,
        )?;
        Ok(task.with_stall_window(settings.media_idle_timeout))
    }

    /// Measures a streamed body's rate over windows of `window` (default: the media idle
    /// timeout, [`DEFAULT_MEDIA_IDLE_TIMEOUT`]); see [`MIN_BODY_BYTES_PER_SEC`].
    pub(super) fn with_stall_window(mut self, window: Duration) -> Self {
        self.stall_window = window;
        self
    }

    /// One range `[start, end)` of a parallel download, in chunks of at most `chunk_size`.
    pub(crate) fn range(
        media_id: MediaId,
        (start, end): (u64, u64),
        settings: &ClientSettings,
        policy: RetryPolicy,
        jitter_seed: u64,
    ) -> Result<Self, Error> {
        let options = DownloadOptions::default().resume_from(start);
        let base = settings.base.clone();
        let mut task = Self::new(
            media_id,
            options,
            settings.chunk_size,
            base,
            policy,
            jitter_seed,
        )?;
        task.plan = task.plan.ending_at(end);
        Ok(task.with_stall_window(settings.media_idle_timeout))
    }

    /// Bytes of the media received so far (a resumed prefix included) and its size once
    /// known: the progress to show.
    pub(crate) fn progress(&self) -> Progress {
        Progress {
            done: self.plan.offset(),
            total: self.plan.total(),
        }
    }

    /// What the response head of this stream said about the media, once one arrived.
    pub(crate) fn info(&self) -> Option<&crate::ops::get_media::MediaInfo> {
        self.plan.info()
    }

    fn finish(&mut self, state: &mut ClientState, result: Result<Downloaded, Error>) {
        if let Phase::Calling(Some(call)) = &mut self.phase {
            call.cancel(state);
            self.wake |= call.take_wake();
        }
        let written = self.written;
        let result = result.map_err(|error| match error {
            Error::Stalled(stall) => Error::Stalled(Stall {
                bytes_written: written,
                ..stall
            }),
            // The download's own errors quote server text too (a decode reason, an excerpt).
            other => state.tokens.redact(other),
        });
        self.phase = Phase::Finishing {
            result,
            flush: Flush::Due,
        };
    }

    /// Whether the operation is still running (not finishing, not returned).
    fn running(&self) -> bool {
        !matches!(self.phase, Phase::Finishing { .. } | Phase::Returned)
    }

    /// Checks the rate of the body streamed so far at `now` (see [`MIN_BODY_BYTES_PER_SEC`]):
    /// a whole window under the floor is a stall.
    fn check_rate(&mut self, now: Instant) -> Result<(), Error> {
        let offset = self.plan.offset();
        let Some((start, mark)) = self.window else {
            self.window = Some((now, offset));
            return Ok(());
        };
        let elapsed = now.saturating_duration_since(start);
        if elapsed < self.stall_window || elapsed.is_zero() {
            return Ok(());
        }
        let delivered = offset.saturating_sub(mark);
        let floor = u128::from(MIN_BODY_BYTES_PER_SEC) * elapsed.as_millis() / 1000;
        if u128::from(delivered) < floor {
            return Err(Error::Stalled(Stall {
                kind: StallKind::SlowBody {
                    bytes: delivered,
                    window: elapsed,
                    floor_per_sec: MIN_BODY_BYTES_PER_SEC,
                },
                offset,
                bytes_written: self.written,
                last: None,
            }));
        }
        self.window = Some((now, offset));
        Ok(())
    }

    fn complete(&self) -> Result<Downloaded, Error> {
        let info = self
            .plan
            .info()
            .cloned()
            .ok_or_else(|| Error::from(DecodeError::new(0, "nothing to download", b"")))?;
        Ok(Downloaded {
            info,
            bytes_written: self.written,
            total: self.plan.total().unwrap_or(self.plan.offset()),
        })
    }

    fn on_head(&mut self, now: Instant, state: &mut ClientState, head: http::response::Parts) {
        let Phase::Calling(Some(call)) = &mut self.phase else {
            return;
        };
        if head.status == http::StatusCode::RANGE_NOT_SATISFIABLE {
            // A chunk asked at the end of a media whose total was unknown (`bytes a-b/*`).
            let complete = head.headers.get(http::header::CONTENT_RANGE);
            let complete = complete.and_then(|v| ContentRange::parse(v.as_bytes()));
            let total = complete.and_then(|range| range.complete());
            return match self.plan.on_range_not_satisfiable(total) {
                Ok(()) => self.phase = Phase::Calling(None),
                Err(error) => self.finish(state, Err(error)),
            };
        }
        let info = match call.operation().classify(&head) {
            Ok(MediaHead::Media(info)) => info,
            // The call reads the error answer and decides (refresh, retry, 830002, fail).
            Ok(MediaHead::Error) => {
                return call.on_event(now, state, Event::Head(head));
            }
            Err(error) => return self.finish(state, Err(error)),
        };
        let (expected, until_end) = match self.plan.on_media_head(&info) {
            Ok(Expect::Exactly(expected)) => (expected, false),
            Ok(Expect::UntilEnd) => (u64::MAX, true),
            Err(error) => return self.finish(state, Err(error)),
        };
        if let (Some(max), Some(total)) = (self.options.max_len, self.plan.total())
            && total > max
        {
            let error = DecodeError::new(
                info.status,
                format!("the media is {total} bytes, more than the limit of {max}"),
                b"",
            );
            return self.finish(state, Err(error.into()));
        }
        self.unframed = info.content_range.is_some() && info.content_length.is_none();
        self.window = Some((now, self.plan.offset()));
        // A 206 with its Content-Range is a range of the media, never an error object; a
        // short whole answer without Content-Disposition is read first and classified.
        let whole = info.content_range.is_none() && info.content_length.is_some();
        let probe = GetMedia::probe_limit(&head).filter(|_| whole);
        self.phase = match (expected, probe) {
            (0, _) => Phase::Calling(None),
            // (A probe needs a Content-Length, so this is never a body read until its end.)
            (_, Some(_)) => {
                match std::mem::replace(&mut self.phase, Phase::Returned) {
                    Phase::Calling(Some(call)) => Phase::Probing {
                        call,
                        head,
                        expected,
                    },
                    // Not reached: this head answered the running call.
                    other => other,
                }
            }
            // The call ends here: a media head carries no errcode to decide on.
            _ => Phase::Streaming {
                left: expected,
                until_end,
            },
        };
    }

    /// The probed body arrived: an error object goes to the call as an error answer, media
    /// goes to the sink.
    fn on_probe(&mut self, now: Instant, state: &mut ClientState, probe: Phase, event: Event) {
        let Phase::Probing {
            mut call,
            head,
            expected,
        } = probe
        else {
            return;
        };
        let bytes = match event {
            Event::Body(bytes) => bytes,
            Event::TransportFailed(error) => {
                return self.interrupted(state, Error::Transport(error));
            }
            Event::Local(error) => return self.finish(state, Err(error)),
            other => return self.finish(state, Err(misuse(&other, "Body"))),
        };
        match call.operation().classify_probe(&head, &bytes) {
            Ok(MediaHead::Error) => {
                call.on_event(now, state, Event::Head(head));
                call.on_event(now, state, Event::Body(bytes));
                self.phase = Phase::Calling(Some(call));
            }
            Ok(MediaHead::Media(info)) => match expected.checked_sub(bytes.len() as u64) {
                None => {
                    let message =
                        format!("{} bytes arrived where {expected} were due", bytes.len());
                    let error = DecodeError::new(info.status, message, b"");
                    self.finish(state, Err(error.into()));
                }
                Some(_) if bytes.is_empty() => self.body_ended_early(state, expected),
                // What arrived is written; a short body's rest is asked for from the byte
                // reached.
                Some(left) => self.phase = Phase::Writing { bytes, left },
            },
            Err(error) => self.finish(state, Err(error)),
        }
    }

    fn on_stream_event(
        &mut self,
        now: Instant,
        state: &mut ClientState,
        left: u64,
        until_end: bool,
        event: Event,
    ) {
        match event {
            Event::BodyEnd if until_end => match self.plan.on_body_end() {
                Ok(()) => self.phase = Phase::Calling(None),
                Err(error) => self.finish(state, Err(error)),
            },
            Event::Written(n) if n >= 1 && n <= left => {
                if let Err(error) = self.plan.on_bytes(n) {
                    return self.finish(state, Err(error));
                }
                self.written = self.written.saturating_add(n);
                if let Some(max) = self.options.max_len
                    && self.plan.offset() > max
                {
                    let error = DecodeError::new(
                        200,
                        format!("the media is more than the limit of {max} bytes"),
                        b"",
                    );
                    return self.finish(state, Err(error.into()));
                }
                // (Until the end, `left` starts at u64::MAX: it never reaches 0.)
                self.phase = match left - n {
                    0 if self.unframed => Phase::Verifying,
                    0 => Phase::Calling(None),
                    left => Phase::Streaming { left, until_end },
                };
                if matches!(self.phase, Phase::Streaming { .. })
                    && let Err(stall) = self.check_rate(now)
                {
                    self.interrupted(state, stall);
                }
            }
            Event::BodyEnd => {
                let cause = crate::error::TransportError::maybe_sent(format!(
                    "body ended {left} bytes early"
                ));
                self.interrupted(state, Error::Transport(cause));
            }
            Event::TransportFailed(error) => self.interrupted(state, Error::Transport(error)),
            Event::Local(error) => self.finish(state, Err(error)),
            other => {
                let error = misuse(
                    &other,
                    "Written(1..=max), BodyEnd, TransportFailed or Local",
                );
                self.finish(state, Err(error));
            }
        }
    }

    fn body_ended_early(&mut self, state: &mut ClientState, left: u64) {
        let cause = format!("body ended {left} bytes early");
        let cause = crate::error::TransportError::maybe_sent(cause);
        self.interrupted(state, Error::Transport(cause));
    }

    fn interrupted(&mut self, state: &mut ClientState, cause: Error) {
        self.window = None;
        match self.plan.on_interrupted(cause) {
            Ok(()) => self.phase = Phase::Calling(None),
            Err(error) => self.finish(state, Err(error)),
        }
    }

    /// The answer to `ReadBody { limit: 0 }` after an unframed range: its body must be over.
    fn on_verified(&mut self, state: &mut ClientState, event: Event) {
        match event {
            Event::Body(bytes) if bytes.is_empty() => self.phase = Phase::Calling(None),
            // Every byte of the range arrived; a connection that breaks after it costs none.
            Event::BodyEnd | Event::TransportFailed(_) => self.phase = Phase::Calling(None),
            Event::Body(_) | Event::Local(Error::Decode(_)) => {
                let reason = "a 206 answer ran past the end of its Content-Range";
                let error = DecodeError::new(206, reason, b"");
                self.finish(state, Err(error.into()));
            }
            Event::Local(error) => self.finish(state, Err(error)),
            other => self.finish(state, Err(misuse(&other, "Body"))),
        }
    }
}

impl Machine for RangeDownload {
    type Output = Downloaded;

    fn poll(&mut self, now: Instant, state: &mut ClientState) -> Action<Downloaded> {
        if std::mem::take(&mut self.wake) {
            return Action::WakeOthers;
        }
        loop {
            match &mut self.phase {
                Phase::Returned => {
                    let error = misuse(&Event::BodyEnd, "nothing: the task had ended");
                    return Action::Done(Err(error));
                }
                Phase::Finishing { flush, .. } if *flush == Flush::Due => {
                    *flush = Flush::Asked;
                    return Action::Exchange(LaneId::MAIN, Exchange::FlushSink);
                }
                Phase::Finishing { result, flush } => {
                    let result = std::mem::replace(result, Err(cancelled(0)));
                    let flushed = *flush == Flush::Done;
                    self.phase = Phase::Returned;
                    return Action::Done(if flushed {
                        result
                    } else {
                        Err(misuse(&Event::BodyEnd, "Flushed"))
                    });
                }
                Phase::Streaming { left, .. } => {
                    let (max, at) = (*left, self.plan.offset());
                    return Action::Exchange(LaneId::MAIN, Exchange::Stream { max, at });
                }
                Phase::Probing { .. } => {
                    let limit = crate::ops::get_media::PROBE_LIMIT;
                    return Action::Exchange(LaneId::MAIN, Exchange::ReadBody { limit });
                }
                Phase::Writing { bytes, .. } => {
                    let (at, bytes) = (self.plan.offset(), bytes.clone());
                    return Action::Exchange(LaneId::MAIN, Exchange::Write { at, bytes });
                }
                Phase::Verifying => {
                    return Action::Exchange(LaneId::MAIN, Exchange::ReadBody { limit: 0 });
                }
                Phase::Calling(None) => {
                    let Some(op) = self.plan.next_request() else {
                        let result = self.complete();
                        self.finish(state, result);
                        continue;
                    };
                    self.requests += 1;
                    let seed = self.jitter_seed.wrapping_add(self.requests);
                    let call =
                        CallMachine::new(op, self.base.clone(), self.policy, seed, Timeouts::Media);
                    self.phase = Phase::Calling(Some(Box::new(call)));
                }
                Phase::Calling(Some(call)) => match call.poll(now, state).forward() {
                    Ok(action) => return action,
                    Err(Ok(_)) => {
                        let error = DecodeError::new(200, "a media answer was not streamed", b"");
                        self.finish(state, Err(error.into()));
                    }
                    Err(Err(error)) => {
                        self.phase = Phase::Calling(None);
                        if !self.plan.on_api_error(&error) {
                            self.finish(state, Err(error));
                        }
                    }
                },
            }
        }
    }

    fn on_event(&mut self, now: Instant, state: &mut ClientState, event: Event) {
        match std::mem::replace(&mut self.phase, Phase::Returned) {
            Phase::Calling(Some(call)) => {
                let business_head = call.awaits_business_head();
                self.phase = Phase::Calling(Some(call));
                match event {
                    Event::Head(head) if business_head => self.on_head(now, state, head),
                    event => {
                        if let Phase::Calling(Some(call)) = &mut self.phase {
                            call.on_event(now, state, event);
                        }
                    }
                }
            }
            Phase::Streaming { left, until_end } => {
                self.on_stream_event(now, state, left, until_end, event)
            }
            Phase::Verifying => self.on_verified(state, event),
            probe @ Phase::Probing { .. } => self.on_probe(now, state, probe, event),
            Phase::Writing { bytes, left } => match event {
                Event::Written(n) if n == bytes.len() as u64 => {
                    // Counted like streamed bytes (which sets the next phase); the probe
                    // read the whole body, so any `left` is missing: the next request resumes
                    // from the byte reached.
                    self.on_stream_event(now, state, n + left, false, Event::Written(n));
                    // Still streaming: `left` bytes are missing.
                    if matches!(self.phase, Phase::Streaming { .. }) {
                        self.body_ended_early(state, left);
                    }
                }
                Event::Local(error) => self.finish(state, Err(error)),
                other => self.finish(state, Err(misuse(&other, "Written(all the bytes)"))),
            },
            Phase::Finishing {
                result,
                flush: Flush::Asked,
            } => {
                let result = match (result, event) {
                    (result, Event::Flushed(None)) => result,
                    (Ok(_), Event::Flushed(Some(e))) => Err(Error::io("flushing the download", e)),
                    (Err(error), Event::Flushed(Some(_))) => Err(error),
                    (_, other) => Err(misuse(&other, "Flushed")),
                };
                self.phase = Phase::Finishing {
                    result,
                    flush: Flush::Done,
                };
            }
            phase @ Phase::Finishing { .. } => {
                // An event nobody asked for: the result becomes the misuse error.
                let error = misuse(&event, "no event (poll first)");
                self.phase = phase;
                if let Phase::Finishing { result, .. } = &mut self.phase {
                    *result = Err(error);
                }
            }
            Phase::Calling(None) => {
                self.phase = Phase::Calling(None);
                let error = misuse(&event, "no event (poll first)");
                self.finish(state, Err(error));
            }
            Phase::Returned => {}
        }
    }

    fn progress(&self) -> Option<Progress> {
        Some(RangeDownload::progress(self))
    }

    fn on_late_write(&mut self, n: u64) {
        self.written = self.written.saturating_add(n);
        if let Phase::Finishing {
            result: Err(Error::Cancelled { bytes, .. }),
            ..
        } = &mut self.phase
        {
            *bytes = bytes.saturating_add(n);
        }
    }

    fn cancel(&mut self, state: &mut ClientState) {
        if let Phase::Probing { call, .. } = &mut self.phase {
            call.cancel(state);
        }
        if self.running() {
            self.finish(state, Err(cancelled(self.written)));
        }
    }
}

/// [`Error::Cancelled`] for a download that wrote `bytes` into its sink.
pub(super) fn cancelled(bytes: u64) -> Error {
    Error::Cancelled {
        operation: crate::error::OperationKind::Download,
        bytes,
        total: None,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::ops::gettoken::GetToken;
    use crate::secret::CorpSecret;
    use crate::task::Exchange;
    use crate::token_cache::StoredToken;
    use std::time::{Duration, SystemTime};

    /// A probed body longer than its `Content-Length` (found by the `tasks` fuzz target: it
    /// overflowed) ends the download with a decode error, and nothing is written.
    #[test]
    fn a_probed_body_longer_than_announced_is_a_decode_error() {
        let (now, wall) = (Instant::now(), SystemTime::now());
        let mut state = ClientState::new(GetToken::new("ww", CorpSecret::new("s")));
        let unix = wall
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let token = StoredToken {
            access_token: "T".into(),
            expires_at_unix: unix + 7200,
            generation: 1,
        };
        assert!(state.import_token(token, now, wall));
        let base = BaseUrl::parse("http://127.0.0.1:9").unwrap();
        let options = DownloadOptions::default();
        let mut task = RangeDownload::new(
            "m".into(),
            options,
            MAX_CHUNK,
            base,
            RetryPolicy::default(),
            1,
        )
        .unwrap();
        assert!(matches!(
            task.poll(now, &mut state),
            Action::Exchange(_, Exchange::Send { .. })
        ));
        let head = http::Response::builder()
            .status(200)
            .header("content-type", "application/octet-stream")
            .header("content-length", "10")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        task.on_event(now, &mut state, Event::Head(head));
        assert!(matches!(
            task.poll(now, &mut state),
            Action::Exchange(_, Exchange::ReadBody { .. })
        ));
        let body = bytes::Bytes::from(vec![7u8; 20]);
        task.on_event(now, &mut state, Event::Body(body));
        assert!(matches!(
            task.poll(now, &mut state),
            Action::Exchange(_, Exchange::FlushSink)
        ));
        task.on_event(
            now + Duration::from_millis(1),
            &mut state,
            Event::Flushed(None),
        );
        let Action::Done(Err(Error::Decode(e))) = task.poll(now, &mut state) else {
            panic!("not a decode error")
        };
        assert!(
            e.to_string().contains("20 bytes arrived where 10 were due"),
            "{e}"
        );
    }

    const MAX_CHUNK: u64 = crate::download::plan::MAX_CHUNK_SIZE;

    /// A client state holding a valid token, so the first poll sends the request (the media
    /// request here, the business request in `controlled`'s tests).
    pub(in crate::task) fn state_with_token(now: Instant) -> ClientState {
        let wall = SystemTime::now();
        let mut state = ClientState::new(GetToken::new("ww", CorpSecret::new("s")));
        let unix = wall
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let token = StoredToken {
            access_token: "TOKEN-in-the-state".into(),
            expires_at_unix: unix + 7200,
            generation: 1,
        };
        assert!(state.import_token(token, now, wall));
        state
    }

    fn new_task(options: DownloadOptions) -> RangeDownload {
        let base = BaseUrl::parse("http://127.0.0.1:9").unwrap();
        RangeDownload::new(
            "m".into(),
            options,
            MAX_CHUNK,
            base,
            RetryPolicy::default(),
            1,
        )
        .unwrap()
        .with_stall_window(Duration::from_secs(10))
    }

    fn head(status: u16, headers: &[(&str, &str)]) -> http::response::Parts {
        let mut b = http::Response::builder().status(status);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    /// Polls until the task ends, answering `FlushSink`; returns the result.
    fn finish(task: &mut RangeDownload, state: &mut ClientState, now: Instant) -> Error {
        loop {
            match task.poll(now, state) {
                Action::Exchange(_, Exchange::FlushSink) => {
                    task.on_event(now, state, Event::Flushed(None))
                }
                Action::Done(Err(error)) => return error,
                other => panic!("{other:?}"),
            }
        }
    }

    /// The flush that ends a complete download, then its result.
    fn completed(task: &mut RangeDownload, state: &mut ClientState, now: Instant) -> Downloaded {
        assert!(matches!(
            task.poll(now, state),
            Action::Exchange(_, Exchange::FlushSink)
        ));
        task.on_event(now, state, Event::Flushed(None));
        let Action::Done(Ok(done)) = task.poll(now, state) else {
            panic!("not done")
        };
        done
    }

    /// The Range start of a `Send`.
    fn range_start(action: Action<Downloaded>) -> u64 {
        let Action::Exchange(_, Exchange::Send { request, .. }) = action else {
            panic!("{action:?}")
        };
        let range = request
            .headers()
            .get("range")
            .map(|v| v.to_str().unwrap().to_owned());
        range.map_or(0, |r| {
            r.trim_start_matches("bytes=")
                .split('-')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
    }

    /// Issue 19, item 2: a 1-byte-per-second trickle held a download for as long as it
    /// lasted. A body under 1 KiB/s over a whole window is broken off and resumed; attempts
    /// that stay under the progress floor end with a typed stall whose source is the slow
    /// body.
    #[test]
    fn a_body_slower_than_the_floor_is_a_stall_and_repeated_stalls_end_the_download() {
        let t0 = Instant::now();
        let mut state = state_with_token(t0);
        let mut task = new_task(DownloadOptions::default());
        let mut now = t0;
        let mut starts = vec![];
        let error = loop {
            let action = task.poll(now, &mut state);
            if let Action::Exchange(_, Exchange::FlushSink) = action {
                task.on_event(now, &mut state, Event::Flushed(None));
                break finish(&mut task, &mut state, now);
            }
            let start = range_start(action);
            starts.push(start);
            let total = "1000000";
            let h = if start == 0 && starts.len() == 1 {
                head(
                    200,
                    &[
                        ("content-length", total),
                        ("content-disposition", "attachment; filename=\"a.bin\""),
                    ],
                )
            } else {
                let cr = format!("bytes {start}-999999/{total}");
                let len = (1_000_000 - start).to_string();
                head(206, &[("content-range", &cr), ("content-length", &len)])
            };
            task.on_event(now, &mut state, Event::Head(h));
            // 100 bytes now, 100 more after 11 s: under 1 KiB/s over the 10 s window.
            for _ in 0..2 {
                assert!(matches!(
                    task.poll(now, &mut state),
                    Action::Exchange(_, Exchange::Stream { .. })
                ));
                task.on_event(now, &mut state, Event::Written(100));
                now += Duration::from_secs(11);
            }
            assert!(starts.len() < 50, "never ends");
        };
        assert_eq!(starts, vec![0, 200, 400, 600, 800]);
        let Error::Stalled(stall) = &error else {
            panic!("{error:?}")
        };
        assert_eq!(stall.bytes_written, 1000);
        assert!(matches!(
            stall.kind,
            StallKind::NoProgress { attempts: 5, .. }
        ));
        let Some(Error::Stalled(slow)) = stall.last.as_deref() else {
            panic!("{stall:?}")
        };
        assert!(
            matches!(slow.kind, StallKind::SlowBody { bytes: 200, .. }),
            "{slow:?}"
        );
    }

    fn stream(task: &mut RangeDownload, state: &mut ClientState, at: Instant, n: u64) {
        let step = task.poll(at, state);
        assert!(
            matches!(step, Action::Exchange(_, Exchange::Stream { .. })),
            "{step:?}"
        );
        task.on_event(at, state, Event::Written(n));
    }

    fn attachment(len: &str) -> http::response::Parts {
        head(
            200,
            &[
                ("content-length", len),
                ("content-disposition", "attachment"),
            ],
        )
    }

    /// The rate is judged over a whole window from the head, exactly: a body under the floor
    /// (here 510 B/s against 1 KiB/s) is not cut a moment before its window is over, and is
    /// cut the moment it is (the next request asks from the byte reached).
    #[test]
    fn a_slow_body_is_cut_exactly_when_its_window_is_over() {
        let t0 = Instant::now();
        let mut state = state_with_token(t0);
        let options = DownloadOptions::default();
        let mut task = answered(options, 0, attachment("100000"), t0, &mut state);
        stream(&mut task, &mut state, t0, 2500);
        stream(
            &mut task,
            &mut state,
            t0 + Duration::from_millis(9_999),
            2500,
        );
        let window = t0 + Duration::from_secs(10);
        stream(&mut task, &mut state, window, 100);
        assert_eq!(range_start(task.poll(window, &mut state)), 5100);
        let shown = format!("{task:?}");
        assert!(
            shown.starts_with("RangeDownload") && shown.contains("written: 5100"),
            "{shown}"
        );
    }

    /// A cancel that comes after the download completed (its flush asked) changes nothing:
    /// the result stays the download's.
    #[test]
    fn a_cancel_after_completion_keeps_the_result() {
        let t0 = Instant::now();
        let mut state = state_with_token(t0);
        let mut task = answered(
            DownloadOptions::default(),
            0,
            attachment("10"),
            t0,
            &mut state,
        );
        stream(&mut task, &mut state, t0, 10);
        let step = task.poll(t0, &mut state);
        assert!(
            matches!(step, Action::Exchange(_, Exchange::FlushSink)),
            "{step:?}"
        );
        task.cancel(&mut state);
        task.on_event(t0, &mut state, Event::Flushed(None));
        let Action::Done(Ok(done)) = task.poll(t0, &mut state) else {
            panic!("the download's result");
        };
        assert_eq!((done.bytes_written, done.total), (10, 10));
    }

    /// A 200 with `Content-Length: 0` is a media of no bytes: done, nothing written, no
    /// body read.
    #[test]
    fn an_empty_media_is_done_at_its_head() {
        let t0 = Instant::now();
        let mut state = state_with_token(t0);
        let empty = head(200, &[("content-length", "0")]);
        let mut task = answered(DownloadOptions::default(), 0, empty, t0, &mut state);
        let done = completed(&mut task, &mut state, t0);
        assert_eq!((done.bytes_written, done.total), (0, 0));
    }

    /// A body of unknown length is held to the in-memory limit as it streams: up to the
    /// limit it is taken, one byte past it is refused.
    #[test]
    fn a_body_of_unknown_length_is_cut_one_byte_past_the_limit() {
        let t0 = Instant::now();
        for (bytes, ok) in [(100, true), (101, false)] {
            let mut state = state_with_token(t0);
            let options = DownloadOptions::default().max_len(100);
            let unknown = head(200, &[("content-disposition", "attachment")]);
            let mut task = answered(options, 0, unknown, t0, &mut state);
            stream(&mut task, &mut state, t0, bytes);
            if ok {
                let step = task.poll(t0, &mut state);
                assert!(matches!(step, Action::Exchange(_, Exchange::Stream { .. })));
            } else {
                let error = finish(&mut task, &mut state, t0);
                assert!(matches!(error, Error::Decode(_)), "{error:?}");
                assert!(error.to_string().contains("limit of 100 bytes"), "{error}");
            }
        }
    }

    /// A body at or above the floor is never cut, however long it takes.
    #[test]
    fn a_body_at_the_floor_is_not_a_stall() {
        let t0 = Instant::now();
        let mut state = state_with_token(t0);
        let mut task = answered(
            DownloadOptions::default(),
            0,
            head(
                200,
                &[
                    ("content-length", "100000"),
                    ("content-disposition", "attachment"),
                ],
            ),
            t0,
            &mut state,
        );
        let mut now = t0;
        for _ in 0..9 {
            assert!(matches!(
                task.poll(now, &mut state),
                Action::Exchange(_, Exchange::Stream { .. })
            ));
            now += Duration::from_secs(10);
            task.on_event(now, &mut state, Event::Written(10_240));
        }
        assert!(matches!(
            task.poll(now, &mut state),
            Action::Exchange(_, Exchange::Stream { max: 7840, .. })
        ));
    }

    /// Issue 19, item 2: a 206 without Content-Length is checked to end where its
    /// Content-Range does; a byte more is a decode error.
    #[test]
    fn an_unframed_range_that_runs_past_its_content_range_is_a_decode_error() {
        for (answer, ok) in [
            (Event::Body(bytes::Bytes::new()), true),
            (Event::Body(bytes::Bytes::from_static(b"x")), false),
            (
                Event::Local(DecodeError::new(206, "answer larger than 0 bytes", b"").into()),
                false,
            ),
        ] {
            let t0 = Instant::now();
            let mut state = state_with_token(t0);
            let mut task = new_task(DownloadOptions::default().resume_from(10));
            assert_eq!(range_start(task.poll(t0, &mut state)), 10);
            let h = head(206, &[("content-range", "bytes 10-19/30")]);
            task.on_event(t0, &mut state, Event::Head(h));
            assert!(matches!(
                task.poll(t0, &mut state),
                Action::Exchange(_, Exchange::Stream { max: 10, .. })
            ));
            task.on_event(t0, &mut state, Event::Written(10));
            assert!(matches!(
                task.poll(t0, &mut state),
                Action::Exchange(_, Exchange::ReadBody { limit: 0 })
            ));
            task.on_event(t0, &mut state, answer);
            if ok {
                assert_eq!(range_start(task.poll(t0, &mut state)), 20);
            } else {
                match finish(&mut task, &mut state, t0) {
                    Error::Decode(e) => assert!(e.reason.contains("ran past"), "{e}"),
                    other => panic!("{other:?}"),
                }
            }
        }
    }

    /// A task made with `options` whose first request (from byte `start`) `head` answered.
    fn answered(
        options: DownloadOptions,
        start: u64,
        head: http::response::Parts,
        now: Instant,
        state: &mut ClientState,
    ) -> RangeDownload {
        let mut task = new_task(options);
        assert_eq!(range_start(task.poll(now, state)), start);
        task.on_event(now, state, Event::Head(head));
        task
    }

    /// A short whole answer with no `Content-Disposition`: 10 bytes, read first (it may be
    /// an error object).
    fn probe_head() -> http::response::Parts {
        let headers = [
            ("content-type", "application/octet-stream"),
            ("content-length", "10"),
        ];
        head(200, &headers)
    }

    /// A task whose first answer is being probed.
    fn probing_task(t0: Instant, state: &mut ClientState) -> RangeDownload {
        let mut task = answered(DownloadOptions::default(), 0, probe_head(), t0, state);
        assert!(matches!(
            task.poll(t0, state),
            Action::Exchange(_, Exchange::ReadBody { .. })
        ));
        task
    }

    /// Answers a probe with `body`: the task writes it whole in one `Write` at offset 0,
    /// reported written.
    fn probe_written(
        task: &mut RangeDownload,
        state: &mut ClientState,
        now: Instant,
        body: &'static [u8],
    ) {
        task.on_event(now, state, Event::Body(bytes::Bytes::from_static(body)));
        match task.poll(now, state) {
            Action::Exchange(_, Exchange::Write { at: 0, bytes }) => assert_eq!(bytes, body),
            other => panic!("{other:?}"),
        }
        task.on_event(now, state, Event::Written(body.len() as u64));
    }

    /// A probed media body is written in one `Write` at offset 0, counted in the progress
    /// and the result, and completes the download.
    #[test]
    fn a_probed_media_body_is_written_whole_counted_and_completes_the_download() {
        let t0 = Instant::now();
        let mut state = state_with_token(t0);
        let mut task = probing_task(t0, &mut state);
        probe_written(&mut task, &mut state, t0, b"0123456789");
        let progress = Machine::progress(&task).unwrap();
        assert_eq!((progress.done, progress.total), (10, Some(10)));
        let done = completed(&mut task, &mut state, t0);
        assert_eq!((done.bytes_written, done.total), (10, 10));
    }

    /// A `Write` is one whole step: a transport that reports part of a probed body written
    /// has misused it, and the download ends with that misuse.
    #[test]
    fn a_probed_body_reported_partly_written_is_a_misuse() {
        let t0 = Instant::now();
        let mut state = state_with_token(t0);
        let mut task = probing_task(t0, &mut state);
        task.on_event(
            t0,
            &mut state,
            Event::Body(bytes::Bytes::from_static(b"0123456789")),
        );
        assert!(matches!(
            task.poll(t0, &mut state),
            Action::Exchange(_, Exchange::Write { .. })
        ));
        task.on_event(t0, &mut state, Event::Written(4));
        let error = finish(&mut task, &mut state, t0);
        assert!(
            error.to_string().contains("Written(all the bytes)"),
            "{error}"
        );
    }

    /// A probe shorter than its `Content-Length`: what arrived is written, and the rest is
    /// asked for from the byte reached.
    #[test]
    fn a_short_probe_is_written_and_the_rest_is_asked_from_the_byte_reached() {
        let t0 = Instant::now();
        let mut state = state_with_token(t0);
        let mut task = probing_task(t0, &mut state);
        probe_written(&mut task, &mut state, t0, b"0123");
        assert_eq!(range_start(task.poll(t0, &mut state)), 4);
        assert_eq!(Machine::progress(&task).unwrap().done, 4);
    }

    /// An empty probe where 10 bytes were due writes nothing: it is a body that ended early,
    /// asked for again, and the download ends with that cause once the attempts are spent.
    #[test]
    fn an_empty_probe_is_a_body_that_ended_early() {
        let t0 = Instant::now();
        let mut state = state_with_token(t0);
        let mut task = probing_task(t0, &mut state);
        let mut asked_again = 0;
        let error = loop {
            task.on_event(t0, &mut state, Event::Body(bytes::Bytes::new()));
            match task.poll(t0, &mut state) {
                send @ Action::Exchange(_, Exchange::Send { .. }) => {
                    assert_eq!(range_start(send), 0);
                    asked_again += 1;
                    let h = probe_head();
                    task.on_event(t0, &mut state, Event::Head(h));
                    assert!(matches!(
                        task.poll(t0, &mut state),
                        Action::Exchange(_, Exchange::ReadBody { .. })
                    ));
                }
                Action::Exchange(_, Exchange::FlushSink) => {
                    task.on_event(t0, &mut state, Event::Flushed(None));
                    let Action::Done(Err(error)) = task.poll(t0, &mut state) else {
                        panic!("not an error")
                    };
                    break error;
                }
                other => panic!("{other:?}"),
            }
        };
        assert!(asked_again >= 1);
        // The attempts that delivered nothing end as a stall, caused by the early end.
        let causes = crate::error::with_causes(&error);
        assert!(matches!(error, Error::Stalled(_)), "{causes}");
        assert!(causes.contains("body ended 10 bytes early"), "{causes}");
    }

    /// A 200 without `Content-Length` is read to its end: the end completes the download
    /// with every byte that came (it is not a body that ended early).
    #[test]
    fn an_answer_without_a_length_is_read_to_its_end() {
        let t0 = Instant::now();
        let mut state = state_with_token(t0);
        let mut task = answered(
            DownloadOptions::default(),
            0,
            head(
                200,
                &[
                    ("content-type", "application/octet-stream"),
                    ("content-disposition", "attachment; filename=\"a.bin\""),
                ],
            ),
            t0,
            &mut state,
        );
        for event in [Event::Written(7), Event::BodyEnd] {
            assert!(matches!(
                task.poll(t0, &mut state),
                Action::Exchange(_, Exchange::Stream { .. })
            ));
            task.on_event(t0, &mut state, event);
        }
        let done = completed(&mut task, &mut state, t0);
        assert_eq!((done.bytes_written, done.total), (7, 7));
    }

    /// A 206 with its `Content-Length` is framed: once its bytes arrived, nothing more is
    /// read from it (an unframed one is read to its end, see below).
    #[test]
    fn a_framed_range_that_arrived_whole_is_not_read_further() {
        let t0 = Instant::now();
        let mut state = state_with_token(t0);
        let mut task = answered(
            DownloadOptions::default().resume_from(10),
            10,
            head(
                206,
                &[
                    ("content-range", "bytes 10-19/20"),
                    ("content-length", "10"),
                ],
            ),
            t0,
            &mut state,
        );
        assert!(matches!(
            task.poll(t0, &mut state),
            Action::Exchange(_, Exchange::Stream { max: 10, at: 10 })
        ));
        task.on_event(t0, &mut state, Event::Written(10));
        assert!(matches!(
            task.poll(t0, &mut state),
            Action::Exchange(_, Exchange::FlushSink)
        ));
    }

    /// The download's errors leave the core with the token in state masked.
    #[test]
    fn a_download_error_quoting_the_token_is_redacted() {
        let t0 = Instant::now();
        let mut state = state_with_token(t0);
        let mut task = new_task(DownloadOptions::default());
        range_start(task.poll(t0, &mut state));
        let h = head(200, &[("content-type", "application/json")]);
        task.on_event(t0, &mut state, Event::Head(h));
        assert!(matches!(
            task.poll(t0, &mut state),
            Action::Exchange(_, Exchange::ReadBody { .. })
        ));
        let body = br#"{"errcode":40007,"errmsg":"invalid media_id, token TOKEN-in-the-state"}"#;
        task.on_event(t0, &mut state, Event::Body(bytes::Bytes::from_static(body)));
        let error = finish(&mut task, &mut state, t0);
        assert!(
            !format!("{error} {error:?}").contains("TOKEN-in-the-state"),
            "{error}"
        );
        assert!(error.to_string().contains("token ***"), "{error}");
    }
}
