//! Handing received callback events to the tasks waiting in [`Client::wait_job`].
//!
//! [`Client::wait_job`]: crate::Client::wait_job

use std::sync::Arc;

use wecom_material_core::callback::CallbackEvent;

use crate::client::Shared;

/// A cloneable handle that feeds callback events to the tasks waiting in
/// [`Client::wait_job`](crate::Client::wait_job) of one client (and its clones), obtained
/// from [`Client::job_events`](crate::Client::job_events). Safe to call from any thread or
/// task.
///
/// Give it to the code that receives WeCom's callbacks (after
/// [`CallbackHandler`](wecom_material_core::callback::CallbackHandler) verified and parsed
/// them). Events that arrive while nobody waits are dropped: a wait that starts later polls
/// first, so it sees a job that has already ended.
#[derive(Clone)]
pub struct JobEvents {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for JobEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let waiting = self.shared.lock().waiting_jobs();
        write!(f, "JobEvents {{ waiting_calls: {waiting} }}")
    }
}

impl JobEvents {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Hands `event` to every task waiting now and wakes them.
    pub fn notify(&self, event: &CallbackEvent) {
        let delivered = self.shared.lock().deliver_event(event);
        if delivered {
            self.shared.wake.notify_waiters();
        }
    }
}
