//! The async client against the emulator on 127.0.0.1: every operation and the failure paths
//! the driver and the download plan own. The emulator runs on its own thread and runtime.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use wecom_material_core::RetryPolicy;
use wecom_material_core::{ErrCode, Error, JobStatus, MediaId, MediaType, Progress};
use wecom_material_hyper::{Client, DownloadOptions, Transfer, Upload, md5_file};
use wecom_material_mock::{Clock, Endpoint, Fault, MediaKind, MockConfig, MockServer, samples};

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

fn jpeg(len: usize) -> Bytes {
    Bytes::from(samples::jpeg(len))
}

fn png(len: usize) -> Bytes {
    Bytes::from(samples::png(len))
}

fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "wecom-hyper-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

const NAMES: [(MediaType, &str); 4] = [
    (MediaType::Image, "测试图片.jpg"),
    (MediaType::Voice, "语音 留言.amr"),
    (MediaType::Video, "视频\"引号\".mp4"),
    (MediaType::File, "报告（终稿）.pdf"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_bytes_of_every_type_with_chinese_names_and_gets_them_back() {
    let mock = mock();
    let client = client(&mock);
    for (media_type, name) in NAMES {
        let bytes = sample(media_type, 4096);
        let uploaded = client
            .upload(
                media_type,
                Upload::bytes(name, bytes.clone()),
                Transfer::default(),
            )
            .await
            .unwrap();
        assert_eq!(uploaded.media_type, media_type);
        assert_eq!(uploaded.expires_at, uploaded.created_at + 3 * 24 * 3600);
        let stored = mock.media(uploaded.media_id.as_str()).expect("stored");
        assert_eq!(stored.filename, name, "the name arrives as raw UTF-8");
        assert_eq!(stored.bytes, bytes);
        let media = client
            .get(&uploaded.media_id, DownloadOptions::default())
            .await
            .unwrap();
        assert_eq!(media.bytes, bytes);
        assert_eq!(media.info.server_filename.as_deref(), Some(name));
    }
    assert_eq!(mock.count(Endpoint::GetToken), 1, "one token for the run");
    for upload in mock.requests_to(Endpoint::Upload) {
        assert!(upload.headers.get("transfer-encoding").is_none());
        assert_eq!(
            upload.headers["content-length"].to_str().unwrap(),
            upload.body_len.to_string(),
            "the core's Content-Length is sent as is"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_files_and_readers_of_every_type_with_chinese_names() {
    let mock = mock();
    let client = client(&mock);
    for (media_type, name) in NAMES {
        let bytes = sample(media_type, 300_001);
        let path = temp_file(name, &bytes);
        let from_path = client
            .upload(media_type, Upload::path(&path), Transfer::default())
            .await
            .unwrap();
        let stored = mock.media(from_path.media_id.as_str()).unwrap();
        assert_eq!(stored.filename, name);
        assert!(stored.bytes == bytes, "{name}: file upload differs");

        let reader: &[u8] = &bytes;
        let from_reader = client
            .upload(
                media_type,
                Upload::reader(name, Box::new(reader), bytes.len() as u64),
                Transfer::default(),
            )
            .await
            .unwrap();
        let stored = mock.media(from_reader.media_id.as_str()).unwrap();
        assert_eq!(stored.filename, name);
        assert!(stored.bytes == bytes, "{name}: reader upload differs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_from_path_streams_the_file_and_reports_progress() {
    let mock = mock();
    let client = client(&mock);
    let bytes = sample(MediaType::File, 3_000_000);
    let path = temp_file("大文件.bin", &bytes);
    let last = std::sync::Mutex::new(None::<Progress>);
    let progress = |p: Progress| *last.lock().unwrap() = Some(p);
    let transfer = Transfer {
        progress: Some(&progress),
        cancel: None,
    };
    let uploaded = client
        .upload(MediaType::File, Upload::path(&path), transfer)
        .await
        .unwrap();
    let stored = mock.media(uploaded.media_id.as_str()).unwrap();
    assert!(stored.bytes == bytes);
    assert_eq!(stored.filename, "大文件.bin");
    let p = last.lock().unwrap().unwrap();
    assert_eq!(
        (p.done, p.total),
        (bytes.len() as u64, Some(bytes.len() as u64)),
        "progress counts the payload, not the multipart framing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_shorter_than_announced_fails_locally_and_is_not_resent() {
    let mock = mock();
    let client = client(&mock);
    let bytes = sample(MediaType::File, 1000);
    let reader: &[u8] = &bytes;
    let err = client
        .upload(
            MediaType::File,
            Upload::reader("short.bin", Box::new(reader), 5000),
            Transfer::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    let cause = std::error::Error::source(&err).map(ToString::to_string);
    assert!(cause.is_some_and(|c| c.contains("1000 of 5000")), "{err}");
    assert!(
        mock.count(Endpoint::Upload) <= 1,
        "a local failure ends the call: nothing is resent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_expiring_mid_run_is_refreshed_once_and_the_upload_resent_byte_identical() {
    let mock = MockServer::start(MockConfig {
        clock: Clock::manual(1_700_000_000),
        require_content_length: true,
        ..MockConfig::default()
    });
    let client = client(&mock);
    let first = client
        .upload(
            MediaType::File,
            Upload::bytes("a.txt", sample(MediaType::File, 100)),
            Transfer::default(),
        )
        .await
        .unwrap();
    // The server's clock passes the token's lifetime; the client's cache still holds it.
    mock.clock().advance(Duration::from_secs(7201));
    let path = temp_file("b.bin", &sample(MediaType::File, 500_000));
    let second = client
        .upload(MediaType::File, Upload::path(&path), Transfer::default())
        .await
        .unwrap();
    assert_ne!(first.media_id, second.media_id);
    assert_eq!(mock.count(Endpoint::GetToken), 2);
    let uploads = mock.requests_to(Endpoint::Upload);
    assert_eq!(
        uploads.len(),
        3,
        "first upload, the 42001 attempt, the resend"
    );
    assert_eq!(uploads[1].body_md5, uploads[2].body_md5, "byte-identical");
    assert_eq!(uploads[1].body_len, uploads[2].body_len);
    assert_ne!(
        uploads[1].query_param("access_token"),
        uploads[2].query_param("access_token")
    );

    // And a download with the next expired token.
    mock.clock().advance(Duration::from_secs(7201));
    let media = client
        .get(&second.media_id, DownloadOptions::default())
        .await
        .unwrap();
    assert_eq!(media.bytes.len(), 500_000);
    assert_eq!(mock.count(Endpoint::GetToken), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_upload_is_replayed_from_a_file_but_not_from_a_one_shot_reader() {
    let mock = mock();
    let client = client(&mock);
    let bytes = sample(MediaType::File, 2_000_000);
    let path = temp_file("c.bin", &bytes);
    mock.fault(
        Endpoint::Upload,
        Fault::DropMidRequest {
            after_bytes: 500_000,
            times: 1,
        },
    );
    let uploaded = client
        .upload(MediaType::File, Upload::path(&path), Transfer::default())
        .await
        .unwrap();
    assert!(mock.media(uploaded.media_id.as_str()).unwrap().bytes == bytes);
    assert_eq!(mock.count(Endpoint::Upload), 2);

    mock.clear_requests();
    mock.fault(
        Endpoint::Upload,
        Fault::DropMidRequest {
            after_bytes: 500_000,
            times: 1,
        },
    );
    let reader: &[u8] = &bytes;
    let err = client
        .upload(
            MediaType::File,
            Upload::reader("d.bin", Box::new(reader), bytes.len() as u64),
            Transfer::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotReplayable(_)), "{err}");
    assert!(err.to_string().contains("cannot be replayed"), "{err}");
    assert_eq!(
        mock.count(Endpoint::Upload),
        1,
        "a one-shot reader is not resent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_media_downloads_in_20mb_ranges_byte_identical() {
    let mock = mock();
    let client = client(&mock);
    let bytes = Bytes::from(
        (0..45_000_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect::<Vec<_>>(),
    );
    let id = MediaId::new(mock.insert_media(bytes.clone(), "video/mp4", "大视频.mp4"));
    let path = temp_file("out.mp4", b"");
    let mut file = tokio::fs::File::create(&path).await.unwrap();
    let last = std::sync::Mutex::new(None::<Progress>);
    let progress = |p: Progress| *last.lock().unwrap() = Some(p);
    let transfer = Transfer {
        progress: Some(&progress),
        cancel: None,
    };
    let done = client
        .download(&id, &mut file, DownloadOptions::default(), transfer)
        .await
        .unwrap();
    drop(file);
    assert_eq!(
        *last.lock().unwrap(),
        Some(Progress {
            done: 45_000_000,
            total: Some(45_000_000)
        })
    );
    assert_eq!(done.total, 45_000_000);
    assert_eq!(done.bytes_written, 45_000_000);
    assert_eq!(done.info.filename, "大视频.mp4");
    let out = std::fs::read(&path).unwrap();
    assert!(out == bytes, "downloaded bytes differ");
    let ranges: Vec<Option<String>> = mock
        .requests_to(Endpoint::Get)
        .iter()
        .map(|r| {
            r.headers
                .get("range")
                .map(|v| v.to_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(
        ranges,
        vec![
            None,
            Some("bytes=0-19999999".into()),
            Some("bytes=20000000-39999999".into()),
            Some("bytes=40000000-44999999".into()),
        ],
        "a whole request answered 830002, then three chunks of at most 20 MB"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_download_resumes_from_the_byte_reached() {
    let mock = mock();
    let client = Client::builder(CORP, SECRET)
        .base_url(&mock.base_url())
        .unwrap()
        .retry_policy(fast_retries())
        .chunk_size(100_000)
        .unwrap()
        .build();
    let bytes = sample(MediaType::File, 250_000);
    let id = MediaId::new(mock.insert_media(bytes.clone(), "application/octet-stream", "x.bin"));
    mock.fault(
        Endpoint::Get,
        Fault::TruncateBody {
            after_bytes: 30_000,
            times: 1,
        },
    );
    mock.fault(
        Endpoint::Get,
        Fault::DropMidBody {
            after_bytes: 10_000,
            times: 1,
        },
    );
    let mut out = Vec::new();
    let done = client
        .download(
            &id,
            &mut out,
            DownloadOptions::default(),
            Transfer::default(),
        )
        .await
        .unwrap();
    assert!(out == bytes, "resumed download differs");
    assert_eq!(done.bytes_written, 250_000);
    let ranges: Vec<String> = mock
        .requests_to(Endpoint::Get)
        .iter()
        .skip(1)
        .map(|r| r.headers["range"].to_str().unwrap().to_owned())
        .collect();
    // Whole request cut at 30,000; then a 100,000 chunk from there cut 10,000 in; the rest.
    assert_eq!(
        ranges,
        [
            "bytes=30000-129999",
            "bytes=40000-139999",
            "bytes=140000-239999",
            "bytes=240000-249999"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_tasks_share_one_gettoken() {
    let mock = mock();
    let client = client(&mock);
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .upload(
                        MediaType::File,
                        Upload::bytes(format!("f{i}.txt"), sample(MediaType::File, 64)),
                        Transfer::default(),
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(mock.count(Endpoint::GetToken), 1);
    assert_eq!(mock.count(Endpoint::Upload), 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_image_hd_voice_upload_by_url_and_job() {
    let mock = mock();
    let client = client(&mock);
    let image = client
        .upload_image(Upload::bytes("头像.png", png(100)), Transfer::default())
        .await
        .unwrap();
    assert!(image.url.starts_with(&mock.base_url()));
    let path = temp_file("图.jpg", &jpeg(5000));
    let image = client
        .upload_image(Upload::path(&path), Transfer::default())
        .await
        .unwrap();
    assert!(image.url.starts_with(&mock.base_url()));
    assert_eq!(mock.count(Endpoint::UploadImg), 2);

    let voice = sample(MediaType::Voice, 1000);
    let id = MediaId::new(mock.insert_media(voice.clone(), "audio/amr", "v.amr"));
    let hd = client
        .get(&id, DownloadOptions::default().hd_voice())
        .await
        .unwrap();
    assert_eq!(hd.info.content_type, "voice/speex");
    let mut out = Vec::new();
    let done = client
        .download(
            &id,
            &mut out,
            DownloadOptions::default().hd_voice(),
            Transfer::default(),
        )
        .await
        .unwrap();
    assert_eq!(done.bytes_written, out.len() as u64);
    assert_eq!(Bytes::from(out), hd.bytes);

    let big = sample(MediaType::File, 3_000_000);
    let path = temp_file("big.zip", &big);
    let md5 = md5_file(&path).await.unwrap();
    let url = mock.serve_file("big.zip", big.clone(), true);
    let job = client
        .upload_by_url(MediaType::File, "big.zip", &url, &md5)
        .await
        .unwrap();
    let status = client
        .wait_job(&job.jobid, Instant::now() + Duration::from_secs(30))
        .await
        .unwrap();
    let JobStatus::Finished { media_id, .. } = status else {
        panic!("job did not finish: {status:?}")
    };
    let mut out = Vec::new();
    client
        .download(
            &media_id,
            &mut out,
            DownloadOptions::default(),
            Transfer::default(),
        )
        .await
        .unwrap();
    assert!(out == big);

    let wrong = client
        .upload_by_url(MediaType::File, "big.zip", &url, &"0".repeat(32))
        .await
        .unwrap();
    let status = client
        .wait_job(&wrong.jobid, Instant::now() + Duration::from_secs(30))
        .await
        .unwrap();
    assert!(
        matches!(
            status,
            JobStatus::Failed {
                errcode: ErrCode::Md5Mismatch,
                ..
            }
        ),
        "{status:?}"
    );
    let first = client.job_result(&job.jobid).await.unwrap();
    assert!(matches!(first, JobStatus::Finished { .. }), "{first:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_stops_transfers_between_frames() {
    let mock = mock();
    let client = client(&mock);
    let bytes = sample(MediaType::File, 3_000_000);
    let id = MediaId::new(mock.insert_media(bytes.clone(), "application/octet-stream", "c.bin"));
    let cancel = wecom_material_core::CancelFlag::new();
    let progress = |p: Progress| {
        if p.done > 0 {
            cancel.cancel();
        }
    };
    let transfer = Transfer {
        progress: Some(&progress),
        cancel: Some(&cancel),
    };
    let mut out = Vec::new();
    let err = client
        .download(&id, &mut out, DownloadOptions::default(), transfer)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled { .. }), "{err}");
    assert!(out.len() < bytes.len());

    let cancel = wecom_material_core::CancelFlag::new();
    let progress = |p: Progress| {
        if p.done > 0 {
            cancel.cancel();
        }
    };
    let transfer = Transfer {
        progress: Some(&progress),
        cancel: Some(&cancel),
    };
    let path = temp_file("up.bin", &bytes);
    let err = client
        .upload(MediaType::File, Upload::path(&path), transfer)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled { .. }), "{err}");
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
async fn connection_refused_is_not_sent_and_http_status_pages_are_data() {
    // A port nothing listens on: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = Client::builder(CORP, SECRET)
        .base_url(&format!("http://127.0.0.1:{port}"))
        .unwrap()
        .retry_policy(RetryPolicy {
            max_transport_retries: 0,
            ..fast_retries()
        })
        .build();
    let err = client
        .get(&MediaId::new("x"), DownloadOptions::default())
        .await
        .unwrap_err();
    match &err {
        Error::Transport(e) => assert_eq!(e.sent, wecom_material_core::error::Sent::No, "{err}"),
        other => panic!("{other}"),
    }

    let mock = mock();
    let client = client_no_retry(&mock);
    mock.fault(
        Endpoint::Upload,
        Fault::HttpStatus {
            status: 502,
            body: "<html>bad gateway</html>".into(),
            times: 1,
        },
    );
    let err = client
        .upload(
            MediaType::File,
            Upload::bytes("a.txt", sample(MediaType::File, 64)),
            Transfer::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decode(_)), "{err}");

    // A redirect is data too: never followed (the token is in the query).
    mock.clear_requests();
    mock.fault(
        Endpoint::Get,
        Fault::HttpStatus {
            status: 302,
            body: "<html>moved</html>".into(),
            times: 1,
        },
    );
    let id = MediaId::new(mock.insert_media(&b"hello world"[..], "text/plain", "a.txt"));
    let mut out = Vec::new();
    let err = client
        .download(
            &id,
            &mut out,
            DownloadOptions::default(),
            Transfer::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decode(_)), "{err}");
    assert!(out.is_empty());
    assert_eq!(mock.requests().len(), 1, "nothing followed the redirect");
}

fn client_no_retry(mock: &MockServer) -> Client {
    Client::builder(CORP, SECRET)
        .base_url(&mock.base_url())
        .unwrap()
        .retry_policy(RetryPolicy::no_retries())
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_timeout_and_media_idle_timeout_end_stuck_calls_as_maybe_sent() {
    let mock = mock();
    let client = Client::builder(CORP, SECRET)
        .base_url(&mock.base_url())
        .unwrap()
        .retry_policy(RetryPolicy::no_retries())
        .json_timeout(Duration::from_millis(200))
        .media_idle_timeout(Duration::from_millis(200))
        .build();
    // Fetch the token first, so that the faults hit the business calls.
    client
        .upload(
            MediaType::File,
            Upload::bytes("a.txt", sample(MediaType::File, 64)),
            Transfer::default(),
        )
        .await
        .unwrap();
    mock.fault(
        Endpoint::GetUploadByUrlResult,
        Fault::Delay {
            delay: Duration::from_secs(5),
            times: 1,
        },
    );
    let err = client
        .job_result(&wecom_material_core::JobId::new("job"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Transport(e) if e.sent == wecom_material_core::error::Sent::Maybe),
        "{err}"
    );

    // The server reads nothing of the upload for a while: the body stalls.
    mock.fault(
        Endpoint::Upload,
        Fault::Delay {
            delay: Duration::from_secs(5),
            times: 1,
        },
    );
    let path = temp_file("stall.bin", &sample(MediaType::File, 8_000_000));
    let err = client
        .upload(MediaType::File, Upload::path(&path), Transfer::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Transport(e) if e.sent == wecom_material_core::error::Sent::Maybe),
        "{err}"
    );
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
