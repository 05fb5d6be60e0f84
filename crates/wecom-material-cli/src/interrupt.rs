//! An API command interrupted by Ctrl-C (SIGINT), SIGTERM or SIGHUP still saves the token it
//! fetched: the signal is taken by a thread that writes the token cache and then ends the
//! process with status 128 + the signal, as the default action would have. Without it, every
//! interrupted run cost the next one a gettoken (and gettoken is rate limited).
//!
//! A partial download is kept as on any stop: the next run resumes it.

use std::sync::Arc;
use std::thread::JoinHandle;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};

use crate::session::Session;

/// While alive, a signal saves the session's token and exits; dropping it restores the
/// default action.
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
            if let Some(signal) = signals.forever().next() {
                log::info!("interrupted (signal {signal}): saving the token first");
                session.persist();
                std::process::exit(128 + signal);
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
