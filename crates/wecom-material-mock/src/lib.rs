#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod admin;
mod body;
mod callback;
#[cfg(feature = "cli")]
pub mod cli;
mod clock;
mod config;
mod endpoints;
mod fault;
mod query;
mod receiver;
mod record;
#[cfg(feature = "s3-server")]
pub mod s3_server;
pub mod samples;
mod server;
mod slab;
mod state;
mod store;

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use callback::{CallbackDelivery, DeliveryOutcome};
pub use clock::Clock;
pub use config::{
    App, CallbackTarget, ErrorContentType, JobFinished, JobFinishedHook, Limits, MediaKind,
    MockConfig, NoteHook, RequestHook, SizeLimit,
};
pub use fault::{Endpoint, Fault};
pub use receiver::{CallbackReceiver, ReceivedCallback};
pub use record::RecordedRequest;
pub use state::{JobStatus, Rules, Settings, StoredMedia};

use state::{ServedFile, State};

/// Path prefix of the image URLs `uploadimg` answers.
pub(crate) const IMAGE_PREFIX: &str = "/mock-images/";
/// Path prefix of files registered with [`MockHandle::serve_file`].
pub(crate) const FILE_PREFIX: &str = "/mock-files/";
/// Never read more than this of a request body the emulator does not need.
pub(crate) const DRAIN_LIMIT: u64 = 512 * 1024 * 1024;

/// The future that runs a bound emulator until [`MockHandle::shutdown`].
pub type Serving = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A handle on a running emulator: its address, its clock, faults, the request log and
/// direct access to its stores. Cheap to clone.
#[derive(Clone)]
pub struct MockHandle {
    state: Arc<State>,
    addr: SocketAddr,
    shutdown: Arc<watch::Sender<bool>>,
}

impl std::fmt::Debug for MockHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockHandle")
            .field("addr", &self.addr)
            .field("config", &self.state.config)
            .finish()
    }
}

/// Binds the emulator to `listener` and returns its handle and the future that serves it
/// (run it on any tokio runtime; it ends after [`MockHandle::shutdown`]).
///
/// Must be called inside a tokio runtime only when `listener` was made there (it always is).
pub fn bind(listener: TcpListener, config: MockConfig) -> io::Result<(MockHandle, Serving)> {
    let addr = listener.local_addr()?;
    let state = Arc::new(State::new(config, format!("http://{addr}")));
    let (tx, rx) = watch::channel(false);
    let handle = MockHandle {
        state: state.clone(),
        addr,
        shutdown: Arc::new(tx),
    };
    Ok((handle, Box::pin(server::accept_loop(listener, state, rx))))
}

/// Starts the emulator on `127.0.0.1:0` as a task of the current tokio runtime.
///
/// For a test that calls a **blocking** client, use [`MockServer::start`] instead: a blocking
/// call on a `current_thread` runtime would starve a server running on that same runtime.
pub async fn spawn(config: MockConfig) -> io::Result<MockHandle> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let (handle, serving) = bind(listener, config)?;
    tokio::spawn(serving);
    Ok(handle)
}

/// Runs the emulator on `addr` on the calling thread (with its own multi-threaded tokio
/// runtime) until [`MockHandle::shutdown`] is called on the handle given to `on_ready`.
/// This is what a standalone `mock` command calls; `on_ready` can print the base URL.
pub fn run_blocking(
    addr: SocketAddr,
    config: MockConfig,
    on_ready: impl FnOnce(&MockHandle),
) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        let listener = TcpListener::bind(addr).await?;
        let (handle, serving) = bind(listener, config)?;
        on_ready(&handle);
        serving.await;
        Ok(())
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

impl MockHandle {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.state.base_url.clone()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The emulator's clock (advance a manual one to expire tokens and media).
    pub fn clock(&self) -> &Clock {
        &self.state.config.clock
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &MockConfig {
        &self.state.config
    }

    /// Queues a fault for the next requests of `endpoint` (see [`Fault`]).
    pub fn fault(&self, endpoint: Endpoint, fault: Fault) {
        self.state.lock().faults.push(endpoint, fault);
    }

    /// Removes every queued fault.
    pub fn clear_faults(&self) {
        self.state.lock().faults.clear();
    }

    /// The requests in the log, in the order they were answered: the last
    /// [`Rules::request_log_capacity`] (default 10,000) since the start or the last clear.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.lock().requests.iter().cloned().collect()
    }

    /// The requests received for one endpoint.
    pub fn requests_to(&self, endpoint: Endpoint) -> Vec<RecordedRequest> {
        self.state
            .lock()
            .requests
            .iter()
            .filter(|r| r.endpoint == Some(endpoint))
            .cloned()
            .collect()
    }

    /// How many requests one endpoint received since the start or the last clear (counted
    /// apart from the log, so entries the full log dropped still count).
    pub fn count(&self, endpoint: Endpoint) -> usize {
        let n = self
            .state
            .lock()
            .counts
            .get(endpoint.name())
            .copied()
            .unwrap_or(0);
        usize::try_from(n).unwrap_or(usize::MAX)
    }

    /// Forgets the recorded requests, the request counts and the [`MockHandle::throttled`]
    /// count, as `DELETE /__mock/requests` does.
    pub fn clear_requests(&self) {
        self.state.clear_requests();
    }

    /// Request counts by endpoint name ([`Endpoint::name`], every one present; `other` for
    /// any other path), in name order: the request part of `GET /__mock/stats`.
    pub fn stats(&self) -> Vec<(String, u64)> {
        self.state.stats()
    }

    /// How many 45033 answers `max_concurrent_per_media` caused since the log was last
    /// cleared (`throttled_45033` in `GET /__mock/stats`).
    pub fn throttled(&self) -> u64 {
        self.state.lock().throttled
    }

    /// The run-time settings (latency, bandwidth, per-media concurrency), which start from
    /// the [`MockConfig`] and change with [`MockHandle::set_settings`] or
    /// `POST /__mock/settings`.
    pub fn settings(&self) -> Settings {
        self.state.settings()
    }

    /// Replaces the run-time settings; they apply to requests that arrive from now on.
    pub fn set_settings(&self, settings: Settings) {
        self.state.set_settings(settings);
    }

    /// Stores a media directly (as if uploaded now) and returns its media id, as
    /// `POST /__mock/media` does. The kind is taken from the content type (`image/*`,
    /// `audio/amr` → voice, `video/*`, else file).
    pub fn insert_media(
        &self,
        bytes: impl Into<Bytes>,
        content_type: &str,
        filename: &str,
    ) -> String {
        self.state
            .store_new_media(None, bytes.into(), content_type, filename, None)
    }

    /// Stores a media of an explicit kind and returns its media id.
    pub fn insert_media_as(
        &self,
        kind: MediaKind,
        bytes: impl Into<Bytes>,
        content_type: &str,
        filename: &str,
    ) -> String {
        self.state
            .store_new_media(Some(kind), bytes.into(), content_type, filename, None)
    }

    /// A stored media (expired ones not evicted yet included), to check what an upload
    /// stored.
    pub fn media(&self, media_id: &str) -> Option<StoredMedia> {
        self.state.lock().store.media(media_id).cloned()
    }

    /// Removes a media, as `DELETE /__mock/media/{id}` does; whether it was there.
    pub fn delete_media(&self, media_id: &str) -> bool {
        self.state.delete_media(media_id)
    }

    /// How many media and uploadimg images are stored, and the bytes they hold together
    /// (`media_count`, `image_count` and `media_bytes` in `GET /__mock/stats`).
    pub fn stored(&self) -> (usize, usize, u64) {
        let inner = self.state.lock();
        (
            inner.store.media_count(),
            inner.store.image_count(),
            inner.store.bytes(),
        )
    }

    /// Back to the start state, as `POST /__mock/reset` does: media, images, served files,
    /// tokens, jobs, the uploadimg quota, faults, the request log, counters and callback
    /// deliveries are forgotten; the clock, [`Settings`] and [`Rules`] return to the
    /// [`MockConfig`]. Jobs still running store nothing.
    pub fn reset(&self) {
        self.state.reset();
    }

    /// The rules now: size limits, uploadimg quota, callback target, id alphabet, log
    /// capacity and byte budget. They start from the [`MockConfig`].
    pub fn rules(&self) -> Rules {
        (*self.state.rules()).clone()
    }

    /// Replaces the rules (for requests that arrive from now on; a smaller log or byte budget
    /// drops the oldest entries at once), as `POST /__mock/settings` does.
    pub fn set_rules(&self, rules: Rules) {
        self.state.set_rules(rules);
    }

    /// Serves `bytes` at `{base_url}/mock-files/{path}` (a leading `/` is ignored; use
    /// URL-safe characters) and returns that URL, for `upload_by_url` tests. With
    /// `range_support` false, a `Range` request is answered 200 with the whole file, as a
    /// server without Range support does.
    pub fn serve_file(&self, path: &str, bytes: impl Into<Bytes>, range_support: bool) -> String {
        let key = path.trim_start_matches('/').to_owned();
        let url = format!("{}{FILE_PREFIX}{key}", self.state.base_url);
        let content_type = endpoints::upload::content_type_for(&key, None);
        self.state.lock().served.insert(
            key,
            ServedFile {
                bytes: bytes.into(),
                content_type,
                range_support,
                gate: None,
            },
        );
        url
    }

    /// Like [`MockHandle::serve_file`] (with Range support), but every request for the file
    /// is held back, unanswered, until [`FileGate::open`] is called: an `upload_by_url` job
    /// of this URL stays "processing" for as long as a test needs. Returns the URL and the
    /// gate. Dropping the gate does not open it; held requests then end when the emulator
    /// shuts down (or the job's `fetch_timeout` passes).
    pub fn serve_file_gated(&self, path: &str, bytes: impl Into<Bytes>) -> (String, FileGate) {
        let key = path.trim_start_matches('/').to_owned();
        let url = format!("{}{FILE_PREFIX}{key}", self.state.base_url);
        let content_type = endpoints::upload::content_type_for(&key, None);
        let gate = Arc::new(watch::Sender::new(false));
        self.state.lock().served.insert(
            key,
            ServedFile {
                bytes: bytes.into(),
                content_type,
                range_support: true,
                gate: Some(gate.clone()),
            },
        );
        (url, FileGate { open: gate })
    }

    /// An access token for the first app with this corp id, as gettoken would answer it
    /// (without a request); `None` if no app has this corp id.
    pub fn access_token(&self, corp_id: &str) -> Option<String> {
        let app = self
            .state
            .config
            .apps
            .iter()
            .position(|a| a.corp_id == corp_id)?;
        Some(endpoints::gettoken::issue_for(&self.state, app).0)
    }

    /// Forgets every token, as when WeCom invalidates tokens early: they answer 40014 and
    /// gettoken issues new ones.
    pub fn revoke_tokens(&self) {
        let mut inner = self.state.lock();
        inner.tokens.clear();
        inner.current_token.clear();
    }

    /// Expires every token issued so far: they answer 42001 and gettoken issues new ones, as
    /// `POST /__mock/tokens/revoke` does. Returns how many were still live.
    pub fn expire_tokens(&self) -> usize {
        self.state.expire_tokens()
    }

    /// The status of an `upload_by_url` job.
    pub fn job_status(&self, job_id: &str) -> Option<JobStatus> {
        self.state.lock().jobs.get(job_id).map(|j| j.status.clone())
    }

    /// Blocks until the job leaves status 1 or `timeout` (real time) passes; the last status.
    /// Do not call it from a task of the runtime the emulator runs on.
    pub fn wait_for_job(&self, job_id: &str, timeout: Duration) -> Option<JobStatus> {
        let deadline = Instant::now() + timeout;
        let mut inner = self.state.lock();
        loop {
            let status = inner.jobs.get(job_id).map(|j| j.status.clone());
            let left = deadline.saturating_duration_since(Instant::now());
            if !matches!(status, Some(JobStatus::Processing)) || left.is_zero() {
                return status;
            }
            inner = self
                .state
                .job_cv
                .wait_timeout(inner, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits (async) until the job leaves status 1; `None` for an unknown job.
    pub async fn job_finished(&self, job_id: &str) -> Option<JobStatus> {
        loop {
            let notified = self.state.job_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.job_status(job_id) {
                Some(JobStatus::Processing) => notified.await,
                other => return other,
            }
        }
    }

    /// Every job-finished callback delivery attempt so far, in order.
    pub fn callback_deliveries(&self) -> Vec<CallbackDelivery> {
        self.state.lock().deliveries.clone()
    }

    /// Blocks until at least `count` delivery attempts were recorded or `timeout` (real time)
    /// passes; the attempts so far. Do not call it from a task of the emulator's runtime.
    pub fn wait_for_callback_deliveries(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Vec<CallbackDelivery> {
        let deadline = Instant::now() + timeout;
        let mut inner = self.state.lock();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if inner.deliveries.len() >= count || left.is_zero() {
                return inner.deliveries.clone();
            }
            inner = self
                .state
                .job_cv
                .wait_timeout(inner, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Stops accepting connections and closes open ones.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }
}

/// Holds back the requests for a file served with [`MockHandle::serve_file_gated`] until
/// [`FileGate::open`]. Cheap to clone (clones open the same gate).
#[derive(Clone)]
#[must_use = "the file is held back until `open` is called"]
pub struct FileGate {
    open: Arc<watch::Sender<bool>>,
}

impl FileGate {
    /// Releases every held request and lets later ones through at once.
    pub fn open(&self) {
        self.open.send_replace(true);
    }

    /// Whether [`FileGate::open`] was called.
    pub fn is_open(&self) -> bool {
        *self.open.borrow()
    }

    /// How many requests for the file are held back right now.
    pub fn held(&self) -> usize {
        if self.is_open() {
            0
        } else {
            self.open.receiver_count()
        }
    }
}

impl std::fmt::Debug for FileGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileGate")
            .field("open", &self.is_open())
            .field("held", &self.held())
            .finish()
    }
}

/// An emulator running on its own thread with its own tokio runtime, on `127.0.0.1:0`; shut
/// down on drop. Usable from synchronous tests and from any async test (a blocking client on
/// a `current_thread` runtime does not starve it). Derefs to [`MockHandle`].
#[derive(Debug)]
pub struct MockServer {
    handle: MockHandle,
    thread: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Starts the emulator.
    ///
    /// # Panics
    /// If it cannot bind a loopback port or start its runtime (see [`MockServer::try_start`]).
    pub fn start(config: MockConfig) -> MockServer {
        Self::try_start(config).expect("start the WeCom emulator")
    }

    /// Starts the emulator, reporting a failure to bind or to start.
    pub fn try_start(config: MockConfig) -> io::Result<MockServer> {
        let (tx, rx) = std::sync::mpsc::channel::<io::Result<MockHandle>>();
        let thread = std::thread::Builder::new()
            .name("wecom-material-mock".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("wecom-material-mock-worker")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let bound = match TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await {
                        Ok(listener) => bind(listener, config),
                        Err(e) => Err(e),
                    };
                    match bound {
                        Ok((handle, serving)) => {
                            let _ = tx.send(Ok(handle));
                            serving.await;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                    }
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        let handle = rx
            .recv()
            .map_err(|_| io::Error::other("emulator thread ended before binding"))??;
        Ok(MockServer {
            handle,
            thread: Some(thread),
        })
    }

    /// The handle (also reachable through `Deref`).
    pub fn handle(&self) -> &MockHandle {
        &self.handle
    }
}

impl std::ops::Deref for MockServer {
    type Target = MockHandle;

    fn deref(&self) -> &MockHandle {
        &self.handle
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
