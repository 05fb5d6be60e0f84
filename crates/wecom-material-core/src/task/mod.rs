//! Whole operations: one value per user intent, driven by a transport through one small
//! polling interface — the only protocol of this crate.
//!
//! A user asks for "upload this file", "download this media into that file with 4
//! connections, resuming what a previous run left", "wait for this job". Each intent is one
//! [`Task`] — [`CallTask`] (any JSON call: uploads, upload-image, upload-by-url, job result),
//! [`DownloadTask`] (one stream, or ranges on several lanes) and [`JobWaitTask`] — that owns
//! every decision of the whole operation: which request next, whether to read a body whole
//! or stream it and how many bytes, where they go, when to back off, when to wait for another
//! task's token refresh, when to wake the others, how many ranges run at once, when to flush
//! the sink. The transport moves bytes, sleeps and wakes; it combines nothing.
//!
//! # The loop every transport implements
//!
//! ```text
//! let mut task = DownloadTask::new(media_id, options, &settings, seed)?;  // or CallTask, JobWaitTask
//! let mut task = Controlled::new(&mut task, transfer);  // the caller's cancel flag, deadline, progress
//! loop {
//!     let action = task.poll(clock.now(), &mut state.lock());     // lock held briefly
//!     match action {
//!         // A step of a lane's exchange: run it, in order per lane; steps of different lanes
//!         // may run at once (or one after the other: slower, never wrong). Poll again right
//!         // after starting one; its event is reported when it is done.
//!         Action::Exchange(lane, step) => start(lane, move || match step {
//!             Exchange::Send { request, timeouts } => match send(request, timeouts) {
//!                 Ok(head)   => Event::Head(head),    // keep the body for the lane's next steps
//!                 Err(error) => Event::TransportFailed(error),
//!             },
//!             Exchange::ReadBody { limit } => read_whole_body(lane, limit),
//!                                      // Event::Body / TransportFailed / Local(over the limit)
//!             Exchange::Stream { max, at } => match read_some(lane, max) {  // 1 ..= max bytes
//!                 Ok(b) if b.is_empty() => Event::BodyEnd,
//!                 Ok(b) => match sink.write_at(at, &b) {       // a stream: just write
//!                     Ok(())  => Event::Written(b.len()),
//!                     Err(e)  => Event::Local(Error::io(..)),
//!                 },
//!                 Err(e) => Event::TransportFailed(..),
//!             },
//!             Exchange::Write { at, bytes } => write_at(at, bytes),  // Written / Local
//!             Exchange::FlushSink => Event::Flushed(sink.flush().err()),
//!             Exchange::Store(command) => Event::from_store(store, command),
//!         }),
//!         Action::Wait { until, wakeable } => {
//!             // (registered for wake-ups before the state lock was released, if wakeable)
//!             if let Some((lane, event)) = next_event_or_wake_or(until) {
//!                 task.on_event(clock.now(), &mut state.lock(), lane, event);
//!             }
//!         }
//!         Action::WakeOthers => wake_every_waiting_task_of_this_client(),
//!         Action::Done(result) => return result,
//!     }
//! }
//! ```
//!
//! [`Controlled`] makes every decision about the caller's [`Transfer`](crate::Transfer), so
//! that no transport repeats them: it cancels the task once when the cancel flag is set;
//! counts the deadline from the first poll, caps every `Wait` at it (an async transport
//! wakes for it), cancels the task once it passed and turns the [`Error::Cancelled`] the task
//! ends with into [`Error::DeadlineExceeded`]; and reports [`Task::progress`] to the observer
//! after each `Written` event. A blocking transport cannot interrupt a step in flight (an
//! upload's body, a wait for an answer): the idle timeout bounds it, and the cancel or the
//! deadline takes effect at the poll after it.
//!
//! A transport that runs each step at once, in the loop, and reports its event before
//! polling again is correct too (ureq's does it for lane 0, running the other lanes each on a
//! thread); hyper's and the reqwest example run every lane's step as a future. The body
//! moves of a step are written once: [`blocking`] over a `Read`, [`chunked`] over an async
//! library's chunks.
//!
//! Rules for the transport:
//! * After an exchange step, report exactly one event on its lane: `Send` → `Head` or
//!   `TransportFailed`; `ReadBody` → `Body`, `TransportFailed` or `Local`; `Stream` →
//!   `Written(n)` with `1 ..= max` bytes that reached the sink at `at`, `BodyEnd`,
//!   `TransportFailed` or `Local`; `Write` → `Written(len)` or `Local`; `FlushSink` →
//!   `Flushed`; `Store` → `Store`. Any other report is a misuse: the task ends with
//!   [`Error::Transport`] saying so (it never panics).
//! * `Send` with a [`Body::Upload`]: the body is [`UploadFrames`] (blocking: an
//!   [`UploadReader`]) over the transport's upload source, rewound for each attempt; a frame
//!   error is reported as `Local` (cancelled, the file changed length).
//! * `Wait { wakeable: true }` ends early when another task of the same client returned
//!   `WakeOthers` (a token refresh ended) or when a callback event was delivered with
//!   [`ClientState::deliver_job_finished`] (which returns whether to wake). `Wait` also ends
//!   when a lane's step is reported.
//! * `cancel` may be called at any time; a download then flushes its sink and ends with
//!   [`Error::Cancelled`] holding the bytes that reached the sink (a lane's outstanding step
//!   is still reported first); a JSON call, an upload or a job wait ends at the next poll,
//!   without waiting for its outstanding step (the transport drops it), an upload's error
//!   counting the payload bytes sent. A transport whose future is dropped calls `cancel`
//!   from its drop guard.
//! * A sink that cannot seek (a stream) serves one-lane tasks only: a [`DownloadTask`] made
//!   with [`DownloadTask::in_ranges`] (for a file) writes at offsets from lanes `1..=N`; one
//!   made with [`DownloadTask::new`] writes in order from lane 0 (given `connections` > 1 it
//!   runs in ranges too: give it a positioned sink).
//! * A transport sends requests with redirects off (the token is in the query string), reads
//!   JSON bodies only up to the `limit` given, and logs URIs through [`RedactedUri`].
//!
//! # Shared state
//!
//! The tasks of one client share one [`ClientState`] (the token cache and the mailboxes of
//! job waits): plain data the transport keeps behind its lock, passed to every `poll` and
//! `on_event`. A client given a token store ([`ClientState::for_client`] with
//! `settings.shared_token`) also keeps the store itself and runs its [`Exchange::Store`] steps on it.

pub mod blocking;
mod call_task;
pub mod chunked;
mod controlled;
mod download_task;
mod job_wait_task;
mod parallel_download;
mod payload;
mod payload_digest;
mod seeds;

use std::fmt;
use std::time::{Instant, SystemTime};

use bytes::Bytes;

#[cfg(feature = "s3-relay")]
pub(crate) use call_task::CallMachine;
pub use call_task::CallTask;
pub use controlled::Controlled;
pub use download_task::DownloadOptions;
#[cfg(feature = "s3-relay")]
pub(crate) use job_wait_task::JobWaitMachine;
pub use job_wait_task::JobWaitTask;
pub use parallel_download::{DownloadTask, PROBE_LEN, ResumeRecord};
pub use payload::{
    NextFrame, PayloadMeter, Upload, UploadFrames, UploadInput, UploadPlan, UploadReader,
};
pub use payload_digest::PayloadDigest;
pub use seeds::Seeds;

use crate::body::Body;
use crate::client_settings::ClientSettings;
use crate::error::{Error, TransportError};
use crate::job_wait::Mailboxes;
use crate::media_type::JobId;
use crate::ops::gettoken::GetToken;
use crate::secret::RedactedUri;
use crate::shared_token::{AsyncTokenStore, StoreCommand, StoreError, StoreReply, TokenStore};
use crate::token_cache::{StoredToken, TokenCache};

/// Which of the transport's timeout profiles a request uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeouts {
    /// A JSON call (gettoken, upload-by-url, job result): one overall timeout.
    Json,
    /// A media transfer (upload or download): an idle timeout, no overall cut per request
    /// (the caller's [`Transfer::deadline`](crate::Transfer::deadline) bounds the operation).
    Media,
}

/// One lane of a task: one exchange at a time (a request, then its body). A task with one
/// exchange at a time uses [`LaneId::MAIN`]; a parallel download runs its ranges on lanes
/// `1 ..= connections`, whose exchanges a transport may run at once (quinn-proto's streams of
/// one connection are the model). A lane id is reused when the range on it ended, so a
/// transport that keeps one connection per lane keeps it warm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct LaneId(pub u16);

impl LaneId {
    /// The lane of a task's own exchanges (and of a one-lane download).
    pub const MAIN: LaneId = LaneId(0);
}

/// What the transport does next for a [`Task`].
// An action lives for one turn of the loop and is matched at once: boxing the request would
// cost an allocation per request for no gain.
#[allow(clippy::large_enum_variant)]
pub enum Action<T> {
    /// An exchange step on a lane: perform it, then report exactly one [`Event`] for it with
    /// [`Task::on_event`] on that lane. Until then the lane is busy and the task hands out
    /// nothing more for it, but it may hand out steps of other lanes, which the transport may
    /// run at the same time.
    Exchange(LaneId, Exchange),
    /// Nothing to start now: poll again when an exchange step of a busy lane was reported,
    /// at `until` (if any), or — if `wakeable` — when another task of this client returned
    /// [`Action::WakeOthers`] or a callback event was delivered
    /// ([`ClientState::deliver_job_finished`]), whichever comes first.
    Wait {
        /// The latest time to poll again; `None`: only after an event (or a wake-up).
        until: Option<Instant>,
        /// Whether a wake-up ends the wait.
        wakeable: bool,
    },
    /// Wake every task of this client that waits with `wakeable`, then poll again.
    WakeOthers,
    /// The operation is over.
    Done(Result<T, Error>),
}

/// One step of a lane's exchange with the server, the sink or the token store; each is
/// answered by exactly one [`Event`].
// Matched at once by the transport: boxing the request would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
pub enum Exchange {
    /// Send this request (an upload's external payload comes from the transport's source:
    /// see [`UploadFrames`]), then report [`Event::Head`] or [`Event::TransportFailed`]. The
    /// lane's previous response body, if any, is dropped.
    Send {
        /// The request.
        request: http::Request<Body>,
        /// Which timeouts apply.
        timeouts: Timeouts,
    },
    /// Read the rest of the lane's response body, at most `limit` bytes (a longer body is
    /// reported as [`Event::Local`] with a decode error), then report [`Event::Body`].
    ReadBody {
        /// The most bytes to read.
        limit: usize,
    },
    /// Move at most `max` bytes of the lane's response body into the sink at byte `at`, then
    /// report [`Event::Written`], [`Event::BodyEnd`], [`Event::TransportFailed`] or
    /// [`Event::Local`].
    Stream {
        /// The most bytes to move in this step (never 0).
        max: u64,
        /// Where the bytes go: the offset of the first one in the media (a sink that cannot
        /// seek, a stream, is only given to one-lane tasks, whose writes come in order).
        at: u64,
    },
    /// Write these bytes (a short body the task read whole to classify it) into the sink at
    /// byte `at`, then report [`Event::Written`] with their length, or [`Event::Local`].
    Write {
        /// The offset of the first byte in the media.
        at: u64,
        /// The bytes.
        bytes: Bytes,
    },
    /// Flush the sink (durably, for a file), then report [`Event::Flushed`].
    FlushSink,
    /// Run this command on the client's shared token store (see [`TokenStore`] and
    /// [`AsyncTokenStore`]), then report [`Event::Store`]. Only a client configured with a
    /// store is handed this.
    Store(StoreCommand),
}

impl<T> Action<T> {
    /// The lane of an exchange step; `None` for `Wait`, `WakeOthers` and `Done`.
    pub fn lane(&self) -> Option<LaneId> {
        match self {
            Action::Exchange(lane, _) => Some(*lane),
            Action::Wait { .. } | Action::WakeOthers | Action::Done(_) => None,
        }
    }

    /// The same step on `to` (for a task that runs inner tasks on lanes of its own).
    pub(crate) fn on_lane(self, to: LaneId) -> Self {
        match self {
            Action::Exchange(_, step) => Action::Exchange(to, step),
            other => other,
        }
    }

    /// For a task that runs another one inside it: every action but `Done` passed on as the
    /// outer task's own, `Done` handed back as `Err(result)` for the outer task to decide.
    pub(crate) fn forward<U>(self) -> Result<Action<U>, Result<T, Error>> {
        Ok(match self {
            Action::Exchange(lane, step) => Action::Exchange(lane, step),
            Action::Wait { until, wakeable } => Action::Wait { until, wakeable },
            Action::WakeOthers => Action::WakeOthers,
            Action::Done(result) => return Err(result),
        })
    }

    /// Whether this is a wait that another task's wake-up may end early (`Wait` with
    /// `wakeable`); a transport registers for wake-ups before it releases the shared state.
    pub fn is_wakeable(&self) -> bool {
        matches!(self, Action::Wait { wakeable: true, .. })
    }
}

impl<T: fmt::Debug> fmt::Debug for Action<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Exchange(lane, step) => write!(f, "{step:?} on {lane:?}"),
            Action::Wait { until, wakeable } => {
                write!(f, "Wait({until:?}, wakeable: {wakeable})")
            }
            Action::WakeOthers => f.write_str("WakeOthers"),
            Action::Done(result) => f.debug_tuple("Done").field(result).finish(),
        }
    }
}

impl fmt::Debug for Exchange {
    /// A `Send` shows the method and the URI with the token and secret masked.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exchange::Send { request, timeouts } => write!(
                f,
                "Send({} {}, {timeouts:?})",
                request.method(),
                RedactedUri(request.uri())
            ),
            Exchange::ReadBody { limit } => write!(f, "ReadBody({limit})"),
            Exchange::Stream { max, at } => write!(f, "Stream({max} at {at})"),
            Exchange::Write { at, bytes } => write!(f, "Write({} bytes at {at})", bytes.len()),
            Exchange::FlushSink => f.write_str("FlushSink"),
            Exchange::Store(command) => f.debug_tuple("Store").field(command).finish(),
        }
    }
}

/// What the transport reports after an [`Action`].
#[derive(Debug)]
pub enum Event {
    /// The response head of the request sent (its body is still unread).
    Head(http::response::Parts),
    /// The whole body asked for by [`Exchange::ReadBody`].
    Body(Bytes),
    /// This many bytes (1 ..= the `max` asked for) reached the sink.
    Written(u64),
    /// The body ended (no more bytes) while streaming.
    BodyEnd,
    /// Sending or receiving failed in the network.
    TransportFailed(TransportError),
    /// A local failure: the sink or the upload source failed, a body was longer than the
    /// limit. The operation ends with it.
    Local(Error),
    /// The sink was flushed (`None`) or the flush failed.
    Flushed(Option<std::io::Error>),
    /// The shared token store's reply to [`Exchange::Store`], or why there is none.
    Store(Result<StoreReply, StoreError>),
}

impl Event {
    /// Runs `command` on a blocking transport's `store` and reports it; with no store (a
    /// misconfigured client), a store error.
    pub fn from_store(store: Option<&dyn TokenStore>, command: StoreCommand) -> Event {
        Event::Store(match store {
            Some(store) => store.run(command),
            None => Err(StoreError::new("no token store is configured")),
        })
    }

    /// Runs `command` on an async transport's `store` and reports it (see
    /// [`Event::from_store`]).
    pub async fn from_async_store(
        store: Option<&dyn AsyncTokenStore>,
        command: StoreCommand,
    ) -> Event {
        Event::Store(match store {
            Some(store) => store.run(command).await,
            None => Err(StoreError::new("no token store is configured")),
        })
    }
}

impl Event {
    /// The event that answers writing `len` bytes to the sink ([`Exchange::Write`], or a
    /// streamed buffer): [`Event::Written`], or the sink's failure.
    pub fn written(result: std::io::Result<()>, len: usize) -> Event {
        match result {
            Ok(()) => Event::Written(len as u64),
            Err(e) => Event::Local(Error::io("writing the download", e)),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Event::Head(_) => "Head",
            Event::Body(_) => "Body",
            Event::Written(_) => "Written",
            Event::BodyEnd => "BodyEnd",
            Event::TransportFailed(_) => "TransportFailed",
            Event::Local(_) => "Local",
            Event::Flushed(_) => "Flushed",
            Event::Store(_) => "Store",
        }
    }
}

/// A failure in the network is reported as such: a transport's `?` turns the
/// [`TransportError`] it made of its HTTP library's error into [`Event::TransportFailed`].
impl From<TransportError> for Event {
    fn from(error: TransportError) -> Self {
        Event::TransportFailed(error)
    }
}

/// A response head from its status and headers, for a transport whose HTTP library does
/// not hand out `http::response::Parts` (its [`Event::Head`]).
pub fn response_head(status: http::StatusCode, headers: http::HeaderMap) -> http::response::Parts {
    let mut head = http::Response::new(()).into_parts().0;
    (head.status, head.headers) = (status, headers);
    head
}

/// The error a task ends with when the transport reports an event that does not answer the
/// last action.
pub(crate) fn misuse(event: &Event, expected: &str) -> Error {
    Error::Transport(TransportError::maybe_sent(format!(
        "transport misuse: {} reported where {expected} was due",
        event.name()
    )))
}

/// The state the tasks of one client share: the token cache and the mailboxes of the job
/// waits. Plain data; the transport keeps it behind its lock.
#[derive(Debug)]
pub struct ClientState {
    /// The app's access token.
    pub(crate) tokens: TokenCache,
    pub(crate) mailboxes: Mailboxes<JobId>,
}

impl ClientState {
    /// The state of a new client for these credentials.
    pub fn new(credentials: GetToken) -> Self {
        Self {
            tokens: TokenCache::new(credentials),
            mailboxes: Mailboxes::default(),
        }
    }

    /// The state of a new client with `settings`: its token cache asks the shared store when
    /// the settings name one ([`ClientSettings::shared_token`]).
    pub fn for_client(settings: &ClientSettings) -> Self {
        let credentials = GetToken::new(settings.corp_id.clone(), settings.secret.clone());
        let mut state = Self::new(credentials);
        if let Some(policy) = settings.shared_token {
            state.tokens = state.tokens.with_shared_store(policy);
        }
        state
    }

    /// Hands the news that `job_id` ended to every job wait of this client. Returns whether
    /// any waits: the transport then wakes its waiting tasks.
    pub fn deliver_job_finished(&mut self, job_id: &JobId) -> bool {
        self.mailboxes.deliver(job_id)
    }

    /// Hands a received callback event to the job waits (see
    /// [`ClientState::deliver_job_finished`]); events without a job id are ignored.
    #[cfg(feature = "callback")]
    pub fn deliver_event(&mut self, event: &crate::callback::CallbackEvent) -> bool {
        event
            .job_id()
            .is_some_and(|job_id| self.deliver_job_finished(job_id))
    }

    /// The token held, for a store shared between processes (a file, another process);
    /// `wall` is the wall clock at the moment `now`.
    pub fn export_token(&self, now: Instant, wall: SystemTime) -> Option<StoredToken> {
        self.tokens.export(now, unix_seconds(wall))
    }

    /// Adopts a token from a shared store (see [`TokenCache::import`]). Returns whether it
    /// was adopted: tasks waiting for a token should then be woken.
    pub fn import_token(&mut self, stored: StoredToken, now: Instant, wall: SystemTime) -> bool {
        self.tokens.import(stored, now, unix_seconds(wall))
    }

    /// How many job waits are open (for tests and diagnostics).
    pub fn waiting_jobs(&self) -> usize {
        self.mailboxes.open_count()
    }
}

fn unix_seconds(wall: SystemTime) -> u64 {
    let since = wall.duration_since(SystemTime::UNIX_EPOCH);
    since.map_or(0, |d| d.as_secs())
}

/// One whole operation, driven by a transport (see the [module documentation](self)).
///
/// Never panics, whatever the order of calls or the events reported: a report that answers
/// nothing ends the task with a transport error saying so.
pub trait Task {
    /// What the operation produces.
    type Output;

    /// What to do next.
    fn poll(&mut self, now: Instant, state: &mut ClientState) -> Action<Self::Output>;

    /// Reports the outcome of the last exchange step of `lane`.
    fn on_event(&mut self, now: Instant, state: &mut ClientState, lane: LaneId, event: Event);

    /// How far the transfer has come, for tasks that move media (a download's bytes of the
    /// whole media, a resumed prefix included; an upload's payload bytes sent in the current
    /// attempt); `None` for JSON calls. An upload's progress reaches the caller through its
    /// [`UploadFrames`], a download's through [`Controlled`] after each `Written`.
    fn progress(&self) -> Option<crate::transfer::Progress> {
        None
    }

    /// Gives the operation up: hands back a token refresh this task holds, closes its
    /// mailbox; a download's busy lanes end after their outstanding step is reported; the
    /// next polls flush a download's sink and end with [`Error::Cancelled`] naming the
    /// operation and how far it got.
    fn cancel(&mut self, state: &mut ClientState);
}

/// A machine of one exchange at a time: the inside of a task's lane. It hands out steps on
/// [`LaneId::MAIN`] and expects each one's event before it is polled again; a [`Slot`] turns
/// it into a lane of a [`Task`].
pub(crate) trait Machine {
    /// What the machine produces.
    type Output;

    /// What to do next (never called while a step is outstanding).
    fn poll(&mut self, now: Instant, state: &mut ClientState) -> Action<Self::Output>;

    /// The outcome of the outstanding step.
    fn on_event(&mut self, now: Instant, state: &mut ClientState, event: Event);

    /// See [`Task::progress`].
    fn progress(&self) -> Option<crate::transfer::Progress> {
        None
    }

    /// See [`Task::cancel`]. When a step is outstanding, its event is not fed to the
    /// machine afterwards: bytes it wrote are told with [`Machine::on_late_write`].
    fn cancel(&mut self, state: &mut ClientState);

    /// `n` bytes of a step outstanding at the cancel reached the sink after all.
    fn on_late_write(&mut self, _n: u64) {}

    /// Whether, once cancelled, the machine ends without the event of its outstanding step:
    /// true when nothing it does reaches a sink (a JSON call, a job wait), so that a deadline
    /// cuts an upload whose body an async transport is still sending. A download waits for
    /// it, to count the bytes written.
    fn ends_at_cancel(&self) -> bool {
        false
    }
}

/// A [`Machine`] on one lane: polled only while no step is outstanding (or, once cancelled,
/// when the machine [ends at cancel](Machine::ends_at_cancel)). A cancel acts at once (a
/// token refresh is handed back even if the transport never reports again: a dropped
/// future); the outstanding step's event, when it comes, is taken here.
pub(crate) struct Slot<M> {
    pub(crate) machine: M,
    busy: bool,
    late: bool,
    cancelled: bool,
}

impl<M: Machine> Slot<M> {
    pub(crate) fn new(machine: M) -> Self {
        Self {
            machine,
            busy: false,
            late: false,
            cancelled: false,
        }
    }

    /// The machine's next action on `lane`; `None` while its last step is outstanding.
    pub(crate) fn poll(
        &mut self,
        now: Instant,
        state: &mut ClientState,
        lane: LaneId,
    ) -> Option<Action<M::Output>> {
        if self.busy && !(self.cancelled && self.machine.ends_at_cancel()) {
            return None;
        }
        let action = self.machine.poll(now, state).on_lane(lane);
        self.busy = action.lane().is_some();
        Some(action)
    }

    /// Whether a step is outstanding.
    pub(crate) fn is_busy(&self) -> bool {
        self.busy
    }

    pub(crate) fn on_event(&mut self, now: Instant, state: &mut ClientState, event: Event) {
        if !std::mem::replace(&mut self.busy, false) {
            // No step is out on this lane: the transport reported twice, or before polling.
            let misuse = misuse(&event, "no event (no step of this lane was out)");
            return self.machine.on_event(now, state, Event::Local(misuse));
        }
        if std::mem::take(&mut self.late) {
            if let Event::Written(n) = event {
                self.machine.on_late_write(n);
            }
            return;
        }
        self.machine.on_event(now, state, event);
    }

    /// Cancels once: a transport may call `cancel` on every turn while the user's flag is
    /// set, and a step handed out after the first cancel (the final flush) is not late.
    pub(crate) fn cancel(&mut self, state: &mut ClientState) {
        if !std::mem::replace(&mut self.cancelled, true) {
            self.machine.cancel(state);
            self.late = self.busy;
        }
    }
}

/// A task of one lane ([`LaneId::MAIN`]) around a [`Machine`].
pub(crate) struct OneLane<M>(Slot<M>);

impl<M: Machine> OneLane<M> {
    pub(crate) fn new(machine: M) -> Self {
        Self(Slot::new(machine))
    }

    pub(crate) fn machine(&self) -> &M {
        &self.0.machine
    }
}

impl<M: Machine> Task for OneLane<M> {
    type Output = M::Output;

    fn poll(&mut self, now: Instant, state: &mut ClientState) -> Action<M::Output> {
        self.0
            .poll(now, state, LaneId::MAIN)
            .unwrap_or(Action::Wait {
                until: None,
                wakeable: false,
            })
    }

    fn on_event(&mut self, now: Instant, state: &mut ClientState, lane: LaneId, event: Event) {
        let event = if lane == LaneId::MAIN {
            event
        } else {
            Event::Local(misuse(&event, "an event on the task's one lane (0)"))
        };
        self.0.on_event(now, state, event);
    }

    fn progress(&self) -> Option<crate::transfer::Progress> {
        self.0.machine.progress()
    }

    fn cancel(&mut self, state: &mut ClientState) {
        self.0.cancel(state);
    }
}

/// Implements [`Task`] for a public task type that is a [`OneLane`] inside (`.0`).
macro_rules! one_lane_task {
    ($task:ident $(<$param:ident: $bound:path>)?, $output:ty) => {
        impl$(<$param: $bound>)? $crate::task::Task for $task$(<$param>)? {
            type Output = $output;

            fn poll(
                &mut self,
                now: std::time::Instant,
                state: &mut $crate::task::ClientState,
            ) -> $crate::task::Action<$output> {
                self.0.poll(now, state)
            }

            fn on_event(
                &mut self,
                now: std::time::Instant,
                state: &mut $crate::task::ClientState,
                lane: $crate::task::LaneId,
                event: $crate::task::Event,
            ) {
                self.0.on_event(now, state, lane, event)
            }

            fn progress(&self) -> Option<$crate::transfer::Progress> {
                self.0.progress()
            }

            fn cancel(&mut self, state: &mut $crate::task::ClientState) {
                self.0.cancel(state)
            }
        }
    };
}
pub(crate) use one_lane_task;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_wakeable_wait_asks_the_transport_to_register_for_wake_ups() {
        let now = Instant::now();
        let wait = |wakeable| Action::<()>::Wait {
            until: Some(now),
            wakeable,
        };
        assert!(wait(true).is_wakeable());
        assert!(!wait(false).is_wakeable());
        assert!(!Action::<()>::WakeOthers.is_wakeable());
        assert!(!Action::<()>::Done(Ok(())).is_wakeable());
        assert!(!Action::<()>::Exchange(LaneId::MAIN, Exchange::FlushSink).is_wakeable());
    }

    #[test]
    fn a_transport_error_becomes_a_transport_failure_and_keeps_whether_it_was_sent() {
        let event = Event::from(TransportError::not_sent("connection refused"));
        assert!(
            matches!(&event, Event::TransportFailed(e) if e.sent == crate::error::Sent::No && e.message == "connection refused"),
            "{event:?}"
        );
    }

    /// Actions are what a transport logs: each says what it is, and a request's token and
    /// secret never show.
    #[test]
    fn an_action_debugs_as_its_step_and_never_shows_the_token() -> Result<(), http::Error> {
        let uri = "https://qyapi.weixin.qq.com/cgi-bin/gettoken?corpid=C&corpsecret=S3CR3T-S3CR3T";
        let request = http::Request::get(uri).body(Body::Empty)?;
        let send = Exchange::Send {
            request,
            timeouts: Timeouts::Json,
        };
        let text = format!("{:?}", Action::<()>::Exchange(LaneId(3), send));
        assert!(
            text.starts_with(
                "Send(GET https://qyapi.weixin.qq.com/cgi-bin/gettoken?corpid=C&corpsecret="
            ) && text.ends_with(", Json) on LaneId(3)"),
            "{text}"
        );
        assert!(!text.contains("S3CR3T"), "{text}");
        let write = Exchange::Write {
            at: 7,
            bytes: Bytes::from_static(b"abc"),
        };
        assert_eq!(format!("{write:?}"), "Write(3 bytes at 7)");
        assert_eq!(
            format!("{:?}", Exchange::Stream { max: 9, at: 4 }),
            "Stream(9 at 4)"
        );
        assert_eq!(
            format!("{:?}", Exchange::ReadBody { limit: 5 }),
            "ReadBody(5)"
        );
        assert_eq!(format!("{:?}", Action::<u8>::Done(Ok(1))), "Done(Ok(1))");
        assert_eq!(format!("{:?}", Action::<u8>::WakeOthers), "WakeOthers");
        Ok(())
    }

    /// A misuse error names the event the transport reported and what was due, so that the
    /// author of a transport sees which rule they broke.
    #[test]
    fn a_misuse_names_the_event_reported() {
        let events = [
            (Event::Body(Bytes::new()), "Body"),
            (Event::Written(1), "Written"),
            (Event::BodyEnd, "BodyEnd"),
            (Event::Flushed(None), "Flushed"),
            (
                Event::TransportFailed(TransportError::not_sent("x")),
                "TransportFailed",
            ),
            (
                Event::Local(Error::JobUnfinished {
                    job_id: JobId::new("J"),
                }),
                "Local",
            ),
        ];
        for (event, name) in events {
            match misuse(&event, "a Head") {
                Error::Transport(e) => assert_eq!(
                    e.message,
                    format!("transport misuse: {name} reported where a Head was due")
                ),
                other => panic!("not a transport error: {other:?}"),
            }
        }
    }
}
