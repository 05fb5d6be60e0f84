//! Running a batch of items with at most `jobs` at once, for both clients' `upload_all`:
//! on threads for the blocking client, as futures on the caller's task for the async one
//! (feature `async`). The results come back as `(index, result)` pairs in the order they
//! ended.

use std::sync::Mutex;

/// Runs `each(i, item)` for every item on `jobs` scoped threads (at least one, at most one
/// per item); each thread takes the next item when it is done with one.
pub fn on_threads<I: Send, R: Send>(
    items: Vec<I>,
    jobs: usize,
    each: impl Fn(usize, I) -> R + Sync,
) -> Vec<(usize, R)> {
    let threads = jobs.clamp(1, items.len().max(1));
    let waiting = Mutex::new(items.into_iter().enumerate());
    let ended = Mutex::new(Vec::new());
    let next = || waiting.lock().unwrap_or_else(|e| e.into_inner()).next();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while let Some((i, item)) = next() {
                    let result = each(i, item);
                    ended
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((i, result));
                }
            });
        }
    });
    ended.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// Runs the futures `each(i, item)` with at most `jobs` (at least one) in flight at once,
/// side by side on the caller's task.
#[cfg(feature = "async")]
pub async fn concurrently<I, F: Future>(
    items: Vec<I>,
    jobs: usize,
    each: impl Fn(usize, I) -> F,
) -> Vec<(usize, F::Output)> {
    use futures_util::StreamExt;
    let (mut waiting, each) = (items.into_iter().enumerate(), &each);
    let (mut running, mut ended) = (futures_util::stream::FuturesUnordered::new(), Vec::new());
    loop {
        while running.len() < jobs.max(1)
            && let Some((i, item)) = waiting.next()
        {
            running.push(async move { (i, each(i, item).await) });
        }
        match running.next().await {
            Some(done) => ended.push(done),
            None => return ended,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// Counts how many runs are inside at once.
    #[derive(Default)]
    struct InFlight {
        now: AtomicUsize,
        most: AtomicUsize,
    }

    impl InFlight {
        fn enter(&self) {
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
        }

        fn leave(&self) {
            self.now.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn sorted<R: Ord>(mut ended: Vec<(usize, R)>) -> Vec<(usize, R)> {
        ended.sort();
        ended
    }

    #[test]
    fn threads_run_every_item_once_with_at_most_jobs_at_once() {
        let inside = InFlight::default();
        let each = |i, item: u32| {
            inside.enter();
            std::thread::sleep(Duration::from_millis(5));
            inside.leave();
            (i, item * 10)
        };
        let ended = on_threads((0..12).collect(), 3, each);
        let expected: Vec<_> = (0..12).map(|i| (i, (i, i as u32 * 10))).collect();
        assert_eq!(sorted(ended), expected);
        assert_eq!(inside.most.load(Ordering::SeqCst), 3);

        // No jobs means one; none to run returns at once.
        let inside = InFlight::default();
        let one = |i, _: ()| {
            inside.enter();
            std::thread::sleep(Duration::from_millis(2));
            inside.leave();
            i
        };
        assert_eq!(sorted(on_threads(vec![(); 4], 0, one)).len(), 4);
        assert_eq!(inside.most.load(Ordering::SeqCst), 1);
        assert!(on_threads(Vec::<()>::new(), 8, |i, ()| i).is_empty());
    }

    #[cfg(feature = "async")]
    #[test]
    fn futures_run_every_item_once_with_at_most_jobs_in_flight() {
        use std::pin::pin;
        use std::task::{Context, Poll, Waker};

        let inside = InFlight::default();
        let each = |i: usize, item: u32| {
            let inside = &inside;
            async move {
                inside.enter();
                // Pending once: the others are started meanwhile, up to `jobs`.
                let mut yielded = false;
                std::future::poll_fn(|cx| match std::mem::replace(&mut yielded, true) {
                    false => {
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                    true => Poll::Ready(()),
                })
                .await;
                inside.leave();
                (i, item + 1)
            }
        };
        let mut run = pin!(concurrently((0..10).collect(), 4, each));
        let mut cx = Context::from_waker(Waker::noop());
        let ended = loop {
            if let Poll::Ready(ended) = run.as_mut().poll(&mut cx) {
                break ended;
            }
        };
        let expected: Vec<_> = (0..10).map(|i| (i, (i, i as u32 + 1))).collect();
        assert_eq!(sorted(ended), expected);
        assert_eq!(inside.most.load(Ordering::SeqCst), 4);
    }
}
