//! The async client: configuration, the shared token cache, and the run loop that drives the
//! core's call state machine over hyper.

use std::hash::{BuildHasher, RandomState};
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::Notify;
use wecom_material_core::Transfer;
use wecom_material_core::driver::{Call, RetryPolicy, Step};
use wecom_material_core::job_wait::PollPolicy;
use wecom_material_core::token_cache::{StoredToken, TokenCache};
use wecom_material_core::{
    BaseUrl, Boundary, ClientSettings, Error, FromSettings, GetToken, Limits, MAX_JSON_RESPONSE,
    Operation, TransportError,
};

use crate::job_events::JobEvents;
use crate::send::{HttpClient, SendFailure, read_bounded, send};
use crate::source::PayloadSource;

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
        Client {
            inner: Arc::new(Inner {
                tokens: Mutex::new(TokenCache::new(GetToken::new(
                    settings.corp_id,
                    settings.secret,
                ))),
                token_ready: Notify::new(),
                base: settings.base,
                http,
                json_timeout: settings.json_timeout,
                media_idle_timeout: settings.media_idle_timeout,
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

/// An async WeCom material client for one app. Cheap to clone; clones share the connection
/// pool and the token cache, so any number of tasks make one `gettoken` call between them.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    tokens: Mutex<TokenCache>,
    token_ready: Notify,
    pub(crate) base: BaseUrl,
    http: HttpClient,
    json_timeout: Duration,
    media_idle_timeout: Duration,
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

/// Which timeouts a call uses.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    /// One timeout for the whole exchange.
    Json,
    /// An idle timeout per read or write, no overall limit.
    Media,
}

/// What the driver wants next.
// Lives for one turn of the loop and is matched at once, like the core's `Step`.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Next<T> {
    /// Send this request; `token` says it is the gettoken request.
    Send {
        request: http::Request<wecom_material_core::Body>,
        token: bool,
    },
    /// The call is over.
    Done(Result<T, Error>),
}

/// One call in progress. If it is dropped before it ends (the caller's future was dropped),
/// the call is cancelled in the cache, so that a refresh it held is handed back at once.
pub(crate) struct Running<'c, O: Operation> {
    client: &'c Client,
    call: Call<O>,
    over: bool,
}

impl<O: Operation> Drop for Running<'_, O> {
    fn drop(&mut self) {
        if !self.over {
            self.call.cancel(&mut self.client.tokens());
            self.client.inner.token_ready.notify_waiters();
        }
    }
}

impl<O: Operation> Running<'_, O> {
    /// The operation of the call.
    pub(crate) fn operation(&self) -> &O {
        self.call.operation()
    }

    /// Polls the call, sleeping and waiting as it says, until it wants a request sent or ends.
    pub(crate) async fn next(&mut self, watch: &Transfer<'_>) -> Next<O::Output> {
        let inner = &*self.client.inner;
        loop {
            if watch.is_cancelled() {
                self.over = true;
                self.call.cancel(&mut self.client.tokens());
                inner.token_ready.notify_waiters();
                return Next::Done(Err(Error::Cancelled { bytes_written: 0 }));
            }
            // Registered before the cache is looked at: a refresh that ends after the lookup
            // cannot be missed.
            let mut notified = pin!(inner.token_ready.notified());
            notified.as_mut().enable();
            let step = self.call.poll(Instant::now(), &mut self.client.tokens());
            match step {
                Step::Send(request) => {
                    let token = self.call.is_token_request_in_flight();
                    return Next::Send { request, token };
                }
                Step::Sleep { until } => {
                    tokio::time::sleep_until(until.into()).await;
                }
                Step::WaitForToken { until } => {
                    let _ = tokio::time::timeout_at(until.into(), notified).await;
                }
                Step::Done(result) => {
                    self.over = true;
                    return Next::Done(result);
                }
            }
        }
    }

    /// Reports the outcome of the request [`Running::next`] handed out. A local failure ends
    /// the call with that error.
    pub(crate) fn report(
        &mut self,
        token: bool,
        outcome: Result<http::Response<Bytes>, SendFailure>,
    ) -> Result<(), Error> {
        let inner = &*self.client.inner;
        let result = {
            let mut tokens = self.client.tokens();
            let now = Instant::now();
            match outcome {
                Ok(response) => {
                    self.call.on_response(now, &mut tokens, response);
                    Ok(())
                }
                Err(SendFailure::Transport(error)) => {
                    log::debug!("{}", error);
                    self.call.on_transport_error(now, &mut tokens, error);
                    Ok(())
                }
                Err(SendFailure::Local(error)) => {
                    self.over = true;
                    self.call.cancel(&mut tokens);
                    Err(error)
                }
            }
        };
        if token || result.is_err() {
            inner.token_ready.notify_waiters();
        }
        result
    }

    /// The call ended outside the driver (a download streamed its media).
    pub(crate) fn finish(&mut self) {
        self.over = true;
    }
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

    /// A fresh multipart boundary.
    pub(crate) fn boundary(&self) -> Boundary {
        Boundary::from_entropy(self.inner.entropy.bytes16())
    }

    /// The cache, locked briefly and never across an await.
    fn tokens(&self) -> MutexGuard<'_, TokenCache> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.inner.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The handle that feeds received job-finished callback events to the calls waiting in
    /// [`Client::wait_job`] on this client and its clones.
    pub fn job_events(&self) -> JobEvents {
        self.inner.job_events.clone()
    }

    /// The cached token, for a store shared between processes (the CLI's token file).
    pub fn export_token(&self) -> Option<StoredToken> {
        self.tokens().export(Instant::now(), unix_now())
    }

    /// Seeds the cache with a token from a shared store.
    pub fn import_token(&self, stored: StoredToken) {
        self.tokens().import(stored, Instant::now(), unix_now());
        self.inner.token_ready.notify_waiters();
    }

    /// Starts a call of `op`.
    pub(crate) fn start<O: Operation>(&self, op: O) -> Running<'_, O> {
        let inner = &*self.inner;
        Running {
            client: self,
            call: Call::new(
                op,
                inner.base.clone(),
                inner.policy,
                inner.entropy.next_u64(),
            ),
            over: false,
        }
    }

    /// The media lane's idle timeout.
    pub(crate) fn idle(&self) -> Duration {
        self.inner.media_idle_timeout
    }

    /// Sends a request and reads its answer whole (bounded), within the lane's timeouts.
    pub(crate) async fn exchange(
        &self,
        request: http::Request<wecom_material_core::Body>,
        source: Option<&mut PayloadSource<'_>>,
        watch: &Transfer<'_>,
        lane: Lane,
    ) -> Result<http::Response<Bytes>, SendFailure> {
        match lane {
            Lane::Json => {
                let limit = self.inner.json_timeout;
                let exchange = async {
                    let response = send(&self.inner.http, request, source, watch, None).await?;
                    read_bounded(response, MAX_JSON_RESPONSE, None).await
                };
                tokio::time::timeout(limit, exchange).await.map_err(|_| {
                    SendFailure::Transport(TransportError::maybe_sent(format!(
                        "no complete answer within {limit:?}"
                    )))
                })?
            }
            Lane::Media => {
                let idle = Some(self.idle());
                let response = self.send_media(request, source, watch).await?;
                read_bounded(response, MAX_JSON_RESPONSE, idle).await
            }
        }
    }

    /// Sends a request of a media transfer and returns the head with the unread body.
    pub(crate) async fn send_media(
        &self,
        request: http::Request<wecom_material_core::Body>,
        source: Option<&mut PayloadSource<'_>>,
        watch: &Transfer<'_>,
    ) -> Result<http::Response<hyper::body::Incoming>, SendFailure> {
        send(&self.inner.http, request, source, watch, Some(self.idle())).await
    }

    /// Runs one operation whose answer is JSON.
    pub(crate) async fn run_json<O: Operation>(
        &self,
        op: O,
        mut source: Option<&mut PayloadSource<'_>>,
        watch: &Transfer<'_>,
        lane: Lane,
    ) -> Result<O::Output, Error> {
        let mut run = self.start(op);
        loop {
            let (request, token) = match run.next(watch).await {
                Next::Send { request, token } => (request, token),
                Next::Done(result) => return result,
            };
            let outcome = if token {
                self.exchange(request, None, watch, Lane::Json).await
            } else {
                self.exchange(request, source.as_deref_mut(), watch, lane)
                    .await
            };
            run.report(token, outcome)?;
        }
    }
}

/// Seconds since the Unix epoch (for the exported token's expiry).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dropped call that holds the token refresh hands it back at once (the drop guard),
    /// so other calls need not wait for the refresh lease to run out.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_call_hands_the_refresh_back() {
        // A server that accepts connections and never answers: gettoken hangs.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = Client::builder("corp", "secret")
            .base_url(&format!("http://{}", silent.local_addr().unwrap()))
            .unwrap()
            .build();
        let task = tokio::spawn({
            let client = client.clone();
            async move {
                client
                    .upload_bytes(
                        wecom_material_core::MediaType::File,
                        "a.txt",
                        Bytes::from_static(b"hello world"),
                    )
                    .await
            }
        });
        while !client.tokens().is_refreshing(Instant::now()) {
            tokio::task::yield_now().await;
        }
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        assert!(
            !client.tokens().is_refreshing(Instant::now()),
            "the refresh is handed back, not left to its lease"
        );
    }
}
