//! SIGINT and SIGTERM as a cancel: a save in progress writes its record, says how much is
//! kept and the command exits 130 or 143 (a second signal exits at once).

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};
use wecom_material_core::CancelFlag;

/// SIGINT and SIGTERM, turned into a cancel of the save in progress.
pub(crate) struct Stop {
    cancel: CancelFlag,
    signal: Arc<AtomicI32>,
}

impl Stop {
    /// Listens for the signals on a thread of its own; a second one exits at once. Without
    /// it (the handler cannot be installed), the signals keep their default action.
    pub(crate) fn install() -> Self {
        Self::install_with(CancelFlag::new(), None)
    }

    /// The same, setting `cancel` (a flag the command already holds) and printing `notice`
    /// on the first signal.
    pub(crate) fn install_with(cancel: CancelFlag, notice: Option<&'static str>) -> Self {
        crate::interrupt::command_stops_itself();
        let signal = Arc::new(AtomicI32::new(0));
        match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
            Ok(mut signals) => {
                let (flag, seen) = (cancel.clone(), Arc::clone(&signal));
                std::thread::spawn(move || {
                    for sig in signals.forever() {
                        if seen.swap(sig, Ordering::SeqCst) != 0 {
                            std::process::exit(128 + sig);
                        }
                        if let Some(notice) = notice {
                            eprintln!("{notice}");
                        }
                        flag.cancel();
                    }
                });
            }
            Err(e) => log::warn!("cannot handle SIGINT/SIGTERM (Ctrl-C keeps nothing): {e}"),
        }
        Self { cancel, signal }
    }

    /// The flag a signal sets: the `Transfer`'s cancel.
    pub(crate) fn flag(&self) -> &CancelFlag {
        &self.cancel
    }

    /// The signal received, if any.
    pub(crate) fn signal(&self) -> Option<i32> {
        Some(self.signal.load(Ordering::SeqCst)).filter(|&s| s != 0)
    }
}
