//! The async store (feature `tokio`): the same scripts over one multiplexed tokio connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisFuture, Value};
use wecom_material_core::StoreError;
use wecom_material_core::shared_token::AsyncTokenStore;
use wecom_material_core::shared_token::StoreCommand;
use wecom_material_core::shared_token::StoreFuture;

use crate::keys::AppKeys;
use crate::scripts::{self, AppStore};
use crate::store::{DEFAULT_STORE_TIMEOUT, client, redact_url, retry_on_a_new_connection};

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
    app: AppStore,
}

impl std::fmt::Debug for AsyncRedisTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("AsyncRedisTokenStore")
            .field(&self.app)
            .finish()
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
        Self::from_client(url, client(url, None)?, keys, timeout)
    }

    /// As [`AsyncRedisTokenStore::open_with_timeout`], trusting `root_ca_pem` for a
    /// `rediss://` server (see [`crate::RedisTokenStore::open_with_root_ca`]).
    #[cfg(feature = "tls")]
    pub fn open_with_root_ca(
        url: &str,
        keys: AppKeys,
        timeout: Duration,
        root_ca_pem: &[u8],
    ) -> Result<Self, StoreError> {
        Self::from_client(url, client(url, Some(root_ca_pem))?, keys, timeout)
    }

    fn from_client(
        url: &str,
        client: redis::Client,
        keys: AppKeys,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            client,
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout)),
            conn: Mutex::new(None),
            app: AppStore::new(redact_url(url), keys),
        })
    }

    /// The store's URL without its password.
    pub fn url(&self) -> &str {
        self.app.url()
    }

    /// The app's keys.
    pub fn keys(&self) -> &AppKeys {
        self.app.keys()
    }

    /// Requests sent to Redis so far by this store (see
    /// [`crate::RedisTokenStore::round_trips`]).
    pub fn round_trips(&self) -> u64 {
        self.app.round_trips()
    }

    async fn connection(&self) -> redis::RedisResult<Counted> {
        if let Some(conn) = self.conn.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(conn);
        }
        let inner = self
            .client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await?;
        let conn = Counted {
            inner,
            trips: self.app.trips(),
        };
        *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = Some(conn.clone());
        Ok(conn)
    }

    async fn exec(&self, inv: &redis::ScriptInvocation<'_>) -> redis::RedisResult<Value> {
        let reused = self
            .conn
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some();
        match self.exec_once(inv).await {
            // A kept connection closed meanwhile: once more on a new one (see the blocking
            // store).
            Err(e) if reused && retry_on_a_new_connection(&e) => self.exec_once(inv).await,
            outcome => outcome,
        }
    }

    async fn exec_once(&self, inv: &redis::ScriptInvocation<'_>) -> redis::RedisResult<Value> {
        let mut conn = self.connection().await?;
        let outcome = inv.invoke_async::<Value>(&mut conn).await;
        if outcome.is_err() {
            *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        outcome
    }
}

impl AsyncTokenStore for AsyncRedisTokenStore {
    /// As [`RedisTokenStore`](crate::RedisTokenStore)'s `run`, over the multiplexed
    /// connection: any number of tasks' commands are in flight at once.
    fn run(&self, command: StoreCommand) -> StoreFuture<'_> {
        Box::pin(async move {
            match self.app.invocation(&command) {
                Some((inv, read)) => {
                    let returned = self.exec(&inv).await;
                    self.app.answer(&command, returned, read)
                }
                None => scripts::warn(&command),
            }
        })
    }
}
