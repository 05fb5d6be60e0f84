//! media/upload: strict multipart, names, sizes, types.

mod support;

use support::*;
use wecom_material_mock::{Limits, MediaKind, MockConfig, MockServer, SizeLimit};

fn post_form(mock: &MockServer, token: &str, kind: &str, content_type: &[u8], body: &[u8]) -> Resp {
    send(
        mock.addr(),
        "POST",
        &format!("/cgi-bin/media/upload?access_token={token}&type={kind}"),
        &[("Content-Type", content_type)],
        body,
    )
}

#[test]
fn official_example_byte_exact() {
    let mock = MockServer::start(MockConfig::default());
    let t = token(&mock);
    let body = b"---------------------------acebdf13572468\r\n\
Content-Disposition: form-data; name=\"media\";filename=\"wework.txt\"; filelength=6\r\n\
Content-Type: application/octet-stream\r\n\
\r\n\
mytext\r\n\
---------------------------acebdf13572468--\r\n";
    assert_eq!(body.len(), 220);
    let r = post_form(
        &mock,
        &t,
        "file",
        b"multipart/form-data; boundary=-------------------------acebdf13572468",
        body,
    );
    let j = r.json();
    assert_eq!(j["errcode"], 0, "{j}");
    assert_eq!(j["type"], "file");
    assert!(
        j["created_at"].is_string(),
        "created_at is a JSON string: {j}"
    );
    let id = j["media_id"].as_str().unwrap();
    let m = mock.media(id).unwrap();
    assert_eq!(&m.bytes[..], b"mytext");
    assert_eq!(m.filename, "wework.txt");
    assert_eq!(m.kind, MediaKind::File);
    assert_eq!(m.created_at.to_string(), j["created_at"].as_str().unwrap());
    let rec = &mock.requests()[1];
    assert_eq!(rec.body_len, 220);
    assert_eq!(rec.body_md5, md5_hex(body));
}

#[test]
fn raw_utf8_name_is_kept_and_served_back() {
    let mock = MockServer::start(MockConfig::default());
    let t = token(&mock);
    let png = b"\x89PNG\r\n\x1a\n-fake-png-bytes";
    let r = upload(&mock, &t, "image", "测试.png", png);
    assert_eq!(r.errcode(), 0);
    let id = r.json()["media_id"].as_str().unwrap().to_owned();
    assert_eq!(mock.media(&id).unwrap().filename, "测试.png");
    let g = get(
        mock.addr(),
        &format!("/cgi-bin/media/get?access_token={t}&media_id={}", enc(&id)),
    );
    assert_eq!(g.body, png);
    assert_eq!(g.header_str("content-type").unwrap(), "image/png");
    assert_eq!(
        g.header("content-disposition").unwrap(),
        "attachment; filename*=utf-8''%E6%B5%8B%E8%AF%95.png; filename=\"测试.png\"".as_bytes()
    );
}

#[test]
fn extended_filename_is_refused_with_41005() {
    let mock = MockServer::start(MockConfig::default());
    let t = token(&mock);
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    for disposition in [
        &b"form-data; name=\"media\"; filename*=utf-8''%E6%B5%8B%E8%AF%95.png"[..],
        b"form-data; name=\"media\"; filename=\"a.png\"; filename*=UTF-8''a.png",
    ] {
        let body = form(BOUNDARY, disposition, Some("image/png"), b"0123456789");
        assert_eq!(
            post_form(&mock, &t, "image", ct.as_bytes(), &body).errcode(),
            41005
        );
    }
    // No filename, or another field name: media data missing.
    let body = form(BOUNDARY, b"form-data; name=\"media\"", None, b"0123456789");
    assert_eq!(
        post_form(&mock, &t, "file", ct.as_bytes(), &body).errcode(),
        41005
    );
    let body = form(
        BOUNDARY,
        b"form-data; name=\"file\"; filename=\"a.txt\"",
        None,
        b"0123456789",
    );
    assert_eq!(
        post_form(&mock, &t, "file", ct.as_bytes(), &body).errcode(),
        41005
    );
}

#[test]
fn boundary_and_empty_part_give_44001() {
    let mock = MockServer::start(MockConfig::default());
    let t = token(&mock);
    let body = form(
        BOUNDARY,
        b"form-data; name=\"media\"; filename=\"a.txt\"",
        None,
        b"0123456789",
    );
    assert_eq!(
        post_form(&mock, &t, "file", b"multipart/form-data", &body).errcode(),
        44001
    );
    assert_eq!(
        post_form(&mock, &t, "file", b"application/octet-stream", &body).errcode(),
        44001
    );
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    let empty = form(
        BOUNDARY,
        b"form-data; name=\"media\"; filename=\"a.txt\"",
        None,
        b"",
    );
    assert_eq!(
        post_form(&mock, &t, "file", ct.as_bytes(), &empty).errcode(),
        44001
    );
    // Garbage instead of a form.
    assert_eq!(
        post_form(&mock, &t, "file", ct.as_bytes(), b"not a form").errcode(),
        44001
    );
}

#[test]
fn sizes_types_and_extensions() {
    let mock = MockServer::start(MockConfig {
        limits: Limits {
            image: SizeLimit {
                max_bytes: 64,
                over_code: 40009,
            },
            ..Limits::default()
        },
        ..MockConfig::default()
    });
    let t = token(&mock);
    assert_eq!(
        upload(&mock, &t, "file", "a.txt", b"12345").errcode(),
        40006
    );
    assert_eq!(upload(&mock, &t, "file", "a.txt", b"123456").errcode(), 0);
    assert_eq!(upload(&mock, &t, "image", "a.png", &[7u8; 64]).errcode(), 0);
    assert_eq!(
        upload(&mock, &t, "image", "a.png", &[7u8; 65]).errcode(),
        40009
    );
    assert_eq!(
        upload(&mock, &t, "image", "a.mp4", b"0123456789").errcode(),
        40005
    );
    assert_eq!(
        upload(&mock, &t, "video", "a.mov", b"0123456789").errcode(),
        40005
    );
    assert_eq!(
        upload(&mock, &t, "video", "a.MP4", b"0123456789").errcode(),
        0
    );
    assert_eq!(
        upload(&mock, &t, "Image", "a.png", b"0123456789").errcode(),
        40004
    );
    assert_eq!(
        upload(&mock, &t, "", "a.png", b"0123456789").errcode(),
        40004
    );
    assert_eq!(
        upload(&mock, &t, "voice", "a.amr", b"RIFF0123456789").errcode(),
        301017
    );
    let ok = upload(&mock, &t, "voice", "a.amr", b"#!AMR\n0123456789");
    assert_eq!(ok.errcode(), 0);
    assert_eq!(ok.json()["type"], "voice");
}

#[test]
fn voice_over_two_mib_is_refused_by_default() {
    let mock = MockServer::start(MockConfig::default());
    let t = token(&mock);
    let mut big = b"#!AMR\n".to_vec();
    big.resize(2 * 1024 * 1024 + 1, 0);
    assert_eq!(upload(&mock, &t, "voice", "v.amr", &big).errcode(), 40006);
    big.truncate(2 * 1024 * 1024);
    assert_eq!(upload(&mock, &t, "voice", "v.amr", &big).errcode(), 0);
}

#[test]
fn curl_upload_with_raw_utf8_name() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("note: curl not installed, skipping the independent-client test");
        return;
    }
    let mock = MockServer::start(MockConfig::default());
    let t = token(&mock);
    let dir = std::env::temp_dir().join(format!("wecom-mock-curl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("image.bin");
    std::fs::write(&file, b"\x89PNG\r\n\x1a\ncurl-bytes").unwrap();
    let url = format!(
        "{}/cgi-bin/media/upload?access_token={t}&type=image",
        mock.base_url()
    );
    let out = std::process::Command::new("curl")
        .args(["-s", "-F"])
        .arg(format!("media=@{};filename=测试.png", file.display()))
        .arg(&url)
        .output()
        .unwrap();
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["errcode"], 0, "{j}");
    let m = mock.media(j["media_id"].as_str().unwrap()).unwrap();
    assert_eq!(m.filename, "测试.png");
    assert_eq!(&m.bytes[..], b"\x89PNG\r\n\x1a\ncurl-bytes");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn chunked_upload_accepted_unless_content_length_is_required() {
    for (require, expected) in [(false, 0), (true, 44001)] {
        let mock = MockServer::start(MockConfig {
            require_content_length: require,
            ..MockConfig::default()
        });
        let t = token(&mock);
        let body = form(
            BOUNDARY,
            b"form-data; name=\"media\"; filename=\"a.txt\"",
            None,
            b"chunked body",
        );
        let mut chunked = format!("{:x}\r\n", body.len()).into_bytes();
        chunked.extend_from_slice(&body);
        chunked.extend_from_slice(b"\r\n0\r\n\r\n");
        let ct = format!("multipart/form-data; boundary={BOUNDARY}");
        let r = send(
            mock.addr(),
            "POST",
            &format!("/cgi-bin/media/upload?access_token={t}&type=file"),
            &[
                ("Content-Type", ct.as_bytes()),
                ("Transfer-Encoding", b"chunked"),
            ],
            &chunked,
        );
        assert_eq!(r.errcode(), expected);
    }
}

#[test]
fn success_bodies_are_the_official_examples() {
    let mock = MockServer::start(MockConfig::default());
    let t = token(&mock);
    let r = upload(&mock, &t, "file", "a.txt", b"hello world");
    let v = r.json();
    // SPEC §2: `{"errcode":0,"errmsg":"","type":"image","media_id":"…","created_at":"…"}`.
    assert_eq!(v["errcode"], 0);
    assert_eq!(v["errmsg"], "", "media/upload answers an empty errmsg");
    assert_eq!(v["type"], "file");
    assert!(v["created_at"].is_string());
    let text = String::from_utf8(r.body.clone()).unwrap();
    assert!(
        text.starts_with(r#"{"errcode":0,"errmsg":"","#),
        "field order as in the example: {text}"
    );
    // SPEC §1: gettoken keeps "ok".
    let g = get(
        mock.addr(),
        "/cgi-bin/gettoken?corpid=ww-mock-corp&corpsecret=mock-secret",
    );
    assert_eq!(g.json()["errmsg"], "ok");
}
