//! `get --connections N`: several Range requests at once into the part file, byte-identical,
//! and a run killed midway continued by the next one without a corrupted byte.

mod support;

use std::time::{Duration, Instant};

use support::World;
use wecom_material_mock::{Endpoint, Settings};

#[test]
fn four_connections_fetch_a_large_media_byte_identical() {
    let w = World::new("conn4");
    let bytes = support::pattern(25_000_001);
    let id = w.insert_safe(&bytes, "video/mp4", "big.mp4");
    let run = w.run(["--json", "get", &id, "--connections", "4"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(std::fs::read(w.dir.join("big.mp4")).unwrap() == bytes);
    let gets = w.mock.requests_to(Endpoint::Get);
    assert!(gets.len() > 4, "several ranges: {}", gets.len());
    assert!(gets.iter().all(|r| r.headers.contains_key("range")));
    assert!(!w.dir.join(format!(".{id}.part")).exists());
    assert!(!w.dir.join(format!(".{id}.part.json")).exists());
}

#[test]
fn a_parallel_run_killed_midway_is_continued_without_a_wrong_byte() {
    let w = World::new("connkill");
    let bytes = support::pattern(12_000_000);
    let id = w.insert_safe(&bytes, "video/mp4", "big.mp4");
    w.mock.set_settings(Settings {
        latency: Duration::ZERO,
        bandwidth: Some(3_000_000),
        max_concurrent_per_media: None,
    });
    let part = w.dir.join(format!(".{id}.part"));
    let mut child = w
        .command()
        .args(["get", &id, "--connections", "4"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(&part).map_or(0, |m| m.len()) < 4_000_000 {
        assert!(Instant::now() < deadline, "the first run never wrote 4 MB");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: nothing of the run's own clean-up happens
    child.wait().unwrap();
    let record = std::fs::read_to_string(w.dir.join(format!(".{id}.part.json"))).unwrap();
    assert!(
        record.contains("\"done\":[[0,"),
        "the record names the intervals that arrived: {record}"
    );
    w.mock.set_settings(Settings {
        latency: Duration::ZERO,
        bandwidth: None,
        max_concurrent_per_media: None,
    });
    let run = w.run(["get", &id, "--connections", "4"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        std::fs::read(w.dir.join("big.mp4")).unwrap() == bytes,
        "the file differs"
    );
}
