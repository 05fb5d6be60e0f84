//! Plain data shared by the transports for long transfers: progress, cancellation, the
//! overall deadline, and what a download wrote.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::ops::get_media::MediaInfo;

/// How far a transfer has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes sent or received so far.
    pub done: u64,
    /// Total bytes, when known.
    pub total: Option<u64>,
}

/// A flag a caller sets to stop a transfer; transports check it between chunks and buffers.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    /// A flag that is not set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the transfer to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether the transfer should stop.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A progress observer, shared by the transfer and whatever reports to it (an upload's body
/// that an HTTP library owns and polls on a task of its own).
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// The caller's controls of one operation, given to a transport's upload, download or save
/// call: progress reporting, cancellation and an overall deadline. The core applies them to
/// any [`Task`](crate::Task) through [`Controlled`](crate::task::Controlled).
///
/// It owns what it holds (the observer and the flag are shared handles, cheap to clone), so
/// that an upload's body built with it can be handed to an HTTP library that takes only
/// `'static` bodies.
#[derive(Default, Clone)]
pub struct Transfer {
    /// Called with bytes done / total as the transfer moves.
    pub progress: Option<ProgressFn>,
    /// Checked between buffers, frames and chunks; set it to stop the transfer with
    /// [`Error::Cancelled`](crate::Error::Cancelled).
    pub cancel: Option<CancelFlag>,
    /// The whole operation at most this long, from its first poll; when it passes, the
    /// operation is given up (a download flushes its sink first) and ends with
    /// [`Error::DeadlineExceeded`](crate::Error::DeadlineExceeded). `None`: no overall cut, a
    /// stall still ends a transfer (an idle timeout, and a download body under 1 KiB/s).
    ///
    /// It is checked whenever the task is polled; an async transport wakes for it. A
    /// blocking transport cannot interrupt a step in flight (ureq sending an upload's body,
    /// waiting for an answer): the media idle timeout bounds such a step, and the deadline
    /// ends the operation right after it. An upload whose body was all sent when the deadline
    /// passed may have been stored by WeCom even so.
    pub deadline: Option<Duration>,
}

impl Transfer {
    /// The same transfer, given up after `deadline` (see [`Transfer::deadline`]).
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Reports progress to the observer, if any.
    pub fn report(&self, done: u64, total: Option<u64>) {
        if let Some(progress) = &self.progress {
            progress(Progress { done, total });
        }
    }

    /// The same transfer, stopped by `flag` (a handle to the caller's flag) instead.
    pub fn cancelled_by(mut self, flag: &CancelFlag) -> Self {
        self.cancel = Some(flag.clone());
        self
    }

    /// Whether the caller asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(CancelFlag::is_cancelled)
    }

    /// The same transfer (cancel flag, deadline) reporting to `progress` instead.
    pub fn with_progress(mut self, progress: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(progress));
        self
    }
}

impl std::fmt::Debug for Transfer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transfer")
            .field("progress", &self.progress.is_some())
            .field("cancel", &self.cancel)
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// Progress of several transfers run side by side (a batch of uploads): each reports its own
/// bytes, the caller's transfer sees their sum.
#[derive(Debug)]
pub struct BatchProgress {
    done: Vec<AtomicU64>,
    to: Transfer,
}

impl BatchProgress {
    /// A batch of `n` transfers reporting to `to`.
    pub fn new(n: usize, to: Transfer) -> Arc<Self> {
        Arc::new(Self {
            done: (0..n).map(|_| AtomicU64::new(0)).collect(),
            to,
        })
    }

    /// The transfer of item `i`: the caller's cancel flag and deadline, its progress counted
    /// into the batch's.
    pub fn item(self: &Arc<Self>, i: usize) -> Transfer {
        let batch = Arc::clone(self);
        self.to.clone().with_progress(move |p| batch.report(i, p))
    }

    /// Item `i` reached `progress`: reports the bytes of the whole batch.
    pub fn report(&self, i: usize, progress: Progress) {
        if let Some(item) = self.done.get(i) {
            item.store(progress.done, Ordering::Relaxed);
        }
        let done = self.done.iter().map(|d| d.load(Ordering::Relaxed)).sum();
        self.to.report(done, None);
    }

    /// The results of a batch, collected as `(index, result)` in the order they ended, in
    /// input order.
    pub fn in_order<R>(mut results: Vec<(usize, R)>) -> Vec<R> {
        results.sort_by_key(|(i, _)| *i);
        results.into_iter().map(|(_, result)| result).collect()
    }
}

/// What a download wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    /// The first media head: content type and (sanitized) filename.
    pub info: MediaInfo,
    /// Bytes written by this call (the whole media, less a resumed prefix).
    pub bytes_written: u64,
    /// Size of the whole media.
    pub total: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch's results come back in input order, whatever order the items ended in.
    #[test]
    fn a_batchs_results_come_in_input_order() {
        let ended = vec![(2, "c"), (0, "a"), (3, "d"), (1, "b")];
        assert_eq!(BatchProgress::in_order(ended), ["a", "b", "c", "d"]);
    }

    /// Each item reports its own bytes; the caller sees the sum of the latest of each.
    #[test]
    fn a_batch_reports_the_sum_of_its_items() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let cancel = CancelFlag::new();
        let to = Transfer::default()
            .with_progress(move |p| log.lock().unwrap().push((p.done, p.total)))
            .cancelled_by(&cancel);
        let batch = BatchProgress::new(2, to);
        let at = |done| Progress { done, total: None };
        let (first, second) = (batch.item(0), batch.item(1));
        first.report(50, Some(100));
        second.report(30, Some(40));
        batch.report(0, at(60));
        batch.report(7, at(1)); // no such item: the sum is reported unchanged
        cancel.cancel();
        assert!(
            first.is_cancelled() && second.is_cancelled(),
            "the caller's flag"
        );
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen, [(50, None), (80, None), (90, None), (90, None)]);
    }
}
