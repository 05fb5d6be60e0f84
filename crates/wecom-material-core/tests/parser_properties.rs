//! Property tests for the parsers: none of them panics on any input, and the header parsers
//! read back exactly what a well-formed header holds.

use bytes::Bytes;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use proptest::prelude::*;
use wecom_material_core::download::content_disposition::{
    MAX_FILENAME_BYTES, filename_from_content_disposition, sanitize_filename,
};
use wecom_material_core::download::content_range::ByteRange;
use wecom_material_core::download::content_range::ContentRange;
use wecom_material_core::multipart::Boundary;
use wecom_material_core::multipart::escape_filename;
use wecom_material_core::operation::Operation;
use wecom_material_core::ops::get_media::GetMedia;
use wecom_material_core::ops::get_media::MediaEndpoint;
use wecom_material_core::ops::gettoken::GetToken;
use wecom_material_core::ops::upload_by_url::UploadByUrl;
use wecom_material_core::ops::upload_by_url_result::GetUploadByUrlResult;
use wecom_material_core::ops::upload_image::UploadImage;
use wecom_material_core::ops::upload_media::UploadMedia;
use wecom_material_core::{CorpSecret, JobId, Limits, MediaId, MediaType};

/// Header-ish bytes: arbitrary, or built from the pieces parsers look for.
fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..8),
        prop::sample::select(vec![
            "bytes",
            " ",
            "-",
            "/",
            "*",
            ";",
            "=",
            "\"",
            "\\",
            "'",
            "%",
            "%E6",
            "utf-8''",
            "filename",
            "filename*",
            "attachment",
            "0",
            "1",
            "18446744073709551615",
            "18446744073709551616",
            "测试",
            "..",
            "\t",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        any::<u64>().prop_map(|n| n.to_string().into_bytes()),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn content_range_parse_never_panics(bytes in header_bytes()) {
        if let Some(range) = ContentRange::parse(&bytes) {
            // What it accepts is consistent, and its accessors do not panic either.
            if let ContentRange::Bytes { first, last, complete } = range {
                prop_assert!(first <= last);
                prop_assert!(complete.is_none_or(|c| last < c));
            }
            let _ = range.part_len();
            let _ = range.complete();
        }
    }

    #[test]
    fn content_range_round_trips(
        first in any::<u64>(),
        len in any::<u64>(),
        extra in any::<u64>(),
        known in any::<bool>(),
    ) {
        let last = first.saturating_add(len % (1 << 40));
        // u64::MAX as the last byte would make the part 2^64 bytes long: not representable.
        prop_assume!(last < u64::MAX);
        let complete = last.checked_add(1 + extra % (1 << 40)).filter(|_| known);
        let text = match complete {
            Some(c) => format!("bytes {first}-{last}/{c}"),
            None => format!("bytes {first}-{last}/*"),
        };
        let parsed = ContentRange::parse(text.as_bytes());
        prop_assert_eq!(parsed, Some(ContentRange::Bytes { first, last, complete }));
        prop_assert_eq!(parsed.unwrap().part_len(), Some(last - first + 1));
        let unsatisfied = format!("bytes */{extra}");
        prop_assert_eq!(
            ContentRange::parse(unsatisfied.as_bytes()),
            Some(ContentRange::Unsatisfied { complete: extra })
        );
    }

    #[test]
    fn content_disposition_parse_never_panics(bytes in header_bytes()) {
        if let Some(name) = filename_from_content_disposition(&bytes) {
            prop_assert!(!name.is_empty());
        }
    }

    #[test]
    fn filename_star_round_trips(name in "\\PC{1,40}", plain in "[a-z]{0,8}") {
        let encoded = utf8_percent_encode(&name, NON_ALPHANUMERIC);
        // `filename*` wins over `filename` whichever comes first.
        let after = format!("attachment; filename*=utf-8''{encoded}; filename=\"{plain}.bin\"");
        let before = format!("attachment; filename=\"{plain}.bin\"; filename*=UTF-8''{encoded}");
        prop_assert_eq!(filename_from_content_disposition(after.as_bytes()), Some(name.clone()));
        prop_assert_eq!(filename_from_content_disposition(before.as_bytes()), Some(name));
    }

    /// The core's own quoted-string escaping (used for uploads) reads back exactly through the
    /// core's Content-Disposition parser.
    #[test]
    fn quoted_filename_round_trips(name in "\\PC{1,40}") {
        let Ok(escaped) = escape_filename(&name) else {
            return Ok(());
        };
        let header = format!("attachment; filename=\"{escaped}\"; size=3");
        prop_assert_eq!(filename_from_content_disposition(header.as_bytes()), Some(name));
    }

    #[test]
    fn sanitized_names_are_safe(
        name in prop::collection::vec(
            prop_oneof![
                4 => prop::sample::select(vec!['.', 'a', '长', ' ', '/', '\\', '\u{1}', ':', '\u{7f}', '\u{85}', 'x']),
                1 => any::<char>(),
            ],
            0..300,
        ).prop_map(|c| c.into_iter().collect::<String>())
    ) {
        check_sanitized(&name)?;
    }

    #[test]
    fn sanitized_long_names_with_extensions_are_safe(
        stem_len in 200usize..300,
        dot_at in 0usize..300,
        ext in "[a-z.]{0,20}",
    ) {
        let mut stem: Vec<char> = std::iter::repeat_n('n', stem_len).collect();
        if dot_at < stem.len() {
            stem[dot_at] = '.';
        }
        let name = format!("{}.{ext}", stem.into_iter().collect::<String>());
        check_sanitized(&name)?;
    }
}

fn check_sanitized(name: &str) -> Result<(), TestCaseError> {
    if let Some(safe) = sanitize_filename(name) {
        prop_assert!(!safe.is_empty());
        prop_assert!(safe.len() <= MAX_FILENAME_BYTES, "{} bytes", safe.len());
        prop_assert!(!safe.contains('/') && !safe.contains('\\'), "{safe:?}");
        prop_assert!(!safe.contains(".."), "{safe:?} from {name:?}");
        prop_assert!(!safe.chars().any(char::is_control), "{safe:?}");
        prop_assert!(!safe.starts_with('.') && !safe.ends_with('.'), "{safe:?}");
        prop_assert!(safe != "." && safe != "..");
    }
    Ok(())
}

/// A response head with arbitrary values in the headers `classify` reads.
fn response_head() -> impl Strategy<Value = http::response::Parts> {
    let structured_range = (any::<u64>(), any::<u64>(), prop::option::of(any::<u64>())).prop_map(
        |(a, b, c)| match c {
            Some(c) => format!("bytes {a}-{b}/{c}").into_bytes(),
            None => format!("bytes {a}-{b}/*").into_bytes(),
        },
    );
    let edge_range = prop::sample::select(vec![
        "bytes 0-18446744073709551615/*",
        "bytes 0-18446744073709551614/18446744073709551615",
        "bytes */0",
        "bytes 0-0/1",
    ])
    .prop_map(|s| s.as_bytes().to_vec());
    let range = prop_oneof![header_bytes(), structured_range, edge_range];
    let length = prop_oneof![
        header_bytes(),
        any::<u64>().prop_map(|n| n.to_string().into_bytes()),
        Just(b"18446744073709551615".to_vec()),
    ];
    let content_type = prop_oneof![
        header_bytes(),
        prop::sample::select(vec![
            "application/json",
            "text/plain; charset=utf-8",
            "TEXT/HTML",
            "image/jpeg",
            "audio/amr",
            "",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
    ];
    (
        prop_oneof![Just(200u16), Just(206), 100u16..600],
        prop::option::of(content_type),
        prop::option::of(header_bytes()),
        prop::option::of(length),
        prop::option::of(range),
    )
        .prop_map(|(status, ct, cd, cl, cr)| {
            let mut builder = http::Response::builder().status(status);
            for (name, value) in [
                (http::header::CONTENT_TYPE, ct),
                (http::header::CONTENT_DISPOSITION, cd),
                (http::header::CONTENT_LENGTH, cl),
                (http::header::CONTENT_RANGE, cr),
            ] {
                if let Some(value) = value.and_then(|v| http::HeaderValue::from_bytes(&v).ok()) {
                    builder = builder.header(name, value);
                }
            }
            builder.body(()).unwrap().into_parts().0
        })
}

fn get_media_request() -> impl Strategy<Value = GetMedia> {
    (
        prop_oneof![Just(MediaEndpoint::Media), Just(MediaEndpoint::HdVoice)],
        "[ -~]{1,20}",
        prop::option::of((any::<u64>(), prop::option::of(any::<u64>()))),
    )
        .prop_filter_map("a valid request", |(endpoint, id, range)| {
            let op = GetMedia::new(endpoint, MediaId::new(id)).ok()?;
            match range {
                None => Some(op),
                Some((start, end_inclusive)) => op
                    .with_range(ByteRange {
                        start,
                        end_inclusive,
                    })
                    .ok(),
            }
        })
}

/// Bodies: arbitrary bytes, or JSON with the fields the parsers read, holding values of any
/// JSON type.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let scalar = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        prop::sample::select(vec![0i64, 1, 2, 3, -1, 40014, 45009, 830002])
            .prop_map(serde_json::Value::from),
        "[ -~]{0,12}".prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
    ];
    let keys = prop::sample::select(vec![
        "errcode",
        "errmsg",
        "access_token",
        "expires_in",
        "type",
        "media_id",
        "created_at",
        "url",
        "jobid",
        "status",
    ]);
    let object = prop::collection::btree_map(keys.clone(), scalar.clone(), 0..10);
    let detail = prop::collection::btree_map(keys, scalar, 0..6);
    let json = (object, prop::option::of(detail)).prop_map(|(mut obj, detail)| {
        let mut map: serde_json::Map<String, serde_json::Value> = obj
            .iter_mut()
            .map(|(k, v)| ((*k).to_owned(), v.take()))
            .collect();
        if let Some(detail) = detail {
            let detail: serde_json::Map<_, _> =
                detail.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            map.insert("detail".into(), detail.into());
        }
        serde_json::to_vec(&map).unwrap()
    });
    prop_oneof![prop::collection::vec(any::<u8>(), 0..200), json]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn classify_never_panics(op in get_media_request(), head in response_head()) {
        let _ = op.classify(&head);
    }

    #[test]
    fn get_media_parse_never_panics(
        op in get_media_request(),
        head in response_head(),
        body in body(),
    ) {
        let _ = op.parse(http::Response::from_parts(head, body));
    }

    #[test]
    fn json_parsers_never_panic(status in 100u16..600, body in body()) {
        let response = || {
            http::Response::builder().status(status).body(body.clone()).unwrap()
        };
        let limits = Limits::default();
        let boundary = || Boundary::from_entropy([0; 16]);
        let _ = GetToken::new("ww1", CorpSecret::new("s")).parse(response());
        let upload = UploadMedia::from_bytes(
            MediaType::File, "a.txt", Bytes::from_static(b"123456"), boundary(), &limits,
        ).unwrap();
        let _ = upload.parse(response());
        let image = UploadImage::new(
            "a.png",
            wecom_material_core::body::Payload::Bytes(Bytes::from_static(b"\x89PNG\r\n\x1a\n")),
            None,
            boundary(),
            &limits,
        ).unwrap();
        let _ = image.parse(response());
        let by_url = UploadByUrl::new(
            MediaType::File, "a.zip", "https://h/a.zip", "d41d8cd98f00b204e9800998ecf8427e",
            &limits, false,
        ).unwrap();
        let _ = by_url.parse(response());
        let _ = GetUploadByUrlResult::new(JobId::new("j")).unwrap().parse(response());
    }
}

/// A `Content-Range` whose part would be 2^64 bytes long (`bytes 0-18446744073709551615/*`)
/// must be refused, not overflow when its length is computed.
#[test]
fn content_range_of_2_pow_64_bytes_does_not_overflow() {
    let op = GetMedia::new(MediaEndpoint::Media, MediaId::new("m"))
        .unwrap()
        .with_range(ByteRange {
            start: 0,
            end_inclusive: None,
        })
        .unwrap();
    let head = http::Response::builder()
        .status(206)
        .header("content-type", "video/mp4")
        .header("content-range", "bytes 0-18446744073709551615/*")
        .header("content-length", "10")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    assert!(op.classify(&head).is_err());
    if let Some(range) = ContentRange::parse(b"bytes 0-18446744073709551615/*") {
        let _ = range.part_len();
    }
}

/// The shrunk counter-example that found the truncation bug: a 255-byte cut right after a dot,
/// then the kept extension, made `..`.
#[test]
fn truncation_does_not_make_double_dots() {
    let name = format!("n.{}.a.a", "n".repeat(251));
    let safe = sanitize_filename(&name).unwrap();
    assert!(safe.len() <= MAX_FILENAME_BYTES);
    assert!(!safe.contains(".."), "{safe}");
    assert!(safe.ends_with("n.a"), "{safe}");
}

proptest! {
    /// Issue 10: a WeCom error object in a short download answer without `Content-Disposition`
    /// is an error whatever the `Content-Type` (or none), and parses to its own code.
    #[test]
    fn a_short_error_object_is_never_media(
        code in prop_oneof![(-1i64..=-1), (1i64..1_000_000)],
        errmsg in "[ -~]{0,40}",
        content_type in prop::sample::select(vec![
            "", "application/octet-stream", "image/jpeg", "audio/amr", "video/mp4",
            "application/x-whatever", "multipart/mixed; boundary=x",
        ]),
        with_length in any::<bool>(),
    ) {
        let body = serde_json::json!({"errcode": code, "errmsg": errmsg}).to_string();
        let mut builder = http::Response::builder().status(200);
        if !content_type.is_empty() {
            builder = builder.header("content-type", content_type);
        }
        if with_length {
            builder = builder.header("content-length", body.len().to_string());
        }
        let response = builder.body(body.clone().into_bytes()).unwrap();
        let op = GetMedia::new(MediaEndpoint::Media, MediaId::new("m")).unwrap();
        let (head, bytes) = response.into_parts();
        prop_assert_eq!(
            op.classify_probe(&head, &bytes).unwrap(),
            wecom_material_core::ops::get_media::MediaHead::Error
        );
        let error = op.parse(http::Response::from_parts(head, bytes)).unwrap_err();
        prop_assert_eq!(error.errcode().map(|c| c.code()), Some(code));
    }

    /// The masking of error excerpts leaves no keyed secret value and no long base64 run.
    #[test]
    fn masked_text_keeps_no_secret(
        prefix in "[ -~]{0,30}",
        secret in "[A-Za-z0-9_-]{8,60}",
        key in prop::sample::select(vec!["access_token=", "corpsecret=", "\"access_token\":\"", "EncodingAESKey: "]),
        suffix in "[&\" ;,][ -~]{0,20}",
    ) {
        let text = format!("{prefix}{key}{secret}{suffix}");
        let masked = wecom_material_core::secret::mask_secrets(&text);
        prop_assert!(!masked.contains(&format!("{key}{secret}")), "{}", masked);
    }
}
