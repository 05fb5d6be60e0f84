//! `get <MEDIA_ID>... [--output PATH_OR_DIR] [--force] [-c N]` and `hd-voice` (same, from
//! `media/get/jssdk`): a thin wrapper over the library's `Client::save` (resumable, parallel,
//! never over an existing file without `--force`; the part file and its record are the
//! library's, see `wecom_material_host::save`).
//!
//! `--output -` is standard output (one media id; not with `--json`); a path that ends in
//! `/` or is a directory is a directory (the media's own name inside it); anything else is
//! a file path (one media id only). Several media ids are saved one after the other, each
//! printing one result (JSON Lines with `--json`, `"media_id"` added); two of them that
//! name themselves alike are saved as `NAME.EXT` and `NAME (2).EXT`. The exit status is the
//! highest of them.
//!
//! SIGINT and SIGTERM cancel the save in progress: the record of what arrived is written at
//! once, one line says how much is kept, and the exit status is 130 or 143. The same command
//! run again continues from there. A second signal exits at once.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use signal_hook::consts::SIGINT;
use wecom_material_core::ops::get_media::MediaEndpoint;
use wecom_material_core::save::SaveError;
use wecom_material_core::{Error, MediaId};
use wecom_material_ureq::{BatchNames, DownloadOptions, Overwrite, SaveOptions, Saved, Transfer};

use crate::cli::GetArgs;
use crate::failure::Failure;
use crate::output::{self, Output};
use crate::progress::TransferBar;
use crate::session::Session;
use crate::stop_signal::Stop;

/// Downloads each media into a file (or standard output) and prints where it went.
pub(crate) fn run(
    session: &Session,
    out: Output,
    args: &GetArgs,
    endpoint: MediaEndpoint,
) -> Result<(), Failure> {
    if args.media_ids.iter().any(|id| id.trim().is_empty()) {
        return Err(Failure::usage("a media id is empty"));
    }
    let target = args.output.as_deref().unwrap_or(Path::new("."));
    if target.as_os_str() == "-" {
        return match args.media_ids.as_slice() {
            [_, _, ..] => Err(Failure::usage(
                "--output - takes one media id (standard output holds one media)",
            )),
            _ if out.json => Err(Failure::usage(
                "--output - cannot be used with --json: standard output carries the media",
            )),
            [id] => to_stdout(session, out, &MediaId::new(id.clone()), endpoint, args),
            [] => Ok(()),
        };
    }
    let text = target.to_string_lossy();
    let dir_like = target.is_dir() || text.ends_with('/') || text.ends_with('\\');
    if args.media_ids.len() > 1 && !dir_like {
        return Err(Failure::usage(format!(
            "{} media ids need a directory for --output, not the file path {} \
             (end it with / to make it a directory)",
            args.media_ids.len(),
            target.display()
        )));
    }
    let (stop, names, mut worst) = (Stop::install(), BatchNames::new(), 0u8);
    for id in &args.media_ids {
        let media_id = MediaId::new(id.clone());
        let failure = match save(
            session, out, &media_id, target, args, endpoint, &stop, &names,
        ) {
            Ok(saved) => {
                let mut object = saved_json(&saved);
                if args.media_ids.len() > 1 {
                    object["media_id"] = json!(id);
                }
                out.emit(object, || saved_text(&saved));
                continue;
            }
            Err(failure) if args.media_ids.len() == 1 => return Err(failure),
            Err(failure) => failure,
        };
        worst = worst.max(failure.exit_code());
        if !failure.is_reported() {
            eprintln!("error: {id}: {failure}");
            if out.json {
                let mut object = failure.to_json();
                object["media_id"] = json!(id);
                Output::json_line(&object);
            }
        }
        if stop.signal().is_some() {
            break;
        }
    }
    if worst == 0 {
        Ok(())
    } else {
        Err(Failure::Reported(worst))
    }
}

/// Saves one media through the library; maps its refusals to the CLI's lines and exits.
#[allow(clippy::too_many_arguments)]
fn save(
    session: &Session,
    out: Output,
    media_id: &MediaId,
    target: &Path,
    args: &GetArgs,
    endpoint: MediaEndpoint,
    stop: &Stop,
    names: &BatchNames,
) -> Result<Saved, Failure> {
    let bar = TransferBar::shared(format!("get {}", output::shown(media_id.as_str())), out);
    let overwrite = [Overwrite::Refuse, Overwrite::Replace][usize::from(args.force)];
    let options = SaveOptions {
        connections: usize::from(args.connections),
        overwrite,
        hd_voice: endpoint == MediaEndpoint::HdVoice,
        transfer: Transfer {
            deadline: args.deadline.map(Duration::from_secs),
            ..Transfer::default()
                .with_progress(bar.observer())
                .cancelled_by(stop.flag())
        },
        names: Some(names),
    };
    match session.client().save(media_id, target, options) {
        Ok(saved) => {
            bar.finish(saved.bytes - saved.resumed, saved.resumed);
            if saved.resumed > 0 {
                out.note(&format!(
                    "continued an earlier run: {} were there already",
                    output::size(saved.resumed)
                ));
            }
            Ok(saved)
        }
        Err(error) => {
            bar.abandon();
            Err(failure(error, stop, out))
        }
    }
}

/// The CLI's words for a save that did not end with a file.
fn failure(error: Error, stop: &Stop, out: Output) -> Failure {
    match (&error, stop.signal()) {
        (Error::Save(SaveError::Stopped { .. }) | Error::Cancelled { .. }, Some(signal)) => {
            let name = if signal == SIGINT {
                "SIGINT"
            } else {
                "SIGTERM"
            };
            eprintln!("interrupted by {name}: {error}");
            if out.json {
                Output::json_line(&json!({
                    "error": format!("interrupted by {name}"),
                    "errcode": null,
                    "exit": 128 + signal,
                }));
            }
            Failure::Reported(u8::try_from(128 + signal).unwrap_or(1))
        }
        (Error::Save(SaveError::TargetExists { path }), _) => Failure::usage(format!(
            "{} exists; pass --force to replace it",
            path.display()
        )),
        (Error::Save(SaveError::Busy { part }), _) => Failure::other(format!(
            "another run is downloading this media (it holds {}); wait for it to end",
            part.display()
        )),
        (
            Error::Save(SaveError::Stopped {
                kept, total, part, ..
            }),
            _,
        ) => {
            let of = total.map_or(String::new(), |t| format!(" of {}", output::size(t)));
            out.note(&format!(
                "partial download kept in {} ({}{of}); the same command continues it",
                part.display(),
                output::size(*kept)
            ));
            match error {
                Error::Save(SaveError::Stopped { cause, .. }) => Failure::Wecom(*cause),
                other => Failure::Wecom(other),
            }
        }
        _ => Failure::Wecom(error),
    }
}

/// `{"path","filename","content_type","bytes"}` (the contract of issue 6).
fn saved_json(saved: &Saved) -> Value {
    json!({
        "path": saved.path.display().to_string(),
        "filename": saved.info.filename,
        "content_type": saved.info.content_type,
        "bytes": saved.bytes,
    })
}

fn saved_text(saved: &Saved) -> String {
    format!(
        "saved {} ({}, {})",
        output::shown(&saved.path.display().to_string()),
        output::shown(&saved.info.content_type),
        output::size(saved.bytes)
    )
}

/// `--output -`: the media on standard output, buffered; nothing else goes there.
fn to_stdout(
    session: &Session,
    out: Output,
    media_id: &MediaId,
    endpoint: MediaEndpoint,
    args: &GetArgs,
) -> Result<(), Failure> {
    // Checked before anything is opened or sent (a 70,000-character id used to panic).
    media_id.validate().map_err(|e| Failure::Wecom(e.into()))?;
    let bar = TransferBar::shared(format!("get {}", output::shown(media_id.as_str())), out);
    let mut stdout = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let options = DownloadOptions {
        hd_voice: endpoint == MediaEndpoint::HdVoice,
        ..DownloadOptions::default()
    };
    let transfer = Transfer {
        deadline: args.deadline.map(Duration::from_secs),
        ..Transfer::default().with_progress(bar.observer())
    };
    let client = session.client();
    let result = client.download(media_id, &mut stdout, options, transfer);
    let flushed = stdout.flush();
    let done = result.inspect_err(|_| bar.abandon())?;
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
