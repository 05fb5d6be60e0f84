//! upload_by_url and get_upload_by_url_result, against files the emulator serves itself.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::*;
use wecom_material_mock::{
    Endpoint, JobFinished, JobStatus, Limits, MediaKind, MockConfig, MockServer,
};

const WAIT: Duration = Duration::from_secs(60);

fn start(job_log: Arc<Mutex<Vec<JobFinished>>>) -> MockServer {
    MockServer::start(MockConfig {
        fetch_chunk_bytes: 1000,
        limits: Limits {
            upload_by_url_max_bytes: 10_000,
            ..Limits::default()
        },
        on_job_finished: Some(Arc::new(move |j: &JobFinished| {
            job_log.lock().unwrap().push(j.clone())
        })),
        ..MockConfig::default()
    })
}

fn submit(mock: &MockServer, t: &str, kind: &str, filename: &str, url: &str, md5: &str) -> Resp {
    let body = serde_json::json!({"scene":1,"type":kind,"filename":filename,"url":url,"md5":md5});
    post_json(
        mock.addr(),
        &format!("/cgi-bin/media/upload_by_url?access_token={t}"),
        &body.to_string(),
    )
}

fn result(mock: &MockServer, t: &str, job: &str) -> Resp {
    post_json(
        mock.addr(),
        &format!("/cgi-bin/media/get_upload_by_url_result?access_token={t}"),
        &serde_json::json!({ "jobid": job }).to_string(),
    )
}

fn job_id(r: &Resp) -> String {
    assert_eq!(r.errcode(), 0, "{}", r.json());
    r.json()["jobid"].as_str().unwrap().to_owned()
}

#[test]
fn fetches_in_range_chunks_and_stores_media() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mock = start(log.clone());
    let t = token(&mock);
    let data: Vec<u8> = (0..4500u32).map(|i| (i * 7 % 256) as u8).collect();
    let url = mock.serve_file("dir/video.mp4", data.clone(), true);
    let job = job_id(&submit(
        &mock,
        &t,
        "video",
        "视频.mp4",
        &url,
        &md5_hex(&data),
    ));
    assert!(job.starts_with("jobid_"));
    let status = mock.wait_for_job(&job, WAIT).unwrap();
    let JobStatus::Finished { media_id, .. } = status else {
        panic!("{status:?}")
    };
    let r = result(&mock, &t, &job).json();
    assert_eq!(r["errcode"], 0);
    assert_eq!(r["status"], 2);
    assert_eq!(r["detail"]["errcode"], 0);
    assert_eq!(r["detail"]["media_id"], media_id.as_str());
    assert!(r["detail"]["created_at"].is_string());
    let m = mock.media(&media_id).unwrap();
    assert_eq!(m.bytes, data);
    assert_eq!(m.kind, MediaKind::Video);
    assert_eq!(m.filename, "视频.mp4");
    // Five ranged requests of at most 1000 bytes.
    let fetched = mock.requests_to(Endpoint::ServedFile);
    assert_eq!(fetched.len(), 5);
    assert_eq!(fetched[0].headers["range"], "bytes=0-999");
    assert_eq!(fetched[4].headers["range"], "bytes=4000-4999");
    let g = get(
        mock.addr(),
        &format!(
            "/cgi-bin/media/get?access_token={t}&media_id={}",
            enc(&media_id)
        ),
    );
    assert_eq!(g.body, data);
    let hooked = log.lock().unwrap().clone();
    assert_eq!(hooked.len(), 1);
    assert_eq!(hooked[0].job_id, job);
    assert_eq!(hooked[0].errcode, 0);
    assert_eq!(hooked[0].media_id.as_deref(), Some(media_id.as_str()));
}

#[test]
fn job_failures() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mock = start(log.clone());
    let t = token(&mock);
    let data = vec![9u8; 3000];
    let md5 = md5_hex(&data);
    let no_range = mock.serve_file("plain.bin", data.clone(), false);
    let ranged = mock.serve_file("ranged.bin", data.clone(), true);
    let too_big = mock.serve_file("big.bin", vec![1u8; 10_001], true);
    // A privileged port nothing listens on: a free ephemeral port could be taken by another
    // test's server between a bind-and-drop and the job's fetch.
    let closed = "http://127.0.0.1:1/x.bin".to_owned();
    let missing = format!("{}/mock-files/nothing-here.bin", mock.base_url());
    let cases = [
        (no_range, md5.clone(), 830001),
        (closed, md5.clone(), 830003),
        (missing, md5.clone(), 830003),
        (ranged, "0".repeat(32), 301019),
        (too_big, md5_hex(&[1u8; 10_001]), 45001),
        // https is accepted at submission but never fetched (no TLS, no internet).
        (
            "https://example.invalid/a.bin".to_owned(),
            md5.clone(),
            830003,
        ),
    ];
    for (url, md5, code) in cases {
        let job = job_id(&submit(&mock, &t, "file", "a.bin", &url, &md5));
        assert_eq!(
            mock.wait_for_job(&job, WAIT),
            Some(JobStatus::Failed { errcode: code }),
            "{url}"
        );
        let r = result(&mock, &t, &job).json();
        assert_eq!(
            (r["errcode"].as_i64(), r["status"].as_i64()),
            (Some(0), Some(3))
        );
        assert_eq!(r["detail"]["errcode"], code);
    }
    assert_eq!(log.lock().unwrap().len(), 6);
}

#[test]
fn submission_is_validated() {
    let mock = start(Arc::default());
    let t = token(&mock);
    let md5 = "d41d8cd98f00b204e9800998ecf8427e";
    let url = "http://127.0.0.1:9/a.mp4";
    assert_eq!(
        submit(&mock, &t, "image", "a.png", url, md5).errcode(),
        40004
    );
    assert_eq!(
        submit(&mock, &t, "video", "a.avi", url, md5).errcode(),
        40005
    );
    assert_eq!(
        submit(&mock, &t, "file", &"a".repeat(129), url, md5).errcode(),
        40058
    );
    assert_eq!(
        submit(&mock, &t, "file", &"a".repeat(128), url, md5).errcode(),
        0
    );
    assert_eq!(
        submit(&mock, &t, "file", "a.bin", url, &md5.to_uppercase()).errcode(),
        40058
    );
    assert_eq!(
        submit(&mock, &t, "file", "a.bin", url, "abc").errcode(),
        40058
    );
    let long = format!("http://127.0.0.1:9/{}", "a".repeat(1006));
    assert_eq!(
        submit(&mock, &t, "file", "a.bin", &long, md5).errcode(),
        40058
    );
    assert_eq!(
        submit(&mock, &t, "file", "a.bin", "http://10.0.0.1/a", md5).errcode(),
        830001
    );
    assert_eq!(
        submit(&mock, &t, "file", "a.bin", "ftp://127.0.0.1/a", md5).errcode(),
        830001
    );
    assert_eq!(
        submit(&mock, &t, "file", "a.bin", "http://localhost:9/a", md5).errcode(),
        0
    );
    let scene2 = r#"{"scene":2,"type":"file","filename":"a.bin","url":"http://127.0.0.1/a","md5":"d41d8cd98f00b204e9800998ecf8427e"}"#;
    let target = format!("/cgi-bin/media/upload_by_url?access_token={t}");
    assert_eq!(post_json(mock.addr(), &target, scene2).errcode(), 40058);
    assert_eq!(
        post_json(mock.addr(), &target, "{not json").errcode(),
        47001
    );
    assert_eq!(
        post_json(mock.addr(), "/cgi-bin/media/upload_by_url", "{}").errcode(),
        41001
    );
    assert_eq!(result(&mock, &t, "jobid_unknown").errcode(), 40058);
}

#[test]
fn every_range_a_job_fetches_is_in_the_request_log_with_a_signature_masked() {
    let mock = start(Arc::new(Mutex::new(Vec::new())));
    let t = token(&mock);
    let data: Vec<u8> = (0..2500u32).map(|i| (i * 3 % 256) as u8).collect();
    let url = mock.serve_file("signed.bin", data.clone(), true);
    let signed = format!("{url}?X-Amz-Date=20261206T060000Z&X-Amz-Signature=0123abcd");
    let job = job_id(&submit(
        &mock,
        &t,
        "file",
        "a.bin",
        &signed,
        &md5_hex(&data),
    ));
    mock.wait_for_job(&job, WAIT).unwrap();
    let fetches: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|r| r.fetched_for_job.as_deref() == Some(job.as_str()))
        .collect();
    let ranges: Vec<_> = fetches.iter().map(|r| r.range().unwrap()).collect();
    assert_eq!(
        ranges,
        ["bytes=0-999", "bytes=1000-1999", "bytes=2000-2999"]
    );
    assert!(
        fetches
            .iter()
            .all(|r| r.status == 206 && r.endpoint.is_none())
    );
    assert_eq!(fetches[0].path, url);
    let shown = fetches[0].summary();
    assert!(
        shown.starts_with(&format!(
            "GET {url}?X-Amz-Date=20261206T060000Z&X-Amz-Signature=*** 206"
        )),
        "{shown}"
    );
    assert_eq!(fetches[0].to_json()["fetched_for_job"], job.as_str());
    assert!(!fetches[0].to_json().to_string().contains("0123abcd"));
}

#[test]
fn a_job_waits_its_fetch_delay_on_the_emulator_clock() {
    let mock = MockServer::start(MockConfig {
        fetch_delay: Duration::from_secs(3600),
        ..MockConfig::default()
    });
    let t = token(&mock);
    let data = vec![7u8; 100];
    let url = mock.serve_file("late.bin", data.clone(), true);
    let job = job_id(&submit(&mock, &t, "file", "a.bin", &url, &md5_hex(&data)));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(mock.job_status(&job), Some(JobStatus::Processing));
    mock.clock().advance(Duration::from_secs(3600));
    let status = mock.wait_for_job(&job, WAIT);
    assert!(
        matches!(status, Some(JobStatus::Finished { .. })),
        "{status:?}"
    );
}
