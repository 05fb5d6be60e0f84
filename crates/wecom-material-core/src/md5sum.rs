//! MD5 of a file for `upload_by_url`, fed chunk by chunk (the transports read the file).

use md5::{Digest, Md5};

/// An MD5 computed over chunks of a file, rendered as WeCom wants it: 32 lowercase hex digits.
#[derive(Clone, Default)]
pub struct Md5Hex(Md5);

impl Md5Hex {
    /// An empty hasher.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next chunk.
    pub fn update(&mut self, chunk: &[u8]) {
        self.0.update(chunk);
    }

    /// The digest as 32 lowercase hex digits.
    pub fn finish(self) -> String {
        self.0
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The MD5 of `bytes` in one go.
    pub fn of(bytes: &[u8]) -> String {
        let mut h = Self::new();
        h.update(bytes);
        h.finish()
    }
}

/// Feeding by `Write`, so that a blocking transport can `std::io::copy` a file into it.
impl std::io::Write for Md5Hex {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        assert_eq!(Md5Hex::of(b""), "d41d8cd98f00b204e9800998ecf8427e");
        let mut h = Md5Hex::new();
        h.update(b"The quick brown fox ");
        h.update(b"jumps over the lazy dog");
        assert_eq!(h.finish(), "9e107d9d372bb6826bd81d3542a419d6");
        let mut w = Md5Hex::new();
        std::io::copy(
            &mut &b"The quick brown fox jumps over the lazy dog"[..],
            &mut w,
        )
        .unwrap();
        assert_eq!(w.finish(), "9e107d9d372bb6826bd81d3542a419d6");
    }
}
