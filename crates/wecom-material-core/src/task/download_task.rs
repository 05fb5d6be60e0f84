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

use std::time::Instant;

use crate::client_settings::ClientSettings;
use crate::download::content_range::ContentRange;
use crate::download::plan::{Download, Expect};
use crate::driver::RetryPolicy;
use crate::endpoint::BaseUrl;
use crate::error::{DecodeError, Error};
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
        Self::new(
            media_id,
            options,
            settings.chunk_size,
            base,
            policy,
            jitter_seed,
        )
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
        Ok(task)
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
        self.phase = Phase::Finishing {
            result,
            flush: Flush::Due,
        };
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
        // A 206 with its Content-Range is a range of the media, never an error object; a
        // short whole answer without Content-Disposition is read first and classified.
        let whole = info.content_range.is_none() && info.content_length.is_some();
        let probe = GetMedia::probe_limit(&head).filter(|_| whole);
        self.phase = match (expected, probe) {
            (0, _) => Phase::Calling(None),
            (_, Some(_)) if !until_end => {
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
            Ok(MediaHead::Media(_)) if bytes.len() as u64 == expected => {
                self.phase = Phase::Writing { bytes, left: 0 };
            }
            Ok(MediaHead::Media(info)) if bytes.len() as u64 > expected => {
                let message = format!("{} bytes arrived where {expected} were due", bytes.len());
                self.finish(
                    state,
                    Err(DecodeError::new(info.status, message, b"").into()),
                );
            }
            // Short: what arrived is written, the rest is asked for from the byte reached.
            Ok(MediaHead::Media(_)) if !bytes.is_empty() => {
                let left = expected - bytes.len() as u64;
                self.phase = Phase::Writing { bytes, left };
            }
            Ok(MediaHead::Media(_)) => self.body_ended_early(state, expected),
            Err(error) => self.finish(state, Err(error)),
        }
    }

    fn on_stream_event(
        &mut self,
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
                self.phase = match left - n {
                    _ if until_end => Phase::Streaming { left, until_end },
                    0 => Phase::Calling(None),
                    left => Phase::Streaming { left, until_end },
                };
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
        match self.plan.on_interrupted(cause) {
            Ok(()) => self.phase = Phase::Calling(None),
            Err(error) => self.finish(state, Err(error)),
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
                    let result =
                        std::mem::replace(result, Err(Error::Cancelled { bytes_written: 0 }));
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
                self.on_stream_event(state, left, until_end, event)
            }
            probe @ Phase::Probing { .. } => self.on_probe(now, state, probe, event),
            Phase::Writing { bytes, left } => match event {
                Event::Written(n) if n == bytes.len() as u64 => {
                    // Counted like streamed bytes; the probe read the whole body, so any
                    // `left` is missing: the next request resumes from the byte reached.
                    self.phase = Phase::Streaming {
                        left: n + left,
                        until_end: false,
                    };
                    self.on_stream_event(state, n + left, false, Event::Written(n));
                    if left > 0 && matches!(self.phase, Phase::Streaming { .. }) {
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
            result: Err(Error::Cancelled { bytes_written }),
            ..
        } = &mut self.phase
        {
            *bytes_written = bytes_written.saturating_add(n);
        }
    }

    fn cancel(&mut self, state: &mut ClientState) {
        if let Phase::Probing { call, .. } = &mut self.phase {
            call.cancel(state);
        }
        let running = matches!(self.phase, Phase::Calling(_) | Phase::Streaming { .. });
        if running || matches!(self.phase, Phase::Probing { .. } | Phase::Writing { .. }) {
            let bytes_written = self.written;
            self.finish(state, Err(Error::Cancelled { bytes_written }));
        }
    }
}

#[cfg(test)]
mod tests {
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
}
