//! Why a command failed, its exit status, the one line it prints on stderr and, with
//! `--json`, the one object it prints on stdout: `{"error", "errcode", "exit"}`.

use std::fmt;

use serde_json::{Map, Value, json};
use wecom_material_core::{Error, Invalid, MediaType, error::with_causes};

use crate::output;

/// Exit status of an API or transport failure.
pub(crate) const EXIT_FAILURE: u8 = 1;
/// Exit status of a usage or validation error (nothing was sent).
pub(crate) const EXIT_USAGE: u8 = 2;

/// A failed command.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The command line or the local input is wrong; nothing was sent (exit 2).
    Usage(String),
    /// A library error: `Invalid` exits 2, everything else 1.
    Wecom(Error),
    /// Something else went wrong after work had started (exit 1).
    Other(String),
    /// An async job that failed or was still running when `--wait` gave up (exit 1). Its
    /// state (the `job --json` fields) goes into the JSON failure object.
    Job {
        /// The one-line message.
        message: String,
        /// The job's errcode (none when it ran out of time).
        errcode: Option<i64>,
        /// The job's state as `job --json` prints it.
        state: Value,
    },
    /// Each item of a command over several items was reported on its own line already; only
    /// the exit status (the highest of the items) is left.
    Reported(u8),
}

impl Failure {
    /// A usage error.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Failure::Usage(message.into())
    }

    /// A failure that is neither usage nor from the library.
    pub(crate) fn other(message: impl Into<String>) -> Self {
        Failure::Other(message.into())
    }

    /// The exit status.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => EXIT_USAGE,
            Failure::Wecom(e) if e.is_invalid() => EXIT_USAGE,
            Failure::Wecom(_) | Failure::Other(_) | Failure::Job { .. } => EXIT_FAILURE,
            Failure::Reported(code) => *code,
        }
    }

    /// WeCom's errcode, when the failure is an error answer (or a failed job).
    pub(crate) fn errcode(&self) -> Option<i64> {
        match self {
            Failure::Wecom(e) => e.errcode().map(|c| c.code()),
            Failure::Job { errcode, .. } => *errcode,
            _ => None,
        }
    }

    /// Whether the failure was printed already (per item) and needs no further line.
    pub(crate) fn is_reported(&self) -> bool {
        matches!(self, Failure::Reported(_))
    }

    /// The `--json` failure object: `{"error", "errcode", "exit"}` (a failed job adds its
    /// state's fields).
    pub(crate) fn to_json(&self) -> Value {
        let mut object = match self {
            Failure::Job { state, .. } => state.as_object().cloned().unwrap_or_default(),
            _ => Map::new(),
        };
        object.insert("error".into(), json!(self.to_string()));
        object.insert("errcode".into(), json!(self.errcode()));
        object.insert("exit".into(), json!(self.exit_code()));
        Value::Object(object)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Wecom(e)
    }
}

/// The WeCom message of an error answer, if the error is one.
fn errmsg(e: &Error) -> Option<&str> {
    match e {
        Error::Api(api) | Error::RateLimited(api) => Some(&api.errmsg),
        Error::NotReplayable(inner) => errmsg(inner),
        _ => None,
    }
}

impl fmt::Display for Failure {
    /// One line: `errcode N (meaning): errmsg` when WeCom answered with a code.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Failure::Usage(m) | Failure::Other(m) | Failure::Job { message: m, .. } => m.clone(),
            Failure::Reported(code) => format!("failed (exit {code})"),
            Failure::Wecom(Error::Invalid(Invalid::TooLarge {
                media_type,
                size,
                max,
            })) => too_large(*media_type, *size, *max),
            // The CLI lowercases --md5 first: the case is never what is wrong.
            Failure::Wecom(Error::Invalid(Invalid::BadMd5 { len })) => {
                format!("--md5 must be 32 hex digits, in either case (got {len} characters)")
            }
            Failure::Wecom(e) => match e.errcode() {
                Some(code) => {
                    let mut line = format!("WeCom errcode {} ({})", code.code(), code.meaning());
                    if matches!(e, Error::RateLimited(_)) {
                        line.push_str(", rate limited, not retried");
                    }
                    if let Some(msg) = errmsg(e).filter(|m| !m.is_empty()) {
                        line.push_str(": ");
                        line.push_str(msg);
                    }
                    line
                }
                None => with_causes(e),
            },
        };
        f.write_str(&one_line(&text))
    }
}

/// WeCom's "MB" (which is 1 MiB): `20 MB` for a whole number of them, else the bar's units.
pub(crate) fn wecom_mb(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes.is_multiple_of(MIB) {
        format!("{} MB", bytes / MIB)
    } else {
        output::size(bytes)
    }
}

/// A too-big upload: the limit in WeCom's MB, and where bigger files go.
pub(crate) fn too_large(media_type: Option<MediaType>, size: u64, max: u64) -> String {
    let what = media_type.map_or("the image", MediaType::as_str);
    let limit = match media_type {
        Some(t) => format!("the {} limit for type {t}", wecom_mb(max)),
        None => format!("the {} limit of upload-image", wecom_mb(max)),
    };
    format!(
        "{what} is {} ({size} bytes), over {limit} (WeCom's MB is 1 MiB); files up to 200 MB \
         go through `wecom-material upload-by-url` or `upload --via s3://BUCKET/PREFIX/` \
         (types video and file)",
        output::size(size)
    )
}

/// Control characters (newlines included) become spaces: an error is one line; Unicode
/// format characters (bidi overrides, zero-width characters) that a server put in an errmsg
/// are written as `\u{…}` ([`output::shown`]).
pub(crate) fn one_line(text: &str) -> String {
    let spaced: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    output::shown(&spaced).into_owned()
}
