//! Secret newtypes that never print their contents, and a URI view that masks them.
//!
//! The corp secret and every access token are wrapped so that `Debug` and `Display` show
//! `***`. Reading the value takes an explicit [`CorpSecret::expose`] /
//! [`AccessToken::expose`] call, which is easy to find in review.

use std::fmt;

use crate::error::Invalid;

/// The longest access token accepted from any source (a gettoken answer, a cache file, a
/// shared store): 512 bytes, the most WeCom documents (SPEC §1). A longer value is refused
/// by [`AccessToken::new`]; it could not be sent anyway (it would blow up every request URI).
pub const MAX_TOKEN_LEN: usize = 512;

/// Query parameters whose values are secrets and are masked by [`RedactedUri`].
/// The last two are an S3 presigned URL's signature and session token (the object-storage
/// relay's URLs).
pub const SECRET_QUERY_KEYS: &[&str] = &[
    "access_token",
    "corpsecret",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
];

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

/// An access token returned by `gettoken`: 1 to [`MAX_TOKEN_LEN`] bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    /// Wraps a token. Every source of a token (a gettoken answer, a cache file, a shared
    /// store's entry) goes through here, so none can hand the client an empty token or one
    /// over [`MAX_TOKEN_LEN`] bytes: those are [`Invalid::EmptyField`] and
    /// [`Invalid::FieldTooLong`] (which name the length, never the text).
    ///
    /// ```
    /// use wecom_material_core::{AccessToken, Invalid};
    /// assert!(AccessToken::new("tok").is_ok());
    /// assert!(matches!(AccessToken::new("t".repeat(513)), Err(Invalid::FieldTooLong { len: 513, .. })));
    /// ```
    pub fn new(token: impl Into<String>) -> Result<Self, Invalid> {
        let token = token.into();
        if token.is_empty() {
            return Err(Invalid::EmptyField {
                field: "access_token",
            });
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(Invalid::FieldTooLong {
                field: "access_token",
                len: token.len(),
                max: MAX_TOKEN_LEN,
            });
        }
        Ok(Self(token))
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

/// Displays a URI with the values of `access_token`, `corpsecret` and a presigned URL's
/// `X-Amz-Signature` and `X-Amz-Security-Token` replaced by `***`.
///
/// ```
/// use wecom_material_core::secret::RedactedUri;
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

/// The shortest run of base64/base64url characters that [`mask_secrets`] masks: 20. A token
/// quoted in a proxy's page may be cut or short (a 29-character token was shown in full when
/// the floor was 43, an `EncodingAESKey`'s length); media ids and job ids are longer too, so an
/// error excerpt may show one as `***` — an excerpt is for diagnosis, not for data.
pub const MASKED_RUN_LEN: usize = 20;

/// The shortest run holding `/` that [`mask_secrets`] masks: 43, the length of an
/// `EncodingAESKey` (shorter runs with `/` are URL paths far more often than secrets).
pub const MASKED_SLASH_RUN_LEN: usize = 43;

/// The shortest value [`mask_exact`] masks: 6 bytes. Shorter ones would mask ordinary words
/// of a message (a test secret `s` would eat every `s`); real secrets are 43 characters and
/// tokens longer.
pub const MIN_EXACT_MASK_LEN: usize = 6;

/// Replaces every occurrence of each of `secrets` in `text` with `***` (values shorter than
/// [`MIN_EXACT_MASK_LEN`] are left alone). For the secrets a client knows it holds: its corp
/// secret and its current and previous access tokens, which a server may echo in any form.
///
/// ```
/// use wecom_material_core::secret::mask_exact;
/// assert_eq!(
///     mask_exact("invalid credential S3cr3t-Value for corp", &["S3cr3t-Value"]),
///     "invalid credential *** for corp"
/// );
/// ```
pub fn mask_exact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        if secret.len() >= MIN_EXACT_MASK_LEN && out.contains(secret) {
            out = out.replace(secret, "***");
        }
    }
    out
}

/// Masks the value after a secret-looking key (rule 1 of [`mask_secrets`]) and nothing else:
/// for texts whose long runs are data, such as WeCom's `errmsg` (it quotes media ids).
///
/// ```
/// use wecom_material_core::secret::mask_keyed;
/// assert_eq!(
///     mask_keyed("invalid access_token: abc123, hint: [x]"),
///     "invalid access_token: ***, hint: [x]"
/// );
/// ```
pub fn mask_keyed(text: &str) -> String {
    mask_keyed_values(text)
}

/// How many leading bytes of a text [`mask_secrets`] scans (an excerpt needs far fewer).
const MASK_WINDOW: usize = 4096;

/// Masks what may be a secret in free text — a server's error page, a body excerpt — the way
/// the CLI's `-v` log masks URIs:
///
/// 1. the value after a secret-looking key: an identifier (letters, digits, `_`) that ends in
///    `token`, `secret` or `aeskey` / `aes_key` (case-insensitive: `access_token`,
///    `corpsecret`, `EncodingAESKey`), optionally quoted, then `=` or `:`, then the value
///    (optionally quoted) up to the next `&`, quote, whitespace, `,`, `;`, `:`, `<`, `>`, `}`
///    or `)` — so `?access_token=…&` and `"access_token": "…"` are both masked;
/// 2. every run of at least [`MASKED_RUN_LEN`] characters of the base64url alphabet
///    (`A-Z a-z 0-9 + _ -`) that mixes letters and digits, as random tokens do (a word such
///    as `upload_media_job_finish` is kept), and every run of at least
///    [`MASKED_SLASH_RUN_LEN`] characters that also holds `/` (standard base64: AES keys) —
///    URL paths (`/cgi-bin/media/get`) stay readable. This covers keys and tokens that
///    appear without a key.
///
/// Each masked value becomes `***`. Only the first 4 KiB of `text` are kept.
///
/// ```
/// use wecom_material_core::secret::mask_secrets;
/// assert_eq!(
///     mask_secrets("GET /cgi-bin/media/get?access_token=abc123&media_id=m"),
///     "GET /cgi-bin/media/get?access_token=***&media_id=m"
/// );
/// assert_eq!(mask_secrets(r#"{"corpsecret": "s3"}"#), r#"{"corpsecret": "***"}"#);
/// ```
pub fn mask_secrets(text: &str) -> String {
    let mut end = text.len().min(MASK_WINDOW);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let keyed = mask_keyed_values(&text[..end]);
    mask_long_runs(&keyed)
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_secret_key(ident: &str) -> bool {
    let lower = ident.to_ascii_lowercase();
    ["token", "secret", "aeskey", "aes_key"]
        .iter()
        .any(|k| lower.ends_with(k))
}

fn ends_value(b: u8) -> bool {
    b.is_ascii_whitespace()
        || matches!(
            b,
            b'&' | b'"' | b'\'' | b',' | b';' | b':' | b'<' | b'>' | b'}' | b')'
        )
}

fn mask_keyed_values(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        // `i` is never inside an identifier here: it moves one byte past a non-identifier
        // byte, to an identifier's end, or to a value's end (a byte that ends values).
        if !is_ident(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_ident(bytes[i]) {
            i += 1;
        }
        if !is_secret_key(&text[start..i]) {
            continue;
        }
        let mut j = i;
        let skip = |j: &mut usize, pred: &dyn Fn(u8) -> bool| {
            while *j < bytes.len() && pred(bytes[*j]) {
                *j += 1;
            }
        };
        skip(&mut j, &|b| b == b'"' || b == b'\'');
        skip(&mut j, &|b| b == b' ' || b == b'\t');
        if j >= bytes.len() || !(bytes[j] == b'=' || bytes[j] == b':') {
            continue;
        }
        j += 1;
        skip(&mut j, &|b| b == b' ' || b == b'\t');
        skip(&mut j, &|b| b == b'"' || b == b'\'');
        let value_start = j;
        skip(&mut j, &|b| !ends_value(b));
        if j > value_start {
            out.push_str(&text[copied..value_start]);
            out.push_str("***");
            copied = j;
        }
        i = j;
    }
    out.push_str(&text[copied..]);
    out
}

fn mask_long_runs(text: &str) -> String {
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '_' | '-');
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let secret_like = if run.contains('/') {
            run.len() >= MASKED_SLASH_RUN_LEN
        } else {
            run.len() >= MASKED_RUN_LEN
                && run.bytes().any(|b| b.is_ascii_digit())
                && run.bytes().any(|b| b.is_ascii_alphabetic())
        };
        if secret_like {
            out.push_str("***");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if is_b64(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only the first 4 KiB are looked at, cut at a character boundary (never inside one).
    #[test]
    fn the_masking_window_ends_at_a_character_boundary() {
        // 4 095 ASCII bytes (short words: nothing to mask), then "é" across the 4 KiB mark.
        let prefix = format!("{}b", "a ".repeat((MASK_WINDOW - 2) / 2));
        assert_eq!(prefix.len(), MASK_WINDOW - 1);
        let text = format!("{prefix}é and more");
        assert_eq!(mask_secrets(&text), prefix);
    }

    /// A logged URI shows the same, masked, in `{}` and `{:?}`.
    #[test]
    fn a_redacted_uri_debugs_as_it_displays() {
        let uri: http::Uri =
            "https://qyapi.weixin.qq.com/cgi-bin/gettoken?corpid=ww&corpsecret=S3CR3T"
                .parse()
                .unwrap();
        let shown = RedactedUri(&uri).to_string();
        assert_eq!(format!("{:?}", RedactedUri(&uri)), shown);
        assert!(shown.ends_with("corpid=ww&corpsecret=***"), "{shown}");
    }

    #[test]
    fn debug_and_display_never_show_secret() {
        let s = CorpSecret::new("topsecret");
        let t = AccessToken::new("tok123").unwrap();
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
        // What is shown instead says a secret is there.
        let shown = [
            format!("{s:?}"),
            format!("{s}"),
            format!("{t:?}"),
            format!("{t}"),
        ];
        assert_eq!(shown, ["CorpSecret(***)", "***", "AccessToken(***)", "***"]);
    }

    #[test]
    fn masks_keyed_values_and_long_runs_in_free_text() {
        let aes = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
        assert_eq!(aes.len(), 43);
        for (input, want) in [
            (
                "<p>GET https://h/cgi-bin/gettoken?corpid=ww&corpsecret=S-1+x&y=1</p>",
                "<p>GET https://h/cgi-bin/gettoken?corpid=ww&corpsecret=***&y=1</p>",
            ),
            (
                r#"{"access_token" : 'TOK', "expires_in":7200}"#,
                r#"{"access_token" : '***', "expires_in":7200}"#,
            ),
            ("EncodingAESKey=KEY)", "EncodingAESKey=***)"),
            ("token:", "token:"),
            ("tokens are fine; media_id=m", "tokens are fine; media_id=m"),
            (&format!("key {aes}."), "key ***."),
            (
                &format!("short {}", &aes[..19]),
                &format!("short {}", &aes[..19]),
            ),
            ("upload_media_job_finish", "upload_media_job_finish"),
            (
                "a/b/c/d/e/f/g/h/i/j/k/l/1/2/3",
                "a/b/c/d/e/f/g/h/i/j/k/l/1/2/3",
            ),
            ("jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2/2C", "***"),
            // A 29-character token in an HTML error page (it used to be shown in full).
            (
                "<p>bad token Zx9_Qw3-Er5Ty7Ui9Op1As3Df5Gh</p>",
                "<p>bad token ***</p>",
            ),
            ("ünïcode access_token=ü€ ok", "ünïcode access_token=*** ok"),
        ] {
            assert_eq!(mask_secrets(input), want, "{input}");
        }
        assert_eq!(mask_secrets(&"é".repeat(5000)).len(), 4096);
    }

    /// A 10 MB token (from a tampered store entry) used to reach the URI builder and panic
    /// there; the constructor refuses it, and the boundary lengths behave.
    #[test]
    fn access_token_constructor_refuses_empty_and_oversized_tokens() {
        assert_eq!(
            AccessToken::new("").unwrap_err(),
            Invalid::EmptyField {
                field: "access_token"
            }
        );
        assert_eq!(
            AccessToken::new("a".repeat(512)).unwrap().expose().len(),
            512
        );
        let huge = "A".repeat(10 * 1024 * 1024);
        let err = AccessToken::new(huge).unwrap_err();
        assert_eq!(
            err,
            Invalid::FieldTooLong {
                field: "access_token",
                len: 10 * 1024 * 1024,
                max: 512
            }
        );
        assert!(!err.to_string().contains("AAAA"), "{err}");
    }

    #[test]
    fn exact_values_are_masked_everywhere_and_short_ones_never() {
        let text = "a S3CRET-123 b S3CRET-123 c tok.with.dots";
        assert_eq!(
            mask_exact(text, &["S3CRET-123", "tok.with.dots", "", "b"]),
            "a *** b *** c ***"
        );
        assert_eq!(mask_exact("short s", &["s"]), "short s");
    }

    #[test]
    fn redacts_both_secret_keys_and_keeps_others() {
        assert_eq!(
            redact_query("access_token=a%2Bb&type=file&corpsecret=x&media_id=m"),
            "access_token=***&type=file&corpsecret=***&media_id=m"
        );
    }
}
