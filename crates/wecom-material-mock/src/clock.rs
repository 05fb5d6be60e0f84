//! The emulator's clock: every expiry (tokens, media, the upload-image quota day) reads it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of "now" for the emulator, either the system clock or a manual one that only moves
/// when a test calls [`Clock::advance`]. Clones share the same time.
#[derive(Clone)]
pub struct Clock {
    inner: Arc<ClockKind>,
}

enum ClockKind {
    Real,
    /// Milliseconds since the Unix epoch.
    Manual(AtomicU64),
}

impl Clock {
    /// The system clock.
    pub fn real() -> Self {
        Clock {
            inner: Arc::new(ClockKind::Real),
        }
    }

    /// A manual clock that starts at `start_unix` seconds since the Unix epoch and moves only
    /// through [`Clock::advance`].
    pub fn manual(start_unix: u64) -> Self {
        Clock {
            inner: Arc::new(ClockKind::Manual(AtomicU64::new(
                start_unix.saturating_mul(1000),
            ))),
        }
    }

    /// Whether this is a manual clock.
    pub fn is_manual(&self) -> bool {
        matches!(*self.inner, ClockKind::Manual(_))
    }

    /// Moves a manual clock forward.
    ///
    /// # Panics
    /// On the real clock, which cannot be moved (a test that tries has a bug).
    pub fn advance(&self, by: Duration) {
        match &*self.inner {
            ClockKind::Real => panic!("Clock::advance called on the real clock"),
            ClockKind::Manual(ms) => {
                let add = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
                ms.fetch_add(add, Ordering::SeqCst);
            }
        }
    }

    /// Now, as a duration since the Unix epoch (millisecond resolution on a manual clock).
    pub fn now(&self) -> Duration {
        match &*self.inner {
            ClockKind::Real => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or(Duration::ZERO),
            ClockKind::Manual(ms) => Duration::from_millis(ms.load(Ordering::SeqCst)),
        }
    }

    /// Now, in whole seconds since the Unix epoch.
    pub fn now_unix(&self) -> u64 {
        self.now().as_secs()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::real()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.inner {
            ClockKind::Real => f.write_str("Clock::Real"),
            ClockKind::Manual(_) => write!(f, "Clock::Manual({}s)", self.now_unix()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced_and_clones_share_time() {
        let c = Clock::manual(1_000);
        let c2 = c.clone();
        assert_eq!(c.now_unix(), 1_000);
        c2.advance(Duration::from_secs(7200));
        assert_eq!(c.now_unix(), 8_200);
        assert!(c.is_manual());
        assert!(!Clock::real().is_manual());
    }
}
