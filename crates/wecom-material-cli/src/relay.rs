//! `upload --via s3://BUCKET/PREFIX/` (or `WECOM_RELAY`): the object-storage relay a file over
//! WeCom's direct limit goes through, configured from the standard AWS variables.

use std::time::Duration;

use wecom_material_core::relay::{AddressingStyle, BucketRelay, RelayOptions, S3Credentials};
use wecom_material_core::{CancelFlag, PollPolicy};

use crate::cli::UploadArgs;
use crate::failure::Failure;
use crate::logger;

/// The AWS variables read, in order of preference where there are two.
const ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
const SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
const SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
const REGION: [&str; 2] = ["AWS_REGION", "AWS_DEFAULT_REGION"];
const ENDPOINT: [&str; 2] = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"];
/// How a relayed file's job is polled: someone is waiting at the terminal, and the job
/// cannot be seen done before the next poll (0.25 s, then every 0.5 s: a finished job is
/// seen within half a second, at most two job-result queries a second while it runs; the
/// client's default starts at 1 s and grows to 15 s; a configured callback ends the wait at
/// once either way).
const INTERACTIVE_POLLS: PollPolicy = PollPolicy {
    first_interval: Duration::from_millis(250),
    max_interval: Duration::from_millis(500),
    max_consecutive_errors: 3,
};
/// The region when no variable names one (AWS's own default).
const DEFAULT_REGION: &str = "us-east-1";

/// A configured relay and how it runs.
pub(crate) struct Relay {
    /// Where the objects go.
    pub(crate) bucket: BucketRelay,
    /// Keep the object or not.
    pub(crate) options: RelayOptions,
    /// `s3://BUCKET/PREFIX/` as given (no secret in it).
    pub(crate) url: String,
    /// Set by Ctrl-C once a relayed upload started (see [`cancel_on_interrupt`]).
    pub(crate) cancel: CancelFlag,
}

/// The relay of `--via` / `WECOM_RELAY`, if one is given; a missing credential or a bad URL
/// is a usage error (exit 2, nothing sent). The secret key and session token are masked in
/// every log line from here on.
pub(crate) fn from_args(args: &UploadArgs) -> Result<Option<Relay>, Failure> {
    let Some(url) = args.via.as_deref().filter(|u| !u.is_empty()) else {
        if args.keep_object || args.s3_path_style {
            return Err(Failure::usage(
                "--keep-object and --s3-path-style need a relay: --via s3://BUCKET/PREFIX/",
            ));
        }
        return Ok(None);
    };
    let missing = |name: &str| {
        Failure::usage(format!(
            "relaying through {url} needs {name} (and {ACCESS_KEY_ID} / {SECRET_ACCESS_KEY})"
        ))
    };
    let key_id = var(ACCESS_KEY_ID).ok_or_else(|| missing(ACCESS_KEY_ID))?;
    let secret = var(SECRET_ACCESS_KEY).ok_or_else(|| missing(SECRET_ACCESS_KEY))?;
    logger::mask(&secret);
    let mut credentials = S3Credentials::new(key_id, secret);
    if let Some(token) = var(SESSION_TOKEN) {
        logger::mask(&token);
        credentials = credentials.with_session_token(token);
    }
    let region = REGION.iter().find_map(|name| var(name));
    let region = region.unwrap_or_else(|| DEFAULT_REGION.to_owned());
    let endpoint = ENDPOINT.iter().find_map(|name| var(name));
    let style = match args.s3_path_style {
        true => AddressingStyle::Path,
        false => AddressingStyle::Auto,
    };
    let bucket = BucketRelay::from_s3_url(url, endpoint.as_deref(), &region, style, credentials)
        .map_err(|e| Failure::usage(e.to_string()))?;
    log::debug!("relay {bucket:?}");
    let options = RelayOptions::default()
        .keep_object(args.keep_object)
        .poll_policy(INTERACTIVE_POLLS);
    Ok(Some(Relay {
        bucket,
        options,
        url: url.to_owned(),
        cancel: CancelFlag::new(),
    }))
}

/// Makes the first Ctrl-C (SIGINT) set `flag` (the relay then stops and still deletes its
/// object) instead of killing the process; a second one exits at once (status 130). For the
/// rest of the run; returns once the handler is in place.
pub(crate) fn cancel_on_interrupt(flag: CancelFlag) {
    // The same handling as a save's: the first SIGINT/SIGTERM cancels, a second one exits.
    let notice = "interrupted: stopping, then deleting the object (Ctrl-C again to quit now)";
    drop(crate::stop_signal::Stop::install_with(flag, Some(notice)));
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}
