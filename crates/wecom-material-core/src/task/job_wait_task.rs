//! Waiting for an async upload job as a [`Task`](crate::task::Task): the core's [`JobWait`] schedule, one
//! [`CallTask`] per poll, and a mailbox in the client's [`ClientState`] through which callback
//! events end a wait early.
//!
//! ```text
//!   first poll: open the mailbox ─┐
//!   every poll: feed the mailbox's job ids to JobWait ─┐
//!     JobWait says Poll      ──▶ a CallTask<GetUploadByUrlResult> runs ──▶ its result to JobWait
//!     JobWait says SleepUntil ──▶ Wait { until, wakeable: true } (an event wakes it)
//!     JobWait says Done      ──▶ close the mailbox ──▶ Done(result)
//!   cancel ──▶ close the mailbox ──▶ Done(Err(Cancelled))
//! ```

use std::time::Instant;

use crate::client_settings::ClientSettings;
use crate::driver::RetryPolicy;
use crate::endpoint::BaseUrl;
use crate::error::Error;
use crate::job_wait::{JobWait, JobWaitStep, PollPolicy};
use crate::media_type::JobId;
use crate::ops::upload_by_url_result::{GetUploadByUrlResult, JobStatus};
use crate::task::call_task::CallMachine;
use crate::task::{Action, ClientState, Event, Machine, OneLane, Timeouts, misuse, one_lane_task};

/// One wait for a job (see the [`task`](crate::task) module docs).
pub struct JobWaitTask(OneLane<JobWaitMachine>);

one_lane_task!(JobWaitTask, JobStatus);

impl std::fmt::Debug for JobWaitTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("JobWaitTask")
            .field(self.0.machine())
            .finish()
    }
}

impl JobWaitTask {
    /// A wait for `job_id` until `deadline` with a client's settings (poll policy, base URL,
    /// retry policy): polls at once, then with the poll policy's backoff; a callback event
    /// for the job delivered to the client's state ([`ClientState::deliver_job_finished`])
    /// ends a wait early. Ends with the final status, or `Processing` when the deadline came
    /// first.
    pub fn new(
        job_id: JobId,
        deadline: Instant,
        settings: &ClientSettings,
        jitter_seed: u64,
    ) -> Result<Self, Error> {
        let machine = JobWaitMachine::new(
            job_id,
            deadline,
            settings.poll_policy,
            settings.base.clone(),
            settings.retry_policy,
            jitter_seed,
        )?;
        Ok(Self(OneLane::new(machine)))
    }

    /// A wait with explicit parts (the machinery's tests).
    #[cfg(test)]
    pub(crate) fn from_parts(
        job_id: JobId,
        deadline: Instant,
        poll_policy: PollPolicy,
        base: BaseUrl,
        policy: RetryPolicy,
        jitter_seed: u64,
    ) -> Result<Self, Error> {
        let machine =
            JobWaitMachine::new(job_id, deadline, poll_policy, base, policy, jitter_seed)?;
        Ok(Self(OneLane::new(machine)))
    }

    /// How many times the job was polled and how many callback events for it were seen.
    pub fn counts(&self) -> (u32, u32) {
        let wait = &self.0.machine().wait;
        (wait.polls(), wait.events())
    }
}

/// The inside of a [`JobWaitTask`].
pub(crate) struct JobWaitMachine {
    wait: JobWait,
    poll: Option<CallMachine<GetUploadByUrlResult>>,
    mailbox: Option<u64>,
    base: BaseUrl,
    policy: RetryPolicy,
    jitter_seed: u64,
    outcome: Option<Result<JobStatus, Error>>,
    returned: bool,
    /// A poll dropped while it held the token refresh: the others are to be woken.
    wake: bool,
}

impl std::fmt::Debug for JobWaitMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobWaitMachine")
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

impl JobWaitMachine {
    /// A wait for `job_id` until `deadline` (see [`JobWait`] for what the deadline means).
    pub(crate) fn new(
        job_id: JobId,
        deadline: Instant,
        poll_policy: PollPolicy,
        base: BaseUrl,
        policy: RetryPolicy,
        jitter_seed: u64,
    ) -> Result<Self, Error> {
        Ok(Self {
            wait: JobWait::new(job_id, deadline, poll_policy)?,
            poll: None,
            mailbox: None,
            base,
            policy,
            jitter_seed,
            outcome: None,
            returned: false,
            wake: false,
        })
    }

    fn close(&mut self, state: &mut ClientState) {
        if let Some(id) = self.mailbox.take() {
            state.mailboxes.close(id);
        }
    }
}

impl Machine for JobWaitMachine {
    type Output = JobStatus;

    fn poll(&mut self, now: Instant, state: &mut ClientState) -> Action<JobStatus> {
        if std::mem::take(&mut self.wake) {
            return Action::WakeOthers;
        }
        if self.returned {
            return Action::Done(Err(misuse(&Event::BodyEnd, "nothing: the task had ended")));
        }
        if let Some(result) = self.outcome.take() {
            self.close(state);
            self.returned = true;
            return Action::Done(result);
        }
        // Opened before the first poll: an event that arrives later is not missed, and a job
        // that ended earlier is seen by that poll.
        let mailbox = *self.mailbox.get_or_insert_with(|| state.mailboxes.open());
        for job_id in state.mailboxes.take(mailbox) {
            self.wait.on_job_finished(&job_id);
        }
        loop {
            if let Some(call) = &mut self.poll {
                match call.poll(now, state).forward() {
                    Ok(action) => return action,
                    Err(result) => {
                        self.poll = None;
                        self.wait.on_poll_result(now, result);
                    }
                }
            }
            match self.wait.next(now) {
                JobWaitStep::Poll(op) => {
                    let seed = self.jitter_seed.wrapping_add(u64::from(self.wait.polls()));
                    self.poll = Some(CallMachine::new(
                        op,
                        self.base.clone(),
                        self.policy,
                        seed,
                        Timeouts::Json,
                    ));
                }
                JobWaitStep::SleepUntil(until) => {
                    return Action::Wait {
                        until: Some(until),
                        wakeable: true,
                    };
                }
                JobWaitStep::Done(result) => {
                    self.close(state);
                    self.returned = true;
                    return Action::Done(result);
                }
            }
        }
    }

    fn on_event(&mut self, now: Instant, state: &mut ClientState, event: Event) {
        match &mut self.poll {
            Some(call) => call.on_event(now, state, event),
            None if self.outcome.is_none() && !self.returned => {
                self.outcome = Some(Err(misuse(&event, "no event (poll first)")));
            }
            None => {}
        }
    }

    fn cancel(&mut self, state: &mut ClientState) {
        if let Some(call) = &mut self.poll {
            call.cancel(state);
            self.wake |= call.take_wake();
        }
        self.poll = None;
        self.close(state);
        if !self.returned {
            let operation = crate::error::OperationKind::JobWait;
            self.outcome = Some(Err(Error::Cancelled {
                operation,
                bytes: 0,
                total: None,
            }));
        }
    }

    /// A wait writes nothing: once cancelled, it ends without waiting for its outstanding
    /// step.
    fn ends_at_cancel(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::task::{LaneId, Task};

    fn wait(now: Instant) -> (JobWaitTask, ClientState) {
        let settings = ClientSettings::new("ww1", "secret-xyz");
        let deadline = now + Duration::from_secs(60);
        let task = JobWaitTask::new(JobId::new("job-1"), deadline, &settings, 1).unwrap();
        (task, ClientState::for_client(&settings))
    }

    /// A transport that reports before it polled: the wait ends with the misuse at its first
    /// poll, instead of polling the job.
    #[test]
    fn an_event_before_the_first_poll_ends_the_wait_as_a_misuse() {
        let now = Instant::now();
        let (mut task, mut state) = wait(now);
        task.on_event(now, &mut state, LaneId::MAIN, Event::BodyEnd);
        let Action::Done(Err(error)) = task.poll(now, &mut state) else {
            panic!("the wait went on")
        };
        assert!(error.to_string().contains("transport misuse"), "{error}");
    }

    /// The wait's `Debug` shows its job and schedule, through the task and its machine.
    #[test]
    fn a_job_wait_debugs_as_its_job() {
        let (task, _) = wait(Instant::now());
        let shown = format!("{task:?}");
        assert!(
            shown.starts_with("JobWaitTask(JobWaitMachine { wait: "),
            "{shown}"
        );
        assert!(shown.contains("job-1"), "{shown}");
    }
}
