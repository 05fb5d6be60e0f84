//! Secret newtypes that never print their contents, and a URI view that masks them.
//!
//! The corp secret and every access token are wrapped so that `Debug` and `Display` show
//! `***`. Reading the value takes an explicit [`CorpSecret::expose`] /
//! [`AccessToken::expose`] call, which is easy to find in review.

use std::fmt;

/// Query parameters whose values are secrets and are masked by [`RedactedUri`].
pub const SECRET_QUERY_KEYS: &[&str] = &["access_token", "corpsecret"];

/// An application's corp secret (`corpsecret` of `gettoken`).
#[derive(Clone, PartialEq, Eq)]
pub struct CorpSecret(String);

impl CorpSecret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret text, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CorpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CorpSecret(***)")
    }
}

impl fmt::Display for CorpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// An access token returned by `gettoken` (up to 512 bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token text, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(***)")
    }
}

impl fmt::Display for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Displays a URI with the values of `access_token` and `corpsecret` replaced by `***`.
///
/// ```
/// use wecom_material_core::RedactedUri;
/// let uri: http::Uri = "https://h/cgi-bin/gettoken?corpid=ww1&corpsecret=s3cr3t".parse().unwrap();
/// assert_eq!(RedactedUri(&uri).to_string(), "https://h/cgi-bin/gettoken?corpid=ww1&corpsecret=***");
/// ```
pub struct RedactedUri<'a>(pub &'a http::Uri);

impl fmt::Display for RedactedUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let uri = self.0;
        if let Some(scheme) = uri.scheme_str() {
            write!(f, "{scheme}://")?;
        }
        if let Some(authority) = uri.authority() {
            f.write_str(authority.as_str())?;
        }
        f.write_str(uri.path())?;
        if let Some(query) = uri.query() {
            f.write_str("?")?;
            f.write_str(&redact_query(query))?;
        }
        Ok(())
    }
}

impl fmt::Debug for RedactedUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Returns `query` with the values of secret parameters replaced by `***`.
pub fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if SECRET_QUERY_KEYS.contains(&key) => format!("{key}=***"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_secret() {
        let s = CorpSecret::new("topsecret");
        let t = AccessToken::new("tok123");
        for text in [
            format!("{s:?}"),
            format!("{s}"),
            format!("{t:?}"),
            format!("{t}"),
        ] {
            assert!(
                !text.contains("topsecret") && !text.contains("tok123"),
                "{text}"
            );
        }
        assert_eq!(s.expose(), "topsecret");
    }

    #[test]
    fn redacts_both_secret_keys_and_keeps_others() {
        assert_eq!(
            redact_query("access_token=a%2Bb&type=file&corpsecret=x&media_id=m"),
            "access_token=***&type=file&corpsecret=***&media_id=m"
        );
    }
}
