//! Parallel Range downloads into a file, against the emulator: byte-identical for every
//! number of connections, adaptive under 45033, robust to faults on single ranges, and
//! resumable from the record a cancelled run leaves.

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use wecom_material_core::RetryPolicy;
use wecom_material_core::task::ResumeRecord;
use wecom_material_core::{CancelFlag, Error, MediaId, Progress};
use wecom_material_mock::{Endpoint, Fault, MockConfig, MockServer};
use wecom_material_ureq::{Client, DownloadOptions, Transfer};

const SIZE: usize = 45_000_000;

fn media() -> Bytes {
    Bytes::from(
        (0..SIZE as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect::<Vec<_>>(),
    )
}

fn setup(config: MockConfig) -> (MockServer, Client, MediaId, Bytes) {
    let mock = MockServer::start(config);
    let client = Client::builder("ww-mock-corp", "mock-secret")
        .base_url(&mock.base_url())
        .unwrap()
        .retry_policy(RetryPolicy {
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            ..RetryPolicy::default()
        })
        .build();
    let bytes = media();
    let id = MediaId::new(mock.insert_media(bytes.clone(), "video/mp4", "big.mp4"));
    (mock, client, id, bytes)
}

fn target() -> (PathBuf, File) {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("wecom-par-{}-{n}.bin", std::process::id()));
    let file = File::options()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    (path, file)
}

fn ranges_asked(mock: &MockServer) -> Vec<(u64, u64)> {
    mock.requests_to(Endpoint::Get)
        .iter()
        .filter_map(|r| r.headers.get("range"))
        .map(|v| {
            let v = v.to_str().unwrap().trim_start_matches("bytes=");
            let (a, b) = v.split_once('-').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect()
}

#[test]
fn byte_identical_for_one_to_eight_connections() {
    let (mock, client, id, bytes) = setup(MockConfig::default());
    for n in 1..=8 {
        mock.clear_requests();
        let (path, file) = target();
        let mut record = None;
        let options = DownloadOptions::default().connections(n);
        let done = client
            .download_file(&id, &file, options, &mut record, Transfer::default())
            .unwrap();
        assert_eq!((done.total, done.bytes_written), (SIZE as u64, SIZE as u64));
        assert_eq!(done.info.filename, "big.mp4");
        assert!(
            std::fs::read(&path).unwrap() == bytes,
            "N = {n}: bytes differ"
        );
        assert!(record.unwrap().is_complete());
        let asked = ranges_asked(&mock);
        assert!(asked.iter().all(|(a, b)| b - a < 20_000_000), "{asked:?}");
        assert_eq!(
            asked.iter().map(|(a, b)| b - a + 1).sum::<u64>(),
            SIZE as u64
        );
        std::fs::remove_file(path).unwrap();
    }
}

#[test]
fn eight_connections_against_a_limit_of_two_adapt_and_complete() {
    let (mock, client, id, bytes) = setup(MockConfig {
        max_concurrent_per_media: Some(2),
        bandwidth: Some(200_000_000),
        ..MockConfig::default()
    });
    let (path, file) = target();
    let mut record = None;
    let options = DownloadOptions::default().connections(8);
    let done = client
        .download_file(&id, &file, options, &mut record, Transfer::default())
        .unwrap();
    assert_eq!(done.total, SIZE as u64);
    assert!(std::fs::read(&path).unwrap() == bytes);
    let throttled = mock.throttled();
    // 8 → 4 → 2 in flight: the first wave is refused in part, then the limit holds.
    assert!(
        throttled >= 1,
        "the emulator never throttled: the test proves nothing"
    );
    assert!(throttled <= 16, "{throttled} answers of 45033");
    std::fs::remove_file(path).unwrap();
}

#[test]
fn faults_on_single_ranges_are_retried_and_the_file_is_exact() {
    let (mock, client, id, bytes) = setup(MockConfig::default());
    mock.fault(
        Endpoint::Get,
        Fault::DropMidBody {
            after_bytes: 3_000_000,
            times: 1,
        },
    );
    mock.fault(
        Endpoint::Get,
        Fault::TruncateBody {
            after_bytes: 1_000,
            times: 1,
        },
    );
    mock.fault(Endpoint::Get, Fault::Errcode { code: -1, times: 2 });
    mock.fault(
        Endpoint::Get,
        Fault::Errcode {
            code: 42001,
            times: 1,
        },
    );
    let (path, file) = target();
    let mut record = None;
    let options = DownloadOptions::default().connections(4);
    client
        .download_file(&id, &file, options, &mut record, Transfer::default())
        .unwrap();
    assert!(std::fs::read(&path).unwrap() == bytes);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_cancelled_download_resumes_from_its_record_and_fetches_only_what_is_missing() {
    let (mock, client, id, bytes) = setup(MockConfig {
        bandwidth: Some(60_000_000),
        ..MockConfig::default()
    });
    let (path, file) = target();
    let cancel = CancelFlag::new();
    let stop_at = |p: Progress| {
        if p.done > 15_000_000 {
            cancel.cancel();
        }
    };
    let transfer = Transfer {
        progress: Some(&stop_at),
        cancel: Some(&cancel),
    };
    let mut record: Option<ResumeRecord> = None;
    let options = DownloadOptions::default().connections(4);
    let err = client
        .download_file(&id, &file, options.clone(), &mut record, transfer)
        .unwrap_err();
    let Error::Cancelled { bytes_written } = err else {
        panic!("{err:?}")
    };
    let first = record.clone().expect("a record of what arrived");
    assert_eq!(first.bytes_done(), bytes_written);
    assert!(
        bytes_written > 0 && bytes_written < SIZE as u64,
        "{bytes_written}"
    );
    mock.clear_requests();
    let done = client
        .download_file(&id, &file, options, &mut record, Transfer::default())
        .unwrap();
    assert_eq!(done.bytes_written, SIZE as u64 - first.bytes_done());
    assert!(
        std::fs::read(&path).unwrap() == bytes,
        "the resumed file differs"
    );
    let refetched: u64 = ranges_asked(&mock).iter().map(|(a, b)| b - a + 1).sum();
    assert_eq!(
        refetched,
        SIZE as u64 - first.bytes_done(),
        "only the missing bytes"
    );
    std::fs::remove_file(path).unwrap();
}

#[test]
fn many_uploads_at_once_share_one_token_keep_their_order_and_report_each_failure() {
    let (mock, client, _, _) = setup(MockConfig::default());
    let mut uploads: Vec<wecom_material_ureq::Upload> = (0..12)
        .map(|i| {
            let body = Bytes::from(format!("file number {i}"));
            wecom_material_ureq::Upload::bytes(format!("f{i}.txt"), body)
        })
        .collect();
    uploads[5] = wecom_material_ureq::Upload::bytes("bad\nname.txt", Bytes::from("x".repeat(9)));
    let progress_seen = AtomicU64::new(0);
    let progress = |p: Progress| {
        progress_seen.fetch_max(p.done, Ordering::Relaxed);
    };
    let transfer = Transfer {
        progress: Some(&progress),
        cancel: None,
    };
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
fn an_error_object_under_any_content_type_is_never_written_and_media_still_is() {
    let (mock, client, id, _) = setup(MockConfig::default());
    for content_type in [Some("application/octet-stream"), None, Some("image/jpeg")] {
        let content_type = content_type.map(str::to_owned);
        let fault = Fault::ErrorBody {
            code: 40007,
            content_type,
            error_code_header: None,
            times: 1,
        };
        mock.fault(Endpoint::Get, fault);
        let mut out = Vec::new();
        let options = DownloadOptions::default();
        let err = client
            .download(&id, &mut out, options, Transfer::default())
            .unwrap_err();
        assert_eq!(
            err.errcode(),
            Some(wecom_material_core::ErrCode::InvalidMediaId),
            "{err}"
        );
        assert!(out.is_empty(), "an error answer reached the writer");
    }
    // A JSON media (with its Content-Disposition) is media.
    let small = Bytes::from_static(br#"{"not": "an error", "errcode": 0}"#);
    let small_id = MediaId::new(mock.insert_media(small.clone(), "application/json", "a.json"));
    let got = client.get(&small_id, DownloadOptions::default()).unwrap();
    assert_eq!(got.bytes, small);
}
