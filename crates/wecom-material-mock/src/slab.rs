//! Where stored media bytes live. Small media are copied, back to back and without slack,
//! into shared 64 MiB slabs; a media of 1 MiB or more gets an allocation of its own.
//!
//! Why: glibc's malloc keeps freed memory of ~100 KB blocks in its arenas, so an emulator
//! that stored and evicted many uploads stayed at its peak RSS even after a reset. A slab is
//! larger than glibc's largest mmap threshold (32 MiB), so it is always a mapping of its
//! own, given back to the system when its last media goes; eviction is oldest first, so
//! slabs empty in the order they were filled. Pages of a slab that were never written are
//! never resident. The price: a slab stays while any of its media lives, so media kept while
//! those around them were deleted hold up to a slab each (eviction by age or budget, the
//! common case, frees slabs whole).

use std::sync::Mutex;

use bytes::{Bytes, BytesMut};

/// The size of one slab.
const SLAB: usize = 64 << 20;
/// Media this large or larger get an allocation of their own.
const OWN: usize = 1 << 20;

/// The slab being filled.
#[derive(Debug, Default)]
pub(crate) struct Slabs {
    current: Mutex<BytesMut>,
}

impl Slabs {
    /// The chunks joined into one `Bytes` that holds exactly their bytes.
    pub(crate) fn store(&self, chunks: &[Bytes]) -> Bytes {
        let total: usize = chunks.iter().map(Bytes::len).sum();
        if total >= OWN || total == 0 {
            let mut own = Vec::with_capacity(total);
            for chunk in chunks {
                own.extend_from_slice(chunk);
            }
            return Bytes::from(own);
        }
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.capacity() < total {
            // The rest of the old slab stays with the media already in it.
            *current = BytesMut::with_capacity(SLAB);
        }
        for chunk in chunks {
            current.extend_from_slice(chunk);
        }
        current.split().freeze()
    }

    /// Lets go of the slab being filled (a reset: its media are gone).
    pub(crate) fn clear(&self) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = BytesMut::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_media_sit_back_to_back_and_large_ones_alone() {
        let slabs = Slabs::default();
        let a = slabs.store(&[Bytes::from_static(b"hello "), Bytes::from_static(b"world")]);
        let b = slabs.store(&[Bytes::from(vec![7u8; 1000])]);
        assert_eq!(&a[..], b"hello world");
        assert_eq!(b, vec![7u8; 1000]);
        // No slack: the second starts where the first ends.
        assert_eq!(a.as_ptr() as usize + a.len(), b.as_ptr() as usize);
        let big = slabs.store(&[Bytes::from(vec![1u8; OWN])]);
        let mut big = big.try_into_mut().expect("an allocation of its own");
        assert_eq!(big.capacity(), OWN);
        big[0] = 2;
        let c = slabs.store(&[Bytes::from_static(b"after")]);
        assert_eq!(b.as_ptr() as usize + b.len(), c.as_ptr() as usize);
    }

    #[test]
    fn a_full_slab_is_followed_by_a_new_one() {
        let slabs = Slabs::default();
        let chunk = Bytes::from(vec![3u8; OWN - 1]);
        let first = slabs.store(std::slice::from_ref(&chunk));
        let mut last = first.clone();
        for _ in 0..(SLAB / (OWN - 1)) {
            last = slabs.store(std::slice::from_ref(&chunk));
        }
        assert_eq!(last, chunk);
        let distance = (last.as_ptr() as usize).abs_diff(first.as_ptr() as usize);
        assert!(distance >= SLAB - OWN, "the last one is in another slab");
    }
}
