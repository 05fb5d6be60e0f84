//! The call driver: one WeCom call as a state machine that a transport polls.
//!
//! A [`Call`] owns every decision of a call — which token to use, when to fetch one, whether
//! an answer calls for a retry, how long to back off — and makes none of the moves: the
//! transport sends the requests it is given, sleeps when told, and reports what came back.
//! The call reads no clock (`now` is an argument), draws no randomness (jitter comes from the
//! seed given to [`Call::new`]) and does no I/O, so every path below is tested at virtual
//! speed.
//!
//! # The run loop a transport implements
//!
//! ```text
//! let mut call = Call::new(op, base, policy, seed);
//! loop {
//!     let step = call.poll(clock.now(), &mut cache.lock());          // lock held briefly
//!     match step {
//!         Step::Send(request) => {
//!             let was_token = call.is_token_request_in_flight();
//!             let outcome = send(request);                           // no lock held
//!             let mut c = cache.lock();
//!             match outcome {
//!                 Ok(response) => call.on_response(clock.now(), &mut c, response),
//!                 Err(error)   => call.on_transport_error(clock.now(), &mut c, error),
//!             }
//!             if was_token { wake_token_waiters(); }                 // a refresh ended
//!         }
//!         Step::Sleep { until }        => sleep_until(until),
//!         Step::WaitForToken { until } => wait_for_wake_or(until),   // another call refreshes
//!         Step::Store(command)         => call.on_store(store.run(command)), // shared store
//!         Step::WakeTokenWaiters       => wake_token_waiters(),     // a store refresh ended
//!         Step::Done(result)           => return result,
//!     }
//! }
//! ```
//!
//! `Store` and `WakeTokenWaiters` come only when the cache shares its token through a store
//! ([`TokenCache::with_shared_store`]): the call that holds the process's refresh then gets
//! the token through a [`SharedTokenFetch`] — LOOKUP in the store, gettoken only when the
//! store makes this process the fleet's refresher, COMMIT (or FAIL), sleeps between LOOKUPs
//! while another process refreshes — and the refresh ends when the fetch does, with
//! `WakeTokenWaiters`. The fetch's rules (fencing, cool-down, fallback to a token of the
//! process's own when the store is down) are in [`crate::shared_token`].
//!
//! After `Send`, exactly one of [`Call::on_response`] and [`Call::on_transport_error`] must be
//! called before the next `poll`. A transport that gives up on a call (its future was
//! dropped, the user pressed Ctrl-C) calls [`Call::cancel`], which hands back the refresh if the
//! call held it; if it cannot (a dropped future that cannot lock), the refresh lease of the
//! [`TokenCache`] lets another call take over after at most the lease.
//!
//! A `Send` step carries either the gettoken request (this call won the refresh) or the
//! business request; [`Call::is_token_request_in_flight`] says which, e.g. to pick a timeout.
//!
//! # States
//!
//! ```text
//!                      poll: backoff pending ──> Step::Sleep { until }
//!                      poll: lookup = Wait   ──> Step::WaitForToken { until }
//!                        (both stay in Idle; the transport polls again later)
//!
//!   Call::new ──> ┌──────────────────────── Idle ◀─────────────────────────────┐
//!                 │ poll: lookup = Fetch          poll: lookup = Ready(tok,gen)│
//!                 ▼ Step::Send(gettoken)          Step::Send(op request)     │
//!           TokenRequest                          BusinessRequest{gen}       │
//!           │ on_response ok ──> Idle ─────────┐  │ parse ok ──> Finished(Ok)│
//!           │ failed, old token still fresh ──>┤  │ 40014/42001, 1st time:   │
//!           │   (refresh ahead failed) Idle    │  │   invalidate(gen) ──────>┤
//!           │ -1/45033 in busy budget ────────>┤  │ -1/45033 in budget:      │
//!           │ transport error in budget ──────>┤  │   backoff ──────────────>┤
//!           │   (backoff)                      │  │ transport error in budget│
//!           │ anything else ──> Finished(Err)  └──│─────────── (backoff) ───>┘
//!           │                                     │ retry due, body one-shot:
//!           │                                     │   Finished(Err(NotReplayable))
//!           │                                     │ anything else ──> Finished(Err)
//!           ▼                                     ▼
//!        Finished(result) ── poll ──> Step::Done(result) ── Returned (poll again panics)
//!
//!   With a shared store, lookup = Fetch leads to SharedToken{ticket, fetch} instead of
//!   TokenRequest: each poll hands out the fetch's next step (Store / Send(gettoken) /
//!   Sleep); its end stores the token (or fails like a gettoken) ──> WakeTokenWaiters, Idle.
//!        (Call::cancel from any unfinished state ──> Finished(Err(Cancelled)))
//! ```
//!
//! # Rules
//!
//! * **Token rejected** (40014, 42001 — [`Disposition::RefreshToken`] — and 40001 *on a
//!   business call*, SPEC §9): the token of the generation used is invalidated (a fresher one
//!   is kept), the call gets a token again — fetched, or the one another call fetched
//!   meanwhile — and retries **once**. A second rejection ends the call with that API error.
//!   40001 on the gettoken request itself is a bad secret: fatal at once. A download is one
//!   call per request ([`crate::GetMedia`] is an [`Operation`] like any other), so a token
//!   rejected on a download is refreshed by the same rule.
//! * **At most [`MAX_TOKEN_REQUESTS`] gettoken requests per call** (2: the first token and one
//!   refresh). A call that would need a third ends with the last gettoken failure (or, when
//!   every fetch succeeded, a transport error saying so) instead of fetching again: whatever
//!   the server answers, one call cannot turn into a gettoken storm (SPEC §1). The busy and
//!   transport budgets below apply within this cap.
//! * **Busy** (-1, 45033 — [`Disposition::Retry`]): at most
//!   [`RetryPolicy::max_busy_retries`] retries (so 4 attempts with the default 3), after
//!   [`RetryPolicy::backoff`]. The budget is shared with a busy gettoken.
//! * **Throttled** (45009): [`Error::RateLimited`] at once, never retried.
//! * **Transport failure**: at most [`RetryPolicy::max_transport_retries`] retries with the
//!   same backoff, even when the request may have been sent. Resending is safe for this API:
//!   an upload that did reach WeCom only leaves a duplicate temporary media (deleted after
//!   three days), and every other call is a read or creates an async job that is equally
//!   harmless twice.
//! * **Never resend a body that cannot be replayed** ([`Body::is_replayable`], a one-shot
//!   stream): when a retry or a token refresh would resend it, the call ends with
//!   [`Error::NotReplayable`] holding the cause. A token rejection still invalidates the token.
//!   This holds even for a transport error where the request was not sent: the core cannot
//!   know whether the transport had begun reading the stream.
//! * **A failed refresh ahead** (gettoken failed while the old token is still valid, within
//!   the refresh margin) costs the call nothing: it proceeds with the valid token and no retry
//!   budget is spent; the cache puts the next refresh ahead off (see
//!   [`TokenCache::fail_refresh`]).
//! * **Through a shared store**, the gettoken cap holds as well; a fetch through the store that
//!   fails (gettoken failed, the store failed with `Fallback::Fail`, other processes held the
//!   refresh too long) is handled like a failed gettoken of its kind (busy → backoff; a
//!   transport or store failure → transport retry budget; anything else ends the call), and a
//!   call gets a token through the store at most `2 × MAX_TOKEN_REQUESTS` times, so a store
//!   that hands out tokens expiring at once cannot keep a call asking.
//! * Anything else (fatal codes, undecodable answers) ends the call.

use std::fmt;
use std::time::{Duration, Instant};

use crate::body::Body;
use crate::endpoint::BaseUrl;
use crate::errcode::{Disposition, ErrCode};
use crate::error::{Error, TransportError};
use crate::operation::Operation;
use crate::shared_token::{SharedStep, SharedTokenFetch, StoreError, StoreReply};
use crate::task::{Action, Exchange, LaneId, Timeouts};
use crate::token_cache::{RefreshTicket, TokenCache, TokenLookup};

/// The most gettoken requests one call makes (see the module rules).
pub(crate) const MAX_TOKEN_REQUESTS: u32 = 2;

/// How many times a call retries, and how long it waits in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after "system busy" (-1) or "too many concurrent calls" (45033). Default 3.
    pub max_busy_retries: u32,
    /// The first backoff; the n-th retry (from 0) waits `base_backoff * 2^n`. Default 200 ms.
    pub base_backoff: Duration,
    /// The cap of the exponential part of the backoff. Default 5 s.
    pub max_backoff: Duration,
    /// Retries after a transport failure. Default 2.
    pub max_transport_retries: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_busy_retries: 3,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            max_transport_retries: 2,
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries (a token rejection is still refreshed once).
    pub fn no_retries() -> Self {
        Self {
            max_busy_retries: 0,
            max_transport_retries: 0,
            ..Self::default()
        }
    }

    /// The wait before retry number `retry` (0 for the first retry):
    /// `min(base_backoff * 2^retry, max_backoff)` plus a jitter in `[0, base_backoff)` drawn
    /// deterministically from `jitter_seed` and `retry` (splitmix64). The jitter is added
    /// after the cap, so that calls backing off at the cap still spread out.
    pub fn backoff(&self, retry: u32, jitter_seed: u64) -> Duration {
        let exponential = self
            .base_backoff
            .checked_mul(1u32.checked_shl(retry).unwrap_or(u32::MAX))
            .unwrap_or(Duration::MAX)
            .min(self.max_backoff);
        let base_nanos = self.base_backoff.as_nanos().min(u128::from(u64::MAX)) as u64;
        let jitter = if base_nanos == 0 {
            0
        } else {
            splitmix64(jitter_seed.wrapping_add(u64::from(retry))) % base_nanos
        };
        exponential.saturating_add(Duration::from_nanos(jitter))
    }
}

/// One round of splitmix64 (Steele, Lea, Flood 2014): a well-mixed 64-bit value from a seed.
pub(crate) fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What a call getting its token through the shared store waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SharedOut {
    /// Nothing: the next poll asks the fetch.
    Nothing,
    /// The reply to a store command.
    Store,
    /// The gettoken response (this process refreshes for the fleet, or for itself).
    GetToken,
    /// The end of a backoff between two LOOKUPs.
    Sleep(Instant),
}

enum State<T> {
    /// Nothing outstanding: the next poll sleeps, waits, or sends.
    Idle,
    /// The gettoken request is out; this call holds the refresh ticket.
    TokenRequest(RefreshTicket),
    /// This call holds the refresh ticket and gets the token through the shared store.
    SharedToken {
        ticket: RefreshTicket,
        fetch: Box<SharedTokenFetch>,
        out: SharedOut,
    },
    /// The business request is out, with the token of this generation.
    BusinessRequest { generation: u64 },
    /// The outcome is known; the next poll returns it.
    Finished(Result<T, Error>),
    /// The outcome was returned.
    Returned,
}

impl<T> State<T> {
    fn name(&self) -> &'static str {
        match self {
            State::Idle => "Idle",
            State::TokenRequest(_) => "TokenRequest",
            State::SharedToken { .. } => "SharedToken",
            State::BusinessRequest { .. } => "BusinessRequest",
            State::Finished(_) => "Finished",
            State::Returned => "Returned",
        }
    }
}

/// One call of operation `O`, from the first token lookup to the typed result.
///
/// See the [module documentation](self) for the run loop and the rules.
pub(crate) struct Call<O: Operation> {
    op: O,
    base: BaseUrl,
    policy: RetryPolicy,
    jitter_seed: u64,
    timeouts: Timeouts,
    state: State<O::Output>,
    not_before: Option<Instant>,
    busy_retries: u32,
    transport_retries: u32,
    refreshed: bool,
    body_replayable: bool,
    business_requests: u32,
    token_requests: u32,
    /// How many times this call got a token through the shared store.
    store_fetches: u32,
    /// The last failure of a gettoken request of this call, returned when the cap is hit.
    last_token_error: Option<Error>,
}

impl<O: Operation> fmt::Debug for Call<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("operation", &O::NAME)
            .field("state", &self.state.name())
            .field("not_before", &self.not_before)
            .field("busy_retries", &self.busy_retries)
            .field("transport_retries", &self.transport_retries)
            .field("refreshed", &self.refreshed)
            .field("business_requests", &self.business_requests)
            .field("token_requests", &self.token_requests)
            .finish()
    }
}

impl<O: Operation> Call<O> {
    /// A call of `op` against `base`; its business request uses `timeouts` (gettoken always
    /// [`Timeouts::Json`]). `jitter_seed` makes the backoff jitter of this call (give each
    /// call its own, e.g. from a counter or the transport's randomness).
    pub(crate) fn new(
        op: O,
        base: BaseUrl,
        policy: RetryPolicy,
        jitter_seed: u64,
        timeouts: Timeouts,
    ) -> Self {
        Self {
            op,
            base,
            policy,
            jitter_seed,
            timeouts,
            state: State::Idle,
            not_before: None,
            busy_retries: 0,
            transport_retries: 0,
            refreshed: false,
            body_replayable: true,
            business_requests: 0,
            token_requests: 0,
            store_fetches: 0,
            last_token_error: None,
        }
    }

    /// The operation, e.g. for a transport that streams an upload payload it holds.
    pub(crate) fn operation(&self) -> &O {
        &self.op
    }

    /// Whether the request last handed out by [`Call::poll`] is the gettoken request and its
    /// outcome is not yet reported. After reporting it, the transport wakes token waiters.
    pub(crate) fn is_token_request_in_flight(&self) -> bool {
        matches!(
            self.state,
            State::TokenRequest(_)
                | State::SharedToken {
                    out: SharedOut::GetToken,
                    ..
                }
        )
    }

    /// Whether this call holds the token refresh (its gettoken request, or its fetch through
    /// the shared store, is not over). When it stops holding it, waiting calls are woken.
    pub(crate) fn holds_refresh(&self) -> bool {
        matches!(
            self.state,
            State::TokenRequest(_) | State::SharedToken { .. }
        )
    }

    /// How many business requests this call has handed out.
    #[cfg(test)]
    pub(crate) fn business_requests(&self) -> u32 {
        self.business_requests
    }

    /// How many gettoken requests this call has handed out.
    #[cfg(test)]
    pub(crate) fn token_requests(&self) -> u32 {
        self.token_requests
    }

    /// What to do next: an exchange step on [`LaneId::MAIN`], a wait, a wake-up of the
    /// token waiters, or the result. Polled again after the result, it says so as a
    /// transport error.
    pub(crate) fn poll(&mut self, now: Instant, cache: &mut TokenCache) -> Action<O::Output> {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Idle => {}
            State::Finished(result) => {
                self.state = State::Returned;
                return Action::Done(result);
            }
            State::Returned => {
                self.state = State::Returned;
                return Action::Done(Err(Error::Transport(TransportError::maybe_sent(
                    "transport misuse: a call polled again after its result",
                ))));
            }
            State::SharedToken {
                ticket,
                fetch,
                out: SharedOut::Sleep(until),
            } if now < until => {
                self.state = State::SharedToken {
                    ticket,
                    fetch,
                    out: SharedOut::Sleep(until),
                };
                return sleep(until);
            }
            State::SharedToken {
                ticket,
                fetch,
                out: SharedOut::Nothing | SharedOut::Sleep(_),
            } => return self.poll_shared(now, cache, ticket, fetch),
            outstanding @ (State::TokenRequest(_)
            | State::BusinessRequest { .. }
            | State::SharedToken { .. }) => {
                // The transport broke the protocol: it polled without reporting the outcome.
                self.state = outstanding;
                self.abandon(cache);
                self.state = State::Returned;
                return Action::Done(Err(Error::Transport(TransportError::maybe_sent(
                    "the transport polled again without reporting the request's outcome",
                ))));
            }
        }
        if let Some(until) = self.not_before {
            if now < until {
                return sleep(until);
            }
            self.not_before = None;
        }
        let lookup = match cache.lookup(now) {
            TokenLookup::Fetch(ticket) if self.token_requests >= MAX_TOKEN_REQUESTS => {
                // Over the cap: hand the refresh back. A token still valid (a refresh ahead
                // was due) serves; otherwise the call ends.
                cache.fail_refresh(ticket);
                match cache.lookup(now) {
                    TokenLookup::Fetch(ticket) => {
                        cache.fail_refresh(ticket);
                        self.state = State::Returned;
                        return Action::Done(Err(self.no_token_error()));
                    }
                    other => other,
                }
            }
            other => other,
        };
        match lookup {
            TokenLookup::Ready { token, generation } => {
                let request = self.op.build(&self.base, &token);
                self.body_replayable = request.body().is_replayable();
                self.business_requests += 1;
                self.state = State::BusinessRequest { generation };
                send(request, self.timeouts)
            }
            TokenLookup::Fetch(ticket) => {
                let seed = self.jitter_seed ^ u64::from(self.store_fetches + 1).rotate_left(40);
                if let Some(fetch) = cache.shared_fetch(seed) {
                    // A store that keeps handing out tokens that expire at once must not
                    // keep a call asking forever.
                    if self.store_fetches >= 2 * MAX_TOKEN_REQUESTS {
                        cache.fail_refresh(ticket);
                        self.state = State::Returned;
                        return Action::Done(Err(self.no_token_error()));
                    }
                    self.store_fetches += 1;
                    return self.poll_shared(now, cache, ticket, Box::new(fetch));
                }
                let request = cache.refresh_request(&self.base);
                self.token_requests += 1;
                self.state = State::TokenRequest(ticket);
                send(request, Timeouts::Json)
            }
            TokenLookup::Wait { until } => Action::Wait {
                until: Some(until),
                wakeable: true,
            },
        }
    }

    /// One step of getting the token through the shared store, as the holder of `ticket`.
    fn poll_shared(
        &mut self,
        now: Instant,
        cache: &mut TokenCache,
        ticket: RefreshTicket,
        mut fetch: Box<SharedTokenFetch>,
    ) -> Action<O::Output> {
        let out = match fetch.poll(cache.shared_state(), now) {
            SharedStep::Store(command) => {
                self.state = State::SharedToken {
                    ticket,
                    fetch,
                    out: SharedOut::Store,
                };
                return Action::Exchange(LaneId::MAIN, Exchange::Store(command));
            }
            SharedStep::FetchToken { .. } if self.token_requests >= MAX_TOKEN_REQUESTS => {
                fetch.on_fetched(Err(self.no_token_error()));
                return self.poll_shared(now, cache, ticket, fetch);
            }
            SharedStep::FetchToken { .. } => SharedOut::GetToken,
            SharedStep::SleepFor(wait) => SharedOut::Sleep(now.checked_add(wait).unwrap_or(now)),
            SharedStep::Done(Ok(token)) => {
                cache.complete_shared(ticket, now, token);
                return Action::WakeOthers;
            }
            SharedStep::Done(Err(error)) => {
                cache.fail_refresh(ticket);
                if !cache.has_fresh_token(now) {
                    match Error::from(error) {
                        Error::Transport(error) => {
                            self.last_token_error = Some(Error::Transport(error.clone()));
                            self.transport_failed(now, Error::Transport(error), true);
                        }
                        error => self.token_failed(now, error),
                    }
                }
                return Action::WakeOthers;
            }
        };
        self.state = State::SharedToken { ticket, fetch, out };
        match out {
            SharedOut::Sleep(until) => sleep(until),
            _ => {
                self.token_requests += 1;
                send(cache.refresh_request(&self.base), Timeouts::Json)
            }
        }
    }

    /// The error of a call that would need more than [`MAX_TOKEN_REQUESTS`] gettokens.
    fn no_token_error(&mut self) -> Error {
        self.last_token_error.take().unwrap_or_else(|| {
            Error::Transport(TransportError::not_sent(format!(
                "no usable access token after {MAX_TOKEN_REQUESTS} gettoken requests"
            )))
        })
    }

    /// Reports the outcome of the command of the last [`Step::Store`]: the store's reply,
    /// or why it could not be had (unreachable, timed out, nonsense).
    ///
    /// A call that is not waiting for the store ignores it.
    pub(crate) fn on_store(&mut self, outcome: Result<StoreReply, StoreError>) {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::SharedToken {
                ticket,
                mut fetch,
                out: SharedOut::Store,
            } => {
                fetch.on_store(outcome);
                self.state = State::SharedToken {
                    ticket,
                    fetch,
                    out: SharedOut::Nothing,
                };
            }
            other => self.state = other,
        }
    }

    /// Reports the response to the request of the last [`Step::Send`].
    ///
    /// A call that is not waiting for a response ignores it.
    pub(crate) fn on_response<B: AsRef<[u8]>>(
        &mut self,
        now: Instant,
        cache: &mut TokenCache,
        response: http::Response<B>,
    ) {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::TokenRequest(ticket) => match cache.complete_refresh(ticket, now, response) {
                Ok(_) => {}
                // A refresh ahead failed: the still-valid token serves this call.
                Err(_) if cache.has_fresh_token(now) => {}
                Err(error) => self.token_failed(now, error),
            },
            State::BusinessRequest { generation } => match self.op.parse(response) {
                Ok(output) => self.finish(Ok(output)),
                Err(error) => self.business_failed(now, cache, generation, error),
            },
            State::SharedToken {
                ticket,
                mut fetch,
                out: SharedOut::GetToken,
            } => {
                fetch.on_fetched(cache.credentials().parse(response));
                self.state = State::SharedToken {
                    ticket,
                    fetch,
                    out: SharedOut::Nothing,
                };
            }
            other => self.state = other,
        }
    }

    /// Reports that the request of the last [`Step::Send`] failed in the network.
    ///
    /// A call that is not waiting for a response ignores it.
    pub(crate) fn on_transport_error(
        &mut self,
        now: Instant,
        cache: &mut TokenCache,
        error: TransportError,
    ) {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::TokenRequest(ticket) => {
                cache.fail_refresh(ticket);
                if !cache.has_fresh_token(now) {
                    self.last_token_error = Some(Error::Transport(error.clone()));
                    self.transport_failed(now, Error::Transport(error), true);
                }
            }
            State::BusinessRequest { .. } => {
                let replayable = self.body_replayable;
                self.transport_failed(now, Error::Transport(error), replayable);
            }
            State::SharedToken {
                ticket,
                mut fetch,
                out: SharedOut::GetToken,
            } => {
                fetch.on_fetched(Err(Error::Transport(error)));
                self.state = State::SharedToken {
                    ticket,
                    fetch,
                    out: SharedOut::Nothing,
                };
            }
            other => self.state = other,
        }
    }

    /// Gives the call up: hands back the token refresh if this call holds it (so waiting calls
    /// can fetch at once) and makes the next poll return [`Error::Cancelled`]. Does nothing to
    /// a call whose outcome is already known.
    pub(crate) fn cancel(&mut self, cache: &mut TokenCache) {
        match self.state {
            State::Finished(_) | State::Returned => {}
            _ => {
                self.abandon(cache);
                self.state = State::Finished(Err(self.cancelled()));
            }
        }
    }

    /// [`Error::Cancelled`] for this call: the operation, and for an upload the payload
    /// bytes its current attempt sent.
    pub(crate) fn cancelled(&self) -> Error {
        let progress = self.op.progress();
        Error::Cancelled {
            operation: O::KIND,
            bytes: progress.map_or(0, |p| p.done),
            total: progress.and_then(|p| p.total),
        }
    }

    fn abandon(&mut self, cache: &mut TokenCache) {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::TokenRequest(ticket) | State::SharedToken { ticket, .. } => {
                cache.fail_refresh(ticket);
            }
            _ => {}
        }
    }

    fn finish(&mut self, result: Result<O::Output, Error>) {
        self.state = State::Finished(result);
    }

    fn retry_after(&mut self, now: Instant, retry: u32) {
        let salt = u64::from(self.busy_retries + self.transport_retries) << 32;
        let delay = self.policy.backoff(retry, self.jitter_seed ^ salt);
        self.not_before = Some(now.checked_add(delay).unwrap_or(now));
        self.state = State::Idle;
    }

    fn token_failed(&mut self, now: Instant, error: Error) {
        let busy = disposition(&error) == Some(Disposition::Retry);
        if busy && self.busy_retries < self.policy.max_busy_retries {
            let retry = self.busy_retries;
            self.busy_retries += 1;
            self.retry_after(now, retry);
            self.last_token_error = Some(error);
        } else {
            self.finish(Err(error));
        }
    }

    fn business_failed(
        &mut self,
        now: Instant,
        cache: &mut TokenCache,
        generation: u64,
        error: Error,
    ) {
        match business_disposition(&error) {
            Some(Disposition::RefreshToken) => {
                cache.invalidate(generation);
                if self.refreshed {
                    self.finish(Err(error));
                } else if !self.body_replayable {
                    self.finish(Err(Error::NotReplayable(Box::new(error))));
                } else {
                    self.refreshed = true;
                    self.state = State::Idle;
                }
            }
            Some(Disposition::Retry) => {
                if self.busy_retries >= self.policy.max_busy_retries {
                    self.finish(Err(error));
                } else if !self.body_replayable {
                    self.finish(Err(Error::NotReplayable(Box::new(error))));
                } else {
                    let retry = self.busy_retries;
                    self.busy_retries += 1;
                    self.retry_after(now, retry);
                }
            }
            _ => self.finish(Err(error)),
        }
    }

    fn transport_failed(&mut self, now: Instant, error: Error, replayable: bool) {
        if self.transport_retries >= self.policy.max_transport_retries {
            self.finish(Err(error));
        } else if !replayable {
            self.finish(Err(Error::NotReplayable(Box::new(error))));
        } else {
            let retry = self.transport_retries;
            self.transport_retries += 1;
            self.retry_after(now, retry);
        }
    }
}

/// The exchange step that sends `request` on the call's lane.
fn send<T>(request: http::Request<Body>, timeouts: Timeouts) -> Action<T> {
    Action::Exchange(LaneId::MAIN, Exchange::Send { request, timeouts })
}

/// A backoff: poll again at `until`, no wake-up ends it early.
fn sleep<T>(until: Instant) -> Action<T> {
    Action::Wait {
        until: Some(until),
        wakeable: false,
    }
}

fn disposition(error: &Error) -> Option<Disposition> {
    error.errcode().map(ErrCode::disposition)
}

/// The disposition of an error answering a business request: 40001 there means the token was
/// not accepted ("invalid credential"), so it is refreshed once like 40014 (SPEC §9).
fn business_disposition(error: &Error) -> Option<Disposition> {
    match error.errcode() {
        Some(ErrCode::InvalidCredential) => Some(Disposition::RefreshToken),
        _ => disposition(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The jitter is splitmix64 as published (its first outputs from seed 0), so backoffs
    /// spread the same way in every process of a fleet.
    #[test]
    fn splitmix64_matches_the_reference_outputs() {
        assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(0x9E37_79B9_7F4A_7C15), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(splitmix64(1_234_567), 0x599E_D017_FB08_FC85);
    }

    #[test]
    fn backoff_grows_is_capped_and_jitter_stays_below_base() {
        let p = RetryPolicy::default();
        let ms = Duration::from_millis;
        for seed in [0, 1, 42, u64::MAX] {
            for (retry, exp) in [
                (0, 200),
                (1, 400),
                (2, 800),
                (3, 1600),
                (4, 3200),
                (5, 5000),
            ] {
                let d = p.backoff(retry, seed);
                assert!(d >= ms(exp) && d < ms(exp + 200), "{retry} {seed} {d:?}");
            }
            assert!(p.backoff(200, seed) < ms(5200));
        }
        assert_eq!(p.backoff(1, 7), p.backoff(1, 7));
        assert_ne!(p.backoff(1, 7), p.backoff(1, 8));
        let flat = RetryPolicy {
            base_backoff: Duration::ZERO,
            ..p
        };
        assert_eq!(flat.backoff(3, 9), Duration::ZERO);
    }
}
