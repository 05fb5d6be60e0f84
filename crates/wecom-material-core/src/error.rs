//! The one error type of every operation, and its parts.
//!
//! An [`Error`] says which of four things happened: nothing was built or sent
//! ([`Error::Invalid`]), WeCom answered with an error code ([`Error::Api`],
//! [`Error::RateLimited`]), the answer could not be understood ([`Error::Decode`]), or the
//! bytes did not make it ([`Error::Transport`], [`Error::NotReplayable`]). No variant ever
//! holds a secret: tokens appear in URIs only, and errors never carry URIs unredacted.

use std::fmt;

use crate::errcode::{Disposition, ErrCode};
use crate::media_type::MediaType;

/// Any failure of a WeCom material call.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The request was refused before anything was sent.
    Invalid(Invalid),
    /// WeCom answered with a non-zero `errcode`.
    Api(ApiError),
    /// WeCom answered 45009: a call-frequency limit. Never retried automatically.
    RateLimited(ApiError),
    /// The response could not be understood.
    Decode(DecodeError),
    /// The request or response did not make it across the network.
    Transport(TransportError),
    /// A retry was due, but the upload's payload cannot be replayed, so the request was not
    /// resent. Holds the failure that called for the retry.
    NotReplayable(Box<Error>),
    /// A transfer made too little progress and was given up (see [`Stall`]).
    Stalled(Stall),
    /// The operation's overall deadline ([`Transfer::deadline`](crate::Transfer::deadline))
    /// passed before it ended.
    DeadlineExceeded {
        /// Which operation it was.
        operation: OperationKind,
        /// The deadline that was given, counted from the operation's first poll.
        deadline: std::time::Duration,
        /// How far it got: see [`Error::Cancelled`].
        bytes: u64,
        /// The payload's size, for an upload; `None` otherwise.
        total: Option<u64>,
    },
    /// The caller cancelled the operation.
    Cancelled {
        /// Which operation it was.
        operation: OperationKind,
        /// How far it got: for an upload, the payload bytes sent in the last attempt; for a
        /// download, the bytes that reached the sink in this call (flushed); 0 for a JSON
        /// call or a job wait.
        bytes: u64,
        /// The payload's size, for an upload; `None` otherwise.
        total: Option<u64>,
    },
    /// The object storage of a relayed upload refused a request or answered what could not
    /// be understood (the `relay` module, feature `s3-relay`).
    ObjectStorage(ObjectStorageError),
    /// An async upload job was still processing when the wait for it ended.
    JobUnfinished {
        /// The job.
        job_id: crate::media_type::JobId,
    },
    /// A local file or writer failed (transports only; the core does no I/O).
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Saving to a file was refused or stopped (see [`crate::save`]).
    Save(crate::save::SaveError),
}

impl Error {
    /// [`Error::Cancelled`] for `operation`, which got as far as `progress`.
    pub(crate) fn cancelled(operation: OperationKind, progress: crate::Progress) -> Self {
        Error::Cancelled {
            operation,
            bytes: progress.done,
            total: progress.total,
        }
    }

    /// The WeCom error code, if WeCom answered with one.
    pub fn errcode(&self) -> Option<ErrCode> {
        match self {
            Error::Api(e) | Error::RateLimited(e) => Some(e.code),
            Error::NotReplayable(inner) => inner.errcode(),
            Error::Save(crate::save::SaveError::Stopped { cause, .. }) => cause.errcode(),
            _ => None,
        }
    }

    /// Whether the failure is the caller's input (exit status 2 in the CLI).
    pub fn is_invalid(&self) -> bool {
        matches!(self, Error::Invalid(_))
    }

    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// The same error with every occurrence of each of `secrets` (the client's corp secret,
    /// its current and previous access tokens) masked as `***` in every text it holds —
    /// WeCom's `errmsg`, a decode error's reason and body excerpt, a transport message, an
    /// I/O context and message — and the values of secret-looking keys (`access_token=…`,
    /// `"corpsecret": "…"`) masked too (see [`crate::secret::mask_exact`] and
    /// [`crate::secret::mask_keyed`]). A server that echoes the credentials it was sent, in any
    /// form, does not get them printed.
    ///
    /// ```
    /// use wecom_material_core::error::ApiError;
    /// use wecom_material_core::{ErrCode, Error};
    /// let e = Error::Api(ApiError {
    ///     code: ErrCode::InvalidCredential,
    ///     errmsg: "invalid credential SECRET-abc123 for corp".into(),
    /// });
    /// assert_eq!(
    ///     e.redact(&["SECRET-abc123"]).to_string(),
    ///     "WeCom error 40001 (invalid credential (secret)): invalid credential *** for corp"
    /// );
    /// ```
    pub fn redact(self, secrets: &[&str]) -> Error {
        let clean =
            |text: &str| crate::secret::mask_keyed(&crate::secret::mask_exact(text, secrets));
        match self {
            Error::Api(e) => Error::Api(e.redact(secrets)),
            Error::RateLimited(e) => Error::RateLimited(e.redact(secrets)),
            Error::Decode(e) => Error::Decode(DecodeError {
                reason: clean(&e.reason),
                excerpt: clean(&e.excerpt),
                ..e
            }),
            Error::Transport(e) => Error::Transport(TransportError {
                message: clean(&e.message),
                ..e
            }),
            Error::NotReplayable(inner) => Error::NotReplayable(Box::new(inner.redact(secrets))),
            Error::Stalled(stall) => Error::Stalled(Stall {
                last: stall.last.map(|e| Box::new(e.redact(secrets))),
                ..stall
            }),
            Error::Io { context, source } => {
                let message = source.to_string();
                let masked = clean(&message);
                let source = if masked == message {
                    source
                } else {
                    std::io::Error::new(source.kind(), masked)
                };
                Error::Io {
                    context: clean(&context),
                    source,
                }
            }
            Error::Save(crate::save::SaveError::Stopped {
                kept,
                total,
                part,
                cause,
            }) => Error::Save(crate::save::SaveError::Stopped {
                kept,
                total,
                part,
                cause: Box::new(cause.redact(secrets)),
            }),
            // Object storage's answers, a job id and a save's paths hold none of the client's
            // secrets.
            other @ (Error::Invalid(_)
            | Error::Cancelled { .. }
            | Error::DeadlineExceeded { .. }
            | Error::ObjectStorage(_)
            | Error::JobUnfinished { .. }
            | Error::Save(_)) => other,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid(e) => write!(f, "invalid request, nothing sent: {e}"),
            Error::Api(e) => write!(f, "WeCom error {e}"),
            Error::RateLimited(e) => write!(f, "rate limited by WeCom, not retried: {e}"),
            Error::Decode(e) => write!(f, "{e}"),
            Error::Transport(e) => write!(f, "{e}"),
            // The failure that called for the retry is the `source()`, not repeated here.
            Error::NotReplayable(_) => {
                f.write_str("a retry was due but not sent: the upload's payload cannot be replayed")
            }
            Error::Stalled(stall) => write!(f, "{stall}"),
            Error::DeadlineExceeded {
                operation,
                deadline,
                bytes,
                total,
            } => {
                write!(f, "{operation}'s deadline of {} passed", seconds(*deadline))?;
                how_far(f, *operation, *bytes, *total)
            }
            Error::Cancelled {
                operation,
                bytes,
                total,
            } => {
                write!(f, "{operation} cancelled by the caller")?;
                how_far(f, *operation, *bytes, *total)
            }
            Error::ObjectStorage(e) => write!(f, "{e}"),
            Error::JobUnfinished { job_id } => {
                write!(
                    f,
                    "upload job {job_id} was still processing at the deadline"
                )
            }
            // The I/O error itself is the `source()`.
            Error::Io { context, .. } => f.write_str(context),
            Error::Save(e) => write!(f, "{e}"),
        }
    }
}

/// Which operation a cancel or a deadline stopped (see [`Error::Cancelled`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OperationKind {
    /// An upload (`media/upload`, `media/uploadimg`).
    Upload,
    /// A download or a save.
    Download,
    /// A JSON call (`upload_by_url`, a job's result, a token).
    JsonCall,
    /// A wait for an async upload job.
    JobWait,
    /// An upload relayed through object storage (PUT, `upload_by_url`, the job wait).
    RelayedUpload,
}

impl fmt::Display for OperationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OperationKind::Upload => "upload",
            OperationKind::Download => "download",
            OperationKind::JsonCall => "JSON call",
            OperationKind::JobWait => "job wait",
            OperationKind::RelayedUpload => "relayed upload",
        })
    }
}

/// The end of a cancel's or deadline's text: how far the operation got.
fn how_far(
    f: &mut fmt::Formatter<'_>,
    operation: OperationKind,
    bytes: u64,
    total: Option<u64>,
) -> fmt::Result {
    match (operation, total) {
        (OperationKind::Download, _) if bytes == 0 => f.write_str("; nothing had reached the sink"),
        (OperationKind::Download, _) => write!(f, "; {bytes} bytes had reached the sink"),
        (_, Some(total)) => write!(f, " after {bytes} of {total} payload bytes were sent"),
        _ => Ok(()),
    }
}

/// A duration as people write it: `90 s`, `1.5 s`, `250 ms`.
fn seconds(d: std::time::Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else if d.as_secs() == 0 {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

impl std::error::Error for Error {
    /// The cause, per the `std::error::Error` convention: the failure a [`Error::NotReplayable`]
    /// could not retry, the I/O error of [`Error::Io`], the last interruption of a
    /// [`Error::Stalled`]. Each `Display` says only its own part, so a report that walks the
    /// chain (`anyhow`'s `{:#}`) shows every part once.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::NotReplayable(e) => Some(e.as_ref()),
            Error::Io { source, .. } => Some(source),
            Error::Stalled(stall) => stall
                .last
                .as_deref()
                .map(|e| e as &(dyn std::error::Error + 'static)),
            _ => None,
        }
    }
}

/// Why a transfer was found stalled ([`Error::Stalled`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StallKind {
    /// A body delivered fewer bytes than the floor over a whole measuring window.
    SlowBody {
        /// Bytes delivered in the window.
        bytes: u64,
        /// The window's length.
        window: std::time::Duration,
        /// The floor, in bytes per second.
        floor_per_sec: u64,
    },
    /// A range was retried again and again, and each attempt delivered fewer bytes than the
    /// floor.
    NoProgress {
        /// Attempts in a row that stayed under the floor.
        attempts: u32,
        /// The floor, in bytes per attempt.
        floor_bytes: u64,
    },
}

/// A transfer given up for lack of progress: what was measured, where it stood, and the
/// interruption that ended the last attempt (its `source()`).
#[derive(Debug)]
pub struct Stall {
    /// What was measured.
    pub kind: StallKind,
    /// The byte of the media reached (a resumed prefix included).
    pub offset: u64,
    /// Bytes that reached the sink in this run (flushed).
    pub bytes_written: u64,
    /// The failure that ended the last attempt, if one did.
    pub last: Option<Box<Error>>,
}

impl fmt::Display for Stall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            StallKind::SlowBody {
                bytes,
                window,
                floor_per_sec,
            } => write!(
                f,
                "the transfer stalled: {bytes} bytes in {}, under the floor of {floor_per_sec} \
                 bytes/s",
                seconds(window)
            )?,
            StallKind::NoProgress {
                attempts,
                floor_bytes,
            } => write!(
                f,
                "the transfer stalled: {attempts} attempts in a row each delivered under \
                 {floor_bytes} bytes"
            )?,
        }
        write!(
            f,
            "; stopped at byte {}, {} bytes written",
            self.offset, self.bytes_written
        )
    }
}

impl From<Invalid> for Error {
    fn from(e: Invalid) -> Self {
        Error::Invalid(e)
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        Error::Decode(e)
    }
}

/// An error answer from WeCom: the typed code and the server's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The error code.
    pub code: ErrCode,
    /// The server's `errmsg`, as sent (it carries a changing hint suffix: match on `code`).
    pub errmsg: String,
}

impl ApiError {
    /// What a client does with this error.
    pub fn disposition(&self) -> Disposition {
        self.code.disposition()
    }
}

impl ApiError {
    /// The same error with `secrets` masked in `errmsg` (see [`Error::redact`]).
    pub fn redact(self, secrets: &[&str]) -> ApiError {
        let errmsg = crate::secret::mask_keyed(&crate::secret::mask_exact(&self.errmsg, secrets));
        ApiError { errmsg, ..self }
    }
}

impl fmt::Display for ApiError {
    /// `40001 (invalid credential (secret)): <errmsg>`; the catalogue's meaning is left out
    /// when WeCom's errmsg already starts with it, so nothing is said twice.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let meaning = self.code.meaning();
        let said = self.errmsg.trim_start();
        let repeats = said
            .get(..meaning.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(meaning));
        if repeats {
            write!(f, "{}: {}", self.code.code(), self.errmsg)
        } else if self.errmsg.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{}: {}", self.code, self.errmsg)
        }
    }
}

/// What an S3-compatible object storage answered to a request it refused: the bucket and
/// key asked for, the HTTP status, the S3 error code and message (secrets masked). Never
/// holds the secret key, the session token or a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectStorageError {
    /// The request: `PUT` (the upload), `DELETE` (the clean-up).
    pub operation: &'static str,
    /// The bucket.
    pub bucket: String,
    /// The object key.
    pub key: String,
    /// The HTTP status.
    pub status: u16,
    /// The S3 error code (`SignatureDoesNotMatch`, `InvalidAccessKeyId`, `NoSuchBucket`, …),
    /// when the answer carried one.
    pub code: Option<String>,
    /// The server's message (masked as [`crate::secret::mask_secrets`] masks), or an excerpt
    /// of an answer that was not S3 error XML.
    pub message: String,
}

impl fmt::Display for ObjectStorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (op, bucket, key, status) = (self.operation, &self.bucket, &self.key, self.status);
        write!(
            f,
            "object storage refused {op} s3://{bucket}/{key} (HTTP {status}"
        )?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        f.write_str(")")?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ObjectStorageError {}

/// A response that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// The HTTP status of the response.
    pub status: u16,
    /// What was wrong.
    pub reason: String,
    /// The first bytes of the body, printable characters only, with anything that may be a
    /// secret masked by [`crate::secret::mask_secrets`] (a proxy page may echo the request
    /// URL, token included).
    pub excerpt: String,
}

/// How many body bytes a [`DecodeError`] keeps.
pub const EXCERPT_LEN: usize = 120;

impl DecodeError {
    /// Builds an error with an excerpt of `body`: secrets are masked in the first 4 KiB
    /// ([`crate::secret::mask_secrets`]), the first [`EXCERPT_LEN`] bytes are kept and masked
    /// once more (a run cut short is judged as it is shown).
    pub fn new(status: u16, reason: impl Into<String>, body: &[u8]) -> Self {
        let window = &body[..body.len().min(4096)];
        let masked = crate::secret::mask_secrets(&String::from_utf8_lossy(window));
        let mut end = masked.len().min(EXCERPT_LEN);
        while !masked.is_char_boundary(end) {
            end -= 1;
        }
        // Masked again after the cut: a run cut short may look like a secret where the whole
        // run did not (a run with `/` is masked only from 43 characters; its first 20 are not
        // a word either).
        let excerpt = crate::secret::mask_secrets(&masked[..end])
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        Self {
            status,
            reason: reason.into(),
            excerpt,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "undecodable response (HTTP {}): {}",
            self.status, self.reason
        )?;
        if !self.excerpt.is_empty() {
            write!(f, "; body starts {:?}", self.excerpt)?;
        }
        Ok(())
    }
}

/// Whether a failed request may have reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// The request certainly did not leave (connect or DNS failure, bad configuration).
    No,
    /// The request MAY have been sent: the server may have acted on it.
    Maybe,
}

/// An error and its causes (`source()`), each said once: `a: b: c`. For the one line a
/// transport or a front end prints; the error types themselves keep message and cause apart.
pub fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A network-level failure reported by a transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError {
    /// Whether the request may have been sent.
    pub sent: Sent,
    /// What failed (never holds a URI with a token: transports log [`crate::secret::RedactedUri`]).
    pub message: String,
}

impl TransportError {
    /// A failure before the request left. Secrets in `message` (an HTTP library's error may
    /// quote the request URL) are masked with [`crate::secret::mask_secrets`].
    pub fn not_sent(message: impl Into<String>) -> Self {
        Self {
            sent: Sent::No,
            message: crate::secret::mask_secrets(&message.into()),
        }
    }

    /// A failure after the request may have been sent; `message` is masked like
    /// [`TransportError::not_sent`]'s.
    pub fn maybe_sent(message: impl Into<String>) -> Self {
        Self {
            sent: Sent::Maybe,
            message: crate::secret::mask_secrets(&message.into()),
        }
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.sent {
            Sent::No => write!(f, "transport failure, request not sent: {}", self.message),
            Sent::Maybe => write!(
                f,
                "transport failure, request MAY have been sent: {}",
                self.message
            ),
        }
    }
}

impl std::error::Error for TransportError {}

/// Why a request was refused before anything was sent. Each variant names the rule and the
/// numbers involved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Invalid {
    /// The file is not larger than the minimum (WeCom requires more than 5 bytes).
    TooSmall {
        /// Media type of the upload.
        media_type: MediaType,
        /// Size of the file.
        size: u64,
        /// The file must be larger than this.
        min_exclusive: u64,
    },
    /// The file is larger than the limit for its type.
    TooLarge {
        /// Media type of the upload (or `None` for `uploadimg` / async upload).
        media_type: Option<MediaType>,
        /// Size of the file.
        size: u64,
        /// The largest allowed size.
        max: u64,
    },
    /// The filename's extension does not fit the media type.
    ExtensionMismatch {
        /// Media type of the upload.
        media_type: MediaType,
        /// The filename given.
        filename: String,
        /// The extensions allowed for this type.
        allowed: &'static [&'static str],
    },
    /// The file's first bytes are not of the required format.
    WrongFormat {
        /// Media type of the upload.
        media_type: MediaType,
        /// The format required, e.g. "AMR (#!AMR)".
        expected: &'static str,
    },
    /// No filename was given.
    MissingFilename,
    /// The filename holds a character that cannot go into a header (CR, LF or NUL).
    FilenameControlChar {
        /// The offending character.
        ch: char,
    },
    /// A field is longer than WeCom allows.
    FieldTooLong {
        /// The field name.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The maximum length in bytes.
        max: usize,
    },
    /// A field holds a control character (an id that would corrupt a request or a terminal).
    ControlCharacter {
        /// The field name.
        field: &'static str,
        /// The offending character.
        ch: char,
    },
    /// A field is empty.
    EmptyField {
        /// The field name.
        field: &'static str,
    },
    /// A media type that this operation does not accept.
    UnsupportedMediaType {
        /// The type given.
        media_type: MediaType,
        /// The operation.
        operation: &'static str,
    },
    /// The text is not a media type.
    UnknownMediaType {
        /// The text given.
        given: String,
    },
    /// The URL for an async upload is not an `https://` URL.
    UrlNotHttps,
    /// The MD5 is not 32 lowercase hex digits.
    BadMd5 {
        /// Length of the value given.
        len: usize,
    },
    /// The base URL is unusable.
    BadBaseUrl {
        /// What is wrong.
        reason: String,
    },
    /// A byte range or chunk size that cannot be requested.
    BadRange {
        /// What is wrong.
        reason: String,
    },
    /// A multipart boundary other than 1 to 70 letters, digits or `' + _ - .` (see
    /// [`crate::multipart::Boundary::new`]).
    BadBoundary,
    /// An unsupported scene for async upload.
    BadScene {
        /// The scene given.
        scene: u32,
    },
    /// An object-storage relay that cannot be used: a bad `s3://` URL, endpoint, bucket name
    /// or option (see the `relay` module, feature `s3-relay`).
    BadRelay {
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Invalid::TooSmall {
                media_type,
                size,
                min_exclusive,
            } => write!(
                f,
                "{media_type} is {size} bytes; it must be larger than {min_exclusive} bytes"
            ),
            Invalid::TooLarge {
                media_type: Some(t),
                size,
                max,
            } => {
                write!(f, "{t} is {size} bytes; the limit is {max} bytes")
            }
            Invalid::TooLarge {
                media_type: None,
                size,
                max,
            } => {
                write!(f, "file is {size} bytes; the limit is {max} bytes")
            }
            Invalid::ExtensionMismatch {
                media_type,
                filename,
                allowed,
            } => write!(
                f,
                "filename {filename:?} does not fit type {media_type}: expected extension {}",
                allowed.join(", ")
            ),
            Invalid::WrongFormat {
                media_type,
                expected,
            } => {
                write!(f, "{media_type} content is not {expected}")
            }
            Invalid::MissingFilename => f.write_str("a filename is required"),
            Invalid::FilenameControlChar { ch } => {
                write!(f, "filename contains {ch:?}, which cannot go into a header")
            }
            Invalid::FieldTooLong { field, len, max } => {
                write!(f, "{field} is {len} bytes; at most {max} allowed")
            }
            Invalid::EmptyField { field } => write!(f, "{field} is empty"),
            Invalid::ControlCharacter { field, ch } => {
                write!(f, "{field} contains the control character {ch:?}")
            }
            Invalid::UnsupportedMediaType {
                media_type,
                operation,
            } => {
                write!(f, "{operation} does not accept type {media_type}")
            }
            Invalid::UnknownMediaType { given } => write!(
                f,
                "unknown media type {given:?}: expected image, voice, video or file"
            ),
            Invalid::UrlNotHttps => f.write_str("the URL must start with https://"),
            Invalid::BadMd5 { len } => write!(
                f,
                "md5 must be 32 lowercase hex digits (got {len} characters)"
            ),
            Invalid::BadBaseUrl { reason } => write!(f, "bad base URL: {reason}"),
            Invalid::BadRange { reason } => write!(f, "bad range: {reason}"),
            Invalid::BadBoundary => {
                f.write_str("a boundary is 1 to 70 letters, digits or ' + _ - .")
            }
            Invalid::BadScene { scene } => write!(f, "unsupported scene {scene}: only 1 exists"),
            Invalid::BadRelay { reason } => write!(f, "bad object-storage relay: {reason}"),
        }
    }
}

impl std::error::Error for Invalid {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Redacting a stall redacts the failure it carries too (the last attempt's error may
    /// quote the token).
    #[test]
    fn a_stall_is_redacted_down_to_its_last_failure() {
        let stall = Error::Stalled(Stall {
            kind: StallKind::SlowBody {
                bytes: 10,
                window: std::time::Duration::from_secs(60),
                floor_per_sec: 1024,
            },
            offset: 5,
            bytes_written: 5,
            last: Some(Box::new(Error::Transport(TransportError::maybe_sent(
                "reset while sending TOKEN-123 in a header",
            )))),
        });
        let Error::Stalled(redacted) = stall.redact(&["TOKEN-123"]) else {
            panic!("still a stall")
        };
        let last = redacted.last.expect("the last failure is kept").to_string();
        assert!(
            !last.contains("TOKEN-123") && last.contains("reset while sending"),
            "{last}"
        );
    }

    /// Only a refusal of the caller's input is "invalid" (the CLI's usage exit status); a
    /// WeCom error, a decode error or a cancel is not.
    #[test]
    fn only_the_callers_input_is_invalid() {
        assert!(Error::Invalid(Invalid::MissingFilename).is_invalid());
        assert!(!Error::from(DecodeError::new(200, "x", b"")).is_invalid());
        let api = crate::api_json::api_error(40007, "invalid media_id".into());
        assert!(!api.is_invalid());
        assert!(!Error::Transport(TransportError::not_sent("refused")).is_invalid());
    }

    /// A decode error quotes the start of the body it could not read, and says nothing of a
    /// body when there was none.
    #[test]
    fn a_decode_error_quotes_its_body_only_when_there_is_one() {
        assert_eq!(
            DecodeError::new(502, "not JSON", b"").to_string(),
            "undecodable response (HTTP 502): not JSON"
        );
        assert_eq!(
            DecodeError::new(502, "not JSON", b"<html>").to_string(),
            "undecodable response (HTTP 502): not JSON; body starts \"<html>\""
        );
    }

    #[test]
    fn transport_error_is_a_std_error_that_says_whether_it_was_sent() {
        fn source_of(e: &(dyn std::error::Error + 'static)) -> Option<String> {
            e.source().map(ToString::to_string)
        }
        let e: Box<dyn std::error::Error + Send + Sync> =
            Box::new(TransportError::not_sent("connection refused"));
        assert_eq!(
            e.to_string(),
            "transport failure, request not sent: connection refused"
        );
        assert_eq!(source_of(e.as_ref()), None);
        let e = TransportError::maybe_sent("reset");
        assert_eq!(
            e.to_string(),
            "transport failure, request MAY have been sent: reset"
        );
        // Wrapped: the operation's error shows it once, not again as a source.
        let wrapped = Error::Transport(e);
        assert_eq!(
            wrapped.to_string(),
            "transport failure, request MAY have been sent: reset"
        );
    }

    /// Issue 19: the errmsg of a JSON error was never masked; a 40014 errmsg with the token
    /// printed the token. Redaction masks the client's own secret and tokens as exact
    /// strings, and the keyed forms, in every text an error holds.
    #[test]
    fn redact_masks_own_secrets_and_keyed_values_in_every_text() {
        let secrets = ["SECRET-abc123", "TOKEN-current-xyz", "TOKEN-previous-q"];
        let errors = [
            crate::api_json::api_error(40001, "invalid credential SECRET-abc123 for corp".into()),
            crate::api_json::api_error(40014, "invalid access_token TOKEN-previous-q, hint".into()),
            crate::api_json::api_error(45009, "freq, corpsecret=whatever-it-is".into()),
            Error::Decode(DecodeError {
                status: 500,
                reason: "echo TOKEN-current-xyz".into(),
                excerpt: "<p>SECRET-abc123</p>".into(),
            }),
            Error::Transport(TransportError {
                sent: Sent::Maybe,
                message: "reset after TOKEN-current-xyz".into(),
            }),
            Error::NotReplayable(Box::new(crate::api_json::api_error(
                -1,
                "busy SECRET-abc123".into(),
            ))),
            Error::io(
                "reading SECRET-abc123",
                std::io::Error::other("file TOKEN-current-xyz"),
            ),
        ];
        for error in errors {
            let before = format!("{error:?}");
            let redacted = error.redact(&secrets);
            let mut text = format!("{redacted} {redacted:?}");
            let mut source = std::error::Error::source(&redacted);
            while let Some(cause) = source {
                text.push_str(&format!(" {cause} {cause:?}"));
                source = cause.source();
            }
            for secret in secrets.iter().chain(&["whatever-it-is"]) {
                assert!(!text.contains(secret), "{before} → {text}");
            }
            assert!(text.contains("***"), "{text}");
        }
    }

    #[test]
    fn with_causes_joins_every_cause_once_in_order() {
        let io = std::io::Error::other("connection reset");
        let error = Error::io("reading the upload payload", io);
        assert_eq!(
            super::with_causes(&error),
            format!("{error}: connection reset")
        );
        assert!(!error.to_string().contains("connection reset"));
        let bare = std::io::Error::other("alone");
        assert_eq!(super::with_causes(&bare), "alone");
    }

    /// Issue 19: "WeCom error 40001 (invalid credential (secret)): invalid credential
    /// (secret), hint: …" said it twice, and NotReplayable / Io put their cause in the
    /// message and in `source()`.
    #[test]
    fn errors_say_their_own_part_once_and_the_cause_comes_from_source() {
        let repeated =
            crate::api_json::api_error(40001, "invalid credential (secret), hint: [x]".into());
        assert_eq!(
            repeated.to_string(),
            "WeCom error 40001: invalid credential (secret), hint: [x]"
        );
        let plain = crate::api_json::api_error(40007, "no such media, hint: [y]".into());
        assert_eq!(
            plain.to_string(),
            "WeCom error 40007 (invalid media_id): no such media, hint: [y]"
        );
        let bare = crate::api_json::api_error(40007, String::new());
        assert_eq!(bare.to_string(), "WeCom error 40007 (invalid media_id)");

        let inner = Error::Transport(TransportError::maybe_sent("reset"));
        let e = Error::NotReplayable(Box::new(inner));
        assert_eq!(
            e.to_string(),
            "a retry was due but not sent: the upload's payload cannot be replayed"
        );
        let source = std::error::Error::source(&e).unwrap().to_string();
        assert_eq!(
            source,
            "transport failure, request MAY have been sent: reset"
        );
        assert!(!e.to_string().contains("reset"));

        let e = Error::io("writing media.bin", std::io::Error::other("disk full"));
        assert_eq!(e.to_string(), "writing media.bin");
        assert_eq!(
            std::error::Error::source(&e).unwrap().to_string(),
            "disk full"
        );

        let cancelled = |operation, bytes, total| Error::Cancelled {
            operation,
            bytes,
            total,
        };
        for (error, text) in [
            (
                cancelled(OperationKind::Download, 0, None),
                "download cancelled by the caller; nothing had reached the sink",
            ),
            (
                cancelled(OperationKind::Download, 1000, Some(5000)),
                "download cancelled by the caller; 1000 bytes had reached the sink",
            ),
            (
                cancelled(OperationKind::Upload, 1_048_576, Some(5_242_880)),
                "upload cancelled by the caller after 1048576 of 5242880 payload bytes were sent",
            ),
            (
                cancelled(OperationKind::JobWait, 0, None),
                "job wait cancelled by the caller",
            ),
            (
                Error::DeadlineExceeded {
                    operation: OperationKind::Download,
                    deadline: std::time::Duration::from_secs(5),
                    bytes: 5000,
                    total: None,
                },
                "download's deadline of 5 s passed; 5000 bytes had reached the sink",
            ),
            (
                Error::DeadlineExceeded {
                    operation: OperationKind::RelayedUpload,
                    deadline: std::time::Duration::from_millis(1500),
                    bytes: 10,
                    total: Some(20),
                },
                "relayed upload's deadline of 1.5 s passed after 10 of 20 payload bytes were sent",
            ),
            (
                Error::DeadlineExceeded {
                    operation: OperationKind::JsonCall,
                    deadline: std::time::Duration::from_secs(2),
                    bytes: 0,
                    total: None,
                },
                "JSON call's deadline of 2 s passed",
            ),
        ] {
            assert_eq!(error.to_string(), text);
        }
        let stall = Error::Stalled(Stall {
            kind: StallKind::NoProgress {
                attempts: 5,
                floor_bytes: 65536,
            },
            offset: 5000,
            bytes_written: 5000,
            last: Some(Box::new(Error::Transport(TransportError::maybe_sent(
                "idle",
            )))),
        });
        assert_eq!(
            stall.to_string(),
            "the transfer stalled: 5 attempts in a row each delivered under 65536 bytes; \
             stopped at byte 5000, 5000 bytes written"
        );
        assert!(std::error::Error::source(&stall).is_some());
    }

    #[test]
    fn transport_messages_quoting_the_url_are_masked() {
        let e = TransportError::maybe_sent(
            "io error for https://h/cgi-bin/gettoken?corpid=ww&corpsecret=S3CRET-x: reset",
        );
        assert_eq!(
            e.message,
            "io error for https://h/cgi-bin/gettoken?corpid=ww&corpsecret=***: reset"
        );
        let e = TransportError::not_sent("GET /cgi-bin/media/get?access_token=TOK&media_id=m");
        assert!(!e.to_string().contains("TOK"), "{e}");
    }
}
