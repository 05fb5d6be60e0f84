//! `multipart/form-data` framing for WeCom uploads (SPEC §2).
//!
//! One part named `media`; the filename goes into `filename="…"` as raw UTF-8 (WeCom shows
//! `filename*=` and percent- or RFC 2047-encoded names literally, or rejects them), with `"`
//! and `\` backslash-escaped and control characters refused so no header can be injected.
//! The layout copies WeCom's official example byte for byte, `filelength` included:
//!
//! ```text
//! --BOUNDARY\r\n
//! Content-Disposition: form-data; name="media";filename="wework.txt"; filelength=6\r\n
//! Content-Type: application/octet-stream\r\n
//! \r\n
//! <payload>\r\n
//! --BOUNDARY--\r\n
//! ```
//! Only the head and tail are built here; the payload is never copied.

use std::fmt;

use bytes::Bytes;

use crate::error::Invalid;
use crate::limits::extension;
use crate::media_type::MediaType;

/// A multipart boundary. Build it from 16 bytes of entropy the caller draws (the core has no
/// randomness of its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boundary(String);

impl Boundary {
    /// `----wecom-material-` followed by the entropy in hex: 51 characters, far from any file
    /// content by chance.
    pub fn from_entropy(entropy: [u8; 16]) -> Self {
        let mut s = String::from("----wecom-material-");
        for b in entropy {
            s.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
            s.push(char::from_digit(u32::from(b & 0xF), 16).unwrap_or('0'));
        }
        Self(s)
    }

    /// A fixed boundary (for golden tests and byte-exact replays of WeCom's examples):
    /// 1 to 70 characters, each a letter, a digit or one of `' + _ - .`.
    ///
    /// RFC 2046 allows more (`( ) , / : = ?` and space), but those are `tspecials` of RFC 2045:
    /// a boundary holding one must be quoted in the `Content-Type` parameter, and servers that
    /// read the parameter naively (WeCom's behaviour with quoted boundaries is not documented)
    /// would then look for the quotes as part of the boundary. Such boundaries are refused
    /// with [`Invalid::BadBoundary`], so [`Boundary::content_type`] never needs quoting.
    pub fn new(boundary: &str) -> Result<Self, Invalid> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || "'+_-.".contains(c);
        if boundary.is_empty() || boundary.len() > 70 || !boundary.chars().all(ok_char) {
            return Err(Invalid::BadBoundary);
        }
        Ok(Self(boundary.to_owned()))
    }

    /// The boundary text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The request `Content-Type`, boundary included (WeCom answers 44001 without it).
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.0)
    }
}

impl fmt::Display for Boundary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a display filename and returns it quoted-string-escaped (`"` → `\"`, `\` → `\\`).
pub fn escape_filename(filename: &str) -> Result<String, Invalid> {
    if filename.is_empty() {
        return Err(Invalid::MissingFilename);
    }
    let mut out = String::with_capacity(filename.len() + 2);
    for ch in filename.chars() {
        match ch {
            '"' | '\\' => {
                out.push('\\');
                out.push(ch);
            }
            // CR, LF and NUL would break out of the header; other ASCII controls are refused
            // too (no HTTP header may hold them).
            c if c.is_ascii_control() && c != '\t' => {
                return Err(Invalid::FilenameControlChar { ch: c });
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// The part `Content-Type` for an upload of `media_type` named `filename`.
pub fn part_content_type(media_type: MediaType, filename: &str) -> &'static str {
    match media_type {
        MediaType::Image => match extension(filename).as_deref() {
            Some("png") => "image/png",
            _ => "image/jpeg",
        },
        MediaType::Voice => "audio/amr",
        MediaType::Video => "video/mp4",
        MediaType::File => "application/octet-stream",
    }
}

/// Builds the head and tail around a payload of `payload_len` bytes.
pub fn frame(
    boundary: &Boundary,
    filename: &str,
    part_content_type: &str,
    payload_len: u64,
) -> Result<(Bytes, Bytes), Invalid> {
    let escaped = escape_filename(filename)?;
    let head = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"media\";filename=\"{escaped}\"; filelength={payload_len}\r\nContent-Type: {part_content_type}\r\n\r\n",
        b = boundary.as_str()
    );
    let tail = format!("\r\n--{}--\r\n", boundary.as_str());
    Ok((Bytes::from(head), Bytes::from(tail)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_boundary_shows_as_itself_and_names_the_content_type() {
        let boundary = Boundary::new("wecom-b0undary").unwrap();
        assert_eq!(boundary.to_string(), "wecom-b0undary");
        assert_eq!(
            boundary.content_type(),
            "multipart/form-data; boundary=wecom-b0undary"
        );
    }

    #[test]
    fn official_example_is_reproduced_byte_for_byte() {
        let boundary = Boundary::new("-------------------------acebdf13572468").unwrap();
        let (head, tail) = frame(&boundary, "wework.txt", "application/octet-stream", 6).unwrap();
        let mut body = head.to_vec();
        body.extend_from_slice(b"mytext");
        body.extend_from_slice(&tail);
        let expected = "---------------------------acebdf13572468\r\n\
Content-Disposition: form-data; name=\"media\";filename=\"wework.txt\"; filelength=6\r\n\
Content-Type: application/octet-stream\r\n\
\r\n\
mytext\r\n\
---------------------------acebdf13572468--\r\n";
        assert_eq!(String::from_utf8(body.clone()).unwrap(), expected);
        assert_eq!(body.len(), 220);
        assert_eq!(
            boundary.content_type(),
            "multipart/form-data; boundary=-------------------------acebdf13572468"
        );
    }

    #[test]
    fn filename_escaping_and_injection() {
        assert_eq!(escape_filename(r#"a"b\c.txt"#).unwrap(), r#"a\"b\\c.txt"#);
        assert_eq!(escape_filename("测试.png").unwrap(), "测试.png");
        for (name, ch) in [("a\r\nX-Evil: 1", '\r'), ("a\nb", '\n'), ("a\0b", '\0')] {
            assert_eq!(
                escape_filename(name),
                Err(Invalid::FilenameControlChar { ch })
            );
        }
        assert_eq!(escape_filename(""), Err(Invalid::MissingFilename));
    }

    #[test]
    fn boundary_from_entropy_is_hex() {
        let b = Boundary::from_entropy([0xAB; 16]);
        assert_eq!(
            b.as_str(),
            format!("----wecom-material-{}", "ab".repeat(16))
        );
        assert!(Boundary::new("").is_err());
        assert!(Boundary::new("a\r\n").is_err());
    }

    #[test]
    fn boundary_characters_that_need_quoting_are_refused() {
        for bad in [
            "a b",
            "a:b",
            "a=b",
            "(ab)",
            "a,b",
            "a/b",
            "a?b",
            "ab ",
            "\"x\"",
            &"x".repeat(71),
        ] {
            assert_eq!(Boundary::new(bad), Err(Invalid::BadBoundary), "{bad:?}");
        }
        let b = Boundary::new("a'b+c_d-e.F9").unwrap();
        assert_eq!(
            b.content_type().as_bytes(),
            b"multipart/form-data; boundary=a'b+c_d-e.F9"
        );
        let (head, tail) = frame(&b, "f.txt", "text/plain", 1).unwrap();
        assert!(head.starts_with(b"--a'b+c_d-e.F9\r\n"));
        assert_eq!(tail.as_ref(), b"\r\n--a'b+c_d-e.F9--\r\n");
        assert!(Boundary::new(&"x".repeat(70)).is_ok());
    }
}
