//! The async store and driver (feature `tokio`): the same scripts and the same core state
//! machine over one multiplexed tokio connection.

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisFuture, Value};
use wecom_material_core::{
    BaseUrl, CommitReply, Error, Generation, GetToken, LookupReply, SharedStep, SharedToken,
    SharedTokenError, SharedTokenFetch, SharedTokenPolicy, SharedTokenState, StoreError,
    TokenGrant,
};

use crate::keys::AppKeys;
use crate::scripts;
use crate::store::{DEFAULT_STORE_TIMEOUT, Scripts, millis, redact_url};

/// Counts the requests a connection sends (one per round trip).
#[derive(Clone)]
struct Counted {
    inner: MultiplexedConnection,
    trips: Arc<AtomicU64>,
}

impl ConnectionLike for Counted {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        self.trips.fetch_add(1, Ordering::Relaxed);
        self.inner.req_packed_command(cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.trips.fetch_add(1, Ordering::Relaxed);
        self.inner.req_packed_commands(pipeline, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

/// A shared token store for one app on Redis, used from async code (tokio).
///
/// One multiplexed connection, opened on first use and again after any failure, serves every
/// task of the process at once. `Debug` shows the URL without its password.
pub struct AsyncRedisTokenStore {
    client: redis::Client,
    config: AsyncConnectionConfig,
    conn: Mutex<Option<Counted>>,
    keys: AppKeys,
    scripts: Scripts,
    url: String,
    round_trips: Arc<AtomicU64>,
}

impl std::fmt::Debug for AsyncRedisTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncRedisTokenStore")
            .field("url", &self.url)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl AsyncRedisTokenStore {
    /// A store at `url` for the app of `keys` (see [`crate::RedisTokenStore::open`]).
    pub fn open(url: &str, keys: AppKeys) -> Result<Self, StoreError> {
        Self::open_with_timeout(url, keys, DEFAULT_STORE_TIMEOUT)
    }

    /// As [`AsyncRedisTokenStore::open`], with `timeout` for connecting and for each reply.
    pub fn open_with_timeout(
        url: &str,
        keys: AppKeys,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let shown = redact_url(url);
        let client = redis::Client::open(url)
            .map_err(|e| StoreError::new(format!("{shown}: bad store URL ({:?})", e.kind())))?;
        Ok(Self {
            client,
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout)),
            conn: Mutex::new(None),
            keys,
            scripts: Scripts::new(),
            url: shown,
            round_trips: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The store's URL without its password.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The app's keys.
    pub fn keys(&self) -> &AppKeys {
        &self.keys
    }

    /// Requests sent to Redis so far by this store (see
    /// [`crate::RedisTokenStore::round_trips`]).
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    fn error(&self, e: &redis::RedisError) -> StoreError {
        StoreError::new(format!("{}: {e}", self.url))
    }

    async fn connection(&self) -> Result<Counted, StoreError> {
        if let Some(conn) = self.conn.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(conn);
        }
        let inner = self
            .client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await
            .map_err(|e| self.error(&e))?;
        let conn = Counted {
            inner,
            trips: self.round_trips.clone(),
        };
        *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = Some(conn.clone());
        Ok(conn)
    }

    async fn run<T>(
        &self,
        inv: redis::ScriptInvocation<'_>,
        parse: impl FnOnce(Value) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.connection().await?;
        match inv.invoke_async::<Value>(&mut conn).await {
            Ok(value) => parse(value),
            Err(e) => {
                *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = None;
                Err(self.error(&e))
            }
        }
    }

    /// LOOKUP (see [`crate::RedisTokenStore::lookup`]).
    pub async fn lookup(&self, lease: Duration) -> Result<LookupReply, StoreError> {
        let mut inv = self.scripts.lookup.prepare_invoke();
        inv.key(self.keys.token())
            .key(self.keys.lock())
            .key(self.keys.fence())
            .arg(millis(lease));
        self.run(inv, scripts::parse_lookup).await
    }

    /// COMMIT (see [`crate::RedisTokenStore::commit`]).
    pub async fn commit(
        &self,
        fence: u64,
        grant: &TokenGrant,
        margin: Duration,
    ) -> Result<CommitReply, StoreError> {
        let mut inv = self.scripts.commit.prepare_invoke();
        inv.key(self.keys.token())
            .key(self.keys.lock())
            .key(self.keys.fence())
            .arg(fence)
            .arg(grant.token.expose())
            .arg(millis(grant.expires_in))
            .arg(u64::try_from(margin.as_millis()).unwrap_or(u64::MAX));
        self.run(inv, scripts::parse_commit).await
    }

    /// INVALIDATE (see [`crate::RedisTokenStore::invalidate`]).
    pub async fn invalidate(&self, generation: u64) -> Result<bool, StoreError> {
        let mut inv = self.scripts.invalidate.prepare_invoke();
        inv.key(self.keys.token())
            .key(self.keys.lock())
            .key(self.keys.fence())
            .arg(generation);
        self.run(inv, scripts::parse_flag).await
    }

    /// FAIL (see [`crate::RedisTokenStore::fail`]).
    pub async fn fail(&self, fence: u64, cooldown: Duration) -> Result<bool, StoreError> {
        let mut inv = self.scripts.fail.prepare_invoke();
        inv.key(self.keys.token())
            .key(self.keys.lock())
            .key(self.keys.fence())
            .arg(fence)
            .arg(millis(cooldown));
        self.run(inv, scripts::parse_flag).await
    }
}

/// One app's token shared through Redis, for async clients: the async twin of
/// [`crate::SharedTokens`].
#[derive(Debug)]
pub struct AsyncSharedTokens {
    store: AsyncRedisTokenStore,
    policy: SharedTokenPolicy,
    state: tokio::sync::Mutex<SharedTokenState>,
    seeds: RandomState,
    counter: AtomicU64,
}

impl AsyncSharedTokens {
    /// Shares tokens through `store` under `policy`.
    pub fn new(store: AsyncRedisTokenStore, policy: SharedTokenPolicy) -> Self {
        Self {
            store,
            policy,
            state: tokio::sync::Mutex::new(SharedTokenState::default()),
            seeds: RandomState::new(),
            counter: AtomicU64::new(0),
        }
    }

    /// Shares the token of the app `credentials` at `base` through the Redis server at `url`
    /// (see [`crate::RedisTokenStore::open`]).
    pub fn open(
        url: &str,
        base: &BaseUrl,
        credentials: &GetToken,
        policy: SharedTokenPolicy,
    ) -> Result<Self, StoreError> {
        let store = AsyncRedisTokenStore::open(url, AppKeys::new(base, credentials))?;
        Ok(Self::new(store, policy))
    }

    /// The store.
    pub fn store(&self) -> &AsyncRedisTokenStore {
        &self.store
    }

    /// How many store outages were warned about.
    pub async fn warnings(&self) -> u64 {
        self.state.lock().await.warnings()
    }

    /// A token: the stored one, or one fetched by awaiting `gettoken()` (at most once) when
    /// this process is the fleet's refresher or needs its own.
    pub async fn token<F, Fut>(&self, gettoken: F) -> Result<SharedToken, SharedTokenError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<TokenGrant, Error>>,
    {
        self.drive(SharedTokenFetch::new(self.policy, self.seed()), gettoken)
            .await
    }

    /// WeCom rejected the token of `rejected`: invalidates it, then gets a token as
    /// [`AsyncSharedTokens::token`].
    pub async fn replace<F, Fut>(
        &self,
        rejected: Generation,
        gettoken: F,
    ) -> Result<SharedToken, SharedTokenError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<TokenGrant, Error>>,
    {
        self.drive(
            SharedTokenFetch::replacing(rejected, self.policy, self.seed()),
            gettoken,
        )
        .await
    }

    fn seed(&self) -> u64 {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        self.seeds.hash_one((n, Instant::now(), std::process::id()))
    }

    async fn drive<F, Fut>(
        &self,
        mut fetch: SharedTokenFetch,
        mut gettoken: F,
    ) -> Result<SharedToken, SharedTokenError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<TokenGrant, Error>>,
    {
        let store = &self.store;
        let policy = &self.policy;
        loop {
            let mut state = self.state.lock().await;
            let step = fetch.poll(&mut state, Instant::now());
            if let SharedStep::FetchToken { fence: None } = step {
                // The process's own token: the state stays locked so its tasks make one
                // gettoken between them.
                fetch.on_fetched(gettoken().await);
                continue;
            }
            drop(state);
            match step {
                SharedStep::Lookup => match store.lookup(policy.lease).await {
                    Ok(reply) => fetch.on_lookup(reply),
                    Err(e) => fetch.on_store_error(e),
                },
                SharedStep::FetchToken { .. } => fetch.on_fetched(gettoken().await),
                SharedStep::Commit { fence, grant } => {
                    match store.commit(fence, &grant, policy.refresh_margin).await {
                        Ok(reply) => fetch.on_commit(reply),
                        Err(e) => fetch.on_store_error(e),
                    }
                }
                SharedStep::Invalidate { generation } => match store.invalidate(generation).await {
                    Ok(_) => fetch.on_invalidated(),
                    Err(e) => fetch.on_store_error(e),
                },
                SharedStep::Fail { fence } => match store.fail(fence, policy.cooldown).await {
                    Ok(_) => fetch.on_failed(),
                    Err(e) => fetch.on_store_error(e),
                },
                SharedStep::SleepFor(d) => tokio::time::sleep(d).await,
                SharedStep::Warn(e) => {
                    log::warn!("{e}; using a token of this process's own until the store answers")
                }
                SharedStep::Done(result) => return result,
            }
        }
    }
}
