//! The file side: upload sources opened from paths, positioned download sinks, MD5.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use wecom_material_core::Error;
use wecom_material_core::md5sum::Md5Hex;
use wecom_material_core::task::{Upload, UploadInput, UploadPlan};

/// Where an upload's payload comes from, whatever the HTTP library: a file, read from its
/// start by each attempt, or a reader that can be read once.
#[derive(Debug)]
pub enum Source<R> {
    /// A file (positioned anywhere: each attempt reads it from its start).
    File(File),
    /// A reader; `None` once taken by an attempt.
    Reader(Option<R>),
}

impl<R> Source<R> {
    /// The payload for one attempt, from its first byte: the file as a [`FileAttempt`] made
    /// the transport's reader by `file`, or the reader, the first time.
    pub fn open(&mut self, file: impl FnOnce(FileAttempt) -> R) -> io::Result<R> {
        match self {
            Source::File(own) => FileAttempt::of(own).map(file),
            Source::Reader(once) => once
                .take()
                .ok_or_else(|| io::Error::other("a one-shot upload reader was read already")),
        }
    }
}

/// An upload's file as one attempt reads it: from its start, with positioned reads at an
/// offset of its own. Handles cloned from one file share their cursor; this does not use it,
/// so an attempt left behind (its body still held by an HTTP library for a moment) can never
/// move the next attempt's reads. A `Read`, and with the feature `async` a tokio `AsyncRead`
/// (a local file's read done in place, like the blocking client's).
#[derive(Debug)]
pub struct FileAttempt {
    file: File,
    at: u64,
}

impl FileAttempt {
    /// An attempt at `file` (a handle of its own), from its first byte.
    pub fn of(file: &File) -> io::Result<Self> {
        let file = file.try_clone()?;
        Ok(Self { file, at: 0 })
    }

    fn read_at(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        #[cfg(unix)]
        let n = std::os::unix::fs::FileExt::read_at(&self.file, buf, self.at)?;
        #[cfg(windows)]
        let n = std::os::windows::fs::FileExt::seek_read(&self.file, buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

impl Read for FileAttempt {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_at(buf)
    }
}

#[cfg(feature = "async")]
impl tokio::io::AsyncRead for FileAttempt {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let this = self.get_mut();
        let n = this.read_at(buf.initialize_unfilled())?;
        buf.advance(n);
        std::task::Poll::Ready(Ok(()))
    }
}

/// Gets an upload ready: opens a file and reads its length and first bytes for the format
/// checks; the core decides the rest (name, limits, whether it can be resent). Bytes in
/// memory need no source.
pub fn open_upload<R>(upload: Upload<R>) -> Result<(UploadInput, Option<Source<R>>), Error> {
    let (path, name) = match upload.plan()? {
        UploadPlan::Ready(input) => return Ok((input, None)),
        UploadPlan::Stream { input, reader } => {
            return Ok((input, Some(Source::Reader(Some(reader)))));
        }
        UploadPlan::OpenFile { path, filename } => (path, filename),
    };
    let (input, file) = open_file(&path, name.as_deref())?;
    Ok((input, Some(Source::File(file))))
}

/// Opens the file at `path` for an upload shown as `filename` (by default the file's own
/// name): what the core needs to know about it (its length and first bytes, for the format
/// checks), and the file.
pub fn open_file(path: &Path, filename: Option<&str>) -> Result<(UploadInput, File), Error> {
    let fail = |e| Error::io(format!("opening {}", path.display()), e);
    let mut file = File::open(path).map_err(fail)?;
    let len = file.metadata().map_err(fail)?.len();
    let mut prefix = Vec::with_capacity(UploadInput::SNIFF_LEN);
    let mut sniff = Read::by_ref(&mut file).take(UploadInput::SNIFF_LEN as u64);
    sniff.read_to_end(&mut prefix).map_err(fail)?;
    let input = UploadInput::file(path, filename, len, prefix)?;
    Ok((input, file))
}

/// A download's file, written at the offsets the core's download task gives (its ranges
/// arrive in any order, from several lanes at once: positioned writes need no shared cursor).
#[derive(Debug, Clone, Copy)]
pub struct FileSink<'a> {
    file: &'a File,
    durable: bool,
}

impl<'a> FileSink<'a> {
    /// Writes into `file`; a flush only returns (the page cache holds the bytes).
    pub fn new(file: &'a File) -> Self {
        Self {
            file,
            durable: false,
        }
    }

    /// Writes into `file`; a flush waits until the bytes are on disk (`fdatasync`).
    pub fn durable(file: &'a File) -> Self {
        Self {
            file,
            durable: true,
        }
    }

    /// Writes all of `bytes` at byte `at` of the file.
    pub fn write_at(&self, at: u64, bytes: &[u8]) -> io::Result<()> {
        #[cfg(unix)]
        return std::os::unix::fs::FileExt::write_all_at(self.file, bytes, at);
        #[cfg(windows)]
        {
            let (mut at, mut bytes) = (at, bytes);
            while !bytes.is_empty() {
                let n = std::os::windows::fs::FileExt::seek_write(self.file, bytes, at)?;
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                (at, bytes) = (at + n as u64, &bytes[n..]);
            }
            Ok(())
        }
    }

    /// Flushes: for a durable sink, waits until the data is on disk.
    pub fn flush(&self) -> io::Result<()> {
        if self.durable {
            self.file.sync_data()
        } else {
            Ok(())
        }
    }
}

/// The MD5 of a file as 32 lowercase hex digits, read in constant memory (for
/// `upload_by_url`).
pub fn md5_file(path: &Path) -> io::Result<String> {
    let mut hasher = Md5Hex::new();
    io::copy(&mut File::open(path)?, &mut hasher)?;
    Ok(hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_one_shot_reader_is_read_once() {
        let (input, source) = open_upload(Upload::reader("a.bin", &b"abc"[..], 3)).unwrap();
        assert_eq!((input.filename.as_str(), input.len), ("a.bin", 3));
        let mut source = source.unwrap();
        assert_eq!(source.open(|_| unreachable!()).unwrap(), b"abc");
        let again = source.open(|_| unreachable!()).unwrap_err();
        assert!(again.to_string().contains("read already"), "{again}");
        let (_, none) = open_upload::<io::Empty>(Upload::bytes("b.bin", "xy".into())).unwrap();
        assert!(none.is_none(), "bytes in memory need no source");
    }

    #[test]
    fn writes_land_at_their_offsets_in_any_order() {
        let dir = std::env::temp_dir().join(format!("wecom-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sink.bin");
        let file = File::options()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let sink = FileSink::durable(&file);
        sink.write_at(6, b"world").unwrap();
        sink.write_at(0, b"hello ").unwrap();
        sink.flush().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"hello world");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_upload_is_opened_with_its_length_and_first_bytes() {
        let dir = std::env::temp_dir().join(format!("wecom-files-up-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("报告.pdf");
        std::fs::write(&path, b"%PDF-1.7 and the rest of it").unwrap();
        let (input, source) = open_upload::<Box<dyn Read>>(Upload::path(&path)).unwrap();
        let Some(mut source @ Source::File(_)) = source else {
            panic!("a path opens as a file");
        };
        assert_eq!(input.filename, "报告.pdf");
        assert_eq!(input.len, 27);
        assert_eq!(input.prefix.as_deref(), Some(&b"%PDF-1.7 and the"[..]));
        // Each attempt reads the file from its start, whatever an earlier one still reads.
        let mut left_behind = source.open(|file| Box::new(file)).unwrap();
        let mut attempt = source.open(|file| Box::new(file)).unwrap();
        let (mut first, mut second) = ([0u8; 9], [0u8; 9]);
        left_behind.read_exact(&mut first[..4]).unwrap();
        attempt.read_exact(&mut second).unwrap();
        left_behind.read_exact(&mut first[4..]).unwrap();
        assert_eq!((&first, &second), (b"%PDF-1.7 ", b"%PDF-1.7 "));
        let missing = open_upload::<io::Empty>(Upload::path(dir.join("nope"))).unwrap_err();
        assert!(missing.to_string().contains("nope"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
