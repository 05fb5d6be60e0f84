//! One access token for a whole fleet of processes: the decisions of a shared token store,
//! as a state machine that a transport drives (issue 11).
//!
//! Many processes using one WeCom app should make **one** `gettoken` call per token window
//! between them, not one each. They share the token through a store (the
//! `wecom-material-redis` crate runs it on Redis with four atomic scripts); this module decides
//! what a process does with the store's answers. It does no I/O, reads no clock and draws no
//! randomness (backoff jitter comes from the seed given to `SharedTokenFetch::new`).
//!
//! A client gets a store with `ClientBuilder::token_store`; then the call that holds the
//! process's token refresh (the call driver) runs one fetch: it hands the fetch's store
//! steps to the transport as [`StoreCommand`]s (`Exchange::Store`), which the transport runs
//! with its [`TokenStore`] / [`AsyncTokenStore`], sends the gettoken request the fetch asks
//! for like any request, sleeps between LOOKUPs, and stores the token handed out in the
//! process's token cache — the first level, so the process's threads
//! ask the store once between them.
//!
//! # The store's four operations
//!
//! All times are the store's own (Redis `TIME`), and every reply counts in "milliseconds from
//! now", so the hosts' clocks never matter.
//!
//! * **LOOKUP** → [`LookupReply`]: a valid token ([`LookupReply::Ready`]); or "you refresh",
//!   with a *fencing number* and a lease ([`LookupReply::Refresh`], also handed out ahead of
//!   expiry while the old token still serves, see `current`); or "another process refreshes (or
//!   a failed refresh cools down), look again within N ms" ([`LookupReply::Wait`]).
//! * **COMMIT**(fence, grant) → [`CommitReply`]: releases the lock; stores the token only if
//!   `fence` is still the newest fencing number handed out and the valid stored token, if
//!   any, is another one that does not outlive it. (WeCom answers the same token until it
//!   expires: a refresh ahead that gets the stored token back keeps it and stops refreshing
//!   it ahead.)
//! * **INVALIDATE**(generation): deletes the stored token only if it is still of that
//!   generation (WeCom rejected it). A slow process holding an old token never evicts a newer
//!   one.
//! * **FAIL**(fence): the refresher's `gettoken` failed: its lock becomes a short cool-down, so
//!   the waiters do not all hammer a failing `gettoken` (one attempt per cool-down per fleet).
//!
//! # The loop that drives a fetch (the call driver's, for a client)
//!
//! ```text
//! // Only the holder of the process's refresh runs a fetch; the state is the cache's.
//! let mut fetch = SharedTokenFetch::new(policy, seed);
//! //  (after WeCom rejected a token: SharedTokenFetch::replacing(generation, ..).of_token(token))
//! loop {
//!     match fetch.poll(cache.shared_state(), clock.now()) {
//!         SharedStep::Store(command) => fetch.on_store(store.run(command)), // LOOKUP, COMMIT,
//!                                               // INVALIDATE, FAIL, or Warn (once an outage)
//!         SharedStep::FetchToken { .. } => fetch.on_fetched(gettoken()),
//!         SharedStep::SleepFor(d) => sleep(d),
//!         SharedStep::Done(result) => return result,
//!     }
//! }
//! ```
//!
//! In a client this loop is the call task's: a store command becomes its
//! `Exchange::Store`, the gettoken an `Exchange::Send`, the sleep an `Action::Wait`.
//!
//! After a store step, exactly one report of its outcome comes before the next `poll`:
//! `SharedTokenFetch::on_store` (or the step's own `on_lookup`, `on_commit`,
//! `on_invalidated`, `on_failed`, and `SharedTokenFetch::on_store_error` for a failure);
//! after `FetchToken`, `SharedTokenFetch::on_fetched`. A `Warn`'s reply needs none. The
//! `SharedTokenState` holds the process's own fallback token, the warn-once flag and the
//! time until which a failed store is not asked again; a client keeps it in its
//! token cache, behind its lock, whose single-flight refresh makes the
//! process's threads run one fetch (and so one local `gettoken`) between them.
//!
//! # States
//!
//! ```text
//!                     ┌──────────────────── Start ──────────────────────┐
//!   replacing(Shared(g))       new / replacing(Local(g))   store left alone after a
//!                     ▼            │ (own token g dropped)   failure (fallback Local)
//!              Invalidate{g}       │                                     ▼
//!                     │ on_invalidated                                 Local
//!                     └──────────> Lookup ◀───────────────────────┐
//!                                    │ on_lookup                  │
//!          Done(Ok Shared) ◀─ Ready ─┼─ Wait ──> SleepFor(backoff)┘
//!                                    │          (max_wait spent: Done(Err(WaitedTooLong)))
//!                                    ▼
//!                       Refresh{fence}: FetchToken{Some(fence)}
//!               on_fetched Ok ┌──────┴───────┐ on_fetched Err
//!                             ▼              ▼
//!                          Commit        Fail{fence} ──> Done(Err(Fetch))
//!     Stored ──> Done(Ok Refreshed)      (refreshing ahead: Done(Ok the old token))
//!     Superseded ──> Done(Ok the stored token, or this one as Unstored)
//!
//!   Local: own token valid ──> Done(Ok Local)
//!          else FetchToken{None} ── Ok ──> Done(Ok Local) (kept in SharedTokenState)
//!                                └─ Err ─> Done(Err(Fetch))
//!   store error on Lookup / Invalidate: fallback Local ──> Warn (once an outage) ──> Local
//!                                       fallback Fail  ──> Done(Err(Store))
//!   store error on Commit: Done(Ok this token, Unstored); on Fail: Done(what Fail gives)
//! ```
//!
//! A store error after this process fetched a token (COMMIT failed) still returns that token:
//! it is valid, it just is not shared.

use std::fmt;
use std::time::{Duration, Instant};

use crate::error::{Error, TransportError};
use crate::ops::gettoken::TokenGrant;
use crate::secret::AccessToken;

/// Default refresh lease: how long the fleet waits for one refresher before another process
/// may take over.
pub const DEFAULT_SHARED_LEASE: Duration = Duration::from_secs(30);

/// Default cool-down after a failed `gettoken`, during which nobody else tries.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(5);

/// What a process does when the store cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fallback {
    /// Warn once and use a token of the process's own (at most one `gettoken` per process
    /// per token window while the store is down). The default: a store outage never becomes
    /// an outage of uploads.
    #[default]
    Local,
    /// Fail the call with `SharedTokenError::Store`.
    Fail,
}

/// The timings and the fallback of a shared token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedTokenPolicy {
    /// How long a refresher holds the lock (default 30 s). Sent to the store with LOOKUP.
    pub lease: Duration,
    /// How long a failed refresh blocks further attempts (default 5 s).
    pub cooldown: Duration,
    /// How long before expiry the fleet refreshes ahead (default 5 min, at most half a
    /// token's lifetime). Sent to the store with COMMIT.
    pub refresh_margin: Duration,
    /// The first wait between two LOOKUPs of a waiter (default 20 ms); it doubles up to
    /// `max_backoff`, with jitter, and never exceeds the lock's remaining lease.
    pub first_backoff: Duration,
    /// The longest wait between two LOOKUPs (default 1 s).
    pub max_backoff: Duration,
    /// How long one fetch waits for other processes in all before it gives up with
    /// `SharedTokenError::WaitedTooLong` (default: two leases and a cool-down, 65 s).
    pub max_wait: Duration,
    /// After a store failure, how long the process uses its own token without asking the
    /// store again (default 5 s). Only with [`Fallback::Local`].
    pub store_retry: Duration,
    /// What to do when the store cannot be reached.
    pub fallback: Fallback,
}

impl SharedTokenPolicy {
    /// The defaults, as a constant (for `..SharedTokenPolicy::DEFAULT` in a `const`).
    pub const DEFAULT: SharedTokenPolicy = SharedTokenPolicy {
        lease: DEFAULT_SHARED_LEASE,
        cooldown: DEFAULT_COOLDOWN,
        refresh_margin: crate::token_cache::DEFAULT_REFRESH_MARGIN,
        first_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_secs(1),
        max_wait: Duration::from_secs(
            DEFAULT_SHARED_LEASE.as_secs() * 2 + DEFAULT_COOLDOWN.as_secs(),
        ),
        store_retry: Duration::from_secs(5),
        fallback: Fallback::Local,
    };
}

impl Default for SharedTokenPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Which token a caller holds, to report it when WeCom rejects it
/// ([`SharedTokenFetch::replacing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Generation {
    /// A token from the shared store: its generation there (the fencing number that stored it).
    Shared(u64),
    /// The process's own fallback token.
    Local(u64),
}

/// Where a token handed out came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum TokenOrigin {
    /// Read from the store (another process, or an earlier call, fetched it).
    Shared,
    /// Fetched by this call as the fleet's refresher, and stored for the fleet.
    Refreshed,
    /// Fetched by this call but not stored: fenced (its lease was taken over), superseded,
    /// or the store failed at COMMIT. Valid, but not shared.
    Unstored,
    /// The process's own fallback token (the store was unreachable).
    Local,
}

/// A token handed out by a [`SharedTokenFetch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SharedToken {
    /// The access token.
    pub token: AccessToken,
    /// Its generation: pass it to [`SharedTokenFetch::replacing`] if WeCom rejects it.
    pub generation: Generation,
    /// Where it came from.
    pub origin: TokenOrigin,
    /// How long it remains valid from the moment it was handed out (by the store's clock
    /// for a stored token).
    pub expires_in: Duration,
}

/// A token as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGrant {
    /// The token.
    pub token: AccessToken,
    /// Its generation in the store.
    pub generation: u64,
    /// How long it remains valid, by the store's clock.
    pub expires_in: Duration,
}

/// The store's answer to LOOKUP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupReply {
    /// A valid token, before its refresh-ahead point (or being refreshed by another process).
    Ready(StoredGrant),
    /// This process is the refresher: fetch a token, then COMMIT it with `fence` (or FAIL).
    Refresh {
        /// The fencing number: only the newest one may COMMIT.
        fence: u64,
        /// How long this process holds the lock.
        lease: Duration,
        /// The still-valid token being refreshed ahead of its expiry, if any: served if the
        /// refresh fails.
        current: Option<StoredGrant>,
    },
    /// No valid token, and another process holds the lock: look again within `retry_in`.
    Wait {
        /// The lock's remaining lease (or cool-down).
        retry_in: Duration,
        /// The lock is a cool-down after a failed refresh, not a refresh in flight.
        cooling_down: bool,
    },
}

/// The store's answer to COMMIT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitReply {
    /// The token is stored under this generation.
    Stored {
        /// Its generation.
        generation: u64,
    },
    /// Not stored: a newer fencing number was handed out (this refresher's lease ended and
    /// another process took over), or the stored token lives longer.
    Superseded {
        /// The token the store holds, if a valid one.
        current: Option<StoredGrant>,
    },
}

/// The store could not be reached or answered nonsense. The message never holds a password
/// or a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError {
    message: String,
}

impl StoreError {
    /// A store failure described by `message` (which must hold no secret).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// What failed.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "token store: {}", self.message)
    }
}

impl std::error::Error for StoreError {}

/// One operation on the shared token store, as a client's task hands it to its transport
/// ([`Exchange::Store`](crate::task::Exchange::Store)); the transport runs it with its
/// [`TokenStore`] or [`AsyncTokenStore`] and reports the [`StoreReply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreCommand {
    /// LOOKUP, taking the refresh lock for `lease` if this process is to refresh.
    Lookup {
        /// How long this process may hold the refresh lock.
        lease: Duration,
    },
    /// COMMIT the token fetched under `fence`; the fleet refreshes it `refresh_margin`
    /// before it expires.
    Commit {
        /// The fencing number from LOOKUP.
        fence: u64,
        /// The token fetched.
        grant: TokenGrant,
        /// How long before expiry the fleet refreshes ahead.
        refresh_margin: Duration,
    },
    /// INVALIDATE the token of `generation` (WeCom rejected it), if it is still the one stored
    /// — and, when `token` is given, only if the stored token is that one (a store that lost
    /// its data counts generations from 1 again: the generation alone could name another
    /// token).
    Invalidate {
        /// The generation rejected.
        generation: u64,
        /// The token rejected, if known.
        token: Option<AccessToken>,
    },
    /// FAIL the refresh of `fence`: its lock becomes a cool-down of `cooldown`.
    Fail {
        /// The fencing number whose refresh failed.
        fence: u64,
        /// How long nobody else tries.
        cooldown: Duration,
    },
    /// The store failed and this process goes on with a token of its own: tell the user,
    /// once per outage, naming the store (never its password). Answered with
    /// [`StoreReply::Warned`].
    Warn(StoreError),
}

/// The store's answer to a [`StoreCommand`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreReply {
    /// LOOKUP's answer.
    Lookup(LookupReply),
    /// COMMIT's answer.
    Commit(CommitReply),
    /// INVALIDATE ran (whether or not it deleted anything).
    Invalidated,
    /// FAIL ran.
    Failed,
    /// The warning was given.
    Warned,
}

/// A shared token store a blocking transport drives: it runs one [`StoreCommand`] at a time
/// (each one short, atomic operation) and never blocks for longer than its own timeout.
///
/// `wecom-material-redis` implements it on Redis. The store of one app: its keys are part
/// of it.
pub trait TokenStore: Send + Sync {
    /// Runs `command`. [`StoreCommand::Warn`] is answered by telling the user (a log line)
    /// and [`StoreReply::Warned`].
    fn run(&self, command: StoreCommand) -> Result<StoreReply, StoreError>;
}

/// What an [`AsyncTokenStore`] returns: the future of one command's reply.
pub type StoreFuture<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<StoreReply, StoreError>> + Send + 'a>,
>;

/// A shared token store an async transport drives (see [`TokenStore`]).
pub trait AsyncTokenStore: Send + Sync {
    /// Runs `command` (see [`TokenStore::run`]).
    fn run(&self, command: StoreCommand) -> StoreFuture<'_>;
}

/// Why a [`SharedTokenFetch`] produced no token.
#[derive(Debug)]
pub(crate) enum SharedTokenError {
    /// This process's `gettoken` failed (as the fleet's refresher, or for its own token).
    Fetch(Error),
    /// The store failed and the policy is [`Fallback::Fail`].
    Store(StoreError),
    /// Other processes held the refresh (or its cool-down) for longer than
    /// [`SharedTokenPolicy::max_wait`].
    WaitedTooLong {
        /// How long this fetch waited.
        waited: Duration,
    },
}

impl fmt::Display for SharedTokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SharedTokenError::Fetch(e) => write!(f, "{e}"),
            SharedTokenError::Store(e) => write!(f, "{e}"),
            SharedTokenError::WaitedTooLong { waited } => write!(
                f,
                "token store: waited {} ms for another process to refresh the token",
                waited.as_millis()
            ),
        }
    }
}

impl std::error::Error for SharedTokenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SharedTokenError::Fetch(e) => Some(e),
            SharedTokenError::Store(e) => Some(e),
            SharedTokenError::WaitedTooLong { .. } => None,
        }
    }
}

impl From<SharedTokenError> for Error {
    /// A `gettoken` failure stays itself; a store failure or a wait that ran out is a
    /// transport failure before the business request was sent.
    fn from(e: SharedTokenError) -> Error {
        match e {
            SharedTokenError::Fetch(e) => e,
            other => Error::Transport(TransportError::not_sent(other.to_string())),
        }
    }
}

/// What the holder of a fetch does next (see [`SharedTokenFetch::poll`]).
#[derive(Debug)]
pub(crate) enum SharedStep {
    /// Run this command on the store and report its outcome with
    /// `SharedTokenFetch::on_store` (LOOKUP, COMMIT, INVALIDATE, FAIL; a `Warn` is logged
    /// once per outage and needs no report).
    Store(StoreCommand),
    /// Call `gettoken`; report with `SharedTokenFetch::on_fetched`. `fence` is `Some` when
    /// this process refreshes for the fleet, `None` for the process's own fallback token.
    FetchToken {
        /// The fencing number this refresh holds, if a shared one (the fetch keeps it; the
        /// tests read it here).
        #[cfg_attr(not(test), allow(dead_code))]
        fence: Option<u64>,
    },
    /// Wait this long, then poll again.
    SleepFor(Duration),
    /// The fetch is over.
    Done(Result<SharedToken, SharedTokenError>),
}

#[derive(Debug, Clone)]
struct OwnToken {
    token: AccessToken,
    generation: u64,
    refresh_at: Instant,
    expires_at: Instant,
}

/// What a client keeps between fetches: its own fallback token, the warn-once flag, and how
/// long a failed store is left alone. Plain data; `Debug` never shows the token.
#[derive(Debug, Default)]
pub(crate) struct SharedTokenState {
    own: Option<OwnToken>,
    generations: u64,
    warned: bool,
    warnings: u64,
    store_down_until: Option<Instant>,
}

impl SharedTokenState {
    /// How many store outages were warned about (one [`StoreCommand::Warn`] each).
    #[cfg(test)]
    pub(crate) fn warnings(&self) -> u64 {
        self.warnings
    }

    /// Whether the store is being left alone after a failure, at `now`.
    pub(crate) fn is_store_down(&self, now: Instant) -> bool {
        self.store_down_until.is_some_and(|t| now < t)
    }

    fn own_token(&self, now: Instant) -> Option<SharedToken> {
        self.own
            .as_ref()
            .filter(|o| now < o.refresh_at)
            .map(|o| SharedToken {
                token: o.token.clone(),
                generation: Generation::Local(o.generation),
                origin: TokenOrigin::Local,
                expires_in: o.expires_at.saturating_duration_since(now),
            })
    }
}

#[derive(Debug)]
enum State {
    Start(Option<Generation>),
    NeedLookup,
    AwaitLookup,
    Backoff(Duration),
    NeedFetch {
        fence: u64,
        current: Option<StoredGrant>,
    },
    Fetching {
        fence: Option<u64>,
        current: Option<StoredGrant>,
    },
    StoreLocal(TokenGrant),
    NeedCommit {
        fence: u64,
        grant: TokenGrant,
    },
    AwaitCommit {
        fence: u64,
        token: AccessToken,
        expires_in: Duration,
    },
    NeedFail {
        fence: u64,
        then: Result<SharedToken, SharedTokenError>,
    },
    AwaitFail(Result<SharedToken, SharedTokenError>),
    NeedInvalidate(u64, Option<AccessToken>),
    AwaitInvalidate,
    Local,
    Finished(Result<SharedToken, SharedTokenError>),
    Returned,
}

/// Getting one token through a shared store: a state machine polled by a transport (see the
/// module docs for the loop and the states).
#[derive(Debug)]
pub(crate) struct SharedTokenFetch {
    policy: SharedTokenPolicy,
    seed: u64,
    /// The token WeCom rejected, for INVALIDATE.
    rejected_token: Option<AccessToken>,
    state: State,
    waits: u32,
    waited: Duration,
    store_ok: bool,
    store_failed: Option<StoreError>,
}

impl SharedTokenFetch {
    /// Gets a token (the stored one, or fetched through the caller if this process is the
    /// refresher). `seed` draws the backoff jitter: give each fetch a different one.
    pub(crate) fn new(policy: SharedTokenPolicy, seed: u64) -> Self {
        Self::start(policy, seed, None)
    }

    /// WeCom rejected the token of `rejected` (40014 / 42001): invalidates it — in the store
    /// only if the store still holds that generation — then gets a token as [`Self::new`].
    pub(crate) fn replacing(rejected: Generation, policy: SharedTokenPolicy, seed: u64) -> Self {
        Self::start(policy, seed, Some(rejected))
    }

    /// Names the token WeCom rejected (see [`Self::replacing`]): the store then evicts only
    /// that token, never another one that happens to carry the same generation.
    pub(crate) fn of_token(mut self, token: AccessToken) -> Self {
        self.rejected_token = Some(token);
        self
    }

    fn start(policy: SharedTokenPolicy, seed: u64, rejected: Option<Generation>) -> Self {
        Self {
            policy,
            seed,
            rejected_token: None,
            state: State::Start(rejected),
            waits: 0,
            waited: Duration::ZERO,
            store_ok: false,
            store_failed: None,
        }
    }

    /// The next thing to do. `state` is the client's `SharedTokenState`; `now` is used only
    /// for the process's own fallback token and for leaving a failed store alone. Driven out
    /// of order, it ends with a store error saying so.
    pub(crate) fn poll(&mut self, state: &mut SharedTokenState, now: Instant) -> SharedStep {
        if std::mem::take(&mut self.store_ok) {
            state.warned = false;
            state.store_down_until = None;
        }
        if let Some(error) = self.store_failed.take() {
            state.store_down_until = now.checked_add(self.policy.store_retry);
            if !state.warned {
                state.warned = true;
                state.warnings += 1;
                return SharedStep::Store(StoreCommand::Warn(error));
            }
        }
        loop {
            match std::mem::replace(&mut self.state, State::Returned) {
                State::Start(rejected) => {
                    let store_down =
                        self.policy.fallback == Fallback::Local && state.is_store_down(now);
                    self.state = match rejected {
                        Some(Generation::Local(g)) => {
                            if state.own.as_ref().is_some_and(|o| o.generation == g) {
                                state.own = None;
                            }
                            if store_down {
                                State::Local
                            } else {
                                State::NeedLookup
                            }
                        }
                        _ if store_down => State::Local,
                        Some(Generation::Shared(g)) => {
                            State::NeedInvalidate(g, self.rejected_token.take())
                        }
                        None => State::NeedLookup,
                    };
                }
                State::NeedLookup => {
                    self.state = State::AwaitLookup;
                    let lease = self.policy.lease;
                    return SharedStep::Store(StoreCommand::Lookup { lease });
                }
                State::Backoff(d) => {
                    self.state = State::NeedLookup;
                    return SharedStep::SleepFor(d);
                }
                State::NeedFetch { fence, current } => {
                    self.state = State::Fetching {
                        fence: Some(fence),
                        current,
                    };
                    return SharedStep::FetchToken { fence: Some(fence) };
                }
                State::NeedInvalidate(generation, token) => {
                    self.state = State::AwaitInvalidate;
                    return SharedStep::Store(StoreCommand::Invalidate { generation, token });
                }
                State::NeedCommit { fence, grant } => {
                    self.state = State::AwaitCommit {
                        fence,
                        token: grant.token.clone(),
                        expires_in: grant.expires_in,
                    };
                    let refresh_margin = self.policy.refresh_margin;
                    return SharedStep::Store(StoreCommand::Commit {
                        fence,
                        grant,
                        refresh_margin,
                    });
                }
                State::NeedFail { fence, then } => {
                    self.state = State::AwaitFail(then);
                    let cooldown = self.policy.cooldown;
                    return SharedStep::Store(StoreCommand::Fail { fence, cooldown });
                }
                State::Local => {
                    if let Some(own) = state.own_token(now) {
                        self.state = State::Returned;
                        return SharedStep::Done(Ok(own));
                    }
                    self.state = State::Fetching {
                        fence: None,
                        current: None,
                    };
                    return SharedStep::FetchToken { fence: None };
                }
                State::StoreLocal(grant) => {
                    state.generations += 1;
                    let lifetime = grant.expires_in;
                    let margin = self.policy.refresh_margin.min(lifetime / 2);
                    let handed_out = SharedToken {
                        token: grant.token.clone(),
                        generation: Generation::Local(state.generations),
                        origin: TokenOrigin::Local,
                        expires_in: lifetime,
                    };
                    // A lifetime past the clock's range is kept to the end of the range.
                    let at = |d: Duration| now.checked_add(d).unwrap_or(now);
                    state.own = Some(OwnToken {
                        token: grant.token,
                        generation: state.generations,
                        refresh_at: at(lifetime.saturating_sub(margin)),
                        expires_at: at(lifetime),
                    });
                    // A token of no lifetime is handed out once and not kept.
                    let token = state.own_token(now).unwrap_or_else(|| {
                        state.own = None;
                        handed_out
                    });
                    return SharedStep::Done(Ok(token));
                }
                State::Finished(result) => return SharedStep::Done(result),
                State::Returned => return SharedStep::Done(Err(misuse("polled after Done"))),
                awaiting => {
                    let what = format!("polled while {awaiting:?} is due");
                    self.state = awaiting;
                    return SharedStep::Done(Err(misuse(&what)));
                }
            }
        }
    }

    /// Reports the outcome of the [`StoreCommand`] of the last step. A reply of the wrong kind counts as a store failure.
    /// When no script's reply is due (after [`StoreCommand::Warn`]), the outcome is ignored.
    pub(crate) fn on_store(&mut self, outcome: Result<StoreReply, StoreError>) {
        let expected = match &self.state {
            State::AwaitLookup => "LOOKUP",
            State::AwaitCommit { .. } => "COMMIT",
            State::AwaitInvalidate => "INVALIDATE",
            State::AwaitFail(_) => "FAIL",
            _ => return,
        };
        match outcome {
            Ok(StoreReply::Lookup(reply)) if expected == "LOOKUP" => self.on_lookup(reply),
            Ok(StoreReply::Commit(reply)) if expected == "COMMIT" => self.on_commit(reply),
            Ok(StoreReply::Invalidated) if expected == "INVALIDATE" => self.on_invalidated(),
            Ok(StoreReply::Failed) if expected == "FAIL" => self.on_failed(),
            Ok(_) => self.on_store_error(StoreError::new(format!(
                "answered another command's reply to {expected}"
            ))),
            Err(error) => self.on_store_error(error),
        }
    }

    /// Reports LOOKUP's answer.
    pub(crate) fn on_lookup(&mut self, reply: LookupReply) {
        if !matches!(self.state, State::AwaitLookup) {
            return self.unexpected("on_lookup");
        }
        self.store_ok = true;
        self.state = match reply {
            LookupReply::Ready(grant) => State::Finished(Ok(shared(grant, TokenOrigin::Shared))),
            LookupReply::Refresh { fence, current, .. } => State::NeedFetch { fence, current },
            LookupReply::Wait { retry_in, .. } => self.backoff(retry_in),
        };
    }

    fn backoff(&mut self, retry_in: Duration) -> State {
        if self.waited >= self.policy.max_wait {
            return State::Finished(Err(SharedTokenError::WaitedTooLong {
                waited: self.waited,
            }));
        }
        let exponential = self
            .policy
            .first_backoff
            .saturating_mul(1u32.checked_shl(self.waits).unwrap_or(u32::MAX))
            .min(self.policy.max_backoff);
        // "Equal jitter": half fixed, half drawn from the seed; whole milliseconds, the
        // store's precision.
        let half_ms = u64::try_from(exponential.as_millis() / 2).unwrap_or(u64::MAX);
        let jitter_ms = if half_ms == 0 {
            0
        } else {
            crate::driver::splitmix64(self.seed.wrapping_add(u64::from(self.waits))) % half_ms
        };
        let wait = Duration::from_millis(half_ms.saturating_add(jitter_ms))
            .min(retry_in)
            .min(self.policy.max_wait - self.waited)
            .max(Duration::from_millis(1));
        self.waits = self.waits.saturating_add(1);
        self.waited += wait;
        State::Backoff(wait)
    }

    /// Reports what `gettoken` answered.
    pub(crate) fn on_fetched(&mut self, result: Result<TokenGrant, Error>) {
        let State::Fetching { fence, current } =
            std::mem::replace(&mut self.state, State::Returned)
        else {
            return self.unexpected("on_fetched");
        };
        self.state = match (fence, result) {
            (Some(fence), Ok(grant)) => State::NeedCommit { fence, grant },
            (Some(fence), Err(error)) => State::NeedFail {
                fence,
                then: match current {
                    // A failed refresh ahead costs nothing: the old token still serves.
                    Some(current) => Ok(shared(current, TokenOrigin::Shared)),
                    None => Err(SharedTokenError::Fetch(error)),
                },
            },
            (None, Ok(grant)) => State::StoreLocal(grant),
            (None, Err(error)) => State::Finished(Err(SharedTokenError::Fetch(error))),
        };
    }

    /// Reports COMMIT's answer.
    pub(crate) fn on_commit(&mut self, reply: CommitReply) {
        let State::AwaitCommit {
            fence,
            token,
            expires_in,
        } = std::mem::replace(&mut self.state, State::Returned)
        else {
            return self.unexpected("on_commit");
        };
        self.store_ok = true;
        self.state = State::Finished(Ok(match reply {
            CommitReply::Stored { generation } => SharedToken {
                token,
                generation: Generation::Shared(generation),
                origin: TokenOrigin::Refreshed,
                expires_in,
            },
            CommitReply::Superseded {
                current: Some(current),
            } => shared(current, TokenOrigin::Shared),
            CommitReply::Superseded { current: None } => unstored(token, fence, expires_in),
        }));
    }

    /// Reports that INVALIDATE ran (whether or not it deleted anything).
    pub(crate) fn on_invalidated(&mut self) {
        if !matches!(self.state, State::AwaitInvalidate) {
            return self.unexpected("on_invalidated");
        }
        self.store_ok = true;
        self.state = State::NeedLookup;
    }

    /// Reports that FAIL ran.
    pub(crate) fn on_failed(&mut self) {
        let State::AwaitFail(then) = std::mem::replace(&mut self.state, State::Returned) else {
            return self.unexpected("on_failed");
        };
        self.store_ok = true;
        self.state = State::Finished(then);
    }

    /// Reports that the store failed on the step just handed out.
    pub(crate) fn on_store_error(&mut self, error: StoreError) {
        let local = self.policy.fallback == Fallback::Local;
        self.state = match std::mem::replace(&mut self.state, State::Returned) {
            State::AwaitLookup | State::AwaitInvalidate if local => {
                self.store_failed = Some(error);
                State::Local
            }
            State::AwaitLookup | State::AwaitInvalidate => {
                State::Finished(Err(SharedTokenError::Store(error)))
            }
            // The token is fetched and valid: hand it out, unshared.
            State::AwaitCommit {
                fence,
                token,
                expires_in,
            } => {
                if local {
                    self.store_failed = Some(error);
                }
                State::Finished(Ok(unstored(token, fence, expires_in)))
            }
            // The lock's lease ends on its own.
            State::AwaitFail(then) => {
                if local {
                    self.store_failed = Some(error);
                }
                State::Finished(then)
            }
            State::Returned => State::Returned,
            other => State::Finished(Err(misuse(&format!(
                "on_store_error without a store step ({other:?})"
            )))),
        };
    }

    /// A report that answers no step: the fetch ends with a store error saying so (a
    /// driver's bug, never the store's; it must not panic a fleet).
    fn unexpected(&mut self, what: &str) {
        self.state = State::Finished(Err(misuse(&format!("{what} answered no step"))));
    }
}

/// The error of a fetch driven out of order.
fn misuse(what: &str) -> SharedTokenError {
    SharedTokenError::Store(StoreError::new(format!("token fetch misuse: {what}")))
}

fn shared(grant: StoredGrant, origin: TokenOrigin) -> SharedToken {
    SharedToken {
        token: grant.token,
        generation: Generation::Shared(grant.generation),
        origin,
        expires_in: grant.expires_in,
    }
}

fn unstored(token: AccessToken, fence: u64, expires_in: Duration) -> SharedToken {
    // Its fencing number is a generation no stored token of another fetch has, so reporting
    // it rejected can never evict another token.
    SharedToken {
        token,
        generation: Generation::Shared(fence),
        origin: TokenOrigin::Unstored,
        expires_in,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errcode::ErrCode;
    use crate::error::ApiError;

    const MS: Duration = Duration::from_millis(1);

    /// The four scripts' rules over a virtual clock (`now`, in ms), as the Redis crate's Lua
    /// implements them.
    #[derive(Default)]
    struct ScriptedStore {
        now: u64,
        token: Option<(String, u64, u64, u64)>,
        lock: Option<(u64, u64, bool)>,
        counter: u64,
        down: bool,
        calls: Vec<&'static str>,
    }

    const LEASE: u64 = 30_000;
    const COOLDOWN: u64 = 5_000;
    const MARGIN: u64 = 300_000;

    impl ScriptedStore {
        fn grant(&self, t: &(String, u64, u64, u64)) -> StoredGrant {
            StoredGrant {
                token: AccessToken::new(t.0.clone()).unwrap(),
                generation: t.1,
                expires_in: Duration::from_millis(t.2 - self.now),
            }
        }

        fn valid(&self) -> Option<(String, u64, u64, u64)> {
            self.token.clone().filter(|t| self.now < t.2)
        }

        fn live_lock(&self) -> Option<(u64, u64, bool)> {
            self.lock.filter(|l| self.now < l.1)
        }

        fn check(&mut self, what: &'static str) -> Result<(), StoreError> {
            self.calls.push(what);
            if self.down {
                Err(StoreError::new("connection refused"))
            } else {
                Ok(())
            }
        }

        fn lookup(&mut self) -> Result<LookupReply, StoreError> {
            self.check("lookup")?;
            let lock = self.live_lock();
            match self.valid() {
                Some(t) if self.now < t.3 || lock.is_some() => {
                    return Ok(LookupReply::Ready(self.grant(&t)));
                }
                None if lock.is_some() => {
                    let (_, until, cooling_down) = lock.unwrap();
                    return Ok(LookupReply::Wait {
                        retry_in: Duration::from_millis(until - self.now),
                        cooling_down,
                    });
                }
                _ => {}
            }
            self.counter += 1;
            self.lock = Some((self.counter, self.now + LEASE, false));
            Ok(LookupReply::Refresh {
                fence: self.counter,
                lease: Duration::from_millis(LEASE),
                current: self.valid().map(|t| self.grant(&t)),
            })
        }

        fn commit(&mut self, fence: u64, grant: &TokenGrant) -> Result<CommitReply, StoreError> {
            self.check("commit")?;
            let life = grant.expires_in.as_millis() as u64;
            if self.lock.is_some_and(|l| l.0 == fence && !l.2) {
                self.lock = None;
            }
            // The stored token is kept if it is this very token or outlives it; it is then
            // no longer refreshed ahead.
            let keep = self
                .valid()
                .is_some_and(|t| t.0 == grant.token.expose() || t.2 > self.now + life);
            if fence == self.counter && keep {
                let t = self.token.as_mut().unwrap();
                t.3 = t.2;
            }
            if fence != self.counter || keep {
                return Ok(CommitReply::Superseded {
                    current: self.valid().map(|t| self.grant(&t)),
                });
            }
            self.token = Some((
                grant.token.expose().to_owned(),
                fence,
                self.now + life,
                self.now + life - MARGIN.min(life / 2),
            ));
            Ok(CommitReply::Stored { generation: fence })
        }

        fn invalidate(&mut self, generation: u64) -> Result<(), StoreError> {
            self.check("invalidate")?;
            if self.token.as_ref().is_some_and(|t| t.1 == generation) {
                self.token = None;
            }
            Ok(())
        }

        fn fail(&mut self, fence: u64) -> Result<(), StoreError> {
            self.check("fail")?;
            if fence == self.counter {
                self.lock = Some((fence, self.now + COOLDOWN, true));
            }
            Ok(())
        }
    }

    fn grant(token: &str) -> TokenGrant {
        TokenGrant {
            token: AccessToken::new(token).unwrap(),
            expires_in: Duration::from_secs(7200),
        }
    }

    fn api_error(code: i64) -> Error {
        Error::Api(ApiError {
            code: ErrCode::from(code),
            errmsg: "injected".into(),
        })
    }

    /// One process: its state, a virtual clock base, and a log of what it was told to do.
    struct Process {
        state: SharedTokenState,
        t0: Instant,
        sleeps: Vec<Duration>,
        fetches: u32,
        warnings: u32,
    }

    impl Process {
        fn new() -> Self {
            Self {
                state: SharedTokenState::default(),
                t0: Instant::now(),
                sleeps: Vec::new(),
                fetches: 0,
                warnings: 0,
            }
        }

        /// Drives `fetch` to the end; `gettoken` answers FetchToken; sleeping advances the
        /// store's clock.
        fn run(
            &mut self,
            mut fetch: SharedTokenFetch,
            store: &mut ScriptedStore,
            mut gettoken: impl FnMut() -> Result<TokenGrant, Error>,
        ) -> Result<SharedToken, SharedTokenError> {
            loop {
                if let Some(done) = self.step(&mut fetch, store, &mut gettoken) {
                    return done;
                }
            }
        }

        fn step(
            &mut self,
            fetch: &mut SharedTokenFetch,
            store: &mut ScriptedStore,
            gettoken: &mut dyn FnMut() -> Result<TokenGrant, Error>,
        ) -> Option<Result<SharedToken, SharedTokenError>> {
            let now = self.t0 + Duration::from_millis(store.now);
            match fetch.poll(&mut self.state, now) {
                SharedStep::Store(StoreCommand::Lookup { .. }) => match store.lookup() {
                    Ok(r) => fetch.on_lookup(r),
                    Err(e) => fetch.on_store_error(e),
                },
                SharedStep::FetchToken { .. } => {
                    self.fetches += 1;
                    fetch.on_fetched(gettoken());
                }
                SharedStep::Store(StoreCommand::Commit { fence, grant, .. }) => {
                    match store.commit(fence, &grant) {
                        Ok(r) => fetch.on_commit(r),
                        Err(e) => fetch.on_store_error(e),
                    }
                }
                SharedStep::Store(StoreCommand::Invalidate { generation, .. }) => {
                    match store.invalidate(generation) {
                        Ok(()) => fetch.on_invalidated(),
                        Err(e) => fetch.on_store_error(e),
                    }
                }
                SharedStep::Store(StoreCommand::Fail { fence, .. }) => match store.fail(fence) {
                    Ok(()) => fetch.on_failed(),
                    Err(e) => fetch.on_store_error(e),
                },
                SharedStep::SleepFor(d) => {
                    self.sleeps.push(d);
                    store.now += d.as_millis() as u64;
                }
                SharedStep::Store(StoreCommand::Warn(e)) => {
                    assert!(e.to_string().contains("connection refused"));
                    self.warnings += 1;
                }
                SharedStep::Done(result) => return Some(result),
            }
            None
        }
    }

    fn fetch(seed: u64) -> SharedTokenFetch {
        SharedTokenFetch::new(SharedTokenPolicy::default(), seed)
    }

    fn command_name(command: &StoreCommand) -> &'static str {
        match command {
            StoreCommand::Lookup { .. } => "LOOKUP",
            StoreCommand::Commit { .. } => "COMMIT",
            StoreCommand::Invalidate { .. } => "INVALIDATE",
            StoreCommand::Fail { .. } => "FAIL",
            StoreCommand::Warn(_) => "WARN",
        }
    }

    /// The next step of `f`, past the once-per-outage warning (it needs no report).
    fn next_step(
        f: &mut SharedTokenFetch,
        state: &mut SharedTokenState,
        now: Instant,
    ) -> SharedStep {
        loop {
            match f.poll(state, now) {
                SharedStep::Store(StoreCommand::Warn(_)) => continue,
                step => return step,
            }
        }
    }

    /// Each script takes only its own reply (`on_store`, the one entry transports use); a
    /// reply of another script is a store failure, so the fallback applies (with `Local`: a
    /// gettoken of the process's own, or the token just fetched handed out unstored), and it
    /// is never handled as if that other script had run.
    #[test]
    fn each_script_takes_only_its_own_reply_and_another_is_a_store_failure() {
        let now = Instant::now();
        let policy = SharedTokenPolicy::default();
        let stored = || StoredGrant {
            token: AccessToken::new("S").unwrap(),
            generation: 7,
            expires_in: Duration::from_secs(600),
        };
        let lookup = || StoreReply::Lookup(LookupReply::Ready(stored()));
        let commit = || StoreReply::Commit(CommitReply::Stored { generation: 1 });
        let at = |mut f: SharedTokenFetch, want: &str| {
            let mut state = SharedTokenState::default();
            match next_step(&mut f, &mut state, now) {
                SharedStep::Store(c) if command_name(&c) == want => (state, f),
                other => panic!("{want}, not {other:?}"),
            }
        };
        let at_lookup = || at(SharedTokenFetch::new(policy, 1), "LOOKUP");
        let at_invalidate = || {
            let rejected = SharedTokenFetch::replacing(Generation::Shared(7), policy, 1);
            at(rejected, "INVALIDATE")
        };
        let at_commit = || {
            let (mut state, mut f) = at_lookup();
            f.on_store(Ok(StoreReply::Lookup(LookupReply::Refresh {
                fence: 5,
                lease: Duration::from_secs(30),
                current: None,
            })));
            let step = next_step(&mut f, &mut state, now);
            assert!(
                matches!(step, SharedStep::FetchToken { fence: Some(5) }),
                "{step:?}"
            );
            f.on_fetched(Ok(grant("T")));
            let step = next_step(&mut f, &mut state, now);
            assert!(
                matches!(step, SharedStep::Store(StoreCommand::Commit { .. })),
                "{step:?}"
            );
            (state, f)
        };
        let answered = |(mut state, mut f): (SharedTokenState, SharedTokenFetch), reply| {
            f.on_store(Ok(reply));
            next_step(&mut f, &mut state, now)
        };
        let token = |step: SharedStep| match step {
            SharedStep::Done(Ok(t)) => (t.token.expose().to_owned(), t.origin),
            other => panic!("a token, not {other:?}"),
        };

        // Its own reply.
        assert_eq!(
            token(answered(at_lookup(), lookup())),
            ("S".into(), TokenOrigin::Shared)
        );
        let step = answered(at_invalidate(), StoreReply::Invalidated);
        assert!(
            matches!(step, SharedStep::Store(StoreCommand::Lookup { .. })),
            "{step:?}"
        );
        let step = answered(at_commit(), commit());
        assert_eq!(token(step), ("T".into(), TokenOrigin::Refreshed));

        // Another script's reply.
        let own_gettoken = |step: SharedStep| {
            assert!(
                matches!(step, SharedStep::FetchToken { fence: None }),
                "{step:?}"
            );
        };
        for reply in [commit(), StoreReply::Invalidated, StoreReply::Failed] {
            own_gettoken(answered(at_lookup(), reply));
        }
        for reply in [lookup(), commit(), StoreReply::Failed] {
            own_gettoken(answered(at_invalidate(), reply));
        }
        for reply in [lookup(), StoreReply::Invalidated, StoreReply::Failed] {
            let (token, origin) = token(answered(at_commit(), reply));
            assert_eq!((token.as_str(), origin), ("T", TokenOrigin::Unstored));
        }
    }

    /// A report that answers no step (a transport's bug) ends the fetch with an error naming
    /// that report, whatever the fetch was waiting for.
    #[test]
    fn a_report_answering_no_step_is_a_misuse_naming_it() {
        let now = Instant::now();
        let misuse = |report: &dyn Fn(&mut SharedTokenFetch), name: &str| {
            let (mut state, mut f) = (SharedTokenState::default(), fetch(1));
            let step = f.poll(&mut state, now);
            assert!(matches!(
                step,
                SharedStep::Store(StoreCommand::Lookup { .. })
            ));
            report(&mut f);
            match f.poll(&mut state, now) {
                SharedStep::Done(Err(e)) => {
                    let text = e.to_string();
                    assert!(text.contains(&format!("{name} answered no step")), "{text}");
                }
                other => panic!("a misuse, not {other:?}"),
            }
        };
        misuse(
            &|f| f.on_commit(CommitReply::Stored { generation: 1 }),
            "on_commit",
        );
        misuse(&|f| f.on_invalidated(), "on_invalidated");
        misuse(&|f| f.on_failed(), "on_failed");
        misuse(&|f| f.on_fetched(Ok(grant("T"))), "on_fetched");
    }

    /// A fetch's failures name their cause as the error's source; waiting too long has none.
    #[test]
    fn a_shared_token_error_has_its_cause_as_its_source() {
        use std::error::Error as _;
        let store = SharedTokenError::Store(StoreError::new("connection refused"));
        let source = store.source().map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("token store: connection refused"));
        let fetch = SharedTokenError::Fetch(Error::Api(ApiError {
            code: ErrCode::InvalidCredential,
            errmsg: "invalid credential".into(),
        }));
        assert!(
            fetch
                .source()
                .is_some_and(|e| e.to_string().contains("40001"))
        );
        let waited = SharedTokenError::WaitedTooLong { waited: MS };
        assert!(waited.source().is_none());
    }

    /// While the store is down, a process's own token (of any lifetime: here 60 s, under
    /// twice the refresh margin) serves until half its lifetime, and is refreshed from that
    /// moment on; the store is asked again the moment its retry time ends.
    #[test]
    fn an_own_token_serves_until_its_refresh_time_and_the_store_is_asked_again_on_time() {
        let now = Instant::now();
        let policy = SharedTokenPolicy::default();
        assert!(policy.refresh_margin > Duration::from_secs(60));
        let mut state = SharedTokenState::default();
        let mut f = SharedTokenFetch::new(policy, 1);
        assert!(matches!(
            f.poll(&mut state, now),
            SharedStep::Store(StoreCommand::Lookup { .. })
        ));
        f.on_store(Err(StoreError::new("connection refused")));
        let step = next_step(&mut f, &mut state, now);
        assert!(
            matches!(step, SharedStep::FetchToken { fence: None }),
            "{step:?}"
        );
        f.on_fetched(Ok(TokenGrant {
            token: AccessToken::new("OWN").unwrap(),
            expires_in: Duration::from_secs(60),
        }));
        assert!(matches!(
            next_step(&mut f, &mut state, now),
            SharedStep::Done(Ok(_))
        ));

        let half = now + Duration::from_secs(30);
        assert!(state.own_token(half - MS).is_some());
        assert!(state.own_token(half).is_none());
        let retry = now + policy.store_retry;
        assert!(state.is_store_down(retry - MS));
        assert!(!state.is_store_down(retry));
    }

    /// A waiter of the fleet waits out two leases (a refresher that took the lock and one
    /// that took it over) and the cool-down of a failed refresh, then refreshes itself.
    #[test]
    fn the_default_wait_covers_two_leases_and_a_cool_down() {
        let policy = SharedTokenPolicy::default();
        assert_eq!(policy, SharedTokenPolicy::DEFAULT);
        assert_eq!(policy.max_wait, policy.lease * 2 + policy.cooldown);
    }

    #[test]
    fn cold_start_fetches_once_and_then_serves_the_stored_token() {
        let mut store = ScriptedStore::default();
        let mut a = Process::new();
        let got = a.run(fetch(1), &mut store, || Ok(grant("tokA"))).unwrap();
        assert_eq!(got.token.expose(), "tokA");
        assert_eq!(got.origin, TokenOrigin::Refreshed);
        assert_eq!(got.generation, Generation::Shared(1));
        assert_eq!(store.calls, ["lookup", "commit"]);
        assert!(store.lock.is_none(), "COMMIT releases the lock");

        let mut b = Process::new();
        let got = b
            .run(fetch(2), &mut store, || panic!("no second gettoken"))
            .unwrap();
        assert_eq!(
            (got.token.expose(), got.origin, got.generation),
            ("tokA", TokenOrigin::Shared, Generation::Shared(1))
        );
    }

    /// Polls `fetch` until it asks for gettoken (it is the refresher) and leaves it there.
    fn become_refresher(p: &mut Process, store: &mut ScriptedStore, seed: u64) -> SharedTokenFetch {
        let mut f = fetch(seed);
        let now = p.t0;
        assert!(matches!(
            f.poll(&mut p.state, now),
            SharedStep::Store(StoreCommand::Lookup { .. })
        ));
        f.on_lookup(store.lookup().unwrap());
        assert!(matches!(
            f.poll(&mut p.state, now),
            SharedStep::FetchToken { fence: Some(_) }
        ));
        f
    }

    #[test]
    fn waiters_back_off_with_jitter_never_past_the_lease() {
        let mut store = ScriptedStore::default();
        let mut a = Process::new();
        let mut refresher = become_refresher(&mut a, &mut store, 1);
        // The refresher takes 2.5 s; a waiter looks up meanwhile.
        let mut b = Process::new();
        let mut waiter = fetch(7);
        let mut gettoken = || -> Result<TokenGrant, Error> { panic!("waiter must not fetch") };
        while store.now < 2_500 {
            assert!(b.step(&mut waiter, &mut store, &mut gettoken).is_none());
        }
        refresher.on_fetched(Ok(grant("tokA")));
        let mut gettoken_a = || -> Result<TokenGrant, Error> { unreachable!() };
        let done = loop {
            if let Some(r) = a.step(&mut refresher, &mut store, &mut gettoken_a) {
                break r;
            }
        };
        assert_eq!(done.unwrap().origin, TokenOrigin::Refreshed);
        let got = b.run(waiter, &mut store, gettoken).unwrap();
        assert_eq!(got.token.expose(), "tokA");
        assert_eq!(got.origin, TokenOrigin::Shared);
        // Sleeps grow (doubling, half of each jittered) up to the 1 s cap.
        let first = SharedTokenPolicy::default().first_backoff;
        assert!(
            b.sleeps[0] >= first / 2 && b.sleeps[0] < first,
            "{:?}",
            b.sleeps
        );
        assert!(b.sleeps.iter().all(|d| *d < Duration::from_secs(1)));
        assert!(b.sleeps.last().unwrap() >= &Duration::from_millis(500));
        // Deterministic for one seed, different for another.
        let series = |seed| {
            let mut f = fetch(seed);
            let mut s = ScriptedStore {
                lock: Some((9, LEASE, false)),
                counter: 9,
                ..ScriptedStore::default()
            };
            let mut st = SharedTokenState::default();
            (0..6)
                .map(|_| {
                    assert!(matches!(
                        f.poll(&mut st, Instant::now()),
                        SharedStep::Store(StoreCommand::Lookup { .. })
                    ));
                    f.on_lookup(s.lookup().unwrap());
                    match f.poll(&mut st, Instant::now()) {
                        SharedStep::SleepFor(d) => d,
                        other => panic!("{other:?}"),
                    }
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(series(3), series(3));
        assert_ne!(series(3), series(4));
    }

    #[test]
    fn a_dead_refresher_is_taken_over_when_its_lease_ends_and_cannot_store_late() {
        let mut store = ScriptedStore::default();
        let mut a = Process::new();
        let mut stalled = become_refresher(&mut a, &mut store, 1);
        let mut b = Process::new();
        let got = b.run(fetch(2), &mut store, || Ok(grant("tokB"))).unwrap();
        assert_eq!(got.origin, TokenOrigin::Refreshed);
        assert_eq!(got.generation, Generation::Shared(2));
        // B took over exactly when the lease ended: its sleeps never ran past it.
        assert_eq!(store.now, LEASE);
        assert_eq!(
            b.sleeps.iter().sum::<Duration>(),
            Duration::from_millis(LEASE)
        );
        assert_eq!(b.fetches, 1);

        // The stalled refresher comes back with a token: fenced, it gets B's stored token.
        stalled.on_fetched(Ok(grant("late")));
        let mut none = || -> Result<TokenGrant, Error> { unreachable!() };
        let done = loop {
            if let Some(r) = a.step(&mut stalled, &mut store, &mut none) {
                break r.unwrap();
            }
        };
        assert_eq!(
            (done.token.expose(), done.origin),
            ("tokB", TokenOrigin::Shared)
        );
        assert_eq!(store.token.as_ref().unwrap().0, "tokB");
        assert_eq!(store.token.as_ref().unwrap().1, 2);
    }

    #[test]
    fn a_failed_fetch_cools_down_and_the_next_waiter_retries_after_it() {
        let mut store = ScriptedStore::default();
        let mut a = Process::new();
        let err = a
            .run(fetch(1), &mut store, || Err(api_error(40001)))
            .unwrap_err();
        assert!(
            matches!(&err, SharedTokenError::Fetch(e) if e.errcode() == Some(ErrCode::from(40001)))
        );
        assert_eq!(store.calls, ["lookup", "fail"]);
        assert_eq!(store.lock, Some((1, COOLDOWN, true)));
        // A waiter does not call gettoken during the cool-down, then retries once.
        let mut b = Process::new();
        let got = b.run(fetch(2), &mut store, || Ok(grant("tokB"))).unwrap();
        assert_eq!(store.now, COOLDOWN);
        assert!(
            b.sleeps
                .iter()
                .all(|d| *d <= Duration::from_millis(COOLDOWN))
        );
        assert_eq!((b.fetches, got.origin), (1, TokenOrigin::Refreshed));
        // The WeCom error converts to itself.
        assert_eq!(Error::from(err).errcode(), Some(ErrCode::from(40001)));
    }

    #[test]
    fn a_failed_refresh_ahead_still_serves_the_valid_token() {
        let mut store = ScriptedStore::default();
        let mut a = Process::new();
        a.run(fetch(1), &mut store, || Ok(grant("old"))).unwrap();
        store.now = 7_200_000 - MARGIN + 1;
        let got = a.run(fetch(2), &mut store, || Err(api_error(-1))).unwrap();
        assert_eq!(
            (got.token.expose(), got.origin),
            ("old", TokenOrigin::Shared)
        );
        assert!(store.lock.unwrap().2, "cooling down");
        // Meanwhile everybody else is served the old token without waiting.
        let mut b = Process::new();
        let got = b.run(fetch(3), &mut store, || unreachable!()).unwrap();
        assert_eq!(got.token.expose(), "old");
        assert!(b.sleeps.is_empty());
    }

    #[test]
    fn a_refresh_ahead_answered_with_the_same_token_refreshes_no_more() {
        let mut store = ScriptedStore::default();
        let mut a = Process::new();
        a.run(fetch(1), &mut store, || Ok(grant("same"))).unwrap();
        store.now = 7_200_000 - MARGIN + 1;
        // WeCom answers the token it already gave: kept, and no further refresh ahead.
        let got = a.run(fetch(2), &mut store, || Ok(grant("same"))).unwrap();
        assert_eq!(
            (got.token.expose(), got.origin, got.generation),
            ("same", TokenOrigin::Shared, Generation::Shared(1))
        );
        assert!(store.lock.is_none());
        for seed in 3..6 {
            let got = a
                .run(fetch(seed), &mut store, || panic!("no more gettoken"))
                .unwrap();
            assert_eq!(got.token.expose(), "same");
        }
        assert_eq!(a.fetches, 2);
    }

    #[test]
    fn a_rejection_evicts_only_the_generation_rejected() {
        let mut store = ScriptedStore::default();
        let mut a = Process::new();
        let old = a.run(fetch(1), &mut store, || Ok(grant("t1"))).unwrap();
        let policy = SharedTokenPolicy::default();
        let new = a
            .run(
                SharedTokenFetch::replacing(old.generation, policy, 2),
                &mut store,
                || Ok(grant("t2")),
            )
            .unwrap();
        assert_eq!(
            (new.token.expose(), new.generation),
            ("t2", Generation::Shared(2))
        );
        // A slow process reports the old token rejected late: the new one stays.
        let mut slow = Process::new();
        let got = slow
            .run(
                SharedTokenFetch::replacing(old.generation, policy, 3),
                &mut store,
                || unreachable!(),
            )
            .unwrap();
        assert_eq!(got.token.expose(), "t2");
        assert_eq!(slow.fetches, 0);
        assert_eq!(
            store.calls.iter().filter(|c| **c == "invalidate").count(),
            2
        );
    }

    #[test]
    fn store_down_falls_back_to_an_own_token_and_warns_once() {
        let mut store = ScriptedStore {
            down: true,
            ..ScriptedStore::default()
        };
        let mut p = Process::new();
        let got = p.run(fetch(1), &mut store, || Ok(grant("own"))).unwrap();
        assert_eq!(
            (got.token.expose(), got.origin, got.generation),
            ("own", TokenOrigin::Local, Generation::Local(1))
        );
        assert_eq!((p.fetches, p.warnings, p.state.warnings()), (1, 1, 1));
        // Within store_retry the store is left alone; the own token is reused.
        store.now += 1_000;
        let again = p.run(fetch(2), &mut store, || unreachable!()).unwrap();
        assert_eq!(again.token.expose(), "own");
        assert_eq!(store.calls, ["lookup"]);
        // Later the store is asked again, still down: no second warning, no second gettoken.
        store.now += 10_000;
        p.run(fetch(3), &mut store, || unreachable!()).unwrap();
        assert_eq!(store.calls, ["lookup", "lookup"]);
        assert_eq!((p.fetches, p.warnings), (1, 1));
        // A rejected own token is fetched again, still without the store.
        let policy = SharedTokenPolicy::default();
        let next = p
            .run(
                SharedTokenFetch::replacing(Generation::Local(1), policy, 4),
                &mut store,
                || Ok(grant("own2")),
            )
            .unwrap();
        assert_eq!(
            (next.token.expose(), next.generation),
            ("own2", Generation::Local(2))
        );
        // The store comes back: shared again; a later outage warns again.
        store.down = false;
        store.now += 10_000;
        let back = p.run(fetch(5), &mut store, || Ok(grant("shared"))).unwrap();
        assert_eq!(back.origin, TokenOrigin::Refreshed);
        store.down = true;
        store.now += 10_000;
        store.token = None;
        p.run(fetch(6), &mut store, || unreachable!()).unwrap();
        assert_eq!(p.warnings, 2);
    }

    #[test]
    fn store_down_with_fallback_fail_is_an_error() {
        let mut store = ScriptedStore {
            down: true,
            ..ScriptedStore::default()
        };
        let policy = SharedTokenPolicy {
            fallback: Fallback::Fail,
            ..SharedTokenPolicy::default()
        };
        let mut p = Process::new();
        let err = p
            .run(
                SharedTokenFetch::new(policy, 1),
                &mut store,
                || unreachable!(),
            )
            .unwrap_err();
        assert!(matches!(&err, SharedTokenError::Store(e) if e.message() == "connection refused"));
        assert_eq!((p.fetches, p.warnings), (0, 0));
        let err = Error::from(err);
        assert!(
            matches!(&err, Error::Transport(t) if t.message == "token store: connection refused")
        );
    }

    #[test]
    fn a_store_failure_at_commit_still_returns_the_fetched_token() {
        let mut store = ScriptedStore::default();
        let mut p = Process::new();
        let mut f = become_refresher(&mut p, &mut store, 1);
        f.on_fetched(Ok(grant("mine")));
        assert!(matches!(
            f.poll(&mut p.state, p.t0),
            SharedStep::Store(StoreCommand::Commit { fence: 1, .. })
        ));
        f.on_store_error(StoreError::new("connection reset"));
        assert!(matches!(
            f.poll(&mut p.state, p.t0),
            SharedStep::Store(StoreCommand::Warn(_))
        ));
        let SharedStep::Done(Ok(got)) = f.poll(&mut p.state, p.t0) else {
            panic!("expected the token");
        };
        assert_eq!(
            (got.token.expose(), got.origin, got.generation),
            ("mine", TokenOrigin::Unstored, Generation::Shared(1))
        );
    }

    #[test]
    fn a_waiter_gives_up_after_max_wait() {
        let mut store = ScriptedStore::default();
        let policy = SharedTokenPolicy {
            max_wait: Duration::from_secs(10),
            ..SharedTokenPolicy::default()
        };
        let mut a = Process::new();
        let _stuck = become_refresher(&mut a, &mut store, 1);
        let mut b = Process::new();
        let err = b
            .run(
                SharedTokenFetch::new(policy, 2),
                &mut store,
                || unreachable!(),
            )
            .unwrap_err();
        assert!(
            matches!(err, SharedTokenError::WaitedTooLong { waited } if waited == Duration::from_secs(10))
        );
        assert_eq!(store.now, 10_000);
    }

    #[test]
    fn polling_before_reporting_is_a_store_error_not_a_panic() {
        let mut f = fetch(1);
        let mut st = SharedTokenState::default();
        let now = Instant::now();
        assert!(matches!(
            f.poll(&mut st, now),
            SharedStep::Store(StoreCommand::Lookup { .. })
        ));
        let SharedStep::Done(Err(SharedTokenError::Store(error))) = f.poll(&mut st, now) else {
            panic!("a second poll before the report ends the fetch");
        };
        assert!(error.to_string().contains("polled while"), "{error}");
        // A report of a step that was never handed out ends it too.
        let mut g = fetch(2);
        g.on_commit(CommitReply::Stored { generation: 1 });
        assert!(matches!(
            g.poll(&mut st, now),
            SharedStep::Done(Err(SharedTokenError::Store(_)))
        ));
    }

    #[test]
    fn nothing_prints_a_token() {
        let mut store = ScriptedStore::default();
        let mut p = Process::new();
        let mut f = become_refresher(&mut p, &mut store, 1);
        f.on_fetched(Ok(grant("tok-VISIBLE")));
        let step = f.poll(&mut p.state, p.t0);
        let text = format!("{step:?} {f:?} {:?}", store.lookup());
        assert!(!text.contains("tok-VISIBLE"), "{text}");
        // The commands a transport is handed, and a fetch told which token was rejected.
        let policy = SharedTokenPolicy::default();
        let SharedStep::Store(commit) = step else {
            panic!("not a store step: {step:?}")
        };
        let invalidate = StoreCommand::Invalidate {
            generation: 1,
            token: Some(AccessToken::new("tok-VISIBLE").unwrap()),
        };
        let replacing = SharedTokenFetch::replacing(Generation::Shared(1), policy, 2)
            .of_token(AccessToken::new("tok-VISIBLE").unwrap());
        let action = crate::task::Action::<()>::Exchange(
            crate::task::LaneId::MAIN,
            crate::task::Exchange::Store(commit.clone()),
        );
        let text = format!("{commit:?} {invalidate:?} {replacing:?} {action:?}");
        assert!(
            text.contains("Commit") && text.contains("Invalidate"),
            "{text}"
        );
        assert!(!text.contains("tok-VISIBLE"), "{text}");
        let _ = MS;
    }

    /// A fleet at virtual time: each process runs one fetch; steps run in the order of their
    /// due times (ties in a random order); every gettoken takes its own time.
    fn simulate(
        gettoken_ms: &[u64],
        tie_breaks: &[u8],
    ) -> (
        ScriptedStore,
        Vec<Result<SharedToken, SharedTokenError>>,
        u32,
    ) {
        let n = gettoken_ms.len();
        let mut store = ScriptedStore::default();
        let mut procs: Vec<Process> = (0..n).map(|_| Process::new()).collect();
        let mut fetches: Vec<Option<SharedTokenFetch>> =
            (0..n).map(|i| Some(fetch(i as u64 + 1))).collect();
        let mut due = vec![0u64; n];
        // A fetch waiting for its gettoken answer: (when, token).
        let mut pending: Vec<Option<(u64, String)>> = vec![None; n];
        let mut done = Vec::new();
        let mut fetched = 0;
        let mut last_gen = 0;
        let mut turn = 0usize;
        while done.len() < n {
            let soonest = (0..n)
                .filter(|&i| fetches[i].is_some())
                .map(|i| due[i])
                .min()
                .unwrap();
            let ready: Vec<usize> = (0..n)
                .filter(|&i| fetches[i].is_some() && due[i] == soonest)
                .collect();
            let i = ready[usize::from(tie_breaks[turn % tie_breaks.len()]) % ready.len()];
            turn += 1;
            store.now = soonest;
            let f = fetches[i].as_mut().unwrap();
            if let Some((_, token)) = pending[i].take() {
                f.on_fetched(Ok(grant(&token)));
                continue;
            }
            let p = &mut procs[i];
            let now = p.t0 + Duration::from_millis(store.now);
            match f.poll(&mut p.state, now) {
                SharedStep::Store(StoreCommand::Lookup { .. }) => {
                    f.on_lookup(store.lookup().unwrap())
                }
                SharedStep::FetchToken { fence } => {
                    fetched += 1;
                    due[i] = store.now + gettoken_ms[i];
                    pending[i] = Some((due[i], format!("tok-{}", fence.unwrap())));
                }
                SharedStep::Store(StoreCommand::Commit { fence, grant, .. }) => {
                    f.on_commit(store.commit(fence, &grant).unwrap())
                }
                SharedStep::Store(StoreCommand::Invalidate { generation, .. }) => {
                    store.invalidate(generation).unwrap();
                    f.on_invalidated();
                }
                SharedStep::Store(StoreCommand::Fail { fence, .. }) => {
                    store.fail(fence).unwrap();
                    f.on_failed();
                }
                SharedStep::SleepFor(d) => due[i] = store.now + d.as_millis() as u64,
                SharedStep::Store(StoreCommand::Warn(e)) => panic!("the store is up: {e}"),
                SharedStep::Done(result) => {
                    done.push(result);
                    fetches[i] = None;
                }
            }
            // The stored generation never goes back.
            let gen_now = store.token.as_ref().map_or(0, |t| t.1);
            assert!(
                gen_now >= last_gen,
                "generation went back {last_gen} -> {gen_now}"
            );
            last_gen = gen_now;
        }
        (store, done, fetched)
    }

    proptest::proptest! {
        #[test]
        fn any_interleaving_of_a_cold_start_makes_one_gettoken(
            gettoken_ms in proptest::collection::vec(1u64..LEASE, 1..12),
            tie_breaks in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..32),
        ) {
            let (store, tokens, fetched) = simulate(&gettoken_ms, &tie_breaks);
            proptest::prop_assert_eq!(fetched, 1);
            proptest::prop_assert!(
                tokens.iter().all(|t| t.as_ref().unwrap().token.expose() == "tok-1")
            );
            proptest::prop_assert_eq!(store.token.as_ref().map(|t| t.1), Some(1));
        }

        #[test]
        fn stalled_refreshers_cost_one_gettoken_per_lease_and_never_store_late(
            gettoken_ms in proptest::collection::vec(1u64..(3 * LEASE), 1..12),
            tie_breaks in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..32),
        ) {
            let (store, tokens, fetched) = simulate(&gettoken_ms, &tie_breaks);
            let (stored, generation, _, _) = store.token.clone().unwrap();
            // Every fetch had its own fencing number; the newest one's token is stored.
            proptest::prop_assert_eq!(u64::from(fetched), store.counter);
            proptest::prop_assert_eq!(generation, store.counter);
            proptest::prop_assert_eq!(stored, format!("tok-{generation}"));
            // A refresh is only taken over after a full lease without an answer.
            proptest::prop_assert!(u64::from(fetched) <= 1 + store.now / LEASE);
            // Everyone got a token, unless a chain of stalled refreshers outlasted max_wait.
            for t in &tokens {
                match t {
                    Ok(t) => proptest::prop_assert!(t.token.expose().starts_with("tok-")),
                    Err(SharedTokenError::WaitedTooLong { waited }) => {
                        proptest::prop_assert_eq!(*waited, SharedTokenPolicy::default().max_wait)
                    }
                    Err(e) => proptest::prop_assert!(false, "{e}"),
                }
            }
        }
    }
}
