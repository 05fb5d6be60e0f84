//! `get <MEDIA_ID>... [--output PATH_OR_DIR] [--force]` and `hd-voice` (same, from
//! `media/get/jssdk`).
//!
//! Where the media goes ([`Target::resolve`], before any request): `--output -` is standard
//! output (one media id; not with `--json`; notices and progress stay on stderr); a path that
//! ends in `/` or is an existing directory is a directory, created with its parents when
//! missing, and the server's filename is used; anything else is a file path whose parent
//! directories are created (one media id only). Several media ids are fetched one after the
//! other into the directory; each prints one result (JSON Lines with `--json`, `"media_id"`
//! added; a failed one as `{"media_id", "error", "errcode", "exit"}`) and the exit status is
//! the highest of them.
//!
//! The media is written to a temporary file `.<media id>.part` in the target directory and
//! moved into place when complete. The name depends only on the media id, so a run
//! interrupted halfway leaves a partial file that the next run for the same media id
//! continues — when the part's record proves it is that media's ([`crate::part_file`] has the
//! rules: one run per part file, no symlinks, length checked before the move). An existing
//! file is never replaced without `--force`.
//!
//! `--connections N` (N > 1, env `WECOM_CONNECTIONS`) fetches up to N ranges at once, written
//! at their offsets in the part file; the record then also lists the byte ranges that
//! arrived, so an interrupted run (Ctrl-C included) is continued by fetching only the missing
//! ones. HD voice is always fetched in one stream.

use std::fs::{self, File};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use wecom_material_core::md5sum::Md5Hex;
use wecom_material_core::task::ResumeRecord;
use wecom_material_core::{CancelFlag, ErrCode, Error, MediaId, MediaInfo, Progress};
use wecom_material_ureq::{Client, DownloadOptions, Downloaded, Transfer};

use crate::cli::GetArgs;
use crate::failure::Failure;
use crate::output::{self, Output};
use crate::part_file::{PartFile, PartMeta};
use crate::progress::TransferBar;
use crate::session::Session;

/// Which download endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// `media/get`.
    Media,
    /// `media/get/jssdk` (HD voice).
    HdVoice,
}

/// Where the media goes.
enum Target {
    /// Inside this directory, under the server's (sanitized) filename.
    Dir(PathBuf),
    /// At this path.
    File(PathBuf),
    /// Standard output.
    Stdout,
}

impl Target {
    /// Reads `--output` for `ids` media ids; creates the directories it names (exit 2 when
    /// it cannot, or when the combination makes no sense).
    fn resolve(
        output: Option<&Path>,
        ids: usize,
        force: bool,
        json: bool,
    ) -> Result<Self, Failure> {
        let path = output.unwrap_or(Path::new("."));
        if path.as_os_str() == "-" {
            if ids > 1 {
                return Err(Failure::usage(
                    "--output - takes one media id (standard output holds one media)",
                ));
            }
            if json {
                return Err(Failure::usage(
                    "--output - cannot be used with --json: standard output carries the media",
                ));
            }
            return Ok(Target::Stdout);
        }
        let text = path.to_string_lossy();
        if path.is_dir() || text.ends_with('/') || text.ends_with(std::path::MAIN_SEPARATOR) {
            create_dirs(path)?;
            return Ok(Target::Dir(path.to_path_buf()));
        }
        if ids > 1 {
            return Err(Failure::usage(format!(
                "{ids} media ids need a directory for --output, not the file path {} \
                 (end it with / to make it a directory)",
                path.display()
            )));
        }
        if path.exists() && !force {
            return Err(Failure::usage(format!(
                "{} exists; pass --force to replace it",
                path.display()
            )));
        }
        create_dirs(parent_dir(path))?;
        Ok(Target::File(path.to_path_buf()))
    }

    fn dir(&self) -> PathBuf {
        match self {
            Target::Dir(d) => d.clone(),
            Target::File(p) => parent_dir(p).to_path_buf(),
            Target::Stdout => PathBuf::from("."),
        }
    }

    /// Where the media named by `info` goes.
    fn path_for(&self, info: &MediaInfo) -> Result<PathBuf, Failure> {
        match self {
            Target::Dir(dir) => Ok(dir.join(&info.filename)),
            Target::File(path) => Ok(path.clone()),
            Target::Stdout => Err(Failure::other("standard output is not a file")),
        }
    }
}

/// `mkdir -p`.
fn create_dirs(dir: &Path) -> Result<(), Failure> {
    fs::create_dir_all(dir)
        .map_err(|e| Failure::usage(format!("cannot create directory {}: {e}", dir.display())))
}

fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The temporary file name of a download: derived from the media id alone (so a later run
/// finds it), safe in any directory, hidden.
pub(crate) fn part_name(media_id: &str, source: Source) -> String {
    let safe: String = media_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(96)
        .collect();
    let suffix = if safe == media_id {
        String::new()
    } else {
        format!("-{}", &Md5Hex::of(media_id.as_bytes())[..12])
    };
    let kind = match source {
        Source::Media => "",
        Source::HdVoice => ".hd",
    };
    format!(".{safe}{suffix}{kind}.part")
}

impl Source {
    /// The endpoint's name in a part file's record.
    fn record_name(self) -> &'static str {
        match self {
            Source::Media => "media",
            Source::HdVoice => "hd-voice",
        }
    }
}

/// Downloads each media into a file (or standard output) and prints where it went.
pub(crate) fn run(
    session: &Session,
    out: Output,
    args: &GetArgs,
    source: Source,
) -> Result<(), Failure> {
    if args.media_ids.iter().any(|id| id.trim().is_empty()) {
        return Err(Failure::usage("a media id is empty"));
    }
    let target = Target::resolve(
        args.output.as_deref(),
        args.media_ids.len(),
        args.force,
        out.json,
    )?;
    if let [id] = args.media_ids.as_slice() {
        let media_id = MediaId::new(id.clone());
        if let Target::Stdout = target {
            return to_stdout(session, out, &media_id, args, source);
        }
        let saved = save(session, out, &media_id, &target, args, source)?;
        out.emit(saved_json(&saved), || saved_text(&saved));
        return Ok(());
    }
    let mut worst = 0u8;
    for id in &args.media_ids {
        let media_id = MediaId::new(id.clone());
        match save(session, out, &media_id, &target, args, source) {
            Ok(saved) => {
                let mut object = saved_json(&saved);
                object["media_id"] = json!(id);
                out.emit(object, || saved_text(&saved));
            }
            Err(failure) => {
                worst = worst.max(failure.exit_code());
                eprintln!("error: {id}: {failure}");
                if out.json {
                    Output::json_line(&json!({
                        "media_id": id,
                        "error": failure.to_string(),
                        "errcode": failure.errcode(),
                        "exit": failure.exit_code(),
                    }));
                }
            }
        }
    }
    if worst == 0 {
        Ok(())
    } else {
        Err(Failure::Reported(worst))
    }
}

/// A media saved into a file.
struct Saved {
    path: PathBuf,
    info: MediaInfo,
    total: u64,
}

/// `{"path","filename","content_type","bytes"}` (the contract of issue 6).
fn saved_json(saved: &Saved) -> Value {
    json!({
        "path": saved.path.display().to_string(),
        "filename": saved.info.filename,
        "content_type": saved.info.content_type,
        "bytes": saved.total,
    })
}

fn saved_text(saved: &Saved) -> String {
    format!(
        "saved {} ({}, {})",
        output::shown(&saved.path.display().to_string()),
        output::shown(&saved.info.content_type),
        output::size(saved.total)
    )
}

/// `--output -`: the media on standard output, buffered; nothing else goes there.
fn to_stdout(
    session: &Session,
    out: Output,
    media_id: &MediaId,
    args: &GetArgs,
    source: Source,
) -> Result<(), Failure> {
    // Checked before anything is opened or sent (a 70,000-character id used to panic).
    media_id.validate().map_err(|e| Failure::Wecom(e.into()))?;
    let bar = TransferBar::new(format!("get {}", output::shown(media_id.as_str())), out);
    let mut stdout = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let options = options(source, 0, deadline(args));
    let report = |p| bar.report(p);
    let transfer = Transfer {
        progress: Some(&report),
        cancel: None,
    };
    let result = session
        .client()
        .download(media_id, &mut stdout, options, transfer);
    let flushed = stdout.flush();
    let done = match result {
        Ok(done) => done,
        Err(e) => {
            bar.abandon();
            return Err(e.into());
        }
    };
    flushed.map_err(|e| Failure::other(format!("cannot write to standard output: {e}")))?;
    bar.finish(done.bytes_written, 0);
    out.note(&format!(
        "wrote {} ({}, {}) to standard output",
        output::shown(&done.info.filename),
        output::shown(&done.info.content_type),
        output::size(done.total)
    ));
    Ok(())
}

/// Downloads one media into the target through a `.part` file.
fn save(
    session: &Session,
    out: Output,
    media_id: &MediaId,
    target: &Target,
    args: &GetArgs,
    source: Source,
) -> Result<Saved, Failure> {
    // Checked before the part file is created (a 70,000-character id used to leave an empty
    // `.part` behind a panic).
    media_id.validate().map_err(|e| Failure::Wecom(e.into()))?;
    let endpoint = source.record_name();
    let part_name = part_name(media_id.as_str(), source);
    let mut part = PartFile::open(&target.dir(), &part_name, media_id.as_str(), endpoint)?;
    let offset = part.offset();
    if offset > 0 {
        out.note(&format!(
            "resuming {} at {} ({})",
            part.path().display(),
            offset,
            output::size(offset)
        ));
    }
    // The parallel download does not take a deadline yet: a download with one is one stream.
    let connections = if source == Source::Media && args.deadline.is_none() {
        usize::from(args.connections)
    } else {
        1
    };
    let bar = TransferBar::new(format!("get {}", output::shown(media_id.as_str())), out);
    let mut resumed_at = offset;
    let mut result = fetch(
        session.client(),
        source,
        media_id,
        &mut part,
        connections,
        deadline(args),
        &bar,
    );
    let restart = offset > 0
        && (part.meta().total_mismatch().is_some() || matches!(result, Err(Error::Decode(_))));
    if restart {
        // The partial file does not continue this media (complete already, or of another
        // size): set it aside and start over.
        log::info!("the partial file does not continue this media; downloading it whole");
        part = part.restart(media_id.as_str(), endpoint)?;
        resumed_at = 0;
        result = fetch(
            session.client(),
            source,
            media_id,
            &mut part,
            connections,
            deadline(args),
            &bar,
        );
    }
    for stale in part.set_aside() {
        out.note(&format!(
            "set aside {}: it was not a partial download of this media",
            stale.display()
        ));
    }
    let done = match result {
        Ok(done) => {
            bar.finish(done.bytes_written, resumed_at);
            done
        }
        Err(e) => {
            bar.abandon();
            let gone = e.errcode() == Some(ErrCode::InvalidMediaId);
            if let Some(kept) = part.discard(gone) {
                out.note(&format!("partial download kept in {}", kept.display()));
            }
            return Err(e.into());
        }
    };
    let path = target.path_for(&done.info)?;
    part.finish(&path, done.total, args.force)?;
    Ok(Saved {
        path,
        info: done.info,
        total: done.total,
    })
}

fn options(source: Source, offset: u64, deadline: Option<Duration>) -> DownloadOptions {
    let mut options = DownloadOptions::default().resume_from(offset);
    options.deadline = deadline;
    match source {
        Source::Media => options,
        Source::HdVoice => options.hd_voice(),
    }
}

/// `--deadline`.
fn deadline(args: &GetArgs) -> Option<Duration> {
    args.deadline.map(Duration::from_secs)
}

/// Downloads the rest of the media into the part file: appended after its bytes, or with
/// several connections, written at the offsets of the ranges its record lacks. A total that
/// differs from the part's record cancels the download (see [`PartMeta::note_progress`]).
fn fetch(
    client: &Client,
    source: Source,
    media_id: &MediaId,
    part: &mut PartFile,
    connections: usize,
    deadline: Option<Duration>,
    bar: &TransferBar,
) -> Result<Downloaded, Error> {
    let offset = part.offset();
    let (file, meta): (&mut File, &PartMeta) = part.split();
    let cancel = CancelFlag::new();
    let report = |p: Progress| {
        if !meta.note_progress(p.total) {
            cancel.cancel();
        }
        bar.report(p);
    };
    let transfer = Transfer {
        progress: Some(&report),
        cancel: Some(&cancel),
    };
    let ranges = meta.ranges();
    if connections <= 1 && ranges.is_none() {
        file.seek(SeekFrom::End(0))
            .map_err(|e| Error::io("resuming the part file", e))?;
        return client.download(media_id, file, options(source, offset, deadline), transfer);
    }
    // Before any byte is written at an offset, the record says the part may have holes: a
    // run killed midway leaves a part that the next one never continues by its length.
    let done = ranges.unwrap_or(if offset > 0 {
        vec![(0, offset)]
    } else {
        Vec::new()
    });
    let total = meta.total().unwrap_or(0);
    meta.note_ranges(&ResumeRecord {
        total,
        done: done.clone(),
    });
    let mut record = meta.total().map(|total| ResumeRecord { total, done });
    let options = DownloadOptions::default().connections(connections.max(1));
    let result = client.download_file(media_id, file, options, &mut record, transfer);
    if let (Err(_), Some(record)) = (&result, &record) {
        meta.note_ranges(record);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_names_are_safe_and_distinct() {
        assert_eq!(part_name("abc_D-1", Source::Media), ".abc_D-1.part");
        assert_eq!(part_name("abc_D-1", Source::HdVoice), ".abc_D-1.hd.part");
        let a = part_name("a/b", Source::Media);
        let b = part_name("a_b", Source::Media);
        assert_ne!(a, b);
        assert!(!a.contains('/'));
        assert!(!part_name("../../x", Source::Media).contains(".."));
    }
}
