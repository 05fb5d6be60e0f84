//! The relayed upload as one [`Task`]: its phases, what each answer leads to, and the
//! clean-up that always runs (see the [`relay`](crate::relay) module docs for the flow).

use std::fmt;
use std::time::{Instant, SystemTime};

use super::{BucketRelay, ObjectFate, RelayOptions, RelayedUpload};
use super::{delete_object, presign, put_object, s3_error};
use crate::body::Replay;
use crate::client_settings::ClientSettings;
use crate::driver::RetryPolicy;
use crate::error::{ApiError, Error, Invalid, TransportError};
use crate::media_type::{JobId, MediaType};
use crate::ops::upload_by_url::{UploadByUrl, UploadJob};
use crate::ops::upload_by_url_result::JobStatus;
use crate::task::{
    Action, CallMachine, ClientState, Event, Exchange, JobWaitMachine, LaneId, Machine, OneLane,
    PayloadDigest, Timeouts, UploadInput, one_lane_task,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum S3Op {
    /// The DELETE of the fresh key before the upload.
    Check,
    Put,
    Delete,
}

impl S3Op {
    fn name(self) -> &'static str {
        match self {
            S3Op::Check => "the access check (a DELETE of the new key) of",
            S3Op::Put => "PUT",
            S3Op::Delete => "DELETE",
        }
    }
}

enum S3Step {
    Ready { not_before: Option<Instant> },
    AwaitHead,
    AwaitBody { status: u16 },
}

enum Phase {
    S3 {
        op: S3Op,
        attempt: u32,
        step: S3Step,
    },
    Call(Box<CallMachine<UploadByUrl>>),
    Wait(Box<JobWaitMachine>),
    Over,
}

/// The whole relayed upload as one [`Task`](crate::task::Task) (see the
/// [module docs](crate::relay)), on one lane.
pub struct RelayUploadTask(OneLane<RelayMachine>);

one_lane_task!(RelayUploadTask, RelayedUpload);

impl fmt::Debug for RelayUploadTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.machine().fmt(f)
    }
}

/// The inside of a [`RelayUploadTask`].
pub(crate) struct RelayMachine {
    relay: BucketRelay,
    key: String,
    media_type: MediaType,
    filename: String,
    len: u64,
    replay: Replay,
    options: RelayOptions,
    settings: ClientSettings,
    jitter_seed: u64,
    /// The wall clock at `.1`, for the signatures.
    clock: (SystemTime, Instant),
    digest: PayloadDigest,
    phase: Phase,
    job: Option<JobId>,
    md5: Option<String>,
    /// Whether a PUT may have stored the object (the clean-up is then due).
    stored: bool,
    outcome: Option<Result<RelayedUpload, Error>>,
    cancelled: bool,
    returned: bool,
}

impl fmt::Debug for RelayMachine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelayUploadTask")
            .field("object", &self.object())
            .field("len", &self.len)
            .field("job", &self.job)
            .finish_non_exhaustive()
    }
}

impl RelayUploadTask {
    /// The relayed upload of `input` (a file the transport opened, streamed from its source)
    /// as `media_type` (`video` or `file`, the by-URL API's types) through `relay`.
    /// `wall` is the wall clock at the instant `now` (every signature is made at
    /// `wall + (then - now)`); `entropy` makes the object key unique; `jitter_seed` the
    /// retries' backoff. Everything WeCom would refuse is refused here, before a byte moves.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        media_type: MediaType,
        input: &UploadInput,
        relay: &BucketRelay,
        options: RelayOptions,
        settings: &ClientSettings,
        (now, wall): (Instant, SystemTime),
        entropy: u64,
        jitter_seed: u64,
    ) -> Result<Self, Error> {
        if !matches!(media_type, MediaType::Video | MediaType::File) {
            return Err(Invalid::UnsupportedMediaType {
                media_type,
                operation: "upload through object storage (video or file only)",
            }
            .into());
        }
        let limits = &settings.limits;
        if input.len <= limits.min_exclusive {
            return Err(Invalid::TooSmall {
                media_type,
                size: input.len,
                min_exclusive: limits.min_exclusive,
            }
            .into());
        }
        if input.len > limits.by_url_max {
            return Err(Invalid::TooLarge {
                media_type: Some(media_type),
                size: input.len,
                max: limits.by_url_max,
            }
            .into());
        }
        if options.url_expiry.as_secs() < 1 || options.url_expiry > presign::MAX_EXPIRY {
            return Err(Invalid::BadRelay {
                reason: "the URL expiry must be 1 s to 7 days".into(),
            }
            .into());
        }
        let key = relay.object_key(&input.filename, entropy);
        // The URL WeCom will get has this length whenever it is signed: check it now.
        let url = presign::get_url(relay, &key, options.url_expiry, wall)?;
        let placeholder_md5 = "0".repeat(32);
        UploadByUrl::for_client(
            media_type,
            &input.filename,
            &url,
            &placeholder_md5,
            settings,
        )?;
        Ok(Self(OneLane::new(RelayMachine {
            relay: relay.clone(),
            key,
            media_type,
            filename: input.filename.clone(),
            len: input.len,
            replay: input.replay,
            options,
            settings: settings.clone(),
            jitter_seed,
            clock: (wall, now),
            digest: PayloadDigest::new(),
            phase: Phase::S3 {
                op: S3Op::Check,
                attempt: 0,
                step: S3Step::Ready { not_before: None },
            },
            job: None,
            md5: None,
            stored: false,
            outcome: None,
            cancelled: false,
            returned: false,
        })))
    }

    /// The object: `s3://BUCKET/KEY`.
    pub fn object(&self) -> String {
        self.0.machine().object()
    }

    /// The object key.
    pub fn key(&self) -> &str {
        &self.0.machine().key
    }

    /// The async job, once WeCom created it.
    pub fn job_id(&self) -> Option<&JobId> {
        self.0.machine().job.as_ref()
    }
}

impl RelayMachine {
    fn object(&self) -> String {
        format!("s3://{}/{}", self.relay.bucket(), self.key)
    }

    fn wall_at(&self, now: Instant) -> SystemTime {
        let (wall, at) = self.clock;
        wall + now.saturating_duration_since(at)
    }

    fn policy(&self) -> RetryPolicy {
        self.settings.retry_policy
    }

    /// Ends the operation with `error` (the first failure wins), then cleans up.
    /// [`Error::Cancelled`] saying how many payload bytes the PUT sent.
    fn cancelled_error(&self) -> Error {
        Error::Cancelled {
            operation: crate::error::OperationKind::RelayedUpload,
            bytes: self.digest.bytes(),
            total: Some(self.len),
        }
    }

    /// An error that ends `op`: during the clean-up DELETE it is only the object's fate (the
    /// upload before it succeeded or already failed); otherwise the upload fails with it.
    fn end_with(&mut self, op: S3Op, error: Error) {
        match op {
            S3Op::Delete => self.deleted(ObjectFate::NotDeleted(error.to_string())),
            S3Op::Check | S3Op::Put => self.fail(error),
        }
    }

    fn fail(&mut self, error: Error) {
        if self.outcome.is_none() {
            self.outcome = Some(Err(error));
        }
        self.clean_up();
    }

    /// The DELETE when an object may be there and is not to be kept, else the end.
    fn clean_up(&mut self) {
        self.phase = if self.stored && !self.options.keep_object {
            Phase::S3 {
                op: S3Op::Delete,
                attempt: 0,
                step: S3Step::Ready { not_before: None },
            }
        } else {
            if let Some(Ok(done)) = &mut self.outcome {
                done.fate = if self.options.keep_object {
                    ObjectFate::Kept
                } else {
                    ObjectFate::Deleted
                };
            }
            Phase::Over
        };
    }

    fn deleted(&mut self, fate: ObjectFate) {
        if let Some(Ok(done)) = &mut self.outcome {
            done.fate = fate;
        }
        self.phase = Phase::Over;
    }

    fn request(
        &self,
        op: S3Op,
        now: Instant,
    ) -> Result<(http::Request<crate::body::Body>, Timeouts), Error> {
        let wall = self.wall_at(now);
        Ok(match op {
            S3Op::Check | S3Op::Delete => (
                delete_object::request(&self.relay, &self.key, wall)?,
                Timeouts::Json,
            ),
            S3Op::Put => {
                let what = (self.len, self.replay);
                let request = put_object::request(&self.relay, &self.key, what, &self.digest, wall);
                (request?, Timeouts::Media)
            }
        })
    }

    /// A retry of `op` after `attempt` when the policy allows it (and the payload can be
    /// read again); `Err(())` when not.
    fn retry(&mut self, op: S3Op, attempt: u32, now: Instant) -> Result<(), ()> {
        let policy = self.policy();
        let replayable = op != S3Op::Put || self.replay == Replay::Replayable;
        let given_up = self.cancelled && op != S3Op::Delete;
        if attempt >= policy.max_transport_retries || !replayable || given_up {
            return Err(());
        }
        let wait = policy.backoff(attempt, self.jitter_seed);
        self.phase = Phase::S3 {
            op,
            attempt: attempt + 1,
            step: S3Step::Ready {
                not_before: Some(now.checked_add(wait).unwrap_or(now)),
            },
        };
        Ok(())
    }

    /// A transport failure of `op`.
    fn on_failed_exchange(&mut self, op: S3Op, attempt: u32, now: Instant, error: Error) {
        if op == S3Op::Put {
            self.stored = true;
        }
        if self.retry(op, attempt, now).is_ok() {
            return;
        }
        self.end_with(op, error);
    }

    /// The whole answer to `op`.
    fn on_answer(&mut self, op: S3Op, attempt: u32, now: Instant, status: u16, body: &[u8]) {
        let refused = |task: &Self| {
            let (bucket, key) = (task.relay.bucket(), &task.key);
            s3_error::parse(op.name(), bucket, key, status, body)
        };
        let ok = (200..300).contains(&status);
        match op {
            S3Op::Check | S3Op::Delete => {
                let error = (!ok).then(|| refused(self));
                if delete_object::gone(status, error.as_ref().and_then(|e| e.code.as_deref())) {
                    match op {
                        S3Op::Check => self.start(S3Op::Put),
                        _ => self.deleted(ObjectFate::Deleted),
                    }
                    return;
                }
                let error = error.unwrap_or_else(|| refused(self));
                if status >= 500 && self.retry(op, attempt, now).is_ok() {
                    return;
                }
                match op {
                    S3Op::Check => self.fail(Error::ObjectStorage(error)),
                    _ => self.deleted(ObjectFate::NotDeleted(error.to_string())),
                }
            }
            S3Op::Put if ok => {
                self.stored = true;
                self.on_put_done(now);
            }
            S3Op::Put => {
                if status >= 500 && self.retry(op, attempt, now).is_ok() {
                    return;
                }
                let error = refused(self);
                self.fail(Error::ObjectStorage(error));
            }
        }
    }

    fn start(&mut self, op: S3Op) {
        self.phase = Phase::S3 {
            op,
            attempt: 0,
            step: S3Step::Ready { not_before: None },
        };
    }

    /// The object is stored: its MD5 and URL go to `upload_by_url`.
    fn on_put_done(&mut self, now: Instant) {
        let Some(md5) = self.digest.finish(self.len) else {
            let message = format!(
                "the MD5 of the {} bytes sent was not computed (the body was cut short?)",
                self.len
            );
            let error = std::io::Error::new(std::io::ErrorKind::InvalidData, message);
            return self.fail(Error::io("digesting the upload", error));
        };
        let wall = self.wall_at(now);
        let url = presign::get_url(&self.relay, &self.key, self.options.url_expiry, wall);
        let op = url.and_then(|url| {
            let settings = &self.settings;
            UploadByUrl::for_client(self.media_type, &self.filename, &url, &md5, settings)
        });
        self.md5 = Some(md5);
        match op {
            Ok(op) => {
                let (base, policy, seed) =
                    (self.settings.base.clone(), self.policy(), self.jitter_seed);
                let call = CallMachine::new(op, base, policy, seed, Timeouts::Json);
                self.phase = Phase::Call(Box::new(call));
            }
            Err(invalid) => self.fail(invalid.into()),
        }
    }

    fn on_job(&mut self, now: Instant, job: UploadJob) {
        self.job = Some(job.jobid.clone());
        let timeout = self.options.job_timeout.unwrap_or(self.options.url_expiry);
        let poll = self
            .options
            .poll_policy
            .unwrap_or(self.settings.poll_policy);
        let (base, policy, seed) = (self.settings.base.clone(), self.policy(), self.jitter_seed);
        let deadline = now.checked_add(timeout).unwrap_or(now);
        match JobWaitMachine::new(job.jobid, deadline, poll, base, policy, seed) {
            Ok(wait) => self.phase = Phase::Wait(Box::new(wait)),
            Err(error) => self.fail(error),
        }
    }

    fn on_job_status(&mut self, status: JobStatus) {
        let job_id = self.job.clone().unwrap_or_else(|| JobId::from(""));
        match status {
            JobStatus::Finished {
                media_id,
                created_at,
                expires_at,
            } => {
                self.outcome = Some(Ok(RelayedUpload {
                    media_id,
                    created_at,
                    expires_at,
                    job_id,
                    md5: self.md5.clone().unwrap_or_default(),
                    len: self.len,
                    object: self.object(),
                    fate: ObjectFate::Deleted,
                }));
                self.clean_up();
            }
            JobStatus::Failed { errcode, errmsg } => {
                let errmsg = format!("upload job {job_id} failed: {errmsg}");
                self.fail(Error::Api(ApiError {
                    code: errcode,
                    errmsg,
                }));
            }
            JobStatus::Processing => self.fail(Error::JobUnfinished { job_id }),
        }
    }
}

impl Machine for RelayMachine {
    type Output = RelayedUpload;

    fn poll(&mut self, now: Instant, state: &mut ClientState) -> Action<RelayedUpload> {
        loop {
            match &mut self.phase {
                Phase::S3 { op, step, .. } => match step {
                    S3Step::Ready { not_before } => {
                        if let Some(at) = *not_before
                            && now < at
                        {
                            return Action::Wait {
                                until: Some(at),
                                wakeable: false,
                            };
                        }
                        let op = *op;
                        match self.request(op, now) {
                            Ok((request, timeouts)) => {
                                if let Phase::S3 { step, .. } = &mut self.phase {
                                    *step = S3Step::AwaitHead;
                                }
                                let send = Exchange::Send { request, timeouts };
                                return Action::Exchange(LaneId::MAIN, send);
                            }
                            Err(error) => self.end_with(op, error),
                        }
                    }
                    S3Step::AwaitHead => {
                        let (op, error) = (*op, misuse_poll("an answer to the request"));
                        self.end_with(op, error);
                    }
                    S3Step::AwaitBody { .. } => {
                        let limit = s3_error::ANSWER_LIMIT;
                        return Action::Exchange(LaneId::MAIN, Exchange::ReadBody { limit });
                    }
                },
                Phase::Call(call) => match call.poll(now, state).forward() {
                    Ok(action) => return action,
                    Err(Ok(job)) => self.on_job(now, job),
                    Err(Err(error)) => self.fail(error),
                },
                Phase::Wait(wait) => match wait.poll(now, state).forward() {
                    Ok(action) => return action,
                    Err(Ok(status)) => self.on_job_status(status),
                    Err(Err(error)) => self.fail(error),
                },
                Phase::Over => {
                    if self.returned {
                        return Action::Done(Err(misuse_poll("nothing: the task had ended")));
                    }
                    self.returned = true;
                    let outcome = self.outcome.take();
                    // A cancel of the PUT, the call or the wait is the relayed upload's.
                    return Action::Done(match outcome {
                        None | Some(Err(Error::Cancelled { .. })) => Err(self.cancelled_error()),
                        Some(outcome) => outcome,
                    });
                }
            }
        }
    }

    fn on_event(&mut self, now: Instant, state: &mut ClientState, event: Event) {
        let (op, attempt, status) = match &mut self.phase {
            Phase::Call(call) => return call.on_event(now, state, event),
            Phase::Wait(wait) => return wait.on_event(now, state, event),
            Phase::Over => return,
            Phase::S3 { op, attempt, step } => {
                let status = match step {
                    S3Step::AwaitHead => None,
                    S3Step::AwaitBody { status } => Some(*status),
                    S3Step::Ready { .. } => {
                        let op = *op;
                        let error = crate::task::misuse(&event, "no event (poll first)");
                        return self.end_with(op, error);
                    }
                };
                (*op, *attempt, status)
            }
        };
        match (status, event) {
            (None, Event::Head(head)) => {
                let status = head.status.as_u16();
                self.phase = Phase::S3 {
                    op,
                    attempt,
                    step: S3Step::AwaitBody { status },
                };
            }
            (Some(status), Event::Body(body)) => self.on_answer(op, attempt, now, status, &body),
            (_, Event::TransportFailed(error)) => {
                self.on_failed_exchange(op, attempt, now, Error::Transport(error));
            }
            (_, Event::Local(error)) => {
                if op == S3Op::Put {
                    self.stored = true;
                }
                self.end_with(op, error);
            }
            (status, event) => {
                let due = if status.is_some() {
                    "Body, TransportFailed or Local"
                } else {
                    "Head or TransportFailed"
                };
                self.end_with(op, crate::task::misuse(&event, due));
            }
        }
    }

    /// Gives the upload up: the PUT, the call or the wait stops; the clean-up still runs
    /// (keep polling until `Done`, which holds [`Error::Cancelled`]). A transport that drops
    /// the task instead leaves a stored object behind.
    fn cancel(&mut self, state: &mut ClientState) {
        if std::mem::replace(&mut self.cancelled, true) {
            return;
        }
        let cancelled = self.cancelled_error();
        match &mut self.phase {
            Phase::Call(call) => call.cancel(state),
            Phase::Wait(wait) => wait.cancel(state),
            Phase::S3 {
                op: S3Op::Check | S3Op::Put,
                ..
            } => self.fail(cancelled),
            Phase::S3 {
                op: S3Op::Delete, ..
            }
            | Phase::Over => {}
        }
    }
}

fn misuse_poll(expected: &str) -> Error {
    Error::Transport(TransportError::maybe_sent(format!(
        "transport misuse: polled again where {expected} was due"
    )))
}
