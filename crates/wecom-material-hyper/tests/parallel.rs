//! Parallel Range downloads into a file, over hyper, against the emulator.

use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use wecom_material_core::MediaId;
use wecom_material_core::RetryPolicy;
use wecom_material_hyper::{Client, DownloadOptions, Transfer};
use wecom_material_mock::{MockConfig, MockServer};

const SIZE: usize = 45_000_000;

fn setup(config: MockConfig) -> (MockServer, Client) {
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
    (mock, client)
}

fn media() -> Bytes {
    let bytes = (0..SIZE as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8);
    Bytes::from(bytes.collect::<Vec<_>>())
}

fn target() -> (std::path::PathBuf, File) {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("wecom-hpar-{}-{n}.bin", std::process::id()));
    let file = File::options()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .unwrap();
    (path, file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_identical_for_one_four_and_eight_connections() {
    let (mock, client) = setup(MockConfig::default());
    let bytes = media();
    let id = MediaId::new(mock.insert_media(bytes.clone(), "video/mp4", "big.mp4"));
    for n in [1, 4, 8] {
        let (path, file) = target();
        let mut record = None;
        let options = DownloadOptions::default().connections(n);
        let done = client
            .download_file(&id, &file, options, &mut record, Transfer::default())
            .await
            .unwrap();
        assert_eq!((done.total, done.bytes_written), (SIZE as u64, SIZE as u64));
        assert!(
            std::fs::read(&path).unwrap() == bytes,
            "N = {n}: bytes differ"
        );
        assert!(record.unwrap().is_complete());
        std::fs::remove_file(path).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_connections_against_a_limit_of_two_adapt_and_complete() {
    let (mock, client) = setup(MockConfig {
        max_concurrent_per_media: Some(2),
        bandwidth: Some(200_000_000),
        ..MockConfig::default()
    });
    let bytes = media();
    let id = MediaId::new(mock.insert_media(bytes.clone(), "video/mp4", "big.mp4"));
    let (path, file) = target();
    let mut record = None;
    let options = DownloadOptions::default().connections(8);
    client
        .download_file(&id, &file, options, &mut record, Transfer::default())
        .await
        .unwrap();
    assert!(std::fs::read(&path).unwrap() == bytes);
    let throttled = mock.throttled();
    assert!(
        (1..=16).contains(&throttled),
        "{throttled} answers of 45033"
    );
    std::fs::remove_file(path).unwrap();
}
