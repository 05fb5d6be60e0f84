//! Small, valid sample payloads for tests, demos and benchmarks: each starts with the signature
//! WeCom (and this emulator) checks, and the filler differs from byte to byte so that a
//! misplaced chunk cannot pass a comparison.

use crate::config::MediaKind;

/// Deterministic pseudo-random bytes (xorshift), never compressible zeros.
pub fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// `prefix` followed by noise, `len` bytes in all (at least the prefix).
fn with_prefix(prefix: &[u8], len: usize) -> Vec<u8> {
    let mut v = prefix.to_vec();
    v.extend(noise(len.saturating_sub(prefix.len())));
    v
}

/// A JPEG of `len` bytes: SOI and a JFIF APP0 segment, then filler.
pub fn jpeg(len: usize) -> Vec<u8> {
    with_prefix(
        b"\xFF\xD8\xFF\xE0\x00\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0",
        len,
    )
}

/// A PNG of `len` bytes: the signature and an IHDR chunk, then filler.
pub fn png(len: usize) -> Vec<u8> {
    with_prefix(
        b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\x10\0\0\0\x10\x08\x02\0\0\0",
        len,
    )
}

/// AMR-NB voice of `len` bytes: the `#!AMR\n` magic, then filler.
pub fn amr(len: usize) -> Vec<u8> {
    with_prefix(b"#!AMR\n", len)
}

/// An MP4 of `len` bytes: an `ftyp` box, then filler.
pub fn mp4(len: usize) -> Vec<u8> {
    with_prefix(b"\0\0\0\x18ftypisom\0\0\x02\0isommp41", len)
}

/// A payload of `len` bytes that the upload endpoint accepts for `kind`.
pub fn for_kind(kind: MediaKind, len: usize) -> Vec<u8> {
    match kind {
        MediaKind::Image => jpeg(len),
        MediaKind::Voice => amr(len),
        MediaKind::Video => mp4(len),
        MediaKind::File => noise(len),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_have_their_signatures_and_lengths() {
        assert!(jpeg(100).starts_with(&[0xFF, 0xD8, 0xFF]) && jpeg(100).len() == 100);
        assert!(png(100).starts_with(b"\x89PNG\r\n\x1a\n") && png(100).len() == 100);
        assert!(amr(7).starts_with(b"#!AMR\n") && amr(7).len() == 7);
        assert_eq!(&mp4(64)[4..8], b"ftyp");
        assert_eq!(noise(3), noise(3));
        assert_ne!(noise(64)[..32], noise(64)[32..]);
        assert!(for_kind(MediaKind::Voice, 10).starts_with(b"#!AMR"));
    }
}
