//! Fixture tests: raw HTTP responses with their headers (`tests/fixtures/*.http`) fed to each
//! operation's parser, with the typed output or error asserted exactly.
//!
//! Fixture format: a status line (`HTTP/1.1 200 OK`), header lines `Name: value`, a blank
//! line, then the body. Lines may end in CRLF or LF. The body is everything after the blank
//! line, minus the one newline that ends the file (so a body can be written on its own line and
//! still match its `Content-Length`). Header values are taken as raw bytes
//! (`HeaderValue::from_bytes`), so raw UTF-8 filenames arrive as a server sends them.

use bytes::Bytes;
use wecom_material_core::download::content_range::ContentRange;
use wecom_material_core::error::ApiError;
use wecom_material_core::operation::Operation;
use wecom_material_core::ops::get_media::GetMedia;
use wecom_material_core::ops::get_media::MediaEndpoint;
use wecom_material_core::ops::get_media::MediaHead;
use wecom_material_core::ops::gettoken::GetToken;
use wecom_material_core::ops::upload_by_url::UploadByUrl;
use wecom_material_core::ops::upload_by_url_result::GetUploadByUrlResult;
use wecom_material_core::ops::upload_image::UploadImage;
use wecom_material_core::ops::upload_media::UploadMedia;
use wecom_material_core::{
    CorpSecret, DecodeError, ErrCode, Error, JobId, JobStatus, Limits, MediaId, MediaType,
    Uploaded, UploadedImage,
};

const SECRET: &str = "SeCrEt-0123+/=&value";
const TOKEN_IN_FIXTURE: &str = "TOKEN-accesstoken-XYZ";

/// Parses a raw HTTP response as described in the module docs.
fn parse_http(raw: &[u8]) -> http::Response<Vec<u8>> {
    let mut rest = raw;
    let mut next_line = || -> &[u8] {
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let line = &rest[..end];
        rest = &rest[(end + 1).min(rest.len())..];
        line.strip_suffix(b"\r").unwrap_or(line)
    };
    let status_line = std::str::from_utf8(next_line()).expect("ASCII status line");
    let mut words = status_line.split(' ');
    assert!(
        words.next().unwrap().starts_with("HTTP/1."),
        "{status_line}"
    );
    let status: u16 = words.next().unwrap().parse().expect("status code");
    let mut builder = http::Response::builder().status(status);
    loop {
        let line = next_line();
        if line.is_empty() {
            break;
        }
        let colon = line.iter().position(|&b| b == b':').expect("header line");
        let name = http::HeaderName::from_bytes(&line[..colon]).expect("header name");
        let value = line[colon + 1..].trim_ascii();
        let value = http::HeaderValue::from_bytes(value).expect("header value");
        builder = builder.header(name, value);
    }
    let body = rest
        .strip_suffix(b"\r\n")
        .or_else(|| rest.strip_suffix(b"\n"))
        .unwrap_or(rest);
    builder.body(body.to_vec()).unwrap()
}

fn fixture(name: &str) -> http::Response<Vec<u8>> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    parse_http(&raw)
}

/// Every error a fixture produced, for the secrets check.
fn no_secret_in(error: &Error) {
    for text in [format!("{error:?}"), format!("{error}")] {
        assert!(
            !text.contains(SECRET) && !text.contains(TOKEN_IN_FIXTURE),
            "{text}"
        );
    }
}

fn expect_err<T: std::fmt::Debug>(result: Result<T, Error>) -> Error {
    let error = result.expect_err("an error");
    no_secret_in(&error);
    error
}

fn upload_op(media_type: MediaType) -> UploadMedia {
    let (name, bytes): (&str, &[u8]) = match media_type {
        MediaType::Image => ("a.png", b"\x89PNG\r\n\x1a\n...."),
        MediaType::Voice => ("a.amr", b"#!AMR\n...."),
        MediaType::Video => ("a.mp4", b"....ftyp"),
        MediaType::File => ("a.txt", b"hello world"),
    };
    UploadMedia::from_bytes(
        media_type,
        name,
        Bytes::copy_from_slice(bytes),
        wecom_material_core::multipart::Boundary::from_entropy([7; 16]),
        &Limits::default(),
    )
    .unwrap()
}

fn get_media(media_id: &str) -> GetMedia {
    GetMedia::new(MediaEndpoint::Media, MediaId::new(media_id)).unwrap()
}

fn gettoken() -> GetToken {
    GetToken::new("ww0123456789abcdef", CorpSecret::new(SECRET))
}

fn job() -> GetUploadByUrlResult {
    GetUploadByUrlResult::new(JobId::new("jobid_1")).unwrap()
}

#[test]
fn loader_reads_crlf_and_raw_utf8_headers() {
    let raw = "HTTP/1.1 206 Partial Content\r\nContent-Disposition: attachment; filename=\"测试.xlsx\"\r\nX-Empty:\r\n\r\nbody\r\n";
    let response = parse_http(raw.as_bytes());
    assert_eq!(response.status(), 206);
    assert_eq!(
        response.headers()["content-disposition"].as_bytes(),
        "attachment; filename=\"测试.xlsx\"".as_bytes()
    );
    assert_eq!(response.headers()["x-empty"], "");
    assert_eq!(response.body(), b"body");
}

#[test]
fn upload_success_created_at_string_and_number() {
    let out = upload_op(MediaType::Image)
        .parse(fixture("upload_ok_created_at_string.http"))
        .unwrap();
    assert_eq!(
        out,
        Uploaded {
            media_type: MediaType::Image,
            media_id: MediaId::new("1G6nrLmr5EC3MMb_-zK1dDdzmd0p7cNliYu9V5w7o8K0"),
            created_at: 1_380_000_000,
            expires_at: 1_380_000_000 + 3 * 24 * 3600,
        }
    );
    let out = upload_op(MediaType::Voice)
        .parse(fixture("upload_ok_created_at_number.http"))
        .unwrap();
    assert_eq!(
        out,
        Uploaded {
            media_type: MediaType::Voice,
            media_id: MediaId::new("3ab_voice+/="),
            created_at: 1_380_000_000,
            expires_at: 1_380_259_200,
        }
    );
}

#[test]
fn upload_errcode_with_http_200() {
    let err = expect_err(upload_op(MediaType::Video).parse(fixture("upload_40005.http")));
    match err {
        Error::Api(ApiError { code, errmsg }) => {
            assert_eq!(code, ErrCode::InvalidFileType);
            assert!(errmsg.starts_with("invalid file type, hint: ["), "{errmsg}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn upload_truncated_json_is_a_decode_error() {
    let err = expect_err(upload_op(MediaType::Image).parse(fixture("upload_truncated_json.http")));
    match err {
        Error::Decode(DecodeError {
            status, excerpt, ..
        }) => {
            assert_eq!(status, 200);
            assert_eq!(
                excerpt,
                r#"{"errcode":0,"errmsg":"","type":"image","media_id":"1G6nrLmr5EC3M"#
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn html_502_from_a_proxy_is_a_decode_error_with_status_and_excerpt() {
    // Through a JSON endpoint …
    let err = expect_err(upload_op(MediaType::File).parse(fixture("media_502_html.http")));
    let Error::Decode(e) = err else {
        panic!("{err:?}")
    };
    assert_eq!(e.status, 502);
    assert!(
        e.excerpt
            .starts_with("<html> <head><title>502 Bad Gateway</title></head>"),
        "{:?}",
        e.excerpt
    );
    assert!(e.excerpt.len() <= 120 && !e.excerpt.contains('\n'));
    // … and through media/get, where the head is classified as an error first.
    let op = get_media("MEDIA_ID");
    let response = fixture("media_502_html.http");
    let (parts, _) = response.into_parts();
    assert_eq!(op.classify(&parts).unwrap(), MediaHead::Error);
    let err = expect_err(op.parse(fixture("media_502_html.http")));
    match err {
        Error::Decode(DecodeError {
            status: 502,
            excerpt,
            ..
        }) => assert!(excerpt.contains("502 Bad Gateway"), "{excerpt}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn media_error_json_with_application_json_and_text_plain() {
    for name in ["media_40007_json.http", "media_40007_text_plain.http"] {
        let op = get_media("expired");
        let (parts, _) = fixture(name).into_parts();
        assert_eq!(op.classify(&parts).unwrap(), MediaHead::Error, "{name}");
        let err = expect_err(op.parse(fixture(name)));
        match err {
            Error::Api(ApiError {
                code: ErrCode::InvalidMediaId,
                errmsg,
            }) => assert!(errmsg.starts_with("invalid media_id"), "{errmsg}"),
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn media_206_with_content_range() {
    let op = get_media("MEDIA_ID")
        .with_range(wecom_material_core::download::content_range::ByteRange {
            start: 0,
            end_inclusive: Some(9),
        })
        .unwrap();
    let media = op.parse(fixture("media_206_range.http")).unwrap();
    assert_eq!(&media.bytes[..], b"0123456789");
    let info = media.info;
    assert_eq!(info.status, 206);
    assert_eq!(info.content_type, "image/jpeg");
    assert_eq!(info.content_length, Some(10));
    assert_eq!(info.server_filename.as_deref(), Some("MEDIA_ID.jpg"));
    assert_eq!(info.filename, "MEDIA_ID.jpg");
    assert_eq!(
        info.content_range,
        Some(ContentRange::Bytes {
            first: 0,
            last: 9,
            complete: Some(2048)
        })
    );
    assert_eq!(info.total_len(), Some(2048));

    // The same answer to a request that did not ask for a range, or asked elsewhere, is refused.
    let err = expect_err(get_media("MEDIA_ID").parse(fixture("media_206_range.http")));
    assert!(matches!(
        err,
        Error::Decode(DecodeError { status: 206, .. })
    ));
    let elsewhere = get_media("MEDIA_ID")
        .with_range(wecom_material_core::download::content_range::ByteRange {
            start: 10,
            end_inclusive: Some(19),
        })
        .unwrap();
    let err = expect_err(elsewhere.parse(fixture("media_206_range.http")));
    assert!(matches!(
        err,
        Error::Decode(DecodeError { status: 206, .. })
    ));
}

#[test]
fn media_without_content_disposition_falls_back_to_media_id() {
    let media = get_media("3voice_id")
        .parse(fixture("media_no_disposition.http"))
        .unwrap();
    assert_eq!(media.info.server_filename, None);
    assert_eq!(media.info.filename, "3voice_id.amr");
    assert_eq!(media.info.content_type, "audio/amr");
    assert_eq!(&media.bytes[..], b"#!AMR\n<H...!");
    // A media id that is not a safe file name is sanitized in the fallback too.
    let media = get_media("../a/b")
        .parse(fixture("media_no_disposition.http"))
        .unwrap();
    assert_eq!(media.info.filename, "__a_b.amr");
}

#[test]
fn media_filename_forms() {
    let cases = [
        ("media_filename_both_forms.http", "测试.xlsx", "测试.xlsx"),
        (
            "media_filename_raw_utf8.http",
            "报告 2026.pdf",
            "报告 2026.pdf",
        ),
        (
            "media_filename_star_only.http",
            "视频 一.mp4",
            "视频 一.mp4",
        ),
        ("media_filename_traversal.http", "../../x", "____x"),
    ];
    for (name, server, safe) in cases {
        let media = get_media("M").parse(fixture(name)).unwrap();
        assert_eq!(
            media.info.server_filename.as_deref(),
            Some(server),
            "{name}"
        );
        assert_eq!(media.info.filename, safe, "{name}");
        assert_eq!(media.info.status, 200);
        assert_eq!(
            media.info.content_length,
            Some(media.bytes.len() as u64),
            "{name}"
        );
    }
}

#[test]
fn media_text_plain_with_attachment_is_media_not_an_error() {
    // `text/plain` alone means an error answer; with a Content-Disposition it is a text file.
    let media = get_media("M")
        .parse(fixture("media_filename_traversal.http"))
        .unwrap();
    assert_eq!(media.info.content_type, "text/plain");
    assert_eq!(&media.bytes[..], b"hello");
}

#[test]
fn gettoken_without_errcode_and_with_40001() {
    let grant = gettoken()
        .parse(fixture("gettoken_ok_without_errcode.http"))
        .unwrap();
    assert_eq!(grant.token.expose(), TOKEN_IN_FIXTURE);
    assert_eq!(grant.expires_in, std::time::Duration::from_secs(7200));
    let debug = format!("{grant:?}");
    assert!(!debug.contains(TOKEN_IN_FIXTURE), "{debug}");

    let err = expect_err(gettoken().parse(fixture("gettoken_40001.http")));
    match err {
        Error::Api(ApiError {
            code: ErrCode::InvalidCredential,
            errmsg,
        }) => assert!(errmsg.starts_with("invalid credential"), "{errmsg}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn rate_limit_and_unknown_codes_through_every_json_parser() {
    fn check<T: std::fmt::Debug>(parse: impl Fn(http::Response<Vec<u8>>) -> Result<T, Error>) {
        match expect_err(parse(fixture("rate_limited_45009.http"))) {
            Error::RateLimited(ApiError {
                code: ErrCode::RateLimited,
                errmsg,
            }) => assert_eq!(errmsg, "api freq out of limit"),
            other => panic!("{other:?}"),
        }
        match expect_err(parse(fixture("unknown_errcode.http"))) {
            Error::Api(ApiError {
                code: ErrCode::Other(987_654),
                errmsg,
            }) => assert_eq!(errmsg, "something new"),
            other => panic!("{other:?}"),
        }
    }
    check(|r| gettoken().parse(r));
    check(|r| upload_op(MediaType::File).parse(r));
    check(|r| uploadimg_op().parse(r));
    check(|r| get_media("M").parse(r));
    check(|r| upload_by_url_op().parse(r));
    check(|r| job().parse(r));
}

fn uploadimg_op() -> UploadImage {
    UploadImage::new(
        "a.jpg",
        wecom_material_core::body::Payload::Bytes(Bytes::from_static(b"\xff\xd8\xff\xe0 jpeg")),
        None,
        wecom_material_core::multipart::Boundary::from_entropy([1; 16]),
        &Limits::default(),
    )
    .unwrap()
}

fn upload_by_url_op() -> UploadByUrl {
    UploadByUrl::new(
        MediaType::File,
        "a.zip",
        "https://example.com/a.zip",
        "d41d8cd98f00b204e9800998ecf8427e",
        &Limits::default(),
        false,
    )
    .unwrap()
}

#[test]
fn uploadimg_and_upload_by_url_success() {
    assert_eq!(
        uploadimg_op().parse(fixture("uploadimg_ok.http")).unwrap(),
        UploadedImage {
            url: "http://p.qpic.cn/pic_wework/3474110808/7a7c8471673ff0f178f63447935d35a5c1247a7f31d9c060/0".into()
        }
    );
    assert_eq!(
        upload_by_url_op()
            .parse(fixture("upload_by_url_ok.http"))
            .unwrap()
            .jobid,
        JobId::new("jobid_S0MrnndvRG5fadSlLwiBqiDDbM143UqTmKP3152FZk4")
    );
}

#[test]
fn job_results() {
    assert_eq!(
        job().parse(fixture("job_processing.http")).unwrap(),
        JobStatus::Processing
    );
    for name in [
        "job_finished_created_at_string.http",
        "job_finished_created_at_number.http",
    ] {
        assert_eq!(
            job().parse(fixture(name)).unwrap(),
            JobStatus::Finished {
                media_id: MediaId::new("3*****"),
                created_at: 1_380_000_000,
                expires_at: 1_380_259_200,
            },
            "{name}"
        );
    }
    assert_eq!(
        job().parse(fixture("job_failed_301019.http")).unwrap(),
        JobStatus::Failed {
            errcode: ErrCode::Md5Mismatch,
            errmsg: "media md5 not match".into(),
        }
    );
    match expect_err(job().parse(fixture("job_outer_error.http"))) {
        Error::Api(ApiError {
            code: ErrCode::ApiForbidden,
            errmsg,
        }) => assert_eq!(errmsg, "api forbidden"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn operations_and_secrets_never_print_the_secret() {
    let op = gettoken();
    for text in [format!("{op:?}"), format!("{:?}", op.secret)] {
        assert!(!text.contains(SECRET), "{text}");
    }
    // The built gettoken request carries the secret (encoded) in its URI; the redacted view
    // for logs does not.
    let request = op.build(&wecom_material_core::BaseUrl::default());
    let shown = wecom_material_core::secret::RedactedUri(request.uri()).to_string();
    assert_eq!(
        shown,
        "https://qyapi.weixin.qq.com/cgi-bin/gettoken?corpid=ww0123456789abcdef&corpsecret=***"
    );
    let token = wecom_material_core::AccessToken::new(TOKEN_IN_FIXTURE).unwrap();
    let base = wecom_material_core::BaseUrl::default();
    let uris = [
        upload_op(MediaType::Image)
            .build(&base, &token)
            .uri()
            .clone(),
        uploadimg_op().build(&base, &token).uri().clone(),
        get_media("M").build(&base, &token).uri().clone(),
        upload_by_url_op().build(&base, &token).uri().clone(),
        job().build(&base, &token).uri().clone(),
    ];
    for uri in &uris {
        assert!(uri.to_string().contains(TOKEN_IN_FIXTURE));
        let shown = wecom_material_core::secret::RedactedUri(uri).to_string();
        assert!(
            !shown.contains(TOKEN_IN_FIXTURE) && shown.contains("access_token=***"),
            "{shown}"
        );
    }
    // Operations do not hold the token at all: their Debug cannot show it.
    let debug = format!(
        "{:?}{:?}{:?}{:?}{:?}",
        upload_op(MediaType::File),
        uploadimg_op(),
        get_media("M"),
        upload_by_url_op(),
        job()
    );
    assert!(!debug.contains(TOKEN_IN_FIXTURE) && !debug.contains(SECRET));
}

/// Issue 10: an error answer is recognised whatever its `Content-Type` (the one rule of
/// `ops::get_media`): octet-stream or no type with an error JSON body (the probe), and a media
/// type with a non-zero `Error-Code` header (the head alone).
#[test]
fn media_error_recognised_without_a_json_content_type() {
    for name in [
        "media_40007_octet_stream.http",
        "media_40007_no_content_type.http",
    ] {
        let op = get_media("expired");
        let response = fixture(name);
        let (parts, body) = response.into_parts();
        // The head alone cannot tell; the probe must read the body.
        assert!(
            matches!(op.classify(&parts).unwrap(), MediaHead::Media(_)),
            "{name}"
        );
        assert_eq!(
            GetMedia::probe_limit(&parts),
            Some(wecom_material_core::ops::get_media::PROBE_LIMIT)
        );
        assert_eq!(
            op.classify_probe(&parts, &body).unwrap(),
            MediaHead::Error,
            "{name}"
        );
        match expect_err(op.parse(fixture(name))) {
            Error::Api(ApiError {
                code: ErrCode::InvalidMediaId,
                errmsg,
            }) => assert!(errmsg.starts_with("invalid media_id"), "{errmsg}"),
            other => panic!("{name}: {other:?}"),
        }
    }
    let op = get_media("expired");
    let (parts, _) = fixture("media_error_code_header_40007.http").into_parts();
    assert_eq!(op.classify(&parts).unwrap(), MediaHead::Error);
    match expect_err(op.parse(fixture("media_error_code_header_40007.http"))) {
        Error::Api(e) => assert_eq!(e.code, ErrCode::InvalidMediaId),
        other => panic!("{other:?}"),
    }
}

/// `Error-Code: 0` on a media answer, and a JSON body with `errcode: 0`, are media.
#[test]
fn media_with_error_code_0_or_errcode_0_json_is_media() {
    let op = get_media("m");
    let (parts, body) = fixture("media_error_code_0_jpeg.http").into_parts();
    // Content-Disposition: the head decides, no probe.
    assert_eq!(GetMedia::probe_limit(&parts), None);
    let media = op.parse(fixture("media_error_code_0_jpeg.http")).unwrap();
    assert_eq!(media.bytes.as_ref(), body.as_slice());
    assert_eq!(media.info.filename, "photo.jpg");

    let (parts, body) = fixture("media_json_errcode_0_octet_stream.http").into_parts();
    assert_eq!(
        GetMedia::probe_limit(&parts),
        Some(wecom_material_core::ops::get_media::PROBE_LIMIT)
    );
    assert!(matches!(
        op.classify_probe(&parts, &body).unwrap(),
        MediaHead::Media(_)
    ));
    // No Content-Length (chunked): accepted, the whole body is the media.
    let media = op
        .parse(fixture("media_json_errcode_0_octet_stream.http"))
        .unwrap();
    assert_eq!(media.info.content_length, None);
    assert_eq!(media.bytes.as_ref(), body.as_slice());
}

/// The probe applies only to short answers without `Content-Disposition`.
#[test]
fn probe_limit_follows_content_length_and_disposition() {
    let head = |headers: &[(&str, &str)]| {
        let mut b = http::Response::builder().status(200);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    };
    let limit = Some(wecom_material_core::ops::get_media::PROBE_LIMIT);
    assert_eq!(GetMedia::probe_limit(&head(&[])), limit);
    assert_eq!(
        GetMedia::probe_limit(&head(&[("content-length", "65536")])),
        limit
    );
    assert_eq!(
        GetMedia::probe_limit(&head(&[("content-length", "65537")])),
        None
    );
    assert_eq!(
        GetMedia::probe_limit(&head(&[
            ("content-length", "10"),
            ("content-disposition", "attachment; filename=\"a.json\"")
        ])),
        None
    );
    // An error object longer than the probe reads is media (the head said so).
    let op = get_media("m");
    let big = head(&[("content-length", "70000")]);
    assert!(matches!(
        op.classify_probe(&big, br#"{"errcode":40007}"#).unwrap(),
        MediaHead::Media(_)
    ));
    // An unreadable Error-Code is an error, never media.
    assert_eq!(
        op.classify(&head(&[("error-code", "x")])).unwrap(),
        MediaHead::Error
    );
}

/// Issue 10: a proxy page that echoes the request URL does not put the token (or an AES key)
/// into the error's excerpt, whichever parser reads it.
#[test]
fn proxy_page_echoing_the_url_keeps_the_token_out_of_the_error() {
    let errors = [
        get_media("m1")
            .parse(fixture("proxy_502_echoes_url.http"))
            .unwrap_err(),
        upload_op(MediaType::File)
            .parse(fixture("proxy_502_echoes_url.http"))
            .unwrap_err(),
        job()
            .parse(fixture("proxy_502_echoes_url.http"))
            .unwrap_err(),
    ];
    for error in errors {
        let text = format!("{error} {error:?}");
        assert!(!text.contains("TOKEN-accesstoken-XYZ"), "{text}");
        assert!(
            !text.contains("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGk"),
            "{text}"
        );
        match error {
            Error::Decode(DecodeError {
                status: 502,
                excerpt,
                ..
            }) => {
                assert!(
                    excerpt.contains("access_token=***&media_id=m1"),
                    "{excerpt}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
}

/// Issue 10: `"created_at": ""` or `null` while a job is processing or after it failed parses;
/// a finished job still needs it.
#[test]
fn job_answers_with_empty_or_null_created_at() {
    assert_eq!(
        job()
            .parse(fixture("job_processing_created_at_empty.http"))
            .unwrap(),
        JobStatus::Processing
    );
    assert_eq!(
        job()
            .parse(fixture("job_failed_created_at_null.http"))
            .unwrap(),
        JobStatus::Failed {
            errcode: ErrCode::UrlDownloadFailed,
            errmsg: "download failed".into(),
        }
    );
    let finished_without = http::Response::builder()
        .status(200)
        .body(
            br#"{"errcode":0,"status":2,"detail":{"errcode":0,"media_id":"m","created_at":""}}"#
                .to_vec(),
        )
        .unwrap();
    assert!(matches!(
        expect_err(job().parse(finished_without)),
        Error::Decode(_)
    ));
    let bad_text = http::Response::builder()
        .status(200)
        .body(
            br#"{"errcode":0,"status":2,"detail":{"errcode":0,"media_id":"m","created_at":"soon"}}"#
                .to_vec(),
        )
        .unwrap();
    assert!(matches!(
        expect_err(job().parse(bad_text)),
        Error::Decode(_)
    ));
}
