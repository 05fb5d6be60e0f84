//! An API command interrupted by Ctrl-C (SIGINT), SIGTERM or SIGHUP still saves the token it
//! fetched: the signal is taken by a thread that writes the token cache and then ends the
//! process with status 128 + the signal, as the default action would have. Without it, every
//! interrupted run cost the next one a gettoken (and gettoken is rate limited).
//!
//! A partial download is kept as on any stop: the next run resumes it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};

use crate::session::Session;

/// Set by a command that stops itself on a signal (a save writes its record, a relay deletes
/// its object: see `stop_signal`): a signal then saves the token and leaves the exit to it.
static COMMAND_STOPS_ITSELF: AtomicBool = AtomicBool::new(false);

/// The running command takes SIGINT/SIGTERM as a cancel and exits once it has cleaned up.
pub(crate) fn command_stops_itself() {
    COMMAND_STOPS_ITSELF.store(true, Ordering::SeqCst);
}

/// While alive, a signal saves the session's token and exits (unless the command stops
/// itself); dropping it restores the default action.
pub(crate) struct SaveOnSignal {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl SaveOnSignal {
    /// Starts listening; `None` (with a debug line) when the signals cannot be taken.
    pub(crate) fn install(session: Arc<Session>) -> Option<Self> {
        let mut signals = match Signals::new([SIGINT, SIGTERM, SIGHUP]) {
            Ok(signals) => signals,
            Err(e) => {
                log::debug!("cannot take SIGINT/SIGTERM/SIGHUP: {e}");
                return None;
            }
        };
        let handle = signals.handle();
        let thread = std::thread::spawn(move || {
            for signal in signals.forever() {
                log::info!("interrupted (signal {signal}): saving the token first");
                session.persist();
                if !COMMAND_STOPS_ITSELF.load(Ordering::SeqCst) {
                    std::process::exit(128 + signal);
                }
            }
        });
        Some(Self {
            handle,
            thread: Some(thread),
        })
    }
}

impl Drop for SaveOnSignal {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
