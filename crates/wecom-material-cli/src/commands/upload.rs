//! `upload <image|voice|video|file> <PATH>... [--filename NAME] [--jobs N]`.
//!
//! One PATH: one result (one JSON object with `--json`), a failure ends the command. Several:
//! at most `--jobs` uploads at once, on threads that share one client (clones share the
//! token and the connection pool, so there is one `gettoken` between them); one result per
//! file, printed in the order given (with `--json`, JSON Lines: each upload object with
//! `"path"` added, a failed file as `{"path", "error", "errcode", "exit"}`); the exit status is
//! 0 when every file was uploaded, else the highest status of the failed ones.
//!
//! With a relay (`--via s3://BUCKET/PREFIX/` or `WECOM_RELAY`), a video or file over the
//! direct limit (up to 200 MB) goes through S3-compatible object storage instead of failing,
//! with one notice line: PUT (a progress bar), WeCom's async upload by URL (a spinner while
//! the job runs), DELETE; its result is the same, plus `jobid` (and `object` when the object
//! is still in the bucket: `--keep-object`, or a failed clean-up, which is also warned about).
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
use std::sync::{Arc, Once};
use std::time::Duration;

use bytes::Bytes;
use indicatif::MultiProgress;
use serde_json::{Value, json};
use wecom_material_core::relay::{ObjectFate, RelayedUpload};
use wecom_material_core::{Limits, MediaType, Uploaded};
use wecom_material_ureq::{Client, Transfer, Upload};

use crate::cli::UploadArgs;
use crate::failure::Failure;
use crate::output::{self, Output};
use crate::progress::{Spinner, TransferBar};
use crate::relay::Relay;
use crate::session::Session;

/// The PATH that means standard input.
const STDIN: &str = "-";

/// Uploads temporary media and prints the media ids.
pub(crate) fn run(session: &Session, out: Output, args: &UploadArgs) -> Result<(), Failure> {
    let media_type = MediaType::from(args.media_type);
    check_args(args)?;
    let relay = crate::relay::from_args(args)?;
    let relay = relay.as_ref();
    let deadline = args.deadline.map(Duration::from_secs);
    if let [path] = args.paths.as_slice() {
        let filename = args.filename.as_deref();
        let (uploaded, size, relayed) = upload_one(
            session.client(),
            out,
            media_type,
            path,
            filename,
            None,
            (relay, deadline),
        )?;
        out.emit(uploaded_json(&uploaded, relayed.as_ref()), || {
            let mut text = format!(
                "uploaded {} ({}) as {media_type}\nmedia_id   {}\ncreated_at {}\nexpires_at {}",
                path.display(),
                output::size(size),
                output::shown(uploaded.media_id.as_str()),
                output::utc(uploaded.created_at),
                output::utc(uploaded.expires_at),
            );
            if let Some(relayed) = &relayed {
                text.push_str(&format!("\njobid      {}", relayed.job_id));
                if relayed.fate != ObjectFate::Deleted {
                    text.push_str(&format!("\nobject     {}", relayed.object));
                }
            }
            text
        });
        return Ok(());
    }
    upload_many(
        session.client(),
        out,
        media_type,
        &args.paths,
        args.jobs,
        relay,
        deadline,
    )
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

/// `{"type","media_id","created_at","expires_at"}` (the contract of issue 6); a relayed
/// upload adds `"jobid"`, and `"object"` when the object is still in the bucket.
fn uploaded_json(uploaded: &Uploaded, relayed: Option<&RelayedUpload>) -> Value {
    let mut object = json!({
        "type": uploaded.media_type.as_str(),
        "media_id": uploaded.media_id.as_str(),
        "created_at": uploaded.created_at,
        "expires_at": uploaded.expires_at,
    });
    if let Some(relayed) = relayed {
        object["jobid"] = json!(relayed.job_id.as_str());
        if relayed.fate != ObjectFate::Deleted {
            object["object"] = json!(relayed.object);
        }
    }
    object
}

/// Several files, at most `jobs` at once, results printed in the order given.
fn upload_many(
    client: &Client,
    out: Output,
    media_type: MediaType,
    paths: &[PathBuf],
    jobs: u16,
    relay: Option<&Relay>,
    deadline: Option<Duration>,
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
                    let (group, each) = (Some(group), (relay, deadline));
                    let result = upload_one(&client, out, media_type, path, None, group, each);
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
    result: Result<(Uploaded, u64, Option<RelayedUpload>), Failure>,
) {
    let shown = path.display().to_string();
    match result {
        Ok((uploaded, size, relayed)) => {
            let mut object = uploaded_json(&uploaded, relayed.as_ref());
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

/// What one upload gives: the result, the size, and the relay's outcome when it went through.
type UploadedOne = (Uploaded, u64, Option<RelayedUpload>);

/// Uploads one file (or standard input) with a progress bar; returns the result and the size.
/// The one place the CLI calls the client's uploads. A video or file over the direct limit
/// goes through `relay` when there is one.
/// `deadline` gives each upload at most that long.
fn upload_one(
    client: &Client,
    out: Output,
    media_type: MediaType,
    path: &Path,
    filename: Option<&str>,
    group: Option<&MultiProgress>,
    (relay, deadline): (Option<&Relay>, Option<Duration>),
) -> Result<UploadedOne, Failure> {
    let relayable = matches!(media_type, MediaType::Video | MediaType::File);
    if let Some(relay) = relay.filter(|_| relayable && !is_stdin(path)) {
        let size = super::check_input_file(path)?;
        let limit = Limits::default().max_for(media_type);
        if size > limit {
            out.note(&format!(
                "{} is {}, over the {} direct limit for {media_type}: relaying through {}",
                path.display(),
                output::size(size),
                crate::failure::wecom_mb(limit),
                relay.url
            ));
            static INTERRUPTS: std::sync::Once = std::sync::Once::new();
            INTERRUPTS.call_once(|| crate::relay::cancel_on_interrupt(relay.cancel.clone()));
            let relay = (relay, deadline);
            return relay_one(client, out, media_type, path, filename, group, relay);
        }
    }
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
    let bar = Arc::new(bar);
    let transfer = Transfer {
        deadline,
        ..Transfer::default().with_progress(bar.observer())
    };
    let result = client.upload(media_type, upload, transfer);
    match result {
        Ok(uploaded) => {
            bar.finish(size, 0);
            Ok((uploaded, size, None))
        }
        Err(e) => {
            bar.abandon();
            Err(e.into())
        }
    }
}

/// One file through the object-storage relay: a bar for the PUT, a spinner while WeCom's
/// job fetches it.
fn relay_one(
    client: &Client,
    out: Output,
    media_type: MediaType,
    path: &Path,
    filename: Option<&str>,
    group: Option<&MultiProgress>,
    (relay, deadline): (&Relay, Option<Duration>),
) -> Result<UploadedOne, Failure> {
    let mut bar = TransferBar::new(format!("relay {}", path.display()), out);
    if let Some(group) = group {
        bar = bar.in_group(group);
    }
    let spinner = Spinner::new(format!("WeCom is fetching {}", path.display()), out, group);
    let (bar, spinner) = (Arc::new(bar), Arc::new(spinner));
    let (put_bar, job_spinner, stored) = (Arc::clone(&bar), Arc::clone(&spinner), Once::new());
    let report = move |p: wecom_material_core::Progress| {
        put_bar.report(p);
        if p.total == Some(p.done) {
            // The PUT's bytes are all out: its summary line, then the job's spinner.
            stored.call_once(|| put_bar.finish(p.done, 0));
            job_spinner.start();
        }
    };
    let transfer = Transfer {
        deadline,
        ..Transfer::default()
            .with_progress(report)
            .cancelled_by(&relay.cancel)
    };
    let (bucket, options) = (&relay.bucket, relay.options.clone());
    let result = client.upload_via_bucket(media_type, path, filename, bucket, options, transfer);
    spinner.finish();
    bar.abandon();
    let relayed = result?;
    if let ObjectFate::NotDeleted(why) = &relayed.fate {
        eprintln!("warning: {} is still in the bucket: {why}", relayed.object);
    }
    let uploaded = Uploaded {
        media_type,
        media_id: relayed.media_id.clone(),
        created_at: relayed.created_at,
        expires_at: relayed.expires_at,
    };
    Ok((uploaded, relayed.len, Some(relayed)))
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

        // The limit is inclusive: exactly the limit is read, one byte more is refused.
        let exact = vec![7u8; usize::try_from(max).unwrap()];
        assert_eq!(read_limited(&exact[..], MediaType::Voice).unwrap(), exact);
        let over = [&exact[..], &[7u8]].concat();
        let failure = read_limited(&over[..], MediaType::Voice).unwrap_err();
        assert!(
            failure
                .to_string()
                .contains(&format!("reading stopped after {} bytes", max + 1)),
            "{failure}"
        );

        let ok = read_limited(&b"0123456789"[..], MediaType::File).unwrap();
        assert_eq!(&ok[..], b"0123456789");
    }
}
