//! The `CallbackReceiver` (an app's callback endpoint for tests and demos) and the gated file
//! server, driven with raw HTTP from the test and with the emulator's own deliveries.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, StatusCode};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use support::*;
use wecom_material_core::callback::{CallbackError, CallbackEvent};
use wecom_material_mock::{
    CallbackReceiver, DeliveryOutcome, JobStatus, MockConfig, MockServer, ReceivedCallback,
};

// The official test vectors (SPEC §8).
const TOKEN: &str = "QDG6eK";
const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const RECEIVE_ID: &str = "wx5823bf96d3bd56c7";
const ECHOSTR: &str =
    "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==";
const EVENT_ENCRYPT: &str = "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==";
const EVENT_SIGNATURE: &str = "477715d11cdb4164915debcba66cb864d751f3e6";
const CORP: &str = "ww-mock-corp";
const WAIT: Duration = Duration::from_secs(60);

/// A receiver whose `on_event` collects the events it is handed.
fn receiver(receive_id: &str) -> (CallbackReceiver, Arc<Mutex<Vec<CallbackEvent>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let receiver = CallbackReceiver::start(TOKEN, AES_KEY, receive_id, move |event| {
        sink.lock().unwrap().push(event.clone());
    })
    .unwrap();
    (receiver, seen)
}

fn enc(value: &str) -> String {
    utf8_percent_encode(value, NON_ALPHANUMERIC).to_string()
}

fn event_body() -> String {
    format!(
        "<xml><ToUserName><![CDATA[{RECEIVE_ID}]]></ToUserName><AgentID><![CDATA[218]]></AgentID>\
         <Encrypt><![CDATA[{EVENT_ENCRYPT}]]></Encrypt></xml>"
    )
}

#[test]
fn the_official_url_check_is_answered_with_the_plaintext_alone() {
    let (receiver, seen) = receiver(RECEIVE_ID);
    let target = format!(
        "/callback?msg_signature=5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3\
         &timestamp=1409659589&nonce=263014780&echostr={}",
        enc(ECHOSTR)
    );
    let r = get(receiver.addr(), &target);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"1616140317555161061");

    let received = receiver.wait_for_received(1, WAIT);
    assert_eq!(
        received,
        [ReceivedCallback {
            method: Method::GET,
            path_and_query: target,
            status: StatusCode::OK,
            event: None,
            error: None,
        }]
    );
    assert!(seen.lock().unwrap().is_empty(), "a URL check is no event");
}

#[test]
fn the_official_event_is_verified_and_a_bad_signature_is_refused_with_401() {
    let (receiver, seen) = receiver(RECEIVE_ID);
    let query = |signature: &str| {
        format!("/callback?msg_signature={signature}&timestamp=1409659813&nonce=1372623149")
    };
    let ok = send(
        receiver.addr(),
        "POST",
        &query(EVENT_SIGNATURE),
        &[("Content-Type", b"text/xml")],
        event_body().as_bytes(),
    );
    assert_eq!(ok.status, 200);
    assert!(ok.body.is_empty());

    let bad = send(
        receiver.addr(),
        "POST",
        &query(&"0".repeat(40)),
        &[("Content-Type", b"text/xml")],
        event_body().as_bytes(),
    );
    assert_eq!(bad.status, 401);

    let received = receiver.wait_for_received(2, WAIT);
    assert_eq!(received.len(), 2);
    match &received[0].event {
        Some(CallbackEvent::Other {
            msg_type, raw_xml, ..
        }) => {
            assert_eq!(msg_type, "text");
            assert!(raw_xml.contains("hello"), "{raw_xml}");
        }
        other => panic!("not the official text message: {other:?}"),
    }
    assert_eq!(received[1].method, Method::POST);
    assert_eq!(received[1].status, StatusCode::UNAUTHORIZED);
    assert_eq!(received[1].event, None);
    assert_eq!(received[1].error, Some(CallbackError::BadSignature));
    // `on_event` saw the verified event only.
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(Some(&seen[0]), received[0].event.as_ref());
    assert_eq!(receiver.events(), *seen);
}

#[test]
fn oversized_bodies_and_other_methods_are_refused_without_an_event() {
    let (receiver, seen) = receiver(RECEIVE_ID);
    let query = "/callback?msg_signature=x&timestamp=1&nonce=2";
    let big = vec![b'x'; 200 * 1024];
    let r = send(receiver.addr(), "POST", query, &[], &big);
    assert_eq!(r.status, 413);
    let r = send(receiver.addr(), "PUT", query, &[], b"");
    assert_eq!(r.status, 405);
    let received = receiver.wait_for_received(2, WAIT);
    assert!(matches!(
        received[0].error,
        Some(CallbackError::BodyTooLarge { .. })
    ));
    assert_eq!(received[1].error, Some(CallbackError::MethodNotAllowed));
    assert!(received.iter().all(|r| r.event.is_none()));
    assert!(seen.lock().unwrap().is_empty());
}

#[test]
fn an_event_delivered_by_the_emulator_arrives_verified() {
    let (receiver, seen) = receiver(CORP);
    let mock = MockServer::start(MockConfig {
        fetch_chunk_bytes: 1000,
        callback: Some(receiver.target()),
        ..MockConfig::default()
    });
    let data = vec![5u8; 2500];
    let job = submit(
        &mock,
        &mock.serve_file("clip.bin", data.clone(), true),
        &data,
    );

    let received = receiver.wait_for_received(1, WAIT);
    assert_eq!(received[0].method, Method::POST);
    assert!(
        received[0]
            .path_and_query
            .starts_with("/callback?msg_signature=")
    );
    assert_eq!(received[0].status, StatusCode::OK);
    match &received[0].event {
        Some(CallbackEvent::UploadMediaJobFinish {
            job_id, corp_id, ..
        }) => {
            assert_eq!(job_id.as_str(), job);
            assert_eq!(corp_id, CORP);
        }
        other => panic!("not a job-finished event: {other:?}"),
    }
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        [received[0].event.clone().unwrap()]
    );
    let deliveries = mock.wait_for_callback_deliveries(1, WAIT);
    assert_eq!(deliveries[0].outcome, DeliveryOutcome::Status(200));
}

#[test]
fn a_receiver_with_another_key_refuses_the_emulators_delivery() {
    let (receiver, seen) = receiver(CORP);
    let mock = MockServer::start(MockConfig {
        callback: Some(wecom_material_mock::CallbackTarget {
            encoding_aes_key: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG".into(),
            retries: 0,
            ..receiver.target()
        }),
        ..MockConfig::default()
    });
    let data = vec![5u8; 100];
    submit(
        &mock,
        &mock.serve_file("clip.bin", data.clone(), true),
        &data,
    );
    let received = receiver.wait_for_received(1, WAIT);
    assert_ne!(received[0].status, StatusCode::OK);
    assert_eq!(received[0].event, None);
    assert!(received[0].error.is_some());
    assert!(seen.lock().unwrap().is_empty());
    let deliveries = mock.wait_for_callback_deliveries(1, WAIT);
    assert_eq!(
        deliveries[0].outcome,
        DeliveryOutcome::Status(received[0].status.as_u16())
    );
}

#[test]
fn a_bad_key_is_refused_and_debug_output_hides_the_secrets() {
    let error = CallbackReceiver::start(TOKEN, "too short", CORP, |_| {}).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert!(!error.to_string().contains("too short"));

    let (receiver, _) = receiver(CORP);
    for printed in [format!("{receiver:?}"), format!("{:?}", receiver.target())] {
        assert!(printed.contains(&receiver.url()), "{printed}");
        assert!(!printed.contains(TOKEN), "{printed}");
        assert!(!printed.contains(AES_KEY), "{printed}");
    }
    assert!(receiver.url().starts_with("http://127.0.0.1:"));
    assert!(receiver.url().ends_with("/callback"));
}

#[test]
fn a_gated_file_holds_its_job_processing_until_the_gate_opens() {
    let mock = MockServer::start(MockConfig {
        fetch_chunk_bytes: 1000,
        ..MockConfig::default()
    });
    let data: Vec<u8> = (0..2500u32).map(|i| (i % 251) as u8).collect();
    let (url, gate) = mock.serve_file_gated("held/clip.bin", data.clone());
    assert!(url.starts_with(&mock.base_url()));
    assert!(!gate.is_open());
    let job = submit(&mock, &url, &data);
    // The job's first Range request is held, so the job stays processing.
    let give_up = std::time::Instant::now() + WAIT;
    while gate.held() == 0 {
        assert!(std::time::Instant::now() < give_up, "no request was held");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(mock.job_status(&job), Some(JobStatus::Processing));

    gate.open();
    assert!(gate.is_open());
    let Some(JobStatus::Finished { media_id, .. }) = mock.wait_for_job(&job, WAIT) else {
        panic!("the job did not finish")
    };
    assert_eq!(mock.media(&media_id).unwrap().bytes, data);
    // Once open, the file is served at once (with Range).
    let r = get_range(mock.addr(), &url.replace(&mock.base_url(), ""), "bytes=0-9");
    assert_eq!(r.status, 206);
    assert_eq!(r.body, data[..10]);
}

/// Starts an `upload_by_url` job of `url`, whose file is `data`; its job id.
fn submit(mock: &MockServer, url: &str, data: &[u8]) -> String {
    let t = token(mock);
    let body = serde_json::json!({
        "scene": 1, "type": "file", "filename": "clip.bin", "url": url, "md5": md5_hex(data),
    });
    let r = post_json(
        mock.addr(),
        &format!("/cgi-bin/media/upload_by_url?access_token={t}"),
        &body.to_string(),
    );
    assert_eq!(r.errcode(), 0, "{}", r.json());
    r.json()["jobid"].as_str().unwrap().to_owned()
}
