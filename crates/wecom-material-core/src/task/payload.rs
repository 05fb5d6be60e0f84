//! Streaming an upload's payload from a source the transport holds (a file, a reader).

use std::path::Path;

use crate::body::Replay;
use crate::error::{Error, Invalid};
use crate::transfer::Progress;

/// Counts the payload bytes a transport reads from an upload source, so that every
/// transport sends exactly the announced length and reports the same progress.
///
/// The rule: a source must deliver exactly `len` bytes. Fewer is an error (the file shrank,
/// the reader ended early). For a replayable source (a file) more is an error too — the file
/// grew between `stat` and send, and a cut copy must not be sent as the media; a one-shot
/// reader is never read past `len` (the rest belongs to the caller).
///
/// ```text
/// loop {
///     let want = meter.want(buf.len());   // 0: the payload is complete
///     if want == 0 { break }
///     let n = source.read(&mut buf[..want])?;
///     meter.on_read(n as u64)?;           // checks the length rule
///     if n > 0 { send(&buf[..n]); report(meter.progress()); }
/// }
/// ```
#[derive(Debug, Clone)]
pub struct PayloadMeter {
    len: u64,
    read: u64,
    probe_end: bool,
    ended: bool,
}

impl PayloadMeter {
    /// A meter for a payload of `len` bytes from a source of this kind.
    pub fn new(len: u64, replay: Replay) -> Self {
        Self {
            len,
            read: 0,
            probe_end: replay == Replay::Replayable,
            ended: false,
        }
    }

    /// How many bytes to ask the source for next, given a buffer of `buf` bytes; 0 when the
    /// payload is complete. After `len` bytes of a file it asks for one more byte, to check
    /// that the file ends there.
    pub fn want(&self, buf: usize) -> usize {
        let left = self.len - self.read;
        if left > 0 {
            usize::try_from(left).map_or(buf, |l| l.min(buf))
        } else if self.probe_end && !self.ended {
            1
        } else {
            0
        }
    }

    /// Counts `n` bytes read (0 = the source ended).
    pub fn on_read(&mut self, n: u64) -> Result<(), Error> {
        let left = self.len - self.read;
        if n == 0 {
            if left > 0 {
                return Err(payload_error(format!(
                    "the payload ended after {} of {} bytes",
                    self.read, self.len
                )));
            }
            self.ended = true;
            return Ok(());
        }
        if n > left {
            return Err(payload_error(format!(
                "the payload is longer than the {} bytes announced (did the file grow?)",
                self.len
            )));
        }
        self.read += n;
        Ok(())
    }

    /// Payload bytes read so far, of the whole payload (multipart framing not counted).
    pub fn progress(&self) -> Progress {
        Progress {
            done: self.read,
            total: Some(self.len),
        }
    }
}

fn payload_error(message: String) -> Error {
    Error::io(
        "reading the upload payload",
        std::io::Error::new(std::io::ErrorKind::InvalidData, message),
    )
}

/// What a transport learned about an upload source before sending: the name users will see,
/// the length, the first bytes (for the format checks) and whether it can be re-read.
#[derive(Debug, Clone)]
pub struct UploadInput {
    /// The filename users see.
    pub filename: String,
    /// The payload length.
    pub len: u64,
    /// The first [`UploadInput::SNIFF_LEN`] bytes (or fewer), when known.
    pub prefix: Option<Vec<u8>>,
    /// Whether the source can be read again for a retry.
    pub replay: Replay,
}

impl UploadInput {
    /// How many leading bytes the format checks (AMR, JPEG/PNG) need.
    pub const SNIFF_LEN: usize = 16;

    /// A file at `path` of `len` bytes that starts with `prefix`; shown as `filename`, or
    /// by default under the file's own name.
    pub fn file(
        path: &Path,
        filename: Option<&str>,
        len: u64,
        prefix: Vec<u8>,
    ) -> Result<Self, Error> {
        let filename = match filename {
            Some(name) => name.to_owned(),
            None => path
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_owned)
                .ok_or(Error::Invalid(Invalid::MissingFilename))?,
        };
        Ok(Self {
            filename,
            len,
            prefix: Some(prefix),
            replay: Replay::Replayable,
        })
    }

    /// A reader that can be read once, `len` bytes long (its format is not checked: its
    /// bytes are not at hand before sending).
    pub fn reader(filename: &str, len: u64) -> Self {
        Self {
            filename: filename.to_owned(),
            len,
            prefix: None,
            replay: Replay::OneShot,
        }
    }

    /// The meter for streaming this input.
    pub fn meter(&self) -> PayloadMeter {
        PayloadMeter::new(self.len, self.replay)
    }

    /// The `media/upload` operation for this input.
    pub fn upload_media(
        &self,
        media_type: crate::MediaType,
        boundary: crate::Boundary,
        limits: &crate::Limits,
    ) -> Result<crate::UploadMedia, Error> {
        let prefix = self.prefix.as_deref();
        let payload = self.payload();
        Ok(crate::UploadMedia::new(
            media_type,
            &self.filename,
            payload,
            prefix,
            boundary,
            limits,
        )?)
    }

    /// The `media/uploadimg` operation for this input.
    pub fn upload_image(
        &self,
        boundary: crate::Boundary,
        limits: &crate::Limits,
    ) -> Result<crate::UploadImage, Error> {
        let prefix = self.prefix.as_deref();
        Ok(crate::UploadImage::new(
            &self.filename,
            self.payload(),
            prefix,
            boundary,
            limits,
        )?)
    }

    /// The payload description the upload operations take.
    pub fn payload(&self) -> crate::body::Payload {
        crate::body::Payload::External {
            len: self.len,
            replay: self.replay,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(meter: &mut PayloadMeter, mut source: &[u8]) -> Result<u64, Error> {
        let mut buf = [0u8; 4];
        let mut sent = 0;
        loop {
            let want = meter.want(buf.len());
            if want == 0 {
                return Ok(sent);
            }
            let n = std::io::Read::read(&mut source, &mut buf[..want]).unwrap();
            meter.on_read(n as u64)?;
            sent += n as u64;
        }
    }

    #[test]
    fn a_file_of_exactly_len_bytes_is_sent_whole() {
        let mut m = PayloadMeter::new(10, Replay::Replayable);
        assert_eq!(drain(&mut m, b"0123456789").unwrap(), 10);
        assert_eq!(m.progress().done, 10);
    }

    #[test]
    fn a_file_that_grew_is_refused_not_cut() {
        let mut m = PayloadMeter::new(10, Replay::Replayable);
        let err = drain(&mut m, b"0123456789X").unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        assert!(
            err.to_string().contains("longer than the 10 bytes"),
            "{err}"
        );
    }

    #[test]
    fn a_short_source_is_refused() {
        let mut m = PayloadMeter::new(10, Replay::OneShot);
        let err = drain(&mut m, b"0123").unwrap_err();
        assert!(err.to_string().contains("ended after 4 of 10"), "{err}");
    }

    #[test]
    fn a_reader_is_not_read_past_len() {
        let mut m = PayloadMeter::new(4, Replay::OneShot);
        assert_eq!(drain(&mut m, b"0123rest").unwrap(), 4);
    }

    #[test]
    fn a_file_input_is_named_after_the_file_unless_given_a_name() {
        let a = UploadInput::file(Path::new("/x/报告.pdf"), None, 9, vec![]).unwrap();
        assert_eq!(a.filename, "报告.pdf");
        let b = UploadInput::file(Path::new("/x/a.bin"), Some("b.pdf"), 9, vec![]).unwrap();
        assert_eq!(b.filename, "b.pdf");
        assert!(matches!(
            UploadInput::file(Path::new("/"), None, 9, vec![]),
            Err(Error::Invalid(Invalid::MissingFilename))
        ));
    }
}
