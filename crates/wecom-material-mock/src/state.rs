//! The emulator's shared state: tokens, media, jobs, quotas, faults and the request log.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use bytes::Bytes;

use crate::callback::CallbackDelivery;
use crate::config::{JobFinished, MediaKind, MockConfig};
use crate::fault::FaultTable;
use crate::record::RecordedRequest;

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
    pub(crate) media: HashMap<String, StoredMedia>,
    /// Images from uploadimg, keyed by the path after `/mock-images/`.
    pub(crate) images: HashMap<String, ServedFile>,
    /// Files for upload_by_url, keyed by the path after `/mock-files/`.
    pub(crate) served: HashMap<String, ServedFile>,
    /// Successful uploadimg calls per (corp id, emulator day).
    pub(crate) img_quota: HashMap<(String, u64), u32>,
    pub(crate) jobs: HashMap<String, Job>,
    pub(crate) faults: FaultTable,
    pub(crate) requests: Vec<RecordedRequest>,
    pub(crate) deliveries: Vec<CallbackDelivery>,
}

pub(crate) struct State {
    pub(crate) config: MockConfig,
    pub(crate) base_url: String,
    inner: Mutex<Inner>,
    pub(crate) job_cv: Condvar,
    pub(crate) job_notify: tokio::sync::Notify,
    seed: RandomState,
    counter: AtomicU64,
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

impl State {
    pub(crate) fn new(config: MockConfig, base_url: String) -> Self {
        State {
            config,
            base_url,
            inner: Mutex::new(Inner::default()),
            job_cv: Condvar::new(),
            job_notify: tokio::sync::Notify::new(),
            seed: RandomState::new(),
            counter: AtomicU64::new(0),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A random-looking string of `len` characters from `[A-Za-z0-9_-]`, unique per call.
    pub(crate) fn random_id(&self, len: usize) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut out = String::with_capacity(len);
        let mut i = 0u64;
        while out.len() < len {
            let mut h = self.seed.hash_one((n, i));
            for _ in 0..10 {
                if out.len() == len {
                    break;
                }
                out.push(char::from(ALPHABET[(h & 63) as usize]));
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

    /// Stores a media and returns its new id.
    pub(crate) fn store_media(&self, media: StoredMedia) -> String {
        let id = format!("3{}", self.random_id(43));
        self.lock().media.insert(id.clone(), media);
        id
    }

    /// The media if it exists and has not expired.
    pub(crate) fn live_media(&self, id: &str) -> Option<StoredMedia> {
        let now = self.config.clock.now_unix();
        let life = self.config.media_lifetime.as_secs();
        let inner = self.lock();
        let m = inner.media.get(id)?;
        (now < m.created_at.saturating_add(life)).then(|| m.clone())
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
