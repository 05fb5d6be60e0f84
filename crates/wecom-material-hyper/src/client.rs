//! The async client: the hyper client with the safe defaults, and the state its tasks share.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::Notify;
use wecom_material_core::Operation;
use wecom_material_core::task::{CallTask, ClientState, Lane};
use wecom_material_core::token_cache::StoredToken;
use wecom_material_core::{AsyncTokenStore, BaseUrl, Boundary, ClientSettings, FromSettings};

use crate::run::HttpClient;
use wecom_material_core::callback::CallbackEvent;

/// Configures a [`Client`]: `Client::builder(corp_id, secret)…build()`.
pub type ClientBuilder = wecom_material_core::ClientBuilder<Client>;

impl FromSettings for Client {
    type Store = dyn AsyncTokenStore;

    /// Builds the client. Needs no runtime; the client's futures run on tokio.
    fn from_settings(settings: ClientSettings, store: Option<Arc<Self::Store>>) -> Client {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(settings.json_timeout));
        // An explicit provider: rustls never has to guess between ring and aws-lc-rs.
        // rustls 0.23.48 deprecates ring's provider (no post-quantum key exchange); ring stays
        // the one provider of the tree (ureq 3's rustls uses it too; aws-lc-rs doubles the
        // TLS build time), so the warning every fresh build printed is silenced here, on
        // purpose.
        #[allow(deprecated)]
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(Arc::new(rustls::crypto::ring::default_provider()))
            .expect("ring supports rustls' default protocol versions");
        // Plain http only when the configured base URL is http.
        let tls = match settings.base.is_https() {
            true => tls.https_only(),
            false => tls.https_or_http(),
        };
        let connector = tls.enable_http1().wrap_connector(http);
        // The legacy client follows no redirects: the token in the query never goes elsewhere.
        let http: HttpClient = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            // Idle pooled connections are closed after the default 90 s, by this timer.
            .pool_timer(TokioTimer::new())
            .build(connector);
        Client(Arc::new(Inner {
            state: Mutex::new(ClientState::for_client(&settings)),
            store,
            wake: Notify::new(),
            http,
            settings,
            random: RandomState::new(),
            counter: AtomicU64::new(0),
        }))
    }
}

/// An async WeCom material client for one app. Cheap to clone; clones share the connection
/// pool and the token cache, so any number of tasks make one `gettoken` call between them.
#[derive(Clone)]
pub struct Client(pub(crate) Arc<Inner>);

/// What the tasks of one client share: the core's state behind a lock (never held across an
/// await) with the notification that wakes waiting tasks, the hyper client and the settings.
pub(crate) struct Inner {
    state: Mutex<ClientState>,
    pub(crate) wake: Notify,
    pub(crate) http: HttpClient,
    pub(crate) settings: ClientSettings,
    /// The shared token store, if the client was given one.
    pub(crate) store: Option<Arc<dyn AsyncTokenStore>>,
    /// Seeds for boundaries and retry jitter: a randomly keyed hash of a counter (nothing
    /// here needs cryptographic strength).
    random: RandomState,
    counter: AtomicU64,
}

impl Inner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, ClientState> {
        // Plain data: keep using it after a panic elsewhere.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let base = &self.0.settings.base;
        f.debug_struct("Client")
            .field("base", base)
            .finish_non_exhaustive()
    }
}

/// A cloneable handle that feeds callback events to the tasks waiting in
/// [`Client::wait_job`] of one client (and its clones), obtained from [`Client::job_events`].
/// Safe to call from any thread or task.
///
/// Give it to the code that receives WeCom's callbacks (after
/// [`CallbackHandler`](wecom_material_core::callback::CallbackHandler) verified and parsed
/// them). Events that arrive while nobody waits are dropped: a wait that starts later polls
/// first, so it sees a job that has already ended.
#[derive(Clone)]
pub struct JobEvents(Arc<Inner>);

impl std::fmt::Debug for JobEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let waiting = self.0.lock().waiting_jobs();
        f.debug_struct("JobEvents")
            .field("waiting_calls", &waiting)
            .finish()
    }
}

impl JobEvents {
    /// Hands `event` to every task waiting now and wakes them.
    pub fn notify(&self, event: &CallbackEvent) {
        let delivered = self.0.lock().deliver_event(event);
        if delivered {
            self.0.wake.notify_waiters();
        }
    }
}

impl Client {
    /// Starts configuring a client for one app (corp id and that app's secret).
    pub fn builder(corp_id: impl Into<String>, secret: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(corp_id, secret)
    }

    /// The handle that feeds received job-finished callback events to the calls waiting in
    /// [`Client::wait_job`] on this client and its clones.
    pub fn job_events(&self) -> JobEvents {
        JobEvents(Arc::clone(&self.0))
    }

    /// The cached token, for a store shared between processes (the CLI's token file).
    pub fn export_token(&self) -> Option<StoredToken> {
        let now = (Instant::now(), SystemTime::now());
        self.0.lock().export_token(now.0, now.1)
    }

    /// Seeds the cache with a token from a shared store, and wakes tasks waiting for one.
    pub fn import_token(&self, stored: StoredToken) {
        let now = (Instant::now(), SystemTime::now());
        let imported = self.0.lock().import_token(stored, now.0, now.1);
        if imported {
            self.0.wake.notify_waiters();
        }
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &BaseUrl {
        &self.0.settings.base
    }

    pub(crate) fn seed(&self) -> u64 {
        let n = self.0.counter.fetch_add(1, Ordering::Relaxed);
        self.0.random.hash_one(n)
    }

    /// A fresh multipart boundary.
    pub(crate) fn boundary(&self) -> Boundary {
        let wide = (u128::from(self.seed()) << 64) | u128::from(self.seed());
        Boundary::from_entropy(wide.to_le_bytes())
    }

    /// One JSON call of `op` as a task.
    pub(crate) fn call<O: Operation>(&self, op: O, lane: Lane) -> CallTask<O> {
        CallTask::for_client(op, &self.0.settings, lane, self.seed())
    }
}
