//! `upload <image|voice|video|file> <PATH>... [--filename NAME] [--jobs N]`.
//!
//! One PATH: one result (one JSON object with `--json`), a failure ends the command. Several:
//! at most `--jobs` uploads at once, on threads that share one client (clones share the
//! token and the connection pool, so there is one `gettoken` between them); one result per
//! file, printed in the order given (with `--json`, JSON Lines: each upload object with
//! `"path"` added, a failed file as `{"path", "error", "errcode", "exit"}`); the exit status is
//! 0 when every file was uploaded, else the highest status of the failed ones.
//!
//! `-` reads standard input (the only PATH, with `--filename`). Standard input is read into
//! memory first: WeCom's largest upload is 20 MB, so memory is bounded (at most the type's
//! limit plus one byte is kept; a longer input is counted, not kept, and refused), and an
//! in-memory body can be sent again when WeCom asks for a retry or the token must be
//! refreshed, which a one-shot stream cannot.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use bytes::Bytes;
use indicatif::MultiProgress;
use serde_json::{Value, json};
use wecom_material_core::{Limits, MediaType, Uploaded};
use wecom_material_ureq::{Client, Transfer, Upload};

use crate::cli::UploadArgs;
use crate::failure::Failure;
use crate::output::{self, Output};
use crate::progress::TransferBar;
use crate::session::Session;

/// The PATH that means standard input.
const STDIN: &str = "-";

/// Uploads temporary media and prints the media ids.
pub(crate) fn run(session: &Session, out: Output, args: &UploadArgs) -> Result<(), Failure> {
    let media_type = MediaType::from(args.media_type);
    check_args(args)?;
    if let [path] = args.paths.as_slice() {
        let (uploaded, size) = upload_one(
            session.client(),
            out,
            media_type,
            path,
            args.filename.as_deref(),
            None,
        )?;
        out.emit(uploaded_json(&uploaded), || {
            format!(
                "uploaded {} ({}) as {media_type}\nmedia_id   {}\ncreated_at {}\nexpires_at {}",
                path.display(),
                output::size(size),
                output::shown(uploaded.media_id.as_str()),
                output::utc(uploaded.created_at),
                output::utc(uploaded.expires_at),
            )
        });
        return Ok(());
    }
    upload_many(session.client(), out, media_type, &args.paths, args.jobs)
}

/// The checks on the arguments that clap cannot express (exit 2, nothing sent).
fn check_args(args: &UploadArgs) -> Result<(), Failure> {
    let stdin = args.paths.iter().any(|p| is_stdin(p));
    if stdin && args.paths.len() > 1 {
        return Err(Failure::usage("`-` (standard input) must be the only PATH"));
    }
    if stdin && args.filename.is_none() {
        return Err(Failure::usage(
            "reading standard input (`-`) needs --filename NAME (the name users see)",
        ));
    }
    if args.paths.len() > 1 && args.filename.is_some() {
        return Err(Failure::usage(
            "--filename names one file: give one PATH with it",
        ));
    }
    Ok(())
}

fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == STDIN
}

/// `{"type","media_id","created_at","expires_at"}` (the contract of issue 6).
fn uploaded_json(uploaded: &Uploaded) -> Value {
    json!({
        "type": uploaded.media_type.as_str(),
        "media_id": uploaded.media_id.as_str(),
        "created_at": uploaded.created_at,
        "expires_at": uploaded.expires_at,
    })
}

/// Several files, at most `jobs` at once, results printed in the order given.
fn upload_many(
    client: &Client,
    out: Output,
    media_type: MediaType,
    paths: &[PathBuf],
    jobs: u16,
) -> Result<(), Failure> {
    let group = MultiProgress::new();
    let next = AtomicUsize::new(0);
    let (results, received) = mpsc::channel();
    let mut worst = 0u8;
    std::thread::scope(|scope| {
        for _ in 0..usize::from(jobs).min(paths.len()) {
            let client = client.clone();
            let results = results.clone();
            let (next, group) = (&next, &group);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = paths.get(i) else { break };
                    let result = upload_one(&client, out, media_type, path, None, Some(group));
                    if results.send((i, result)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(results);
        // Results arrive in any order; each is printed once those before it are.
        let mut pending = BTreeMap::new();
        let mut printed = 0;
        for (i, result) in received {
            pending.insert(i, result);
            while let Some(result) = pending.remove(&printed) {
                let path = &paths[printed];
                if let Err(failure) = &result {
                    worst = worst.max(failure.exit_code());
                }
                group.suspend(|| print_item(out, path, media_type, result));
                printed += 1;
            }
        }
    });
    if worst == 0 {
        Ok(())
    } else {
        Err(Failure::Reported(worst))
    }
}

/// One line (JSON Lines with `--json`) for one file of several.
fn print_item(
    out: Output,
    path: &Path,
    media_type: MediaType,
    result: Result<(Uploaded, u64), Failure>,
) {
    let shown = path.display().to_string();
    match result {
        Ok((uploaded, size)) => {
            let mut object = uploaded_json(&uploaded);
            object["path"] = json!(shown);
            out.emit(object, || {
                format!(
                    "uploaded {shown} ({}) as {media_type}: media_id {} expires_at {}",
                    output::size(size),
                    output::shown(uploaded.media_id.as_str()),
                    output::utc(uploaded.expires_at)
                )
            });
        }
        Err(failure) => {
            eprintln!("error: {shown}: {failure}");
            if out.json {
                Output::json_line(&json!({
                    "path": shown,
                    "error": failure.to_string(),
                    "errcode": failure.errcode(),
                    "exit": failure.exit_code(),
                }));
            }
        }
    }
}

/// Uploads one file (or standard input) with a progress bar; returns the result and the size.
/// The one place the CLI calls the client's uploads.
fn upload_one(
    client: &Client,
    out: Output,
    media_type: MediaType,
    path: &Path,
    filename: Option<&str>,
    group: Option<&MultiProgress>,
) -> Result<(Uploaded, u64), Failure> {
    let (upload, size) = if is_stdin(path) {
        let filename = filename.ok_or_else(|| Failure::usage("stdin needs --filename"))?;
        // In memory, so that a retry or a token refresh can resend it.
        let bytes = read_stdin(media_type)?;
        let size = bytes.len() as u64;
        (Upload::bytes(filename, bytes), size)
    } else {
        let size = super::check_input_file(path)?;
        (super::file_upload(path, filename), size)
    };
    let mut bar = TransferBar::new(format!("upload {}", path.display()), out);
    if let Some(group) = group {
        bar = bar.in_group(group);
    }
    let report = |p| bar.report(p);
    let result = client.upload(
        media_type,
        upload,
        Transfer {
            progress: Some(&report),
            cancel: None,
        },
    );
    match result {
        Ok(uploaded) => {
            bar.finish(size, 0);
            Ok((uploaded, size))
        }
        Err(e) => {
            bar.abandon();
            Err(e.into())
        }
    }
}

/// Standard input, whole, when it fits the type's limit. At most the limit + 1 byte is read:
/// one byte more is a clear error at once (`< /dev/zero` used to run on past the limit),
/// a failed read is an error, and an empty input is an error, never an empty upload.
fn read_stdin(media_type: MediaType) -> Result<Bytes, Failure> {
    read_limited(std::io::stdin().lock(), media_type)
}

fn read_limited(input: impl Read, media_type: MediaType) -> Result<Bytes, Failure> {
    let max = Limits::default().max_for(media_type);
    let mut kept = Vec::new();
    let unreadable = |e: std::io::Error| Failure::usage(format!("cannot read standard input: {e}"));
    input
        .take(max.saturating_add(1))
        .read_to_end(&mut kept)
        .map_err(unreadable)?;
    let size = kept.len() as u64;
    if size > max {
        return Err(Failure::usage(format!(
            "standard input is over the {} limit for type {media_type} (WeCom's MB is 1 MiB): \
             reading stopped after {size} bytes; files up to 200 MB go through \
             `wecom-material upload-by-url` (types video and file)",
            crate::failure::wecom_mb(max)
        )));
    }
    if kept.is_empty() {
        return Err(Failure::usage(
            "standard input is empty: nothing to upload (was the file or pipe given?)",
        ));
    }
    Ok(Bytes::from(kept))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that never ends (`/dev/zero`) and counts what was read from it.
    struct Endless(u64);

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            buf.fill(0);
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
    }

    /// Issue 19: `upload file - < /dev/zero` ran on past the 20 MB limit; a failed or empty
    /// read must be an error, never an empty upload.
    #[test]
    fn stdin_is_read_up_to_the_limit_plus_one_byte_then_refused() {
        let mut endless = Endless(0);
        let failure = read_limited(&mut endless, MediaType::Voice).unwrap_err();
        let max = Limits::default().max_for(MediaType::Voice);
        assert!(endless.0 <= max + 1 + 64 * 1024, "read {} bytes", endless.0);
        assert_eq!(failure.exit_code(), crate::failure::EXIT_USAGE);
        assert!(
            failure
                .to_string()
                .contains("over the 2 MB limit for type voice"),
            "{failure}"
        );

        let failure = read_limited(std::io::empty(), MediaType::File).unwrap_err();
        assert!(
            failure.to_string().contains("standard input is empty"),
            "{failure}"
        );

        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("EIO"))
            }
        }
        let failure = read_limited(Broken, MediaType::File).unwrap_err();
        assert!(
            failure
                .to_string()
                .contains("cannot read standard input: EIO"),
            "{failure}"
        );

        let ok = read_limited(&b"0123456789"[..], MediaType::File).unwrap();
        assert_eq!(&ok[..], b"0123456789");
    }
}
