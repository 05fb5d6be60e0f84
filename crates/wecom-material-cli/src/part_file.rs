//! The partial file of a download: private to one run, resumed only when it provably belongs
//! to the same media, moved into place only when complete, never over an existing file.
//!
//! # Files
//!
//! A download of media `ID` into directory `D` writes `D/.ID.part` (see
//! [`crate::commands::get::part_name`]) and keeps next to it a small JSON *record*
//! `D/.ID.part.json`: the media id, the endpoint, the total size, and for a part written by
//! several connections the byte ranges that arrived (the record format also has room for the
//! server's filename and content type, which the download API does not hand over yet). The record is written as soon as the
//! total is known (the first progress report), through a temporary file and a rename, so a
//! run killed at any point leaves either no record or a whole one.
//!
//! # Rules
//!
//! * **Private to one run.** The part file is opened by exactly one run at a time: it is
//!   created with `create_new` (`O_CREAT|O_EXCL`, which never follows a symlink), or an
//!   existing regular file is opened and then checked to still be the file at that name
//!   (same device and inode), and in both cases an exclusive advisory lock
//!   ([`File::try_lock`]) is held until the run ends. A second run of the same media into the
//!   same directory gets a clear error at once ("another run is downloading …"); it never
//!   appends to the same file.
//! * **Never through a symlink.** Anything at the part name that is not a regular file (a
//!   symlink, a directory, a FIFO) is set aside (renamed, the link itself — its target is
//!   never opened) and a fresh part file is created.
//! * **Resume only the same media.** An existing part file is continued only when its record
//!   names the same media id and endpoint and a total larger than the part; the download
//!   then checks that the server's total is the recorded one (a mismatch cancels it, and the
//!   download starts over). Anything else — no record (a stray file of zeros), another
//!   media, a part as long as the total — is set aside as `.ID.part.stale-N` (an empty one
//!   is reused) and the download starts from byte 0.
//! * **Complete before it is moved.** [`PartFile::finish`] checks that the file's length is
//!   the media's total (and the recorded total) before the move; a wrong length removes the
//!   part and fails.
//! * **Never over an existing file.** Without `--force` the move is `hard_link` + remove,
//!   which fails when the target exists — also when another run created it a moment ago.
//!   (On a file system without hard links, it falls back to a checked rename.) With
//!   `--force` it is a `rename`, which replaces the target (a symlink there is replaced, not
//!   followed).
//! * **Gone media leave nothing.** When the server says the media does not exist (40007),
//!   [`PartFile::discard`] removes the part and its record; other failures keep a part that
//!   has a record (so a later run resumes it) and remove one that has none.
//!
//! # Call order
//!
//! [`PartFile::open`] → (write the body through [`PartFile::split`], feeding progress to
//! [`PartMeta::note_progress`]) → on success
//! [`PartFile::finish`], on failure [`PartFile::discard`], or [`PartFile::restart`] to set
//! the part aside and begin again.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde_json::json;

use crate::failure::Failure;

/// How often [`PartFile::open`] starts over when another run changes the part name under it.
const OPEN_ATTEMPTS: u32 = 8;

/// The largest record read (a record is a few hundred bytes).
const MAX_RECORD: u64 = 16 * 1024;

/// What the record says about the part file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Record {
    media_id: String,
    endpoint: String,
    total: Option<u64>,
    server_filename: Option<String>,
    content_type: Option<String>,
    /// The byte ranges `[start, end)` that arrived, for a part written by several
    /// connections (it may have holes); `None` for a part written from its start.
    ranges: Option<Vec<(u64, u64)>>,
}

impl Record {
    fn to_json(&self) -> Vec<u8> {
        let value = json!({
            "version": 1,
            "media_id": self.media_id,
            "endpoint": self.endpoint,
            "total": self.total,
            "server_filename": self.server_filename,
            "content_type": self.content_type,
            "ranges": self.ranges,
        });
        serde_json::to_vec_pretty(&value).unwrap_or_default()
    }

    fn from_json(bytes: &[u8]) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        if v["version"].as_u64() != Some(1) {
            return None;
        }
        let text = |k: &str| v[k].as_str().map(str::to_owned);
        Some(Self {
            media_id: text("media_id")?,
            endpoint: text("endpoint")?,
            total: v["total"].as_u64(),
            server_filename: text("server_filename"),
            content_type: text("content_type"),
            ranges: serde_json::from_value(v["ranges"].clone()).ok().flatten(),
        })
    }
}

/// The record of a part file, shared with the progress callback (which may run on any
/// thread: hence the mutex).
#[derive(Debug)]
pub(crate) struct PartMeta {
    record_path: PathBuf,
    state: Mutex<MetaState>,
}

#[derive(Debug)]
struct MetaState {
    record: Record,
    /// Whether the record on disk is up to date.
    written: bool,
    /// A total the server sent that differs from the recorded one.
    mismatch: Option<u64>,
}

impl PartMeta {
    fn new(record_path: PathBuf, record: Record, written: bool) -> Self {
        Self {
            record_path,
            state: Mutex::new(MetaState {
                record,
                written,
                mismatch: None,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, MetaState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a progress report's total. Returns `false` when it differs from the total of
    /// the part being resumed: the caller cancels the download and starts over. The first
    /// total known is written to the record.
    pub(crate) fn note_progress(&self, total: Option<u64>) -> bool {
        let Some(total) = total else { return true };
        let mut state = self.state();
        match state.record.total {
            Some(known) if known != total => {
                state.mismatch = Some(total);
                return false;
            }
            Some(_) => {}
            None => {
                state.record.total = Some(total);
                state.written = false;
            }
        }
        if !state.written {
            self.write(&mut state);
        }
        true
    }

    /// Whether the server's total differed from the recorded one.
    pub(crate) fn total_mismatch(&self) -> Option<u64> {
        self.state().mismatch
    }

    /// The media's size, once known.
    pub(crate) fn total(&self) -> Option<u64> {
        self.state().record.total
    }

    /// The ranges of a part written by several connections.
    pub(crate) fn ranges(&self) -> Option<Vec<(u64, u64)>> {
        self.state().record.ranges.clone()
    }

    /// Records what a parallel download wrote (its resume record), so that a later run
    /// fetches only the missing ranges.
    pub(crate) fn note_ranges(&self, record: &wecom_material_core::task::ResumeRecord) {
        let mut state = self.state();
        if record.total > 0 {
            state.record.total = Some(record.total);
        }
        state.record.ranges = Some(record.done.clone());
        self.write(&mut state);
    }

    /// Writes the record through a temporary file and a rename (a symlink at the record's
    /// name is replaced, never followed). A failure only costs the ability to resume.
    fn write(&self, state: &mut MetaState) {
        let tmp = sibling(&self.record_path, &format!(".{}.tmp", std::process::id()));
        let _ = fs::remove_file(&tmp);
        let result = (|| {
            let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            io::Write::write_all(&mut file, &state.record.to_json())?;
            file.sync_all()?;
            fs::rename(&tmp, &self.record_path)
        })();
        match result {
            Ok(()) => state.written = true,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                log::warn!(
                    "cannot write {} (the download will not be resumable): {e}",
                    self.record_path.display()
                );
            }
        }
    }

    fn remove(&self) {
        remove_if_present(&self.record_path);
    }
}

/// An open, locked part file.
#[derive(Debug)]
pub(crate) struct PartFile {
    path: PathBuf,
    file: File,
    offset: u64,
    meta: PartMeta,
    set_aside: Vec<PathBuf>,
}

impl PartFile {
    /// Opens the part file `dir/part_name` of `media_id` from `endpoint` (`"media"` or
    /// `"hd-voice"`): resumes it when its record says it belongs to this media, else sets it
    /// aside and creates a fresh one (see the module rules). Fails with a clear message when
    /// another run holds it.
    pub(crate) fn open(
        dir: &Path,
        part_name: &str,
        media_id: &str,
        endpoint: &str,
    ) -> Result<Self, Failure> {
        let path = dir.join(part_name);
        let record_path = sibling(&path, ".json");
        let fresh_record = Record {
            media_id: media_id.to_owned(),
            endpoint: endpoint.to_owned(),
            ..Record::default()
        };
        let io_failure =
            |what: &str, e: io::Error| Failure::other(format!("{what} {}: {e}", path.display()));
        let mut set_aside = Vec::new();
        for _ in 0..OPEN_ATTEMPTS {
            let existing = match fs::symlink_metadata(&path) {
                Ok(meta) => Some(meta),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(io_failure("cannot inspect", e)),
            };
            let file = match existing {
                None => match OpenOptions::new().write(true).create_new(true).open(&path) {
                    Ok(file) => file,
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(io_failure("cannot create", e)),
                },
                Some(meta) if !meta.file_type().is_file() => {
                    // A symlink (or a directory, a FIFO): never opened, moved out of the way.
                    set_aside
                        .push(set_aside_path(&path).map_err(|e| io_failure("cannot move", e))?);
                    continue;
                }
                // Not O_APPEND: a parallel download writes at offsets (pwrite appends under
                // O_APPEND on Linux); a sequential one seeks to the end first.
                Some(_) => match OpenOptions::new().write(true).open(&path) {
                    Ok(file) => file,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io_failure("cannot open", e)),
                },
            };
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(Failure::other(format!(
                        "another run is downloading media {media_id} into {} (it holds {}); \
                         wait for it to end",
                        dir.display(),
                        path.display()
                    )));
                }
                Err(fs::TryLockError::Error(e)) => return Err(io_failure("cannot lock", e)),
            }
            if !is_same_file(&path, &file) {
                // Renamed, removed or replaced between the open and the lock: look again.
                continue;
            }
            let len = file
                .metadata()
                .map_err(|e| io_failure("cannot inspect", e))?
                .len();
            if existing.is_none() || len == 0 {
                remove_if_present(&record_path);
                return Ok(Self {
                    path,
                    file,
                    offset: 0,
                    meta: PartMeta::new(record_path, fresh_record, false),
                    set_aside,
                });
            }
            let record = read_record(&record_path);
            match record {
                Some(record)
                    if record.media_id == media_id
                        && record.endpoint == endpoint
                        && record
                            .total
                            .is_some_and(|total| len < total || record.ranges.is_some()) =>
                {
                    return Ok(Self {
                        path,
                        file,
                        offset: len,
                        meta: PartMeta::new(record_path, record, true),
                        set_aside,
                    });
                }
                _ => {
                    // Not provably this media's beginning: keep it aside, start over.
                    set_aside
                        .push(set_aside_path(&path).map_err(|e| io_failure("cannot move", e))?);
                    remove_if_present(&record_path);
                    drop(file);
                }
            }
        }
        Err(Failure::other(format!(
            "{} keeps changing under this run; is another run using it?",
            path.display()
        )))
    }

    /// Bytes already in the part (where the download resumes).
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// The part file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Files this open moved out of the way (`.stale-N`), for a note to the user.
    pub(crate) fn set_aside(&self) -> &[PathBuf] {
        &self.set_aside
    }

    /// The file to append the body to, and the record to feed progress to.
    pub(crate) fn split(&mut self) -> (&mut File, &PartMeta) {
        (&mut self.file, &self.meta)
    }

    /// The record (for the first-head hook).
    pub(crate) fn meta(&self) -> &PartMeta {
        &self.meta
    }

    /// Sets this part aside (`.stale-N`) and opens a fresh one in its place.
    pub(crate) fn restart(self, media_id: &str, endpoint: &str) -> Result<Self, Failure> {
        let dir = parent(&self.path).to_path_buf();
        let name = file_name(&self.path);
        let mut set_aside = self.set_aside.clone();
        if let Ok(stale) = set_aside_path(&self.path) {
            set_aside.push(stale);
        }
        self.meta.remove();
        drop(self.file);
        let mut fresh = Self::open(&dir, &name, media_id, endpoint)?;
        set_aside.append(&mut fresh.set_aside);
        fresh.set_aside = set_aside;
        Ok(fresh)
    }

    /// Moves the complete part to `target`: checks its length against `total` (and the
    /// recorded total), syncs it, and moves it without replacing an existing file unless
    /// `force`. The part and its record are gone afterwards, whatever the outcome.
    pub(crate) fn finish(self, target: &Path, total: u64, force: bool) -> Result<(), Failure> {
        let result = self.finish_inner(target, total, force);
        remove_if_present(&self.path);
        self.meta.remove();
        drop(self.file);
        result
    }

    fn finish_inner(&self, target: &Path, total: u64, force: bool) -> Result<(), Failure> {
        let part = self.path.display();
        self.file
            .sync_all()
            .map_err(|e| Failure::other(format!("{part}: {e}")))?;
        let len = self
            .file
            .metadata()
            .map_err(|e| Failure::other(format!("{part}: {e}")))?
            .len();
        let recorded = self.meta.total().unwrap_or(total);
        if len != total || recorded != total {
            return Err(Failure::other(format!(
                "the downloaded file is {len} bytes but the media is {total} bytes; \
                 nothing was saved"
            )));
        }
        let moved = |e: io::Error| {
            Failure::other(format!("cannot move {part} to {}: {e}", target.display()))
        };
        if force {
            return fs::rename(&self.path, target).map_err(moved);
        }
        match fs::hard_link(&self.path, target) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(exists(target)),
            Err(e) if is_link_unsupported(&e) => {
                // No hard links here: a checked rename (a race can still replace a file
                // created in between; hard links exclude that where available).
                refuse_existing(target, false)?;
                fs::rename(&self.path, target).map_err(moved)
            }
            Err(e) => Err(moved(e)),
        }
    }

    /// Ends a failed download: with `gone` (the server says the media does not exist) the
    /// part and its record are removed; otherwise a part that can be resumed (it has bytes
    /// and a record with its total) is kept and its path returned, anything else removed.
    pub(crate) fn discard(self, gone: bool) -> Option<PathBuf> {
        let len = self.file.metadata().map(|m| m.len()).unwrap_or(0);
        let holes = self.meta.ranges().is_some();
        let resumable = !gone
            && len > 0
            && self.meta.total_mismatch().is_none()
            && self.meta.total().is_some_and(|t| len < t || holes);
        if resumable {
            let mut state = self.meta.state();
            if !state.written {
                self.meta.write(&mut state);
            }
            return Some(self.path.clone());
        }
        remove_if_present(&self.path);
        self.meta.remove();
        None
    }
}

/// Refuses `target` when it exists (a symlink included, even a dangling one) and `force` is
/// not given: call it as soon as the first response head names the file, before the body is
/// read, and again at the move (which cannot replace it anyway).
pub(crate) fn refuse_existing(target: &Path, force: bool) -> Result<(), Failure> {
    if !force && fs::symlink_metadata(target).is_ok() {
        return Err(exists(target));
    }
    Ok(())
}

fn exists(target: &Path) -> Failure {
    Failure::usage(format!(
        "{} exists; pass --force to replace it",
        target.display()
    ))
}

fn is_link_unsupported(e: &io::Error) -> bool {
    // Unsupported, or EPERM from a file system without hard links (FAT, some FUSE mounts).
    matches!(
        e.kind(),
        io::ErrorKind::Unsupported | io::ErrorKind::PermissionDenied
    )
}

/// Reads a record; `None` when absent, not a regular file, too big or malformed.
fn read_record(path: &Path) -> Option<Record> {
    let meta = fs::symlink_metadata(path).ok()?;
    if !meta.file_type().is_file() || meta.len() > MAX_RECORD {
        return None;
    }
    let mut bytes = Vec::new();
    File::open(path)
        .ok()?
        .take(MAX_RECORD)
        .read_to_end(&mut bytes)
        .ok()?;
    Record::from_json(&bytes)
}

/// Renames `path` (the entry itself, never a symlink's target) to the first free
/// `path.stale-N`.
fn set_aside_path(path: &Path) -> io::Result<PathBuf> {
    for n in 1..10_000 {
        let stale = sibling(path, &format!(".stale-{n}"));
        if fs::symlink_metadata(&stale).is_err() {
            fs::rename(path, &stale)?;
            log::info!("set aside {} as {}", path.display(), stale.display());
            return Ok(stale);
        }
    }
    Err(io::Error::other("too many stale part files"))
}

/// Whether `path` still names the file open as `file` (same device and inode).
#[cfg(unix)]
fn is_same_file(path: &Path, file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::symlink_metadata(path), file.metadata()) {
        (Ok(at_path), Ok(open)) => {
            at_path.file_type().is_file()
                && at_path.dev() == open.dev()
                && at_path.ino() == open.ino()
        }
        _ => false,
    }
}

#[cfg(not(unix))]
fn is_same_file(path: &Path, _file: &File) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file())
}

fn remove_if_present(path: &Path) {
    if let Err(e) = fs::remove_file(path)
        && e.kind() != io::ErrorKind::NotFound
    {
        log::warn!("cannot remove {}: {e}", path.display());
    }
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("wecom-part-file-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_second_open_of_a_held_part_is_refused() {
        let dir = scratch("held");
        let first = PartFile::open(&dir, ".m.part", "m", "media").unwrap();
        let second = PartFile::open(&dir, ".m.part", "m", "media").unwrap_err();
        assert!(second.to_string().contains("another run"), "{second}");
        drop(first);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_part_with_a_matching_record_resumes_and_others_are_set_aside() {
        let dir = scratch("resume");
        let mut part = PartFile::open(&dir, ".m.part", "m", "media").unwrap();
        let (file, meta) = part.split();
        io::Write::write_all(file, b"abcd").unwrap();
        assert!(meta.note_progress(Some(10)));
        assert_eq!(part.discard(false), Some(dir.join(".m.part")));
        // Same media: resumed at 4.
        let part = PartFile::open(&dir, ".m.part", "m", "media").unwrap();
        assert_eq!(part.offset(), 4);
        assert!(part.set_aside().is_empty());
        // The server now says 12 bytes: a mismatch.
        assert!(!part.meta().note_progress(Some(12)));
        assert_eq!(part.meta().total_mismatch(), Some(12));
        drop(part);
        // Another endpoint: set aside, fresh.
        let part = PartFile::open(&dir, ".m.part", "m", "hd-voice").unwrap();
        assert_eq!(part.offset(), 0);
        assert_eq!(part.set_aside(), [dir.join(".m.part.stale-1")]);
        assert_eq!(fs::read(dir.join(".m.part.stale-1")).unwrap(), b"abcd");
        assert!(!dir.join(".m.part.json").exists());
        drop(part);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn finish_checks_the_length_and_never_replaces_without_force() {
        let dir = scratch("finish");
        let target = dir.join("out.bin");
        let mut part = PartFile::open(&dir, ".m.part", "m", "media").unwrap();
        io::Write::write_all(part.split().0, b"abc").unwrap();
        let err = part.finish(&target, 4, false).unwrap_err();
        assert!(err.to_string().contains("3 bytes"), "{err}");
        assert!(!target.exists() && !dir.join(".m.part").exists());

        fs::write(&target, b"mine").unwrap();
        let mut part = PartFile::open(&dir, ".m.part", "m", "media").unwrap();
        io::Write::write_all(part.split().0, b"new!").unwrap();
        let err = part.finish(&target, 4, false).unwrap_err();
        assert_eq!(err.exit_code(), crate::failure::EXIT_USAGE);
        assert_eq!(fs::read(&target).unwrap(), b"mine");

        let mut part = PartFile::open(&dir, ".m.part", "m", "media").unwrap();
        io::Write::write_all(part.split().0, b"new!").unwrap();
        part.finish(&target, 4, true).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new!");
        let left: Vec<_> = fs::read_dir(&dir).unwrap().collect();
        assert_eq!(left.len(), 1, "{left:?}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_at_the_part_name_is_never_followed() {
        let dir = scratch("symlink");
        let victim = dir.join("victim.txt");
        fs::write(&victim, b"precious").unwrap();
        std::os::unix::fs::symlink(&victim, dir.join(".m.part")).unwrap();
        std::os::unix::fs::symlink(&victim, dir.join(".m.part.json")).unwrap();
        let mut part = PartFile::open(&dir, ".m.part", "m", "media").unwrap();
        assert_eq!(part.offset(), 0);
        let (file, meta) = part.split();
        io::Write::write_all(file, b"media").unwrap();
        assert!(meta.note_progress(Some(5)));
        part.finish(&dir.join("m.bin"), 5, false).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert_eq!(fs::read(dir.join("m.bin")).unwrap(), b"media");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_gone_media_leaves_no_part() {
        let dir = scratch("gone");
        let mut part = PartFile::open(&dir, ".m.part", "m", "media").unwrap();
        let (file, meta) = part.split();
        io::Write::write_all(file, b"ab").unwrap();
        meta.note_progress(Some(9));
        assert_eq!(part.discard(true), None);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
        let _ = fs::remove_dir_all(&dir);
    }
}
