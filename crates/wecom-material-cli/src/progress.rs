//! Progress bars on stderr (indicatif) for transfers over 1 MB, only when stderr is a
//! terminal and the output is not JSON.

use std::io::IsTerminal;
use std::sync::OnceLock;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use wecom_material_core::Progress;

/// Transfers of at most this many bytes get no bar.
const MIN_BAR_BYTES: u64 = 1_000_000;

/// A bar created on the first progress report of a large transfer.
pub(crate) struct TransferBar {
    enabled: bool,
    label: String,
    bar: OnceLock<ProgressBar>,
}

impl TransferBar {
    /// A bar for a transfer called `label`; `json` disables it, as does a stderr that is not
    /// a terminal.
    pub(crate) fn new(label: impl Into<String>, json: bool) -> Self {
        Self {
            enabled: !json && std::io::stderr().is_terminal(),
            label: label.into(),
            bar: OnceLock::new(),
        }
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
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message(self.label.clone());
            bar
        });
        bar.set_position(progress.done);
    }

    /// Removes the bar.
    pub(crate) fn finish(&self) {
        if let Some(bar) = self.bar.get() {
            bar.finish_and_clear();
        }
    }
}
