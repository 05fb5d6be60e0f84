//! Plain data shared by the transports for long transfers: progress and cancellation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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
