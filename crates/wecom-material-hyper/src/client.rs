//! The async client: the hyper client with the safe defaults, and the state its tasks share.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::Notify;
use wecom_material_core::task::{CallTask, ClientState, Lane};
use wecom_material_core::token_cache::StoredToken;
use wecom_material_core::{BaseUrl, Boundary, ClientSettings, FromSettings, GetToken, Operation};

use crate::job_events::JobEvents;
use crate::run::HttpClient;

/// Configures a [`Client`]: `Client::builder(corp_id, secret)…build()`.
pub type ClientBuilder = wecom_material_core::ClientBuilder<Client>;

impl FromSettings for Client {
    /// Builds the client. Needs no runtime; the client's futures run on tokio.
    fn from_settings(settings: ClientSettings) -> Client {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(settings.json_timeout));
        // An explicit provider: rustls never has to guess between ring and aws-lc-rs.
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(Arc::new(rustls::crypto::ring::default_provider()))
            .expect("ring supports rustls' default protocol versions");
        // Plain http only when the configured base URL is http.
        let tls = if settings.base.is_https() {
            tls.https_only()
        } else {
            tls.https_or_http()
        };
        let connector = tls.enable_http1().wrap_connector(http);
        // The legacy client follows no redirects: the token in the query never goes elsewhere.
        let http: HttpClient = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            // Idle pooled connections are closed after the default 90 s, by this timer.
            .pool_timer(TokioTimer::new())
            .build(connector);
        let credentials = GetToken::new(settings.corp_id.clone(), settings.secret.clone());
        let shared = Arc::new(Shared {
            state: Mutex::new(ClientState::new(credentials)),
            wake: Notify::new(),
        });
        let job_events = JobEvents::new(shared.clone());
        let (random, counter) = (RandomState::new(), AtomicU64::new(0));
        let inner = Inner {
            shared,
            http,
            settings,
            job_events,
            random,
            counter,
        };
        Client {
            inner: Arc::new(inner),
        }
    }
}

/// An async WeCom material client for one app. Cheap to clone; clones share the connection
/// pool and the token cache, so any number of tasks make one `gettoken` call between them.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) shared: Arc<Shared>,
    pub(crate) http: HttpClient,
    pub(crate) settings: ClientSettings,
    job_events: JobEvents,
    /// Seeds for boundaries and retry jitter: a randomly keyed hash of a counter (nothing
    /// here needs cryptographic strength).
    random: RandomState,
    counter: AtomicU64,
}

/// What the tasks of one client share: the core's state behind a lock (never held across an
/// await), and the notification that wakes waiting tasks.
pub(crate) struct Shared {
    state: Mutex<ClientState>,
    pub(crate) wake: Notify,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, ClientState> {
        // Plain data: keep using it after a panic elsewhere.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let base = &self.inner.settings.base;
        f.debug_struct("Client")
            .field("base", base)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Starts configuring a client for one app (corp id and that app's secret).
    pub fn builder(corp_id: impl Into<String>, secret: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(corp_id, secret)
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &BaseUrl {
        &self.inner.settings.base
    }

    /// The handle that feeds received job-finished callback events to the calls waiting in
    /// [`Client::wait_job`] on this client and its clones.
    pub fn job_events(&self) -> JobEvents {
        self.inner.job_events.clone()
    }

    /// The cached token, for a store shared between processes (the CLI's token file).
    pub fn export_token(&self) -> Option<StoredToken> {
        let now = (Instant::now(), unix_now());
        self.inner.shared.lock().tokens.export(now.0, now.1)
    }

    /// Seeds the cache with a token from a shared store, and wakes tasks waiting for one.
    pub fn import_token(&self, stored: StoredToken) {
        let now = (Instant::now(), unix_now());
        self.inner.shared.lock().tokens.import(stored, now.0, now.1);
        self.inner.shared.wake.notify_waiters();
    }

    pub(crate) fn seed(&self) -> u64 {
        let n = self.inner.counter.fetch_add(1, Ordering::Relaxed);
        self.inner.random.hash_one(n)
    }

    /// A fresh multipart boundary.
    pub(crate) fn boundary(&self) -> Boundary {
        let wide = (u128::from(self.seed()) << 64) | u128::from(self.seed());
        Boundary::from_entropy(wide.to_le_bytes())
    }

    /// One JSON call of `op` as a task.
    pub(crate) fn call<O: Operation>(&self, op: O, lane: Lane) -> CallTask<O> {
        let settings = &self.inner.settings;
        let (base, policy) = (settings.base.clone(), settings.retry_policy);
        CallTask::new(op, base, policy, self.seed(), lane)
    }
}

/// Seconds since the Unix epoch (for the exported token's expiry).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
