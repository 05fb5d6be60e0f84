//! The emulator's clock: every expiry (tokens, media, the upload-image quota day) reads it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
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
    /// The system clock plus this many milliseconds (negative after a set into the past).
    Offset(AtomicI64),
    /// Milliseconds since the Unix epoch, and where it started (for [`Clock::reset`]).
    Manual {
        now: AtomicU64,
        start: u64,
    },
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
            inner: Arc::new(ClockKind::Offset(AtomicI64::new(0))),
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
            inner: Arc::new(ClockKind::Manual {
                now: AtomicU64::new(start_unix.saturating_mul(1000)),
                start: start_unix.saturating_mul(1000),
            }),
        }
    }

    /// Whether this is a manual clock.
    pub fn is_manual(&self) -> bool {
        matches!(*self.inner, ClockKind::Manual { .. })
    }

    /// Moves a manual or adjustable clock forward.
    ///
    /// # Panics
    /// On the real clock, which cannot be moved (a test that tries has a bug).
    pub fn advance(&self, by: Duration) {
        match &*self.inner {
            ClockKind::Real => panic!("Clock::advance called on the real clock"),
            ClockKind::Manual { now, .. } => {
                let add = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
                now.fetch_add(add, Ordering::SeqCst);
            }
            ClockKind::Offset(ms) => {
                let add = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
                ms.fetch_add(add, Ordering::SeqCst);
            }
        }
    }

    /// Sets a manual or adjustable clock to `unix_secs` seconds since the Unix epoch (forward
    /// or back); `false` on [`Clock::real`], which cannot be set.
    pub fn set_unix(&self, unix_secs: u64) -> bool {
        let target = i64::try_from(unix_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        match &*self.inner {
            ClockKind::Real => false,
            ClockKind::Manual { now, .. } => {
                now.store(target.unsigned_abs(), Ordering::SeqCst);
                true
            }
            ClockKind::Offset(ms) => {
                let system = i64::try_from(system_now().as_millis()).unwrap_or(i64::MAX);
                ms.store(target.saturating_sub(system), Ordering::SeqCst);
                true
            }
        }
    }

    /// Puts the clock back where it started: an adjustable clock on the system clock again, a
    /// manual one at its start. The real clock is unchanged.
    pub fn reset(&self) {
        match &*self.inner {
            ClockKind::Real => {}
            ClockKind::Manual { now, start } => now.store(*start, Ordering::SeqCst),
            ClockKind::Offset(ms) => ms.store(0, Ordering::SeqCst),
        }
    }

    /// Now, as a duration since the Unix epoch (millisecond resolution on a manual clock).
    pub fn now(&self) -> Duration {
        match &*self.inner {
            ClockKind::Real => system_now(),
            ClockKind::Offset(ms) => {
                let offset = ms.load(Ordering::SeqCst);
                let magnitude = Duration::from_millis(offset.unsigned_abs());
                if offset >= 0 {
                    system_now().saturating_add(magnitude)
                } else {
                    system_now().saturating_sub(magnitude)
                }
            }
            ClockKind::Manual { now, .. } => Duration::from_millis(now.load(Ordering::SeqCst)),
        }
    }

    /// Now, in whole seconds since the Unix epoch.
    pub fn now_unix(&self) -> u64 {
        self.now().as_secs()
    }
}

fn system_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
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
                "Clock::Adjustable({:+}s)",
                ms.load(Ordering::SeqCst) / 1000
            ),
            ClockKind::Manual { .. } => write!(f, "Clock::Manual({}s)", self.now_unix()),
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

    #[test]
    fn clocks_can_be_set_back_and_reset() {
        let c = Clock::adjustable();
        assert!(c.set_unix(1_000_000));
        // It keeps ticking with the system clock from there (allow for a slow machine).
        assert!((1_000_000..1_000_060).contains(&c.now_unix()));
        c.advance(Duration::from_secs(500));
        assert!((1_000_500..1_000_560).contains(&c.now_unix()));
        c.reset();
        assert!(c.now_unix() >= Clock::real().now_unix().saturating_sub(1));

        let m = Clock::manual(500);
        m.advance(Duration::from_secs(100));
        assert!(m.set_unix(50));
        assert_eq!(m.now_unix(), 50);
        m.reset();
        assert_eq!(m.now_unix(), 500);
        assert!(!Clock::real().set_unix(5));
    }
}
