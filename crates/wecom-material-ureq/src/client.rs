//! The blocking client: configuration, the shared token cache, and the run loop that drives
//! the core's call state machine over ureq.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use wecom_material_core::Transfer;
use wecom_material_core::driver::{Call, RetryPolicy, Step};
use wecom_material_core::job_wait::PollPolicy;
use wecom_material_core::token_cache::{StoredToken, TokenCache};
use wecom_material_core::{
    BaseUrl, Boundary, ClientSettings, Error, FromSettings, GetToken, Limits, MAX_JSON_RESPONSE,
    Operation, RedactedUri,
};

use crate::job_events::JobEvents;
use crate::send::{SendFailure, read_bounded, send};
use crate::source::PayloadSource;

/// Configures a [`Client`]: `Client::builder(corp_id, secret)…build()`.
pub type ClientBuilder = wecom_material_core::ClientBuilder<Client>;

impl FromSettings for Client {
    /// Two agents: JSON calls under one overall timeout, media transfers under an idle timeout
    /// only; neither follows redirects nor turns HTTP statuses into errors.
    fn from_settings(settings: ClientSettings) -> Client {
        let json_agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(settings.json_timeout))
            .user_agent(USER_AGENT)
            .build()
            .into();
        let media_agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(settings.json_timeout))
            .timeout_per_read(Some(settings.media_idle_timeout))
            .timeout_per_write(Some(settings.media_idle_timeout))
            .user_agent(USER_AGENT)
            .build()
            .into();
        Client {
            inner: Arc::new(Inner {
                tokens: Mutex::new(TokenCache::new(GetToken::new(
                    settings.corp_id,
                    settings.secret,
                ))),
                token_ready: Condvar::new(),
                base: settings.base,
                json_agent,
                media_agent,
                limits: settings.limits,
                policy: settings.retry_policy,
                poll_policy: settings.poll_policy,
                job_events: JobEvents::default(),
                chunk_size: settings.chunk_size,
                max_in_memory: settings.max_in_memory,
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
    tokens: Mutex<TokenCache>,
    token_ready: Condvar,
    pub(crate) base: BaseUrl,
    pub(crate) json_agent: ureq::Agent,
    pub(crate) media_agent: ureq::Agent,
    pub(crate) limits: Limits,
    policy: RetryPolicy,
    pub(crate) poll_policy: PollPolicy,
    pub(crate) job_events: JobEvents,
    pub(crate) chunk_size: u64,
    pub(crate) max_in_memory: u64,
    entropy: Entropy,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base)
            .finish_non_exhaustive()
    }
}

/// The unpredictable bits the core asks for (multipart boundaries, retry jitter), drawn from
/// the standard library's randomly seeded hasher: no extra dependency, and nothing here needs
/// cryptographic strength.
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

    fn bytes16(&self) -> [u8; 16] {
        let mut out = [0; 16];
        out[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        out[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        out
    }
}

/// What a response handler did with a response.
pub(crate) enum Handled<R> {
    /// The handler consumed the response and the call is over.
    Done(R),
    /// The handler read the (bounded) body; the driver decides.
    Buffered(http::Response<Bytes>),
}

/// Which agent (and so which timeouts) a call uses.
#[derive(Clone, Copy)]
pub(crate) enum Lane {
    Json,
    Media,
}

impl Client {
    /// Starts configuring a client for one app (corp id and that app's secret).
    pub fn builder(corp_id: impl Into<String>, secret: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(corp_id, secret)
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &BaseUrl {
        &self.inner.base
    }

    /// The handle that feeds received callback events to the calls waiting in
    /// [`Client::wait_job`] on this client and its clones.
    pub fn job_events(&self) -> JobEvents {
        self.inner.job_events.clone()
    }

    /// A fresh multipart boundary.
    pub(crate) fn boundary(&self) -> Boundary {
        Boundary::from_entropy(self.inner.entropy.bytes16())
    }

    fn tokens(&self) -> MutexGuard<'_, TokenCache> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.inner.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached token, for a store shared between processes (the CLI's token file).
    pub fn export_token(&self) -> Option<StoredToken> {
        self.tokens().export(Instant::now(), unix_now())
    }

    /// Seeds the cache with a token from a shared store.
    pub fn import_token(&self, stored: StoredToken) {
        self.tokens().import(stored, Instant::now(), unix_now());
    }

    /// Runs one operation whose answer is JSON.
    pub(crate) fn run_json<O: Operation>(
        &self,
        op: O,
        source: Option<&mut PayloadSource<'_>>,
        watch: &Transfer<'_>,
        lane: Lane,
    ) -> Result<O::Output, Error> {
        self.run(
            op,
            source,
            watch,
            lane,
            |_, response| read_bounded(response, MAX_JSON_RESPONSE).map(Handled::Buffered),
            |output| output,
        )
    }

    /// The run loop: polls the core's [`Call`] and does what it says. `handle` sees every
    /// business response head first (downloads stream media from there); `finish` maps the
    /// driver's output.
    pub(crate) fn run<O: Operation, R>(
        &self,
        op: O,
        mut source: Option<&mut PayloadSource<'_>>,
        watch: &Transfer<'_>,
        lane: Lane,
        mut handle: impl FnMut(&O, http::Response<ureq::Body>) -> Result<Handled<R>, SendFailure>,
        finish: impl FnOnce(O::Output) -> R,
    ) -> Result<R, Error> {
        let inner = &*self.inner;
        let mut call = Call::new(
            op,
            inner.base.clone(),
            inner.policy,
            inner.entropy.next_u64(),
        );
        let mut tokens = self.tokens();
        loop {
            if watch.is_cancelled() {
                return Err(Error::Cancelled { bytes_written: 0 });
            }
            let now = Instant::now();
            match call.poll(now, &mut tokens) {
                Step::Send(request) => {
                    drop(tokens);
                    let token_request = call.is_token_request_in_flight();
                    log::debug!("{} {}", request.method(), RedactedUri(request.uri()));
                    let agent = match (token_request, lane) {
                        (true, _) | (false, Lane::Json) => &inner.json_agent,
                        (false, Lane::Media) => &inner.media_agent,
                    };
                    let source = if token_request {
                        None
                    } else {
                        source.as_deref_mut()
                    };
                    let outcome = send(agent, request, source, watch).and_then(|response| {
                        if token_request {
                            read_bounded(response, MAX_JSON_RESPONSE).map(Handled::Buffered)
                        } else {
                            handle(call.operation(), response)
                        }
                    });
                    tokens = self.tokens();
                    let now = Instant::now();
                    match outcome {
                        Ok(Handled::Done(result)) => return Ok(result),
                        Ok(Handled::Buffered(response)) => {
                            call.on_response(now, &mut tokens, response)
                        }
                        Err(SendFailure::Transport(error)) => {
                            log::debug!("{}", error);
                            call.on_transport_error(now, &mut tokens, error)
                        }
                        Err(SendFailure::Local(error)) => {
                            call.cancel(&mut tokens);
                            inner.token_ready.notify_all();
                            return Err(error);
                        }
                    }
                    if token_request {
                        inner.token_ready.notify_all();
                    }
                }
                Step::Sleep { until } => {
                    drop(tokens);
                    std::thread::sleep(until.saturating_duration_since(now));
                    tokens = self.tokens();
                }
                Step::WaitForToken { until } => {
                    let wait = until
                        .saturating_duration_since(now)
                        .max(Duration::from_millis(1));
                    tokens = inner
                        .token_ready
                        .wait_timeout(tokens, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                Step::Done(result) => return result.map(finish),
            }
        }
    }
}

/// Seconds since the Unix epoch (for the exported token's expiry).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
