//! Saving a media to a path: the file side of the core's save (see
//! [`wecom_material_core::save`], which makes every decision this module acts on).
//!
//! # Files
//!
//! A save of media `ID` into directory `D` (the target directory, or the target file's
//! parent) writes the part file `D/.ID.part` (`.ID.hd.part` for HD voice; an id with other
//! characters than `[A-Za-z0-9_-]` is replaced and suffixed with a hash) and beside it the
//! record `D/.ID.part.json`. Both are created with mode 0600.
//!
//! # Rules
//!
//! * **One save per part.** The part is created with `create_new` (`O_CREAT|O_EXCL`, which
//!   never follows a symlink), or an existing regular file is opened and checked to still be
//!   the file at that name (same device and inode) after an exclusive lock
//!   ([`File::try_lock`]) is taken; the lock is held until the save ends. A second save of
//!   the same media into the same directory fails at once with [`SaveError::Busy`].
//! * **Symlinks are never followed**: anything at the part's name that is not a regular
//!   file is set aside (the entry itself is renamed); the record is read only from a regular
//!   file and replaced by a rename (a symlink there is replaced); the target is refused when
//!   anything is at its name, a dangling symlink included, and the move never writes through
//!   a link.
//! * **Resume or start over** as [`ResumeDecision::decide`] says; a part that is not
//!   continued is renamed `.ID.part.stale-N` with one warning, never read.
//! * **The record follows the download**: whenever [`DownloadTask::record_due`] says so, the
//!   part's data is synced (`fdatasync`: write-behind, so the final sync has at most a few
//!   MB left, and the record never claims bytes that are not on disk) and the record is
//!   replaced (a temporary file and a rename). On cancel or failure it is written at once.
//! * **Refuse before spending**: a file target that exists is refused before any request; a
//!   directory target's name is known from the first response head
//!   ([`DownloadTask::media_info`]) and checked then, so at most one buffer of the first
//!   range is read.
//! * **Move without replacing**: the complete part (length checked, `fsync`ed) is moved
//!   with `hard_link(part, target)` then the part's removal: `link(2)` fails with `EEXIST`
//!   whatever appeared at the target meanwhile, so another process's file is never replaced
//!   (`renameat2(RENAME_NOREPLACE)` would do the same in one call, but it is not in `std` and
//!   the workspace forbids `unsafe`). On a file system without hard links it falls back to a
//!   check then a rename, under the part's lock. [`Overwrite::Replace`] renames over the
//!   target.
//! * **Names in a batch never collide**: saves that share a [`BatchNames`] into one
//!   directory take `NAME.EXT`, then `NAME (2).EXT`, `NAME (3).EXT`…

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use wecom_material_core::errcode::ErrCode;
use wecom_material_core::md5sum::Md5Hex;
use wecom_material_core::ops::get_media::MediaEndpoint;
use wecom_material_core::save::{MAX_RECORD_LEN, ResumeDecision, SaveError, SaveRecord};
use wecom_material_core::task::{Action, ClientState, Event, LaneId, Task};
use wecom_material_core::{
    ClientSettings, DownloadOptions, DownloadTask, Downloaded, Error, MediaId, MediaInfo, Progress,
    ResumeRecord, Transfer,
};

use crate::FileSink;

/// How often opening the part starts over when another process changes its name meanwhile.
const OPEN_ATTEMPTS: u32 = 8;

/// What to do when the target exists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Overwrite {
    /// Refuse with [`SaveError::TargetExists`] (at most the first chunk is fetched).
    #[default]
    Refuse,
    /// Replace it (a symlink there is replaced, never followed).
    Replace,
}

/// How to save a media.
#[derive(Debug, Clone, Default)]
pub struct SaveOptions<'a> {
    /// How many ranges at once (0 and 1: one at a time).
    pub connections: usize,
    /// What to do when the target exists.
    pub overwrite: Overwrite,
    /// HD voice (`media/get/jssdk`, one stream, never resumed) instead of `media/get`.
    pub hd_voice: bool,
    /// Progress, cancel and the overall deadline ([`Transfer::deadline`]: the download then
    /// ends with [`Error::DeadlineExceeded`]). On cancel or deadline the record is written at
    /// once and the save ends with [`SaveError::Stopped`] saying how much is kept.
    pub transfer: Transfer,
    /// The names already taken by other saves of one batch (see [`BatchNames`]).
    pub names: Option<&'a BatchNames>,
}

/// The names the saves of one batch took, so that two media that name themselves alike are
/// saved as `NAME.EXT` and `NAME (2).EXT` (the browser convention) instead of one replacing or
/// refusing the other.
#[derive(Debug, Default)]
pub struct BatchNames(Mutex<HashSet<PathBuf>>);

impl BatchNames {
    /// No name taken yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes `path`, or the first of `NAME (2).EXT`, `NAME (3).EXT`… not taken yet.
    pub fn claim(&self, path: &Path) -> PathBuf {
        let mut taken = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut candidate = path.to_path_buf();
        let mut n = 1u64;
        while taken.contains(&candidate) {
            n += 1;
            candidate = numbered(path, n);
        }
        taken.insert(candidate.clone());
        candidate
    }
}

/// `dir/NAME (n).EXT` for `dir/NAME.EXT`.
fn numbered(path: &Path, n: u64) -> PathBuf {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let name = match path.extension() {
        Some(ext) => format!("{stem} ({n}).{}", ext.to_string_lossy()),
        None => format!("{stem} ({n})"),
    };
    path.with_file_name(name)
}

/// A media saved to a file.
#[derive(Debug, Clone)]
pub struct Saved {
    /// Where it is.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// What the server said about it.
    pub info: MediaInfo,
    /// Bytes that an earlier, interrupted save had fetched (not fetched again).
    pub resumed: u64,
}

/// Where the media goes.
#[derive(Debug, Clone)]
enum Target {
    /// Inside this directory, under the media's own (sanitized) filename.
    Dir(PathBuf),
    /// At this path.
    File(PathBuf),
}

impl Target {
    /// A directory when `path` is one or ends with a separator (created, with its parents,
    /// when missing); a file path otherwise (its parent created).
    fn resolve(path: &Path) -> Result<Self, Error> {
        let text = path.as_os_str().to_string_lossy();
        let dir_like = text.ends_with('/') || text.ends_with(std::path::MAIN_SEPARATOR);
        // `metadata` follows links: a symlink to a directory is a directory the user named.
        if dir_like || fs::metadata(path).is_ok_and(|m| m.is_dir()) {
            create_dirs(path)?;
            return Ok(Target::Dir(path.to_path_buf()));
        }
        create_dirs(parent_dir(path))?;
        Ok(Target::File(path.to_path_buf()))
    }

    fn dir(&self) -> &Path {
        match self {
            Target::Dir(dir) => dir,
            Target::File(path) => parent_dir(path),
        }
    }
}

fn create_dirs(dir: &Path) -> Result<(), Error> {
    fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))
}

fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The part file's name: from the media id alone (so a later save finds it), safe in any
/// directory, hidden.
pub fn part_name(media_id: &MediaId, endpoint: MediaEndpoint) -> String {
    let id = media_id.as_str();
    let safe: String = id
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' => c,
            _ => '_',
        })
        .take(96)
        .collect();
    let suffix = if safe == id {
        String::new()
    } else {
        format!("-{}", &Md5Hex::of(id.as_bytes())[..12])
    };
    let kind = match endpoint {
        MediaEndpoint::Media => "",
        MediaEndpoint::HdVoice => ".hd",
    };
    format!(".{safe}{suffix}{kind}.part")
}

/// A save in progress: the locked part file and the task that fills it. Drive
/// the task [`SaveJob::task`] hands out, with the file sink beside it, then hand the result to
/// [`SaveJob::finish`], which moves the file into place, or says to drive again (the media
/// changed size: the part was set aside).
#[derive(Debug)]
pub struct SaveJob<'a> {
    part: PartFile,
    task: SaveTask<'a>,
    settings: ClientSettings,
    seed: u64,
    restarted: bool,
}

impl<'a> SaveJob<'a> {
    /// Gets a save of `media_id` to `target` ready: resolves the target (a file target that
    /// exists is refused here, before any request), opens and locks the part, reads its
    /// record and decides whether to continue it.
    pub fn start(
        settings: &ClientSettings,
        seed: u64,
        media_id: &MediaId,
        target: &Path,
        options: &SaveOptions<'a>,
    ) -> Result<Self, Error> {
        let target = Target::resolve(target)?;
        if let (Target::File(path), Overwrite::Refuse) = (&target, options.overwrite) {
            refuse_existing(path)?;
        }
        let endpoint = if options.hd_voice {
            MediaEndpoint::HdVoice
        } else {
            MediaEndpoint::Media
        };
        let part_path = target.dir().join(part_name(media_id, endpoint));
        let (part, resume) = PartFile::open(part_path, media_id, endpoint)?;
        let task = SaveTask::new(
            settings, seed, media_id, endpoint, target, &part, resume, options,
        )?;
        Ok(Self {
            part,
            task,
            settings: settings.clone(),
            seed,
            restarted: false,
        })
    }

    /// The task to drive and the file it writes to.
    pub fn task(&mut self) -> (&mut SaveTask<'a>, FileSink<'_>) {
        (&mut self.task, FileSink::new(&self.part.file))
    }

    /// Ends the save with the task's `result`: `Ok(Some(saved))` when the file is in place,
    /// `Ok(None)` when the task is to be driven again from byte 0 (the media no longer has
    /// the recorded size: the old part was set aside; this happens once at most).
    pub fn finish(&mut self, result: Result<Downloaded, Error>) -> Result<Option<Saved>, Error> {
        let task = &mut self.task;
        if let Some(refusal) = task.refused.take() {
            self.part.abandon(task.resumed == 0, task.record_of());
            return Err(refusal);
        }
        let done = match result {
            Ok(done) => done,
            Err(error) if task.inner.total_changed().is_some() && !self.restarted => {
                log::warn!(
                    "{}: the media is no longer {} bytes; starting over",
                    self.part.path.display(),
                    task.resume_total.unwrap_or(0),
                );
                drop(error);
                self.restarted = true;
                let (endpoint, media_id) = (task.endpoint, task.media_id.clone());
                let (target, options) = (task.target.clone(), task.options.clone());
                let path = self.part.path.clone();
                self.part.set_aside_self()?;
                let (part, resume) = PartFile::open(path, &media_id, endpoint)?;
                self.task = SaveTask::new(
                    &self.settings,
                    self.seed.wrapping_add(1),
                    &media_id,
                    endpoint,
                    target,
                    &part,
                    resume,
                    &options,
                )?;
                self.part = part;
                return Ok(None);
            }
            Err(error) => return Err(self.part.stopped(task, error)),
        };
        let path = match task.final_path.take() {
            Some(path) => path,
            None => task.place(&done.info)?,
        };
        self.part
            .complete(&path, done.total, task.options.overwrite)?;
        Ok(Some(Saved {
            path,
            bytes: done.total,
            info: done.info,
            resumed: task.resumed,
        }))
    }
}

/// The core's download task for a save, with the two checks the host makes between its
/// steps: the target, as soon as a head names the file, and the record, whenever it is due.
pub struct SaveTask<'a> {
    inner: DownloadTask,
    media_id: MediaId,
    endpoint: MediaEndpoint,
    target: Target,
    options: SaveOptions<'a>,
    record_path: PathBuf,
    /// The part, for syncing it before the record claims its bytes.
    part: File,
    final_path: Option<PathBuf>,
    refused: Option<Error>,
    resumed: u64,
    resume_total: Option<u64>,
    warned: bool,
}

impl std::fmt::Debug for SaveTask<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaveTask")
            .field("inner", &self.inner)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl<'a> SaveTask<'a> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        settings: &ClientSettings,
        seed: u64,
        media_id: &MediaId,
        endpoint: MediaEndpoint,
        target: Target,
        part: &PartFile,
        resume: Option<ResumeRecord>,
        options: &SaveOptions<'a>,
    ) -> Result<Self, Error> {
        let mut download = DownloadOptions::default().connections(options.connections);
        if endpoint == MediaEndpoint::HdVoice {
            download = download.hd_voice();
        }
        let (resumed, resume_total) = resume
            .as_ref()
            .map_or((0, None), |r| (r.bytes_done(), Some(r.total)));
        let inner = DownloadTask::for_save(media_id.clone(), download, settings, seed, resume)?;
        let part_file = part
            .file
            .try_clone()
            .map_err(|e| Error::io(format!("opening {}", part.path.display()), e))?;
        Ok(Self {
            inner,
            media_id: media_id.clone(),
            endpoint,
            target,
            options: options.clone(),
            record_path: part.record_path.clone(),
            part: part_file,
            final_path: None,
            refused: None,
            resumed,
            resume_total,
            warned: false,
        })
    }

    /// Where the media named by `info` goes: its own name in a directory target (made
    /// unique in the batch), or the file target; refused when something is there.
    fn place(&self, info: &MediaInfo) -> Result<PathBuf, Error> {
        let path = match &self.target {
            Target::Dir(dir) => {
                let path = dir.join(&info.filename);
                match self.options.names {
                    Some(names) => names.claim(&path),
                    None => path,
                }
            }
            Target::File(path) => path.clone(),
        };
        if self.options.overwrite == Overwrite::Refuse {
            refuse_existing(&path)?;
        }
        Ok(path)
    }

    /// What arrived, as the record names it.
    fn record_of(&self) -> Option<SaveRecord> {
        let progress = self.inner.resume_record()?;
        Some(SaveRecord::new(&self.media_id, self.endpoint, &progress))
    }

    /// Syncs the part's data, then replaces the record (so it never claims bytes that are
    /// not on disk). A failure costs only the ability to resume: one warning.
    fn write_record(&mut self) {
        let Some(record) = self.record_of() else {
            return;
        };
        let result = self
            .part
            .sync_data()
            .and_then(|()| write_replacing(&self.record_path, &record.to_json()));
        if let Err(e) = result
            && !std::mem::replace(&mut self.warned, true)
        {
            log::warn!(
                "cannot write {} (the save will not be resumable): {e}",
                self.record_path.display()
            );
        }
    }
}

impl Task for SaveTask<'_> {
    type Output = Downloaded;

    fn poll(&mut self, now: Instant, state: &mut ClientState) -> Action<Downloaded> {
        if self.final_path.is_none()
            && self.refused.is_none()
            && let Some(info) = self.inner.media_info()
        {
            match self.place(info) {
                Ok(path) => self.final_path = Some(path),
                Err(refusal) => {
                    self.refused = Some(refusal);
                    self.inner.cancel(state);
                }
            }
        }
        if self.inner.record_due(now) {
            self.write_record();
            self.inner.mark_recorded(now);
        }
        self.inner.poll(now, state)
    }

    fn on_event(&mut self, now: Instant, state: &mut ClientState, lane: LaneId, event: Event) {
        self.inner.on_event(now, state, lane, event);
    }

    fn progress(&self) -> Option<Progress> {
        self.inner.progress()
    }

    fn cancel(&mut self, state: &mut ClientState) {
        self.inner.cancel(state);
    }
}

/// The open, locked part file.
#[derive(Debug)]
struct PartFile {
    path: PathBuf,
    record_path: PathBuf,
    file: File,
}

impl PartFile {
    /// Opens (or creates) the part at `path` for one save and decides, with the core's
    /// policy, whether to continue it.
    fn open(
        path: PathBuf,
        media_id: &MediaId,
        endpoint: MediaEndpoint,
    ) -> Result<(Self, Option<ResumeRecord>), Error> {
        let record_path = sibling(&path, ".json");
        let fail = |what: &str, e: io::Error| Error::io(format!("{what} {}", path.display()), e);
        for _ in 0..OPEN_ATTEMPTS {
            let existing = match fs::symlink_metadata(&path) {
                Ok(meta) => Some(meta),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(fail("inspecting", e)),
            };
            let file = match &existing {
                None => match private_options().create_new(true).open(&path) {
                    Ok(file) => file,
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(fail("creating", e)),
                },
                Some(meta) if !meta.file_type().is_file() => {
                    // A symlink, a directory, a FIFO: never opened, moved out of the way.
                    set_aside(&path, "it is not a regular file")
                        .map_err(|e| fail("setting aside", e))?;
                    continue;
                }
                // Not O_APPEND: the ranges are written at their offsets.
                Some(_) => match OpenOptions::new().read(true).write(true).open(&path) {
                    Ok(file) => file,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(fail("opening", e)),
                },
            };
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(Error::Save(SaveError::Busy { part: path }));
                }
                Err(fs::TryLockError::Error(e)) => return Err(fail("locking", e)),
            }
            if !is_same_file(&path, &file) {
                // Renamed, removed or replaced between the open and the lock: look again.
                continue;
            }
            let len = file.metadata().map_err(|e| fail("inspecting", e))?.len();
            // A record beside a part this open created belongs to no part: not read.
            let record = existing
                .is_some()
                .then(|| read_record(&record_path))
                .flatten();
            let part = Self {
                path: path.clone(),
                record_path: record_path.clone(),
                file,
            };
            match ResumeDecision::decide(record.as_deref(), len, media_id, endpoint) {
                ResumeDecision::Fresh => {
                    remove_if_present(&record_path);
                    return Ok((part, None));
                }
                ResumeDecision::Continue(progress) => return Ok((part, Some(progress))),
                ResumeDecision::StartOver { reason } => {
                    set_aside(&path, &reason).map_err(|e| fail("setting aside", e))?;
                    remove_if_present(&record_path);
                    drop(part);
                }
            }
        }
        Err(Error::io(
            format!("opening {}", path.display()),
            io::Error::other("it keeps changing under this save; is another one using it?"),
        ))
    }

    /// Sets this part aside (the media changed size).
    fn set_aside_self(&self) -> Result<(), Error> {
        remove_if_present(&self.record_path);
        set_aside(&self.path, "the media changed size")
            .map(drop)
            .map_err(|e| Error::io(format!("setting aside {}", self.path.display()), e))
    }

    /// The save was refused: a part of this run alone (`fresh`) is removed, a resumed one
    /// keeps its record (up to date).
    fn abandon(&self, fresh: bool, record: Option<SaveRecord>) {
        if fresh {
            self.remove();
        } else if let Some(record) = record {
            let _ = self.file.sync_data();
            let _ = write_replacing(&self.record_path, &record.to_json());
        }
    }

    /// The save stopped with `error`: the record is written at once; the error says how
    /// much is kept. A media that is gone, or a part that holds nothing, leaves nothing.
    fn stopped(&self, task: &mut SaveTask<'_>, error: Error) -> Error {
        let gone = error.errcode() == Some(ErrCode::InvalidMediaId);
        let record = task.record_of();
        let kept = record.as_ref().map_or(0, |r| r.progress().bytes_done());
        if gone || kept == 0 {
            self.remove();
            return error;
        }
        task.write_record();
        Error::Save(SaveError::Stopped {
            kept,
            total: record.map(|r| r.total),
            part: self.path.clone(),
            cause: Box::new(error),
        })
    }

    /// Moves the complete part to `target`: its length checked, synced, never over an
    /// existing file unless `overwrite` says replace. The part and its record are gone
    /// afterwards, whatever the outcome.
    fn complete(&self, target: &Path, total: u64, overwrite: Overwrite) -> Result<(), Error> {
        let result = self.move_to(target, total, overwrite);
        self.remove();
        result
    }

    fn move_to(&self, target: &Path, total: u64, overwrite: Overwrite) -> Result<(), Error> {
        let part = &self.path;
        let fail = |e: io::Error| Error::io(format!("finishing {}", part.display()), e);
        let len = self.file.metadata().map_err(fail)?.len();
        if len != total {
            return Err(fail(io::Error::other(format!(
                "the part is {len} bytes but the media is {total} bytes; nothing was saved"
            ))));
        }
        self.file.sync_all().map_err(fail)?;
        let moved = |e: io::Error| {
            Error::io(
                format!("moving {} to {}", part.display(), target.display()),
                e,
            )
        };
        if overwrite == Overwrite::Replace {
            return fs::rename(part, target).map_err(moved);
        }
        match fs::hard_link(part, target) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(exists(target)),
            Err(e) if is_link_unsupported(&e) => {
                // No hard links here: a check then a rename, under the part's lock (a file
                // created at the target in between by another program would be replaced).
                refuse_existing(target)?;
                fs::rename(part, target).map_err(moved)
            }
            Err(e) => Err(moved(e)),
        }
    }

    fn remove(&self) {
        remove_if_present(&self.path);
        remove_if_present(&self.record_path);
    }
}

/// Refuses `target` when anything is at its name (a dangling symlink included).
fn refuse_existing(target: &Path) -> Result<(), Error> {
    if fs::symlink_metadata(target).is_ok() {
        return Err(exists(target));
    }
    Ok(())
}

fn exists(target: &Path) -> Error {
    Error::Save(SaveError::TargetExists {
        path: target.to_path_buf(),
    })
}

fn is_link_unsupported(e: &io::Error) -> bool {
    // Unsupported, or EPERM from a file system without hard links (FAT, some FUSE mounts).
    matches!(
        e.kind(),
        io::ErrorKind::Unsupported | io::ErrorKind::PermissionDenied
    )
}

/// Options that create files readable by their owner only.
fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.read(true).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Reads at most [`MAX_RECORD_LEN`] + 1 bytes of a record (more is set aside by the core);
/// `None` when absent or not a regular file.
fn read_record(path: &Path) -> Option<Vec<u8>> {
    let meta = fs::symlink_metadata(path).ok()?;
    if !meta.file_type().is_file() {
        return Some(b"not a regular file".to_vec());
    }
    let mut bytes = Vec::new();
    File::open(path)
        .ok()?
        .take(MAX_RECORD_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(bytes)
}

/// Replaces `path` with `bytes` through a temporary file and a rename (a symlink at `path`
/// is replaced, never followed).
fn write_replacing(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = sibling(path, &format!(".{}.tmp", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut file = private_options().create_new(true).open(&tmp)?;
        file.write_all(bytes)?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Renames `path` (the entry itself, never a symlink's target) to the first free
/// `path.stale-N`, with one warning saying why.
fn set_aside(path: &Path, reason: &str) -> io::Result<PathBuf> {
    for n in 1..10_000 {
        let stale = sibling(path, &format!(".stale-{n}"));
        if fs::symlink_metadata(&stale).is_err() {
            fs::rename(path, &stale)?;
            log::warn!(
                "set aside {} as {}: {reason}",
                path.display(),
                stale.display()
            );
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

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wecom-save-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn part_names_are_safe_and_distinct() {
        let name = |id: &str, e| part_name(&MediaId::new(id), e);
        assert_eq!(name("abc_D-1", MediaEndpoint::Media), ".abc_D-1.part");
        assert_eq!(name("abc_D-1", MediaEndpoint::HdVoice), ".abc_D-1.hd.part");
        assert_ne!(
            name("a/b", MediaEndpoint::Media),
            name("a_b", MediaEndpoint::Media)
        );
        assert!(!name("../../x", MediaEndpoint::Media).contains(".."));
        assert!(!name("../../x", MediaEndpoint::Media).contains('/'));
    }

    #[test]
    fn names_of_one_batch_never_collide() {
        let names = BatchNames::new();
        let dir = Path::new("d");
        assert_eq!(names.claim(&dir.join("same.bin")), dir.join("same.bin"));
        assert_eq!(names.claim(&dir.join("same.bin")), dir.join("same (2).bin"));
        assert_eq!(names.claim(&dir.join("same.bin")), dir.join("same (3).bin"));
        assert_eq!(names.claim(&dir.join("README")), dir.join("README"));
        assert_eq!(names.claim(&dir.join("README")), dir.join("README (2)"));
    }

    #[test]
    fn a_second_open_of_a_held_part_is_busy() {
        let dir = scratch("held");
        let id = MediaId::new("m");
        let path = dir.join(".m.part");
        let (first, _) = PartFile::open(path.clone(), &id, MediaEndpoint::Media).unwrap();
        let error = PartFile::open(path.clone(), &id, MediaEndpoint::Media).unwrap_err();
        assert!(
            matches!(&error, Error::Save(SaveError::Busy { part }) if *part == path),
            "{error:?}"
        );
        drop(first);
        PartFile::open(path, &id, MediaEndpoint::Media).unwrap();
        let _ = fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[test]
    fn parts_and_records_are_private_and_symlinks_at_their_names_are_never_followed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("symlink");
        let victim = dir.join("victim.txt");
        fs::write(&victim, b"precious").unwrap();
        let path = dir.join(".m.part");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        std::os::unix::fs::symlink(&victim, sibling(&path, ".json")).unwrap();
        let id = MediaId::new("m");
        let (part, resume) = PartFile::open(path.clone(), &id, MediaEndpoint::Media).unwrap();
        assert!(resume.is_none());
        assert!(
            fs::symlink_metadata(sibling(&path, ".stale-1"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        FileSink::new(&part.file).write_at(0, b"media").unwrap();
        let progress = ResumeRecord {
            total: 9,
            done: vec![(0, 5)],
        };
        let record = SaveRecord::new(&id, MediaEndpoint::Media, &progress);
        write_replacing(&part.record_path, &record.to_json()).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        for file in [&path, &part.record_path] {
            let mode = fs::metadata(file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        }
        drop(part);
        // The same media continues from its record.
        let (_part, resume) = PartFile::open(path, &id, MediaEndpoint::Media).unwrap();
        assert_eq!(resume, Some(progress));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_record_without_its_part_is_dropped_not_set_aside() {
        let dir = scratch("orphan");
        let id = MediaId::new("m");
        let path = dir.join(".m.part");
        let progress = ResumeRecord {
            total: 9,
            done: vec![(0, 5)],
        };
        let record = SaveRecord::new(&id, MediaEndpoint::Media, &progress);
        write_replacing(&sibling(&path, ".json"), &record.to_json()).unwrap();
        let (part, resume) = PartFile::open(path.clone(), &id, MediaEndpoint::Media).unwrap();
        assert_eq!(resume, None);
        assert!(!part.record_path.exists());
        assert!(!sibling(&path, ".stale-1").exists());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_complete_part_is_moved_without_replacing_unless_told() {
        let dir = scratch("move");
        let id = MediaId::new("m");
        let target = dir.join("out.bin");
        let open = || {
            let (part, _) = PartFile::open(dir.join(".m.part"), &id, MediaEndpoint::Media).unwrap();
            FileSink::new(&part.file).write_at(0, b"new!").unwrap();
            part
        };
        let error = open().complete(&target, 5, Overwrite::Refuse).unwrap_err();
        // The message says this layer's part; the length found is its cause.
        let cause = std::error::Error::source(&error).map(ToString::to_string);
        assert!(cause.is_some_and(|c| c.contains("4 bytes")), "{error}");
        assert!(!target.exists() && !dir.join(".m.part").exists());

        fs::write(&target, b"mine").unwrap();
        let error = open().complete(&target, 4, Overwrite::Refuse).unwrap_err();
        assert!(matches!(error, Error::Save(SaveError::TargetExists { .. })));
        assert_eq!(fs::read(&target).unwrap(), b"mine");

        open().complete(&target, 4, Overwrite::Replace).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new!");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        let _ = fs::remove_dir_all(&dir);
    }
}
