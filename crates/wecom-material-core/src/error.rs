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
    /// The caller cancelled the operation.
    Cancelled {
        /// Bytes that reached the download's sink before it stopped (flushed); 0 for
        /// anything but a download.
        bytes_written: u64,
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
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid(e) => write!(f, "invalid request, nothing sent: {e}"),
            Error::Api(e) => write!(f, "WeCom error {e}"),
            Error::RateLimited(e) => write!(f, "rate limited by WeCom, not retried: {e}"),
            Error::Decode(e) => write!(f, "{e}"),
            Error::Transport(e) => write!(f, "{e}"),
            Error::NotReplayable(e) => write!(
                f,
                "not resent because the upload's payload cannot be replayed: {e}"
            ),
            Error::Cancelled { bytes_written: 0 } => f.write_str("cancelled"),
            Error::Cancelled { bytes_written } => {
                write!(f, "cancelled after {bytes_written} bytes were written")
            }
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::Save(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::NotReplayable(e) => Some(e.as_ref()),
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
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

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if !self.errmsg.is_empty() {
            write!(f, ": {}", self.errmsg)?;
        }
        Ok(())
    }
}

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
    /// ([`crate::secret::mask_secrets`]), then the first [`EXCERPT_LEN`] bytes are kept.
    pub fn new(status: u16, reason: impl Into<String>, body: &[u8]) -> Self {
        let window = &body[..body.len().min(4096)];
        let masked = crate::secret::mask_secrets(&String::from_utf8_lossy(window));
        let mut end = masked.len().min(EXCERPT_LEN);
        while !masked.is_char_boundary(end) {
            end -= 1;
        }
        let excerpt = masked[..end]
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
        }
    }
}

impl std::error::Error for Invalid {}

#[cfg(test)]
mod tests {
    use super::*;

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
