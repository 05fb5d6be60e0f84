//! `callback` (waits for its library part to be merged).

use crate::failure::Failure;

/// Not built yet.
pub(crate) fn run() -> Result<(), Failure> {
    Err(Failure::other("callback: not available in this build yet"))
}
