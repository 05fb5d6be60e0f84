//! Every future of the client is `Send`, so it can be spawned on a multi-threaded runtime.

use std::path::Path;
use std::time::Instant;

use bytes::Bytes;
use wecom_material_hyper::core::{JobId, MediaId, MediaType};
use wecom_material_hyper::{Client, DownloadOptions, Transfer, Upload};

fn assert_send<T: Send>(_: &T) {}

#[test]
fn every_future_is_send() {
    let client = Client::builder("corp", "secret").build();
    let id = MediaId::new("m");
    let job = JobId::new("j");
    let mut sink = tokio::io::sink();
    let reader: &[u8] = b"hello world";
    assert_send(&client.upload(
        MediaType::File,
        Upload::bytes("a.txt", Bytes::new()),
        Transfer::default(),
    ));
    assert_send(&client.upload(
        MediaType::File,
        Upload::path(Path::new("x")),
        Transfer::default(),
    ));
    assert_send(&client.upload(
        MediaType::File,
        Upload::reader("a.txt", Box::new(reader), 11),
        Transfer::default(),
    ));
    assert_send(&client.upload_image(Upload::bytes("a.png", Bytes::new()), Transfer::default()));
    assert_send(&client.upload_image(Upload::path(Path::new("x.png")), Transfer::default()));
    assert_send(&client.get(&id, DownloadOptions::default()));
    assert_send(&client.get(&id, DownloadOptions::default().hd_voice()));
    assert_send(&client.download(
        &id,
        &mut sink,
        DownloadOptions::default(),
        Transfer::default(),
    ));
    assert_send(&client.upload_by_url(MediaType::File, "a.txt", "https://x/a", "0"));
    assert_send(&client.job_result(&job));
    assert_send(&client.wait_job(&job, Instant::now()));

    assert_send(&wecom_material_hyper::md5_file(Path::new("x")));
}
