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

#[cfg(test)]
mod tests {
    use super::*;

    /// The status a callback endpoint answers with: 401 for a bad signature, 413 for a body
    /// over the limit, 405 for another method, 400 for the rest; and each error says what.
    #[test]
    fn each_error_has_its_status_and_says_what_was_wrong() {
        use http::StatusCode as S;
        let cases = [
            (CallbackError::BadSignature, S::UNAUTHORIZED, "signature"),
            (
                CallbackError::BodyTooLarge { len: 9, max: 8 },
                S::PAYLOAD_TOO_LARGE,
                "body of 9 bytes is over the 8-byte limit",
            ),
            (
                CallbackError::MethodNotAllowed,
                S::METHOD_NOT_ALLOWED,
                "GET and POST",
            ),
            (
                CallbackError::MissingParameter("nonce"),
                S::BAD_REQUEST,
                "`nonce`",
            ),
            (CallbackError::BadBase64, S::BAD_REQUEST, "base64"),
            (CallbackError::BadKey, S::BAD_REQUEST, "EncodingAESKey"),
            (
                CallbackError::BadCiphertextLength { len: 17 },
                S::BAD_REQUEST,
                "17 bytes",
            ),
            (CallbackError::BadPadding, S::BAD_REQUEST, "padding"),
            (CallbackError::LengthOutOfBounds, S::BAD_REQUEST, "length"),
            (
                CallbackError::WrongReceiveId {
                    expected: "ww1".into(),
                    found: "ww2".into(),
                },
                S::BAD_REQUEST,
                "receive id `ww2`, expected `ww1`",
            ),
            (
                CallbackError::MalformedXml("no root".into()),
                S::BAD_REQUEST,
                "XML: no root",
            ),
        ];
        for (error, status, says) in cases {
            assert_eq!(error.status(), status, "{error:?}");
            assert!(error.to_string().contains(says), "{error:?}: {error}");
        }
    }
}
