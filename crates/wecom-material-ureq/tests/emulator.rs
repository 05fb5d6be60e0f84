//! What is the blocking client's own, against the emulator on 127.0.0.1: its public methods
//! (each runs the task the shared part builds), `upload_all`, its Debug and error texts, its
//! error mapping. Every behaviour of the task protocol is the conformance kit's
//! (`tests/conformance.rs`).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use wecom_material_core::OperationKind;
use wecom_material_core::error::Sent;
use wecom_material_core::{ErrCode, Error, JobStatus, MediaId, MediaType, Progress, RetryPolicy};
use wecom_material_mock::{Endpoint, Fault, MediaKind, MockConfig, MockServer, samples};
use wecom_material_ureq::{Client, DownloadOptions, Transfer, Upload, md5_file};

const CORP: &str = "ww-mock-corp";
const SECRET: &str = "mock-secret";

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        ..RetryPolicy::default()
    }
}

fn client(mock: &MockServer) -> Client {
    Client::builder(CORP, SECRET)
        .base_url(&mock.base_url())
        .unwrap()
        .retry_policy(fast_retries())
        .build()
}

fn mock() -> MockServer {
    MockServer::start(MockConfig {
        require_content_length: true,
        strict_ids: true,
        ..MockConfig::default()
    })
}

/// A payload the emulator accepts for `media_type`.
fn sample(media_type: MediaType, len: usize) -> Bytes {
    let kind = MediaKind::from_wire(media_type.as_str()).unwrap();
    Bytes::from(samples::for_kind(kind, len))
}

/// A file named `name` holding `bytes`, in a directory of its own that is removed when the
/// returned guard is dropped (also when the test fails).
fn temp_file(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("wecom-ureq-test-")
        .tempdir()
        .unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

/// Each public method once: they build their task with the shared part and run it.
#[test]
fn every_public_method_runs_its_operation() {
    let mock = mock();
    let client = client(&mock);
    let bytes = sample(MediaType::File, 300_001);
    let (_upload_dir, path) = temp_file("报告.pdf", &bytes);
    let from_path = client
        .upload(MediaType::File, Upload::path(&path), Transfer::default())
        .unwrap();
    assert_eq!(
        mock.media(from_path.media_id.as_str()).unwrap().filename,
        "报告.pdf"
    );
    let reader: &[u8] = &bytes;
    let upload = Upload::reader("r.pdf", Box::new(reader), bytes.len() as u64);
    let from_reader = client
        .upload(MediaType::File, upload, Transfer::default())
        .unwrap();
    let png = Upload::bytes("头像.png", Bytes::from(samples::png(100)));
    let image = client.upload_image(png, Transfer::default()).unwrap();
    assert!(image.url.starts_with(&mock.base_url()));

    let got = client
        .get(&from_reader.media_id, DownloadOptions::default())
        .unwrap();
    assert!(got.bytes == bytes);
    let mut out = Vec::new();
    let options = DownloadOptions::default();
    let done = client.download(&from_path.media_id, &mut out, options, Transfer::default());
    assert_eq!(done.unwrap().bytes_written, bytes.len() as u64);
    assert!(out == bytes);
    let ((_target_dir, target), mut record) = (temp_file("out.bin", b""), None);
    let file = std::fs::File::options()
        .read(true)
        .write(true)
        .open(&target)
        .unwrap();
    let options = DownloadOptions::default().connections(2);
    let id = &from_path.media_id;
    client
        .download_file(id, &file, options, &mut record, Transfer::default())
        .unwrap();
    assert!(std::fs::read(&target).unwrap() == bytes);
    assert!(record.unwrap().is_complete());

    let md5 = md5_file(&path).unwrap();
    let url = mock.serve_file("big.pdf", bytes.clone(), true);
    let job = client
        .upload_by_url(MediaType::File, "big.pdf", &url, &md5)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = client.wait_job(&job.jobid, deadline).unwrap();
    assert!(matches!(status, JobStatus::Finished { .. }), "{status:?}");
    let again = client.job_result(&job.jobid).unwrap();
    assert_eq!(again, status);
    assert_eq!(mock.count(Endpoint::GetToken), 1);
}

#[test]
fn connection_refused_is_not_sent() {
    // A port nothing listens on: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = Client::builder(CORP, SECRET)
        .base_url(&format!("http://127.0.0.1:{port}"))
        .unwrap()
        .retry_policy(RetryPolicy::no_retries())
        .build();
    let err = client
        .get(&MediaId::new("x"), DownloadOptions::default())
        .unwrap_err();
    assert!(
        matches!(&err, Error::Transport(e) if e.sent == Sent::No),
        "{err}"
    );
}

#[test]
fn many_uploads_at_once_share_one_token_keep_their_order_and_report_each_failure() {
    let mock = mock();
    let client = client(&mock);
    let mut uploads: Vec<wecom_material_ureq::Upload> = (0..12)
        .map(|i| {
            let body = Bytes::from(format!("file number {i}"));
            wecom_material_ureq::Upload::bytes(format!("f{i}.txt"), body)
        })
        .collect();
    uploads[5] = wecom_material_ureq::Upload::bytes("bad\nname.txt", Bytes::from("x".repeat(9)));
    let progress_seen = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&progress_seen);
    let transfer = Transfer::default().with_progress(move |p: Progress| {
        seen.fetch_max(p.done, Ordering::Relaxed);
    });
    let results = client.upload_all(wecom_material_core::MediaType::File, uploads, 4, transfer);
    assert_eq!(results.len(), 12);
    for (i, result) in results.into_iter().enumerate() {
        if i == 5 {
            assert!(matches!(result, Err(Error::Invalid(_))), "{result:?}");
            continue;
        }
        let stored = mock.media(result.unwrap().media_id.as_str()).unwrap();
        assert_eq!(stored.filename, format!("f{i}.txt"));
        assert_eq!(&stored.bytes[..], format!("file number {i}").as_bytes());
    }
    assert_eq!(mock.count(Endpoint::GetToken), 1);
    let payload: u64 = (0..12)
        .filter(|&i| i != 5)
        .map(|i| format!("file number {i}").len() as u64)
        .sum();
    assert_eq!(progress_seen.load(Ordering::Relaxed), payload);
}

#[test]
fn no_secret_in_debug_or_errors() {
    let mock = mock();
    let client = client(&mock);
    client
        .upload(
            MediaType::File,
            Upload::bytes("a.txt", sample(MediaType::File, 64)),
            Transfer::default(),
        )
        .unwrap();
    let token = mock.access_token(CORP).unwrap();
    let stored = client.export_token().unwrap();
    for text in [format!("{client:?}"), format!("{stored:?}")] {
        assert!(!text.contains(SECRET) && !text.contains(&token), "{text}");
    }
    let bad = Client::builder(CORP, "wrong-secret-value")
        .base_url(&mock.base_url())
        .unwrap()
        .build();
    let err = bad
        .get(&MediaId::new("x"), DownloadOptions::default())
        .unwrap_err();
    assert_eq!(err.errcode(), Some(ErrCode::InvalidCredential));
    assert!(!format!("{err} {err:?}").contains("wrong-secret-value"));
}

/// Issue 19: an upload has an overall deadline too. The emulator holds the upload request
/// for 3 s; with a 1 s deadline the upload ends with `DeadlineExceeded` naming the upload and
/// its payload (the blocking loop sees the deadline when the step in flight ends).
#[test]
fn an_upload_past_its_deadline_ends_with_deadline_exceeded_naming_the_upload() {
    let mock = mock();
    let client = client(&mock);
    let delay = Duration::from_secs(3);
    mock.fault(Endpoint::Upload, Fault::Delay { delay, times: 1 });
    let bytes = sample(MediaType::File, 100_000);
    let transfer = Transfer::default().with_deadline(Duration::from_secs(1));
    let upload = Upload::bytes("a.bin", bytes);
    let error = client
        .upload(MediaType::File, upload, transfer)
        .unwrap_err();
    let Error::DeadlineExceeded {
        operation: OperationKind::Upload,
        deadline,
        bytes,
        total: Some(100_000),
    } = error
    else {
        panic!("{error:?}");
    };
    assert_eq!(deadline, Duration::from_secs(1));
    assert!(bytes <= 100_000, "{bytes}");
    assert!(
        error
            .to_string()
            .starts_with("upload's deadline of 1 s passed after "),
        "{error}"
    );
}
