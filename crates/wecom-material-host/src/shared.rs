//! What the calls of one client share, whatever its HTTP library.

use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Instant, SystemTime};

use wecom_material_core::callback::CallbackEvent;
use wecom_material_core::operation::Operation;
use wecom_material_core::ops::upload_by_url::UploadByUrl;
use wecom_material_core::ops::upload_by_url_result::GetUploadByUrlResult;
use wecom_material_core::ops::upload_image::UploadImage;
use wecom_material_core::ops::upload_media::UploadMedia;
use wecom_material_core::task::{CallTask, ClientState, JobWaitTask, Seeds, Timeouts, UploadInput};
use wecom_material_core::{ClientSettings, DownloadOptions, DownloadTask, Error, JobId, MediaId};
use wecom_material_core::{MediaType, ResumeRecord, StoredToken};

/// The state the tasks of one client share (the core's [`ClientState`] behind a lock) and
/// the loops waiting for a wake-up.
#[derive(Debug)]
struct ClientCore {
    state: Mutex<ClientState>,
    /// Wakers of the loops in a wakeable wait, registered while they held the state's lock
    /// (so no wake-up is missed); each is woken once.
    waiting: Mutex<Vec<Waker>>,
}

impl ClientCore {
    fn lock(&self) -> MutexGuard<'_, ClientState> {
        // Plain data: keep using it after a panic elsewhere.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wake_all(&self) {
        let waiting = std::mem::take(&mut *self.waiting.lock().unwrap_or_else(|e| e.into_inner()));
        waiting.into_iter().for_each(Waker::wake);
    }
}

/// What the calls of one client share, whatever its HTTP library: the core's state behind a
/// lock and the wake-ups of waiting tasks, its settings, seeds and token store; and the task
/// each of the clients' operations runs, so that the blocking and the async client build them
/// the same way. A client adds its HTTP library.
pub struct Shared<S: ?Sized> {
    core: Arc<ClientCore>,
    /// The client's settings.
    pub settings: ClientSettings,
    /// The client's token store, if it shares its token.
    pub store: Option<Arc<S>>,
    seeds: Seeds,
}

/// A cloneable handle that feeds callback events to the job waits of one client (and its
/// clones), obtained from the client's `job_events`. Give it to the code that receives
/// WeCom's callbacks (after
/// [`CallbackHandler`](wecom_material_core::callback::CallbackHandler) verified and parsed
/// them). Events that arrive while no call waits are dropped: a wait that starts later polls
/// first, so it sees a job that has already ended.
#[derive(Clone)]
pub struct JobEvents(Arc<ClientCore>);

impl std::fmt::Debug for JobEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let waiting = self.0.lock().waiting_jobs();
        write!(f, "JobEvents {{ waiting_calls: {waiting} }}")
    }
}

impl JobEvents {
    /// Hands `event` to every call waiting now and wakes them.
    pub fn notify(&self, event: &CallbackEvent) {
        if self.0.lock().deliver_event(event) {
            self.0.wake_all();
        }
    }
}

impl<S: ?Sized> std::fmt::Debug for Shared<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("base", &self.settings.base)
            .field("store", &self.store.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: ?Sized> Shared<S> {
    /// The shared part of a new client; its seeds are keyed from the standard library's
    /// per-process randomness.
    pub fn new(settings: ClientSettings, store: Option<Arc<S>>) -> Self {
        let state = Mutex::new(ClientState::for_client(&settings));
        Self {
            core: Arc::new(ClientCore {
                state,
                waiting: Mutex::default(),
            }),
            seeds: Seeds::new(RandomState::new().hash_one(0u8)),
            settings,
            store,
        }
    }

    /// The core's state, locked (briefly: around a task's `poll` or `on_event`).
    pub fn lock(&self) -> MutexGuard<'_, ClientState> {
        self.core.lock()
    }

    /// Registers `waker` for the next wake-up of this client's waiting tasks. Call it while
    /// holding `state` (the lock of the poll that said `Wait { wakeable: true }`), so that no
    /// wake-up is missed. A waker that would wake the same loop as one already registered is
    /// not added again (a loop that waits turn after turn registers once).
    pub fn register(&self, state: &MutexGuard<'_, ClientState>, waker: Waker) {
        let _held = state;
        let mut waiting = self.core.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if !waiting
            .iter()
            .any(|registered| registered.will_wake(&waker))
        {
            waiting.push(waker);
        }
    }

    /// Wakes every task of this client in a wakeable wait (a task returned `WakeOthers`).
    pub fn wake_all(&self) {
        self.core.wake_all();
    }

    /// The handle that feeds callback events to this client's job waits.
    pub fn job_events(&self) -> JobEvents {
        JobEvents(Arc::clone(&self.core))
    }

    /// The cached token, for a store shared between processes (the CLI's token file).
    pub fn export_token(&self) -> Option<StoredToken> {
        self.lock().export_token(Instant::now(), SystemTime::now())
    }

    /// Adopts a token from a shared store, and wakes the tasks waiting for one.
    pub fn import_token(&self, stored: StoredToken) {
        let adopted = self
            .lock()
            .import_token(stored, Instant::now(), SystemTime::now());
        if adopted {
            self.wake_all();
        }
    }

    /// A JSON call of `op`, or an upload's call with media timeouts.
    pub fn call<O: Operation>(&self, op: O, timeouts: Timeouts) -> CallTask<O> {
        CallTask::for_client(op, &self.settings, timeouts, self.seeds.next())
    }

    /// The upload of temporary media `input` as `kind`.
    pub fn upload(
        &self,
        kind: MediaType,
        input: &UploadInput,
    ) -> Result<CallTask<UploadMedia>, Error> {
        let op = input.upload_media(kind, self.seeds.boundary(), &self.settings.limits)?;
        Ok(self.call(op, Timeouts::Media))
    }

    /// The upload of an image for a permanent URL.
    pub fn upload_image(&self, input: &UploadInput) -> Result<CallTask<UploadImage>, Error> {
        let op = input.upload_image(self.seeds.boundary(), &self.settings.limits)?;
        Ok(self.call(op, Timeouts::Media))
    }

    /// A download into a stream (one lane, in order).
    pub fn download(&self, id: &MediaId, options: DownloadOptions) -> Result<DownloadTask, Error> {
        let options = options.connections(1);
        DownloadTask::new(id.clone(), options, &self.settings, self.seeds.next())
    }

    /// A download into memory: at most `options.max_len` bytes, by default the client's
    /// in-memory limit.
    pub fn get(&self, id: &MediaId, options: DownloadOptions) -> Result<DownloadTask, Error> {
        let max_len = options.max_len.unwrap_or(self.settings.max_in_memory);
        self.download(id, options.max_len(max_len))
    }

    /// A download in ranges into a file, resuming from `record`.
    pub fn download_file(
        &self,
        id: &MediaId,
        options: DownloadOptions,
        record: Option<ResumeRecord>,
    ) -> Result<DownloadTask, Error> {
        let seed = self.seeds.next();
        DownloadTask::in_ranges(id.clone(), options, &self.settings, seed, record)
    }

    /// A save of `id` to `target` (a directory or a file path), ready to drive: see
    /// [`SaveJob`](crate::SaveJob).
    pub fn save<'a>(
        &self,
        id: &MediaId,
        target: &std::path::Path,
        options: &crate::SaveOptions<'a>,
    ) -> Result<crate::SaveJob<'a>, Error> {
        // Checked before a part file is made for it (a 70,000-character id left an empty
        // `.part` behind).
        id.validate()?;
        crate::SaveJob::start(&self.settings, self.seeds.next(), id, target, options)
    }

    /// Asking WeCom to fetch a file from `url`.
    pub fn upload_by_url(
        &self,
        kind: MediaType,
        filename: &str,
        url: &str,
        md5: &str,
    ) -> Result<CallTask<UploadByUrl>, Error> {
        let op = UploadByUrl::for_client(kind, filename, url, md5, &self.settings)?;
        Ok(self.call(op, Timeouts::Json))
    }

    /// Asking how a job stands.
    pub fn job_result(&self, jobid: &JobId) -> Result<CallTask<GetUploadByUrlResult>, Error> {
        Ok(self.call(GetUploadByUrlResult::new(jobid.clone())?, Timeouts::Json))
    }

    /// The upload of a local file `input` through object storage (see the core's `relay`
    /// module): the wall clock and the object key's entropy are taken here.
    #[cfg(feature = "s3-relay")]
    pub fn relay(
        &self,
        kind: MediaType,
        input: &UploadInput,
        relay: &wecom_material_core::relay::BucketRelay,
        options: wecom_material_core::relay::RelayOptions,
    ) -> Result<wecom_material_core::relay::RelayUploadTask, Error> {
        let clock = (Instant::now(), SystemTime::now());
        let (entropy, seed) = (self.seeds.next(), self.seeds.next());
        let settings = &self.settings;
        wecom_material_core::relay::RelayUploadTask::new(
            kind, input, relay, options, settings, clock, entropy, seed,
        )
    }

    /// Waiting for a job until `deadline`.
    pub fn wait_job(&self, jobid: &JobId, deadline: Instant) -> Result<JobWaitTask, Error> {
        JobWaitTask::new(jobid.clone(), deadline, &self.settings, self.seeds.next())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use super::*;

    #[derive(Default)]
    struct Counted(AtomicUsize);

    impl Wake for Counted {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_loop_registered_turn_after_turn_is_held_and_woken_once() {
        let shared = Shared::<()>::new(ClientSettings::new("corp", "secret"), None);
        let (this, other) = (Arc::new(Counted::default()), Arc::new(Counted::default()));
        for _ in 0..3 {
            shared.register(&shared.lock(), Waker::from(Arc::clone(&this)));
        }
        shared.register(&shared.lock(), Waker::from(Arc::clone(&other)));
        assert_eq!(shared.core.waiting.lock().unwrap().len(), 2);
        shared.wake_all();
        assert_eq!(this.0.load(Ordering::SeqCst), 1);
        assert_eq!(other.0.load(Ordering::SeqCst), 1);
        assert!(shared.core.waiting.lock().unwrap().is_empty());
    }
}
