//! The server side of the upload form: one `multipart/form-data` part named `media`
//! (SPEC §2, §3), read with `multer` for framing and a strict reading of the part's own
//! `Content-Disposition` bytes.
//!
//! Decisions, in order:
//! - no `Content-Length` (chunked) while `require_content_length` is on → 44001;
//! - request `Content-Type` not `multipart/form-data` with a `boundary` → 44001;
//! - malformed framing → 44001;
//! - no part named `media` → 41005 (media data missing); other parts are ignored;
//! - the `media` part has a `filename*` parameter → 41005 (the real server does not implement
//!   RFC 7578's extended names); no `filename`, or an empty one → 41005;
//! - the name's extension does not fit (caller's rule) → 40005;
//! - more bytes than the limit → the limit's code (reading stops there);
//! - an empty part → 44001; `<= min_exclusive_bytes` → 40006.
//!
//! File names are kept as their raw bytes decoded as UTF-8 (lossily for invalid UTF-8):
//! `filename="测试.png"` in raw UTF-8 is the way WeCom accepts non-ASCII names.

use bytes::Bytes;
use http::HeaderMap;
use http::header::{CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE};

use crate::body::TappedBody;
use crate::config::SizeLimit;
use crate::slab::Slabs;

/// The uploaded part.
#[derive(Debug)]
pub(crate) struct MediaPart {
    pub(crate) filename: String,
    pub(crate) content_type: Option<String>,
    pub(crate) bytes: Bytes,
}

/// Never read more than this while draining the rest of a refused request.
const DRAIN_LIMIT: u64 = 512 * 1024 * 1024;

/// Reads the `media` part. `check_name` answers the errcode for a name that does not fit.
pub(crate) async fn read_media(
    slabs: &Slabs,
    headers: &HeaderMap,
    require_content_length: bool,
    body: TappedBody,
    limit: SizeLimit,
    min_exclusive_bytes: u64,
    check_name: impl Fn(&str) -> Result<(), i64>,
) -> Result<MediaPart, i64> {
    let boundary = match headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(multer::parse_boundary)
    {
        _ if require_content_length && !headers.contains_key(CONTENT_LENGTH) => {
            let mut body = body;
            body.drain(DRAIN_LIMIT).await;
            return Err(44001);
        }
        Some(Ok(b)) if !b.is_empty() => b,
        _ => {
            let mut body = body;
            body.drain(DRAIN_LIMIT).await;
            return Err(44001);
        }
    };
    let mut form = multer::Multipart::new(body, boundary);
    let result = read_form(slabs, &mut form, limit, min_exclusive_bytes, &check_name).await;
    if result.is_err() {
        drain(&mut form).await;
    }
    result
}

async fn read_form(
    slabs: &Slabs,
    form: &mut multer::Multipart<'static>,
    limit: SizeLimit,
    min_exclusive_bytes: u64,
    check_name: &impl Fn(&str) -> Result<(), i64>,
) -> Result<MediaPart, i64> {
    let mut found: Option<MediaPart> = None;
    loop {
        let mut field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) => return Err(44001),
        };
        let params = field
            .headers()
            .get(CONTENT_DISPOSITION)
            .map(|v| disposition_params(v.as_bytes()))
            .unwrap_or_default();
        let name = param(&params, "name");
        if found.is_some() || name.as_deref() != Some(b"media".as_slice()) {
            while let Ok(Some(_)) = field.chunk().await {}
            continue;
        }
        if params.iter().any(|(k, _)| k == "filename*") {
            return Err(41005);
        }
        let filename = match param(&params, "filename") {
            Some(f) if !f.is_empty() => String::from_utf8_lossy(&f).into_owned(),
            _ => return Err(41005),
        };
        check_name(&filename)?;
        let content_type = field
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // The chunks are slices of the connection's read buffers; they are copied once (see
        // `crate::slab`), so a stored media holds no slack and pins no buffer of the
        // connection.
        let mut chunks: Vec<Bytes> = Vec::new();
        let mut len = 0u64;
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    len += chunk.len() as u64;
                    if len > limit.max_bytes {
                        return Err(limit.over_code);
                    }
                    chunks.push(chunk);
                }
                Ok(None) => break,
                Err(_) => return Err(44001),
            }
        }
        found = Some(MediaPart {
            filename,
            content_type,
            bytes: slabs.store(&chunks),
        });
    }
    let part = found.ok_or(41005)?;
    if part.bytes.is_empty() {
        return Err(44001);
    }
    if part.bytes.len() as u64 <= min_exclusive_bytes {
        return Err(40006);
    }
    Ok(part)
}

/// Reads and discards what is left of a refused form (bounded), so the client can finish
/// sending and read the answer.
async fn drain(form: &mut multer::Multipart<'static>) {
    let mut seen = 0u64;
    while let Ok(Some(mut field)) = form.next_field().await {
        while let Ok(Some(chunk)) = field.chunk().await {
            seen += chunk.len() as u64;
            if seen > DRAIN_LIMIT {
                return;
            }
        }
    }
}

fn param(params: &[(String, Vec<u8>)], name: &str) -> Option<Vec<u8>> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// The parameters of a `Content-Disposition` value (after the disposition type), names in
/// lower case, values unquoted (`\x` → `x`) and otherwise raw bytes.
pub(crate) fn disposition_params(raw: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut i = match raw.iter().position(|&b| b == b';') {
        Some(p) => p + 1,
        None => return out,
    };
    while i < raw.len() {
        while i < raw.len() && matches!(raw[i], b' ' | b'\t' | b';') {
            i += 1;
        }
        let start = i;
        while i < raw.len() && raw[i] != b'=' && raw[i] != b';' {
            i += 1;
        }
        let name = String::from_utf8_lossy(&raw[start..i])
            .trim()
            .to_ascii_lowercase();
        let mut value = Vec::new();
        if i < raw.len() && raw[i] == b'=' {
            i += 1;
            while i < raw.len() && matches!(raw[i], b' ' | b'\t') {
                i += 1;
            }
            if i < raw.len() && raw[i] == b'"' {
                i += 1;
                while i < raw.len() && raw[i] != b'"' {
                    if raw[i] == b'\\' && i + 1 < raw.len() {
                        i += 1;
                    }
                    value.push(raw[i]);
                    i += 1;
                }
                i += 1; // closing quote
                while i < raw.len() && raw[i] != b';' {
                    i += 1;
                }
            } else {
                let vstart = i;
                while i < raw.len() && raw[i] != b';' {
                    i += 1;
                }
                value = raw[vstart..i].trim_ascii_end().to_vec();
            }
        }
        if !name.is_empty() {
            out.push((name, value));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_official_example_and_raw_utf8() {
        let p =
            disposition_params(b"form-data; name=\"media\";filename=\"wework.txt\"; filelength=6");
        assert_eq!(param(&p, "name").unwrap(), b"media");
        assert_eq!(param(&p, "filename").unwrap(), b"wework.txt");
        assert_eq!(param(&p, "filelength").unwrap(), b"6");
        let p =
            disposition_params("form-data; name=media; filename=\"测试 \\\"a\\\".png\"".as_bytes());
        assert_eq!(param(&p, "name").unwrap(), b"media");
        assert_eq!(param(&p, "filename").unwrap(), "测试 \"a\".png".as_bytes());
    }

    #[test]
    fn sees_extended_filename() {
        let p = disposition_params(b"form-data; name=\"media\"; FILENAME*=utf-8''%E6%B5%8B.png");
        assert!(p.iter().any(|(k, _)| k == "filename*"));
        assert!(param(&p, "filename").is_none());
    }
}
