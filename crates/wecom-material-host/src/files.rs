//! The file side: upload sources opened from paths, positioned download sinks, MD5.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use wecom_material_core::Error;
use wecom_material_core::md5sum::Md5Hex;
use wecom_material_core::task::{Upload, UploadInput, UploadPlan};

/// An upload made ready to send: what the core needs to know about it, and where its
/// payload comes from.
#[derive(Debug)]
pub enum Opened<R> {
    /// The bytes are in memory.
    Ready(UploadInput),
    /// A reader, read once.
    Reader(UploadInput, R),
    /// A file, positioned after the bytes read for the format checks (rewind it for each
    /// attempt).
    File(UploadInput, File),
}

/// Gets an upload ready: opens a file and reads its length and first bytes for the format
/// checks; the core decides the rest (name, limits, whether it can be resent).
pub fn open_upload<R>(upload: Upload<R>) -> Result<Opened<R>, Error> {
    let (path, name) = match upload.plan()? {
        UploadPlan::Ready(input) => return Ok(Opened::Ready(input)),
        UploadPlan::Stream { input, reader } => return Ok(Opened::Reader(input, reader)),
        UploadPlan::OpenFile { path, filename } => (path, filename),
    };
    let fail = |e| Error::io(format!("opening {}", path.display()), e);
    let mut file = File::open(&path).map_err(fail)?;
    let len = file.metadata().map_err(fail)?.len();
    let mut prefix = Vec::with_capacity(UploadInput::SNIFF_LEN);
    let mut sniff = Read::by_ref(&mut file).take(UploadInput::SNIFF_LEN as u64);
    sniff.read_to_end(&mut prefix).map_err(fail)?;
    let input = UploadInput::file(&path, name.as_deref(), len, prefix)?;
    Ok(Opened::File(input, file))
}

/// Opens the file at `path` for an upload shown as `filename` (by default the file's own
/// name): what the core needs to know about it, and the file.
pub fn open_file(path: &Path, filename: Option<&str>) -> Result<(UploadInput, File), Error> {
    let upload = Upload::<io::Empty>::path(path);
    let upload = match filename {
        Some(name) => upload.named(name),
        None => upload,
    };
    match open_upload(upload)? {
        Opened::File(input, file) => Ok((input, file)),
        // A path always opens as a file; a plan that says otherwise has nothing to send.
        Opened::Ready(_) | Opened::Reader(..) => Err(Error::io(
            format!("opening {}", path.display()),
            io::ErrorKind::InvalidInput.into(),
        )),
    }
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
        let Opened::File(input, _) = open_upload::<io::Empty>(Upload::path(&path)).unwrap() else {
            panic!("a path opens as a file");
        };
        assert_eq!(input.filename, "报告.pdf");
        assert_eq!(input.len, 27);
        assert_eq!(input.prefix.as_deref(), Some(&b"%PDF-1.7 and the"[..]));
        let missing = open_upload::<io::Empty>(Upload::path(dir.join("nope"))).unwrap_err();
        assert!(missing.to_string().contains("nope"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
