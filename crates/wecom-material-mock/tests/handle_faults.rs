//! The hostile faults, the network settings and the 45033 limit from Rust (`MockHandle` and
//! `MockConfig`): the same implementation the admin API drives.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::*;
use wecom_material_mock::{Endpoint, Fault, MockConfig, MockServer, Settings};

fn media_target(t: &str, id: &str) -> String {
    format!("/cgi-bin/media/get?access_token={t}&media_id={}", enc(id))
}

#[test]
fn error_body_without_content_type_and_with_error_code_header() {
    let mock = MockServer::start(MockConfig::default());
    let t = token(&mock);
    let id = mock.insert_media(vec![1u8; 100], "image/jpeg", "a.jpg");
    mock.fault(
        Endpoint::Get,
        Fault::ErrorBody {
            code: 40007,
            content_type: None,
            error_code_header: Some(40007),
            times: 1,
        },
    );
    let r = get(mock.addr(), &media_target(&t, &id));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), None);
    assert_eq!(r.header_str("error-code").as_deref(), Some("40007"));
    assert_eq!(r.json()["errcode"], 40007);
    let log = mock.requests_to(Endpoint::Get);
    assert_eq!(log[0].errcode, Some(40007));
    assert_eq!(
        get(mock.addr(), &media_target(&t, &id)).body,
        vec![1u8; 100]
    );
}

#[test]
fn expires_in_fault_and_forever_faults() {
    let mock = MockServer::start(MockConfig::default());
    mock.fault(
        Endpoint::GetToken,
        Fault::ExpiresIn {
            secs: 1,
            times: Fault::FOREVER,
        },
    );
    let target = "/cgi-bin/gettoken?corpid=ww-mock-corp&corpsecret=mock-secret";
    let tokens: Vec<String> = (0..3)
        .map(|_| {
            let r = get(mock.addr(), target);
            assert_eq!(r.json()["expires_in"], 1);
            r.json()["access_token"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(
        tokens[0] != tokens[1] && tokens[1] != tokens[2],
        "fresh each time"
    );
    mock.clear_faults();
    // The short token is still live (its remaining second is answered), until it expires.
    let r = get(mock.addr(), target);
    assert_eq!(r.json()["access_token"], tokens[2].as_str());
    assert_eq!(r.json()["expires_in"], 1);
    mock.expire_tokens();
    assert_eq!(get(mock.addr(), target).json()["expires_in"], 7200);
}

#[test]
fn echo_url_and_summary_masking() {
    let mock = MockServer::start(MockConfig::default());
    let t = token(&mock);
    mock.fault(
        Endpoint::Get,
        Fault::EchoUrl {
            status: 502,
            times: 1,
        },
    );
    let r = get(
        mock.addr(),
        &format!("/cgi-bin/media/get?access_token={t}&media_id=m1"),
    );
    assert_eq!(r.status, 502);
    assert!(String::from_utf8_lossy(&r.body).contains(&t));
    let rec = mock.requests_to(Endpoint::Get).remove(0);
    assert_eq!(
        rec.summary(),
        "GET /cgi-bin/media/get?access_token=***&media_id=m1 502 errcode=- req=0 resp=".to_owned()
            + &rec.response_len.unwrap().to_string()
            + " range=-"
    );
}

#[test]
fn stall_holds_the_body_then_completes() {
    let mock = MockServer::start(MockConfig::default());
    let t = token(&mock);
    let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
    let id = mock.insert_media(data.clone(), "application/octet-stream", "s.bin");
    mock.fault(
        Endpoint::Get,
        Fault::Stall {
            after_bytes: 10,
            pause: Duration::from_millis(300),
            times: 1,
        },
    );
    let started = Instant::now();
    let r = get(mock.addr(), &media_target(&t, &id));
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(r.body, data);
}

#[test]
fn config_latency_bandwidth_and_request_hook() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hook_seen = seen.clone();
    let mock = MockServer::start(MockConfig {
        latency: Duration::from_millis(100),
        bandwidth: Some(500_000),
        on_request: Some(Arc::new(move |r| {
            hook_seen.lock().unwrap().push(r.summary());
        })),
        ..MockConfig::default()
    });
    assert_eq!(
        mock.settings(),
        Settings {
            latency: Duration::from_millis(100),
            bandwidth: Some(500_000),
            max_concurrent_per_media: None,
        }
    );
    let t = token(&mock);
    let id = mock.insert_media(vec![5u8; 100_000], "application/octet-stream", "b.bin");
    let started = Instant::now();
    let r = get(mock.addr(), &media_target(&t, &id));
    // 100 ms latency + 100 KB at 500 KB/s: a lower bound only (never a speed check).
    assert!(started.elapsed() >= Duration::from_millis(100 + 190));
    assert_eq!(r.body, vec![5u8; 100_000]);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert!(
        seen[1].contains(" 200 errcode=- req=0 resp=100000 range=-"),
        "{}",
        seen[1]
    );
    assert!(
        !seen
            .iter()
            .any(|l| l.contains(&t) || l.contains("mock-secret"))
    );
}

#[test]
fn max_concurrent_per_media_from_config() {
    let mock = MockServer::start(MockConfig {
        max_concurrent_per_media: Some(2),
        ..MockConfig::default()
    });
    let t = token(&mock);
    let id = mock.insert_media(vec![8u8; 5000], "application/octet-stream", "c.bin");
    mock.fault(
        Endpoint::Get,
        Fault::Stall {
            after_bytes: 10,
            pause: Duration::from_millis(1500),
            times: 2,
        },
    );
    let open = |_: usize| {
        let mut s = TcpStream::connect(mock.addr()).unwrap();
        write!(
            s,
            "GET {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            media_target(&t, &id)
        )
        .unwrap();
        let mut head = [0u8; 12];
        s.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
        s
    };
    let held: Vec<TcpStream> = (0..2).map(open).collect();
    assert_eq!(get(mock.addr(), &media_target(&t, &id)).errcode(), 45033);
    assert_eq!(get(mock.addr(), &media_target(&t, &id)).errcode(), 45033);
    assert_eq!(mock.throttled(), 2);
    for mut s in held {
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
        assert!(rest.ends_with(&[8u8; 100]));
    }
    assert_eq!(
        get(mock.addr(), &media_target(&t, &id)).body,
        vec![8u8; 5000]
    );
    mock.clear_requests();
    assert_eq!(mock.throttled(), 0);
}
