//! `get <MEDIA_ID> [--output PATH_OR_DIR] [--force]` and `hd-voice` (same, from
//! `media/get/jssdk`).
//!
//! The media is written to a temporary file `.<media id>.part` in the target directory and
//! moved into place when complete. The name depends only on the media id, so a run
//! interrupted halfway leaves a partial file that the next run for the same media id
//! continues with a Range request — when the part's record proves it is that media's
//! beginning ([`crate::part_file`] has the rules: one run per part file, no symlinks, length
//! checked before the move). An existing file is never replaced without `--force`.

use std::fs::File;
use std::path::{Path, PathBuf};

use serde_json::json;
use wecom_material_core::md5sum::Md5Hex;
use wecom_material_core::{CancelFlag, ErrCode, Error, MediaId};
use wecom_material_ureq::{Client, Downloaded, Transfer};

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
pub(crate) enum Target {
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

    /// Where the media named by `info` goes.
    pub(crate) fn path_for(&self, info: &wecom_material_core::MediaInfo) -> PathBuf {
        match self {
            Target::Dir(dir) => dir.join(&info.filename),
            Target::File(path) => path.clone(),
        }
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

impl Source {
    /// The endpoint's name in a part file's record.
    fn record_name(self) -> &'static str {
        match self {
            Source::Media => "media",
            Source::HdVoice => "hd-voice",
        }
    }
}

/// Refuses the file a download would create as soon as the first response head names it
/// (the library hook calls this before the body is read): the target path for `info`, or a
/// usage error when it exists and `force` is not given.
#[allow(dead_code)] // Called by the first-head hook the transports are getting (issue 9).
pub(crate) fn check_target(
    target: &Target,
    info: &wecom_material_core::MediaInfo,
    force: bool,
) -> Result<PathBuf, Failure> {
    let path = target.path_for(info);
    crate::part_file::refuse_existing(&path, force)?;
    Ok(path)
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
    let endpoint = source.record_name();
    let mut part = PartFile::open(
        &target.dir(),
        &part_name(media_id.as_str(), source),
        media_id.as_str(),
        endpoint,
    )?;
    let offset = part.offset();
    if offset > 0 {
        out.note(&format!(
            "resuming {} at {} ({})",
            part.path().display(),
            offset,
            output::size(offset)
        ));
    }
    let bar = TransferBar::new(format!("get {media_id}"), out.json);
    let mut result = fetch(session.client(), source, &media_id, &mut part, &bar);
    let restart = offset > 0
        && (part.meta().total_mismatch().is_some() || matches!(result, Err(Error::Decode(_))));
    if restart {
        // The partial file does not continue this media (complete already, or of another
        // size): set it aside and start over.
        log::info!("the partial file does not continue this media; downloading it whole");
        part = part.restart(media_id.as_str(), endpoint)?;
        result = fetch(session.client(), source, &media_id, &mut part, &bar);
    }
    bar.finish();
    for stale in part.set_aside() {
        out.note(&format!(
            "set aside {}: it was not a partial download of this media",
            stale.display()
        ));
    }
    let done = match result {
        Ok(done) => done,
        Err(e) => {
            let gone = e.errcode() == Some(ErrCode::InvalidMediaId);
            if let Some(kept) = part.discard(gone) {
                out.note(&format!("partial download kept in {}", kept.display()));
            }
            return Err(e.into());
        }
    };
    let path = target.path_for(&done.info);
    part.finish(&path, done.total, args.force)?;
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

/// Downloads the rest of the media into the part file; a total that differs from the part's
/// record cancels the download (see [`PartMeta::note_progress`]).
fn fetch(
    client: &Client,
    source: Source,
    media_id: &MediaId,
    part: &mut PartFile,
    bar: &TransferBar,
) -> Result<Downloaded, Error> {
    let offset = part.offset();
    let (file, meta): (&mut File, &PartMeta) = part.split();
    let cancel = CancelFlag::new();
    let report = |p: wecom_material_core::Progress| {
        if !meta.note_progress(p.total) {
            cancel.cancel();
        }
        bar.report(p);
    };
    let transfer = Transfer {
        progress: Some(&report),
        cancel: Some(&cancel),
    };
    match source {
        Source::Media => client.download_resume(media_id, file, offset, transfer),
        Source::HdVoice => client.download_hd_voice(media_id, file, offset, transfer),
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
