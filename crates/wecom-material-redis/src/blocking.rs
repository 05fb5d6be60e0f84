//! The blocking driver: runs the core's [`SharedTokenFetch`] over a [`RedisTokenStore`].

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use wecom_material_core::{
    BaseUrl, Error, Generation, GetToken, SharedStep, SharedToken, SharedTokenError,
    SharedTokenFetch, SharedTokenPolicy, SharedTokenState, StoreError, TokenGrant,
};

use crate::keys::AppKeys;
use crate::store::RedisTokenStore;

/// One app's token shared by every process that uses the same store: what a blocking client
/// asks for a token.
///
/// Cheap to share between threads (`Arc<SharedTokens>`). The process's fallback token (for a
/// store outage) and the warn-once flag live here.
#[derive(Debug)]
pub struct SharedTokens {
    store: RedisTokenStore,
    policy: SharedTokenPolicy,
    state: Mutex<SharedTokenState>,
    seeds: RandomState,
    counter: AtomicU64,
}

impl SharedTokens {
    /// Shares tokens through `store` under `policy`.
    pub fn new(store: RedisTokenStore, policy: SharedTokenPolicy) -> Self {
        Self {
            store,
            policy,
            state: Mutex::new(SharedTokenState::default()),
            seeds: RandomState::new(),
            counter: AtomicU64::new(0),
        }
    }

    /// Shares the token of the app `credentials` at `base` through the Redis server at `url`
    /// (see [`RedisTokenStore::open`]): what a client builds from a `--token-store` URL.
    pub fn open(
        url: &str,
        base: &BaseUrl,
        credentials: &GetToken,
        policy: SharedTokenPolicy,
    ) -> Result<Self, StoreError> {
        let store = RedisTokenStore::open(url, AppKeys::new(base, credentials))?;
        Ok(Self::new(store, policy))
    }

    /// The store.
    pub fn store(&self) -> &RedisTokenStore {
        &self.store
    }

    /// The policy.
    pub fn policy(&self) -> &SharedTokenPolicy {
        &self.policy
    }

    /// How many store outages were warned about.
    pub fn warnings(&self) -> u64 {
        self.lock_state().warnings()
    }

    /// A token: the stored one, or — when this process is the fleet's refresher, or the
    /// store is down and it needs its own — one fetched by calling `gettoken` (at most once).
    pub fn token(
        &self,
        gettoken: impl FnMut() -> Result<TokenGrant, Error>,
    ) -> Result<SharedToken, SharedTokenError> {
        self.drive(SharedTokenFetch::new(self.policy, self.seed()), gettoken)
    }

    /// WeCom rejected the token of `rejected` (40014 / 42001): invalidates it (only if the
    /// store still holds that generation), then gets a token as [`SharedTokens::token`].
    pub fn replace(
        &self,
        rejected: Generation,
        gettoken: impl FnMut() -> Result<TokenGrant, Error>,
    ) -> Result<SharedToken, SharedTokenError> {
        self.drive(
            SharedTokenFetch::replacing(rejected, self.policy, self.seed()),
            gettoken,
        )
    }

    fn seed(&self) -> u64 {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        self.seeds.hash_one((n, Instant::now(), std::process::id()))
    }

    fn lock_state(&self) -> MutexGuard<'_, SharedTokenState> {
        // Plain data: a panic elsewhere leaves it usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn drive(
        &self,
        mut fetch: SharedTokenFetch,
        mut gettoken: impl FnMut() -> Result<TokenGrant, Error>,
    ) -> Result<SharedToken, SharedTokenError> {
        let store = &self.store;
        let policy = &self.policy;
        loop {
            let mut state = self.lock_state();
            match fetch.poll(&mut state, Instant::now()) {
                SharedStep::FetchToken { fence: None } => {
                    // The process's own token: keep the state locked so its threads make one
                    // gettoken between them.
                    fetch.on_fetched(gettoken());
                    continue;
                }
                step => {
                    drop(state);
                    match step {
                        SharedStep::Lookup => match store.lookup(policy.lease) {
                            Ok(reply) => fetch.on_lookup(reply),
                            Err(e) => fetch.on_store_error(e),
                        },
                        SharedStep::FetchToken { fence: Some(_) } => fetch.on_fetched(gettoken()),
                        SharedStep::Commit { fence, grant } => {
                            match store.commit(fence, &grant, policy.refresh_margin) {
                                Ok(reply) => fetch.on_commit(reply),
                                Err(e) => fetch.on_store_error(e),
                            }
                        }
                        SharedStep::Invalidate { generation } => {
                            match store.invalidate(generation) {
                                Ok(_) => fetch.on_invalidated(),
                                Err(e) => fetch.on_store_error(e),
                            }
                        }
                        SharedStep::Fail { fence } => match store.fail(fence, policy.cooldown) {
                            Ok(_) => fetch.on_failed(),
                            Err(e) => fetch.on_store_error(e),
                        },
                        SharedStep::SleepFor(d) => std::thread::sleep(d),
                        SharedStep::Warn(e) => log::warn!(
                            "{e}; using a token of this process's own until the store answers"
                        ),
                        SharedStep::Done(result) => return result,
                        SharedStep::FetchToken { fence: None } => unreachable!("handled above"),
                    }
                }
            }
        }
    }
}
