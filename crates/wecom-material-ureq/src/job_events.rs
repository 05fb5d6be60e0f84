//! Handing received callback events to the threads blocked in [`Client::wait_job`].
//!
//! [`Client::wait_job`]: crate::Client::wait_job

use std::fmt;
use std::sync::Arc;

use wecom_material_core::callback::CallbackEvent;

use crate::client::Shared;

/// A cloneable handle that feeds callback events to the calls waiting in
/// [`Client::wait_job`](crate::Client::wait_job) of one client (and its clones), obtained
/// from [`Client::job_events`](crate::Client::job_events).
///
/// Give it to the code that receives WeCom's callbacks (after
/// [`CallbackHandler`](wecom_material_core::callback::CallbackHandler) verified and parsed
/// them) and call [`JobEvents::notify`] with each event. Events that arrive while no call
/// waits are dropped: a wait that starts later polls first, so it sees a job that has
/// already ended.
#[derive(Clone)]
pub struct JobEvents {
    shared: Arc<Shared>,
}

impl fmt::Debug for JobEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobEvents")
            .field("waiting_calls", &self.shared.lock().waiting_jobs())
            .finish()
    }
}

impl JobEvents {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Hands `event` to every call waiting now and wakes them.
    pub fn notify(&self, event: &CallbackEvent) {
        if self.shared.lock().deliver_event(event) {
            self.shared.wake.notify_all();
        }
    }
}
