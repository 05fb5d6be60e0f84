//! The admin API under `/__mock/`, driven the way a test in another language drives it: plain
//! HTTP/1.1 over a socket, JSON in and out. Nothing here calls the Rust `MockHandle` except to
//! learn the address.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;
use wecom_material_mock::{MockConfig, MockServer};

const SECRET: &str = "mock-secret";

fn start() -> MockServer {
    MockServer::start(MockConfig::default())
}

/// One admin call: the status and the JSON answer.
fn admin(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, Value) {
    let r = send(
        addr,
        method,
        path,
        &[("Content-Type", b"application/json")],
        body.as_bytes(),
    );
    assert_eq!(
        r.header_str("content-type").as_deref(),
        Some("application/json")
    );
    (r.status, r.json())
}

fn ok(addr: SocketAddr, method: &str, path: &str, body: &str) -> Value {
    let (status, v) = admin(addr, method, path, body);
    assert_eq!(status, 200, "{method} {path} {body}: {v}");
    v
}

/// A 400 and its message.
fn refused(addr: SocketAddr, method: &str, path: &str, body: &str) -> String {
    let (status, v) = admin(addr, method, path, body);
    assert_eq!(status, 400, "{method} {path} {body}: {v}");
    v["error"].as_str().expect("an error message").to_owned()
}

fn get_media(addr: SocketAddr, token: &str, id: &str) -> Resp {
    get(
        addr,
        &format!(
            "/cgi-bin/media/get?access_token={token}&media_id={}",
            enc(id)
        ),
    )
}

fn add_media(addr: SocketAddr, query: &str, bytes: &[u8]) -> String {
    let r = send(addr, "POST", &format!("/__mock/media?{query}"), &[], bytes);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["media_id"].as_str().unwrap().to_owned()
}

fn token_of(addr: SocketAddr) -> String {
    let r = get(
        addr,
        &format!("/cgi-bin/gettoken?corpid=ww-mock-corp&corpsecret={SECRET}"),
    );
    assert_eq!(r.errcode(), 0);
    r.json()["access_token"].as_str().unwrap().to_owned()
}

#[test]
fn requests_log_lists_each_call_without_token_or_secret_and_delete_clears_it() {
    let mock = start();
    let a = mock.addr();
    let t = token_of(a);
    let up = upload(&mock, &t, "file", "a.txt", b"hello world");
    assert_eq!(up.errcode(), 0);
    let id = up.json()["media_id"].as_str().unwrap().to_owned();
    let r = get_range(
        a,
        &format!("/cgi-bin/media/get?access_token={t}&media_id={}", enc(&id)),
        "bytes=0-4",
    );
    assert_eq!(r.status, 206);
    let missing = get_media(a, &t, "nope");
    assert_eq!(missing.errcode(), 40007);

    let log = ok(a, "GET", "/__mock/requests", "");
    let text = log.to_string();
    assert!(!text.contains(&t), "the token leaked: {text}");
    assert!(!text.contains(SECRET), "the secret leaked: {text}");
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), 4, "admin calls are not logged: {text}");
    assert_eq!(log[0]["method"], "GET");
    assert_eq!(log[0]["path"], "/cgi-bin/gettoken");
    assert_eq!(log[0]["status"], 200);
    assert_eq!(log[0]["errcode"], 0);
    assert_eq!(
        log[0]["query"], "corpid=ww-mock-corp&corpsecret=***",
        "{text}"
    );
    assert_eq!(log[1]["method"], "POST");
    assert_eq!(log[1]["path"], "/cgi-bin/media/upload");
    assert_eq!(log[1]["errcode"], 0);
    assert_eq!(log[1]["range"], Value::Null);
    let form_len = form(
        BOUNDARY,
        b"form-data; name=\"media\"; filename=\"a.txt\"",
        Some("application/octet-stream"),
        b"hello world",
    )
    .len();
    assert_eq!(log[1]["body_len"], form_len);
    assert_eq!(log[2]["path"], "/cgi-bin/media/get");
    assert_eq!(log[2]["status"], 206);
    assert_eq!(log[2]["errcode"], Value::Null);
    assert_eq!(log[2]["range"], "bytes=0-4");
    assert_eq!(log[2]["body_len"], 0);
    assert_eq!(log[2]["response_len"], 5);
    assert!(
        log[2]["query"]
            .as_str()
            .unwrap()
            .starts_with("access_token=***&media_id=")
    );
    assert_eq!(log[3]["errcode"], 40007);

    assert_eq!(ok(a, "DELETE", "/__mock/requests", "")["cleared"], 4);
    assert_eq!(ok(a, "GET", "/__mock/requests", ""), json!([]));
}

#[test]
fn stats_have_every_key_from_the_start_and_count_requests_by_endpoint() {
    let mock = start();
    let a = mock.addr();
    let zero = json!({
        "gettoken": 0,
        "media/get": 0,
        "media/get/jssdk": 0,
        "media/get_upload_by_url_result": 0,
        "media/upload": 0,
        "media/upload_by_url": 0,
        "media/uploadimg": 0,
        "mock-files": 0,
        "mock-images": 0,
        "other": 0,
        "throttled_45033": 0,
        "evicted_expired": 0,
        "evicted_budget": 0,
        "media_count": 0,
        "image_count": 0,
        "media_bytes": 0,
        "requests_logged": 0,
    });
    assert_eq!(ok(a, "GET", "/__mock/stats", ""), zero);
    let t = token_of(a);
    let id = add_media(a, "filename=a.bin", &[7u8; 100]);
    for _ in 0..3 {
        assert_eq!(get_media(a, &t, &id).status, 200);
    }
    assert_eq!(
        upload(&mock, &t, "file", "b.txt", b"0123456789").errcode(),
        0
    );
    get(a, "/nothing-here");
    get(a, "/cgi-bin/nothing-here");
    let mut expected = zero.clone();
    for (key, n) in [
        ("gettoken", 1),
        ("media/get", 3),
        ("media/upload", 1),
        ("other", 2),
        ("media_count", 2),
        ("media_bytes", 110),
        ("requests_logged", 7),
    ] {
        expected[key] = n.into();
    }
    assert_eq!(ok(a, "GET", "/__mock/stats", ""), expected);
}

#[test]
fn errcode_fault_applies_times_then_stops_and_without_times_until_cleared() {
    let mock = start();
    let a = mock.addr();
    let t = token_of(a);
    let v = ok(
        a,
        "POST",
        "/__mock/faults",
        r#"{"endpoint": "media/upload", "errcode": -1, "times": 2}"#,
    );
    assert_eq!(
        v,
        json!({"endpoint": "media/upload", "fault": "errcode", "times": 2})
    );
    assert_eq!(upload(&mock, &t, "file", "a.txt", b"hello!").errcode(), -1);
    assert_eq!(upload(&mock, &t, "file", "a.txt", b"hello!").errcode(), -1);
    assert_eq!(upload(&mock, &t, "file", "a.txt", b"hello!").errcode(), 0);

    let v = ok(
        a,
        "POST",
        "/__mock/faults",
        r#"{"endpoint": "media/get", "errcode": 42001}"#,
    );
    assert_eq!(v["times"], Value::Null);
    let id = add_media(a, "filename=x.bin", b"0123456789");
    for _ in 0..5 {
        assert_eq!(get_media(a, &t, &id).errcode(), 42001);
    }
    assert_eq!(ok(a, "DELETE", "/__mock/faults", "")["cleared"], 1);
    assert_eq!(get_media(a, &t, &id).body, b"0123456789");
}

#[test]
fn status_and_delay_and_drop_faults() {
    let mock = start();
    let a = mock.addr();
    let t = token_of(a);
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let id = add_media(a, "filename=d.bin", &data);

    ok(
        a,
        "POST",
        "/__mock/faults",
        r#"{"endpoint": "media/get", "status": 502, "body": "<html>bad gateway</html>", "times": 1}"#,
    );
    let r = get_media(a, &t, &id);
    assert_eq!(r.status, 502);
    assert_eq!(r.body, b"<html>bad gateway</html>");

    ok(
        a,
        "POST",
        "/__mock/faults",
        r#"{"endpoint": "media/get", "delay_ms": 300, "times": 1}"#,
    );
    let started = Instant::now();
    let r = get_media(a, &t, &id);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(r.body, data);

    ok(
        a,
        "POST",
        "/__mock/faults",
        r#"{"endpoint": "media/get", "drop_after_bytes": 1000, "times": 1}"#,
    );
    match raw(
        a,
        "GET",
        &format!("/cgi-bin/media/get?access_token={t}&media_id={}", enc(&id)),
        &[],
        b"",
    ) {
        Raw::Resp(r) => {
            assert_eq!(r.content_length, Some(100_000));
            assert_eq!(r.body, &data[..1000], "the body stops after 1000 bytes");
        }
        Raw::Closed(b) => panic!("no head ({} bytes)", b.len()),
    }
    assert_eq!(get_media(a, &t, &id).body, data, "one time only");
}

#[test]
fn error_body_with_any_content_type_and_error_code_header() {
    let mock = start();
    let a = mock.addr();
    let t = token_of(a);
    let id = add_media(a, "filename=p.jpg", &[0xFFu8; 1000]);

    ok(
        a,
        "POST",
        "/__mock/faults",
        r#"{"endpoint": "media/get", "errcode": 40007, "content_type": "application/octet-stream", "times": 1}"#,
    );
    let r = get_media(a, &t, &id);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header_str("content-type").as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(r.json()["errcode"], 40007);
    assert_eq!(r.header("error-code"), None);

    ok(
        a,
        "POST",
        "/__mock/faults",
        r#"{"endpoint": "media/get", "errcode": 40007, "content_type": "", "times": 1}"#,
    );
    let r = get_media(a, &t, &id);
    assert_eq!(r.header("content-type"), None, "no Content-Type at all");
    assert_eq!(r.json()["errcode"], 40007);

    ok(
        a,
        "POST",
        "/__mock/faults",
        r#"{"endpoint": "media/get", "errcode": 40007, "content_type": "image/jpeg", "error_code_header": 40007, "times": 1}"#,
    );
    let r = get_media(a, &t, &id);
    assert_eq!(r.header_str("content-type").as_deref(), Some("image/jpeg"));
    assert_eq!(r.header_str("error-code").as_deref(), Some("40007"));
    assert!(r.header("error-msg").is_some());
    assert_eq!(r.json()["errcode"], 40007);
    let log = ok(a, "GET", "/__mock/requests", "");
    assert_eq!(log[3]["errcode"], 40007);

    assert_eq!(get_media(a, &t, &id).body, vec![0xFFu8; 1000]);
}

#[test]
fn gettoken_expires_in_fault_issues_a_token_that_lives_that_long() {
    let mock = start();
    let a = mock.addr();
    ok(
        a,
        "POST",
        "/__mock/faults",
        r#"{"endpoint": "gettoken", "expires_in": 0, "times": 1}"#,
    );
    let r = get(
        a,
        &format!("/cgi-bin/gettoken?corpid=ww-mock-corp&corpsecret={SECRET}"),
    );
    assert_eq!(r.json()["expires_in"], 0);
    let short = r.json()["access_token"].as_str().unwrap().to_owned();
    let id = add_media(a, "filename=x.bin", b"0123456789");
    assert_eq!(get_media(a, &short, &id).errcode(), 42001);
    let r = get(
        a,
        &format!("/cgi-bin/gettoken?corpid=ww-mock-corp&corpsecret={SECRET}"),
    );
    assert_eq!(r.json()["expires_in"], 7200);
    assert_ne!(r.json()["access_token"], short.as_str());
}

#[test]
fn stall_fault_pauses_the_body_without_closing() {
    let mock = start();
    let a = mock.addr();
    let t = token_of(a);
    let data: Vec<u8> = (0..50_000u32).map(|i| (i % 241) as u8).collect();
    let id = add_media(a, "filename=s.bin", &data);
    ok(
        a,
        "POST",
        "/__mock/faults",
        r#"{"endpoint": "media/get", "stall_ms": 400, "stall_after_bytes": 1000, "times": 1}"#,
    );
    let mut s = TcpStream::connect(a).unwrap();
    write!(
        s,
        "GET /cgi-bin/media/get?access_token={t}&media_id={} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        enc(&id)
    )
    .unwrap();
    let mut buf = Vec::new();
    let started = Instant::now();
    s.read_to_end(&mut buf).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert!(
        buf.ends_with(&data),
        "the whole body arrives after the stall"
    );
}

#[test]
fn echo_url_fault_quotes_the_request_url_with_its_token() {
    let mock = start();
    let a = mock.addr();
    let t = token_of(a);
    ok(
        a,
        "POST",
        "/__mock/faults",
        r#"{"endpoint": "media/get", "status": 502, "echo_url": true, "times": 1}"#,
    );
    let r = get_media(a, &t, "abc");
    assert_eq!(r.status, 502);
    assert!(
        r.header_str("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let page = String::from_utf8(r.body).unwrap();
    assert!(
        page.contains(&format!("/cgi-bin/media/get?access_token={t}&media_id=abc")),
        "{page}"
    );
    // The admin log still masks it.
    assert!(
        !ok(a, "GET", "/__mock/requests", "")
            .to_string()
            .contains(&t)
    );
}

#[test]
fn revoke_makes_every_issued_token_answer_42001() {
    let mock = start();
    let a = mock.addr();
    let t = token_of(a);
    let id = add_media(a, "filename=x.bin", b"0123456789");
    assert_eq!(ok(a, "POST", "/__mock/tokens/revoke", "")["revoked"], 1);
    assert_eq!(get_media(a, &t, &id).errcode(), 42001);
    let fresh = token_of(a);
    assert_ne!(fresh, t);
    assert_eq!(get_media(a, &fresh, &id).body, b"0123456789");
}

#[test]
fn clock_advance_expires_tokens_and_media() {
    let mock = start();
    let a = mock.addr();
    let t = token_of(a);
    let id = add_media(a, "filename=x.bin", b"0123456789");
    let before = ok(a, "GET", "/__mock/clock", "")["now"].as_u64().unwrap();
    let now = ok(a, "POST", "/__mock/clock", r#"{"advance_secs": 7200}"#)["now"]
        .as_u64()
        .unwrap();
    assert!(now >= before + 7200);
    assert_eq!(get_media(a, &t, &id).errcode(), 42001);
    let t = token_of(a);
    assert_eq!(get_media(a, &t, &id).status, 200);
    ok(a, "POST", "/__mock/clock", r#"{"advance_secs": 259200}"#);
    let t = token_of(a);
    assert_eq!(get_media(a, &t, &id).errcode(), 40007);
}

#[test]
fn media_upload_is_served_and_over_20_mb_needs_range() {
    let mock = start();
    let a = mock.addr();
    let t = token_of(a);
    let r = send(
        a,
        "POST",
        "/__mock/media?filename=%E6%B5%8B%E8%AF%95.pdf&content_type=application/pdf",
        &[],
        b"%PDF-1.4 tiny",
    );
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["bytes"], 13);
    let id = v["media_id"].as_str().unwrap();
    let got = get_media(a, &t, id);
    assert_eq!(got.body, b"%PDF-1.4 tiny");
    assert_eq!(
        got.header_str("content-type").as_deref(),
        Some("application/pdf")
    );
    assert!(
        got.header_str("content-disposition")
            .unwrap()
            .contains("filename*=utf-8''%E6%B5%8B%E8%AF%95.pdf")
    );

    let big: Vec<u8> = (0..20_000_001u32).map(|i| (i % 256) as u8).collect();
    let id = add_media(a, "filename=big.bin", &big);
    assert_eq!(get_media(a, &t, &id).errcode(), 830002);
    let r = get_range(
        a,
        &format!("/cgi-bin/media/get?access_token={t}&media_id={}", enc(&id)),
        "bytes=19999990-",
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &big[19_999_990..]);
}

#[test]
fn max_concurrent_per_media_answers_45033_and_counts_them() {
    let mock = start();
    let a = mock.addr();
    let t = token_of(a);
    let data = vec![3u8; 10_000];
    let id = add_media(a, "filename=c.bin", &data);
    let v = ok(
        a,
        "POST",
        "/__mock/settings",
        r#"{"max_concurrent_per_media": 1}"#,
    );
    assert_eq!(v["max_concurrent_per_media"], 1);
    // Hold one answer in flight: its body stalls after 100 bytes.
    ok(
        a,
        "POST",
        "/__mock/faults",
        r#"{"endpoint": "media/get", "stall_ms": 1500, "stall_after_bytes": 100, "times": 1}"#,
    );
    let mut held = TcpStream::connect(a).unwrap();
    write!(
        held,
        "GET /cgi-bin/media/get?access_token={t}&media_id={} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        enc(&id)
    )
    .unwrap();
    let mut first = [0u8; 16];
    held.read_exact(&mut first).unwrap();
    assert!(first.starts_with(b"HTTP/1.1 200"));

    assert_eq!(get_media(a, &t, &id).errcode(), 45033);
    let other = add_media(a, "filename=o.bin", b"another media");
    assert_eq!(get_media(a, &t, &other).status, 200, "per media id");

    let mut rest = Vec::new();
    held.read_to_end(&mut rest).unwrap();
    assert!(rest.ends_with(&data));
    assert_eq!(get_media(a, &t, &id).body, data, "free again once it ended");
    assert_eq!(ok(a, "GET", "/__mock/stats", "")["throttled_45033"], 1);

    let v = ok(
        a,
        "POST",
        "/__mock/settings",
        r#"{"max_concurrent_per_media": null, "latency_ms": 0}"#,
    );
    assert_eq!(v["max_concurrent_per_media"], Value::Null);
    assert_eq!(ok(a, "GET", "/__mock/settings", ""), v);
}

#[test]
fn settings_latency_is_added_to_every_answer() {
    let mock = start();
    let a = mock.addr();
    ok(a, "POST", "/__mock/settings", r#"{"latency_ms": 250}"#);
    let started = Instant::now();
    token_of(a);
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[test]
fn bad_input_is_a_400_with_a_message() {
    let mock = start();
    let a = mock.addr();
    let f = "/__mock/faults";
    assert!(refused(a, "POST", f, "{not json").contains("not JSON"));
    assert!(refused(a, "POST", f, "[1]").contains("JSON object"));
    assert!(refused(a, "POST", f, r#"{"errcode": -1}"#).contains("endpoint"));
    assert!(
        refused(a, "POST", f, r#"{"endpoint": "media/nope", "errcode": -1}"#)
            .contains("unknown endpoint")
    );
    assert!(
        refused(
            a,
            "POST",
            f,
            r#"{"endpoint": "media/get", "errcode": -1, "times": 0}"#
        )
        .contains("times")
    );
    assert!(
        refused(
            a,
            "POST",
            f,
            r#"{"endpoint": "media/get", "errcode": -1, "colour": "red"}"#
        )
        .contains("colour")
    );
    assert!(
        refused(a, "POST", f, r#"{"endpoint": "media/get", "errcode": "x"}"#).contains("integer")
    );
    assert!(refused(a, "POST", f, r#"{"endpoint": "media/get"}"#).contains("say what"));
    assert!(
        refused(
            a,
            "POST",
            f,
            r#"{"endpoint": "media/get", "expires_in": 0}"#
        )
        .contains("gettoken")
    );
    assert!(
        refused(a, "POST", f, r#"{"endpoint": "gettoken", "stall_ms": 10}"#).contains("download")
    );
    assert!(
        refused(a, "POST", f, r#"{"endpoint": "media/get", "status": 1000}"#).contains("status")
    );
    assert!(refused(a, "POST", "/__mock/clock", "{}").contains("advance_secs"));
    assert!(
        refused(a, "POST", "/__mock/clock", r#"{"advance_secs": -5}"#).contains("non-negative")
    );
    assert!(refused(a, "POST", "/__mock/media", "abc").contains("filename"));
    assert!(refused(a, "POST", "/__mock/media?filename=a&type=gif", "abc").contains("type"));
    assert!(refused(a, "POST", "/__mock/media?name=a", "abc").contains("name"));
    assert!(
        refused(
            a,
            "POST",
            "/__mock/settings",
            r#"{"max_concurrent_per_media": 0}"#
        )
        .contains("positive")
    );
    let (status, v) = admin(a, "PUT", "/__mock/faults", "{}");
    assert_eq!(status, 405, "{v}");
    let (status, v) = admin(a, "GET", "/__mock/nothing", "");
    assert_eq!(status, 404, "{v}");
    assert!(v["error"].as_str().unwrap().contains("requests"));
    // Nothing was queued by the refused calls.
    let t = token_of(a);
    let id = add_media(a, "filename=x.bin", b"0123456789");
    assert_eq!(get_media(a, &t, &id).body, b"0123456789");
}
