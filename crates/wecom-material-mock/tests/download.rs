//! media/get and media/get/jssdk: headers, Range, 416, 830002, 40007 on HTTP 200.

mod support;

use std::time::Duration;

use support::*;
use wecom_material_mock::{Clock, ErrorContentType, MediaKind, MockConfig, MockServer};

fn setup(config: MockConfig) -> (MockServer, String, String, Vec<u8>) {
    let mock = MockServer::start(config);
    let t = mock.access_token("ww-mock-corp").unwrap();
    let data: Vec<u8> = (0..2048u32).map(|i| (i % 251) as u8).collect();
    let id = mock.insert_media(data.clone(), "application/pdf", "报告 \"v2\".pdf");
    (mock, t, id, data)
}

#[test]
fn whole_file_with_both_filename_forms() {
    let (mock, t, id, data) = setup(MockConfig::default());
    let r = get(
        mock.addr(),
        &format!("/cgi-bin/media/get?access_token={t}&media_id={}", enc(&id)),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body, data);
    assert_eq!(r.header_str("content-length").unwrap(), "2048");
    assert_eq!(r.header_str("content-type").unwrap(), "application/pdf");
    assert_eq!(
        r.header("content-disposition").unwrap(),
        "attachment; filename*=utf-8''%E6%8A%A5%E5%91%8A%20%22v2%22.pdf; filename=\"报告 \\\"v2\\\".pdf\"".as_bytes()
    );
}

#[test]
fn range_forms_and_416() {
    let (mock, t, id, data) = setup(MockConfig::default());
    let a = mock.addr();
    let target = format!("/cgi-bin/media/get?access_token={t}&media_id={}", enc(&id));
    let r = get_range(a, &target, "bytes=0-1023");
    assert_eq!(r.status, 206);
    assert_eq!(r.header_str("content-range").unwrap(), "bytes 0-1023/2048");
    assert_eq!(r.body, &data[..1024]);
    let r = get_range(a, &target, "bytes=2000-");
    assert_eq!(
        r.header_str("content-range").unwrap(),
        "bytes 2000-2047/2048"
    );
    assert_eq!(r.body, &data[2000..]);
    let r = get_range(a, &target, "bytes=-100");
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header_str("content-range").unwrap(),
        "bytes 1948-2047/2048"
    );
    assert_eq!(r.body, &data[1948..]);
    let r = get_range(a, &target, "bytes=1000-999999");
    assert_eq!(
        r.header_str("content-range").unwrap(),
        "bytes 1000-2047/2048"
    );
    assert_eq!(r.body, &data[1000..]);
    let r = get_range(a, &target, "bytes=-99999");
    assert_eq!(r.header_str("content-range").unwrap(), "bytes 0-2047/2048");
    for beyond in ["bytes=2048-", "bytes=5000-6000", "bytes=-0"] {
        let r = get_range(a, &target, beyond);
        assert_eq!(r.status, 416, "{beyond}");
        assert_eq!(r.header_str("content-range").unwrap(), "bytes */2048");
        assert!(r.body.is_empty());
    }
    // Malformed: ignored, whole file.
    let r = get_range(a, &target, "bytes=9-3");
    assert_eq!((r.status, r.body.len()), (200, 2048));
}

#[test]
fn errors_are_json_on_http_200_with_either_content_type() {
    for (ct, expected) in [
        (ErrorContentType::Json, "application/json; charset=UTF-8"),
        (ErrorContentType::TextPlain, "text/plain"),
    ] {
        let (mock, t, id, _) = setup(MockConfig {
            error_content_type: ct,
            clock: Clock::manual(1_700_000_000),
            ..MockConfig::default()
        });
        let a = mock.addr();
        let r = get(
            a,
            &format!("/cgi-bin/media/get?access_token={t}&media_id=nope"),
        );
        assert_eq!(r.errcode(), 40007);
        assert_eq!(r.header_str("content-type").unwrap(), expected);
        assert!(r.header("content-disposition").is_none());
        assert_eq!(
            get(a, &format!("/cgi-bin/media/get?access_token={t}")).errcode(),
            41006
        );
        // Expiry: valid until 3 days have passed on the emulator clock.
        mock.clock().advance(Duration::from_secs(3 * 24 * 3600 - 1));
        let t = mock.access_token("ww-mock-corp").unwrap();
        let target = format!("/cgi-bin/media/get?access_token={t}&media_id={}", enc(&id));
        assert_eq!(get(a, &target).status, 200);
        assert!(get(a, &target).header("content-disposition").is_some());
        mock.clock().advance(Duration::from_secs(1));
        let r = get(a, &target);
        assert_eq!(r.errcode(), 40007);
        assert_eq!(r.header_str("content-type").unwrap(), expected);
        assert_eq!(get_range(a, &target, "bytes=0-1").errcode(), 40007);
    }
}

#[test]
fn over_20_000_000_bytes_needs_range_chunks() {
    let mock = MockServer::start(MockConfig::default());
    let t = mock.access_token("ww-mock-corp").unwrap();
    let mut big = vec![0u8; 20_000_001];
    big[20_000_000] = 0xAB;
    big[19_999_999] = 0xCD;
    let id = mock.insert_media(big, "video/mp4", "big.mp4");
    let target = format!("/cgi-bin/media/get?access_token={t}&media_id={}", enc(&id));
    let a = mock.addr();
    assert_eq!(get(a, &target).errcode(), 830002);
    assert_eq!(get_range(a, &target, "bytes=0-20000000").errcode(), 830002);
    assert_eq!(get_range(a, &target, "bytes=0-").errcode(), 830002);
    let r = get_range(a, &target, "bytes=19999999-");
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header_str("content-range").unwrap(),
        "bytes 19999999-20000000/20000001"
    );
    assert_eq!(r.body, [0xCD, 0xAB]);
    // Exactly 20,000,000 bytes at the limit: allowed.
    let small = mock.insert_media(vec![1u8; 20_000_000], "video/mp4", "edge.mp4");
    let r = get(
        a,
        &format!(
            "/cgi-bin/media/get?access_token={t}&media_id={}",
            enc(&small)
        ),
    );
    assert_eq!((r.status, r.body.len()), (200, 20_000_000));
}

#[test]
fn jssdk_serves_voice_as_speex() {
    let mock = MockServer::start(MockConfig::default());
    let t = mock.access_token("ww-mock-corp").unwrap();
    let voice = mock.insert_media_as(MediaKind::Voice, &b"#!AMR\nvoice"[..], "audio/amr", "v.amr");
    let a = mock.addr();
    let r = get(
        a,
        &format!(
            "/cgi-bin/media/get/jssdk?access_token={t}&media_id={}",
            enc(&voice)
        ),
    );
    assert_eq!(r.header_str("content-type").unwrap(), "voice/speex");
    assert_eq!(r.body, b"#!AMR\nvoice");
    let r = get(
        a,
        &format!(
            "/cgi-bin/media/get?access_token={t}&media_id={}",
            enc(&voice)
        ),
    );
    assert_eq!(r.header_str("content-type").unwrap(), "audio/amr");
    assert_eq!(
        get(
            a,
            &format!("/cgi-bin/media/get/jssdk?access_token={t}&media_id=x")
        )
        .errcode(),
        40007
    );
}

#[test]
fn media_ids_use_wecoms_alphabet_unless_strict_ids() {
    let mock = MockServer::start(MockConfig::default());
    let t = mock.access_token("ww-mock-corp").unwrap();
    for i in 0..16u8 {
        let id = mock.insert_media(vec![i; 10], "text/plain", "a.txt");
        assert_eq!(id.len(), 44);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{id}"
        );
        // What wechatpy and py-wecom-toolkit do: the id spliced into the URL unencoded.
        let raw = get(
            mock.addr(),
            &format!("/cgi-bin/media/get?access_token={t}&media_id={id}"),
        );
        assert_eq!(raw.status, 200, "{id}");
        assert_eq!(raw.body, vec![i; 10]);
    }

    let strict = MockServer::start(MockConfig {
        strict_ids: true,
        ..MockConfig::default()
    });
    let t = strict.access_token("ww-mock-corp").unwrap();
    let ids: Vec<String> = (0..4u8)
        .map(|i| strict.insert_media(vec![i; 10], "text/plain", "a.txt"))
        .collect();
    let hostile = ids
        .iter()
        .find(|id| id.contains('+') && id.contains('/') && id.ends_with('='))
        .expect("every second strict id carries + / =");
    assert_eq!(hostile.len(), 44);
    // Put into the URL unencoded, `+` reads as a space: the media is not found.
    let raw = get(
        strict.addr(),
        &format!("/cgi-bin/media/get?access_token={t}&media_id={hostile}"),
    );
    assert_eq!(raw.errcode(), 40007);
    let encoded = get(
        strict.addr(),
        &format!(
            "/cgi-bin/media/get?access_token={t}&media_id={}",
            enc(hostile)
        ),
    );
    assert_eq!(encoded.status, 200);
    assert_eq!(encoded.body, strict.media(hostile).unwrap().bytes);
}
