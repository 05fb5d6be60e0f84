//! The emulator's shared state: tokens, media, jobs, quotas, faults and the request log.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use bytes::Bytes;

use crate::callback::CallbackDelivery;
use crate::config::{CallbackTarget, JobFinished, Limits, MediaKind, MockConfig};
use crate::fault::{Endpoint, FaultTable};
use crate::record::RecordedRequest;
use crate::store::{Evicted, MediaStore};

/// A stored temporary media, as `media/get` serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMedia {
    /// The media type it was uploaded as.
    pub kind: MediaKind,
    /// The file.
    pub bytes: Bytes,
    /// The `Content-Type` it is served with.
    pub content_type: String,
    /// The display file name, exactly as uploaded (raw UTF-8).
    pub filename: String,
    /// Upload time, Unix seconds on the emulator's clock.
    pub created_at: u64,
    /// The corp whose app uploaded it: every app of that corp can get it, no other corp can
    /// (as WeCom shares media within a corp). `None` (media added through the admin API or
    /// [`MockHandle::insert_media`](crate::MockHandle::insert_media)): every corp can.
    pub corp_id: Option<String>,
}

/// The state of an `upload_by_url` job (`status` of `get_upload_by_url_result`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStatus {
    /// `status` 1.
    Processing,
    /// `status` 2, `detail.errcode` 0.
    Finished {
        /// The new media id.
        media_id: String,
        /// Unix seconds.
        created_at: u64,
    },
    /// `status` 3 with `detail.errcode`.
    Failed {
        /// Why: 830001, 830003, 301019, 45001.
        errcode: i64,
    },
}

#[derive(Debug)]
pub(crate) struct TokenEntry {
    pub(crate) app: usize,
    pub(crate) expires_at_ms: u128,
}

#[derive(Debug, Clone)]
pub(crate) struct ServedFile {
    pub(crate) bytes: Bytes,
    pub(crate) content_type: String,
    pub(crate) range_support: bool,
    /// Set for [`MockHandle::serve_file_gated`](crate::MockHandle::serve_file_gated): requests
    /// wait until it turns true.
    pub(crate) gate: Option<std::sync::Arc<tokio::sync::watch::Sender<bool>>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) corp_id: String,
    pub(crate) status: JobStatus,
}

#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub(crate) tokens: HashMap<String, TokenEntry>,
    /// The live token of each app (gettoken answers it again while it is valid).
    pub(crate) current_token: HashMap<usize, String>,
    /// Media, and images from uploadimg (keyed by the path after `/mock-images/`).
    pub(crate) store: MediaStore,
    /// Files for upload_by_url, keyed by the path after `/mock-files/`.
    pub(crate) served: HashMap<String, ServedFile>,
    /// Successful uploadimg calls per (corp id, emulator day).
    pub(crate) img_quota: HashMap<(String, u64), u32>,
    pub(crate) jobs: HashMap<String, Job>,
    pub(crate) faults: FaultTable,
    /// The request log, a ring buffer of `Rules::request_log_capacity` entries.
    pub(crate) requests: VecDeque<RecordedRequest>,
    /// Requests answered per endpoint name (`other` for any other path), since the start or
    /// the last clear; independent of the log's capacity.
    pub(crate) counts: BTreeMap<&'static str, u64>,
    /// Media that expired and were evicted.
    pub(crate) evicted_expired: u64,
    /// Media and images evicted for the byte budget.
    pub(crate) evicted_budget: u64,
    pub(crate) deliveries: Vec<CallbackDelivery>,
    /// `media/get` answers in flight per media id (for `max_concurrent_per_media`).
    pub(crate) in_flight: HashMap<String, usize>,
    /// 45033 answers given because of `max_concurrent_per_media`.
    pub(crate) throttled: u64,
}

pub(crate) struct State {
    pub(crate) config: MockConfig,
    pub(crate) base_url: String,
    inner: Mutex<Inner>,
    pub(crate) job_cv: Condvar,
    pub(crate) job_notify: tokio::sync::Notify,
    seed: RandomState,
    counter: AtomicU64,
    media_counter: AtomicU64,
    /// Bumped by every reset: work started before it (an upload_by_url job) stores nothing.
    generation: AtomicU64,
    /// Run-time settings (start from the config; `POST /__mock/settings` changes them).
    latency_ms: AtomicU64,
    /// 0 = unlimited.
    bandwidth: AtomicU64,
    /// 0 = no limit.
    max_concurrent: AtomicUsize,
    rules: RwLock<Arc<Rules>>,
    /// Where stored media bytes live.
    pub(crate) slabs: crate::slab::Slabs,
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// Standard base64: the strict mode's ids carry `+` and `/` (and `=`).
const STD_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The stats key of requests to paths that are no endpoint of the emulator.
pub(crate) const OTHER: &str = "other";

/// The emulator's network shape at run time (see [`crate::MockHandle::settings`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Settings {
    /// Added before every answer.
    pub latency: Duration,
    /// Bytes per second of each download body; `None` is unlimited.
    pub bandwidth: Option<u64>,
    /// 45033 above this many `media/get` answers in flight for one media id; `None` is off.
    pub max_concurrent_per_media: Option<usize>,
}

/// The emulator's rules at run time: they start from the [`MockConfig`] fields of the same
/// names and change with [`crate::MockHandle::set_rules`] or `POST /__mock/settings`; a reset
/// puts them back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// The size table.
    pub limits: Limits,
    /// Successful `uploadimg` calls per corp per emulator-clock day before 45009.
    pub upload_img_daily_quota: u32,
    /// The job-finished callback target, if any.
    pub callback: Option<CallbackTarget>,
    /// Media ids with `+ / =` (see [`MockConfig::strict_ids`]).
    pub strict_ids: bool,
    /// Entries the request log keeps.
    pub request_log_capacity: usize,
    /// Bytes media and images may hold together before the oldest go.
    pub max_media_bytes: u64,
}

impl Rules {
    fn from_config(config: &MockConfig) -> Rules {
        Rules {
            limits: config.limits.clone(),
            upload_img_daily_quota: config.upload_img_daily_quota,
            callback: config.callback.clone(),
            strict_ids: config.strict_ids,
            request_log_capacity: config.request_log_capacity,
            max_media_bytes: config.max_media_bytes,
        }
    }
}

/// Decrements a media id's in-flight count when the answer's body ends or is dropped.
#[derive(Debug)]
pub(crate) struct InFlight {
    state: Arc<State>,
    media_id: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut inner = self.state.lock();
        if let Some(n) = inner.in_flight.get_mut(&self.media_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                inner.in_flight.remove(&self.media_id);
            }
        }
    }
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl State {
    pub(crate) fn new(config: MockConfig, base_url: String) -> Self {
        let state = State {
            inner: Mutex::new(Inner::default()),
            job_cv: Condvar::new(),
            job_notify: tokio::sync::Notify::new(),
            seed: RandomState::new(),
            counter: AtomicU64::new(0),
            media_counter: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            latency_ms: AtomicU64::new(0),
            bandwidth: AtomicU64::new(0),
            max_concurrent: AtomicUsize::new(0),
            rules: RwLock::new(Arc::new(Rules::from_config(&config))),
            slabs: crate::slab::Slabs::default(),
            config,
            base_url,
        };
        state.set_settings(Settings {
            latency: state.config.latency,
            bandwidth: state.config.bandwidth,
            max_concurrent_per_media: state.config.max_concurrent_per_media,
        });
        state
    }

    /// The run-time settings now.
    pub(crate) fn settings(&self) -> Settings {
        let nonzero = |n: u64| (n > 0).then_some(n);
        Settings {
            latency: Duration::from_millis(self.latency_ms.load(Ordering::Relaxed)),
            bandwidth: nonzero(self.bandwidth.load(Ordering::Relaxed)),
            max_concurrent_per_media: Some(self.max_concurrent.load(Ordering::Relaxed))
                .filter(|&k| k > 0),
        }
    }

    /// Replaces the run-time settings.
    pub(crate) fn set_settings(&self, s: Settings) {
        self.latency_ms.store(
            u64::try_from(s.latency.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.bandwidth
            .store(s.bandwidth.unwrap_or(0), Ordering::Relaxed);
        self.max_concurrent
            .store(s.max_concurrent_per_media.unwrap_or(0), Ordering::Relaxed);
    }

    /// The rules now (a cheap shared copy).
    pub(crate) fn rules(&self) -> Arc<Rules> {
        self.rules.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the rules; a smaller log or byte budget applies at once.
    pub(crate) fn set_rules(&self, rules: Rules) {
        let capacity = rules.request_log_capacity;
        let budget = rules.max_media_bytes;
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(rules);
        let notes = {
            let mut inner = self.lock();
            while inner.requests.len() > capacity {
                inner.requests.pop_front();
            }
            if inner.requests.capacity() > capacity.saturating_mul(2).max(64) {
                inner.requests.shrink_to(capacity);
            }
            Self::over_budget(&mut inner, budget)
        };
        self.notes(notes);
    }

    /// Back to the start state: media, images, served files, tokens, jobs, quota, faults, the
    /// log and the counters go; the clock, settings and rules return to the configuration.
    pub(crate) fn reset(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.config.clock.reset();
        self.media_counter.store(0, Ordering::Relaxed);
        self.set_settings(Settings {
            latency: self.config.latency,
            bandwidth: self.config.bandwidth,
            max_concurrent_per_media: self.config.max_concurrent_per_media,
        });
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) =
            Arc::new(Rules::from_config(&self.config));
        let old = {
            let mut inner = self.lock();
            // The in-flight counts belong to answers still being sent; their guards end them.
            let in_flight = std::mem::take(&mut inner.in_flight);
            let old = std::mem::take(&mut *inner);
            inner.in_flight = in_flight;
            old
        };
        // Dropped outside the lock: freeing gigabytes of media takes a moment.
        drop(old);
        self.slabs.clear();
        self.job_cv.notify_all();
        self.job_notify.notify_waiters();
    }

    /// The reset generation now (see [`State::reset`]).
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Counts one more `media/get` answer in flight for `media_id`, or `None` (and one more
    /// 45033) when `max_concurrent_per_media` answers are in flight already.
    pub(crate) fn enter_media(self: &Arc<Self>, media_id: &str) -> Option<Option<InFlight>> {
        let limit = self.max_concurrent.load(Ordering::Relaxed);
        if limit == 0 {
            return Some(None);
        }
        let mut inner = self.lock();
        let n = inner.in_flight.entry(media_id.to_owned()).or_insert(0);
        if *n >= limit {
            inner.throttled += 1;
            return None;
        }
        *n += 1;
        Some(Some(InFlight {
            state: self.clone(),
            media_id: media_id.to_owned(),
        }))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A random-looking string of `len` characters from `[A-Za-z0-9_-]`, unique per call.
    pub(crate) fn random_id(&self, len: usize) -> String {
        self.random_chars(len, ALPHABET)
    }

    /// A new media id: `3` and 43 characters from WeCom's alphabet `[A-Za-z0-9_-]`. With
    /// `strict_ids`: the 1st, 3rd, 5th… id carries `+`, `/` and a trailing `=` for sure, the
    /// 2nd, 6th… is standard base64 (may carry `+`, `/`), the 4th, 8th… letters and digits.
    pub(crate) fn media_id(&self) -> String {
        if !self.rules().strict_ids {
            return format!("3{}", self.random_id(43));
        }
        let n = self.media_counter.fetch_add(1, Ordering::Relaxed);
        match n % 4 {
            // Every second id: `+`, `/` and a trailing `=` for sure.
            0 | 2 => {
                let mut chars = self.random_chars(43, STD_ALPHABET).into_bytes();
                chars[7] = b'+';
                chars[19] = b'/';
                chars[42] = b'=';
                format!("3{}", String::from_utf8_lossy(&chars))
            }
            // Standard base64: `+` or `/` now and then.
            1 => format!("3{}", self.random_chars(43, STD_ALPHABET)),
            // Letters and digits only, as most real ids look.
            _ => {
                let id: String = self
                    .random_chars(43, STD_ALPHABET)
                    .chars()
                    .map(|c| match c {
                        '+' => 'P',
                        '/' => 'S',
                        c => c,
                    })
                    .collect();
                format!("3{id}")
            }
        }
    }

    fn random_chars(&self, len: usize, alphabet: &[u8; 64]) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut out = String::with_capacity(len);
        let mut i = 0u64;
        while out.len() < len {
            let mut h = self.seed.hash_one((n, i));
            for _ in 0..10 {
                if out.len() == len {
                    break;
                }
                out.push(char::from(alphabet[(h & 63) as usize]));
                h >>= 6;
            }
            i += 1;
        }
        out
    }

    /// A random-looking number, different on every call (nonces, cipher prefixes).
    pub(crate) fn random_u64(&self) -> u64 {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        self.seed.hash_one((n, u64::MAX))
    }

    /// Records a callback delivery attempt and wakes [`crate::MockHandle`] waiters.
    pub(crate) fn record_delivery(&self, delivery: CallbackDelivery) {
        self.lock().deliveries.push(delivery);
        self.job_cv.notify_all();
    }

    /// Logs an answered request (the oldest entry goes when the log is full) and counts it.
    pub(crate) fn record(&self, request: RecordedRequest) {
        let capacity = self.rules().request_log_capacity;
        let key = request.endpoint.map_or(OTHER, Endpoint::name);
        let mut inner = self.lock();
        *inner.counts.entry(key).or_insert(0) += 1;
        if capacity == 0 {
            return;
        }
        while inner.requests.len() >= capacity {
            inner.requests.pop_front();
        }
        inner.requests.push_back(request);
    }

    pub(crate) fn now_ms(&self) -> u128 {
        self.config.clock.now().as_millis()
    }

    /// Checks `access_token`: the app index, or the errcode (41001 missing, 40014 unknown,
    /// 42001 expired).
    pub(crate) fn check_token(&self, token: Option<&str>) -> Result<usize, i64> {
        let token = match token {
            Some(t) if !t.is_empty() => t,
            _ => return Err(41001),
        };
        let now = self.now_ms();
        let inner = self.lock();
        match inner.tokens.get(token) {
            None => Err(40014),
            Some(entry) if now >= entry.expires_at_ms => Err(42001),
            Some(entry) => Ok(entry.app),
        }
    }

    /// Forgets the request log, the request counts and the 45033 counter; how many log
    /// entries were forgotten.
    pub(crate) fn clear_requests(&self) -> usize {
        let mut inner = self.lock();
        inner.throttled = 0;
        inner.counts.clear();
        let n = inner.requests.len();
        inner.requests = VecDeque::new();
        n
    }

    /// Every token issued so far answers 42001 from now on (gettoken issues new ones); how
    /// many tokens were live.
    pub(crate) fn expire_tokens(&self) -> usize {
        let now = self.now_ms();
        let mut inner = self.lock();
        let mut live = 0;
        for entry in inner.tokens.values_mut() {
            if entry.expires_at_ms > now {
                live += 1;
            }
            entry.expires_at_ms = 0;
        }
        inner.current_token.clear();
        live
    }

    /// Request counts by endpoint name (the path after `/cgi-bin/`; `mock-images`,
    /// `mock-files`; `other` for any other path), in name order, every name present.
    pub(crate) fn stats(&self) -> Vec<(String, u64)> {
        let inner = self.lock();
        let mut out: Vec<(String, u64)> = Endpoint::ALL
            .iter()
            .map(|e| e.name())
            .chain([OTHER])
            .map(|name| {
                (
                    name.to_owned(),
                    inner.counts.get(name).copied().unwrap_or(0),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// Stores a media as if uploaded now; the kind is `kind`, else taken from the content type
    /// (`image/*`, `audio/amr` → voice, `video/*`, else file).
    pub(crate) fn store_new_media(
        &self,
        kind: Option<MediaKind>,
        bytes: Bytes,
        content_type: &str,
        filename: &str,
        corp_id: Option<String>,
    ) -> String {
        let kind = kind.unwrap_or(if content_type.starts_with("image/") {
            MediaKind::Image
        } else if content_type.starts_with("audio/amr") {
            MediaKind::Voice
        } else if content_type.starts_with("video/") {
            MediaKind::Video
        } else {
            MediaKind::File
        });
        self.store_media(StoredMedia {
            kind,
            bytes,
            content_type: content_type.to_owned(),
            filename: filename.to_owned(),
            created_at: self.config.clock.now_unix(),
            corp_id,
        })
    }

    /// Stores a media and returns its new id. Expired media go first, then the oldest entries
    /// while the store is over its byte budget.
    pub(crate) fn store_media(&self, media: StoredMedia) -> String {
        let id = self.media_id();
        let budget = self.rules().max_media_bytes;
        let notes = {
            let mut inner = self.lock();
            self.sweep_expired(&mut inner);
            inner.store.insert_media(id.clone(), media);
            Self::over_budget(&mut inner, budget)
        };
        self.notes(notes);
        id
    }

    /// Stores an uploadimg image under its path, within the byte budget.
    pub(crate) fn store_image(
        &self,
        inner: &mut Inner,
        key: String,
        file: ServedFile,
    ) -> Vec<String> {
        let budget = self.rules().max_media_bytes;
        self.sweep_expired(inner);
        inner.store.insert_image(key, file);
        Self::over_budget(inner, budget)
    }

    /// Removes a media (`DELETE /__mock/media/{id}`); whether it was there.
    pub(crate) fn delete_media(&self, id: &str) -> bool {
        self.lock().store.remove_media(id)
    }

    /// Evicts the media that expired on the emulator's clock.
    pub(crate) fn evict_expired(&self) {
        let mut inner = self.lock();
        self.sweep_expired(&mut inner);
    }

    fn sweep_expired(&self, inner: &mut Inner) {
        let now = self.config.clock.now_unix();
        let gone = inner
            .store
            .evict_expired(now, self.config.media_lifetime.as_secs());
        inner.evicted_expired += gone as u64;
    }

    /// Evicts the oldest entries past `budget`; a note for each.
    fn over_budget(inner: &mut Inner, budget: u64) -> Vec<String> {
        let gone = inner.store.evict_over_budget(budget);
        inner.evicted_budget += gone.len() as u64;
        gone.into_iter()
            .map(|Evicted { what, key, bytes }| {
                format!(
                    "evicted {what} {key} ({bytes} bytes): the stored media passed \
                     max_media_bytes ({budget} bytes)"
                )
            })
            .collect()
    }

    /// Hands notes to the `on_note` hook.
    pub(crate) fn notes(&self, notes: Vec<String>) {
        if let Some(hook) = &self.config.on_note {
            for note in &notes {
                hook(note);
            }
        }
    }

    /// The media if it exists, has not expired and `corp_id` (the caller's corp) may see it.
    /// An expired media is evicted on the way.
    pub(crate) fn live_media(&self, id: &str, corp_id: Option<&str>) -> Option<StoredMedia> {
        let now = self.config.clock.now_unix();
        let life = self.config.media_lifetime.as_secs();
        let mut inner = self.lock();
        let m = inner.store.media(id)?;
        if now >= m.created_at.saturating_add(life) {
            self.sweep_expired(&mut inner);
            return None;
        }
        let visible = match (&m.corp_id, corp_id) {
            (Some(owner), Some(caller)) => owner == caller,
            _ => true,
        };
        visible.then(|| m.clone())
    }

    /// Sets a job's final status, wakes waiters and calls the hook; how the job ended, or
    /// `None` for an unknown job.
    pub(crate) fn finish_job(&self, job_id: &str, status: JobStatus) -> Option<JobFinished> {
        let corp_id = {
            let mut inner = self.lock();
            let job = inner.jobs.get_mut(job_id)?;
            job.status = status.clone();
            job.corp_id.clone()
        };
        self.job_cv.notify_all();
        self.job_notify.notify_waiters();
        let (errcode, media_id) = match status {
            JobStatus::Finished { media_id, .. } => (0, Some(media_id)),
            JobStatus::Failed { errcode } => (errcode, None),
            JobStatus::Processing => return None,
        };
        let finished = JobFinished {
            job_id: job_id.to_owned(),
            corp_id,
            errcode,
            media_id,
        };
        if let Some(hook) = &self.config.on_job_finished {
            hook(&finished);
        }
        Some(finished)
    }
}
