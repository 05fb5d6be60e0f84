//! The blocking client's upload through object storage (issue 21) against a real S3 server
//! that checks SigV4 (`s3s-fs`, started per test on a free loopback port, stopped by PID;
//! `scripts/ensure-s3` installs it) and the emulator, which fetches the presigned URL with
//! Range as WeCom does.
#![cfg(feature = "s3-relay")]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use wecom_material_core::RetryPolicy;
use wecom_material_core::relay::{
    AddressingStyle, BucketRelay, ObjectFate, RelayOptions, S3Credentials,
};
use wecom_material_core::{CancelFlag, DownloadOptions, ErrCode, Error, Invalid, MediaType};
use wecom_material_mock::s3_server::{ACCESS_KEY, REGION, S3Server, SECRET_KEY};
use wecom_material_mock::samples::{LargeCheck, write_large};
use wecom_material_mock::{Endpoint, MockConfig, MockServer};
use wecom_material_ureq::{Client, Transfer};

const BUCKET: &str = "wecom-relay";
const MB: u64 = 1_000_000;

fn client(mock: &MockServer) -> Client {
    Client::builder("ww-mock-corp", "mock-secret")
        .base_url(&mock.base_url())
        .unwrap()
        .retry_policy(RetryPolicy {
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            ..RetryPolicy::default()
        })
        .build()
}

fn relay(s3: &S3Server, secret: &str) -> BucketRelay {
    let credentials = S3Credentials::new(ACCESS_KEY, secret);
    let url = format!("s3://{BUCKET}/relay/");
    let endpoint = s3.endpoint();
    BucketRelay::from_s3_url(
        &url,
        Some(&endpoint),
        REGION,
        AddressingStyle::Auto,
        credentials,
    )
    .unwrap()
}

/// A fresh file of `len` bytes (content from `seed`) in a directory of its own.
fn large_file(name: &str, len: u64, seed: u64) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "wecom-ureq-relay-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    write_large(&path, len, seed).unwrap();
    path
}

fn remove(path: &Path) {
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn a_150_mb_video_goes_through_the_bucket_byte_identical_and_the_bucket_is_empty_after() {
    let (s3, mock) = (
        S3Server::start(BUCKET),
        MockServer::start(MockConfig::default()),
    );
    let client = client(&mock);
    let len = 150 * MB;
    let path = large_file("发布会.mp4", len, 21);
    let done = std::sync::Arc::new(AtomicU64::new(0));
    let seen = std::sync::Arc::clone(&done);
    let transfer =
        Transfer::default().with_progress(move |p| seen.store(p.done, Ordering::Relaxed));
    let relay = relay(&s3, SECRET_KEY);
    let up = client
        .upload_via_bucket(
            MediaType::Video,
            &path,
            None,
            &relay,
            RelayOptions::default(),
            transfer,
        )
        .unwrap();
    assert_eq!(up.fate, ObjectFate::Deleted);
    assert_eq!(up.len, len);
    assert_eq!(done.load(Ordering::Relaxed), len, "the PUT's progress");
    assert!(
        up.object.starts_with("s3://wecom-relay/relay/"),
        "{}",
        up.object
    );
    assert!(up.object.ends_with("-___.mp4"), "{}", up.object);
    assert_eq!(
        s3.objects(BUCKET),
        Vec::<String>::new(),
        "the bucket is empty again"
    );
    // WeCom (the emulator) fetched the presigned URL in Range chunks, and the log masks the
    // signature.
    let fetches: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|r| r.fetched_for_job.as_deref() == Some(up.job_id.as_str()))
        .collect();
    assert_eq!(fetches.len(), 36, "150 MB in 4 MiB ranges");
    assert!(fetches.iter().all(|r| r.status == 206));
    let shown = fetches[0].summary();
    assert!(shown.contains("X-Amz-Signature=***"), "{shown}");
    assert!(!shown.contains(SECRET_KEY), "{shown}");
    assert_eq!(mock.count(Endpoint::UploadByUrl), 1);
    // The media WeCom stored is the file, byte for byte.
    let mut check = LargeCheck::new(21);
    let media = &up.media_id;
    client
        .download(
            media,
            &mut check,
            DownloadOptions::default(),
            Transfer::default(),
        )
        .unwrap();
    check.matched(len).unwrap();
    assert_eq!(mock.media(media.as_str()).unwrap().filename, "发布会.mp4");
    remove(&path);
}

#[test]
fn a_failed_job_still_deletes_the_object() {
    let mut config = MockConfig::default();
    config.limits.upload_by_url_max_bytes = 4 * MB;
    let (s3, mock) = (S3Server::start(BUCKET), MockServer::start(config));
    let path = large_file("big.mp4", 5 * MB, 7);
    let relay = relay(&s3, SECRET_KEY);
    let options = RelayOptions::default();
    let result = client(&mock).upload_via_bucket(
        MediaType::Video,
        &path,
        None,
        &relay,
        options,
        Transfer::default(),
    );
    let Err(Error::Api(api)) = result else {
        panic!("{result:?}");
    };
    assert_eq!(api.code, ErrCode::from(45001));
    assert!(api.errmsg.starts_with("upload job jobid_"), "{api}");
    assert_eq!(s3.objects(BUCKET), Vec::<String>::new());
    remove(&path);
}

#[test]
fn a_cancel_during_the_put_leaves_no_object_and_sends_nothing_to_wecom() {
    let (s3, mock) = (
        S3Server::start(BUCKET),
        MockServer::start(MockConfig::default()),
    );
    let path = large_file("big.bin", 60 * MB, 8);
    let cancel = CancelFlag::new();
    let flag = cancel.clone();
    let transfer = Transfer::default().cancelled_by(&cancel).with_progress(
        move |p: wecom_material_core::Progress| {
            if p.done >= 10 * MB {
                flag.cancel();
            }
        },
    );
    let relay = relay(&s3, SECRET_KEY);
    let result = client(&mock).upload_via_bucket(
        MediaType::File,
        &path,
        None,
        &relay,
        RelayOptions::default(),
        transfer,
    );
    assert!(matches!(result, Err(Error::Cancelled { .. })), "{result:?}");
    assert_eq!(s3.objects(BUCKET), Vec::<String>::new());
    assert_eq!(mock.requests().len(), 0, "nothing reached WeCom");
    remove(&path);
}

#[test]
fn wrong_credentials_give_an_error_naming_the_bucket_and_nothing_reaches_wecom() {
    let (s3, mock) = (
        S3Server::start(BUCKET),
        MockServer::start(MockConfig::default()),
    );
    let path = large_file("big.mp4", 30 * MB, 9);
    let wrong = "not-the-SECRET-at-all";
    let relay = relay(&s3, wrong);
    let result = client(&mock).upload_via_bucket(
        MediaType::Video,
        &path,
        None,
        &relay,
        RelayOptions::default(),
        Transfer::default(),
    );
    let Err(Error::ObjectStorage(e)) = &result else {
        panic!("{result:?}");
    };
    assert_eq!((e.bucket.as_str(), e.status), (BUCKET, 403), "{e}");
    assert_eq!(e.code.as_deref(), Some("SignatureDoesNotMatch"), "{e}");
    let shown = format!("{} {:?} {relay:?}", result.as_ref().unwrap_err(), result);
    assert!(shown.contains("s3://wecom-relay/relay/"), "{shown}");
    assert!(
        !shown.contains(wrong) && !shown.contains(SECRET_KEY),
        "{shown}"
    );
    assert_eq!(mock.requests().len(), 0, "nothing reached WeCom");
    assert_eq!(s3.objects(BUCKET), Vec::<String>::new());
    remove(&path);
}

#[test]
fn a_presigned_url_that_expires_before_the_job_fetches_fails_the_job_clearly() {
    let config = MockConfig {
        fetch_delay: Duration::from_millis(2500),
        ..MockConfig::default()
    };
    let (s3, mock) = (S3Server::start(BUCKET), MockServer::start(config));
    let path = large_file("clip.mp4", 2 * MB, 10);
    let relay = relay(&s3, SECRET_KEY);
    let options = RelayOptions::default()
        .url_expiry(Duration::from_secs(1))
        .job_timeout(Duration::from_secs(60));
    let result = client(&mock).upload_via_bucket(
        MediaType::Video,
        &path,
        None,
        &relay,
        options,
        Transfer::default(),
    );
    let Err(Error::Api(api)) = &result else {
        panic!("{result:?}");
    };
    assert_eq!(api.code, ErrCode::from(830003), "{api}");
    let fetched = mock
        .requests()
        .into_iter()
        .find(|r| r.fetched_for_job.is_some());
    assert_eq!(
        fetched.map(|r| r.status),
        Some(403),
        "S3 refused the expired URL"
    );
    assert_eq!(s3.objects(BUCKET), Vec::<String>::new());
    remove(&path);
}

#[test]
fn an_image_is_refused_before_anything_is_sent() {
    let (s3, mock) = (
        S3Server::start(BUCKET),
        MockServer::start(MockConfig::default()),
    );
    let path = large_file("photo.jpg", 11 * MB, 11);
    let relay = relay(&s3, SECRET_KEY);
    let result = client(&mock).upload_via_bucket(
        MediaType::Image,
        &path,
        None,
        &relay,
        RelayOptions::default(),
        Transfer::default(),
    );
    assert!(
        matches!(
            result,
            Err(Error::Invalid(Invalid::UnsupportedMediaType {
                media_type: MediaType::Image,
                ..
            }))
        ),
        "{result:?}"
    );
    assert_eq!(mock.requests().len(), 0);
    assert_eq!(s3.objects(BUCKET), Vec::<String>::new());
    remove(&path);
}

#[test]
fn keep_object_leaves_the_object_in_the_bucket() {
    let (s3, mock) = (
        S3Server::start(BUCKET),
        MockServer::start(MockConfig::default()),
    );
    let path = large_file("kept.bin", 3 * MB, 12);
    let relay = relay(&s3, SECRET_KEY);
    let options = RelayOptions::default().keep_object(true);
    let up = client(&mock)
        .upload_via_bucket(
            MediaType::File,
            &path,
            Some("报告.pdf"),
            &relay,
            options,
            Transfer::default(),
        )
        .unwrap();
    assert_eq!(up.fate, ObjectFate::Kept);
    let key = up.object.strip_prefix("s3://wecom-relay/").unwrap();
    assert_eq!(s3.objects(BUCKET), vec![key.to_owned()]);
    let stored = std::fs::read(s3.root().join(BUCKET).join(key)).unwrap();
    assert_eq!(stored, std::fs::read(&path).unwrap());
    remove(&path);
}
