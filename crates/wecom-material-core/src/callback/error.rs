//! The callback's error type.

use std::fmt;

/// Why a callback request, or a piece of one, was refused.
///
/// No variant ever holds the token or the AES key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallbackError {
    /// `msg_signature` does not match the one computed with the configured token.
    BadSignature,
    /// A required query parameter (`msg_signature`, `timestamp`, `nonce`, `echostr`) or the
    /// envelope's `Encrypt` element is missing.
    MissingParameter(&'static str),
    /// The encrypted text is not valid standard base64.
    BadBase64,
    /// The `EncodingAESKey` is not 43 base64 characters decoding to 32 bytes.
    BadKey,
    /// The ciphertext is empty or not a whole number of 16-byte AES blocks.
    BadCiphertextLength {
        /// Length of the decoded ciphertext in bytes.
        len: usize,
    },
    /// The decrypted padding is not PKCS#7 with a pad of 1..=32 bytes.
    BadPadding,
    /// The decrypted plaintext is too short for its header, or its declared message length
    /// runs past the end.
    LengthOutOfBounds,
    /// The receive id at the end of the plaintext is not the configured one.
    WrongReceiveId {
        /// The configured receive id.
        expected: String,
        /// The one found (lossily decoded, at most 64 characters).
        found: String,
    },
    /// The envelope or the decrypted event is not well-formed XML (or not UTF-8).
    MalformedXml(String),
    /// The request body is longer than the handler accepts.
    BodyTooLarge {
        /// Length of the body received.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The request method is neither GET (URL check) nor POST (event delivery).
    MethodNotAllowed,
}

impl CallbackError {
    /// The HTTP status a callback endpoint answers this error with.
    pub fn status(&self) -> http::StatusCode {
        match self {
            CallbackError::BadSignature => http::StatusCode::UNAUTHORIZED,
            CallbackError::BodyTooLarge { .. } => http::StatusCode::PAYLOAD_TOO_LARGE,
            CallbackError::MethodNotAllowed => http::StatusCode::METHOD_NOT_ALLOWED,
            _ => http::StatusCode::BAD_REQUEST,
        }
    }
}

impl fmt::Display for CallbackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallbackError::BadSignature => f.write_str("callback signature does not match"),
            CallbackError::MissingParameter(name) => {
                write!(f, "callback request lacks `{name}`")
            }
            CallbackError::BadBase64 => f.write_str("callback ciphertext is not valid base64"),
            CallbackError::BadKey => {
                f.write_str("EncodingAESKey must be 43 base64 characters that decode to 32 bytes")
            }
            CallbackError::BadCiphertextLength { len } => write!(
                f,
                "callback ciphertext of {len} bytes is not a whole number of AES blocks"
            ),
            CallbackError::BadPadding => f.write_str("callback plaintext has bad padding"),
            CallbackError::LengthOutOfBounds => {
                f.write_str("callback message length runs past the end of the plaintext")
            }
            CallbackError::WrongReceiveId { expected, found } => write!(
                f,
                "callback is for receive id `{found}`, expected `{expected}`"
            ),
            CallbackError::MalformedXml(why) => write!(f, "malformed callback XML: {why}"),
            CallbackError::BodyTooLarge { len, max } => write!(
                f,
                "callback body of {len} bytes is over the {max}-byte limit"
            ),
            CallbackError::MethodNotAllowed => {
                f.write_str("callback endpoint accepts only GET and POST")
            }
        }
    }
}

impl std::error::Error for CallbackError {}
