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

/// The 8-byte word number `word` of [`write_large`]'s file for `seed`: a 64-bit mix of its
/// number, so that any misplaced or repeated chunk of a large file differs.
fn large_word(seed: u64, word: u64) -> [u8; 8] {
    let mut x = (word ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (x ^ (x >> 29)).to_le_bytes()
}

/// Writes a file of `len` bytes whose content [`LargeCheck`] recognises, in constant memory
/// (1 MiB at a time): for tests of files too big to hold twice (the relay's 150 MB).
pub fn write_large(path: &std::path::Path, len: u64, seed: u64) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut chunk = vec![0u8; 1 << 20];
    let mut at = 0u64;
    while at < len {
        let n = (len - at).min(chunk.len() as u64) as usize;
        fill_large(seed, at, &mut chunk[..n]);
        out.write_all(&chunk[..n])?;
        at += n as u64;
    }
    out.flush()
}

fn fill_large(seed: u64, at: u64, buf: &mut [u8]) {
    let (mut offset, mut i) = (at, 0);
    while i < buf.len() {
        let word = large_word(seed, offset / 8);
        let skip = (offset % 8) as usize;
        let n = (8 - skip).min(buf.len() - i);
        buf[i..i + n].copy_from_slice(&word[skip..skip + n]);
        (i, offset) = (i + n, offset + n as u64);
    }
}

/// A writer that checks what it is given against [`write_large`]'s content for `seed`,
/// byte for byte, in constant memory; [`LargeCheck::matched`] then says whether exactly
/// `len` bytes came, all equal.
#[derive(Debug)]
pub struct LargeCheck {
    seed: u64,
    at: u64,
    first_mismatch: Option<u64>,
    expected: Vec<u8>,
}

impl LargeCheck {
    /// A check of the content for `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            at: 0,
            first_mismatch: None,
            expected: Vec::new(),
        }
    }

    /// `Ok(())` when exactly `len` bytes matching the content came; else where it differed.
    pub fn matched(&self, len: u64) -> Result<(), String> {
        match self.first_mismatch {
            Some(at) => Err(format!("the bytes differ from offset {at}")),
            None if self.at != len => Err(format!("{} bytes came, not {len}", self.at)),
            None => Ok(()),
        }
    }
}

impl std::io::Write for LargeCheck {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.expected.resize(buf.len(), 0);
        fill_large(self.seed, self.at, &mut self.expected);
        if self.first_mismatch.is_none()
            && let Some(i) = buf.iter().zip(&self.expected).position(|(a, b)| a != b)
        {
            self.first_mismatch = Some(self.at + i as u64);
        }
        self.at += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
