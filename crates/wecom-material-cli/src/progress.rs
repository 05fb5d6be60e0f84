//! Progress on stderr for transfers over 1 MB: an indicatif bar while it runs (only when
//! stderr is a terminal, without `--json` and `--quiet`), and one summary line when it ends
//! (without `--json` and `--quiet`, terminal or not).
//!
//! Speed and time left count only the bytes moved in this run: a resumed download starts its
//! bar at the bytes already on disk, and those are not "speed". Sizes use the bar's units
//! (binary: KiB, MiB) everywhere, see [`crate::output::size`].

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use wecom_material_core::Progress;

use crate::output::{self, Output};

/// Transfers of at most this many bytes get no bar and no summary.
const MIN_BAR_BYTES: u64 = 1_000_000;

/// A bar created on the first progress report of a large transfer.
pub(crate) struct TransferBar {
    /// Draw a bar (a terminal, no `--json`, no `--quiet`).
    enabled: bool,
    /// Print the summary line (no `--json`, no `--quiet`).
    summary: bool,
    label: String,
    group: Option<MultiProgress>,
    bar: OnceLock<ProgressBar>,
    started: Instant,
}

impl TransferBar {
    /// A bar for a transfer called `label`.
    pub(crate) fn new(label: impl Into<String>, out: Output) -> Self {
        Self {
            enabled: !out.json && !out.quiet && std::io::stderr().is_terminal(),
            summary: !out.json && !out.quiet,
            label: label.into(),
            group: None,
            bar: OnceLock::new(),
            started: Instant::now(),
        }
    }

    /// A bar for a transfer called `label`, to share with the transfer's progress observer
    /// ([`TransferBar::observer`]).
    pub(crate) fn shared(label: impl Into<String>, out: Output) -> Arc<Self> {
        Arc::new(Self::new(label, out))
    }

    /// A bar drawn with others (parallel transfers) in `group`.
    pub(crate) fn in_group(mut self, group: &MultiProgress) -> Self {
        self.group = Some(group.clone());
        self
    }

    /// The bar as a transfer's progress observer (it reports to the bar it shares).
    pub(crate) fn observer(self: &Arc<Self>) -> impl Fn(Progress) + Send + Sync + 'static {
        let bar = Arc::clone(self);
        move |p| bar.report(p)
    }

    /// Takes one progress report.
    pub(crate) fn report(&self, progress: Progress) {
        if !self.enabled {
            return;
        }
        let total = progress.total.unwrap_or(0);
        if total <= MIN_BAR_BYTES && self.bar.get().is_none() {
            return;
        }
        let bar = self.bar.get_or_init(|| {
            // The first report's position is where this run started (a resumed download's
            // bytes on disk, plus at most one buffer): speed counts from there.
            let base = progress.done;
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
                .with_position(base);
            bar.set_style(style(base));
            bar.set_message(self.label.clone());
            match &self.group {
                Some(group) => group.add(bar),
                None => bar,
            }
        });
        bar.set_position(progress.done);
    }

    /// Removes the bar and prints the summary of a large transfer: `moved` bytes in this run
    /// after `resumed_at` bytes that were already there.
    pub(crate) fn finish(&self, moved: u64, resumed_at: u64) {
        if let Some(bar) = self.bar.get() {
            bar.finish_and_clear();
        }
        if self.summary && moved + resumed_at > MIN_BAR_BYTES {
            let line = summary(&self.label, moved, resumed_at, self.started.elapsed());
            match &self.group {
                // Above the other bars; a hidden group (no terminal) would drop the line.
                Some(group) if self.enabled => {
                    let _ = group.println(line);
                }
                _ => eprintln!("{line}"),
            }
        }
    }

    /// Removes the bar of a transfer that failed.
    pub(crate) fn abandon(&self) {
        if let Some(bar) = self.bar.get() {
            bar.finish_and_clear();
        }
    }
}

/// A spinner for a wait with no bytes to count (WeCom's job fetching a relayed file): drawn
/// from [`Spinner::start`] to [`Spinner::finish`], only when a bar would be.
pub(crate) struct Spinner {
    enabled: bool,
    label: String,
    group: Option<MultiProgress>,
    bar: OnceLock<ProgressBar>,
}

impl Spinner {
    /// A spinner called `label`, drawn with others in `group` if given.
    pub(crate) fn new(label: String, out: Output, group: Option<&MultiProgress>) -> Self {
        Self {
            enabled: !out.json && !out.quiet && std::io::stderr().is_terminal(),
            label,
            group: group.cloned(),
            bar: OnceLock::new(),
        }
    }

    /// Starts spinning (once; later calls do nothing).
    pub(crate) fn start(&self) {
        if !self.enabled {
            return;
        }
        self.bar.get_or_init(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.set_message(self.label.clone());
            bar.enable_steady_tick(Duration::from_millis(120));
            match &self.group {
                Some(group) => group.add(bar),
                None => bar,
            }
        });
    }

    /// Removes the spinner.
    pub(crate) fn finish(&self) {
        if let Some(bar) = self.bar.get() {
            bar.finish_and_clear();
        }
    }
}

/// The bar: `label [=====>    ] 1.20 MiB/2.86 MiB 850.00 KiB/s 2s`, speed and time left from
/// the bytes moved since `base`.
fn style(base: u64) -> ProgressStyle {
    ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {run_rate} {run_left}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "run_rate",
            move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                if let Some(rate) = rate(state.pos().saturating_sub(base), state.elapsed()) {
                    let _ = write!(w, "{}/s", output::size(rate));
                }
            },
        )
        .with_key(
            "run_left",
            move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let remaining = state.len().unwrap_or(0).saturating_sub(state.pos());
                let moved = state.pos().saturating_sub(base);
                if let Some(left) = time_left(moved, remaining, state.elapsed()) {
                    let _ = write!(w, "{}s left", left.as_secs());
                }
            },
        )
        .progress_chars("=> ")
}

/// Bytes per second of `moved` bytes in `elapsed` (none before anything moved).
pub(crate) fn rate(moved: u64, elapsed: Duration) -> Option<u64> {
    let secs = elapsed.as_secs_f64();
    (moved > 0 && secs > 0.0).then(|| (moved as f64 / secs) as u64)
}

/// How long `remaining` bytes take at the speed of `moved` bytes in `elapsed`.
pub(crate) fn time_left(moved: u64, remaining: u64, elapsed: Duration) -> Option<Duration> {
    if moved == 0 {
        return None;
    }
    let secs = elapsed.as_secs_f64() * remaining as f64 / moved as f64;
    Duration::try_from_secs_f64(secs).ok()
}

/// `get X: 1.68 MiB in 0.4 s (4.20 MiB/s), resumed at 1.18 MiB`.
fn summary(label: &str, moved: u64, resumed_at: u64, elapsed: Duration) -> String {
    let mut line = format!(
        "{label}: {} in {:.1} s",
        output::size(moved),
        elapsed.as_secs_f64()
    );
    if let Some(rate) = rate(moved, elapsed) {
        let _ = write!(line, " ({}/s)", output::size(rate));
    }
    if resumed_at > 0 {
        let _ = write!(line, ", resumed at {}", output::size(resumed_at));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_and_time_left_count_only_the_bytes_of_this_run() {
        // Resumed at 1,000,000 bytes of 3,000,000; 500,000 more moved in 1 s.
        let base = 1_000_000;
        let pos = 1_500_000;
        let moved = pos - base;
        let elapsed = Duration::from_secs(1);
        assert_eq!(rate(moved, elapsed), Some(500_000));
        assert_eq!(
            time_left(moved, 3_000_000 - pos, elapsed),
            Some(Duration::from_secs(3))
        );
        assert_eq!(rate(0, elapsed), None);
        assert_eq!(time_left(0, 10, elapsed), None);
        assert_eq!(rate(10, Duration::ZERO), None);
    }

    #[test]
    fn the_summary_names_the_bytes_of_this_run_in_the_bars_units() {
        let line = summary(
            "get x",
            2 * 1024 * 1024,
            1024 * 1024,
            Duration::from_secs(2),
        );
        assert_eq!(
            line,
            "get x: 2.00 MiB in 2.0 s (1.00 MiB/s), resumed at 1.00 MiB"
        );
    }
}
