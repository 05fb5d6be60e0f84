//! Scripted faults, the request log, concurrency and the async entry points.

mod support;

use std::time::Duration;

use support::*;
use wecom_material_mock::{Endpoint, Fault, MockConfig, MockServer};

#[test]
fn errcode_fault_then_normal_service() {
    let mock = MockServer::start(MockConfig::default());
    mock.fault(Endpoint::GetToken, Fault::Errcode { code: -1, times: 2 });
    let target = "/cgi-bin/gettoken?corpid=ww-mock-corp&corpsecret=mock-secret";
    assert_eq!(get(mock.addr(), target).errcode(), -1);
    assert_eq!(get(mock.addr(), target).errcode(), -1);
    assert_eq!(get(mock.addr(), target).errcode(), 0);
    assert_eq!(mock.count(Endpoint::GetToken), 3);
    // Faults are per endpoint.
    mock.fault(
        Endpoint::Upload,
        Fault::Errcode {
            code: 45033,
            times: 1,
        },
    );
    assert_eq!(get(mock.addr(), target).errcode(), 0);
    let t = token(&mock);
    assert_eq!(
        upload(&mock, &t, "file", "a.txt", b"0123456789").errcode(),
        45033
    );
    assert_eq!(
        upload(&mock, &t, "file", "a.txt", b"0123456789").errcode(),
        0
    );
}

#[test]
fn http_status_and_delay_faults() {
    let mock = MockServer::start(MockConfig::default());
    mock.fault(
        Endpoint::GetToken,
        Fault::HttpStatus {
            status: 502,
            body: "<html>Bad Gateway</html>".into(),
            times: 1,
        },
    );
    mock.fault(
        Endpoint::GetToken,
        Fault::Delay {
            delay: Duration::from_millis(20),
            times: 1,
        },
    );
    let target = "/cgi-bin/gettoken?corpid=ww-mock-corp&corpsecret=mock-secret";
    let r = get(mock.addr(), target);
    assert_eq!(r.status, 502);
    assert_eq!(r.body, b"<html>Bad Gateway</html>");
    assert_eq!(get(mock.addr(), target).errcode(), 0);
    mock.fault(Endpoint::GetToken, Fault::Errcode { code: 1, times: 5 });
    mock.clear_faults();
    assert_eq!(get(mock.addr(), target).errcode(), 0);
}

#[test]
fn dropped_requests_get_no_answer_and_are_recorded() {
    let mock = MockServer::start(MockConfig::default());
    let t = token(&mock);
    mock.fault(Endpoint::Upload, Fault::DropBeforeBody { times: 1 });
    mock.fault(
        Endpoint::Upload,
        Fault::DropMidRequest {
            after_bytes: 10,
            times: 1,
        },
    );
    let body = form(
        BOUNDARY,
        b"form-data; name=\"media\"; filename=\"a.txt\"",
        None,
        &[b'x'; 100_000],
    );
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    let target = format!("/cgi-bin/media/upload?access_token={t}&type=file");
    for _ in 0..2 {
        match raw(
            mock.addr(),
            "POST",
            &target,
            &[("Content-Type", ct.as_bytes())],
            &body,
        ) {
            Raw::Closed(bytes) => assert!(bytes.is_empty()),
            Raw::Resp(r) => panic!("expected a dropped connection, got {}", r.status),
        }
    }
    let recs = mock.requests_to(Endpoint::Upload);
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].body_len, 0);
    assert!(recs[1].body_len >= 10 && recs[1].body_len < body.len() as u64);
    // Then normal service.
    let r = send(
        mock.addr(),
        "POST",
        &target,
        &[("Content-Type", ct.as_bytes())],
        &body,
    );
    assert_eq!(r.errcode(), 0);
    let last = mock.requests_to(Endpoint::Upload).pop().unwrap();
    assert_eq!(last.body_len, body.len() as u64);
    assert_eq!(last.body_md5, md5_hex(&body));
    assert_eq!(last.method, http::Method::POST);
    assert_eq!(last.path, "/cgi-bin/media/upload");
    assert_eq!(last.query_param("type").as_deref(), Some("file"));
    assert_eq!(
        last.query_param("access_token").as_deref(),
        Some(t.as_str())
    );
    assert_eq!(last.headers["content-type"], ct.as_str());
}

#[test]
fn download_cut_short() {
    let mock = MockServer::start(MockConfig::default());
    let t = token(&mock);
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let id = mock.insert_media(data.clone(), "video/mp4", "v.mp4");
    let target = format!("/cgi-bin/media/get?access_token={t}&media_id={}", enc(&id));
    mock.fault(
        Endpoint::Get,
        Fault::TruncateBody {
            after_bytes: 100_000,
            times: 1,
        },
    );
    mock.fault(
        Endpoint::Get,
        Fault::DropMidBody {
            after_bytes: 70_000,
            times: 1,
        },
    );
    for cut in [100_000usize, 70_000] {
        let Raw::Resp(r) = raw(mock.addr(), "GET", &target, &[], b"") else {
            panic!("head expected")
        };
        assert_eq!(r.status, 200);
        assert_eq!(
            r.content_length,
            Some(300_000),
            "the head promises the whole file"
        );
        assert!(
            !r.body.is_empty() && r.body.len() <= cut,
            "{} bytes, cut at {cut}",
            r.body.len()
        );
        assert_eq!(r.body, &data[..r.body.len()]);
    }
    // Resume with Range after the cut.
    let r = get_range(mock.addr(), &target, "bytes=70000-");
    assert_eq!(r.body, &data[70_000..]);
}

#[test]
fn unknown_paths_are_recorded_and_out_of_scope_apis_answer_wecoms_json_error() {
    let mock = MockServer::start(MockConfig::default());
    let r = get(mock.addr(), "/nothing?x=1");
    assert_eq!(r.status, 404);
    assert!(r.body.is_empty());
    // An API the emulator does not implement answers as WeCom does: JSON with an errcode,
    // the token checked first.
    let r = get(mock.addr(), "/cgi-bin/message/send?x=1");
    assert_eq!((r.status, r.errcode()), (200, 41001));
    let t = token(&mock);
    let r = get(
        mock.addr(),
        &format!("/cgi-bin/message/send?access_token={t}"),
    );
    assert_eq!((r.status, r.errcode()), (200, 48002));
    assert!(
        r.json()["errmsg"]
            .as_str()
            .unwrap()
            .starts_with("api forbidden")
    );
    let r = get(mock.addr(), "/cgi-bin/message/send?access_token=nope");
    assert_eq!(r.errcode(), 40014);
    let recs = mock.requests();
    let other: Vec<_> = recs.iter().filter(|r| r.endpoint.is_none()).collect();
    assert_eq!(other.len(), 4);
    assert_eq!(other[0].query.as_deref(), Some("x=1"));
    assert_eq!(other[1].errcode, Some(41001));
    assert_eq!(
        mock.stats().iter().find(|(k, _)| k == "other").unwrap().1,
        4
    );
    mock.clear_requests();
    assert!(mock.requests().is_empty());
}

#[test]
fn sixty_four_concurrent_clients() {
    let mock = MockServer::start(MockConfig::default());
    let t = token(&mock);
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 241) as u8).collect();
    let id = mock.insert_media(data.clone(), "application/octet-stream", "f.bin");
    let addr = mock.addr();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(64));
    let threads: Vec<_> = (0..64)
        .map(|i| {
            let (t, id, data, barrier) = (t.clone(), id.clone(), data.clone(), barrier.clone());
            std::thread::spawn(move || {
                // Hold a connection open while the others connect.
                let held = std::net::TcpStream::connect(addr).unwrap();
                barrier.wait();
                let start = i * 1000;
                let r = get_range(
                    addr,
                    &format!("/cgi-bin/media/get?access_token={t}&media_id={}", enc(&id)),
                    &format!("bytes={start}-"),
                );
                assert_eq!(r.body, &data[start..]);
                drop(held);
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    assert_eq!(mock.count(Endpoint::Get), 64);
}

#[tokio::test(flavor = "current_thread")]
async fn blocking_client_inside_a_current_thread_runtime() {
    // The server has its own runtime, so this blocking call does not starve it.
    let mock = MockServer::start(MockConfig::default());
    let t = token(&mock);
    assert!(!t.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_on_the_callers_runtime() {
    let handle = wecom_material_mock::spawn(MockConfig::default())
        .await
        .unwrap();
    let addr = handle.addr();
    let r = tokio::task::spawn_blocking(move || {
        get(
            addr,
            "/cgi-bin/gettoken?corpid=ww-mock-corp&corpsecret=mock-secret",
        )
    })
    .await
    .unwrap();
    assert_eq!(r.errcode(), 0);
    assert_eq!(handle.count(Endpoint::GetToken), 1);
    handle.shutdown();
}

#[test]
fn run_blocking_serves_until_shutdown() {
    let (tx, rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        wecom_material_mock::run_blocking(
            "127.0.0.1:0".parse().unwrap(),
            MockConfig::default(),
            move |handle| tx.send(handle.clone()).unwrap(),
        )
    });
    let handle = rx.recv().unwrap();
    assert!(handle.base_url().starts_with("http://127.0.0.1:"));
    let r = get(
        handle.addr(),
        "/cgi-bin/gettoken?corpid=ww-mock-corp&corpsecret=mock-secret",
    );
    assert_eq!(r.errcode(), 0);
    handle.shutdown();
    server.join().unwrap().unwrap();
}
