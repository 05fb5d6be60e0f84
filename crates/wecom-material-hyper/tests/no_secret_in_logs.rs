//! Every log line the client writes (debug level included) is free of the secret and the
//! access token, on success and on failure paths. Its own test binary: the logger is global.

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use wecom_material_core::RetryPolicy;
use wecom_material_core::{MediaId, MediaType};
use wecom_material_hyper::{Client, DownloadOptions, Transfer, Upload};
use wecom_material_mock::{Endpoint, Fault, MockConfig, MockServer};

const CORP: &str = "ww-mock-corp";
const SECRET: &str = "mock-secret";

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        LINES
            .lock()
            .unwrap()
            .push(format!("{} {}", record.target(), record.args()));
    }

    fn flush(&self) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_token_in_any_log_line() {
    log::set_logger(&Capture).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    let mock = MockServer::start(MockConfig::default());
    let client = Client::builder(CORP, SECRET)
        .base_url(&mock.base_url())
        .unwrap()
        .retry_policy(RetryPolicy {
            base_backoff: Duration::from_millis(1),
            ..RetryPolicy::default()
        })
        .build();
    mock.fault(Endpoint::Upload, Fault::Errcode { code: -1, times: 1 });
    mock.fault(Endpoint::Upload, Fault::DropBeforeBody { times: 1 });
    let uploaded = client
        .upload(
            MediaType::File,
            Upload::bytes("a.txt", Bytes::from_static(b"hello world")),
            Transfer::default(),
        )
        .await
        .unwrap();
    client
        .get(&uploaded.media_id, DownloadOptions::default())
        .await
        .unwrap();
    client
        .get(&MediaId::new("missing"), DownloadOptions::default())
        .await
        .unwrap_err();
    let token = mock.access_token(CORP).unwrap();

    let lines = LINES.lock().unwrap().clone();
    let ours: Vec<_> = lines
        .iter()
        .filter(|l| l.starts_with("wecom_material_hyper"))
        .collect();
    assert!(ours.len() >= 5, "requests are logged: {ours:#?}");
    assert!(
        ours.iter().any(|l| l.contains("/cgi-bin/media/upload")),
        "{ours:#?}"
    );
    for line in &lines {
        assert!(
            !line.contains(SECRET) && !line.contains(&token),
            "a secret leaked into: {line}"
        );
    }
}
