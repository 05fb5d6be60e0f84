//! End to end: the emulator delivers the encrypted job-finished callback to the emulator
//! crate's `CallbackReceiver` (the app's endpoint), which verifies it with the core's
//! `CallbackHandler` and feeds the event to the async client's `JobEvents`; a `wait_job` whose next
//! poll is an hour away then finishes at once.
//!
//! Nothing here asserts on time: the proof that the callback finished the wait is the number
//! of job-result queries the emulator recorded.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use http::StatusCode;
use wecom_material_core::md5sum::Md5Hex;
use wecom_material_core::{JobStatus, MediaType, PollPolicy};
use wecom_material_hyper::{Client, JobEvents};
use wecom_material_mock::{CallbackReceiver, DeliveryOutcome, Endpoint, MockConfig, MockServer};

const CORP: &str = "ww-mock-corp";
const SECRET: &str = "mock-secret";
const TOKEN: &str = "QDG6eK";
const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const WAIT: Duration = Duration::from_secs(60);

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
    // The emulator needs the receiver's URL, the client the emulator's URL, and the receiver
    // the client's event handle: the receiver starts first and gets the handle once the
    // client exists.
    let events: Arc<OnceLock<JobEvents>> = Arc::default();
    let receiver = {
        let events = events.clone();
        CallbackReceiver::start(TOKEN, AES_KEY, CORP, move |event| {
            if let Some(events) = events.get() {
                events.notify(event);
            }
        })
        .unwrap()
    };
    let mock = MockServer::start(MockConfig {
        callback: Some(receiver.target()),
        ..MockConfig::default()
    });
    let client = client(&mock);
    events.set(client.job_events()).unwrap();

    let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let (file_url, gate) = mock.serve_file_gated("files/clip.bin", data.clone());
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
    gate.open();

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
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].job_id, job.jobid.as_str());
    assert_eq!(deliveries[0].outcome, DeliveryOutcome::Status(200));
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].status, StatusCode::OK);
    assert_eq!(
        received[0].event.as_ref().and_then(|e| e.job_id()),
        Some(&job.jobid)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_callback_the_deadline_returns_processing() {
    let mock = MockServer::start(MockConfig::default());
    let client = client(&mock);
    let data = vec![3u8; 100];
    // Never opened: the job stays processing.
    let (file_url, _gate) = mock.serve_file_gated("files/clip.bin", data.clone());
    let job = client
        .upload_by_url(MediaType::File, "clip.bin", &file_url, &md5_hex(&data))
        .await
        .unwrap();
    // A deadline already reached: one poll, and the last status is returned.
    let status = client.wait_job(&job.jobid, Instant::now()).await.unwrap();
    assert_eq!(status, JobStatus::Processing);
    assert_eq!(mock.count(Endpoint::GetUploadByUrlResult), 1);
}
