//! A pure, single-flight access-token cache for one app's credentials (SPEC §1).
//!
//! [`TokenCache`] holds at most one token, knows when it expires and when to refresh it ahead
//! of expiry, and lets exactly one caller at a time fetch a new one. It reads no clock: every
//! method that needs the time takes `now`. It does no I/O: a caller that gets
//! [`TokenLookup::Fetch`] sends [`TokenCache::refresh_request`] itself and hands the answer to
//! [`TokenCache::complete_refresh`] (or reports failure with [`TokenCache::fail_refresh`]).
//! The [`crate::driver`] does all of this for a call; transports only share the cache.
//!
//! # Sharing across threads or tasks
//!
//! The cache is plain data. A transport that runs several calls at once wraps it in
//! `Arc<Mutex<TokenCache>>` plus a wake-up primitive (a `Condvar`, or tokio's `Notify`), and
//! wakes every waiter whenever a refresh completes or fails. A caller told to
//! [`TokenLookup::Wait`] sleeps on that primitive, but never past `until`: that is when the
//! refresher's *lease* ends, and if the refresher vanished (a cancelled future, a killed
//! thread) the next [`TokenCache::lookup`] hands the refresh to somebody else.
//!
//! # Generations
//!
//! Every token stored gets a new, larger generation number. A call remembers the generation of
//! the token it sent, and when WeCom rejects that token (40014 / 42001) it calls
//! [`TokenCache::invalidate`] with that generation: a slow call holding an old token cannot
//! evict a fresher one that another call fetched meanwhile.
//!
//! # Fencing late refreshes
//!
//! A refresher whose lease ran out may still complete: its answer arrives after another caller
//! took the refresh over and perhaps stored a newer token. Every ticket has an increasing id,
//! and the cache remembers which ticket stored the token it holds. A late ticket (no longer
//! the one in flight) that is *older* than the ticket of the held token does not store its
//! token: [`TokenCache::complete_refresh`] returns the held, newer token instead. An imported
//! token counts as newer than every ticket issued before the import.
//!
//! # Shared store
//!
//! With [`TokenCache::with_shared_store`], this cache stays the process's first level (its
//! threads or tasks still make one refresh between them), but its refresher does not call
//! gettoken directly: it runs a [`SharedTokenFetch`] ([`TokenCache::shared_fetch`]), which
//! reads the fleet's token from the store and calls gettoken only when the store makes this
//! process the fleet's refresher, and stores the outcome with
//! [`TokenCache::complete_shared`]. The cache remembers the store generation of the token it
//! holds, so that a token WeCom rejects is invalidated in the store too, by generation.
//!
//! # Timeline of one token
//!
//! ```text
//!  stored at S            refresh_at = E - margin          expires_at = E
//!  |---------- Ready ------------|------ refresh ahead ------|------ no token -----
//!                                 first lookup: Fetch          first lookup: Fetch
//!                                 others: Ready (old token)    others: Wait { until: lease end }
//! ```
//!
//! The margin is the configured one (5 minutes by default) but never more than half the
//! token's lifetime, so a short-lived token is still used before it is refreshed.

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::body::Body;
use crate::endpoint::BaseUrl;
use crate::error::Error;
use crate::ops::gettoken::GetToken;
use crate::secret::AccessToken;
use crate::shared_token::{
    Generation, SharedToken, SharedTokenFetch, SharedTokenPolicy, SharedTokenState,
};

/// Default time before expiry at which the cache starts refreshing ahead.
pub(crate) const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Default length of a refresh lease: how long other callers wait for one refresher before
/// one of them may take the refresh over.
pub(crate) const DEFAULT_REFRESH_LEASE: Duration = Duration::from_secs(30);

/// What a caller should do to get a token.
#[derive(Debug)]
pub enum TokenLookup {
    /// Use this token. Pass `generation` to [`TokenCache::invalidate`] if WeCom rejects it.
    Ready {
        /// The token.
        token: AccessToken,
        /// Its generation.
        generation: u64,
    },
    /// This caller must fetch a new token: send [`TokenCache::refresh_request`], then call
    /// [`TokenCache::complete_refresh`] or [`TokenCache::fail_refresh`] with the ticket.
    Fetch(RefreshTicket),
    /// Another caller is fetching the token: wait until it completes (the transport's
    /// notification) or until `until`, the end of its lease, then look up again.
    Wait {
        /// When the current refresher's lease ends.
        until: Instant,
    },
}

/// The right, and the duty, to refresh the token: held by exactly one caller at a time.
///
/// It is consumed by [`TokenCache::complete_refresh`] or [`TokenCache::fail_refresh`]. A
/// ticket dropped without either leaves the refresh in flight until its lease ends.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a refresh ticket must be completed or failed, or other callers wait for its lease"]
pub struct RefreshTicket {
    id: u64,
}

#[derive(Debug, Clone)]
struct Cached {
    token: AccessToken,
    refresh_at: Instant,
    expires_at: Instant,
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    ticket: u64,
    lease_until: Instant,
}

/// The token of one app (one `corpid` + secret), with single-flight refresh.
///
/// `Debug` shows the token and the secret as `***`.
#[derive(Debug)]
pub struct TokenCache {
    credentials: GetToken,
    margin: Duration,
    lease: Duration,
    cached: Option<Cached>,
    generation: u64,
    in_flight: Option<InFlight>,
    next_ticket: u64,
    /// The id of the ticket whose refresh stored the token held (see "Fencing").
    stored_by_ticket: u64,
    /// The policy of the shared store the refresher asks, if one is used ("Shared store").
    sharing: Option<SharedTokenPolicy>,
    /// The process's side of the shared store: its fallback token, warn-once flag.
    shared_state: SharedTokenState,
    /// The store generation of the token held, when it came from the store.
    held_from_store: Option<Generation>,
    /// The store generation and token WeCom rejected, for the next refresher to invalidate.
    rejected: Option<(Generation, AccessToken)>,
    /// The token held before the current one (replaced or dropped): a server may still echo
    /// it, so [`TokenCache::redact`] masks it too.
    previous: Option<AccessToken>,
}

impl TokenCache {
    /// An empty cache for `credentials`, with the default margin (5 min) and lease (30 s).
    pub fn new(credentials: GetToken) -> Self {
        Self {
            credentials,
            margin: DEFAULT_REFRESH_MARGIN,
            lease: DEFAULT_REFRESH_LEASE,
            cached: None,
            generation: 0,
            in_flight: None,
            next_ticket: 1,
            stored_by_ticket: 0,
            sharing: None,
            shared_state: SharedTokenState::default(),
            held_from_store: None,
            rejected: None,
            previous: None,
        }
    }

    /// Makes the refresher of this cache get the token through a shared store under
    /// `policy` (see "Shared store"); the cache then refreshes ahead by the policy's margin,
    /// and its refresher's lease covers the longest a fetch through the store may wait for
    /// other processes plus a lease of its own (else a second thread would start a fetch of
    /// its own while the first still waits, and not be woken when it ends).
    pub fn with_shared_store(mut self, policy: SharedTokenPolicy) -> Self {
        self.margin = policy.refresh_margin;
        self.lease = self.lease.max(policy.max_wait.saturating_add(policy.lease));
        self.sharing = Some(policy);
        self
    }

    /// For the holder of a ticket when a shared store is used: the fetch that gets the token
    /// through it (invalidating there the generation WeCom rejected, if any). `seed` draws
    /// its backoff jitter.
    pub(crate) fn shared_fetch(&mut self, seed: u64) -> Option<SharedTokenFetch> {
        let policy = self.sharing?;
        Some(match self.rejected.take() {
            Some((generation, token)) => {
                SharedTokenFetch::replacing(generation, policy, seed).of_token(token)
            }
            None => SharedTokenFetch::new(policy, seed),
        })
    }

    /// The process's side of the shared store, which [`SharedTokenFetch::poll`] takes.
    pub(crate) fn shared_state(&mut self) -> &mut SharedTokenState {
        &mut self.shared_state
    }

    /// Stores the token a ticket holder got through the shared store, as
    /// [`TokenCache::complete_refresh`] stores a fetched one (a late ticket does not replace
    /// a newer token). Returns the token held and its generation.
    pub(crate) fn complete_shared(
        &mut self,
        ticket: RefreshTicket,
        now: Instant,
        got: SharedToken,
    ) -> (AccessToken, u64) {
        let (token, generation, stored) = self.settle(&ticket, now, got.token, got.expires_in);
        if stored {
            self.held_from_store = Some(got.generation);
        }
        (token, generation)
    }

    /// Ends `ticket`'s refresh with the token it got, stored under a new generation — unless
    /// the ticket is late (another caller took its lease over) and a token stored by a newer
    /// ticket, or imported after it was issued, is still held: that newer token is kept. Returns
    /// the token held, its generation and whether `token` was stored.
    fn settle(
        &mut self,
        ticket: &RefreshTicket,
        now: Instant,
        token: AccessToken,
        lifetime: Duration,
    ) -> (AccessToken, u64, bool) {
        let current = self.release(ticket).is_some();
        if !current
            && ticket.id < self.stored_by_ticket
            && let Some(held) = self.cached.as_ref().filter(|c| now < c.expires_at)
        {
            return (held.token.clone(), self.generation, false);
        }
        self.store(token.clone(), now, lifetime);
        self.stored_by_ticket = ticket.id;
        (token, self.generation, true)
    }

    /// Sets how long before expiry the cache refreshes ahead (capped at half a token's
    /// lifetime). Applies to tokens stored from now on.
    pub fn with_refresh_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// Sets how long one refresher may hold the refresh before others may take it over.
    pub fn with_refresh_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// The credentials this cache fetches tokens with.
    pub fn credentials(&self) -> &GetToken {
        &self.credentials
    }

    /// The generation of the token held, or of the last one held (0 before the first).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether a refresh is in flight whose lease has not ended at `now`.
    pub fn is_refreshing(&self, now: Instant) -> bool {
        self.in_flight.is_some_and(|f| now < f.lease_until)
    }

    /// When the token held expires, if one is held (it may already be past).
    pub fn expires_at(&self) -> Option<Instant> {
        self.cached.as_ref().map(|c| c.expires_at)
    }

    /// Says whether to use the token, fetch a new one, or wait for another caller's fetch.
    pub fn lookup(&mut self, now: Instant) -> TokenLookup {
        if self.cached.as_ref().is_some_and(|c| now >= c.expires_at) {
            self.cached = None;
        }
        let refreshing = self.is_refreshing(now);
        match &self.cached {
            Some(c) if now < c.refresh_at || refreshing => TokenLookup::Ready {
                token: c.token.clone(),
                generation: self.generation,
            },
            // Valid but within the margin, nobody refreshing: this caller refreshes ahead.
            Some(_) => TokenLookup::Fetch(self.issue_ticket(now)),
            None if refreshing => TokenLookup::Wait {
                until: self.in_flight.map_or(now, |f| f.lease_until),
            },
            None => TokenLookup::Fetch(self.issue_ticket(now)),
        }
    }

    fn issue_ticket(&mut self, now: Instant) -> RefreshTicket {
        let id = self.next_ticket;
        self.next_ticket += 1;
        self.in_flight = Some(InFlight {
            ticket: id,
            lease_until: now.checked_add(self.lease).unwrap_or(now),
        });
        RefreshTicket { id }
    }

    /// The gettoken request a ticket holder sends.
    pub fn refresh_request(&self, base: &BaseUrl) -> http::Request<Body> {
        self.credentials.build(base)
    }

    /// Reads the gettoken answer of a ticket holder. On success the token is stored (expiring
    /// `expires_in` after `now`) under a new generation, which is returned with it. Either way
    /// the refresh is no longer in flight, so waiters should be woken.
    ///
    /// A ticket whose lease was taken over does not end the newer refresh. It stores its token
    /// only when no token stored by a newer ticket (or imported later) is held; otherwise the
    /// held, newer token and its generation are returned and the late one is dropped.
    pub fn complete_refresh<B: AsRef<[u8]>>(
        &mut self,
        ticket: RefreshTicket,
        now: Instant,
        response: http::Response<B>,
    ) -> Result<(AccessToken, u64), Error> {
        let grant = match self.credentials.parse(response) {
            Ok(grant) => grant,
            Err(error) => {
                self.release_failed(&ticket);
                return Err(error);
            }
        };
        let (token, generation, _) = self.settle(&ticket, now, grant.token, grant.expires_in);
        Ok((token, generation))
    }

    /// Gives the refresh up (the request failed or was abandoned) so another caller can try
    /// at once. A stale ticket, whose lease another caller took over, changes nothing.
    ///
    /// When a still-valid token is held (a refresh *ahead* failed), the next refresh ahead is
    /// put off until the failed refresher's lease would have ended: the valid token keeps
    /// serving meanwhile, and gettoken is not hammered during the margin.
    pub fn fail_refresh(&mut self, ticket: RefreshTicket) {
        self.release_failed(&ticket);
    }

    fn release(&mut self, ticket: &RefreshTicket) -> Option<InFlight> {
        let released = self.in_flight.filter(|f| f.ticket == ticket.id);
        if released.is_some() {
            self.in_flight = None;
        }
        released
    }

    fn release_failed(&mut self, ticket: &RefreshTicket) {
        if let (Some(failed), Some(cached)) = (self.release(ticket), self.cached.as_mut()) {
            cached.refresh_at = cached
                .refresh_at
                .max(failed.lease_until)
                .min(cached.expires_at);
        }
    }

    /// Whether a token is held that [`TokenCache::lookup`] hands out at `now` without asking
    /// anyone to refresh (valid, and before its refresh-ahead point).
    pub fn has_fresh_token(&self, now: Instant) -> bool {
        self.cached.as_ref().is_some_and(|c| now < c.refresh_at)
    }

    fn store(&mut self, token: AccessToken, now: Instant, lifetime: Duration) {
        // Every source (gettoken, a cache file, any store) is capped at what gettoken may
        // grant, so `now + lifetime` cannot overflow the clock.
        let lifetime = lifetime.min(crate::ops::gettoken::MAX_EXPIRES_IN);
        let margin = self.margin.min(lifetime / 2);
        if let Some(old) = self.cached.take() {
            self.previous = Some(old.token);
        }
        self.generation += 1;
        self.held_from_store = None;
        self.cached = Some(Cached {
            token,
            refresh_at: now + (lifetime - margin),
            expires_at: now + lifetime,
        });
    }

    /// Drops the token if it is still of `generation` (WeCom rejected it). A token of another
    /// generation — a fresher one fetched meanwhile — is kept.
    ///
    /// With a shared store, the next refresher also invalidates the token there — only if
    /// the store still holds that token's generation.
    pub fn invalidate(&mut self, generation: u64) {
        if self.generation != generation {
            return;
        }
        if let Some(cached) = self.cached.take() {
            self.previous = Some(cached.token.clone());
            self.rejected = self.held_from_store.take().map(|g| (g, cached.token));
        }
    }

    /// `error` with this client's secrets masked in every text it holds: the corp secret and
    /// the current and previous tokens as exact strings, plus the keyed forms
    /// ([`Error::redact`]). Applied where a call's result leaves the core.
    pub fn redact(&self, error: Error) -> Error {
        let mut secrets = vec![self.credentials.secret.expose()];
        secrets.extend(self.cached.as_ref().map(|c| c.token.expose()));
        secrets.extend(self.previous.as_ref().map(AccessToken::expose));
        error.redact(&secrets)
    }

    /// The token held, for a shared store (a file, another process). `now_unix` is the wall
    /// clock (seconds since the Unix epoch) at the same moment as `now`. `None` when no valid
    /// token is held. The expiry is rounded down to the second.
    pub fn export(&self, now: Instant, now_unix: u64) -> Option<StoredToken> {
        let cached = self.cached.as_ref().filter(|c| now < c.expires_at)?;
        let remaining = cached.expires_at.saturating_duration_since(now).as_secs();
        Some(StoredToken {
            access_token: cached.token.expose().to_owned(),
            expires_at_unix: now_unix.saturating_add(remaining),
            generation: self.generation,
        })
    }

    /// Adopts a token from a shared store if it is still valid at `now_unix` and outlives the
    /// token held (if any). An adopted token gets a generation above both this cache's and the
    /// stored one, so generations stay increasing across runs that share a store.
    ///
    /// Returns whether the token was adopted. A malformed token (empty, over 512 bytes) is
    /// ignored.
    pub fn import(&mut self, stored: StoredToken, now: Instant, now_unix: u64) -> bool {
        if stored.expires_at_unix <= now_unix {
            return false;
        }
        let Ok(token) = AccessToken::new(stored.access_token) else {
            return false;
        };
        let lifetime = Duration::from_secs(stored.expires_at_unix - now_unix);
        // A lifetime past what gettoken may grant is a tampered entry (and `now + lifetime`
        // could overflow the clock).
        if lifetime > crate::ops::gettoken::MAX_EXPIRES_IN {
            return false;
        }
        // A held token that lasts as long is kept (an expired one never does: the entry's
        // lifetime is at least a second).
        if self
            .cached
            .as_ref()
            .is_some_and(|c| c.expires_at >= now + lifetime)
        {
            return false;
        }
        self.generation = self.generation.max(stored.generation);
        self.store(token, now, lifetime);
        self.stored_by_ticket = self.next_ticket;
        true
    }
}

/// A token as kept in a shared store between runs (the CLI keeps it in a file).
///
/// `Debug` prints the token as `***`; the serialized form holds it in clear, so a store must
/// be private to its user.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredToken {
    /// The token text.
    pub access_token: String,
    /// When it expires, in seconds since the Unix epoch.
    pub expires_at_unix: u64,
    /// The generation it had in the cache that exported it.
    pub generation: u64,
}

impl fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredToken")
            .field("access_token", &"***")
            .field("expires_at_unix", &self.expires_at_unix)
            .field("generation", &self.generation)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::CorpSecret;
    use bytes::Bytes;

    fn cache() -> TokenCache {
        TokenCache::new(GetToken::new("ww1", CorpSecret::new("s3cr3t-value")))
    }

    fn grant(token: &str, expires_in: u64) -> http::Response<Bytes> {
        let body = format!(
            r#"{{"errcode":0,"errmsg":"ok","access_token":"{token}","expires_in":{expires_in}}}"#
        );
        http::Response::builder()
            .status(200)
            .body(Bytes::from(body))
            .unwrap()
    }

    fn fetch(c: &mut TokenCache, now: Instant) -> RefreshTicket {
        match c.lookup(now) {
            TokenLookup::Fetch(t) => t,
            other => panic!("expected Fetch, got {other:?}"),
        }
    }

    fn ready(c: &mut TokenCache, now: Instant) -> (String, u64) {
        match c.lookup(now) {
            TokenLookup::Ready { token, generation } => (token.expose().to_owned(), generation),
            other => panic!("expected Ready, got {other:?}"),
        }
    }

    /// A late refresh (its lease taken over) never replaces the token of a newer refresh,
    /// whichever completes first; it is stored when the newer token has expired, and it
    /// replaces a token imported before it was issued.
    /// A stored token is adopted when it lives up to one day (what gettoken may grant) and
    /// outlives the token held; a longer claim is a tampered entry, a shorter one is ignored.
    #[test]
    fn an_import_is_adopted_only_within_a_day_and_when_it_outlives_the_token_held() {
        let (t0, wall) = (Instant::now(), 1_700_000_000);
        let stored = |token: &str, secs: u64| StoredToken {
            access_token: token.into(),
            expires_at_unix: wall + secs,
            generation: 1,
        };
        let mut c = cache();
        assert!(!c.import(stored("LONG", 86_401), t0, wall));
        assert!(c.import(stored("DAY", 86_400), t0, wall));
        let mut c = cache();
        let t = fetch(&mut c, t0);
        c.complete_refresh(t, t0, grant("HELD", 7200)).unwrap();
        assert!(!c.import(stored("SHORTER", 3600), t0, wall));
        assert_eq!(ready(&mut c, t0).0, "HELD");
        assert!(c.import(stored("LONGER", 7300), t0, wall));
        assert_eq!(ready(&mut c, t0).0, "LONGER");
    }

    #[test]
    fn a_late_refresh_never_replaces_a_newer_token_whatever_the_order() {
        let (t0, s) = (Instant::now(), Duration::from_secs);
        for newer_first in [true, false] {
            let mut c = cache().with_refresh_lease(s(10));
            let late = fetch(&mut c, t0);
            let newer = fetch(&mut c, t0 + s(11));
            let (from_late, from_newer) = if newer_first {
                let n = c.complete_refresh(newer, t0 + s(12), grant("NEW", 7200));
                let l = c.complete_refresh(late, t0 + s(13), grant("OLD", 7200));
                (l.unwrap(), n.unwrap())
            } else {
                let l = c.complete_refresh(late, t0 + s(12), grant("OLD", 7200));
                let n = c.complete_refresh(newer, t0 + s(13), grant("NEW", 7200));
                (l.unwrap(), n.unwrap())
            };
            assert_eq!(from_newer.0.expose(), "NEW");
            let expected_late = if newer_first { ("NEW", 1) } else { ("OLD", 1) };
            assert_eq!((from_late.0.expose(), from_late.1), expected_late);
            assert_eq!(ready(&mut c, t0 + s(14)), ("NEW".into(), from_newer.1));
            assert!(!c.is_refreshing(t0 + s(14)));
        }

        // The newer token expired (at t0 + 72 s, its expiry counting as expired) before the
        // late one came: the late one is stored.
        for (late_at, kept) in [
            (s(71), ("NEW", 1)),
            (s(72), ("OLD", 2)),
            (s(80), ("OLD", 2)),
        ] {
            let mut c = cache().with_refresh_lease(s(10));
            let late = fetch(&mut c, t0);
            let newer = fetch(&mut c, t0 + s(11));
            c.complete_refresh(newer, t0 + s(12), grant("NEW", 60))
                .unwrap();
            let (token, generation) = c
                .complete_refresh(late, t0 + late_at, grant("OLD", 7200))
                .unwrap();
            assert_eq!((token.expose(), generation), kept, "late at {late_at:?}");
        }
        let mut c = cache().with_refresh_lease(s(10));
        let late = fetch(&mut c, t0);
        let newer = fetch(&mut c, t0 + s(11));
        c.complete_refresh(newer, t0 + s(12), grant("NEW", 60))
            .unwrap();
        c.complete_refresh(late, t0 + s(80), grant("OLD", 7200))
            .unwrap();
        assert_eq!(ready(&mut c, t0 + s(81)), ("OLD".into(), 2));

        // A ticket issued after an import is not late against the imported token.
        let mut c = cache().with_refresh_lease(s(10));
        let wall = 1_700_000_000;
        let imported = StoredToken {
            access_token: "IMP".into(),
            expires_at_unix: wall + 7200,
            generation: 5,
        };
        assert!(c.import(imported, t0, wall));
        let margin = t0 + s(7200 - 300);
        let ahead = fetch(&mut c, margin);
        let _taken_over = fetch(&mut c, margin + s(11));
        let (token, _) = c
            .complete_refresh(ahead, margin + s(12), grant("AHEAD", 7200))
            .unwrap();
        assert_eq!(token.expose(), "AHEAD");
        assert_eq!(ready(&mut c, margin + s(13)).0, "AHEAD");
    }

    #[test]
    fn expiry_boundary_and_refresh_ahead() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        // A long lease, so that the refresher started at the margin still holds it at expiry.
        let mut c = cache().with_refresh_lease(s(600));
        let t = fetch(&mut c, t0);
        let (tok, generation) = c.complete_refresh(t, t0, grant("tokA", 7200)).unwrap();
        assert_eq!((tok.expose(), generation), ("tokA", 1));
        // One second before the margin starts: plain Ready, no refresh.
        assert_eq!(ready(&mut c, t0 + s(7200 - 300 - 1)), ("tokA".into(), 1));
        assert!(!c.is_refreshing(t0 + s(7200 - 300 - 1)));
        // At the margin: the first caller refreshes ahead, the others keep the valid token.
        let t = fetch(&mut c, t0 + s(7200 - 300));
        assert_eq!(ready(&mut c, t0 + s(7200 - 300)), ("tokA".into(), 1));
        assert_eq!(ready(&mut c, t0 + s(7199)), ("tokA".into(), 1));
        // At expiry the old token is gone: waiters wait for the refresher's lease.
        match c.lookup(t0 + s(7200)) {
            TokenLookup::Wait { until } => assert_eq!(until, t0 + s(7200 - 300 + 600)),
            other => panic!("expected Wait, got {other:?}"),
        }
        assert_eq!(c.expires_at(), None);
        let (_, generation) = c
            .complete_refresh(t, t0 + s(7200), grant("tokB", 7200))
            .unwrap();
        assert_eq!(generation, 2);
        assert_eq!(ready(&mut c, t0 + s(7201)), ("tokB".into(), 2));
    }

    #[test]
    fn absent_token_after_expiry_without_lookup_in_margin() {
        let t0 = Instant::now();
        let mut c = cache();
        let t = fetch(&mut c, t0);
        c.complete_refresh(t, t0, grant("tokA", 7200)).unwrap();
        let t = fetch(&mut c, t0 + Duration::from_secs(7200));
        // The expired token is not handed out to the others.
        assert!(matches!(
            c.lookup(t0 + Duration::from_secs(7200)),
            TokenLookup::Wait { .. }
        ));
        c.fail_refresh(t);
        assert!(!c.is_refreshing(t0 + Duration::from_secs(7200)));
    }

    #[test]
    fn short_lifetime_caps_margin_at_half() {
        let t0 = Instant::now();
        let mut c = cache();
        let t = fetch(&mut c, t0);
        c.complete_refresh(t, t0, grant("tok", 60)).unwrap();
        ready(&mut c, t0 + Duration::from_secs(29));
        let _ticket = fetch(&mut c, t0 + Duration::from_secs(30));
    }

    #[test]
    fn single_flight_and_lease_takeover() {
        let t0 = Instant::now();
        let mut c = cache();
        let vanished = fetch(&mut c, t0);
        for i in 0..29 {
            assert!(matches!(
                c.lookup(t0 + Duration::from_secs(i)),
                TokenLookup::Wait { .. }
            ));
        }
        // The lease ends: the next caller takes over.
        let taker = fetch(&mut c, t0 + Duration::from_secs(30));
        assert_ne!(vanished, taker);
        // The vanished refresher failing late does not end the new refresh.
        c.fail_refresh(vanished);
        assert!(c.is_refreshing(t0 + Duration::from_secs(31)));
        assert!(matches!(
            c.lookup(t0 + Duration::from_secs(31)),
            TokenLookup::Wait { .. }
        ));
        c.complete_refresh(taker, t0 + Duration::from_secs(32), grant("tokT", 7200))
            .unwrap();
        assert_eq!(ready(&mut c, t0 + Duration::from_secs(33)).0, "tokT");
    }

    #[test]
    fn a_late_refresh_never_replaces_a_newer_token() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut c = cache();
        let slow = fetch(&mut c, t0);
        // The slow refresher's lease ends; another caller takes over and stores tokN.
        let taker = fetch(&mut c, t0 + s(30));
        let (_, newer) = c
            .complete_refresh(taker, t0 + s(31), grant("tokN", 7200))
            .unwrap();
        // The slow answer arrives late: tokN stays, and the slow caller gets tokN.
        let (tok, generation) = c
            .complete_refresh(slow, t0 + s(40), grant("tokLATE", 7200))
            .unwrap();
        assert_eq!((tok.expose(), generation), ("tokN", newer));
        assert_eq!(ready(&mut c, t0 + s(41)), ("tokN".into(), newer));

        // A late ticket with nothing newer held still stores its (valid) token.
        let mut d = cache();
        let slow = fetch(&mut d, t0);
        let taker = fetch(&mut d, t0 + s(30));
        let (tok, _) = d
            .complete_refresh(slow, t0 + s(31), grant("tokS", 7200))
            .unwrap();
        assert_eq!(tok.expose(), "tokS");
        // ...and the taker, newer, replaces it.
        d.complete_refresh(taker, t0 + s(32), grant("tokT", 7200))
            .unwrap();
        assert_eq!(ready(&mut d, t0 + s(33)).0, "tokT");

        // An import after a ticket was issued fences that ticket once it is stale.
        let mut e = cache();
        let slow = fetch(&mut e, t0);
        let _taker = fetch(&mut e, t0 + s(30));
        let stored = StoredToken {
            access_token: "tokI".into(),
            expires_at_unix: 1_700_007_200,
            generation: 5,
        };
        assert!(e.import(stored, t0 + s(31), 1_700_000_000));
        let (tok, _) = e
            .complete_refresh(slow, t0 + s(32), grant("tokLATE", 7200))
            .unwrap();
        assert_eq!(tok.expose(), "tokI");
    }

    #[test]
    fn failed_refresh_lets_the_next_caller_fetch_at_once() {
        let t0 = Instant::now();
        let mut c = cache();
        let t = fetch(&mut c, t0);
        let err_body = Bytes::from_static(br#"{"errcode":40001,"errmsg":"invalid credential"}"#);
        let err = c
            .complete_refresh(
                t,
                t0,
                http::Response::builder()
                    .status(200)
                    .body(err_body)
                    .unwrap(),
            )
            .unwrap_err();
        assert_eq!(err.errcode(), Some(crate::ErrCode::InvalidCredential));
        assert_eq!(c.generation(), 0);
        let _ticket = fetch(&mut c, t0 + Duration::from_millis(1));
    }

    #[test]
    fn failed_refresh_ahead_keeps_serving_the_valid_token() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut c = cache();
        let t = fetch(&mut c, t0);
        c.complete_refresh(t, t0, grant("tokA", 7200)).unwrap();
        let ahead = fetch(&mut c, t0 + s(6900));
        c.fail_refresh(ahead);
        // Put off until the failed lease would have ended (6900 + 30).
        assert!(c.has_fresh_token(t0 + s(6929)));
        assert_eq!(ready(&mut c, t0 + s(6929)).0, "tokA");
        let again = fetch(&mut c, t0 + s(6930));
        c.fail_refresh(again);
        // Never past expiry.
        let late = fetch(&mut c, t0 + s(7190));
        c.fail_refresh(late);
        assert!(!c.has_fresh_token(t0 + s(7200)));
        let _ticket = fetch(&mut c, t0 + s(7200));
    }

    #[test]
    fn stale_generation_does_not_evict() {
        let t0 = Instant::now();
        let mut c = cache();
        let t = fetch(&mut c, t0);
        let (_, old) = c.complete_refresh(t, t0, grant("old", 7200)).unwrap();
        // Another call saw 42001 with the old token and refreshed.
        c.invalidate(old);
        let t = fetch(&mut c, t0 + Duration::from_secs(1));
        let (_, new) = c
            .complete_refresh(t, t0 + Duration::from_secs(1), grant("new", 7200))
            .unwrap();
        assert!(new > old);
        // A slow call with the old token now fails too: the new token stays.
        c.invalidate(old);
        assert_eq!(
            ready(&mut c, t0 + Duration::from_secs(2)),
            ("new".into(), new)
        );
        c.invalidate(new);
        let _ticket = fetch(&mut c, t0 + Duration::from_secs(2));
    }

    #[test]
    fn old_answer_without_errcode() {
        let t0 = Instant::now();
        let mut c = cache();
        let t = fetch(&mut c, t0);
        let body = Bytes::from_static(br#"{"access_token":"legacy","expires_in":7200}"#);
        let resp = http::Response::builder().status(200).body(body).unwrap();
        let (tok, _) = c.complete_refresh(t, t0, resp).unwrap();
        assert_eq!(tok.expose(), "legacy");
    }

    #[test]
    fn export_import_round_trip() {
        let t0 = Instant::now();
        let unix0 = 1_700_000_000;
        let mut c = cache();
        assert!(c.export(t0, unix0).is_none());
        let t = fetch(&mut c, t0);
        c.complete_refresh(t, t0, grant("tokE", 7200)).unwrap();
        let later = t0 + Duration::from_secs(100);
        let stored = c.export(later, unix0 + 100).unwrap();
        assert_eq!(stored.expires_at_unix, unix0 + 7200);
        assert_eq!(stored.generation, 1);
        let json = serde_json::to_string(&stored).unwrap();
        let back: StoredToken = serde_json::from_str(&json).unwrap();

        // A new run, its Instant clock unrelated, 1000 s later in wall time.
        let r0 = Instant::now();
        let mut d = cache();
        assert!(d.import(back.clone(), r0, unix0 + 1000));
        assert_eq!(d.generation(), 2);
        assert_eq!(ready(&mut d, r0).0, "tokE");
        // Remaining 6200 s: refresh ahead 300 s before the end, expired after it.
        ready(&mut d, r0 + Duration::from_secs(6200 - 301));
        let _ticket = fetch(&mut d, r0 + Duration::from_secs(6200 - 300));
        assert_eq!(d.expires_at(), Some(r0 + Duration::from_secs(6200)));

        // Expired or not better than what is held: ignored.
        let mut e = cache();
        assert!(!e.import(back.clone(), r0, unix0 + 7200));
        assert!(!d.import(back.clone(), r0, unix0 + 1000));
        let mut bad = back;
        bad.access_token.clear();
        assert!(!e.import(bad, r0, unix0));
    }

    #[test]
    fn debug_never_shows_the_token_or_secret() {
        let t0 = Instant::now();
        let mut c = cache();
        let t = fetch(&mut c, t0);
        c.complete_refresh(t, t0, grant("tok-VISIBLE-123", 7200))
            .unwrap();
        let stored = c.export(t0, 1_700_000_000).unwrap();
        let lookup = c.lookup(t0);
        for text in [
            format!("{c:?}"),
            format!("{c:#?}"),
            format!("{stored:?}"),
            format!("{lookup:?}"),
        ] {
            assert!(!text.contains("tok-VISIBLE-123"), "{text}");
            assert!(!text.contains("s3cr3t-value"), "{text}");
        }
        assert!(format!("{stored:?}").contains("1700007200"));
    }

    /// `expires_in` near 2^63 (or 2^64 − 1) made `now + lifetime` overflow and panic the
    /// process: a lifetime from outside is kept a day at most (or refused as a decode error),
    /// and an imported token from the far future likewise.
    #[test]
    fn an_absurd_lifetime_never_overflows_the_clock() {
        let t0 = Instant::now();
        for expires_in in [u64::MAX, 1 << 63, 1_000_000_000_000_000_000] {
            let mut c = cache();
            let ticket = fetch(&mut c, t0);
            if c.complete_refresh(ticket, t0, grant("tokX", expires_in))
                .is_ok()
            {
                let day = Duration::from_secs(24 * 3600);
                assert!(c.expires_at().is_some_and(|at| at <= t0 + day));
            }
            let stored = StoredToken {
                access_token: "tokY".into(),
                expires_at_unix: u64::MAX,
                generation: 9,
            };
            let _ = c.import(stored, t0, 1_700_000_000);
            let day = Duration::from_secs(24 * 3600);
            assert!(c.expires_at().is_none_or(|at| at <= t0 + day));
        }
    }
}
