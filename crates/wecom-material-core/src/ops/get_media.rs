//! `GET /cgi-bin/media/get` and `GET /cgi-bin/media/get/jssdk` (HD voice): fetch temporary
//! media, whole or by `Range` (SPEC §4, §5).
//!
//! The answer is the file, or a JSON error — usually with HTTP 200, and not always with a JSON
//! `Content-Type`. The head is classified with [`GetMedia::classify`] before any body byte is
//! treated as the file, so an error is never saved as media.
//!
//! # The one rule: when is a download answer an error?
//!
//! A download answer is an **error** when any of these holds:
//!
//! 1. the status is neither 200 nor 206;
//! 2. the `Content-Type` is JSON, `text/plain` or `text/html` and there is no
//!    `Content-Disposition` (a text file sent as an attachment is media);
//! 3. the `Error-Code` header is present and is not `0` (WeCom sets it on error answers,
//!    whatever their `Content-Type`; an unreadable value counts as non-zero);
//! 4. *decided after reading the body:* the head has no `Content-Disposition`, the body is at
//!    most [`PROBE_LIMIT`] bytes (its `Content-Length` says so, or there is none), and the
//!    body is a WeCom error object — a JSON object whose `errcode` is a non-zero integer.
//!
//! A media answer must not be content-coded: requests say `Accept-Encoding: identity`, and
//! a media head with any other `Content-Encoding` (`gzip`, `br`, …) is a decode error — the
//! bytes are never saved still compressed, and never decompressed either.
//!
//! Rules 1–3 need the head only: [`GetMedia::classify`]. Rule 4 is the *probe*: when
//! [`GetMedia::probe_limit`] returns `Some(n)`, a transport buffers up to `n` body bytes
//! before it writes anything, and [`GetMedia::classify_probe`] gives the final verdict. An
//! answer longer than `n` bytes is media (its first bytes are then written first). The
//! in-memory [`Operation::parse`] applies all four rules.
//!
//! ```text
//!   head ─ classify ─▶ Error ─────────────────────────────▶ read ≤ MAX_JSON_RESPONSE, parse
//!                 └──▶ Media ─ probe_limit ─▶ None ───────▶ stream the body
//!                                        └──▶ Some(n) ─ read ≤ n bytes ─ classify_probe
//!                                                            ├─▶ Error: parse the bytes
//!                                                            └─▶ Media: write them, stream on
//! ```

use bytes::Bytes;

use crate::api_json::api_error;
use crate::body::Body;
use crate::download::content_disposition::{
    extension_for_content_type, filename_from_content_disposition, sanitize_filename,
};
use crate::download::content_range::{ByteRange, ContentRange};
use crate::endpoint::BaseUrl;
use crate::error::{DecodeError, Error, Invalid};
use crate::media_type::MediaId;
use crate::operation::Operation;
use crate::secret::AccessToken;

/// The largest body the probe (rule 4 of the [module docs](self)) reads before deciding: 64 KiB.
/// WeCom's error objects are a few hundred bytes.
pub const PROBE_LIMIT: usize = 64 * 1024;

/// The response header WeCom sets to the errcode of an error answer.
pub const ERROR_CODE_HEADER: &str = "error-code";

/// Which download endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaEndpoint {
    /// `media/get`: any temporary media.
    Media,
    /// `media/get/jssdk`: HD voice (speex 16 kHz) uploaded by the JS-SDK.
    HdVoice,
}

impl MediaEndpoint {
    /// The path.
    pub fn path(self) -> &'static str {
        match self {
            MediaEndpoint::Media => "/cgi-bin/media/get",
            MediaEndpoint::HdVoice => "/cgi-bin/media/get/jssdk",
        }
    }
}

/// One download request, optionally for a byte range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetMedia {
    endpoint: MediaEndpoint,
    media_id: MediaId,
    range: Option<ByteRange>,
}

/// What the response head says about the media.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaInfo {
    /// HTTP status (200, or 206 for a range).
    pub status: u16,
    /// `Content-Type`, or `application/octet-stream` when absent.
    pub content_type: String,
    /// `Content-Length` of this response's body.
    pub content_length: Option<u64>,
    /// The filename as the server sent it, decoded but not sanitized (for display only).
    pub server_filename: Option<String>,
    /// A name safe to create in a directory: the server's name sanitized, else the media id
    /// with an extension from the content type.
    pub filename: String,
    /// The `Content-Range` of a 206 answer.
    pub content_range: Option<ContentRange>,
}

impl MediaInfo {
    /// The size of the whole media, when the head tells it.
    pub fn total_len(&self) -> Option<u64> {
        match self.content_range {
            Some(range) => range.complete(),
            None if self.status == 200 => self.content_length,
            None => None,
        }
    }
}

/// The verdict on a response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaHead {
    /// The body is the media: stream it.
    Media(MediaInfo),
    /// The body is an error answer: read it (bounded) and pass the response to `parse`.
    Error,
}

/// A whole media in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// What the head said.
    pub info: MediaInfo,
    /// The bytes.
    pub bytes: Bytes,
}

impl GetMedia {
    /// A request for the whole media (or an error 830002 when it is too large).
    /// The id is checked first ([`MediaId::validate`]).
    pub fn new(endpoint: MediaEndpoint, media_id: MediaId) -> Result<Self, Invalid> {
        media_id.validate()?;
        Ok(Self {
            endpoint,
            media_id,
            range: None,
        })
    }

    /// The same request for `range` only.
    pub fn with_range(mut self, range: ByteRange) -> Result<Self, Invalid> {
        if range.end_inclusive.is_some_and(|end| end < range.start) {
            return Err(Invalid::BadRange {
                reason: format!("{range} ends before it starts"),
            });
        }
        self.range = Some(range);
        Ok(self)
    }

    /// The media id.
    pub fn media_id(&self) -> &MediaId {
        &self.media_id
    }

    /// The requested range.
    pub fn range(&self) -> Option<ByteRange> {
        self.range
    }

    /// Decides from the head alone whether the body is media or an error, and checks that a
    /// media answer fits the request (a 206 must start where asked).
    pub fn classify(&self, head: &http::response::Parts) -> Result<MediaHead, Error> {
        let status = head.status.as_u16();
        let headers = &head.headers;
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned());
        let disposition = headers.get(http::header::CONTENT_DISPOSITION);
        let essence = content_type.as_deref().and_then(media_essence);
        // A JSON or plain-text answer without an attachment header is WeCom's error form,
        // whatever the status; so is anything that is not 200/206.
        let error_type = matches!(
            essence.as_deref(),
            Some("application/json" | "text/plain" | "text/html")
        );
        if !(status == 200 || status == 206)
            || (error_type && disposition.is_none())
            || error_code_header(headers).is_some_and(|code| code != 0)
        {
            return Ok(MediaHead::Error);
        }
        // `Accept-Encoding: identity` was sent: a coded body would be saved still coded.
        if let Some(coding) = headers.get(http::header::CONTENT_ENCODING) {
            let coding = String::from_utf8_lossy(coding.as_bytes());
            let coding = coding.trim();
            if !coding.eq_ignore_ascii_case("identity") {
                let reason = format!(
                    "media sent with Content-Encoding {:?}; only identity was accepted",
                    crate::printable::escape_for_terminal(coding)
                );
                return Err(DecodeError::new(status, reason, b"").into());
            }
        }
        let content_length = match headers.get(http::header::CONTENT_LENGTH) {
            None => None,
            Some(v) => Some(
                std::str::from_utf8(v.as_bytes())
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .ok_or_else(|| DecodeError::new(status, "malformed Content-Length", b""))?,
            ),
        };
        let content_range = match headers.get(http::header::CONTENT_RANGE) {
            None => None,
            Some(v) => Some(ContentRange::parse(v.as_bytes()).ok_or_else(|| {
                DecodeError::new(status, "malformed Content-Range", v.as_bytes())
            })?),
        };
        self.check_range(status, content_length, content_range)?;
        let server_filename =
            disposition.and_then(|v| filename_from_content_disposition(v.as_bytes()));
        let content_type = content_type.unwrap_or_else(|| "application/octet-stream".to_owned());
        let filename = server_filename
            .as_deref()
            .and_then(sanitize_filename)
            .unwrap_or_else(|| self.fallback_filename(&content_type));
        Ok(MediaHead::Media(MediaInfo {
            status,
            content_type,
            content_length,
            server_filename,
            filename,
            content_range,
        }))
    }

    /// How many body bytes to read before deciding (rule 4 of the [module docs](self)):
    /// `Some(PROBE_LIMIT)` when the head has no `Content-Disposition` and its
    /// `Content-Length` is at most [`PROBE_LIMIT`] or absent; `None` when the head alone
    /// decides. Call it on a head that [`GetMedia::classify`] found to be media.
    pub fn probe_limit(head: &http::response::Parts) -> Option<usize> {
        let headers = &head.headers;
        if headers.contains_key(http::header::CONTENT_DISPOSITION) {
            return None;
        }
        match headers.get(http::header::CONTENT_LENGTH) {
            None => Some(PROBE_LIMIT),
            Some(v) => std::str::from_utf8(v.as_bytes())
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .filter(|&len| len <= PROBE_LIMIT as u64)
                .map(|_| PROBE_LIMIT),
        }
    }

    /// The verdict on a head and the first body bytes (all of them when the body is at most
    /// [`GetMedia::probe_limit`] long): [`MediaHead::Error`] when the head is an error
    /// ([`GetMedia::classify`]) or when the probe applies and `body` is a WeCom error object
    /// (a JSON object with a non-zero integer `errcode`); else the media head.
    pub fn classify_probe(
        &self,
        head: &http::response::Parts,
        body: &[u8],
    ) -> Result<MediaHead, Error> {
        let verdict = self.classify(head)?;
        match verdict {
            MediaHead::Media(_)
                if Self::probe_limit(head).is_some_and(|limit| body.len() <= limit)
                    && is_error_object(body) =>
            {
                Ok(MediaHead::Error)
            }
            other => Ok(other),
        }
    }

    fn check_range(
        &self,
        status: u16,
        content_length: Option<u64>,
        content_range: Option<ContentRange>,
    ) -> Result<(), Error> {
        let fail = |reason: String| Err(DecodeError::new(status, reason, b"").into());
        match (self.range, status, content_range) {
            (_, 206, Some(ContentRange::Bytes { first, last, .. })) => {
                let Some(asked) = self.range else {
                    return fail("206 for a request without Range".into());
                };
                if first != asked.start {
                    return fail(format!("asked for {asked}, got bytes from {first}"));
                }
                if asked.end_inclusive.is_some_and(|end| last > end) {
                    return fail(format!("asked for {asked}, got bytes up to {last}"));
                }
                if content_length.is_some_and(|len| len != last - first + 1) {
                    return fail("Content-Length disagrees with Content-Range".into());
                }
                Ok(())
            }
            (_, 206, _) => fail("206 without a byte Content-Range".into()),
            // A server that ignores Range sends the whole file: usable only from byte 0.
            (Some(asked), 200, _) if asked.start != 0 => fail(format!(
                "asked for {asked}, the server sent the whole media"
            )),
            _ => Ok(()),
        }
    }

    fn fallback_filename(&self, content_type: &str) -> String {
        let stem = sanitize_filename(self.media_id.as_str()).unwrap_or_else(|| "media".to_owned());
        match extension_for_content_type(content_type) {
            Some(ext) => format!("{stem}.{ext}"),
            None => stem,
        }
    }
}

/// The lowercase `type/subtype` of a `Content-Type` value, parsed with `mime` (parameters and
/// their quoting are its business); `None` for a value that is not a media type.
pub(crate) fn media_essence(content_type: &str) -> Option<String> {
    content_type
        .parse::<mime::Mime>()
        .ok()
        .map(|m| m.essence_str().to_ascii_lowercase())
}

/// The value of the `Error-Code` header: `None` when absent, `Some(0)` for `0`, and
/// `Some(-1)` for a value that is not an integer (counted as an error).
fn error_code_header(headers: &http::HeaderMap) -> Option<i64> {
    let value = headers.get(ERROR_CODE_HEADER)?;
    Some(
        std::str::from_utf8(value.as_bytes())
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or(-1),
    )
}

/// Whether `body` is a WeCom error object: a JSON object whose `errcode` is a non-zero
/// integer. Anything else (media bytes, `errcode: 0`, a string `errcode`) is not.
pub fn is_error_object(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe {
        errcode: i64,
    }
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    first == Some(&b'{') && serde_json::from_slice::<Probe>(body).is_ok_and(|p| p.errcode != 0)
}

/// Reads an error answer whose head is at hand: a JSON errcode in the body wins; else a
/// non-zero `Error-Code` header gives the API error; else [`parse_error_body`].
pub fn error_answer(head: &http::response::Parts, body: &[u8]) -> Error {
    let status = head.status.as_u16();
    let parsed = parse_error_body(status, body);
    match (&parsed, error_code_header(&head.headers)) {
        (Error::Decode(_), Some(code)) if code != 0 => api_error(code, String::new()),
        _ => parsed,
    }
}

/// Reads an error answer of a download endpoint: a JSON errcode becomes an API error; anything
/// else (an HTML page from a proxy, an empty body) a decode error with the status.
pub fn parse_error_body(status: u16, body: &[u8]) -> Error {
    #[derive(serde::Deserialize)]
    struct ErrorAnswer {
        errcode: i64,
        #[serde(default)]
        errmsg: String,
    }
    match serde_json::from_slice::<ErrorAnswer>(body) {
        Ok(answer) if answer.errcode != 0 => api_error(answer.errcode, answer.errmsg),
        Ok(_) => DecodeError::new(status, "errcode 0 where media was expected", body).into(),
        Err(_) => DecodeError::new(status, "neither media nor a JSON error", body).into(),
    }
}

impl Operation for GetMedia {
    type Output = Media;
    const NAME: &'static str = "media/get";
    const KIND: crate::error::OperationKind = crate::error::OperationKind::Download;

    fn build(&self, base: &BaseUrl, token: &AccessToken) -> http::Request<Body> {
        let uri = base.uri(
            self.endpoint.path(),
            &[
                ("access_token", token.expose()),
                ("media_id", self.media_id.as_str()),
            ],
        );
        // The media is saved byte for byte: no content coding is accepted (an answer that
        // uses one anyway is a decode error, see `classify`).
        let mut headers = vec![(http::header::ACCEPT_ENCODING, "identity".to_owned())];
        headers.extend(self.range.map(|r| (http::header::RANGE, r.header_value())));
        crate::endpoint::request(http::Method::GET, uri, &headers, Body::Empty)
    }

    /// Reads a complete response held in memory, applying every rule of the
    /// [module docs](self) (transports that stream use [`GetMedia::classify`] and the probe).
    fn parse<B: AsRef<[u8]>>(&self, response: http::Response<B>) -> Result<Media, Error> {
        let (parts, body) = response.into_parts();
        let body = body.as_ref();
        match self.classify_probe(&parts, body)? {
            MediaHead::Error => Err(error_answer(&parts, body)),
            MediaHead::Media(info) => {
                if let Some(expected) = info.content_length
                    && expected != body.len() as u64
                {
                    return Err(DecodeError::new(
                        info.status,
                        format!(
                            "body is {} bytes, Content-Length says {expected}",
                            body.len()
                        ),
                        b"",
                    )
                    .into());
                }
                Ok(Media {
                    info,
                    bytes: Bytes::copy_from_slice(body),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `Error-Code` header that is not an integer counts as -1 (busy: retried), and one
    /// of `0` is no error code at all.
    #[test]
    fn a_garbled_error_code_header_counts_as_busy() {
        let answer = |header: &str| {
            let head = http::Response::builder()
                .status(200)
                .header(ERROR_CODE_HEADER, header)
                .body(())
                .unwrap()
                .into_parts()
                .0;
            error_answer(&head, b"<html>gateway</html>")
        };
        let busy = answer("nonsense");
        assert!(
            matches!(&busy, Error::Api(e) if e.code == crate::ErrCode::from_code(-1)),
            "{busy:?}"
        );
        let zero = answer("0");
        assert!(matches!(zero, Error::Decode(_)), "{zero:?}");
        let code = answer(" 40007 ");
        assert!(
            matches!(&code, Error::Api(e) if e.code == crate::ErrCode::from_code(40007)),
            "{code:?}"
        );
    }

    /// A range of one byte (`5-5`) is a range; one that ends before it starts is refused.
    #[test]
    fn a_one_byte_range_is_valid_and_a_reversed_one_is_not() {
        let get = || GetMedia::new(MediaEndpoint::Media, MediaId::new("m")).unwrap();
        let range = |end| ByteRange {
            start: 5,
            end_inclusive: Some(end),
        };
        let token = AccessToken::new("t").unwrap();
        let request = get()
            .with_range(range(5))
            .unwrap()
            .build(&BaseUrl::default(), &token);
        assert_eq!(request.headers()["range"], "bytes=5-5");
        assert!(matches!(
            get().with_range(range(4)),
            Err(Invalid::BadRange { .. })
        ));
    }

    #[test]
    fn content_type_essence_ignores_parameters_and_case() {
        assert_eq!(
            media_essence("application/json; charset=utf-8").as_deref(),
            Some("application/json")
        );
        assert_eq!(
            media_essence("Text/Plain;charset=\"UTF-8\"").as_deref(),
            Some("text/plain")
        );
        assert_eq!(media_essence("not a type"), None);
    }

    /// A gzip answer used to be saved as the compressed bytes, exit 0.
    #[test]
    fn media_with_a_content_coding_is_a_decode_error_and_identity_is_asked() {
        let request = GetMedia::new(MediaEndpoint::Media, MediaId::new("m")).unwrap();
        let built = request.build(&BaseUrl::default(), &AccessToken::new("t").unwrap());
        assert_eq!(built.headers()["accept-encoding"], "identity");
        for (coding, ok) in [
            ("gzip", false),
            ("br", false),
            (" GZIP ", false),
            ("identity", true),
            ("Identity", true),
        ] {
            let (head, ()) = http::Response::builder()
                .status(200)
                .header("content-type", "application/octet-stream")
                .header("content-disposition", "attachment; filename=\"a.bin\"")
                .header("content-encoding", coding)
                .header("content-length", "10")
                .body(())
                .unwrap()
                .into_parts();
            match request.classify(&head) {
                Ok(MediaHead::Media(_)) if ok => {}
                Err(Error::Decode(e)) if !ok => {
                    assert!(e.reason.contains("Content-Encoding"), "{e}");
                    assert!(e.reason.contains(coding.trim()), "{e}");
                }
                other => panic!("{coding}: {other:?}"),
            }
        }
    }

    #[test]
    fn json_error_with_parameters_is_classified_as_error_even_on_200() {
        let request = GetMedia::new(MediaEndpoint::Media, MediaId::new("m")).unwrap();
        let (head, ()) = http::Response::builder()
            .status(200)
            .header("content-type", "application/json; charset=UTF-8")
            .body(())
            .unwrap()
            .into_parts();
        assert_eq!(request.classify(&head).unwrap(), MediaHead::Error);
    }

    use crate::machinery_tests::download_plan_edges::head;

    /// An error answer is an API error only when it carries a non-zero code, in the body or
    /// in the `Error-Code` header; `errcode: 0` or `Error-Code: 0` where media was due is a
    /// decode error, never "API error 0".
    #[test]
    fn only_a_non_zero_code_makes_an_api_error() {
        let api = |e: Error| e.errcode().map(crate::ErrCode::code);
        let html = b"<html>bad gateway</html>";
        assert_eq!(api(error_answer(&head(502, &[]), html)), None);
        assert_eq!(
            api(error_answer(&head(200, &[("error-code", "0")]), html)),
            None
        );
        assert_eq!(
            api(error_answer(&head(200, &[("error-code", "40007")]), html)),
            Some(40007)
        );
        let zero = br#"{"errcode":0,"errmsg":"ok"}"#;
        let error = parse_error_body(200, zero);
        assert!(
            matches!(&error, Error::Decode(d) if d.to_string().contains("errcode 0 where media was expected")),
            "{error:?}"
        );
        assert_eq!(
            api(error_answer(&head(200, &[("error-code", "0")]), zero)),
            None
        );
        let coded = br#"{"errcode":40007,"errmsg":"invalid media_id"}"#;
        assert_eq!(api(parse_error_body(200, coded)), Some(40007));
        // The body's code wins over the header's.
        let both = error_answer(&head(200, &[("error-code", "45009")]), coded);
        assert_eq!(api(both), Some(40007));
    }

    /// A 200 to a Range request is the whole media: usable when the range started at byte
    /// 0, a decode error otherwise (its bytes would land at the wrong offset).
    #[test]
    fn a_whole_answer_to_a_range_is_usable_only_from_byte_zero() {
        let media = [
            ("content-type", "application/octet-stream"),
            ("content-disposition", "attachment; filename=\"a.bin\""),
            ("content-length", "10"),
        ];
        let request = |start| {
            GetMedia::new(MediaEndpoint::Media, MediaId::new("m"))
                .unwrap()
                .with_range(ByteRange {
                    start,
                    end_inclusive: Some(start + 4),
                })
                .unwrap()
        };
        assert!(matches!(
            request(0).classify(&head(200, &media)),
            Ok(MediaHead::Media(_))
        ));
        let error = request(5).classify(&head(200, &media)).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("the server sent the whole media"),
            "{error}"
        );
    }
}
