//! `Client::save` on the async client against the emulator: the same host layer and core
//! task as the blocking client (its file rules are tested there, with a killed child
//! process); here the async loop drives them: a save in ranges, a cancel that keeps what
//! arrived and a resume that fetches only the rest, a foreign part set aside, an existing
//! target refused after one probe.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use wecom_material_core::ops::get_media::MediaEndpoint;
use wecom_material_core::save::{SaveError, SaveRecord};
use wecom_material_core::{CancelFlag, Error, MediaId, Progress, RetryPolicy};
use wecom_material_host::save::part_name;
use wecom_material_hyper::{Client, SaveOptions, Transfer};
use wecom_material_mock::{Endpoint, MockConfig, MockServer};

const SIZE: usize = 12_000_000;

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
    let bytes = Bytes::from(
        (0..SIZE as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect::<Vec<_>>(),
    );
    let id = MediaId::new(mock.insert_media(bytes.clone(), "video/mp4", "clip.mp4"));
    (mock, client, id, bytes)
}

/// A fresh directory, removed when dropped (also when the test fails).
fn scratch(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("wecom-hsave-{name}-"))
        .tempdir()
        .unwrap()
}

fn record_of(dir: &Path, id: &MediaId) -> PathBuf {
    dir.join(format!("{}.json", part_name(id, MediaEndpoint::Media)))
}

fn fetched(mock: &MockServer) -> u64 {
    mock.requests_to(Endpoint::Get)
        .iter()
        .filter_map(|r| r.headers.get("range"))
        .map(|v| {
            let v = v.to_str().unwrap().trim_start_matches("bytes=");
            let (a, b) = v.split_once('-').unwrap();
            b.parse::<u64>().unwrap() + 1 - a.parse::<u64>().unwrap()
        })
        .sum()
}

fn options(connections: usize) -> SaveOptions<'static> {
    SaveOptions {
        connections,
        ..SaveOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_in_ranges_is_byte_identical() {
    let (mock, client, id, bytes) = setup(MockConfig::default());
    let tmp = scratch("ranges");
    let dir = tmp.path();
    let saved = client.save(&id, &dir, options(4)).await.unwrap();
    assert_eq!(saved.path, dir.join("clip.mp4"));
    assert_eq!((saved.bytes, saved.resumed), (SIZE as u64, 0));
    assert!(std::fs::read(&saved.path).unwrap() == bytes);
    assert_eq!(fetched(&mock), SIZE as u64);
    assert_eq!(std::fs::read_dir(dir).unwrap().count(), 1, "no part left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_save_keeps_its_bytes_and_a_resume_fetches_only_the_rest() {
    let (mock, client, id, bytes) = setup(MockConfig {
        bandwidth: Some(3_000_000),
        ..MockConfig::default()
    });
    let tmp = scratch("cancel");
    let dir = tmp.path();
    let cancel = CancelFlag::new();
    let flag = cancel.clone();
    let transfer = Transfer::default()
        .cancelled_by(&cancel)
        .with_progress(move |p: Progress| {
            if p.done >= 2_500_000 {
                flag.cancel();
            }
        });
    let opts = SaveOptions {
        transfer,
        ..options(4)
    };
    let error = client.save(&id, &dir, opts).await.unwrap_err();
    let Error::Save(SaveError::Stopped { kept, cause, .. }) = &error else {
        panic!("{error:?}");
    };
    assert!(matches!(**cause, Error::Cancelled { .. }), "{cause:?}");
    let record = SaveRecord::parse(&std::fs::read(record_of(dir, &id)).unwrap()).unwrap();
    assert_eq!(record.progress().bytes_done(), *kept);
    mock.set_settings(wecom_material_mock::Settings {
        bandwidth: None,
        ..mock.settings()
    });
    mock.clear_requests();
    let saved = client.save(&id, &dir, options(4)).await.unwrap();
    assert_eq!(saved.resumed, *kept);
    assert_eq!(fetched(&mock), SIZE as u64 - kept, "only the missing bytes");
    assert!(std::fs::read(&saved.path).unwrap() == bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_part_is_set_aside_and_an_existing_target_refused_after_one_probe() {
    let (mock, client, id, bytes) = setup(MockConfig::default());
    let tmp = scratch("foreign");
    let dir = tmp.path();
    let part = dir.join(part_name(&id, MediaEndpoint::Media));
    std::fs::write(&part, vec![0u8; 3_000_000]).unwrap();
    let saved = client.save(&id, &dir, options(2)).await.unwrap();
    assert_eq!(saved.resumed, 0);
    assert!(std::fs::read(&saved.path).unwrap() == bytes);
    let stale = std::fs::read(format!("{}.stale-1", part.display())).unwrap();
    assert_eq!(stale, vec![0u8; 3_000_000]);

    mock.clear_requests();
    let error = client.save(&id, &dir, options(2)).await.unwrap_err();
    assert!(
        matches!(&error, Error::Save(SaveError::TargetExists { path }) if *path == saved.path),
        "{error:?}"
    );
    assert_eq!(fetched(&mock), 1024 * 1024, "the probe alone was asked for");
}
