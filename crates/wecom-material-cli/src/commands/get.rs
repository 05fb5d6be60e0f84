//! `get <MEDIA_ID> [--output PATH_OR_DIR] [--force]` and `hd-voice` (same, from
//! `media/get/jssdk`).
//!
//! The media is written to a temporary file `.<media id>.part` in the target directory and
//! renamed when complete. The name depends only on the media id, so a run interrupted halfway
//! leaves a partial file that the next run for the same media id continues with a Range
//! request. An existing file is never replaced without `--force`.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use serde_json::json;
use wecom_material_core::md5sum::Md5Hex;
use wecom_material_core::{Error, MediaId};
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
}

impl Target {
    fn resolve(output: Option<&Path>, force: bool) -> Result<Self, Failure> {
        let path = output.unwrap_or(Path::new("."));
        if path.is_dir() {
            return Ok(Target::Dir(path.to_path_buf()));
        }
        let text = path.to_string_lossy();
        if text.ends_with('/') || text.ends_with(std::path::MAIN_SEPARATOR) {
            return Err(Failure::usage(format!(
                "output directory {} does not exist",
                path.display()
            )));
        }
        if path.exists() && !force {
            return Err(Failure::usage(format!(
                "{} exists; pass --force to replace it",
                path.display()
            )));
        }
        let parent = parent_dir(path);
        if !parent.is_dir() {
            return Err(Failure::usage(format!(
                "directory {} does not exist",
                parent.display()
            )));
        }
        Ok(Target::File(path.to_path_buf()))
    }

    fn dir(&self) -> PathBuf {
        match self {
            Target::Dir(d) => d.clone(),
            Target::File(p) => parent_dir(p).to_path_buf(),
        }
    }
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

/// Downloads a media into a file and prints where it went.
pub(crate) fn run(
    session: &Session,
    out: Output,
    args: &GetArgs,
    source: Source,
) -> Result<(), Failure> {
    if args.media_id.trim().is_empty() {
        return Err(Failure::usage("the media id is empty"));
    }
    let media_id = MediaId::new(args.media_id.clone());
    let target = Target::resolve(args.output.as_deref(), args.force)?;
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
    let bar = TransferBar::new(format!("get {media_id}"), out.json);
    let mut result = fetch(session.client(), source, &media_id, &mut file, offset, &bar);
    if offset > 0 && matches!(result, Err(Error::Decode(_))) {
        // The partial file does not fit the media (complete already, or of another size):
        // start over.
        log::info!("the partial file does not continue this media; downloading it whole");
        drop(file);
        fs::remove_file(&part).map_err(|e| Failure::other(format!("{}: {e}", part.display())))?;
        file = open()?;
        result = fetch(session.client(), source, &media_id, &mut file, 0, &bar);
    }
    bar.finish();
    let done = match result {
        Ok(done) => done,
        Err(e) => {
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
    let path = match &target {
        Target::Dir(dir) => dir.join(&done.info.filename),
        Target::File(path) => path.clone(),
    };
    if path.exists() && !args.force {
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
    out.emit(
        json!({
            "path": path.display().to_string(),
            "filename": done.info.filename,
            "content_type": done.info.content_type,
            "bytes": done.total,
        }),
        || {
            format!(
                "saved {} ({}, {})",
                path.display(),
                done.info.content_type,
                output::size(done.total)
            )
        },
    );
    Ok(())
}

fn fetch(
    client: &Client,
    source: Source,
    media_id: &MediaId,
    file: &mut File,
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
