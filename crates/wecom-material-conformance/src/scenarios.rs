//! The scenarios, one function each, written once for every [`Driver`]: each starts its own
//! emulator, makes the clients it needs with the factory, and asserts on what the emulator
//! recorded (requests, ranges, bodies' MD5) and on the bytes and typed errors the transport
//! returned. A failed assertion panics with what differed.

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use wecom_material_core::error::Sent;
use wecom_material_core::md5sum::Md5Hex;
use wecom_material_core::{BaseUrl, CancelFlag, ClientSettings, DownloadOptions, ErrCode, Error};
use wecom_material_core::{JobStatus, MediaId, MediaType, PollPolicy, Progress, RetryPolicy};
use wecom_material_core::{OperationKind, SharedTokenPolicy, Transfer};
use wecom_material_mock::{CallbackReceiver, Clock, Endpoint, Fault, FileGate, Limits};
use wecom_material_mock::{MediaKind, MockConfig, MockServer, samples};

use crate::subject::Payload;
use crate::{Driver, JobEventsDelivery, MemoryStore, Recorder, Subject};

const CORP: &str = "ww-mock-corp";
const SECRET: &str = "mock-secret";
/// What the emulator's job-result stat is waited for, at most.
const PATIENCE: Duration = Duration::from_secs(30);

/// Names of every media type, Chinese, with a space, quotes and full-width parentheses.
const NAMES: [(MediaType, &str); 4] = [
    (MediaType::Image, "测试图片.jpg"),
    (MediaType::Voice, "语音 留言.amr"),
    (MediaType::Video, "视频\"引号\".mp4"),
    (MediaType::File, "报告（终稿）.pdf"),
];

/// An emulator that insists on `Content-Length` for uploads (as WeCom does).
fn mock(config: MockConfig) -> MockServer {
    MockServer::start(MockConfig {
        require_content_length: true,
        ..config
    })
}

/// Settings for the emulator: fast retries, everything else the defaults.
fn settings(mock: &MockServer) -> ClientSettings {
    let mut settings = ClientSettings::new(CORP, SECRET);
    settings.base = BaseUrl::parse(&mock.base_url()).unwrap_or_else(|e| panic!("{e}"));
    settings.retry_policy = RetryPolicy {
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        ..RetryPolicy::default()
    };
    settings
}

/// A payload the emulator accepts for `kind`.
fn sample(kind: MediaType, len: usize) -> Bytes {
    let kind = MediaKind::from_wire(kind.as_str()).unwrap_or_else(|| panic!("{kind:?}"));
    Bytes::from(samples::for_kind(kind, len))
}

/// `len` bytes that differ from their neighbours (a misplaced range shows).
fn media(len: usize) -> Bytes {
    let byte = |i: usize| ((i as u32).wrapping_mul(2_654_435_761) >> 24) as u8;
    Bytes::from((0..len).map(byte).collect::<Vec<_>>())
}

/// The prefix of this process's scenario directories (under the system's temporary one).
fn temp_prefix() -> String {
    format!("wecom-kit-{}-", std::process::id())
}

/// Removes this process's scenario directories when dropped (also when a scenario panics).
pub(crate) struct TempCleanup;

impl Drop for TempCleanup {
    fn drop(&mut self) {
        let (dir, prefix) = (std::env::temp_dir(), temp_prefix());
        let entries = std::fs::read_dir(&dir).into_iter().flatten().flatten();
        for entry in entries.filter(|e| e.file_name().to_string_lossy().starts_with(&prefix)) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A file named `name` holding `bytes`, in a directory of its own.
fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("{}{n}", temp_prefix()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}

/// An empty file to download into, read and written.
fn target() -> (PathBuf, File) {
    let path = temp_file("target.bin", b"");
    let file = File::options().read(true).write(true).open(&path);
    (
        path.clone(),
        file.unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
}

fn read(path: &PathBuf) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The Range headers of the downloads, in order (`None`: a whole request).
fn ranges(mock: &MockServer) -> Vec<Option<String>> {
    mock.requests_to(Endpoint::Get)
        .iter()
        .map(|r| r.range())
        .collect()
}

/// The `(first, last)` byte of every Range request.
fn range_bounds(mock: &MockServer) -> Vec<(u64, u64)> {
    let parse = |v: String| {
        let (a, b) = v.trim_start_matches("bytes=").split_once('-')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    };
    ranges(mock)
        .into_iter()
        .flatten()
        .filter_map(parse)
        .collect()
}

fn none() -> Transfer {
    Transfer::default()
}

fn md5(bytes: &[u8]) -> String {
    Md5Hex::of(bytes)
}

/// Every operation: uploads of each media type (bytes and files, Chinese names), upload_image,
/// get, download, HD voice, upload_by_url with its job result and wait; one gettoken for all;
/// the core's Content-Length sent as is (no chunked encoding).
pub async fn every_operation<D: Driver>(d: &D) {
    let mock = mock(MockConfig::default());
    let s = Subject::new(d, settings(&mock), None);
    for (kind, name) in NAMES {
        let bytes = sample(kind, 4096);
        let up = s
            .upload(kind, Payload::Bytes(name, bytes.clone()), &none())
            .await;
        let up = up.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(up.media_type, kind);
        assert_eq!(up.expires_at, up.created_at + 3 * 24 * 3600);
        let stored = mock.media(up.media_id.as_str()).expect("stored");
        assert_eq!(stored.filename, name, "the name arrives as raw UTF-8");
        assert!(stored.bytes == bytes, "{name}: stored bytes differ");
        let got = s.get(&up.media_id, DownloadOptions::default()).await;
        let got = got.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(got.bytes == bytes, "{name}: bytes got back differ");
        assert_eq!(got.info.server_filename.as_deref(), Some(name));

        let bytes = sample(kind, 300_001);
        let path = temp_file(name, &bytes);
        let up = s.upload(kind, Payload::Path(&path), &none()).await;
        let stored = mock.media(up.unwrap().media_id.as_str()).expect("stored");
        assert_eq!(stored.filename, name);
        assert!(stored.bytes == bytes, "{name}: file upload differs");
    }
    assert_eq!(mock.count(Endpoint::GetToken), 1, "one token for the run");
    for upload in mock.requests_to(Endpoint::Upload) {
        assert!(upload.headers.get("transfer-encoding").is_none());
        let length = upload
            .headers
            .get("content-length")
            .and_then(|v| v.to_str().ok());
        assert_eq!(length, Some(upload.body_len.to_string().as_str()));
    }

    let png = Bytes::from(samples::png(100));
    let image = s
        .upload_image(Payload::Bytes("头像.png", png))
        .await
        .unwrap();
    assert!(image.url.starts_with(&mock.base_url()), "{}", image.url);
    let path = temp_file("图.jpg", &samples::jpeg(5000));
    let image = s.upload_image(Payload::Path(&path)).await.unwrap();
    assert!(image.url.starts_with(&mock.base_url()), "{}", image.url);
    assert_eq!(mock.count(Endpoint::UploadImg), 2);

    let voice = sample(MediaType::Voice, 1000);
    let id = MediaId::new(mock.insert_media(voice, "audio/amr", "v.amr"));
    let hd = s
        .get(&id, DownloadOptions::default().hd_voice())
        .await
        .unwrap();
    assert_eq!(hd.info.content_type, "voice/speex");
    let mut out = Recorder::default();
    let options = DownloadOptions::default().hd_voice();
    let done = s.download(&id, &mut out, options, &none()).await.unwrap();
    assert_eq!(done.bytes_written, out.bytes.len() as u64);
    assert!(out.bytes == hd.bytes, "HD voice: get and download differ");
    assert_eq!(
        mock.count(Endpoint::GetJssdk),
        2,
        "HD voice asks media/get/jssdk"
    );

    let big = sample(MediaType::File, 3_000_000);
    let url = mock.serve_file("big.zip", big.clone(), true);
    let job = s
        .upload_by_url(MediaType::File, "big.zip", &url, &md5(&big))
        .await;
    let job = job.unwrap();
    let status = s
        .wait_job(&job.jobid, Instant::now() + PATIENCE)
        .await
        .unwrap();
    let JobStatus::Finished { media_id, .. } = status else {
        panic!("the job did not finish: {status:?}")
    };
    let mut out = Recorder::default();
    let options = DownloadOptions::default();
    s.download(&media_id, &mut out, options, &none())
        .await
        .unwrap();
    assert!(out.bytes == big, "the fetched file differs");
    let result = s.job_result(&job.jobid).await.unwrap();
    assert!(matches!(result, JobStatus::Finished { .. }), "{result:?}");

    let wrong = s
        .upload_by_url(MediaType::File, "big.zip", &url, &"0".repeat(32))
        .await;
    let status = s
        .wait_job(&wrong.unwrap().jobid, Instant::now() + PATIENCE)
        .await;
    assert!(
        matches!(
            status,
            Ok(JobStatus::Failed {
                errcode: ErrCode::Md5Mismatch,
                ..
            })
        ),
        "{status:?}"
    );
}

/// A reader read once uploads (every media type); one shorter than it announced fails locally with an I/O
/// error naming both lengths, and is not resent.
pub async fn upload_sources<D: Driver>(d: &D) {
    let mock = mock(MockConfig::default());
    let s = Subject::new(d, settings(&mock), None);
    for (kind, name) in NAMES {
        let bytes = sample(kind, 300_001);
        let once = Payload::Once(name, bytes.clone(), bytes.len() as u64);
        let up = s.upload(kind, once, &none()).await;
        let stored = mock.media(up.unwrap().media_id.as_str()).expect("stored");
        assert_eq!(stored.filename, name);
        assert!(stored.bytes == bytes, "{name}: the reader's upload differs");
    }

    mock.clear_requests();
    let short = Payload::Once("short.bin", sample(MediaType::File, 1000), 5000);
    let err = s.upload(MediaType::File, short, &none()).await.unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    // The message says this layer's part; the cause (the length rule) is its `source()`.
    let cause = std::error::Error::source(&err).map(ToString::to_string);
    assert!(
        cause.as_deref().is_some_and(|c| c.contains("1000 of 5000")),
        "{err}: {cause:?}"
    );
    assert!(
        mock.count(Endpoint::Upload) <= 1,
        "a local failure is not resent"
    );
}

/// 42001 (token expired), 40014 (token unknown) and 40001 (on a business call): one
/// gettoken each, and the upload resent byte-identical with the new token.
pub async fn rejected_token_refreshed_once_and_upload_resent<D: Driver>(d: &D) {
    let mock = mock(MockConfig {
        clock: Clock::manual(1_700_000_000),
        ..MockConfig::default()
    });
    let s = Subject::new(d, settings(&mock), None);
    let warm = Payload::Bytes("a.txt", sample(MediaType::File, 100));
    s.upload(MediaType::File, warm, &none()).await.unwrap();
    let path = temp_file("b.bin", &sample(MediaType::File, 500_000));
    for code in [42001, 40014, 40001] {
        mock.clear_requests();
        match code {
            42001 => mock.clock().advance(Duration::from_secs(7201)),
            40014 => mock.revoke_tokens(),
            _ => mock.fault(Endpoint::Upload, Fault::Errcode { code, times: 1 }),
        }
        let up = s
            .upload(MediaType::File, Payload::Path(&path), &none())
            .await;
        up.unwrap_or_else(|e| panic!("{code}: {e}"));
        assert_eq!(mock.count(Endpoint::GetToken), 1, "{code}: one refresh");
        let uploads = mock.requests_to(Endpoint::Upload);
        assert_eq!(
            uploads.len(),
            2,
            "{code}: the rejected attempt and the resend"
        );
        assert_eq!(uploads[0].errcode, Some(code));
        assert_eq!(
            uploads[0].body_md5, uploads[1].body_md5,
            "{code}: byte-identical"
        );
        assert_eq!(uploads[0].body_len, uploads[1].body_len);
        if code != 40001 {
            let token = |i: usize| uploads[i].query_param("access_token");
            assert_ne!(token(0), token(1), "{code}: resent with the new token");
        }
    }
    // A download with the next expired token.
    mock.clear_requests();
    mock.clock().advance(Duration::from_secs(7201));
    let id = MediaId::new(mock.insert_media(media(10_000), "application/octet-stream", "x"));
    let got = s.get(&id, DownloadOptions::default()).await.unwrap();
    assert!(got.bytes == media(10_000));
    assert_eq!(mock.count(Endpoint::GetToken), 1);
}

/// -1 (busy) twice: backed off and retried, then success.
pub async fn busy_backs_off_then_succeeds<D: Driver>(d: &D) {
    let mock = mock(MockConfig::default());
    let s = Subject::new(d, settings(&mock), None);
    mock.fault(Endpoint::Upload, Fault::Errcode { code: -1, times: 2 });
    let bytes = sample(MediaType::File, 1000);
    let payload = Payload::Bytes("busy.txt", bytes.clone());
    let up = s.upload(MediaType::File, payload, &none()).await.unwrap();
    assert!(mock.media(up.media_id.as_str()).expect("stored").bytes == bytes);
    let uploads = mock.requests_to(Endpoint::Upload);
    let codes: Vec<_> = uploads.iter().map(|r| r.errcode).collect();
    assert_eq!(codes, [Some(-1), Some(-1), Some(0)]);
    assert!(uploads.iter().all(|r| r.body_md5 == uploads[0].body_md5));
}

/// 45009 (daily quota): surfaced as a rate-limit error, never retried.
pub async fn quota_is_surfaced_never_retried<D: Driver>(d: &D) {
    let mock = mock(MockConfig::default());
    let s = Subject::new(d, settings(&mock), None);
    let fault = Fault::Errcode {
        code: 45009,
        times: Fault::FOREVER,
    };
    mock.fault(Endpoint::UploadImg, fault);
    let png = Bytes::from(samples::png(100));
    let err = s
        .upload_image(Payload::Bytes("a.png", png))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RateLimited(_)), "{err}");
    assert_eq!(err.errcode(), Some(ErrCode::RateLimited));
    assert_eq!(mock.count(Endpoint::UploadImg), 1, "never retried");
}

/// A connection dropped mid-upload: a file is sent again whole, a one-shot reader is not
/// (`NotReplayable`).
pub async fn dropped_upload_replayed_only_from_a_file<D: Driver>(d: &D) {
    let mock = mock(MockConfig::default());
    let s = Subject::new(d, settings(&mock), None);
    let bytes = sample(MediaType::File, 2_000_000);
    let path = temp_file("c.bin", &bytes);
    let drop = || Fault::DropMidRequest {
        after_bytes: 500_000,
        times: 1,
    };
    mock.fault(Endpoint::Upload, drop());
    let up = s
        .upload(MediaType::File, Payload::Path(&path), &none())
        .await
        .unwrap();
    assert!(mock.media(up.media_id.as_str()).expect("stored").bytes == bytes);
    assert_eq!(mock.count(Endpoint::Upload), 2);

    mock.clear_requests();
    mock.fault(Endpoint::Upload, drop());
    let once = Payload::Once("d.bin", bytes.clone(), bytes.len() as u64);
    let err = s.upload(MediaType::File, once, &none()).await.unwrap_err();
    assert!(matches!(err, Error::NotReplayable(_)), "{err}");
    assert_eq!(
        mock.count(Endpoint::Upload),
        1,
        "a one-shot reader is not resent"
    );
}

/// A media over the server's chunk limit: the whole request answers 830002, then Range
/// chunks of at most that size, byte-identical, progress ending at the length.
pub async fn large_media_in_range_chunks<D: Driver>(d: &D) {
    let mock = mock(MockConfig {
        limits: Limits {
            max_download_chunk: 1_000_000,
            ..Limits::default()
        },
        ..MockConfig::default()
    });
    let mut settings = settings(&mock);
    settings.chunk_size = 1_000_000;
    let s = Subject::new(d, settings, None);
    let bytes = media(2_500_000);
    let id = MediaId::new(mock.insert_media(bytes.clone(), "video/mp4", "大视频.mp4"));
    let (transfer, seen) = recording();
    let mut out = Recorder::default();
    let options = DownloadOptions::default();
    let done = s.download(&id, &mut out, options, &transfer).await.unwrap();
    assert!(out.bytes == bytes, "downloaded bytes differ");
    assert_eq!((done.total, done.bytes_written), (2_500_000, 2_500_000));
    assert_eq!(done.info.filename, "大视频.mp4");
    let last = seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .last()
        .copied();
    assert_eq!(
        last.map(|p| (p.done, p.total)),
        Some((2_500_000, Some(2_500_000)))
    );
    let expected = [
        None,
        Some("bytes=0-999999"),
        Some("bytes=1000000-1999999"),
        Some("bytes=2000000-2499999"),
    ];
    let expected: Vec<_> = expected.iter().map(|r| r.map(str::to_owned)).collect();
    assert_eq!(
        ranges(&mock),
        expected,
        "830002, then chunks of at most 1,000,000"
    );
    let first = mock.requests_to(Endpoint::Get)[0].errcode;
    assert_eq!(first, Some(830_002));
}

/// A body that ends early and a connection cut mid-body: each resumed from the byte reached.
pub async fn broken_bodies_resume_from_the_byte_reached<D: Driver>(d: &D) {
    let mock = mock(MockConfig::default());
    let mut settings = settings(&mock);
    settings.chunk_size = 100_000;
    let s = Subject::new(d, settings, None);
    let bytes = media(250_000);
    let id = MediaId::new(mock.insert_media(bytes.clone(), "application/octet-stream", "x.bin"));
    let truncate = Fault::TruncateBody {
        after_bytes: 30_000,
        times: 1,
    };
    mock.fault(Endpoint::Get, truncate);
    let cut = Fault::DropMidBody {
        after_bytes: 10_000,
        times: 1,
    };
    mock.fault(Endpoint::Get, cut);
    let mut out = Recorder::default();
    let options = DownloadOptions::default();
    let done = s.download(&id, &mut out, options, &none()).await.unwrap();
    assert!(out.bytes == bytes, "resumed download differs");
    assert_eq!(done.bytes_written, 250_000);
    let asked: Vec<_> = ranges(&mock).into_iter().skip(1).flatten().collect();
    // The whole request cut at 30,000; a 100,000 chunk from there cut 10,000 in; the rest.
    let expected = [
        "bytes=30000-129999",
        "bytes=40000-139999",
        "bytes=140000-239999",
        "bytes=240000-249999",
    ];
    assert_eq!(asked, expected);
}

/// A body that stops without closing is ended by the media idle timeout (short here) and
/// resumed from the byte reached, long before the stall would have ended.
pub async fn stalled_body_ended_by_the_idle_timeout<D: Driver>(d: &D) {
    let mock = mock(MockConfig::default());
    let mut settings = settings(&mock);
    settings.media_idle_timeout = Duration::from_millis(300);
    let s = Subject::new(d, settings, None);
    let bytes = media(200_000);
    let id = MediaId::new(mock.insert_media(bytes.clone(), "application/octet-stream", "s.bin"));
    let stall = Fault::Stall {
        after_bytes: 50_000,
        pause: Duration::from_secs(20),
        times: 1,
    };
    mock.fault(Endpoint::Get, stall);
    let mut out = Recorder::default();
    let options = DownloadOptions::default();
    let done = s.download(&id, &mut out, options, &none()).await.unwrap();
    assert!(out.bytes == bytes, "the download after the stall differs");
    assert_eq!(done.bytes_written, 200_000);
    let asked = ranges(&mock);
    assert_eq!(asked.len(), 2, "{asked:?}");
    let resumed = asked[1].as_deref().unwrap_or("");
    assert!(
        resumed.starts_with("bytes=50000-"),
        "resumed at the byte reached: {resumed}"
    );
}

/// A JSON call that gets no answer ends at the JSON timeout; an upload the server stops
/// reading ends at the media idle timeout; both as "maybe sent" transport errors.
pub async fn stuck_calls_end_by_their_timeouts<D: Driver>(d: &D) {
    let mock = mock(MockConfig::default());
    let mut settings = settings(&mock);
    settings.retry_policy = RetryPolicy::no_retries();
    settings.json_timeout = Duration::from_millis(300);
    settings.media_idle_timeout = Duration::from_millis(300);
    let s = Subject::new(d, settings, None);
    let warm = Payload::Bytes("a.txt", sample(MediaType::File, 64));
    s.upload(MediaType::File, warm, &none()).await.unwrap();
    let delay = || Fault::Delay {
        delay: Duration::from_secs(5),
        times: 1,
    };
    mock.fault(Endpoint::GetUploadByUrlResult, delay());
    let job = wecom_material_core::JobId::new("job");
    let err = s.job_result(&job).await.unwrap_err();
    assert!(
        matches!(&err, Error::Transport(e) if e.sent == Sent::Maybe),
        "{err}"
    );

    mock.fault(Endpoint::Upload, delay());
    let path = temp_file("stall.bin", &sample(MediaType::File, 8_000_000));
    let err = s
        .upload(MediaType::File, Payload::Path(&path), &none())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Transport(e) if e.sent == Sent::Maybe),
        "{err}"
    );
}

/// An error object under any Content-Type (or none) is an error, never written to the sink;
/// a JSON media with its Content-Disposition is media.
pub async fn error_answers_never_reach_the_sink<D: Driver>(d: &D) {
    let mock = mock(MockConfig::default());
    let s = Subject::new(d, settings(&mock), None);
    let id = MediaId::new(mock.insert_media(media(5000), "video/mp4", "v.mp4"));
    for content_type in [Some("application/octet-stream"), None, Some("image/jpeg")] {
        let fault = Fault::ErrorBody {
            code: 40007,
            content_type: content_type.map(str::to_owned),
            error_code_header: None,
            times: 1,
        };
        mock.fault(Endpoint::Get, fault);
        let mut out = Recorder::default();
        let options = DownloadOptions::default();
        let err = s
            .download(&id, &mut out, options, &none())
            .await
            .unwrap_err();
        assert_eq!(err.errcode(), Some(ErrCode::InvalidMediaId), "{err}");
        assert!(out.bytes.is_empty(), "an error answer reached the sink");
        let (path, file) = target();
        let options = DownloadOptions::default().connections(2);
        mock.fault(
            Endpoint::Get,
            Fault::Errcode {
                code: 40007,
                times: 1,
            },
        );
        let (result, _) = s.download_file(&id, &file, options, None, &none()).await;
        assert_eq!(result.unwrap_err().errcode(), Some(ErrCode::InvalidMediaId));
        assert!(read(&path).is_empty(), "an error answer reached the file");
    }
    let json = Bytes::from_static(br#"{"not": "an error", "errcode": 0}"#);
    let json_id = MediaId::new(mock.insert_media(json.clone(), "application/json", "a.json"));
    let got = s.get(&json_id, DownloadOptions::default()).await.unwrap();
    assert!(got.bytes == json, "a JSON media is media");
}

/// An HTTP error page is a decode error; a redirect is never followed (the token is in the
/// query string) and never written.
pub async fn status_pages_are_data_and_redirects_not_followed<D: Driver>(d: &D) {
    let mock = mock(MockConfig::default());
    let mut settings = settings(&mock);
    settings.retry_policy = RetryPolicy::no_retries();
    let s = Subject::new(d, settings, None);
    let page = |status: u16, body: &str| Fault::HttpStatus {
        status,
        body: body.into(),
        times: 1,
    };
    mock.fault(Endpoint::Upload, page(502, "<html>bad gateway</html>"));
    let small = Payload::Bytes("a.txt", sample(MediaType::File, 64));
    let err = s.upload(MediaType::File, small, &none()).await.unwrap_err();
    assert!(matches!(err, Error::Decode(_)), "{err}");

    mock.clear_requests();
    mock.fault(Endpoint::Get, page(302, "<html>moved</html>"));
    let id = MediaId::new(mock.insert_media(&b"hello world"[..], "text/plain", "a.txt"));
    let mut out = Recorder::default();
    let options = DownloadOptions::default();
    let err = s
        .download(&id, &mut out, options, &none())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decode(_)), "{err}");
    assert!(out.bytes.is_empty());
    assert_eq!(mock.requests().len(), 1, "nothing followed the redirect");
}

/// Progress counts payload bytes, never the multipart framing: an upload's last report is
/// the file's length; a download's, the media's.
pub async fn progress_counts_payload_bytes<D: Driver>(d: &D) {
    let mock = mock(MockConfig::default());
    let s = Subject::new(d, settings(&mock), None);
    let bytes = sample(MediaType::File, 3_000_000);
    let path = temp_file("大文件.bin", &bytes);
    let (transfer, seen) = recording();
    let up = s
        .upload(MediaType::File, Payload::Path(&path), &transfer)
        .await
        .unwrap();
    assert!(mock.media(up.media_id.as_str()).expect("stored").bytes == bytes);
    let reports = std::mem::take(&mut *seen.lock().unwrap_or_else(|e| e.into_inner()));
    let len = bytes.len() as u64;
    assert_eq!(
        reports.last().map(|p| (p.done, p.total)),
        Some((len, Some(len)))
    );
    assert!(
        reports.windows(2).all(|w| w[0].done <= w[1].done),
        "never backwards"
    );
    assert!(reports.len() > 1, "reported as it moved: {}", reports.len());

    let mut out = Recorder::default();
    let options = DownloadOptions::default();
    s.download(&up.media_id, &mut out, options, &transfer)
        .await
        .unwrap();
    let reports = std::mem::take(&mut *seen.lock().unwrap_or_else(|e| e.into_inner()));
    assert_eq!(
        reports.last().map(|p| (p.done, p.total)),
        Some((len, Some(len)))
    );
}

/// Cancel mid-download: `Cancelled` counts exactly the bytes that reached the sink (a prefix
/// of the media) and the sink was flushed. Cancel mid-upload: `Cancelled`, nothing stored.
pub async fn cancel_mid_upload_and_mid_download<D: Driver>(d: &D) {
    let mock = mock(MockConfig {
        bandwidth: Some(20_000_000),
        ..MockConfig::default()
    });
    let s = Subject::new(d, settings(&mock), None);
    let bytes = sample(MediaType::File, 3_000_000);
    let id = MediaId::new(mock.insert_media(bytes.clone(), "application/octet-stream", "c.bin"));
    let cancel = CancelFlag::new();
    let transfer = cancelled_past(&cancel, 0);
    let mut out = Recorder::default();
    let options = DownloadOptions::default();
    let err = s
        .download(&id, &mut out, options, &transfer)
        .await
        .unwrap_err();
    let Error::Cancelled {
        operation: OperationKind::Download,
        bytes: bytes_written,
        ..
    } = err
    else {
        panic!("not cancelled: {err}")
    };
    assert_eq!(
        bytes_written,
        out.bytes.len() as u64,
        "every byte written is counted"
    );
    assert!(
        bytes_written > 0 && bytes_written < bytes.len() as u64,
        "{bytes_written}"
    );
    assert!(
        bytes[..out.bytes.len()] == out.bytes[..],
        "a prefix of the media"
    );
    assert!(out.flushes >= 1, "the sink is flushed on cancel");

    let cancel = CancelFlag::new();
    let transfer = cancelled_past(&cancel, 0);
    mock.clear_requests();
    let path = temp_file("up.bin", &bytes);
    let err = s
        .upload(MediaType::File, Payload::Path(&path), &transfer)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Cancelled {
                operation: OperationKind::Upload,
                ..
            }
        ),
        "{err}"
    );
    let stored = mock
        .requests_to(Endpoint::Upload)
        .iter()
        .any(|r| r.errcode == Some(0));
    assert!(!stored, "a cancelled upload stored nothing");
}

/// Parallel download into a file with N = 1, 4, 8 connections: byte-identical, ranges
/// covering the media once, and never more than N in flight (an emulator that answers 45033
/// beyond N throttled nothing).
pub async fn parallel_download_byte_identical_and_bounded<D: Driver>(d: &D) {
    const SIZE: usize = 4_000_000;
    let bytes = media(SIZE);
    for n in [1, 4, 8] {
        let mock = mock(MockConfig {
            max_concurrent_per_media: Some(n),
            bandwidth: Some(40_000_000),
            ..MockConfig::default()
        });
        let mut settings = settings(&mock);
        settings.chunk_size = 256 * 1024;
        let s = Subject::new(d, settings, None);
        let id = MediaId::new(mock.insert_media(bytes.clone(), "video/mp4", "big.mp4"));
        let (path, file) = target();
        let options = DownloadOptions::default().connections(n);
        let (done, task) = s.download_file(&id, &file, options, None, &none()).await;
        let done = done.unwrap_or_else(|e| panic!("N = {n}: {e}"));
        assert_eq!((done.total, done.bytes_written), (SIZE as u64, SIZE as u64));
        assert_eq!(done.info.filename, "big.mp4");
        assert!(read(&path) == bytes, "N = {n}: bytes differ");
        assert!(task.resume_record().is_some_and(|r| r.is_complete()));
        let asked = range_bounds(&mock);
        let covered: u64 = asked.iter().map(|(a, b)| b - a + 1).sum();
        assert_eq!(covered, SIZE as u64, "N = {n}: {asked:?}");
        assert_eq!(
            mock.throttled(),
            0,
            "N = {n}: more than {n} ranges in flight"
        );
    }
}

/// The ranges of a parallel download really run at once: 4 connections against an emulator
/// that answers one request per media at a time get 45033 answers, and still complete (a
/// transport that runs lanes one after the other is correct but fails this scenario: it
/// does not download in parallel).
pub async fn parallel_ranges_run_at_once<D: Driver>(d: &D) {
    let bytes = media(4_000_000);
    let mock = mock(MockConfig {
        max_concurrent_per_media: Some(1),
        bandwidth: Some(20_000_000),
        ..MockConfig::default()
    });
    let mut settings = settings(&mock);
    settings.chunk_size = 256 * 1024;
    let s = Subject::new(d, settings, None);
    let id = MediaId::new(mock.insert_media(bytes.clone(), "video/mp4", "big.mp4"));
    let (path, file) = target();
    let options = DownloadOptions::default().connections(4);
    let (done, _) = s.download_file(&id, &file, options, None, &none()).await;
    done.unwrap();
    assert!(read(&path) == bytes);
    assert!(mock.throttled() >= 1, "4 connections never overlapped");
}

/// 8 connections against an emulator that allows 2 at once per media: 45033 answers halve
/// the task's limit (8 → 4 → 2) and the download completes byte-identical.
pub async fn parallel_download_halves_under_45033<D: Driver>(d: &D) {
    const SIZE: usize = 4_000_000;
    let mock = mock(MockConfig {
        max_concurrent_per_media: Some(2),
        bandwidth: Some(20_000_000),
        ..MockConfig::default()
    });
    let mut settings = settings(&mock);
    settings.chunk_size = 256 * 1024;
    let s = Subject::new(d, settings, None);
    let bytes = media(SIZE);
    let id = MediaId::new(mock.insert_media(bytes.clone(), "video/mp4", "big.mp4"));
    let (path, file) = target();
    let options = DownloadOptions::default().connections(8);
    let (done, task) = s.download_file(&id, &file, options, None, &none()).await;
    assert_eq!(done.unwrap().total, SIZE as u64);
    assert!(read(&path) == bytes);
    let throttled = mock.throttled();
    assert!(
        throttled >= 1,
        "the emulator never throttled: the scenario proves nothing"
    );
    assert_eq!(
        u64::from(task.throttled()),
        throttled,
        "every 45033 reached the task"
    );
    assert!(task.limit() <= 4, "the limit was halved: {}", task.limit());
}

/// Faults on single ranges of a parallel download (a cut, a truncation, -1 twice, 42001)
/// are retried on their lane; the file is exact.
pub async fn parallel_download_retries_single_ranges<D: Driver>(d: &D) {
    const SIZE: usize = 4_000_000;
    let mock = mock(MockConfig::default());
    let mut settings = settings(&mock);
    settings.chunk_size = 512 * 1024;
    let s = Subject::new(d, settings, None);
    let bytes = media(SIZE);
    let id = MediaId::new(mock.insert_media(bytes.clone(), "video/mp4", "big.mp4"));
    let faults = [
        Fault::DropMidBody {
            after_bytes: 300_000,
            times: 1,
        },
        Fault::TruncateBody {
            after_bytes: 1_000,
            times: 1,
        },
        Fault::Errcode { code: -1, times: 2 },
        Fault::Errcode {
            code: 42001,
            times: 1,
        },
    ];
    faults
        .into_iter()
        .for_each(|f| mock.fault(Endpoint::Get, f));
    let (path, file) = target();
    let options = DownloadOptions::default().connections(4);
    let (done, _) = s.download_file(&id, &file, options, None, &none()).await;
    assert_eq!(done.unwrap().total, SIZE as u64);
    assert!(read(&path) == bytes, "the file differs");
}

/// A parallel download cancelled midway leaves a record; run again with it, only the
/// missing bytes are fetched and the file is exact.
pub async fn cancelled_parallel_download_resumes_from_its_record<D: Driver>(d: &D) {
    const SIZE: usize = 4_000_000;
    let mock = mock(MockConfig {
        bandwidth: Some(10_000_000),
        ..MockConfig::default()
    });
    let mut settings = settings(&mock);
    settings.chunk_size = 256 * 1024;
    let s = Subject::new(d, settings, None);
    let bytes = media(SIZE);
    let id = MediaId::new(mock.insert_media(bytes.clone(), "video/mp4", "big.mp4"));
    let (path, file) = target();
    let cancel = CancelFlag::new();
    let transfer = cancelled_past(&cancel, 2_000_000);
    let options = DownloadOptions::default().connections(4);
    let (result, task) = s
        .download_file(&id, &file, options.clone(), None, &transfer)
        .await;
    let Err(Error::Cancelled {
        operation: OperationKind::Download,
        bytes: bytes_written,
        ..
    }) = result
    else {
        panic!("not cancelled: {result:?}")
    };
    let record = task.resume_record().expect("a record of what arrived");
    assert_eq!(record.bytes_done(), bytes_written);
    assert!(
        bytes_written > 0 && bytes_written < SIZE as u64,
        "{bytes_written}"
    );
    mock.clear_requests();
    let (done, _) = s
        .download_file(&id, &file, options, Some(record), &none())
        .await;
    assert_eq!(done.unwrap().bytes_written, SIZE as u64 - bytes_written);
    assert!(read(&path) == bytes, "the resumed file differs");
    let fetched: u64 = range_bounds(&mock).iter().map(|(a, b)| b - a + 1).sum();
    assert_eq!(
        fetched,
        SIZE as u64 - bytes_written,
        "only the missing bytes"
    );
}

/// Polls at once, then only after an hour: within a scenario only an event makes a second.
fn hourly() -> PollPolicy {
    PollPolicy {
        first_interval: Duration::from_secs(3600),
        max_interval: Duration::from_secs(3600),
        ..PollPolicy::default()
    }
}

/// A job wait whose next poll is an hour away ends as soon as the job-finished callback
/// (encrypted, verified by the emulator's receiver) is fed to the client's job events:
/// exactly two job-result queries.
pub async fn job_wait_ended_by_a_callback<D: Driver>(d: &D) {
    const TOKEN: &str = "QDG6eK";
    const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
    let client = Arc::new(OnceLock::<Arc<dyn JobEventsDelivery>>::new());
    let feed = Arc::clone(&client);
    let receiver = CallbackReceiver::start(TOKEN, AES_KEY, CORP, move |event| {
        if let Some(client) = feed.get() {
            client.job_finished(event);
        }
    });
    let receiver = receiver.unwrap_or_else(|e| panic!("a callback receiver: {e}"));
    // The file is held back until the wait's first poll was answered "processing".
    let gate = Arc::new(OnceLock::<FileGate>::new());
    let opener = Arc::clone(&gate);
    let mock = mock(MockConfig {
        callback: Some(receiver.target()),
        on_request: Some(Arc::new(move |request| {
            if request.endpoint == Some(Endpoint::GetUploadByUrlResult) {
                opener.get().map(FileGate::open);
            }
        })),
        ..MockConfig::default()
    });
    let mut settings = settings(&mock);
    settings.poll_policy = hourly();
    let s = Subject::new(d, settings, None);
    let _ = client.set(Arc::clone(&s.client) as Arc<dyn JobEventsDelivery>);
    let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let (url, held) = mock.serve_file_gated("files/clip.bin", data.clone());
    let _ = gate.set(held);
    let job = s
        .upload_by_url(MediaType::File, "clip.bin", &url, &md5(&data))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(7200);
    let status = s.wait_job(&job.jobid, deadline).await.unwrap();
    let JobStatus::Finished { media_id, .. } = status else {
        panic!("the wait did not end with the job finished: {status:?}")
    };
    assert_eq!(mock.media(media_id.as_str()).expect("stored").bytes, data);
    let queries = mock.requests_to(Endpoint::GetUploadByUrlResult);
    assert_eq!(
        queries.len(),
        2,
        "the first poll, and the one the callback caused"
    );
    let deliveries = mock.wait_for_callback_deliveries(1, PATIENCE);
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].job_id, job.jobid.as_str());
    let received = receiver.received();
    let job_id = received
        .first()
        .and_then(|r| r.event.as_ref()?.job_id().cloned());
    assert_eq!(job_id, Some(job.jobid));
}

/// Without a callback, a wait whose deadline has come polls once and returns `Processing`.
pub async fn job_wait_deadline_returns_processing<D: Driver>(d: &D) {
    let mock = mock(MockConfig::default());
    let mut settings = settings(&mock);
    settings.poll_policy = hourly();
    let s = Subject::new(d, settings, None);
    let data = vec![3u8; 100];
    let (url, _held) = mock.serve_file_gated("files/clip.bin", data.clone());
    let job = s
        .upload_by_url(MediaType::File, "clip.bin", &url, &md5(&data))
        .await
        .unwrap();
    let status = s.wait_job(&job.jobid, Instant::now()).await.unwrap();
    assert_eq!(status, JobStatus::Processing);
    assert_eq!(mock.count(Endpoint::GetUploadByUrlResult), 1);
}

/// 32 calls at once on a fresh client: one gettoken between them (the others wait for the
/// refresh and are woken), 32 uploads.
pub async fn one_gettoken_for_32_concurrent_calls<D: Driver>(d: &D) {
    let mock = mock(MockConfig {
        latency: Duration::from_millis(20),
        ..MockConfig::default()
    });
    let s = Subject::new(d, settings(&mock), None);
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let input = wecom_material_core::task::UploadInput::bytes(
                &format!("f{i}.txt"),
                sample(MediaType::File, 64),
            );
            s.tasks()
                .upload(MediaType::File, &input)
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    let results = d.run_all(&s.client, tasks).await;
    for (i, result) in results.into_iter().enumerate() {
        let up = result.unwrap_or_else(|e| panic!("call {i}: {e}"));
        let stored = mock.media(up.media_id.as_str()).expect("stored");
        assert_eq!(stored.filename, format!("f{i}.txt"));
    }
    assert_eq!(mock.count(Endpoint::GetToken), 1);
    assert_eq!(mock.count(Endpoint::Upload), 32);
}

/// Two clients (two processes of a fleet) sharing one token store: one gettoken between
/// them, the token committed to the store and read from it; a token WeCom rejects is
/// invalidated in the store and refreshed once.
pub async fn shared_token_store<D: Driver>(d: &D) {
    let mock = mock(MockConfig::default());
    let store = Arc::new(MemoryStore::default());
    let mut settings = settings(&mock);
    settings.shared_token = Some(SharedTokenPolicy::default());
    let a = Subject::new(d, settings.clone(), Some(Arc::clone(&store)));
    let b = Subject::new(d, settings, Some(Arc::clone(&store)));
    for (name, s) in [("a.txt", &a), ("b.txt", &b)] {
        let payload = Payload::Bytes(name, sample(MediaType::File, 64));
        s.upload(MediaType::File, payload, &none()).await.unwrap();
    }
    assert_eq!(
        mock.count(Endpoint::GetToken),
        1,
        "one gettoken for the fleet"
    );
    assert_eq!(
        store.token(),
        mock.access_token(CORP),
        "the fleet's token is stored"
    );
    let log = store.log();
    assert_eq!(log.iter().filter(|c| **c == "COMMIT").count(), 1, "{log:?}");
    assert!(
        log.iter().filter(|c| **c == "LOOKUP").count() >= 2,
        "{log:?}"
    );

    mock.revoke_tokens();
    let payload = Payload::Bytes("c.txt", sample(MediaType::File, 64));
    b.upload(MediaType::File, payload, &none()).await.unwrap();
    assert!(store.log().contains(&"INVALIDATE"), "{:?}", store.log());
    let payload = Payload::Bytes("d.txt", sample(MediaType::File, 64));
    a.upload(MediaType::File, payload, &none()).await.unwrap();
    assert_eq!(
        mock.count(Endpoint::GetToken),
        2,
        "one refresh for the fleet"
    );
    assert_eq!(store.token(), mock.access_token(CORP));
}

/// A transfer whose progress reports go to the returned log.
fn recording() -> (Transfer, Arc<Mutex<Vec<Progress>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let transfer = Transfer::default()
        .with_progress(move |p| log.lock().unwrap_or_else(|e| e.into_inner()).push(p));
    (transfer, seen)
}

/// A transfer that sets `cancel` (and so stops) once its progress passes `done` bytes.
fn cancelled_past(cancel: &CancelFlag, done: u64) -> Transfer {
    let flag = cancel.clone();
    let stop = move |p: Progress| {
        if p.done > done {
            flag.cancel();
        }
    };
    Transfer::default().with_progress(stop).cancelled_by(cancel)
}
