//! The emulator's clock: every expiry (tokens, media, the upload-image quota day) reads it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of "now" for the emulator: the system clock ([`Clock::real`], fixed), the system
/// clock plus an offset that [`Clock::advance`] moves ([`Clock::adjustable`], the default of
/// [`MockConfig`](crate::MockConfig), so the admin API's `POST /__mock/clock` works), or a
/// manual one that only moves when a test calls [`Clock::advance`]. Clones share the same time.
#[derive(Clone)]
pub struct Clock {
    inner: Arc<ClockKind>,
}

enum ClockKind {
    Real,
    /// The system clock plus this many milliseconds.
    Offset(AtomicU64),
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

    /// The system clock plus an offset that starts at zero and grows with [`Clock::advance`].
    pub fn adjustable() -> Self {
        Clock {
            inner: Arc::new(ClockKind::Offset(AtomicU64::new(0))),
        }
    }

    /// Whether [`Clock::advance`] can move this clock (every clock but [`Clock::real`]).
    pub fn can_advance(&self) -> bool {
        !matches!(*self.inner, ClockKind::Real)
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

    /// Moves a manual or adjustable clock forward.
    ///
    /// # Panics
    /// On the real clock, which cannot be moved (a test that tries has a bug).
    pub fn advance(&self, by: Duration) {
        match &*self.inner {
            ClockKind::Real => panic!("Clock::advance called on the real clock"),
            ClockKind::Manual(ms) | ClockKind::Offset(ms) => {
                let add = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
                ms.fetch_add(add, Ordering::SeqCst);
            }
        }
    }

    /// Now, as a duration since the Unix epoch (millisecond resolution on a manual clock).
    pub fn now(&self) -> Duration {
        let system = || {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or(Duration::ZERO)
        };
        match &*self.inner {
            ClockKind::Real => system(),
            ClockKind::Offset(ms) => system() + Duration::from_millis(ms.load(Ordering::SeqCst)),
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
            ClockKind::Offset(ms) => write!(
                f,
                "Clock::Adjustable(+{}s)",
                ms.load(Ordering::SeqCst) / 1000
            ),
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
        assert!(!Clock::real().can_advance());
    }

    #[test]
    fn adjustable_clock_is_the_system_clock_plus_what_was_advanced() {
        let c = Clock::adjustable();
        assert!(c.can_advance() && !c.is_manual());
        let before = c.now_unix();
        c.advance(Duration::from_secs(3 * 24 * 3600));
        let after = c.now_unix();
        assert!(after >= before + 3 * 24 * 3600, "{before} -> {after}");
        assert!(after < before + 3 * 24 * 3600 + 600, "{before} -> {after}");
    }
}
