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
//! renamed when complete. The name depends only on the media id, so a run interrupted halfway
//! leaves a partial file that the next run for the same media id continues with a Range
//! request. An existing file is never replaced without `--force`.

use std::fs::{self, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use wecom_material_core::md5sum::Md5Hex;
use wecom_material_core::{Error, MediaId, MediaInfo};
use wecom_material_ureq::{Client, DownloadOptions, Downloaded, Transfer};

use crate::cli::GetArgs;
use crate::failure::Failure;
use crate::output::{self, Output};
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
            return to_stdout(session, out, &media_id, source);
        }
        let saved = save(session, out, &media_id, &target, args.force, source)?;
        out.emit(saved_json(&saved), || saved_text(&saved));
        return Ok(());
    }
    let mut worst = 0u8;
    for id in &args.media_ids {
        let media_id = MediaId::new(id.clone());
        match save(session, out, &media_id, &target, args.force, source) {
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
        saved.path.display(),
        saved.info.content_type,
        output::size(saved.total)
    )
}

/// `--output -`: the media on standard output, buffered; nothing else goes there.
fn to_stdout(
    session: &Session,
    out: Output,
    media_id: &MediaId,
    source: Source,
) -> Result<(), Failure> {
    let bar = TransferBar::new(format!("get {media_id}"), out);
    let mut stdout = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let result = fetch(session.client(), source, media_id, &mut stdout, 0, &bar);
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
        done.info.filename,
        done.info.content_type,
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
    force: bool,
    source: Source,
) -> Result<Saved, Failure> {
    let media_id = media_id.clone();
    let part = target.dir().join(part_name(media_id.as_str(), source));
    let open = || {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&part)
            .map_err(|e| Failure::usage(format!("cannot write {}: {e}", part.display())))
    };
    let mut file = open()?;
    let offset = file.metadata().map(|m| m.len()).unwrap_or(0);
    if offset > 0 {
        out.note(&format!(
            "resuming {} at {} ({})",
            part.display(),
            offset,
            output::size(offset)
        ));
    }
    let bar = TransferBar::new(format!("get {media_id}"), out);
    let mut resumed_at = offset;
    let mut result = fetch(session.client(), source, &media_id, &mut file, offset, &bar);
    if offset > 0 && matches!(result, Err(Error::Decode(_))) {
        // The partial file does not fit the media (complete already, or of another size):
        // start over.
        log::info!("the partial file does not continue this media; downloading it whole");
        drop(file);
        fs::remove_file(&part).map_err(|e| Failure::other(format!("{}: {e}", part.display())))?;
        file = open()?;
        resumed_at = 0;
        result = fetch(session.client(), source, &media_id, &mut file, 0, &bar);
    }
    let done = match result {
        Ok(done) => {
            bar.finish(done.bytes_written, resumed_at);
            done
        }
        Err(e) => {
            bar.abandon();
            drop(file);
            if fs::metadata(&part).is_ok_and(|m| m.len() == 0) {
                let _ = fs::remove_file(&part);
            } else {
                out.note(&format!("partial download kept in {}", part.display()));
            }
            return Err(e.into());
        }
    };
    file.sync_all()
        .map_err(|e| Failure::other(format!("{}: {e}", part.display())))?;
    drop(file);
    let path = match target {
        Target::Dir(dir) => dir.join(&done.info.filename),
        Target::File(path) => path.clone(),
        Target::Stdout => return Err(Failure::other("standard output is not a file")),
    };
    if path.exists() && !force {
        let _ = fs::remove_file(&part);
        return Err(Failure::usage(format!(
            "{} exists; pass --force to replace it",
            path.display()
        )));
    }
    fs::rename(&part, &path).map_err(|e| {
        Failure::other(format!(
            "cannot move {} to {}: {e}",
            part.display(),
            path.display()
        ))
    })?;
    Ok(Saved {
        path,
        info: done.info,
        total: done.total,
    })
}

fn fetch(
    client: &Client,
    source: Source,
    media_id: &MediaId,
    file: &mut dyn Write,
    offset: u64,
    bar: &TransferBar,
) -> Result<Downloaded, Error> {
    let report = |p| bar.report(p);
    let transfer = Transfer {
        progress: Some(&report),
        cancel: None,
    };
    match source {
        Source::Media => client.download(
            media_id,
            file,
            DownloadOptions::default().resume_from(offset),
            transfer,
        ),
        Source::HdVoice => client.download(
            media_id,
            file,
            DownloadOptions::default().hd_voice().resume_from(offset),
            transfer,
        ),
    }
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
