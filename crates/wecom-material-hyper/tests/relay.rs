//! The async client's upload through object storage (issue 21) against a real S3 server
//! that checks SigV4 (`s3s-fs`, per test on a free loopback port, stopped by PID) and the
//! emulator. The blocking client's tests (`wecom-material-ureq/tests/relay.rs`) cover every
//! case of the issue; these check the same core task over hyper: the round trip with the
//! MD5 digested by the upload body hyper polls, and a cancel during the PUT.
#![cfg(feature = "s3-relay")]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use wecom_material_core::RetryPolicy;
use wecom_material_core::relay::{
    AddressingStyle, BucketRelay, ObjectFate, RelayOptions, S3Credentials,
};
use wecom_material_core::{CancelFlag, DownloadOptions, Error, MediaType, Progress};
use wecom_material_hyper::{Client, Transfer};
use wecom_material_mock::s3_server::{ACCESS_KEY, REGION, S3Server, SECRET_KEY};
use wecom_material_mock::samples::{LargeCheck, write_large};
use wecom_material_mock::{Endpoint, MockConfig, MockServer};

const BUCKET: &str = "wecom-relay";
const MB: u64 = 1_000_000;

fn setup() -> (S3Server, MockServer, Client, BucketRelay) {
    let (s3, mock) = (
        S3Server::start(BUCKET),
        MockServer::start(MockConfig::default()),
    );
    let client = Client::builder("ww-mock-corp", "mock-secret")
        .base_url(&mock.base_url())
        .unwrap()
        .retry_policy(RetryPolicy {
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            ..RetryPolicy::default()
        })
        .build();
    let credentials = S3Credentials::new(ACCESS_KEY, SECRET_KEY);
    let endpoint = s3.endpoint();
    let relay = BucketRelay::from_s3_url(
        &format!("s3://{BUCKET}/"),
        Some(&endpoint),
        REGION,
        AddressingStyle::Path,
        credentials,
    )
    .unwrap();
    (s3, mock, client, relay)
}

fn large_file(name: &str, len: u64, seed: u64) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "wecom-hyper-relay-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    write_large(&path, len, seed).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_goes_through_the_bucket_byte_identical_and_the_bucket_is_empty_after() {
    let (s3, mock, client, relay) = setup();
    let len = 25 * MB;
    let path = large_file("clip.mp4", len, 31);
    let up = client
        .upload_via_bucket(
            MediaType::Video,
            &path,
            None,
            &relay,
            RelayOptions::default(),
            Transfer::default(),
        )
        .await
        .unwrap();
    assert_eq!(up.fate, ObjectFate::Deleted);
    assert_eq!(s3.objects(BUCKET), Vec::<String>::new());
    assert_eq!(mock.count(Endpoint::UploadByUrl), 1);
    let mut sink = Checked(LargeCheck::new(31));
    let options = DownloadOptions::default();
    client
        .download(&up.media_id, &mut sink, options, Transfer::default())
        .await
        .unwrap();
    sink.0.matched(len).unwrap();
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_during_the_put_leaves_no_object_and_sends_nothing_to_wecom() {
    let (s3, mock, client, relay) = setup();
    let path = large_file("big.bin", 60 * MB, 32);
    let cancel = CancelFlag::new();
    let flag = cancel.clone();
    let transfer = Transfer::default()
        .cancelled_by(&cancel)
        .with_progress(move |p: Progress| {
            if p.done >= 10 * MB {
                flag.cancel();
            }
        });
    let options = RelayOptions::default();
    let result = client
        .upload_via_bucket(MediaType::File, &path, None, &relay, options, transfer)
        .await;
    assert!(matches!(result, Err(Error::Cancelled { .. })), "{result:?}");
    assert_eq!(s3.objects(BUCKET), Vec::<String>::new());
    assert_eq!(mock.requests().len(), 0, "nothing reached WeCom");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// The download's sink: every byte compared with the file's, in constant memory.
struct Checked(LargeCheck);

impl tokio::io::AsyncWrite for Checked {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(std::io::Write::write(&mut self.0, buf))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_name_the_bucket_and_nothing_reaches_wecom() {
    let (s3, mock, client, _) = setup();
    let wrong = S3Credentials::new(ACCESS_KEY, "not-the-SECRET");
    let endpoint = s3.endpoint();
    let url = format!("s3://{BUCKET}/");
    let relay =
        BucketRelay::from_s3_url(&url, Some(&endpoint), REGION, AddressingStyle::Path, wrong)
            .unwrap();
    let path = large_file("clip.mp4", 12 * MB, 33);
    let options = RelayOptions::default();
    let result = client
        .upload_via_bucket(
            MediaType::Video,
            &path,
            None,
            &relay,
            options,
            Transfer::default(),
        )
        .await;
    let Err(Error::ObjectStorage(e)) = &result else {
        panic!("{result:?}");
    };
    assert_eq!((e.bucket.as_str(), e.status), (BUCKET, 403), "{e}");
    assert!(!format!("{e} {e:?}").contains("not-the-SECRET"));
    assert_eq!(mock.requests().len(), 0, "nothing reached WeCom");
    assert_eq!(s3.objects(BUCKET), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}
