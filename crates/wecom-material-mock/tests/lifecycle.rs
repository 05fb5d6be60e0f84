//! Bounded memory and the lifecycle: expiry and deletion evict, the byte budget evicts the
//! oldest, uploads are stored without slack, the request log is a ring buffer, a reset goes
//! back to the start state, the clock can be set, and the rules (quota, limits, callback,
//! id alphabet) change through the admin API. Driven over plain HTTP, as another language
//! would, with the Rust handle only where the behaviour is only visible there.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use support::*;
use wecom_material_mock::{Clock, MockConfig, MockServer};

const DAY: u64 = 24 * 3600;

fn admin(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
    let r = send(addr, method, path, &[], body);
    (r.status, r.json())
}

fn ok(addr: SocketAddr, method: &str, path: &str, body: &str) -> Value {
    let (status, v) = admin(addr, method, path, body.as_bytes());
    assert_eq!(status, 200, "{method} {path} {body}: {v}");
    v
}

fn add_media(addr: SocketAddr, name: &str, bytes: &[u8]) -> String {
    let (status, v) = admin(
        addr,
        "POST",
        &format!("/__mock/media?filename={name}"),
        bytes,
    );
    assert_eq!(status, 200, "{v}");
    v["media_id"].as_str().unwrap().to_owned()
}

fn get_media(addr: SocketAddr, token: &str, id: &str) -> Resp {
    get(
        addr,
        &format!("/cgi-bin/media/get?access_token={token}&media_id={id}"),
    )
}

fn stats(addr: SocketAddr) -> Value {
    ok(addr, "GET", "/__mock/stats", "")
}

#[test]
fn expired_media_are_evicted_when_the_clock_moves() {
    let mock = MockServer::start(MockConfig::default());
    let a = mock.addr();
    add_media(a, "a.bin", &[1u8; 1000]);
    add_media(a, "b.bin", &[2u8; 500]);
    assert_eq!(stats(a)["media_bytes"], 1500);
    ok(a, "POST", "/__mock/clock", r#"{"advance_secs": 259199}"#);
    assert_eq!(stats(a)["media_count"], 2, "not yet three days");
    ok(a, "POST", "/__mock/clock", r#"{"advance_secs": 1}"#);
    let s = stats(a);
    assert_eq!(
        (s["media_count"].as_u64(), s["media_bytes"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(s["evicted_expired"], 2);
}

#[test]
fn an_expired_media_goes_on_the_next_upload_or_get_even_when_the_clock_moved_by_itself() {
    let mock = MockServer::start(MockConfig {
        clock: Clock::manual(1_700_000_000),
        ..MockConfig::default()
    });
    let a = mock.addr();
    let old = add_media(a, "old.bin", &[1u8; 100]);
    // The Rust handle moves the clock without telling the store.
    mock.clock().advance(Duration::from_secs(3 * DAY));
    assert_eq!(stats(a)["media_count"], 1);
    let t = token(&mock);
    assert_eq!(get_media(a, &t, &old).errcode(), 40007);
    assert_eq!(stats(a)["media_count"], 0);
    assert!(mock.media(&old).is_none());
}

#[test]
fn delete_removes_a_media_and_answers_404_for_an_unknown_one() {
    let mock = MockServer::start(MockConfig::default());
    let a = mock.addr();
    let t = token(&mock);
    let id = add_media(a, "a.bin", b"0123456789");
    assert_eq!(
        ok(a, "DELETE", &format!("/__mock/media/{id}"), ""),
        json!({"deleted": 1})
    );
    assert_eq!(get_media(a, &t, &id).errcode(), 40007);
    assert_eq!(stats(a)["media_bytes"], 0);
    let (status, v) = admin(a, "DELETE", &format!("/__mock/media/{id}"), b"");
    assert_eq!(status, 404);
    assert!(v["error"].as_str().unwrap().contains(&id), "{v}");
    let (status, _) = admin(a, "GET", &format!("/__mock/media/{id}"), b"");
    assert_eq!(status, 405);
}

#[test]
fn the_byte_budget_evicts_the_oldest_media_and_images_with_a_note() {
    let notes = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = notes.clone();
    let mock = MockServer::start(MockConfig {
        max_media_bytes: 3000,
        on_note: Some(Arc::new(move |n| seen.lock().unwrap().push(n.to_owned()))),
        ..MockConfig::default()
    });
    let a = mock.addr();
    let t = token(&mock);
    let first = add_media(a, "a.bin", &[1u8; 1000]);
    let second = add_media(a, "b.bin", &[2u8; 1000]);
    let third = add_media(a, "c.bin", &[3u8; 1000]);
    assert_eq!(stats(a)["evicted_budget"], 0, "exactly at the budget");
    let fourth = add_media(a, "d.bin", &[4u8; 1500]);
    // 1000 + 1000 + 1000 + 1500 > 3000: the two oldest go.
    assert_eq!(get_media(a, &t, &first).errcode(), 40007);
    assert_eq!(get_media(a, &t, &second).errcode(), 40007);
    assert_eq!(get_media(a, &t, &third).body, vec![3u8; 1000]);
    assert_eq!(get_media(a, &t, &fourth).body, vec![4u8; 1500]);
    let s = stats(a);
    assert_eq!(
        (s["media_bytes"].as_u64(), s["evicted_budget"].as_u64()),
        (Some(2500), Some(2))
    );
    let notes = notes.lock().unwrap().clone();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes[0].contains(&first) && notes[0].contains("1000 bytes"),
        "{notes:?}"
    );
    assert!(notes[1].contains(&second), "{notes:?}");
    // A smaller budget through the admin API applies at once.
    ok(
        a,
        "POST",
        "/__mock/settings",
        r#"{"max_media_bytes": 1500}"#,
    );
    let s = stats(a);
    assert_eq!(
        (s["media_count"].as_u64(), s["media_bytes"].as_u64()),
        (Some(1), Some(1500))
    );
}

#[test]
fn uploads_are_stored_without_slack() {
    let mock = MockServer::start(MockConfig::default());
    let t = token(&mock);
    let pattern = |len: u32| -> Vec<u8> { (0..len).map(|i| (i % 251) as u8).collect() };
    // Two small uploads (each arriving in many reads) sit back to back in a shared slab:
    // the second starts where the first ends, so neither holds spare capacity.
    let first = pattern(300_000);
    let second = pattern(200_000);
    let id = |r: Resp| r.json()["media_id"].as_str().unwrap().to_owned();
    let a = mock
        .media(&id(upload(&mock, &t, "file", "a.bin", &first)))
        .unwrap()
        .bytes;
    let b = mock
        .media(&id(upload(&mock, &t, "file", "b.bin", &second)))
        .unwrap()
        .bytes;
    assert!(a == first && b == second);
    assert_eq!(a.as_ptr() as usize + a.len(), b.as_ptr() as usize, "no gap");
    // A large one gets an allocation of exactly its size.
    let big = pattern(3_000_000);
    let big_id = id(upload(&mock, &t, "file", "big.bin", &big));
    let stored = mock.media(&big_id).unwrap().bytes;
    assert!(mock.delete_media(&big_id));
    let buffer = stored.try_into_mut().expect("a unique, whole allocation");
    assert_eq!(buffer.capacity(), big.len(), "no slack");
    assert!(buffer[..] == big[..]);
}

#[test]
fn the_request_log_is_a_ring_buffer_and_the_counts_go_on() {
    let mock = MockServer::start(MockConfig {
        request_log_capacity: 3,
        ..MockConfig::default()
    });
    let a = mock.addr();
    for i in 0..5 {
        get(a, &format!("/nothing/{i}"));
    }
    let log = ok(a, "GET", "/__mock/requests", "");
    let paths: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/nothing/2", "/nothing/3", "/nothing/4"]);
    assert_eq!(stats(a)["other"], 5);
    assert_eq!(stats(a)["requests_logged"], 3);
    ok(
        a,
        "POST",
        "/__mock/settings",
        r#"{"request_log_capacity": 1}"#,
    );
    assert_eq!(
        ok(a, "GET", "/__mock/requests", "")
            .as_array()
            .unwrap()
            .len(),
        1
    );
    ok(
        a,
        "POST",
        "/__mock/settings",
        r#"{"request_log_capacity": 0}"#,
    );
    get(a, "/nothing/5");
    assert_eq!(ok(a, "GET", "/__mock/requests", ""), json!([]));
    assert_eq!(stats(a)["other"], 6);
}

#[test]
fn reset_goes_back_to_the_start_state() {
    let mock = MockServer::start(MockConfig {
        upload_img_daily_quota: 1,
        ..MockConfig::default()
    });
    let a = mock.addr();
    let start_now = ok(a, "GET", "/__mock/clock", "")["now"].as_u64().unwrap();
    let t = token(&mock);
    let id = add_media(a, "a.bin", &[1u8; 100]);
    ok(
        a,
        "POST",
        "/__mock/faults",
        r#"{"endpoint": "media/get", "errcode": -1}"#,
    );
    ok(a, "POST", "/__mock/clock", r#"{"advance_secs": 7000}"#);
    ok(
        a,
        "POST",
        "/__mock/settings",
        r#"{"latency_ms": 5, "strict_ids": true, "upload_img_daily_quota": 0}"#,
    );
    let (_, served) = admin(a, "POST", "/__mock/files?name=f.bin", b"file bytes");
    let url = served["url"].as_str().unwrap().to_owned();

    let v = ok(a, "POST", "/__mock/reset", "");
    assert_eq!(v["reset"], true);
    let now = v["now"].as_u64().unwrap();
    assert!(
        now >= start_now && now < start_now + 600,
        "{start_now} -> {now}"
    );
    // Tokens are gone, the media too; faults, settings, rules and the log are back.
    assert_eq!(get_media(a, &t, &id).errcode(), 40014);
    let t = token(&mock);
    assert_eq!(get_media(a, &t, &id).errcode(), 40007);
    let s = ok(a, "GET", "/__mock/settings", "");
    assert_eq!(
        (s["latency_ms"].as_u64(), s["strict_ids"].as_bool()),
        (Some(0), Some(false))
    );
    assert_eq!(s["upload_img_daily_quota"], 1);
    let s = stats(a);
    assert_eq!(s["media_count"], 0);
    assert_eq!(s["gettoken"], 1, "counted from the reset on");
    // The old token's 40014, the gettoken and the 40007 since the reset.
    assert_eq!(
        ok(a, "GET", "/__mock/requests", "")
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let path = url.split_once("127.0.0.1").unwrap().1;
    let path = &path[path.find('/').unwrap()..];
    assert_eq!(get(a, path).status, 404, "served files go too");
    let id = add_media(a, "b.bin", &[2u8; 10]);
    assert_eq!(get_media(a, &t, &id).body, vec![2u8; 10], "no fault left");
}

#[test]
fn the_clock_can_be_set_to_an_absolute_time_forward_and_back() {
    let mock = MockServer::start(MockConfig::default());
    let a = mock.addr();
    let id = add_media(a, "a.bin", &[1u8; 10]);
    let created = mock.media(&id).unwrap().created_at;
    let v = ok(
        a,
        "POST",
        "/__mock/clock",
        &format!(r#"{{"now": {}}}"#, created + 3 * DAY - 10),
    );
    assert!(v["now"].as_u64().unwrap() >= created + 3 * DAY - 10);
    let t = token(&mock);
    assert_eq!(get_media(a, &t, &id).body, vec![1u8; 10]);
    ok(
        a,
        "POST",
        "/__mock/clock",
        &format!(r#"{{"now": {}}}"#, created + 3 * DAY + 60),
    );
    let t = token(&mock);
    assert_eq!(get_media(a, &t, &id).errcode(), 40007);
    let v = ok(a, "POST", "/__mock/clock", r#"{"now": 1000000000}"#);
    assert!((1_000_000_000..1_000_000_600).contains(&v["now"].as_u64().unwrap()));
    let (status, v) = admin(
        a,
        "POST",
        "/__mock/clock",
        br#"{"now": 5, "advance_secs": 5}"#,
    );
    assert_eq!(status, 400, "{v}");
}

#[test]
fn an_empty_media_is_refused_with_400() {
    let mock = MockServer::start(MockConfig::default());
    let (status, v) = admin(mock.addr(), "POST", "/__mock/media?filename=a.bin", b"");
    assert_eq!(status, 400);
    assert!(v["error"].as_str().unwrap().contains("empty"), "{v}");
    assert_eq!(stats(mock.addr())["media_count"], 0);
}

#[test]
fn admin_media_can_belong_to_one_corp() {
    let mock = MockServer::start(MockConfig {
        apps: vec![
            wecom_material_mock::App::new("ww-mock-corp", "mock-secret"),
            wecom_material_mock::App::new("ww-other", "other-secret"),
        ],
        ..MockConfig::default()
    });
    let a = mock.addr();
    let mine = add_media(a, "a.txt&corp_id=ww-other", b"only for ww-other");
    let t = token(&mock);
    assert_eq!(get_media(a, &t, &mine).errcode(), 40007);
    let r = get(
        a,
        "/cgi-bin/gettoken?corpid=ww-other&corpsecret=other-secret",
    );
    let other = r.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(get_media(a, &other, &mine).body, b"only for ww-other");
    let (status, _) = admin(
        a,
        "POST",
        "/__mock/media?filename=a.txt&corp_id=ww-nobody",
        b"x",
    );
    assert_eq!(status, 400);
}

#[test]
fn files_posted_to_the_admin_api_are_served_with_range_for_upload_by_url() {
    let mock = MockServer::start(MockConfig::default());
    let a = mock.addr();
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 256) as u8).collect();
    let v = ok_bytes(a, "/__mock/files?name=dir/clip.mp4", &data);
    let url = v["url"].as_str().unwrap().to_owned();
    assert_eq!(url, format!("{}/mock-files/dir/clip.mp4", mock.base_url()));
    assert_eq!(v["bytes"], 10_000);
    let r = get_range(a, "/mock-files/dir/clip.mp4", "bytes=100-199");
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &data[100..200]);
    assert_eq!(
        r.header_str("content-range").as_deref(),
        Some("bytes 100-199/10000")
    );
    // upload_by_url fetches it.
    let t = token(&mock);
    let md5 = md5_hex(&data);
    let body = format!(
        r#"{{"scene":1,"type":"video","filename":"clip.mp4","url":"{url}","md5":"{md5}"}}"#
    );
    let r = post_json(
        a,
        &format!("/cgi-bin/media/upload_by_url?access_token={t}"),
        &body,
    );
    let job = r.json()["jobid"].as_str().unwrap().to_owned();
    match mock.wait_for_job(&job, Duration::from_secs(30)) {
        Some(wecom_material_mock::JobStatus::Finished { media_id, .. }) => {
            assert_eq!(mock.media(&media_id).unwrap().bytes, data);
        }
        other => panic!("{other:?}"),
    }
    // Without Range support: the whole file, 200.
    ok_bytes(
        a,
        "/__mock/files?name=plain.bin&range_support=false",
        b"abcdef",
    );
    let r = get_range(a, "/mock-files/plain.bin", "bytes=0-1");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"abcdef"[..]));
    for bad in [
        "/__mock/files?name=../x",
        "/__mock/files?name=a%20b",
        "/__mock/files",
        "/__mock/files?name=a&range_support=maybe",
        "/__mock/files?name=a&nope=1",
    ] {
        let (status, v) = admin(a, "POST", bad, b"x");
        assert_eq!(status, 400, "{bad}: {v}");
    }
    let (status, _) = admin(a, "POST", "/__mock/files?name=empty.bin", b"");
    assert_eq!(status, 400);
}

fn ok_bytes(addr: SocketAddr, path: &str, body: &[u8]) -> Value {
    let (status, v) = admin(addr, "POST", path, body);
    assert_eq!(status, 200, "{path}: {v}");
    v
}

#[test]
fn quota_limits_and_id_alphabet_change_through_the_settings() {
    let mock = MockServer::start(MockConfig::default());
    let a = mock.addr();
    let t = token(&mock);
    let v = ok(
        a,
        "POST",
        "/__mock/settings",
        r#"{"upload_img_daily_quota": 1, "limits": {"file": 10, "upload_img": 50}, "strict_ids": true}"#,
    );
    assert_eq!(v["limits"]["file"], 10);
    assert_eq!(v["limits"]["image"], 10 * 1024 * 1024, "the others stay");
    assert_eq!(
        upload(&mock, &t, "file", "a.txt", b"0123456789").errcode(),
        0
    );
    assert_eq!(
        upload(&mock, &t, "file", "a.txt", b"0123456789X").errcode(),
        45001
    );
    let img = |data: &[u8]| {
        let body = form(
            BOUNDARY,
            b"form-data; name=\"media\"; filename=\"a.png\"",
            Some("image/png"),
            data,
        );
        let ct = format!("multipart/form-data; boundary={BOUNDARY}");
        send(
            a,
            "POST",
            &format!("/cgi-bin/media/uploadimg?access_token={t}"),
            &[("Content-Type", ct.as_bytes())],
            &body,
        )
    };
    assert_eq!(img(&[7u8; 51]).errcode(), 40009);
    assert_eq!(img(&[7u8; 50]).errcode(), 0);
    assert_eq!(img(&[7u8; 50]).errcode(), 45009, "the quota of one is used");
    assert_eq!(stats(a)["image_count"], 1);
    let ids: Vec<String> = (0..2).map(|_| add_media(a, "x.bin", b"123456")).collect();
    assert!(ids.iter().any(|id| id.contains('+')), "{ids:?}");
    for bad in [
        r#"{"limits": {"nope": 1}}"#,
        r#"{"limits": 5}"#,
        r#"{"upload_img_daily_quota": -1}"#,
        r#"{"strict_ids": "yes"}"#,
        r#"{"request_log_capacity": 99999999999}"#,
    ] {
        let (status, v) = admin(a, "POST", "/__mock/settings", bad.as_bytes());
        assert_eq!(status, 400, "{bad}: {v}");
    }
}

#[test]
fn the_callback_target_is_a_setting_whose_secrets_are_never_shown() {
    let mock = MockServer::start(MockConfig::default());
    let a = mock.addr();
    let key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
    let body = format!(
        r#"{{"callback": {{"url": "http://127.0.0.1:9/cb", "token": "tok-secret", "encoding_aes_key": "{key}", "receive_id": "ww-mock-corp", "retries": 0}}}}"#
    );
    let v = ok(a, "POST", "/__mock/settings", &body);
    assert_eq!(
        v["callback"],
        json!({"url": "http://127.0.0.1:9/cb", "receive_id": "ww-mock-corp", "timeout_ms": 5000, "retries": 0})
    );
    let shown = ok(a, "GET", "/__mock/settings", "").to_string();
    assert!(
        !shown.contains("tok-secret") && !shown.contains(key),
        "{shown}"
    );
    assert_eq!(mock.rules().callback.unwrap().token, "tok-secret");
    // Not loopback, or a bad key: refused, and the message does not repeat the key.
    let far = body.replace("127.0.0.1:9", "example.com");
    let (status, v) = admin(a, "POST", "/__mock/settings", far.as_bytes());
    assert_eq!(status, 400, "{v}");
    let short = body.replace(key, "short");
    let (status, v) = admin(a, "POST", "/__mock/settings", short.as_bytes());
    assert_eq!(status, 400, "{v}");
    let missing = r#"{"callback": {"url": "http://127.0.0.1:9/cb"}}"#;
    let (status, _) = admin(a, "POST", "/__mock/settings", missing.as_bytes());
    assert_eq!(status, 400);
    ok(a, "POST", "/__mock/settings", r#"{"callback": null}"#);
    assert!(mock.rules().callback.is_none());
}

#[test]
fn several_apps_have_their_own_tokens_and_a_corp_shares_its_uploads() {
    use wecom_material_mock::App;
    let mock = MockServer::start(MockConfig {
        apps: vec![
            App::new("ww-a", "s1"),
            App::new("ww-a", "s2"),
            App::new("ww-b", "s3"),
        ],
        ..MockConfig::default()
    });
    let a = mock.addr();
    let token = |corp: &str, secret: &str| {
        let r = get(
            a,
            &format!("/cgi-bin/gettoken?corpid={corp}&corpsecret={secret}"),
        );
        r.json()["access_token"].as_str().unwrap().to_owned()
    };
    let (t1, t2, t3) = (
        token("ww-a", "s1"),
        token("ww-a", "s2"),
        token("ww-b", "s3"),
    );
    assert!(t1 != t2 && t1 != t3 && t2 != t3);
    let r = upload(&mock, &t1, "file", "a.txt", b"corp a's file");
    let id = r.json()["media_id"].as_str().unwrap().to_owned();
    assert_eq!(mock.media(&id).unwrap().corp_id.as_deref(), Some("ww-a"));
    assert_eq!(get_media(a, &t2, &id).body, b"corp a's file");
    assert_eq!(get_media(a, &t3, &id).errcode(), 40007);
}

#[test]
fn a_job_still_running_at_a_reset_stores_nothing() {
    let mock = MockServer::start(MockConfig::default());
    let a = mock.addr();
    let data = vec![9u8; 5000];
    let (url, gate) = mock.serve_file_gated("held.mp4", data.clone());
    let t = token(&mock);
    let body = format!(
        r#"{{"scene":1,"type":"video","filename":"held.mp4","url":"{url}","md5":"{}"}}"#,
        md5_hex(&data)
    );
    let r = post_json(
        a,
        &format!("/cgi-bin/media/upload_by_url?access_token={t}"),
        &body,
    );
    let job = r.json()["jobid"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while gate.held() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the job never asked for the file"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    mock.reset();
    assert_eq!(mock.job_status(&job), None, "jobs are forgotten");
    // The gated file went with the reset; the job's fetch fails or ends, and stores nothing.
    gate.open();
    // The held request is answered (and counted, counts restart at the reset); the job then
    // has its bytes and would store them within moments.
    while stats(a)["mock-files"] == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the file was never served"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(stats(a)["media_count"], 0);
}
