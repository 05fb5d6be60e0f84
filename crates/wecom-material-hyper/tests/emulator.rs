//! What is the async client's own, against the emulator on 127.0.0.1: its public methods
//! (each runs the task the shared part builds), its Debug and error texts, hyper's error
//! mapping (refused connections, TLS). Every behaviour of the task protocol is the
//! conformance kit's (`tests/conformance.rs`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use wecom_material_core::RetryPolicy;
use wecom_material_core::{ErrCode, Error, JobStatus, MediaId, MediaType, OperationKind};
use wecom_material_hyper::{Client, DownloadOptions, Transfer, Upload, md5_file};
use wecom_material_mock::{Endpoint, Fault, MediaKind, MockConfig, MockServer, samples};

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
        .prefix("wecom-hyper-test-")
        .tempdir()
        .unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

/// Each public method once: they build their task with the shared part and run it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_public_method_runs_its_operation() {
    let mock = mock();
    let client = client(&mock);
    let bytes = sample(MediaType::File, 300_001);
    let (_upload_dir, path) = temp_file("报告.pdf", &bytes);
    let from_path = client
        .upload(MediaType::File, Upload::path(&path), Transfer::default())
        .await
        .unwrap();
    assert_eq!(
        mock.media(from_path.media_id.as_str()).unwrap().filename,
        "报告.pdf"
    );
    // The reader is owned (`'static`): hyper polls the body on its connection's task.
    let reader = std::io::Cursor::new(bytes.clone());
    let upload = Upload::reader("r.pdf", Box::new(reader), bytes.len() as u64);
    let from_reader = client
        .upload(MediaType::File, upload, Transfer::default())
        .await;
    let png = Upload::bytes("头像.png", Bytes::from(samples::png(100)));
    let image = client.upload_image(png, Transfer::default()).await.unwrap();
    assert!(image.url.starts_with(&mock.base_url()));

    let id = from_reader.unwrap().media_id;
    let got = client.get(&id, DownloadOptions::default()).await.unwrap();
    assert!(got.bytes == bytes);
    let mut out = Vec::new();
    let options = DownloadOptions::default();
    let done = client.download(&from_path.media_id, &mut out, options, Transfer::default());
    assert_eq!(done.await.unwrap().bytes_written, bytes.len() as u64);
    assert!(out == bytes);
    let ((_target_dir, target), mut record) = (temp_file("out.bin", b""), None);
    let file = std::fs::File::options()
        .read(true)
        .write(true)
        .open(&target)
        .unwrap();
    let options = DownloadOptions::default().connections(2);
    let id = &from_path.media_id;
    let done = client.download_file(id, &file, options, &mut record, Transfer::default());
    done.await.unwrap();
    assert!(std::fs::read(&target).unwrap() == bytes);
    assert!(record.unwrap().is_complete());

    let md5 = md5_file(&path).await.unwrap();
    let url = mock.serve_file("big.pdf", bytes.clone(), true);
    let job = client
        .upload_by_url(MediaType::File, "big.pdf", &url, &md5)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = client.wait_job(&job.jobid, deadline).await.unwrap();
    assert!(matches!(status, JobStatus::Finished { .. }), "{status:?}");
    let again = client.job_result(&job.jobid).await.unwrap();
    assert_eq!(again, status);
    assert_eq!(mock.count(Endpoint::GetToken), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_is_not_sent() {
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
        .await
        .unwrap_err();
    match &err {
        Error::Transport(e) => assert_eq!(e.sent, wecom_material_core::error::Sent::No, "{err}"),
        other => panic!("{other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_import_and_no_secret_in_debug_or_errors() {
    let mock = mock();
    let client = client(&mock);
    client
        .upload(
            MediaType::File,
            Upload::bytes("a.txt", sample(MediaType::File, 64)),
            Transfer::default(),
        )
        .await
        .unwrap();
    let token = mock.access_token(CORP).unwrap();
    let stored = client.export_token().unwrap();
    for text in [format!("{client:?}"), format!("{stored:?}")] {
        assert!(!text.contains(SECRET) && !text.contains(&token), "{text}");
    }
    // A second client seeded with the token makes no gettoken call.
    let other = self::client(&mock);
    other.import_token(stored);
    other
        .upload(
            MediaType::File,
            Upload::bytes("b.txt", sample(MediaType::File, 64)),
            Transfer::default(),
        )
        .await
        .unwrap();
    assert_eq!(mock.count(Endpoint::GetToken), 1);

    let bad = Client::builder(CORP, "wrong-secret-value")
        .base_url(&mock.base_url())
        .unwrap()
        .build();
    let err = bad
        .get(&MediaId::new("x"), DownloadOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.errcode(), Some(ErrCode::InvalidCredential));
    assert!(!format!("{err} {err:?}").contains("wrong-secret-value"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_base_runs_rustls_and_a_failed_handshake_is_not_sent() {
    // A local "server" that accepts and hangs up: the TLS handshake fails in the connector.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    let client = Client::builder(CORP, SECRET)
        .base_url(&format!("https://{addr}"))
        .unwrap()
        .retry_policy(RetryPolicy::no_retries())
        .build();
    let err = client
        .get(&MediaId::new("x"), DownloadOptions::default())
        .await
        .unwrap_err();
    match &err {
        Error::Transport(e) => assert_eq!(e.sent, wecom_material_core::error::Sent::No, "{err}"),
        other => panic!("{other}"),
    }
    assert!(!format!("{err:?}").contains(SECRET));
}

/// Issue 19: an upload has an overall deadline too. The emulator holds the upload request
/// (without reading its body) for 3 s; the loop wakes at the 1 s deadline and the upload ends
/// with `DeadlineExceeded` naming the upload and its payload, the request dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_past_its_deadline_ends_with_deadline_exceeded_naming_the_upload() {
    let mock = mock();
    let client = client(&mock);
    let delay = Duration::from_secs(3);
    mock.fault(Endpoint::Upload, Fault::Delay { delay, times: 1 });
    let len = 4_000_000;
    let upload = Upload::bytes("a.bin", sample(MediaType::File, len));
    let transfer = Transfer::default().with_deadline(Duration::from_secs(1));
    let error = client
        .upload(MediaType::File, upload, transfer)
        .await
        .unwrap_err();
    let Error::DeadlineExceeded {
        operation: OperationKind::Upload,
        deadline,
        bytes,
        total: Some(total),
    } = error
    else {
        panic!("{error:?}");
    };
    assert_eq!((deadline, total), (Duration::from_secs(1), len as u64));
    assert!(bytes <= total, "{bytes}");
    assert!(
        error
            .to_string()
            .starts_with("upload's deadline of 1 s passed after "),
        "{error}"
    );
}

/// An upload that keeps moving for longer than the media idle timeout is not cut by it: the
/// payload comes from a reader that hands out 64 KiB every 100 ms (about 2 s in all) while the
/// idle timeout is 1 s. The upload succeeds and the emulator stored exactly the payload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_that_keeps_moving_longer_than_the_idle_timeout_does_not_time_out() {
    let mock = mock();
    let client = Client::builder(CORP, SECRET)
        .base_url(&mock.base_url())
        .unwrap()
        .retry_policy(RetryPolicy::no_retries())
        .media_idle_timeout(Duration::from_secs(1))
        .build();
    let (piece, pieces) = (64 * 1024, 20);
    let bytes = sample(MediaType::File, piece * pieces);
    let (mut writer, reader) = tokio::io::duplex(piece);
    let payload = bytes.clone();
    let feeder = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        for chunk in payload.chunks(piece) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            writer.write_all(chunk).await.unwrap();
        }
    });
    let upload = Upload::reader("slow.bin", Box::new(reader), bytes.len() as u64);
    let uploaded = client
        .upload(MediaType::File, upload, Transfer::default())
        .await
        .unwrap();
    feeder.await.unwrap();
    let stored = mock.media(uploaded.media_id.as_str()).unwrap();
    assert!(stored.bytes == bytes, "the stored media differs");
}

/// An upload whose server stops reading its body (the emulator holds the request 5 s) fails
/// at the media idle timeout with a transport error that names the send, maybe sent. 16 MB is
/// more than the socket buffers and the body's queue hold, so the send itself stops moving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_whose_server_stops_reading_fails_naming_the_send() {
    let mock = mock();
    let client = Client::builder(CORP, SECRET)
        .base_url(&mock.base_url())
        .unwrap()
        .retry_policy(RetryPolicy::no_retries())
        .media_idle_timeout(Duration::from_millis(500))
        .build();
    let warm = Upload::bytes("a.bin", sample(MediaType::File, 64));
    let warm = client.upload(MediaType::File, warm, Transfer::default());
    warm.await.unwrap();
    let delay = Duration::from_secs(5);
    mock.fault(Endpoint::Upload, Fault::Delay { delay, times: 1 });
    let upload = Upload::bytes("big.bin", sample(MediaType::File, 16_000_000));
    let error = client
        .upload(MediaType::File, upload, Transfer::default())
        .await
        .unwrap_err();
    let Error::Transport(transport) = &error else {
        panic!("{error:?}");
    };
    assert_eq!(
        transport.sent,
        wecom_material_core::error::Sent::Maybe,
        "{error}"
    );
    assert!(error.to_string().contains("sending the upload"), "{error}");
}
