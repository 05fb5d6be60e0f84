//! Dropping repeated deliveries of the same job.

use std::collections::{HashSet, VecDeque};

use crate::media_type::JobId;

/// Remembers the last `capacity` job ids seen, so that WeCom's retried deliveries (up to 3
/// more of the same event) are handled once. Memory is bounded: the oldest id is forgotten
/// when a new one comes in at capacity.
#[derive(Debug, Clone)]
pub struct JobDeduplicator {
    capacity: usize,
    order: VecDeque<JobId>,
    seen: HashSet<JobId>,
}

impl JobDeduplicator {
    /// How many ids [`JobDeduplicator::default`] keeps.
    pub const DEFAULT_CAPACITY: usize = 1024;

    /// Keeps the last `capacity` ids (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            order: VecDeque::with_capacity(capacity.min(Self::DEFAULT_CAPACITY)),
            seen: HashSet::with_capacity(capacity.min(Self::DEFAULT_CAPACITY)),
        }
    }

    /// Whether `job_id` is new; it is remembered either way.
    pub fn first_time(&mut self, job_id: &JobId) -> bool {
        if self.seen.contains(job_id) {
            return false;
        }
        if self.order.len() == self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        self.order.push_back(job_id.clone());
        self.seen.insert(job_id.clone());
        true
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

impl Default for JobDeduplicator {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_dropped_and_memory_is_bounded() {
        let mut d = JobDeduplicator::new(2);
        let (a, b, c) = (JobId::new("a"), JobId::new("b"), JobId::new("c"));
        assert!(d.first_time(&a));
        assert!(!d.first_time(&a));
        assert!(d.first_time(&b));
        assert!(!d.first_time(&a));
        assert!(d.first_time(&c)); // forgets a
        assert_eq!(d.len(), 2);
        assert!(!d.is_empty());
        assert!(!d.first_time(&b));
        assert!(!d.first_time(&c));
        assert!(d.first_time(&a));
    }

    #[test]
    fn zero_capacity_still_catches_immediate_repeats() {
        let mut d = JobDeduplicator::new(0);
        let a = JobId::new("a");
        assert!(d.first_time(&a));
        assert!(!d.first_time(&a));
        assert!(JobDeduplicator::default().is_empty());
    }
}
