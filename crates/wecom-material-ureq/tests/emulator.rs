//! The blocking client against the emulator on 127.0.0.1: every operation and the failure
//! paths the driver and the download plan own.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use wecom_material_core::RetryPolicy;
use wecom_material_core::{ErrCode, Error, JobStatus, MediaId, MediaType, Progress};
use wecom_material_mock::{Clock, Endpoint, Fault, MediaKind, MockConfig, MockServer, samples};
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

fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "wecom-ureq-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn uploads_every_type_with_chinese_names_and_gets_them_back() {
    let mock = mock();
    let client = client(&mock);
    for (media_type, name) in [
        (MediaType::Image, "测试图片.jpg"),
        (MediaType::Voice, "语音 留言.amr"),
        (MediaType::Video, "视频\"引号\".mp4"),
        (MediaType::File, "报告（终稿）.pdf"),
    ] {
        let bytes = sample(media_type, 4096);
        let uploaded = client
            .upload(
                media_type,
                Upload::bytes(name, bytes.clone()),
                Transfer::default(),
            )
            .unwrap();
        assert_eq!(uploaded.media_type, media_type);
        assert_eq!(uploaded.expires_at, uploaded.created_at + 3 * 24 * 3600);
        let stored = mock
            .media(uploaded.media_id.as_str())
            .expect("stored by the emulator");
        assert_eq!(
            stored.filename, name,
            "the display name arrives as raw UTF-8"
        );
        let media = client
            .get(&uploaded.media_id, DownloadOptions::default())
            .unwrap();
        assert_eq!(media.bytes, bytes);
        assert_eq!(media.info.server_filename.as_deref(), Some(name));
    }
    assert_eq!(
        mock.count(Endpoint::GetToken),
        1,
        "one token for the whole run"
    );
}

#[test]
fn upload_from_path_streams_the_file_and_reports_progress() {
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
        .unwrap();
    let stored = mock.media(uploaded.media_id.as_str()).unwrap();
    assert_eq!(stored.bytes, bytes);
    assert_eq!(stored.filename, "大文件.bin");
    let p = last.lock().unwrap().unwrap();
    assert_eq!(
        (p.done, p.total),
        (bytes.len() as u64, Some(bytes.len() as u64)),
        "progress counts the payload, not the multipart framing"
    );
}

#[test]
fn token_expiring_mid_run_is_refreshed_once_and_the_upload_resent_byte_identical() {
    let mock = MockServer::start(MockConfig {
        clock: Clock::manual(1_700_000_000),
        ..MockConfig::default()
    });
    let client = client(&mock);
    let first = client
        .upload(
            MediaType::File,
            Upload::bytes("a.txt", sample(MediaType::File, 100)),
            Transfer::default(),
        )
        .unwrap();
    // The server's clock moves past the token's lifetime; the client's cache still holds it.
    mock.clock().advance(Duration::from_secs(7201));
    let path = temp_file("b.bin", &sample(MediaType::File, 50_000));
    let second = client
        .upload(MediaType::File, Upload::path(&path), Transfer::default())
        .unwrap();
    assert_ne!(first.media_id, second.media_id);
    assert_eq!(mock.count(Endpoint::GetToken), 2);
    let uploads = mock.requests_to(Endpoint::Upload);
    assert_eq!(
        uploads.len(),
        3,
        "first upload, the 42001 attempt, the resend"
    );
    assert_eq!(
        uploads[1].body_md5, uploads[2].body_md5,
        "the resent body is byte-identical"
    );
    assert_eq!(uploads[1].body_len, uploads[2].body_len);
}

#[test]
fn dropped_upload_is_replayed_from_a_file_but_not_from_a_one_shot_reader() {
    let mock = mock();
    let client = client(&mock);
    let bytes = sample(MediaType::File, 200_000);
    let path = temp_file("c.bin", &bytes);
    mock.fault(
        Endpoint::Upload,
        Fault::DropMidRequest {
            after_bytes: 50_000,
            times: 1,
        },
    );
    let uploaded = client
        .upload(MediaType::File, Upload::path(&path), Transfer::default())
        .unwrap();
    assert_eq!(mock.media(uploaded.media_id.as_str()).unwrap().bytes, bytes);
    assert_eq!(mock.count(Endpoint::Upload), 2);

    mock.clear_requests();
    mock.fault(
        Endpoint::Upload,
        Fault::DropMidRequest {
            after_bytes: 50_000,
            times: 1,
        },
    );
    let err = client
        .upload(
            MediaType::File,
            Upload::reader(
                "d.bin",
                Box::new(std::io::Cursor::new(bytes.to_vec())),
                bytes.len() as u64,
            ),
            Transfer::default(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::NotReplayable(_)), "{err}");
    assert_eq!(
        mock.count(Endpoint::Upload),
        1,
        "a one-shot reader is not resent"
    );
}

#[test]
fn large_media_downloads_in_20mb_ranges_byte_identical() {
    let mock = mock();
    let client = client(&mock);
    let bytes = Bytes::from(
        (0..45_000_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect::<Vec<_>>(),
    );
    let id = MediaId::new(mock.insert_media(bytes.clone(), "video/mp4", "大视频.mp4"));
    let mut out = Vec::with_capacity(bytes.len());
    let done = client
        .download(
            &id,
            &mut out,
            DownloadOptions::default(),
            Transfer::default(),
        )
        .unwrap();
    assert_eq!(done.total, 45_000_000);
    assert_eq!(done.info.filename, "大视频.mp4");
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
        "a whole request answered 830002, then three chunks"
    );
}

#[test]
fn truncated_download_resumes_from_the_byte_reached() {
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
        .unwrap();
    assert!(out == bytes, "resumed download differs");
    assert_eq!(done.bytes_written, 250_000);
    let requests = mock.requests_to(Endpoint::Get);
    let second_range = requests[1].headers.get("range").unwrap().to_str().unwrap();
    assert!(
        second_range.starts_with("bytes=") && !second_range.starts_with("bytes=0-"),
        "resumed at {second_range}"
    );
}

#[test]
fn sixty_four_threads_share_one_gettoken() {
    let mock = mock();
    let client = client(&mock);
    std::thread::scope(|s| {
        for i in 0..64 {
            let client = client.clone();
            s.spawn(move || {
                client
                    .upload(
                        MediaType::File,
                        Upload::bytes(format!("f{i}.txt"), sample(MediaType::File, 64)),
                        Transfer::default(),
                    )
                    .unwrap();
            });
        }
    });
    assert_eq!(mock.count(Endpoint::GetToken), 1);
    assert_eq!(mock.count(Endpoint::Upload), 64);
}

#[test]
fn upload_image_hd_voice_upload_by_url_and_job() {
    let mock = mock();
    let client = client(&mock);
    let image = client.upload_image(
        Upload::bytes("头像.png", {
            let mut v = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
            v.extend([7u8; 100]);
            Bytes::from(v)
        }),
        Transfer::default(),
    );
    assert!(image.unwrap().url.starts_with(&mock.base_url()));

    let voice = sample(MediaType::Voice, 1000);
    let id = MediaId::new(mock.insert_media(voice.clone(), "audio/amr", "v.amr"));
    let hd = client
        .get(&id, DownloadOptions::default().hd_voice())
        .unwrap();
    assert_eq!(hd.info.content_type, "voice/speex");

    let big = sample(MediaType::File, 3_000_000);
    let path = temp_file("big.zip", &big);
    let md5 = md5_file(&path).unwrap();
    let url = mock.serve_file("big.zip", big.clone(), true);
    let job = client
        .upload_by_url(MediaType::File, "big.zip", &url, &md5)
        .unwrap();
    let status = client
        .wait_job(&job.jobid, Instant::now() + Duration::from_secs(30))
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
        .unwrap();
    assert!(out == big);

    let wrong = client
        .upload_by_url(MediaType::File, "big.zip", &url, &"0".repeat(32))
        .unwrap();
    let status = client
        .wait_job(&wrong.jobid, Instant::now() + Duration::from_secs(30))
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
}

#[test]
fn cancellation_stops_a_download_between_buffers() {
    let mock = mock();
    let client = client(&mock);
    let bytes = sample(MediaType::File, 1_000_000);
    let id = MediaId::new(mock.insert_media(bytes, "application/octet-stream", "c.bin"));
    let cancel = wecom_material_core::CancelFlag::new();
    let progress = |p: Progress| {
        if p.done > 0 {
            cancel.cancel();
        }
    };
    let mut out = Vec::new();
    let err = client
        .download(
            &id,
            &mut out,
            DownloadOptions::default(),
            Transfer {
                progress: Some(&progress),
                cancel: Some(&cancel),
            },
        )
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled { .. }), "{err}");
    assert!(out.len() < 1_000_000);
    out.flush().unwrap();
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
