//! Delivery of the encrypted job-finished callback to a small HTTP server of the test on
//! 127.0.0.1, which checks each POST with the core's `CallbackHandler`.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use support::*;
use wecom_material_core::callback::{CallbackConfig, CallbackEvent, CallbackHandler};
use wecom_material_mock::{
    CallbackDelivery, CallbackTarget, DeliveryOutcome, MockConfig, MockServer,
};

const TOKEN: &str = "QDG6eK";
const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const CORP: &str = "ww-mock-corp";
const WAIT: Duration = Duration::from_secs(60);

/// How the test server answers the n-th request (from 0).
#[derive(Clone, Copy)]
enum Answer {
    /// Run it through `CallbackHandler` and answer its reply.
    Handle,
    /// Answer this status without looking.
    Status(u16),
    /// Read the request and never answer (until the emulator gives up on it).
    Hang,
}

/// What the test server saw in one request.
#[derive(Debug)]
struct Received {
    method: String,
    target: String,
    /// The handler's verdict: the parsed event, or the error's text.
    verdict: Result<Option<CallbackEvent>, String>,
}

/// Starts a one-thread HTTP/1.1 server on 127.0.0.1:0; `answers[n]` says how to answer
/// request n (the last one repeats). Returns the callback URL and the stream of requests.
fn receiver(answers: Vec<Answer>) -> (String, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/wecom/callback?app=1",
        listener.local_addr().unwrap()
    );
    let handler = CallbackHandler::new(CallbackConfig::new(TOKEN, AES_KEY, CORP).unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut hung = Vec::new();
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { return };
            let answer = answers[n.min(answers.len() - 1)];
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut parts = line.split_whitespace();
            let method = parts.next().unwrap_or("").to_owned();
            let target = parts.next().unwrap_or("").to_owned();
            let mut len = 0usize;
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let query = target.split_once('?').map_or("", |(_, q)| q);
            let reply = handler.handle(&method.parse().unwrap(), query, &body);
            let verdict = reply
                .as_ref()
                .map(|r| r.event.clone())
                .map_err(|e| e.to_string());
            let mut stream = reader.into_inner();
            let (status, body) = match (answer, &reply) {
                (Answer::Handle, Ok(r)) => (r.status.as_u16(), r.body.to_vec()),
                (Answer::Handle, Err(e)) => (e.status().as_u16(), Vec::new()),
                (Answer::Status(s), _) => (s, Vec::new()),
                (Answer::Hang, _) => {
                    hung.push(stream);
                    let _ = tx.send(Received {
                        method,
                        target,
                        verdict,
                    });
                    continue;
                }
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
            let _ = tx.send(Received {
                method,
                target,
                verdict,
            });
        }
    });
    (url, rx)
}

fn start(target: CallbackTarget) -> MockServer {
    MockServer::start(MockConfig {
        fetch_chunk_bytes: 1000,
        callback: Some(target),
        ..MockConfig::default()
    })
}

fn target(url: &str) -> CallbackTarget {
    CallbackTarget::new(url, TOKEN, AES_KEY, CORP)
}

/// Starts an `upload_by_url` job of a file the emulator serves; its job id.
fn submit(mock: &MockServer, md5: Option<&str>) -> String {
    let data = vec![5u8; 2500];
    let url = mock.serve_file("clip.mp4", data.clone(), true);
    let md5 = md5.map_or_else(|| md5_hex(&data), str::to_owned);
    let t = token(mock);
    let body = serde_json::json!({
        "scene": 1, "type": "video", "filename": "clip.mp4", "url": url, "md5": md5,
    });
    let r = post_json(
        mock.addr(),
        &format!("/cgi-bin/media/upload_by_url?access_token={t}"),
        &body.to_string(),
    );
    assert_eq!(r.errcode(), 0, "{}", r.json());
    r.json()["jobid"].as_str().unwrap().to_owned()
}

#[track_caller]
fn assert_job_event(received: &Received, job: &str) {
    assert_eq!(received.method, "POST");
    assert!(
        received
            .target
            .starts_with("/wecom/callback?app=1&msg_signature=")
    );
    match &received.verdict {
        Ok(Some(CallbackEvent::UploadMediaJobFinish {
            job_id, corp_id, ..
        })) => {
            assert_eq!(job_id.as_str(), job);
            assert_eq!(corp_id, CORP);
        }
        other => panic!("not a verified job-finished event: {other:?}"),
    }
}

#[test]
fn finished_and_failed_jobs_are_delivered_signed_and_encrypted() {
    let (url, rx) = receiver(vec![Answer::Handle]);
    let mock = start(target(&url));
    let ok = submit(&mock, None);
    assert_job_event(&rx.recv_timeout(WAIT).unwrap(), &ok);
    let failed = submit(&mock, Some(&"0".repeat(32)));
    assert_job_event(&rx.recv_timeout(WAIT).unwrap(), &failed);

    let deliveries = mock.wait_for_callback_deliveries(2, WAIT);
    assert_eq!(
        deliveries,
        [
            CallbackDelivery {
                job_id: ok,
                attempt: 1,
                outcome: DeliveryOutcome::Status(200)
            },
            CallbackDelivery {
                job_id: failed,
                attempt: 1,
                outcome: DeliveryOutcome::Status(200)
            },
        ]
    );
}

#[test]
fn deliveries_without_a_200_are_retried_then_given_up() {
    // 500, then a hang past the timeout, then 200: three attempts of the same job.
    let (url, rx) = receiver(vec![Answer::Status(500), Answer::Hang, Answer::Handle]);
    let mock = start(CallbackTarget {
        timeout: Duration::from_millis(300),
        ..target(&url)
    });
    let job = submit(&mock, None);
    for _ in 0..3 {
        assert_job_event(&rx.recv_timeout(WAIT).unwrap(), &job);
    }
    let outcomes: Vec<_> = mock
        .wait_for_callback_deliveries(3, WAIT)
        .into_iter()
        .map(|d| (d.attempt, d.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            (1, DeliveryOutcome::Status(500)),
            (2, DeliveryOutcome::TimedOut),
            (3, DeliveryOutcome::Status(200)),
        ]
    );

    // A server that never says 200: 1 + `retries` attempts, then the emulator gives up.
    let (url, rx) = receiver(vec![Answer::Status(503)]);
    let mock = start(CallbackTarget {
        retries: 2,
        ..target(&url)
    });
    let job = submit(&mock, None);
    let deliveries = mock.wait_for_callback_deliveries(3, WAIT);
    assert_eq!(deliveries.len(), 3);
    assert!(
        deliveries
            .iter()
            .all(|d| d.job_id == job && d.outcome == DeliveryOutcome::Status(503))
    );
    for _ in 0..3 {
        assert_job_event(&rx.recv_timeout(WAIT).unwrap(), &job);
    }
}

#[test]
fn a_wrong_key_makes_the_handler_refuse_the_delivery() {
    // The emulator encrypts with another app's key: the test's handler must reject it.
    let (url, rx) = receiver(vec![Answer::Handle]);
    let mock = start(CallbackTarget {
        retries: 0,
        encoding_aes_key: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG".into(),
        ..target(&url)
    });
    submit(&mock, None);
    let received = rx.recv_timeout(WAIT).unwrap();
    assert!(received.verdict.is_err(), "{received:?}");
    let deliveries = mock.wait_for_callback_deliveries(1, WAIT);
    assert!(matches!(deliveries[0].outcome, DeliveryOutcome::Status(s) if s != 200));
}

#[test]
fn non_loopback_urls_and_bad_keys_are_refused_without_sending() {
    for (url, key) in [
        ("http://192.0.2.1/callback", AES_KEY),
        ("https://127.0.0.1/callback", AES_KEY),
        ("http://127.0.0.1:9/callback", "too short"),
    ] {
        let mock = start(CallbackTarget {
            encoding_aes_key: key.into(),
            ..target(url)
        });
        let job = submit(&mock, None);
        let deliveries = mock.wait_for_callback_deliveries(1, WAIT);
        assert_eq!(deliveries.len(), 1);
        assert_eq!(deliveries[0].job_id, job);
        assert!(
            matches!(&deliveries[0].outcome, DeliveryOutcome::Refused(why) if !why.contains(key)),
            "{deliveries:?}"
        );
    }
}

#[test]
fn the_target_debug_output_hides_the_secrets() {
    let printed = format!(
        "{:?}",
        MockConfig {
            callback: Some(target("http://127.0.0.1:1/cb")),
            ..MockConfig::default()
        }
    );
    assert!(printed.contains("http://127.0.0.1:1/cb"));
    assert!(!printed.contains(TOKEN));
    assert!(!printed.contains(AES_KEY));
}
