//! `GET /cgi-bin/media/get` and `/cgi-bin/media/get/jssdk` (SPEC §4, §5), and the plain file
//! URLs the emulator serves (`uploadimg` images, `serve_file` files).
//!
//! - Errors are JSON with HTTP 200: 41006 missing media_id, 40007 unknown or expired media
//!   (content type per [`crate::ErrorContentType`]).
//! - Success: `Content-Type`, `Content-Length`, `Accept-Ranges: bytes` and
//!   `Content-Disposition: attachment; filename*=utf-8''<pct-encoded>; filename="<raw UTF-8>"`.
//! - `Range: bytes=a-b`, `a-`, `-n` → 206 with `Content-Range: bytes a-b/total`; an end past
//!   the file is clamped to the last byte. A start at or past the end (or `-0`, or any range of
//!   an empty file) → **416** with `Content-Range: bytes */total` and an empty body (the
//!   emulator's choice: HTTP semantics; WeCom's own answer is undocumented). A malformed or
//!   multi-range header is ignored, as RFC 9110 allows.
//! - Media over `max_download_chunk` (20,000,000 bytes) without Range, or a Range chunk larger
//!   than that → 830002 as JSON with HTTP 200. Plain file URLs have no such limit.
//! - `get/jssdk` serves voice as `Content-Type: voice/speex` (the bytes are the stored ones:
//!   the emulator does not transcode) and other media as `get` does.
//! - With `max_concurrent_per_media` = K, a `media/get` of a media id that already has K
//!   answers in flight (until their bodies end) answers 45033 and is counted.
//! - Bodies go out at the bandwidth setting, if any (per connection: one answer at a time).
//! - Bodies are `Bytes::slice`s of the stored file: no copy per request.

use bytes::Bytes;
use http::header::{
    ACCEPT_RANGES, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE,
};
use http::{HeaderValue, Response, StatusCode};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::{Ctx, status_response};
use crate::body::MockBody;
use crate::config::MediaKind;
use crate::state::{InFlight, ServedFile};

/// RFC 8187 `attr-char`s stay as they are; everything else is percent-encoded.
const ATTR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

pub(crate) fn media_get(ctx: &Ctx, jssdk: bool) -> Response<MockBody> {
    let app = match ctx.app() {
        Ok(app) => app,
        Err(resp) => return *resp,
    };
    let media_id = match ctx.query("media_id") {
        Some(id) if !id.is_empty() => id,
        _ => return ctx.error(41006),
    };
    let corp_id = ctx.corp_id(app);
    let Some(media) = ctx.state.live_media(&media_id, Some(&corp_id)) else {
        return ctx.error(40007);
    };
    let content_type = if jssdk && media.kind == MediaKind::Voice {
        "voice/speex".to_owned()
    } else {
        media.content_type.clone()
    };
    let disposition = content_disposition(&media.filename);
    let guard = if jssdk {
        None
    } else {
        match ctx.state.enter_media(&media_id) {
            Some(guard) => guard,
            None => return ctx.error(45033),
        }
    };
    serve(
        ctx,
        media.bytes,
        &content_type,
        disposition,
        Some(ctx.state.rules().limits.max_download_chunk),
        guard,
    )
}

/// A file registered under `prefix` (uploadimg images or served files); 404 if unknown.
pub(crate) fn plain_file(ctx: &Ctx, file: Option<ServedFile>) -> Response<MockBody> {
    let Some(file) = file else {
        return status_response(StatusCode::NOT_FOUND);
    };
    if file.range_support {
        serve(ctx, file.bytes, &file.content_type, None, None, None)
    } else {
        full(ctx, file.bytes, &file.content_type, None, false, None)
    }
}

fn serve(
    ctx: &Ctx,
    bytes: Bytes,
    content_type: &str,
    disposition: Option<HeaderValue>,
    max_chunk: Option<u64>,
    guard: Option<InFlight>,
) -> Response<MockBody> {
    let total = bytes.len() as u64;
    let range = ctx
        .parts
        .headers
        .get(RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| parse_range(v, total))
        .unwrap_or(RangeReq::Ignore);
    match range {
        RangeReq::Ignore => {
            if max_chunk.is_some_and(|m| total > m) {
                return ctx.error(830002);
            }
            full(ctx, bytes, content_type, disposition, true, guard)
        }
        RangeReq::Unsatisfiable => {
            let mut r = status_response(StatusCode::RANGE_NOT_SATISFIABLE);
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{total}")) {
                r.headers_mut().insert(CONTENT_RANGE, v);
            }
            r
        }
        RangeReq::Range(start, end) => {
            let len = end - start + 1;
            if max_chunk.is_some_and(|m| len > m) {
                return ctx.error(830002);
            }
            let slice = bytes.slice(start as usize..=end as usize);
            let mut r = head(StatusCode::PARTIAL_CONTENT, content_type, len, disposition);
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{total}")) {
                r.headers_mut().insert(CONTENT_RANGE, v);
            }
            *r.body_mut() = ctx.body(slice, guard);
            r
        }
    }
}

fn full(
    ctx: &Ctx,
    bytes: Bytes,
    content_type: &str,
    disposition: Option<HeaderValue>,
    accept_ranges: bool,
    guard: Option<InFlight>,
) -> Response<MockBody> {
    let mut r = head(
        StatusCode::OK,
        content_type,
        bytes.len() as u64,
        disposition,
    );
    if !accept_ranges {
        r.headers_mut().remove(ACCEPT_RANGES);
    }
    *r.body_mut() = ctx.body(bytes, guard);
    r
}

fn head(
    status: StatusCode,
    content_type: &str,
    len: u64,
    disposition: Option<HeaderValue>,
) -> Response<MockBody> {
    let mut r = Response::new(MockBody::empty());
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(CONTENT_LENGTH, len.into());
    h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(d) = disposition {
        h.insert(CONTENT_DISPOSITION, d);
    }
    r
}

/// `attachment; filename*=utf-8''<pct>; filename="<raw UTF-8>"`, as the real server sends for
/// non-ASCII names. Control characters become `_`; `"` and `\` are backslash-escaped.
pub(crate) fn content_disposition(filename: &str) -> Option<HeaderValue> {
    let mut raw = Vec::with_capacity(filename.len() + 64);
    raw.extend_from_slice(b"attachment; filename*=utf-8''");
    raw.extend_from_slice(utf8_percent_encode(filename, ATTR).to_string().as_bytes());
    raw.extend_from_slice(b"; filename=\"");
    for &b in filename.as_bytes() {
        match b {
            b'"' | b'\\' => {
                raw.push(b'\\');
                raw.push(b);
            }
            0..=0x1f | 0x7f => raw.push(b'_'),
            _ => raw.push(b),
        }
    }
    raw.push(b'"');
    HeaderValue::from_bytes(&raw).ok()
}

/// A parsed `Range` header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RangeReq {
    /// No usable range: serve the whole file.
    Ignore,
    /// 416.
    Unsatisfiable,
    /// Inclusive byte positions, within the file.
    Range(u64, u64),
}

pub(crate) fn parse_range(value: &str, total: u64) -> RangeReq {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeReq::Ignore;
    };
    if spec.contains(',') {
        return RangeReq::Ignore;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeReq::Ignore;
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    if a.is_empty() {
        let Some(n) = num(b) else {
            return RangeReq::Ignore;
        };
        if n == 0 || total == 0 {
            return RangeReq::Unsatisfiable;
        }
        return RangeReq::Range(total.saturating_sub(n), total - 1);
    }
    let Some(start) = num(a) else {
        return RangeReq::Ignore;
    };
    let end = if b.is_empty() {
        None
    } else {
        match num(b) {
            Some(e) if e >= start => Some(e),
            _ => return RangeReq::Ignore,
        }
    };
    if start >= total {
        return RangeReq::Unsatisfiable;
    }
    RangeReq::Range(start, end.unwrap_or(total - 1).min(total - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_forms() {
        assert_eq!(parse_range("bytes=0-9", 100), RangeReq::Range(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), RangeReq::Range(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), RangeReq::Range(90, 99));
        assert_eq!(parse_range("bytes=-1000", 100), RangeReq::Range(0, 99));
        assert_eq!(parse_range("bytes=50-1000", 100), RangeReq::Range(50, 99));
        assert_eq!(parse_range("bytes=100-", 100), RangeReq::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), RangeReq::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-0", 0), RangeReq::Unsatisfiable);
        assert_eq!(parse_range("bytes=9-3", 100), RangeReq::Ignore);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), RangeReq::Ignore);
        assert_eq!(parse_range("items=0-1", 100), RangeReq::Ignore);
        assert_eq!(parse_range("bytes=x-1", 100), RangeReq::Ignore);
    }

    #[test]
    fn disposition_has_both_forms() {
        let v = content_disposition("测试 \"q\".xlsx").unwrap();
        let expected = "attachment; filename*=utf-8''%E6%B5%8B%E8%AF%95%20%22q%22.xlsx; filename=\"测试 \\\"q\\\".xlsx\"";
        assert_eq!(v.as_bytes(), expected.as_bytes());
    }
}
