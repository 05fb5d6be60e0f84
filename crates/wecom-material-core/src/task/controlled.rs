//! The caller's controls of one operation — a [`Transfer`]: the cancel flag, the overall
//! deadline, the progress observer — applied to any [`Task`] in one place, so that no
//! transport decides any of it.

use std::time::{Duration, Instant};

use crate::error::Error;
use crate::task::{Action, ClientState, Event, LaneId, Task};
use crate::transfer::{Progress, Transfer};

/// A [`Task`] under the caller's controls, itself a [`Task`]: the loop of every transport
/// polls this instead of the task (see the [module documentation](super)).
///
/// * The cancel flag, checked on every poll, cancels the task once; it ends with
///   [`Error::Cancelled`] naming the operation and how far it got.
/// * The deadline ([`Transfer::deadline`]) counts from the first poll. When it has passed,
///   the task is cancelled once, and the [`Error::Cancelled`] it ends with becomes
///   [`Error::DeadlineExceeded`] (same operation, same bytes). Until then every
///   [`Action::Wait`] is capped at the deadline, so an async transport wakes for it; a
///   blocking transport sees it when its step in flight ends (bounded by the idle timeout).
///   Whichever of the cancel and the deadline comes first names the error.
/// * After each [`Event::Written`] the task's [`Task::progress`] goes to the progress
///   observer (an upload's frames report its payload progress themselves).
///
/// It reads no clock: time comes in as `now`, as for every task.
pub struct Controlled<'a, T: Task> {
    task: &'a mut T,
    transfer: Transfer,
    /// The first poll's time: the deadline counts from it.
    started: Option<Instant>,
    /// Why the task was cancelled, once it was.
    stop: Option<Stop>,
}

#[derive(Debug, Clone, Copy)]
enum Stop {
    /// The caller's flag, or a transport's drop guard.
    Caller,
    /// The deadline, of this length, passed.
    Deadline(Duration),
}

impl<T: Task> std::fmt::Debug for Controlled<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controlled")
            .field("transfer", &self.transfer)
            .field("started", &self.started)
            .field("stop", &self.stop)
            .finish_non_exhaustive()
    }
}

impl<'a, T: Task> Controlled<'a, T> {
    /// `task` under the controls of `transfer`.
    pub fn new(task: &'a mut T, transfer: Transfer) -> Self {
        Self {
            task,
            transfer,
            started: None,
            stop: None,
        }
    }

    /// When the deadline passes, once the task was polled (`None`: no deadline, or one too
    /// far to count).
    pub fn deadline_at(&self) -> Option<Instant> {
        self.started?.checked_add(self.transfer.deadline?)
    }

    /// The task.
    pub fn task(&self) -> &T {
        self.task
    }
}

impl<T: Task> Task for Controlled<'_, T> {
    type Output = T::Output;

    /// What to do next: the task's poll after the cancel flag and the deadline were applied.
    fn poll(&mut self, now: Instant, state: &mut ClientState) -> Action<T::Output> {
        self.started.get_or_insert(now);
        if self.stop.is_none() {
            if self.transfer.is_cancelled() {
                self.stop = Some(Stop::Caller);
                self.task.cancel(state);
            } else if let (Some(deadline), Some(at)) = (self.transfer.deadline, self.deadline_at())
                && now >= at
            {
                self.stop = Some(Stop::Deadline(deadline));
                self.task.cancel(state);
            }
        }
        match (self.task.poll(now, state), self.stop) {
            (
                Action::Done(Err(Error::Cancelled {
                    operation,
                    bytes,
                    total,
                })),
                Some(Stop::Deadline(deadline)),
            ) => Action::Done(Err(Error::DeadlineExceeded {
                operation,
                deadline,
                bytes,
                total,
            })),
            // Only while the deadline is ahead: once the task is cancelled, it waits for its
            // outstanding steps, and a wait until a past instant would spin.
            (Action::Wait { until, wakeable }, None) => {
                let until = match (until, self.deadline_at()) {
                    (Some(until), Some(at)) => Some(until.min(at)),
                    (until, at) => until.or(at),
                };
                Action::Wait { until, wakeable }
            }
            (action, _) => action,
        }
    }

    /// Reports the outcome of the last exchange step of `lane` to the task; after
    /// [`Event::Written`], the task's progress goes to the observer.
    fn on_event(&mut self, now: Instant, state: &mut ClientState, lane: LaneId, event: Event) {
        let written = matches!(event, Event::Written(_));
        self.task.on_event(now, state, lane, event);
        if written && let Some(Progress { done, total }) = self.task.progress() {
            self.transfer.report(done, total);
        }
    }

    fn progress(&self) -> Option<Progress> {
        self.task.progress()
    }

    /// Gives the operation up (a transport's drop guard): as the caller's cancel.
    fn cancel(&mut self, state: &mut ClientState) {
        self.stop.get_or_insert(Stop::Caller);
        self.task.cancel(state);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use std::sync::{Arc, Mutex};

    use super::super::download_task::tests::state_with_token;
    use super::*;
    use crate::PollPolicy;
    use crate::body::Body;
    use crate::driver::RetryPolicy;
    use crate::endpoint::BaseUrl;
    use crate::error::OperationKind;
    use crate::limits::Limits;
    use crate::media_type::{JobId, MediaType};
    use crate::multipart::Boundary;
    use crate::ops::upload_media::UploadMedia;
    use crate::task::{
        CallTask, DownloadOptions, DownloadTask, Exchange, JobWaitTask, NextFrame, Timeouts,
        UploadFrames,
    };
    use crate::transfer::CancelFlag;

    const SECS_5: Duration = Duration::from_secs(5);

    fn base() -> BaseUrl {
        BaseUrl::parse("http://127.0.0.1:9").unwrap()
    }

    /// An upload of `len` bytes held in memory.
    fn upload(len: usize) -> CallTask<UploadMedia> {
        let boundary = Boundary::new("controlled-test").unwrap();
        let bytes = bytes::Bytes::from(vec![7u8; len]);
        let op = UploadMedia::from_bytes(
            MediaType::File,
            "a.bin",
            bytes,
            boundary,
            &Limits::default(),
        )
        .unwrap();
        CallTask::new(op, base(), RetryPolicy::default(), 1, Timeouts::Media)
    }

    fn download() -> DownloadTask {
        DownloadTask::from_parts(
            "m".into(),
            DownloadOptions::default(),
            crate::download::plan::MAX_CHUNK_SIZE,
            base(),
            RetryPolicy::default(),
            1,
        )
        .unwrap()
    }

    fn head(status: u16, headers: &[(&str, &str)]) -> http::response::Parts {
        let mut b = http::Response::builder().status(status);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    /// The upload's `Send`: its body's frames, as a transport pulls them.
    fn frames_of<O>(action: Action<O>) -> UploadFrames {
        match action {
            Action::Exchange(LaneId::MAIN, Exchange::Send { request, .. }) => {
                match request.into_body() {
                    Body::Upload(upload) => UploadFrames::new(upload, Transfer::default()),
                    other => panic!("{other:?}"),
                }
            }
            other => panic!("{}", std::any::type_name_of_val(&other)),
        }
    }

    /// Pulls frames until `payload` payload bytes were sent.
    fn send_payload(frames: &mut UploadFrames, payload: u64) {
        while frames.progress().done < payload {
            match frames.next_frame().unwrap() {
                NextFrame::Bytes(_) => {}
                other => panic!("{other:?}"),
            }
        }
    }

    /// The polls after a download's cancel: the flush, then the result.
    fn flush_and_finish<T: Task>(
        control: &mut Controlled<'_, T>,
        state: &mut ClientState,
        now: Instant,
    ) -> Error {
        loop {
            match control.poll(now, state) {
                Action::Exchange(lane, Exchange::FlushSink) => {
                    control.on_event(now, state, lane, Event::Flushed(None));
                }
                Action::Done(Err(error)) => return error,
                Action::Done(Ok(_)) => panic!("ended well"),
                Action::Exchange(_, step) => panic!("{step:?}"),
                Action::Wait { until, .. } => panic!("waits until {until:?}"),
                Action::WakeOthers => {}
            }
        }
    }

    /// An upload whose deadline passes while its body is out ends at once, with the bytes
    /// its frames had sent; it does not wait for the body's step (an async transport drops
    /// the request).
    #[test]
    fn a_controlled_task_debugs_as_its_controls_and_state() {
        let t0 = Instant::now();
        let mut state = state_with_token(t0);
        let mut task = upload(1000);
        let flag = CancelFlag::new();
        let transfer = Transfer::default()
            .with_deadline(SECS_5)
            .cancelled_by(&flag);
        let mut control = Controlled::new(&mut task, transfer);
        let shown = format!("{control:?}");
        assert!(
            shown.starts_with(
                "Controlled { transfer: Transfer { progress: false, cancel: Some(CancelFlag(false)), deadline: Some(5s) }, started: None, stop: None"
            ),
            "{shown}"
        );
        let _ = control.poll(t0, &mut state);
        flag.cancel();
        let _ = control.poll(t0, &mut state);
        let shown = format!("{control:?}");
        assert!(
            shown.contains("started: Some(") && shown.contains("stop: Some(Caller)"),
            "{shown}"
        );
    }

    #[test]
    fn an_upload_past_its_deadline_mid_body_names_the_upload_and_the_bytes_sent() {
        let t0 = Instant::now();
        let mut state = state_with_token(t0);
        let mut task = upload(2 * 1024 * 1024);
        let transfer = Transfer::default().with_deadline(SECS_5);
        let mut control = Controlled::new(&mut task, transfer);
        let mut frames = frames_of(control.poll(t0, &mut state));
        send_payload(&mut frames, 512 * 1024);
        // The step is still out: before the deadline the task waits for it, until then.
        match control.poll(t0 + Duration::from_secs(1), &mut state) {
            Action::Wait { until, .. } => assert_eq!(until, Some(t0 + SECS_5)),
            other => panic!("{other:?}"),
        }
        send_payload(&mut frames, 1024 * 1024);
        let error = match control.poll(t0 + SECS_5, &mut state) {
            Action::Done(Err(error)) => error,
            other => panic!("{other:?}"),
        };
        assert!(
            matches!(
                error,
                Error::DeadlineExceeded {
                    operation: OperationKind::Upload,
                    deadline: SECS_5,
                    bytes: 1_048_576,
                    total: Some(2_097_152),
                }
            ),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "upload's deadline of 5 s passed after 1048576 of 2097152 payload bytes were sent"
        );
    }

    /// The caller's flag ends a task with `Cancelled` naming the operation (and, for an
    /// upload, how far it got), never with the deadline's error, even once that passed.
    #[test]
    fn a_drop_guard_cancel_is_the_callers_and_progress_is_the_tasks() {
        let t0 = Instant::now();
        let mut state = state_with_token(t0);
        let mut task = upload(2 * 1024 * 1024);
        let mut control = Controlled::new(&mut task, Transfer::default().with_deadline(SECS_5));
        let mut frames = frames_of(control.poll(t0, &mut state));
        send_payload(&mut frames, 512 * 1024);
        assert_eq!(
            control.progress(),
            Some(Progress {
                done: 512 * 1024,
                total: Some(2 * 1024 * 1024)
            })
        );
        // The transport's future was dropped: its guard cancels, after the deadline too.
        control.cancel(&mut state);
        let error = flush_and_finish(&mut control, &mut state, t0 + Duration::from_secs(9));
        assert!(
            matches!(
                error,
                Error::Cancelled {
                    operation: OperationKind::Upload,
                    bytes: 524_288,
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn the_cancel_flag_ends_a_task_with_cancelled_naming_the_operation() {
        let t0 = Instant::now();
        let mut state = state_with_token(t0);
        let flag = CancelFlag::new();
        let transfer = Transfer {
            cancel: Some(flag.clone()),
            ..Transfer::default().with_deadline(SECS_5)
        };

        let mut task = upload(1000);
        let mut control = Controlled::new(&mut task, transfer.clone());
        let mut frames = frames_of(control.poll(t0, &mut state));
        send_payload(&mut frames, 1000);
        flag.cancel();
        let error = flush_and_finish(&mut control, &mut state, t0 + Duration::from_secs(9));
        assert!(
            matches!(
                error,
                Error::Cancelled {
                    operation: OperationKind::Upload,
                    bytes: 1000,
                    total: Some(1000),
                }
            ),
            "{error:?}"
        );

        let mut wait = JobWaitTask::from_parts(
            JobId::new("job-1"),
            t0 + Duration::from_secs(60),
            PollPolicy::default(),
            base(),
            RetryPolicy::default(),
            1,
        )
        .unwrap();
        let flag = CancelFlag::new();
        let transfer = Transfer {
            cancel: Some(flag.clone()),
            ..transfer
        };
        let mut control = Controlled::new(&mut wait, transfer);
        // The wait's first job-result request is out when the flag is seen.
        assert!(matches!(
            control.poll(t0, &mut state),
            Action::Exchange(_, Exchange::Send { .. })
        ));
        flag.cancel();
        let error = flush_and_finish(&mut control, &mut state, t0);
        assert!(
            matches!(
                error,
                Error::Cancelled {
                    operation: OperationKind::JobWait,
                    bytes: 0,
                    total: None,
                }
            ),
            "{error:?}"
        );
        assert_eq!(error.to_string(), "job wait cancelled by the caller");
    }

    /// The deadline ends a download: the sink is flushed, the bytes that reached it are
    /// counted (a write outstanding at the deadline too), and the wait for that write is not
    /// capped at the past deadline (it would spin).
    #[test]
    fn the_deadline_ends_a_download_after_its_outstanding_write_and_a_flush() {
        let t0 = Instant::now();
        let mut state = state_with_token(t0);
        let mut task = download();
        let mut control = Controlled::new(&mut task, Transfer::default().with_deadline(SECS_5));
        assert!(matches!(
            control.poll(t0, &mut state),
            Action::Exchange(_, Exchange::Send { .. })
        ));
        let h = head(
            200,
            &[
                ("content-length", "100000"),
                ("content-disposition", "attachment"),
            ],
        );
        control.on_event(t0, &mut state, LaneId::MAIN, Event::Head(h));
        for _ in 0..2 {
            assert!(matches!(
                control.poll(t0, &mut state),
                Action::Exchange(_, Exchange::Stream { .. })
            ));
            control.on_event(t0, &mut state, LaneId::MAIN, Event::Written(2500));
        }
        assert!(matches!(
            control.poll(t0, &mut state),
            Action::Exchange(_, Exchange::Stream { .. })
        ));
        let late = t0 + SECS_5;
        match control.poll(late, &mut state) {
            Action::Wait { until: None, .. } => {}
            other => panic!("{other:?}"),
        }
        control.on_event(late, &mut state, LaneId::MAIN, Event::Written(100));
        let error = flush_and_finish(&mut control, &mut state, late);
        assert!(
            matches!(
                error,
                Error::DeadlineExceeded {
                    operation: OperationKind::Download,
                    deadline: SECS_5,
                    bytes: 5100,
                    total: None,
                }
            ),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "download's deadline of 5 s passed; 5100 bytes had reached the sink"
        );
    }

    /// A retry's backoff never sleeps past the deadline; the poll at the deadline ends it.
    #[test]
    fn a_wait_is_capped_at_the_deadline() {
        let t0 = Instant::now();
        let mut state = state_with_token(t0);
        let mut task = download();
        let deadline = Duration::from_millis(100);
        let mut control = Controlled::new(&mut task, Transfer::default().with_deadline(deadline));
        assert!(matches!(
            control.poll(t0, &mut state),
            Action::Exchange(_, Exchange::Send { .. })
        ));
        let busy = head(200, &[("content-type", "application/json")]);
        control.on_event(t0, &mut state, LaneId::MAIN, Event::Head(busy));
        assert!(matches!(
            control.poll(t0, &mut state),
            Action::Exchange(_, Exchange::ReadBody { .. })
        ));
        let body = bytes::Bytes::from_static(br#"{"errcode":-1,"errmsg":"busy"}"#);
        control.on_event(t0, &mut state, LaneId::MAIN, Event::Body(body));
        // The first backoff is longer than the deadline with this policy.
        let backoff = RetryPolicy::default().backoff(0, 1);
        assert!(backoff > deadline, "{backoff:?}");
        match control.poll(t0, &mut state) {
            Action::Wait { until, .. } => assert_eq!(until, Some(t0 + deadline)),
            other => panic!("{other:?}"),
        }
        let error = flush_and_finish(&mut control, &mut state, t0 + deadline);
        assert!(
            matches!(
                error,
                Error::DeadlineExceeded {
                    operation: OperationKind::Download,
                    bytes: 0,
                    ..
                }
            ),
            "{error:?}"
        );

        // Without a deadline the wait is the task's own.
        let mut task = download();
        let mut control = Controlled::new(&mut task, Transfer::default());
        let mut state = state_with_token(t0);
        control.poll(t0, &mut state);
        let busy = head(200, &[("content-type", "application/json")]);
        control.on_event(t0, &mut state, LaneId::MAIN, Event::Head(busy));
        control.poll(t0, &mut state);
        let body = bytes::Bytes::from_static(br#"{"errcode":-1,"errmsg":"busy"}"#);
        control.on_event(t0, &mut state, LaneId::MAIN, Event::Body(body));
        match control.poll(t0, &mut state) {
            Action::Wait { until, .. } => assert!(until.is_some_and(|u| u > t0 + deadline)),
            other => panic!("{other:?}"),
        }
    }

    /// Progress goes to the observer after `Written` only, with the task's count.
    #[test]
    fn progress_is_reported_after_written_only() {
        let t0 = Instant::now();
        let mut state = state_with_token(t0);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let observed =
            Transfer::default().with_progress(move |p: Progress| log.lock().unwrap().push(p));
        let mut task = download();
        let mut control = Controlled::new(&mut task, observed.clone());
        control.poll(t0, &mut state);
        let h = head(
            200,
            &[
                ("content-length", "10000"),
                ("content-disposition", "attachment"),
            ],
        );
        control.on_event(t0, &mut state, LaneId::MAIN, Event::Head(h));
        assert!(seen.lock().unwrap().is_empty(), "a head moved no byte");
        control.poll(t0, &mut state);
        control.on_event(t0, &mut state, LaneId::MAIN, Event::Written(4000));
        assert_eq!(
            *seen.lock().unwrap(),
            vec![Progress {
                done: 4000,
                total: Some(10000)
            }]
        );
        // An upload's frames report its progress themselves: a Head after the body reports
        // nothing here.
        let mut up = upload(100);
        let mut control = Controlled::new(&mut up, observed);
        let mut frames = frames_of(control.poll(t0, &mut state));
        send_payload(&mut frames, 100);
        control.on_event(t0, &mut state, LaneId::MAIN, Event::Head(head(200, &[])));
        assert_eq!(seen.lock().unwrap().len(), 1);
    }
}
