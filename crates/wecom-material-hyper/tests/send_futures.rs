//! Every future of the client is `Send`, so it can be spawned on a multi-threaded runtime.

use std::path::Path;
use std::time::Instant;

use bytes::Bytes;
use wecom_material_hyper::core::{JobId, MediaId, MediaType};
use wecom_material_hyper::{Client, DownloadOptions, Transfer};

fn assert_send<T: Send>(_: &T) {}

#[test]
fn every_future_is_send() {
    let client = Client::builder("corp", "secret").build();
    let id = MediaId::new("m");
    let job = JobId::new("j");
    let mut sink = tokio::io::sink();
    let reader: &[u8] = b"hello world";
    assert_send(&client.upload_bytes(MediaType::File, "a.txt", Bytes::new(), Transfer::default()));
    assert_send(&client.upload_path(MediaType::File, Path::new("x"), None, Transfer::default()));
    assert_send(&client.upload_reader(MediaType::File, "a.txt", reader, 11, Transfer::default()));
    assert_send(&client.upload_image_bytes("a.png", Bytes::new(), Transfer::default()));
    assert_send(&client.upload_image_path(Path::new("x.png"), None, Transfer::default()));
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
    assert_send(&client.wait_job_with(&job, Instant::now(), Default::default()));
    assert_send(&wecom_material_hyper::md5_file(Path::new("x")));
}
