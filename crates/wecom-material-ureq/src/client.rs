//! The blocking client: its agents with the safe defaults, and the state its calls share.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use wecom_material_core::task::{CallTask, ClientState, Lane};
use wecom_material_core::token_cache::StoredToken;
use wecom_material_core::{
    BaseUrl, Boundary, ClientSettings, FromSettings, GetToken, Limits, Operation, PollPolicy,
    RetryPolicy,
};

use crate::job_events::JobEvents;

/// Configures a [`Client`]: `Client::builder(corp_id, secret)…build()`.
pub type ClientBuilder = wecom_material_core::ClientBuilder<Client>;

impl FromSettings for Client {
    /// Two agents: JSON calls under one overall timeout, media transfers under an idle timeout
    /// only; neither follows redirects (the token is in the query string) nor turns HTTP
    /// statuses into errors (the core reads them).
    fn from_settings(settings: ClientSettings) -> Client {
        let config = || {
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .user_agent(USER_AGENT)
        };
        let json_agent = config().timeout_global(Some(settings.json_timeout));
        let media_agent = config()
            .timeout_connect(Some(settings.json_timeout))
            .timeout_per_read(Some(settings.media_idle_timeout))
            .timeout_per_write(Some(settings.media_idle_timeout));
        let shared = Arc::new(Shared {
            state: Mutex::new(ClientState::new(GetToken::new(
                settings.corp_id.clone(),
                settings.secret.clone(),
            ))),
            wake: Condvar::new(),
        });
        Client {
            inner: Arc::new(Inner {
                json_agent: json_agent.build().into(),
                media_agent: media_agent.build().into(),
                job_events: JobEvents::new(shared.clone()),
                shared,
                settings,
                entropy: Entropy::default(),
            }),
        }
    }
}

const USER_AGENT: &str = concat!("wecom-material/", env!("CARGO_PKG_VERSION"), " (ureq)");

/// A blocking WeCom material client for one app. Cheap to clone; clones share the connection
/// pool and the token cache, so any number of threads make one `gettoken` call between them.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) shared: Arc<Shared>,
    pub(crate) json_agent: ureq::Agent,
    pub(crate) media_agent: ureq::Agent,
    pub(crate) settings: ClientSettings,
    job_events: JobEvents,
    entropy: Entropy,
}

/// What the tasks of one client share: the core's state behind a lock, and the condition
/// variable that wakes waiting tasks.
pub(crate) struct Shared {
    state: Mutex<ClientState>,
    pub(crate) wake: Condvar,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, ClientState> {
        // Plain data: keep using it after a panic elsewhere.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.settings.base)
            .finish_non_exhaustive()
    }
}

/// The unpredictable bits the core asks for (multipart boundaries, retry jitter), drawn from
/// the standard library's randomly seeded hasher: nothing here needs cryptographic strength.
#[derive(Default)]
struct Entropy {
    state: RandomState,
    counter: AtomicU64,
}

impl Entropy {
    fn next_u64(&self) -> u64 {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        self.state.hash_one((n, Instant::now()))
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

    /// The handle that feeds received callback events to the calls waiting in
    /// [`Client::wait_job`] on this client and its clones.
    pub fn job_events(&self) -> JobEvents {
        self.inner.job_events.clone()
    }

    /// The cached token, for a store shared between processes (the CLI's token file).
    pub fn export_token(&self) -> Option<StoredToken> {
        let state = self.inner.shared.lock();
        state.tokens.export(Instant::now(), unix_now())
    }

    /// Seeds the cache with a token from a shared store.
    pub fn import_token(&self, stored: StoredToken) {
        let mut state = self.inner.shared.lock();
        state.tokens.import(stored, Instant::now(), unix_now());
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.inner.settings.limits
    }

    pub(crate) fn poll_policy(&self) -> PollPolicy {
        self.inner.settings.poll_policy
    }

    pub(crate) fn retry_policy(&self) -> RetryPolicy {
        self.inner.settings.retry_policy
    }

    pub(crate) fn seed(&self) -> u64 {
        self.inner.entropy.next_u64()
    }

    /// A fresh multipart boundary.
    pub(crate) fn boundary(&self) -> Boundary {
        let mut bytes = [0; 16];
        bytes[..8].copy_from_slice(&self.seed().to_le_bytes());
        bytes[8..].copy_from_slice(&self.seed().to_le_bytes());
        Boundary::from_entropy(bytes)
    }

    /// One JSON call of `op` as a task.
    pub(crate) fn call<O: Operation>(&self, op: O, lane: Lane) -> CallTask<O> {
        let base = self.base_url().clone();
        CallTask::new(op, base, self.retry_policy(), self.seed(), lane)
    }
}

/// Seconds since the Unix epoch (for the exported token's expiry).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
