//! The app's callback configuration.

use std::fmt;

use super::cipher::EncodingAesKey;
use super::error::CallbackError;

/// The callback `Token` of the app configuration: it keys the signature.
///
/// `Debug` and `Display` print `***`; read it with [`CallbackToken::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct CallbackToken(String);

impl CallbackToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token text, for the one place that signs with it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CallbackToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallbackToken(***)")
    }
}

impl fmt::Display for CallbackToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<&str> for CallbackToken {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for CallbackToken {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

/// What an app's callback endpoint needs: its `Token`, its `EncodingAESKey` and the receive id
/// that every message must end with (the corp id for a self-built app, the suite id for a
/// third-party suite).
#[derive(Debug, Clone)]
pub struct CallbackConfig {
    /// The signature token.
    pub token: CallbackToken,
    /// The AES key.
    pub aes_key: EncodingAesKey,
    /// The expected receive id.
    pub receive_id: String,
}

impl CallbackConfig {
    /// Builds a configuration from the three strings of the app's settings.
    ///
    /// Fails with [`CallbackError::BadKey`] if `encoding_aes_key` is not a valid 43-character
    /// key.
    pub fn new(
        token: impl Into<String>,
        encoding_aes_key: &str,
        receive_id: impl Into<String>,
    ) -> Result<Self, CallbackError> {
        Ok(Self {
            token: CallbackToken::new(token),
            aes_key: EncodingAesKey::parse(encoding_aes_key)?,
            receive_id: receive_id.into(),
        })
    }
}
