//! End to end: the emulator delivers the encrypted job-finished callback to a small server of
//! the test, which verifies it with the core's `CallbackHandler` and feeds the event to the
//! async client's `JobEvents`; a `wait_job` whose next poll is an hour away then finishes at once.
//!
//! Nothing here asserts on time: the proof that the callback finished the wait is the number
//! of job-result queries the emulator recorded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use wecom_material_core::callback::{CallbackConfig, CallbackHandler};
use wecom_material_core::md5sum::Md5Hex;
use wecom_material_core::{JobStatus, MediaType, PollPolicy};
use wecom_material_hyper::{Client, JobEvents};
use wecom_material_mock::{CallbackTarget, DeliveryOutcome, Endpoint, MockConfig, MockServer};

const CORP: &str = "ww-mock-corp";
const SECRET: &str = "mock-secret";
const TOKEN: &str = "QDG6eK";
const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const WAIT: Duration = Duration::from_secs(60);

/// A request read off a socket: method, request target, the `Range` header, body.
struct Request {
    method: String,
    target: String,
    range: Option<String>,
    body: Vec<u8>,
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let (mut len, mut range) = (0usize, None);
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        if h.trim().is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        if k.eq_ignore_ascii_case("content-length") {
            len = v.trim().parse().ok()?;
        } else if k.eq_ignore_ascii_case("range") {
            range = Some(v.trim().to_owned());
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        target,
        range,
        body,
    })
}

/// The application's callback endpoint, served on `listener`: every request goes through
/// `CallbackHandler`; a verified event is fed to the waiting calls.
fn serve_callbacks(listener: TcpListener, events: JobEvents) {
    let handler = CallbackHandler::new(CallbackConfig::new(TOKEN, AES_KEY, CORP).unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let Some(request) = read_request(&stream) else {
                continue;
            };
            let Ok(method) = request.method.parse() else {
                continue;
            };
            let query = request.target.split_once('?').map_or("", |(_, q)| q);
            let (status, body) = match handler.handle(&method, query, &request.body) {
                Ok(reply) => {
                    if let Some(event) = &reply.event {
                        events.notify(event);
                    }
                    (reply.status.as_u16(), reply.body.to_vec())
                }
                Err(error) => (error.status().as_u16(), Vec::new()),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
        }
    });
}

/// A file server with Range support that answers nothing until `release` is signalled, so
/// the job stays "processing" as long as the test needs. Returns its URL.
fn gated_file_server(data: Vec<u8>, release: mpsc::Receiver<()>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/files/clip.bin", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut released = false;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let Some(request) = read_request(&stream) else {
                continue;
            };
            if !released {
                if release.recv().is_err() {
                    return;
                }
                released = true;
            }
            let (start, end) = request
                .range
                .as_deref()
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.split_once('-'))
                .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)))
                .unwrap_or((0, data.len() - 1));
            let end = end.min(data.len() - 1);
            let chunk = &data[start..=end];
            let _ = write!(
                stream,
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{end}/{}\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                data.len(),
                chunk.len()
            );
            let _ = stream.write_all(chunk);
        }
    });
    url
}

fn md5_hex(data: &[u8]) -> String {
    let mut h = Md5Hex::new();
    h.update(data);
    h.finish()
}

/// Polls at once, then only after an hour: within the test, only an event can cause a
/// second poll.
fn hourly() -> PollPolicy {
    PollPolicy {
        first_interval: Duration::from_secs(3600),
        max_interval: Duration::from_secs(3600),
        ..PollPolicy::default()
    }
}

fn client(mock: &MockServer) -> Client {
    Client::builder(CORP, SECRET)
        .base_url(&mock.base_url())
        .unwrap()
        .job_poll_policy(hourly())
        .build()
}

/// Waits until the emulator has answered `n` job-result queries (bounded by `WAIT`).
async fn until_job_queries(mock: &MockServer, n: usize) {
    let give_up = Instant::now() + WAIT;
    while mock.count(Endpoint::GetUploadByUrlResult) < n {
        assert!(Instant::now() < give_up, "no job-result query arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callback_finishes_a_wait_whose_next_poll_is_an_hour_away() {
    // The emulator needs the callback URL, the client the emulator's URL, and the callback
    // server the client's event handle: bind first, serve once the client exists.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let callback_url = format!("http://{}/callback", listener.local_addr().unwrap());
    let mock = MockServer::start(MockConfig {
        callback: Some(CallbackTarget::new(callback_url, TOKEN, AES_KEY, CORP)),
        ..MockConfig::default()
    });
    let client = client(&mock);
    serve_callbacks(listener, client.job_events());

    let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let (release_tx, release_rx) = mpsc::channel();
    let file_url = gated_file_server(data.clone(), release_rx);
    let job = client
        .upload_by_url(MediaType::File, "clip.bin", &file_url, &md5_hex(&data))
        .await
        .unwrap();

    let waiter = {
        let client = client.clone();
        let job = job.jobid.clone();
        tokio::spawn(async move {
            client
                .wait_job(&job, Instant::now() + Duration::from_secs(7200))
                .await
        })
    };
    // The first, immediate poll is answered "processing" (the file is still held back).
    until_job_queries(&mock, 1).await;
    assert!(matches!(
        mock.job_status(job.jobid.as_str()),
        Some(wecom_material_mock::JobStatus::Processing)
    ));
    release_tx.send(()).unwrap();

    let status = waiter.await.unwrap().unwrap();
    let JobStatus::Finished { media_id, .. } = status else {
        panic!("the wait did not end with the job finished: {status:?}")
    };
    assert_eq!(mock.media(media_id.as_str()).unwrap().bytes, data);
    // Exactly two queries: the immediate one, and the one the callback triggered.
    assert_eq!(mock.count(Endpoint::GetUploadByUrlResult), 2);
    let deliveries = {
        let mock = mock.handle().clone();
        tokio::task::spawn_blocking(move || mock.wait_for_callback_deliveries(1, WAIT))
            .await
            .unwrap()
    };
    assert_eq!(deliveries[0].job_id, job.jobid.as_str());
    assert_eq!(deliveries[0].outcome, DeliveryOutcome::Status(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_callback_the_deadline_returns_processing() {
    let mock = MockServer::start(MockConfig::default());
    let client = client(&mock);
    let data = vec![3u8; 100];
    let (_release_tx, release_rx) = mpsc::channel();
    let file_url = gated_file_server(data.clone(), release_rx);
    let job = client
        .upload_by_url(MediaType::File, "clip.bin", &file_url, &md5_hex(&data))
        .await
        .unwrap();
    // A deadline already reached: one poll, and the last status is returned.
    let status = client.wait_job(&job.jobid, Instant::now()).await.unwrap();
    assert_eq!(status, JobStatus::Processing);
    assert_eq!(mock.count(Endpoint::GetUploadByUrlResult), 1);
}
