//! Streaming an upload's payload from a source the transport holds (a file, a reader).

use std::io::Read;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::body::{Payload, Replay};
use crate::error::{Error, Invalid, OperationKind};
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
    digest: Option<super::PayloadDigest>,
    sent: Option<crate::body::SentBytes>,
}

impl PayloadMeter {
    /// A meter for a payload of `len` bytes from a source of this kind.
    pub fn new(len: u64, replay: Replay) -> Self {
        Self {
            len,
            read: 0,
            probe_end: replay == Replay::Replayable,
            ended: false,
            digest: None,
            sent: None,
        }
    }

    /// This meter, fresh, for one attempt at sending `upload`: when the upload carries a
    /// [`PayloadDigest`](super::PayloadDigest), it is restarted here and fed by
    /// [`PayloadMeter::on_chunk`]; the upload's [`SentBytes`](crate::body::SentBytes) count
    /// starts over at 0 and follows every byte counted.
    pub fn for_attempt(&self, upload: &crate::body::UploadBody) -> Self {
        let (len, probe_end, digest) = (self.len, self.probe_end, upload.digest.clone());
        let fresh = Self {
            len,
            read: 0,
            probe_end,
            ended: false,
            digest,
            sent: Some(upload.sent.clone()),
        };
        fresh.restarted()
    }

    /// Counts the bytes just read (empty = the source ended, as [`PayloadMeter::on_read`])
    /// and feeds them to the upload's digest, if any.
    pub fn on_chunk(&mut self, chunk: &[u8]) -> Result<(), Error> {
        self.on_read(chunk.len() as u64)?;
        if let Some(digest) = &self.digest {
            digest.update(chunk);
        }
        Ok(())
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

    fn restarted(self) -> Self {
        if let Some(digest) = &self.digest {
            digest.restart();
        }
        if let Some(sent) = &self.sent {
            sent.set(0);
        }
        self
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
        if let Some(sent) = &self.sent {
            sent.set(self.read);
        }
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

/// What an upload body asks for next (see [`UploadFrames::next_frame`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextFrame {
    /// Send these bytes: the multipart head or tail, or a piece of a payload held in memory.
    Bytes(Bytes),
    /// Read at most `max` bytes (never 0, never over 512 KiB) of the payload from the
    /// source, send them, and report how many with [`UploadFrames::on_read`] (0: the source
    /// ended).
    Read {
        /// The most bytes to read.
        max: usize,
    },
    /// The body is complete.
    End,
}

/// An upload's body, `head ‖ payload ‖ tail`, as a sequence of frames that any transport
/// pulls — blocking ([`UploadReader`] is a `std::io::Read` over it) or async (an HTTP
/// library's body type fed frame by frame) — without framing anything itself. The payload
/// comes from the bytes the upload holds or from the transport's source through a
/// [`PayloadMeter`] (exactly the announced length: a file that grows or shrinks is an error,
/// never a cut copy); progress is reported and cancellation checked on every payload frame.
/// It does no I/O of its own.
///
/// ```text
/// loop {
///     match frames.next_frame()? {
///         NextFrame::Bytes(bytes) => send(bytes),
///         NextFrame::Read { max } => {
///             let n = source.read(&mut buf[..max]);   // or an async read
///             frames.on_read(&buf[..n])?;             // the length rule, digest, progress
///             if n > 0 { send(&buf[..n]) }
///         }
///         NextFrame::End => break,
///     }
/// }
/// ```
pub struct UploadFrames {
    head: Bytes,
    /// The payload when it is in memory (no source).
    held: Option<Bytes>,
    tail: Bytes,
    meter: PayloadMeter,
    transfer: crate::transfer::Transfer,
}

/// The largest payload frame, held in memory or read from a source (big enough for
/// throughput, small enough for fine-grained progress and a bounded buffer per frame).
pub(crate) const FRAME: usize = 512 * 1024;

impl std::fmt::Debug for UploadFrames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadFrames")
            .field("meter", &self.meter)
            .finish_non_exhaustive()
    }
}

impl UploadFrames {
    /// The frames of `upload`; `transfer` gets the payload's progress and may cancel.
    pub fn new(upload: crate::body::UploadBody, transfer: crate::transfer::Transfer) -> Self {
        let (held, meter) = match &upload.payload {
            Payload::Bytes(bytes) => {
                let meter = PayloadMeter::new(bytes.len() as u64, Replay::OneShot);
                (Some(bytes.clone()), meter)
            }
            Payload::External { len, replay } => (None, PayloadMeter::new(*len, *replay)),
        };
        // A digest the upload carries restarts with this attempt and sees every payload byte.
        let meter = meter.for_attempt(&upload);
        Self {
            head: upload.head,
            held,
            tail: upload.tail,
            meter,
            transfer,
        }
    }

    /// Whether the payload comes from the transport's source.
    pub fn needs_source(&self) -> bool {
        self.held.is_none()
    }

    /// What to send next. A cancel ends the body with [`Error::Cancelled`] counting the
    /// payload bytes read (an [`OperationKind::Upload`]; a relayed upload names itself).
    pub fn next_frame(&mut self) -> Result<NextFrame, Error> {
        if !self.head.is_empty() {
            return Ok(NextFrame::Bytes(std::mem::take(&mut self.head)));
        }
        if self.meter.want(1) > 0 {
            if self.transfer.is_cancelled() {
                let progress = self.meter.progress();
                return Err(Error::cancelled(OperationKind::Upload, progress));
            }
            let Some(held) = &mut self.held else {
                let max = self.meter.want(FRAME);
                return Ok(NextFrame::Read { max });
            };
            let frame = held.split_to(self.meter.want(FRAME).min(held.len()));
            self.on_read(&frame)?;
            return Ok(NextFrame::Bytes(frame));
        }
        if !self.tail.is_empty() {
            return Ok(NextFrame::Bytes(std::mem::take(&mut self.tail)));
        }
        Ok(NextFrame::End)
    }

    /// Counts the payload bytes just read from the source (none: it ended), checks the
    /// length rule, feeds the upload's digest (if any) and reports progress.
    pub fn on_read(&mut self, chunk: &[u8]) -> Result<(), Error> {
        self.meter.on_chunk(chunk)?;
        if !chunk.is_empty() {
            let progress = self.meter.progress();
            self.transfer.report(progress.done, progress.total);
        }
        Ok(())
    }

    /// Payload bytes read so far, of the whole payload.
    pub fn progress(&self) -> Progress {
        self.meter.progress()
    }
}

/// An upload's body as one blocking `Read`, for a transport that sends from a reader: the
/// [`UploadFrames`] of the body, the payload read from `source` straight into the caller's
/// buffer. (For an async HTTP library, `wecom-material-host`'s `UploadBody` is the frames as
/// an `http_body::Body`.)
///
/// A failure it stops on (cancelled, the source failed or broke the length rule) reaches the
/// HTTP library as an I/O error; the transport takes the typed error back with
/// [`UploadReader::take_failure`] and reports it as a local failure.
pub struct UploadReader<'a> {
    frames: UploadFrames,
    pending: Bytes,
    source: Option<Box<dyn std::io::Read + Send + 'a>>,
    failure: Option<Error>,
}

impl<'a> UploadReader<'a> {
    /// The body of `upload`; `source` supplies an external payload (positioned at its start).
    pub fn new(
        upload: crate::body::UploadBody,
        source: Option<Box<dyn std::io::Read + Send + 'a>>,
        transfer: crate::transfer::Transfer,
    ) -> Result<Self, Error> {
        let frames = UploadFrames::new(upload, transfer);
        if frames.needs_source() && source.is_none() {
            return Err(payload_error("no source for an external payload".into()));
        }
        Ok(Self {
            frames,
            pending: Bytes::new(),
            source,
            failure: None,
        })
    }

    /// The failure that stopped the body, if any.
    pub fn take_failure(&mut self) -> Option<Error> {
        self.failure.take()
    }

    fn read_frame(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(buf.len());
                buf[..n].copy_from_slice(&self.pending.split_to(n));
                return Ok(n);
            }
            match self.frames.next_frame()? {
                NextFrame::Bytes(bytes) => self.pending = bytes,
                NextFrame::End => return Ok(0),
                NextFrame::Read { max } => {
                    let want = max.min(buf.len());
                    let n = self.read_source(&mut buf[..want])?;
                    if n > 0 {
                        return Ok(n);
                    }
                }
            }
        }
    }

    /// Reads payload bytes from the source into `buf` and counts them (none: the source
    /// ended).
    fn read_source(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let Some(source) = &mut self.source else {
            return Err(payload_error("no source for an external payload".into()));
        };
        let n = loop {
            match source.read(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                read => break read.map_err(|e| Error::io("reading the upload payload", e))?,
            }
        };
        // Also checks the length rule: a byte past a file's length is an error.
        self.frames.on_read(&buf[..n])?;
        Ok(n)
    }
}

impl std::io::Read for UploadReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.read_frame(buf).map_err(|error| {
            let message = error.to_string();
            self.failure = Some(error);
            std::io::Error::other(message)
        })
    }
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
    /// The bytes, when they are in memory (no source to stream from).
    pub bytes: Option<Bytes>,
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
            bytes: None,
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
            bytes: None,
        }
    }

    /// Bytes in memory (shared, never copied).
    pub fn bytes(filename: &str, bytes: Bytes) -> Self {
        Self {
            filename: filename.to_owned(),
            len: bytes.len() as u64,
            prefix: None,
            replay: Replay::Replayable,
            bytes: Some(bytes),
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
        boundary: crate::multipart::Boundary,
        limits: &crate::Limits,
    ) -> Result<crate::ops::upload_media::UploadMedia, Error> {
        let prefix = self.prefix.as_deref();
        let payload = self.payload();
        Ok(crate::ops::upload_media::UploadMedia::new(
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
        boundary: crate::multipart::Boundary,
        limits: &crate::Limits,
    ) -> Result<crate::ops::upload_image::UploadImage, Error> {
        let prefix = self.prefix.as_deref();
        Ok(crate::ops::upload_image::UploadImage::new(
            &self.filename,
            self.payload(),
            prefix,
            boundary,
            limits,
        )?)
    }

    /// The payload description the upload operations take.
    pub fn payload(&self) -> Payload {
        match &self.bytes {
            Some(bytes) => Payload::Bytes(bytes.clone()),
            None => Payload::External {
                len: self.len,
                replay: self.replay,
            },
        }
    }
}

/// What to upload, as a user says it: bytes in memory, a file, or a reader read once, and
/// the name users will see. `R` is the transport's reader type.
///
/// ```
/// # use wecom_material_core::task::Upload;
/// let file: Upload<()> = Upload::path("报告.pdf");                  // named after the file
/// let renamed: Upload<()> = Upload::path("/tmp/x.bin").named("季度报告.pdf");
/// let memory: Upload<()> = Upload::bytes("a.txt", bytes::Bytes::from_static(b"hello"));
/// ```
#[derive(Debug)]
pub struct Upload<R> {
    filename: Option<String>,
    from: From<R>,
}

#[derive(Debug)]
enum From<R> {
    Bytes(Bytes),
    Path(PathBuf),
    Reader { reader: R, len: u64 },
}

/// How a transport gets an [`Upload`]'s bytes (see [`Upload::plan`]).
#[derive(Debug)]
pub enum UploadPlan<R> {
    /// The bytes are in memory: send `input` as it is.
    Ready(UploadInput),
    /// Open this file, then describe it with [`UploadInput::file`].
    OpenFile {
        /// The file.
        path: PathBuf,
        /// The name users see, when not the file's own.
        filename: Option<String>,
    },
    /// Stream `input.len` bytes from this reader, once.
    Stream {
        /// The description.
        input: UploadInput,
        /// The reader.
        reader: R,
    },
}

impl<R> Upload<R> {
    /// Bytes in memory, shown as `filename` (shared, never copied).
    pub fn bytes(filename: impl Into<String>, bytes: Bytes) -> Self {
        let from = From::Bytes(bytes);
        Self {
            filename: Some(filename.into()),
            from,
        }
    }

    /// A file, streamed from disk in constant memory and re-read for a retry; shown under its
    /// own name unless [`Upload::named`]. A file that changes length while it is sent is
    /// refused, never cut.
    pub fn path(path: impl Into<PathBuf>) -> Self {
        let from = From::Path(path.into());
        Self {
            filename: None,
            from,
        }
    }

    /// Exactly `len` bytes from a reader, read once: a retry or token refresh that would
    /// resend it ends with [`Error::NotReplayable`]. The format checks (AMR, JPEG/PNG) are
    /// skipped: the bytes are not at hand before sending.
    pub fn reader(filename: impl Into<String>, reader: R, len: u64) -> Self {
        let from = From::Reader { reader, len };
        Self {
            filename: Some(filename.into()),
            from,
        }
    }

    /// Shows the upload under `filename`.
    pub fn named(mut self, filename: impl Into<String>) -> Self {
        self.filename = Some(filename.into());
        self
    }

    /// What the transport does to get the bytes.
    pub fn plan(self) -> Result<UploadPlan<R>, Error> {
        let name = || {
            self.filename
                .clone()
                .ok_or(Error::Invalid(Invalid::MissingFilename))
        };
        Ok(match self.from {
            From::Bytes(bytes) => UploadPlan::Ready(UploadInput::bytes(&name()?, bytes)),
            From::Reader { reader, len } => UploadPlan::Stream {
                input: UploadInput::reader(&name()?, len),
                reader,
            },
            From::Path(path) => UploadPlan::OpenFile {
                path,
                filename: self.filename,
            },
        })
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
        let cause = std::error::Error::source(&err).map(ToString::to_string);
        assert!(
            cause.is_some_and(|c| c.contains("longer than the 10 bytes")),
            "{err}"
        );
    }

    #[test]
    fn a_short_source_is_refused() {
        let mut m = PayloadMeter::new(10, Replay::OneShot);
        let err = drain(&mut m, b"0123").unwrap_err();
        let cause = std::error::Error::source(&err).map(ToString::to_string);
        assert!(
            cause.is_some_and(|c| c.contains("ended after 4 of 10")),
            "{err}"
        );
    }

    #[test]
    fn a_reader_is_not_read_past_len() {
        let mut m = PayloadMeter::new(4, Replay::OneShot);
        assert_eq!(drain(&mut m, b"0123rest").unwrap(), 4);
    }

    fn upload(payload: Payload) -> crate::body::UploadBody {
        crate::body::UploadBody {
            head: Bytes::from_static(b"HEAD|"),
            payload,
            tail: Bytes::from_static(b"|TAIL"),
            digest: None,
            sent: Default::default(),
        }
    }

    #[test]
    fn the_upload_reader_sends_head_payload_tail_and_counts_payload_bytes() {
        let external = Payload::External {
            len: 10,
            replay: Replay::Replayable,
        };
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = std::sync::Arc::clone(&seen);
        let progress = move |p: crate::transfer::Progress| log.lock().unwrap().push(p.done);
        let transfer = crate::transfer::Transfer {
            progress: Some(std::sync::Arc::new(progress)),
            cancel: None,
            deadline: None,
        };
        let source: Box<dyn std::io::Read + Send> = Box::new(&b"0123456789"[..]);
        let mut reader = UploadReader::new(upload(external), Some(source), transfer).unwrap();
        let mut sent = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut sent).unwrap();
        assert_eq!(sent, b"HEAD|0123456789|TAIL");
        assert_eq!(seen.lock().unwrap().last(), Some(&10));
        let bytes = Payload::Bytes(Bytes::from_static(b"abc"));
        let mut reader = UploadReader::new(upload(bytes), None, Default::default()).unwrap();
        let mut sent = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut sent).unwrap();
        assert_eq!(sent, b"HEAD|abc|TAIL");
    }

    /// Progress is reported for each payload chunk read, not for the source's end (an empty
    /// read), and the frames' `Debug` shows their meter.
    #[test]
    fn progress_comes_with_each_chunk_read_not_with_the_end() {
        let external = Payload::External {
            len: 10,
            replay: Replay::Replayable,
        };
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = std::sync::Arc::clone(&seen);
        let progress = move |p: crate::transfer::Progress| log.lock().unwrap().push(p.done);
        let transfer = crate::transfer::Transfer::default().with_progress(progress);
        let mut frames = UploadFrames::new(upload(external), transfer);
        let shown = format!("{frames:?}");
        assert!(shown.starts_with("UploadFrames { meter:"), "{shown}");
        for chunk in [&b"01234"[..], b"56789", b""] {
            frames.on_read(chunk).unwrap();
        }
        assert_eq!(*seen.lock().unwrap(), [5, 10]);
    }

    /// The frame size is the core's: an async transport reads `max` and never sizes a buffer
    /// of its own, so a 1 MiB + 7 file is read in 512 KiB frames, then the rest, then a
    /// one-byte probe that the file ends there.
    #[test]
    fn a_source_is_asked_for_at_most_one_frame_at_a_time() {
        let len = 2 * FRAME as u64 + 7;
        let external = Payload::External {
            len,
            replay: Replay::Replayable,
        };
        let mut frames = UploadFrames::new(upload(external), Default::default());
        assert_eq!(
            frames.next_frame().unwrap(),
            NextFrame::Bytes(Bytes::from_static(b"HEAD|"))
        );
        let mut asked = Vec::new();
        while let NextFrame::Read { max } = frames.next_frame().unwrap() {
            asked.push(max);
            let left = len - frames.progress().done;
            frames.on_read(&vec![7; max.min(left as usize)]).unwrap();
        }
        assert_eq!(asked, [FRAME, FRAME, 7, 1]);
        assert_eq!(frames.progress().done, len);
    }

    #[test]
    fn the_upload_reader_stops_on_a_grown_file_and_on_cancel_with_the_typed_error() {
        let external = || Payload::External {
            len: 4,
            replay: Replay::Replayable,
        };
        let source: Box<dyn std::io::Read + Send> = Box::new(&b"0123X"[..]);
        let mut reader =
            UploadReader::new(upload(external()), Some(source), Default::default()).unwrap();
        assert!(std::io::Read::read_to_end(&mut reader, &mut Vec::new()).is_err());
        assert!(matches!(reader.take_failure(), Some(Error::Io { .. })));
        let cancel = crate::transfer::CancelFlag::new();
        cancel.cancel();
        let transfer = crate::transfer::Transfer {
            progress: None,
            cancel: Some(cancel.clone()),
            deadline: None,
        };
        let source: Box<dyn std::io::Read + Send> = Box::new(&b"0123"[..]);
        let mut reader = UploadReader::new(upload(external()), Some(source), transfer).unwrap();
        assert!(std::io::Read::read_to_end(&mut reader, &mut Vec::new()).is_err());
        assert!(matches!(
            reader.take_failure(),
            Some(Error::Cancelled { .. })
        ));
        let missing = UploadReader::new(upload(external()), None, Default::default());
        assert!(matches!(missing, Err(Error::Io { .. })));
    }

    /// A source read interrupted by a signal (`ErrorKind::Interrupted`) is read again, as
    /// `std::io::Read` asks; any other read error stops the body with the typed error.
    #[test]
    fn an_interrupted_source_read_is_read_again_and_another_error_stops_the_body() {
        struct Flaky(std::io::ErrorKind, bool, &'static [u8]);
        impl std::io::Read for Flaky {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if !std::mem::replace(&mut self.1, true) {
                    return Err(self.0.into());
                }
                std::io::Read::read(&mut self.2, buf)
            }
        }
        let external = || Payload::External {
            len: 4,
            replay: Replay::Replayable,
        };
        let source = Box::new(Flaky(std::io::ErrorKind::Interrupted, false, b"0123"));
        let mut reader =
            UploadReader::new(upload(external()), Some(source), Default::default()).unwrap();
        let mut sent = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut sent).unwrap();
        assert_eq!(sent, b"HEAD|0123|TAIL");
        let source = Box::new(Flaky(std::io::ErrorKind::PermissionDenied, false, b"0123"));
        let mut reader =
            UploadReader::new(upload(external()), Some(source), Default::default()).unwrap();
        assert!(std::io::Read::read_to_end(&mut reader, &mut Vec::new()).is_err());
        assert!(matches!(reader.take_failure(), Some(Error::Io { .. })));
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
