//! A task run by an async transport's loop for one client: the state locked around each poll,
//! the loop's wake-ups, the caller's controls, and the cancel when the loop's future is
//! dropped. Runtime-free: the loop awaits [`Running::woken`] next to its own timer.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

#[cfg(feature = "async")]
use std::{collections::HashMap, pin::pin};

#[cfg(feature = "async")]
use futures_util::stream::FuturesUnordered;
use wecom_material_core::task::{Action, Controlled, Event, LaneId, Task};
use wecom_material_core::transfer::Transfer;
#[cfg(feature = "async")]
use wecom_material_core::{Error, task::Exchange};

use crate::Shared;

/// A task being run by an async transport's loop on behalf of one client (made by
/// [`Shared::start`]): the core's [`Controlled`] task (cancel flag, deadline, progress),
/// polled with the client's state locked, and registered for the client's wake-ups when it
/// waits.
///
/// Dropped before it ended (the caller dropped the loop's future), it cancels the task and
/// wakes the client's waiting tasks, so that a token refresh it held is handed back at once.
pub struct Running<'a, S: ?Sized, T: Task> {
    shared: &'a Shared<S>,
    task: Controlled<'a, T>,
    wake_up: Arc<WakeUp>,
    ended: bool,
}

/// The wake-up of one loop: set by the client's `wake_all` (through the `Waker` registered
/// with it), taken by [`Running::woken`]; a wake-up that comes before the loop awaits it is
/// kept.
#[derive(Default)]
struct WakeUp {
    woken: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Wake for WakeUp {
    fn wake(self: Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        let waker = self.waker.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<S: ?Sized> Shared<S> {
    /// Starts running `task` under the caller's `transfer` in an async loop (see
    /// [`Running`]).
    pub fn start<'a, T: Task>(&'a self, task: &'a mut T, transfer: Transfer) -> Running<'a, S, T> {
        Running {
            shared: self,
            task: Controlled::new(task, transfer),
            wake_up: Arc::default(),
            ended: false,
        }
    }
}

impl<S: ?Sized, T: Task> Running<'_, S, T> {
    /// What to do next: the task's poll, the client's state locked for it only. A wakeable
    /// wait registers this loop for the client's next wake-up before the lock is released
    /// (so none is missed): [`Running::woken`] then resolves.
    pub fn poll(&mut self) -> Action<T::Output> {
        let mut state = self.shared.lock();
        let action = self.task.poll(Instant::now(), &mut state);
        if action.is_wakeable() {
            // Older wake-ups are stale: this poll saw the state they announced.
            self.wake_up.woken.store(false, Ordering::SeqCst);
            self.shared
                .register(&state, Waker::from(Arc::clone(&self.wake_up)));
        }
        self.ended = matches!(action, Action::Done(_));
        action
    }

    /// Reports the event of a step of `lane` (a download's progress then goes to the
    /// transfer's observer).
    pub fn on_event(&mut self, lane: LaneId, event: Event) {
        let mut state = self.shared.lock();
        self.task.on_event(Instant::now(), &mut state, lane, event);
    }

    /// Resolves at this loop's next wake-up (at once if one came since the last wakeable
    /// poll): await it next to the step futures and the timer of a `Wait { wakeable: true }`.
    pub fn woken(&self) -> impl Future<Output = ()> + Send + 'static + use<S, T> {
        let wake_up = Arc::clone(&self.wake_up);
        std::future::poll_fn(move |cx: &mut Context<'_>| {
            *wake_up.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
            match wake_up.woken.swap(false, Ordering::SeqCst) {
                true => Poll::Ready(()),
                false => Poll::Pending,
            }
        })
    }
}

#[cfg(feature = "async")]
impl<S: ?Sized, T: Task> Running<'_, S, T> {
    /// The whole async loop of a transport, runtime-free (the core README's "Writing a
    /// transport" states it): each exchange step the task hands out is started as a future
    /// made by `step(lane, lane_io, exchange)` — the transport's one piece, moving bytes —
    /// and the steps of all lanes run at once; a wait is for the first step to end, a
    /// wake-up from the client (when wakeable) or the timer `sleep_until(until)`; each step's
    /// event goes back to the task with the lane's I/O (`L`: its response body, kept between
    /// its steps) until the task is done. Dropping the future cancels the task.
    pub async fn run<L, F, Z>(
        mut self,
        step: impl Fn(LaneId, L, Exchange) -> F,
        sleep_until: impl Fn(Instant) -> Z,
    ) -> Result<T::Output, Error>
    where
        L: Default,
        F: Future<Output = (L, Event)>,
        Z: Future<Output = ()>,
    {
        use futures_util::StreamExt;
        let (mut idle, mut steps) = (HashMap::new(), FuturesUnordered::new());
        let step = &step;
        loop {
            let (lane, io, event) = match self.poll() {
                Action::Exchange(lane, exchange) => {
                    let io = idle.remove(&lane).unwrap_or_default();
                    steps.push(async move {
                        let (io, event) = step(lane, io, exchange).await;
                        (lane, io, event)
                    });
                    continue;
                }
                Action::Wait { until, wakeable } => {
                    let (mut woken, timer) = (pin!(self.woken()), until.map(&sleep_until));
                    let mut timer = pin!(timer);
                    let first = std::future::poll_fn(|cx| {
                        if let Poll::Ready(Some(done)) = steps.poll_next_unpin(cx) {
                            return Poll::Ready(Some(done));
                        }
                        let woken = wakeable && woken.as_mut().poll(cx).is_ready();
                        let due = match timer.as_mut().as_pin_mut() {
                            Some(timer) => timer.poll(cx).is_ready(),
                            None => false,
                        };
                        match woken || due {
                            true => Poll::Ready(None),
                            false => Poll::Pending,
                        }
                    });
                    match first.await {
                        Some(done) => done,
                        None => continue,
                    }
                }
                Action::WakeOthers => {
                    self.shared.wake_all();
                    continue;
                }
                Action::Done(result) => return result,
            };
            idle.insert(lane, io);
            self.on_event(lane, event);
        }
    }
}

impl<S: ?Sized, T: Task> Drop for Running<'_, S, T> {
    fn drop(&mut self) {
        if !self.ended {
            self.task.cancel(&mut self.shared.lock());
            self.shared.wake_all();
        }
    }
}

impl<S: ?Sized, T: Task> std::fmt::Debug for Running<'_, S, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("task", &self.task)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use std::pin::pin;
    use std::sync::atomic::AtomicUsize;

    use wecom_material_core::ClientSettings;
    use wecom_material_core::task::ClientState;

    use super::*;

    /// A task that waits (wakeable or not) until it is told it is over.
    #[derive(Default)]
    struct Waiting {
        wakeable: bool,
        over: bool,
        cancelled: bool,
    }

    impl Task for Waiting {
        type Output = ();

        fn poll(&mut self, _: Instant, _: &mut ClientState) -> Action<()> {
            match self.over {
                true => Action::Done(Ok(())),
                false => Action::Wait {
                    until: None,
                    wakeable: self.wakeable,
                },
            }
        }

        fn on_event(&mut self, _: Instant, _: &mut ClientState, _: LaneId, _: Event) {}

        fn cancel(&mut self, _: &mut ClientState) {
            self.cancelled = true;
        }
    }

    /// Another task of the client, waiting: counts its wake-ups.
    #[derive(Default)]
    struct Other(AtomicUsize);

    impl Wake for Other {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn client() -> Shared<()> {
        Shared::new(ClientSettings::new("corp", "secret"), None)
    }

    fn waiting_other(shared: &Shared<()>) -> Arc<Other> {
        let other = Arc::new(Other::default());
        shared.register(&shared.lock(), Waker::from(Arc::clone(&other)));
        other
    }

    #[test]
    fn a_loop_dropped_before_its_task_ended_cancels_it_and_wakes_the_others() {
        let (shared, mut task) = (client(), Waiting::default());
        let other = waiting_other(&shared);
        let mut running = shared.start(&mut task, Transfer::default());
        assert!(matches!(running.poll(), Action::Wait { .. }));
        drop(running);
        assert!(task.cancelled);
        assert_eq!(other.0.load(Ordering::SeqCst), 1);

        let mut over = Waiting {
            over: true,
            ..Waiting::default()
        };
        let other = waiting_other(&shared);
        let mut running = shared.start(&mut over, Transfer::default());
        assert!(matches!(running.poll(), Action::Done(Ok(()))));
        drop(running);
        assert!(!over.cancelled, "an ended task is left alone");
        assert_eq!(other.0.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_wakeable_wait_is_woken_by_the_client_and_a_wake_up_before_the_last_poll_is_stale() {
        let mut cx = Context::from_waker(Waker::noop());
        let shared = client();
        let mut task = Waiting {
            wakeable: true,
            ..Waiting::default()
        };
        let mut running = shared.start(&mut task, Transfer::default());
        assert!(matches!(
            running.poll(),
            Action::Wait { wakeable: true, .. }
        ));
        let mut woken = pin!(running.woken());
        assert!(woken.as_mut().poll(&mut cx).is_pending());
        shared.wake_all();
        assert!(woken.as_mut().poll(&mut cx).is_ready());

        // A wake-up before the loop awaits is kept; one before the last poll is not.
        running.poll();
        shared.wake_all();
        assert!(pin!(running.woken()).poll(&mut cx).is_ready());
        running.poll();
        shared.wake_all();
        running.poll();
        assert!(pin!(running.woken()).poll(&mut cx).is_pending());
    }

    /// Hands out a flush on lanes 1 and 2 at once, waits (with a timer once both answered),
    /// then ends with what it saw.
    #[cfg(feature = "async")]
    #[derive(Default)]
    struct TwoLanes {
        handed: u16,
        answered: Vec<(LaneId, bool)>,
        timer_seen: bool,
        waited_once: bool,
    }

    #[cfg(feature = "async")]
    impl Task for TwoLanes {
        type Output = (Vec<(LaneId, bool)>, bool);

        fn poll(&mut self, now: Instant, _: &mut ClientState) -> Action<Self::Output> {
            if self.handed < 2 {
                self.handed += 1;
                return Action::Exchange(LaneId(self.handed), Exchange::FlushSink);
            }
            if self.answered.len() < 2 {
                return Action::Wait {
                    until: None,
                    wakeable: false,
                };
            }
            if !self.waited_once {
                self.waited_once = true;
                return Action::Wait {
                    until: Some(now),
                    wakeable: false,
                };
            }
            self.timer_seen = true;
            Action::Done(Ok((std::mem::take(&mut self.answered), self.timer_seen)))
        }

        fn on_event(&mut self, _: Instant, _: &mut ClientState, lane: LaneId, event: Event) {
            self.answered
                .push((lane, matches!(event, Event::Flushed(None))));
        }

        fn cancel(&mut self, _: &mut ClientState) {}
    }

    /// The loop starts each lane's step, reports each answer on its lane with the lane's I/O
    /// kept, and sleeps with the runtime's timer when the task says so.
    #[cfg(feature = "async")]
    #[test]
    fn run_drives_the_lanes_of_a_task_and_its_timer() {
        let shared = client();
        let mut task = TwoLanes::default();
        let (steps, timers) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let step = |lane: LaneId, io: Vec<u16>, exchange| {
            steps.fetch_add(1, Ordering::SeqCst);
            assert!(io.is_empty(), "a lane's I/O starts empty");
            assert!(matches!(exchange, Exchange::FlushSink));
            std::future::ready((vec![lane.0], Event::Flushed(None)))
        };
        let sleep = |_| {
            timers.fetch_add(1, Ordering::SeqCst);
            std::future::ready(())
        };
        let running = shared.start(&mut task, Transfer::default());
        let mut run = pin!(running.run(step, sleep));
        let mut cx = Context::from_waker(Waker::noop());
        let Poll::Ready(Ok((answered, timer_seen))) = run.as_mut().poll(&mut cx) else {
            panic!("every step and timer is ready at once");
        };
        let mut lanes: Vec<u16> = answered.iter().map(|(lane, _)| lane.0).collect();
        lanes.sort_unstable();
        assert_eq!(lanes, [1, 2]);
        assert!(answered.iter().all(|(_, flushed)| *flushed));
        assert!(timer_seen);
        assert_eq!(steps.load(Ordering::SeqCst), 2);
        assert_eq!(
            timers.load(Ordering::SeqCst),
            1,
            "a wait with no time sets no timer"
        );
    }
}
