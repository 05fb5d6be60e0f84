//! Whole operations: one value per user intent, driven by a transport through one small
//! polling interface.
//!
//! A user asks for "upload this file", "download this media into that writer, resuming from
//! byte N", "wait for this job". Each intent is one [`Task`] here — [`CallTask`] (any JSON
//! call: uploads, upload-image, upload-by-url, job result), [`DownloadTask`] and
//! [`JobWaitTask`] — that owns every decision of the whole operation: which request next,
//! whether to read a body whole or stream it and how many bytes, when to back off, when to
//! wait for another task's token refresh, when to wake the others, when to flush the sink.
//! The transport moves bytes, sleeps and wakes; it combines nothing.
//!
//! # The loop every transport implements
//!
//! ```text
//! let mut task = DownloadTask::new(media_id, options, &settings)?;   // or CallTask, JobWaitTask
//! loop {
//!     if user_cancelled() { task.cancel(&mut state.lock()); }
//!     let action = task.poll(clock.now(), &mut state.lock());      // lock held briefly
//!     match action {
//!         Action::Send { request, lane } => match send(request, lane) {  // no lock held
//!             Ok(head)   => task.on_event(now, &mut state.lock(), Event::Head(head)),
//!             Err(error) => task.on_event(now, &mut state.lock(), Event::TransportFailed(error)),
//!         },
//!         Action::ReadBody { limit } => match read_whole_body(limit) {
//!             Ok(bytes)  => task.on_event(.., Event::Body(bytes)),
//!             Err(error) => task.on_event(.., Event::TransportFailed(error)),  // or Local(..)
//!         },
//!         Action::Stream { max } => match read_one_buffer_into_sink(max) {   // 1 ..= max bytes
//!             Ok(0)      => task.on_event(.., Event::BodyEnd),
//!             Ok(n)      => task.on_event(.., Event::Written(n)),
//!             Err(body)  => task.on_event(.., Event::TransportFailed(error)),
//!             Err(sink)  => task.on_event(.., Event::Local(Error::io(..))),
//!         },
//!         Action::FlushSink => { let r = sink.flush(); task.on_event(.., Event::Flushed(r.err())) }
//!         Action::Wait { until, wakeable } => sleep_until(until) /* or a wake, if wakeable */,
//!         Action::WakeOthers => wake_every_waiting_task(),
//!         Action::Store(command) => {                          // only with a token store
//!             task.on_event(.., Event::from_store(store, command))  // or from_async_store
//!         }
//!         Action::Done(result) => return result,
//!     }
//! }
//! ```
//!
//! Rules for the transport:
//! * After `Send`, report exactly one `Head` or `TransportFailed`. After `ReadBody`, one
//!   `Body`, `TransportFailed` or `Local`. After `Stream`, one `Written(n)` with
//!   `1 ..= max` bytes that reached the sink, `BodyEnd`, `TransportFailed` or `Local`. After
//!   `FlushSink`, one `Flushed`. After `Store`, one `Store`. Any other event is a misuse:
//!   the task ends with [`Error::Transport`] saying so (it never panics).
//! * `Wait { wakeable: true }` ends early when another task of the same client returned
//!   `WakeOthers` (a token refresh ended) or when a callback event was delivered with
//!   [`ClientState::deliver_job_finished`] (which returns whether to wake).
//! * `cancel` may be called at any time; a download then flushes its sink and ends with
//!   [`Error::Cancelled`] holding the bytes that reached the sink. A transport whose future is
//!   dropped calls `cancel` from its drop guard.
//! * A transport sends requests with redirects off (the token is in the query string), reads
//!   JSON bodies only up to the `limit` given, and logs URIs through
//!   [`RedactedUri`].
//!
//! # Shared state
//!
//! The tasks of one client share one [`ClientState`] (the token cache and the mailboxes of
//! job waits): plain data the transport keeps behind its lock, passed to every `poll` and
//! `on_event`. A client given a token store ([`ClientState::for_client`] with
//! `settings.shared_token`) also keeps the store itself and runs [`Action::Store`] on it.

pub mod blocking;
pub mod call_task;
pub mod download_task;
pub mod job_wait_task;
pub mod parallel_download;
pub mod payload;
pub mod payload_digest;

use std::fmt;
use std::time::{Instant, SystemTime};

use bytes::Bytes;

pub use call_task::CallTask;
pub use download_task::{DownloadOptions, DownloadTask};
pub use job_wait_task::JobWaitTask;
pub use parallel_download::{ParallelDownload, ParallelStep, RangeJob, ResumeRecord};
pub use payload::{PayloadMeter, Upload, UploadInput, UploadPlan, UploadReader};
pub use payload_digest::PayloadDigest;

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
pub enum Lane {
    /// A JSON call (gettoken, upload-by-url, job result): one overall timeout.
    Json,
    /// A media transfer (upload or download): an idle timeout, no overall cut.
    Media,
}

/// What the transport does next for a [`Task`].
// An action lives for one turn of the loop and is matched at once: boxing the request would
// cost an allocation per request for no gain.
#[allow(clippy::large_enum_variant)]
pub enum Action<T> {
    /// Send this request (an upload's external payload comes from the transport's source),
    /// then report [`Event::Head`] or [`Event::TransportFailed`].
    Send {
        /// The request.
        request: http::Request<Body>,
        /// Which timeouts apply.
        lane: Lane,
    },
    /// Read the rest of the current response body, at most `limit` bytes (a longer body is
    /// reported as [`Event::Local`] with a decode error), then report [`Event::Body`].
    ReadBody {
        /// The most bytes to read.
        limit: usize,
    },
    /// Move at most `max` bytes of the current body into the sink, then report
    /// [`Event::Written`], [`Event::BodyEnd`], [`Event::TransportFailed`] or [`Event::Local`].
    Stream {
        /// The most bytes to move in this step (never 0).
        max: u64,
    },
    /// Write these bytes (a short body the task read whole to classify it) to the sink, then
    /// report [`Event::Written`] with their length, or [`Event::Local`].
    Write(Bytes),
    /// Flush the sink, then report [`Event::Flushed`].
    FlushSink,
    /// Wait until `until`; if `wakeable`, a wake-up of this client ends the wait earlier.
    Wait {
        /// The latest time to poll again.
        until: Instant,
        /// Whether a wake-up ends the wait (token refresh ended, callback event delivered).
        wakeable: bool,
    },
    /// Wake every task of this client that waits with `wakeable`, then poll again.
    WakeOthers,
    /// Run this command on the client's shared token store (see [`TokenStore`] and
    /// [`AsyncTokenStore`]), then report [`Event::Store`]. Only a client configured with a
    /// store is handed this.
    Store(StoreCommand),
    /// The operation is over.
    Done(Result<T, Error>),
}

impl<T> Action<T> {
    /// For a task that runs another one inside it: every action but `Done` passed on as the
    /// outer task's own, `Done` handed back as `Err(result)` for the outer task to decide.
    pub(crate) fn forward<U>(self) -> Result<Action<U>, Result<T, Error>> {
        Ok(match self {
            Action::Send { request, lane } => Action::Send { request, lane },
            Action::ReadBody { limit } => Action::ReadBody { limit },
            Action::Stream { max } => Action::Stream { max },
            Action::Write(bytes) => Action::Write(bytes),
            Action::FlushSink => Action::FlushSink,
            Action::Wait { until, wakeable } => Action::Wait { until, wakeable },
            Action::WakeOthers => Action::WakeOthers,
            Action::Store(command) => Action::Store(command),
            Action::Done(result) => return Err(result),
        })
    }

    /// The end of a wait that another task's wake-up may end earlier (`Wait` with
    /// `wakeable`); a transport registers for wake-ups before it releases the shared state.
    pub fn wakeable_until(&self) -> Option<Instant> {
        match self {
            Action::Wait {
                until,
                wakeable: true,
            } => Some(*until),
            _ => None,
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Action<T> {
    /// A `Send` shows the method and the URI with the token and secret masked.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Send { request, lane } => write!(
                f,
                "Send({} {}, {lane:?})",
                request.method(),
                RedactedUri(request.uri())
            ),
            Action::ReadBody { limit } => write!(f, "ReadBody({limit})"),
            Action::Stream { max } => write!(f, "Stream({max})"),
            Action::Write(bytes) => write!(f, "Write({} bytes)", bytes.len()),
            Action::FlushSink => f.write_str("FlushSink"),
            Action::Wait { until, wakeable } => {
                write!(f, "Wait({until:?}, wakeable: {wakeable})")
            }
            Action::WakeOthers => f.write_str("WakeOthers"),
            Action::Store(command) => f.debug_tuple("Store").field(command).finish(),
            Action::Done(result) => f.debug_tuple("Done").field(result).finish(),
        }
    }
}

/// What the transport reports after an [`Action`].
#[derive(Debug)]
pub enum Event {
    /// The response head of the request sent (its body is still unread).
    Head(http::response::Parts),
    /// The whole body asked for by [`Action::ReadBody`].
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
    /// The shared token store's reply to [`Action::Store`], or why there is none.
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
    pub tokens: TokenCache,
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
pub trait Task {
    /// What the operation produces.
    type Output;

    /// What to do next.
    fn poll(&mut self, now: Instant, state: &mut ClientState) -> Action<Self::Output>;

    /// Reports the outcome of the last action.
    fn on_event(&mut self, now: Instant, state: &mut ClientState, event: Event);

    /// How far the transfer has come, for tasks that move media (a download's bytes of the
    /// whole media, a resumed prefix included); `None` for JSON calls. An upload's progress
    /// comes from the transport's [`PayloadMeter`].
    fn progress(&self) -> Option<crate::transfer::Progress> {
        None
    }

    /// Gives the operation up: hands back a token refresh this task holds, closes its
    /// mailbox; the next polls flush a download's sink and end with [`Error::Cancelled`].
    fn cancel(&mut self, state: &mut ClientState);
}
