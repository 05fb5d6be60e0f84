//! Handing received callback events to the tasks waiting in [`Client::wait_job`].
//!
//! The transport only moves events: every waiting call has a mailbox; [`JobEvents::notify`]
//! drops a copy of the event in each one and wakes the waiters. Whether an event concerns a
//! wait is decided by the core's [`JobWait::on_event`].
//!
//! [`Client::wait_job`]: crate::Client::wait_job
//! [`JobWait::on_event`]: wecom_material_core::JobWait::on_event

use std::fmt;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::Notify;
use wecom_material_core::Mailboxes;
use wecom_material_core::callback::CallbackEvent;

/// A cloneable handle that feeds callback events to the calls waiting in
/// [`Client::wait_job`](crate::Client::wait_job) of one client (and its clones), obtained
/// from [`Client::job_events`](crate::Client::job_events).
///
/// Give it to the code that receives WeCom's callbacks (after
/// [`CallbackHandler`](wecom_material_core::callback::CallbackHandler) verified and parsed
/// them) and call [`JobEvents::notify`] with each event; it never blocks and needs no
/// runtime. Events that arrive while no call waits are dropped: a wait that starts later
/// polls first, so it sees a job that has already ended.
#[derive(Clone, Default)]
pub struct JobEvents {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    mailboxes: Mutex<Mailboxes<CallbackEvent>>,
    arrived: Notify,
}

impl fmt::Debug for JobEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobEvents")
            .field("waiting_calls", &self.lock().open_count())
            .finish()
    }
}

impl JobEvents {
    /// Hands `event` to every call waiting now and wakes them.
    pub fn notify(&self, event: &CallbackEvent) {
        if self.lock().deliver(event) {
            self.shared.arrived.notify_waiters();
        }
    }

    /// Opens a mailbox for one waiting call; it closes when the returned value is dropped.
    pub(crate) fn subscribe(&self) -> Subscription<'_> {
        let id = self.lock().open();
        Subscription { events: self, id }
    }

    fn lock(&self) -> MutexGuard<'_, Mailboxes<CallbackEvent>> {
        // Plain data: keep using it after a panic elsewhere.
        self.shared
            .mailboxes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

/// One waiting call's mailbox.
pub(crate) struct Subscription<'a> {
    events: &'a JobEvents,
    id: u64,
}

impl Subscription<'_> {
    /// The events received since the last call.
    pub(crate) fn take(&self) -> Vec<CallbackEvent> {
        self.events.lock().take(self.id)
    }

    /// Waits until `until` or until the mailbox holds an event, whichever comes first.
    pub(crate) async fn wait_until(&self, until: Instant) {
        loop {
            // Registered before the mailbox is looked at: a notify in between is not lost.
            let mut arrived = pin!(self.events.shared.arrived.notified());
            arrived.as_mut().enable();
            let has_mail = self.events.lock().has_mail(self.id);
            if has_mail || Instant::now() >= until {
                return;
            }
            if tokio::time::timeout_at(until.into(), arrived)
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

impl Drop for Subscription<'_> {
    fn drop(&mut self) {
        self.events.lock().close(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use wecom_material_core::JobId;

    fn event(job: &str) -> CallbackEvent {
        CallbackEvent::UploadMediaJobFinish {
            job_id: JobId::new(job),
            create_time: 1,
            corp_id: "ww".into(),
        }
    }

    #[test]
    fn every_open_mailbox_gets_a_copy_and_closed_ones_are_removed() {
        let events = JobEvents::default();
        events.notify(&event("before")); // nobody waits: dropped
        let a = events.subscribe();
        let b = events.subscribe();
        events.notify(&event("j1"));
        assert_eq!(a.take(), vec![event("j1")]);
        assert!(a.take().is_empty());
        drop(b);
        events.notify(&event("j2"));
        assert_eq!(a.take(), vec![event("j2")]);
        drop(a);
        assert_eq!(events.lock().open_count(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_notify_from_another_thread_wakes_the_waiter() {
        let events = JobEvents::default();
        let sub = events.subscribe();
        let notifier = events.clone();
        let thread = std::thread::spawn(move || notifier.notify(&event("j1")));
        // Far in the future: only the event ends this wait.
        sub.wait_until(Instant::now() + Duration::from_secs(3600))
            .await;
        thread.join().unwrap();
        assert_eq!(sub.take(), vec![event("j1")]);
    }
}
