//! Seeds for backoff jitter and multipart boundaries.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::multipart::Boundary;

/// Seeds for the tasks of one client: a counter mixed (splitmix64) with a key that the
/// transport draws once from its own randomness. The core has no randomness of its own; this
/// keeps one formula for every transport.
#[derive(Debug)]
pub struct Seeds {
    key: u64,
    counter: AtomicU64,
}

impl Seeds {
    /// Seeds drawn from `key` (e.g. a randomly keyed hash).
    pub fn new(key: u64) -> Self {
        Self {
            key,
            counter: AtomicU64::new(0),
        }
    }

    /// The next seed.
    pub fn next(&self) -> u64 {
        crate::driver::splitmix64(self.key ^ self.counter.fetch_add(1, Relaxed))
    }

    /// A fresh multipart boundary from the next two seeds.
    pub fn boundary(&self) -> Boundary {
        let (a, b) = (self.next().to_be_bytes(), self.next().to_be_bytes());
        let mut entropy = [0u8; 16];
        entropy[..8].copy_from_slice(&a);
        entropy[8..].copy_from_slice(&b);
        Boundary::from_entropy(entropy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_differ_and_repeat_for_the_same_key() {
        let (a, b) = (Seeds::new(7), Seeds::new(7));
        let first: Vec<u64> = (0..4).map(|_| a.next()).collect();
        assert_eq!(first, (0..4).map(|_| b.next()).collect::<Vec<_>>());
        assert_ne!(first[0], first[1]);
        assert_ne!(Seeds::new(8).next(), first[0]);
        assert_ne!(a.boundary().as_str(), a.boundary().as_str());
    }
}
