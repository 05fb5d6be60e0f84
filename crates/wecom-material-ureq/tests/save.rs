//! `Client::save` against the emulator, without the CLI: a save killed with SIGKILL (a child
//! process) and resumed fetches only the missing intervals; foreign and crafted parts are
//! set aside, never resumed; symlinks are never followed; concurrent saves of one media to
//! one path leave one winner; an existing target is refused before the body is spent; a
//! cancel keeps what arrived.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use wecom_material_core::ops::get_media::MediaEndpoint;
use wecom_material_core::save::{SaveError, SaveRecord};
use wecom_material_core::{CancelFlag, Error, MediaId, Progress, RetryPolicy};
use wecom_material_host::save::part_name;
use wecom_material_mock::{Endpoint, MockConfig, MockServer};
use wecom_material_ureq::{BatchNames, Client, Overwrite, SaveOptions, Transfer};

const SIZE: usize = 24_000_000;

fn media(len: usize, salt: u32) -> Bytes {
    Bytes::from(
        (0..len as u32)
            .map(|i| (i.wrapping_add(salt).wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect::<Vec<_>>(),
    )
}

fn client_for(base: &str) -> Client {
    Client::builder("ww-mock-corp", "mock-secret")
        .base_url(base)
        .unwrap()
        .retry_policy(RetryPolicy {
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            ..RetryPolicy::default()
        })
        .build()
}

fn setup(config: MockConfig) -> (MockServer, Client, MediaId, Bytes) {
    let mock = MockServer::start(config);
    let client = client_for(&mock.base_url());
    let bytes = media(SIZE, 0);
    let id = MediaId::new(mock.insert_media(bytes.clone(), "video/mp4", "big.mp4"));
    (mock, client, id, bytes)
}

/// A fresh directory, removed when dropped (also when the test fails).
fn scratch(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("wecom-save-{name}-"))
        .tempdir()
        .unwrap()
}

fn ranges_asked(mock: &MockServer) -> Vec<(u64, u64)> {
    mock.requests_to(Endpoint::Get)
        .iter()
        .filter_map(|r| r.headers.get("range"))
        .map(|v| {
            let v = v.to_str().unwrap().trim_start_matches("bytes=");
            let (a, b) = v.split_once('-').unwrap();
            (a.parse().unwrap(), b.parse::<u64>().unwrap() + 1)
        })
        .collect()
}

fn part_of(dir: &Path, id: &MediaId) -> PathBuf {
    dir.join(part_name(id, MediaEndpoint::Media))
}

fn record_of(dir: &Path, id: &MediaId) -> PathBuf {
    dir.join(format!("{}.json", part_name(id, MediaEndpoint::Media)))
}

fn stale_of(dir: &Path, id: &MediaId) -> PathBuf {
    dir.join(format!("{}.stale-1", part_name(id, MediaEndpoint::Media)))
}

fn options(connections: usize) -> SaveOptions<'static> {
    SaveOptions {
        connections,
        ..SaveOptions::default()
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_save_into_a_directory_takes_the_media_name_and_leaves_no_part() {
    let (mock, client, id, bytes) = setup(MockConfig::default());
    for n in [1, 4] {
        let tmp = scratch("dir");
        let dir = tmp.path();
        let saved = client.save(&id, dir.join("out/"), options(n)).unwrap();
        assert_eq!(saved.path, dir.join("out/big.mp4"));
        assert_eq!((saved.bytes, saved.resumed), (SIZE as u64, 0));
        assert_eq!(saved.info.content_type, "video/mp4");
        assert!(std::fs::read(&saved.path).unwrap() == bytes, "N = {n}");
        assert_eq!(entries(&dir.join("out")), ["big.mp4"], "no part, no record");
        let asked = ranges_asked(&mock);
        assert_eq!(asked[0], (0, 1024 * 1024), "the probe first");
        mock.clear_requests();
    }
}

/// The child process's side of the kill test: saves the media named by the environment.
#[test]
#[ignore = "run by kill_9_mid_save_then_a_resume_fetches_only_the_missing_intervals"]
fn save_child() {
    let var = |name: &str| std::env::var(name).unwrap();
    let client = client_for(&var("SAVE_CHILD_BASE"));
    let id = MediaId::new(var("SAVE_CHILD_ID"));
    let n = var("SAVE_CHILD_N").parse().unwrap();
    client.save(&id, var("SAVE_CHILD_DIR"), options(n)).unwrap();
}

#[test]
fn kill_9_mid_save_then_a_resume_fetches_only_the_missing_intervals() {
    for n in [1, 4] {
        // 2 MB/s per connection: the child is mid-save for seconds.
        let (mock, client, id, bytes) = setup(MockConfig {
            bandwidth: Some(2_000_000),
            ..MockConfig::default()
        });
        let tmp = scratch("kill");
        let dir = tmp.path();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "save_child", "--ignored", "--nocapture"])
            .env("SAVE_CHILD_BASE", mock.base_url())
            .env("SAVE_CHILD_ID", id.as_str())
            .env("SAVE_CHILD_N", n.to_string())
            .env("SAVE_CHILD_DIR", format!("{}/", dir.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        // Kill it once its record names at least 4 MB (a few records were written).
        let deadline = Instant::now() + Duration::from_secs(60);
        let claimed = loop {
            assert!(Instant::now() < deadline, "the child never recorded 4 MB");
            assert!(child.try_wait().unwrap().is_none(), "the child ended early");
            if let Ok(json) = std::fs::read(record_of(dir, &id))
                && let Ok(record) = SaveRecord::parse(&json)
                && record.progress().bytes_done() >= 4_000_000
            {
                break record;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // The record on disk now (a later one may have been written before the kill).
        let record = SaveRecord::parse(&std::fs::read(record_of(dir, &id)).unwrap()).unwrap();
        assert!(record.progress().bytes_done() >= claimed.progress().bytes_done());
        assert!(!record.progress().is_complete());
        mock.set_settings(wecom_material_mock::Settings {
            bandwidth: None,
            ..mock.settings()
        });
        mock.clear_requests();

        let saved = client.save(&id, dir, options(n)).unwrap();
        assert!(std::fs::read(&saved.path).unwrap() == bytes, "N = {n}");
        let kept = record.progress().bytes_done();
        assert_eq!(saved.resumed, kept);
        let asked = ranges_asked(&mock);
        let fetched: u64 = asked.iter().map(|(a, b)| b - a).sum();
        assert_eq!(
            fetched,
            SIZE as u64 - kept,
            "N = {n}: only the missing bytes"
        );
        for &(a, b) in &asked {
            for &(s, e) in &record.done {
                assert!(
                    b <= s || a >= e,
                    "[{a}, {b}) fetched again: {s}..{e} was kept"
                );
            }
        }
        assert_eq!(entries(dir), ["big.mp4"]);
    }
}

#[test]
fn a_foreign_part_is_never_resumed() {
    let (mock, client, id, bytes) = setup(MockConfig::default());
    let other = media(SIZE, 7);
    let record = |media: &str, total: u64| {
        format!(
            r#"{{"version":2,"media_id":"{media}","endpoint":"media","total":{total},"done":[[0,4000000]]}}"#
        )
    };
    let cases = [
        ("other media", Some(record("another-id", SIZE as u64))),
        ("other total", Some(record(id.as_str(), SIZE as u64 + 10))),
        ("zeros, no record", None),
    ];
    for (case, json) in cases {
        let tmp = scratch("foreign");
        let dir = tmp.path();
        let part = part_of(dir, &id);
        let stale_bytes = if json.is_some() {
            other[..4_000_000].to_vec()
        } else {
            vec![0; 4_000_000]
        };
        std::fs::write(&part, &stale_bytes).unwrap();
        if let Some(json) = json {
            std::fs::write(record_of(dir, &id), json).unwrap();
        }
        mock.clear_requests();
        let saved = client.save(&id, dir, options(4)).unwrap();
        assert!(std::fs::read(&saved.path).unwrap() == bytes, "{case}");
        assert_eq!(saved.resumed, 0, "{case}");
        // The old part is kept aside: its bytes untouched (a resumed part of another size
        // got the total check's probe after them).
        let stale = std::fs::read(stale_of(dir, &id)).unwrap();
        assert!(stale[..4_000_000] == stale_bytes[..], "{case}");
        let fetched: u64 = ranges_asked(&mock).iter().map(|(a, b)| b - a).sum();
        let probe = if case == "other total" {
            1024 * 1024
        } else {
            0
        };
        assert_eq!(fetched, SIZE as u64 + probe, "{case}: everything fetched");
    }
}

#[test]
fn a_crafted_record_is_set_aside_and_never_trusted() {
    let (_mock, client, id, bytes) = setup(MockConfig::default());
    let crafted = [
        r#"{"version":2,"media_id":"ID","endpoint":"media","total":24000000,"done":[[9223372036854775808,0]]}"#.to_owned(),
        r#"{"version":2,"media_id":"ID","endpoint":"media","total":24000000,"done":[[10,20],[0,30]]}"#.to_owned(),
        r#"{"version":9,"media_id":"ID","endpoint":"media","total":24000000,"done":[[0,30]]}"#.to_owned(),
        " ".repeat(50_000_000),
    ];
    for json in crafted {
        let tmp = scratch("crafted");
        let dir = tmp.path();
        std::fs::write(part_of(dir, &id), vec![1u8; 100]).unwrap();
        std::fs::write(record_of(dir, &id), json.replace("ID", id.as_str())).unwrap();
        let saved = client.save(&id, dir, options(4)).unwrap();
        assert!(std::fs::read(&saved.path).unwrap() == bytes);
        assert_eq!(saved.resumed, 0);
        assert!(stale_of(dir, &id).exists());
    }
}

#[cfg(unix)]
#[test]
fn symlinks_at_the_part_and_the_target_are_never_followed() {
    let (mock, client, id, bytes) = setup(MockConfig::default());
    let tmp = scratch("links");
    let dir = tmp.path();
    let victim = dir.join("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    std::os::unix::fs::symlink(&victim, part_of(dir, &id)).unwrap();
    std::os::unix::fs::symlink(&victim, record_of(dir, &id)).unwrap();
    let saved = client.save(&id, dir, options(4)).unwrap();
    assert!(std::fs::read(&saved.path).unwrap() == bytes);
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");

    // A symlink (dangling, too) at a file target: refused before any request.
    mock.clear_requests();
    for link_to in [victim.clone(), dir.join("nowhere")] {
        let target = dir.join(format!("link-{}", link_to.file_name().unwrap().display()));
        std::os::unix::fs::symlink(&link_to, &target).unwrap();
        let error = client.save(&id, &target, options(4)).unwrap_err();
        assert!(
            matches!(&error, Error::Save(SaveError::TargetExists { path }) if *path == target),
            "{error:?}"
        );
    }
    assert_eq!(mock.count(Endpoint::Get), 0, "nothing was fetched");
    // A symlink at the media's name in a directory target: refused at the first head.
    let sub = dir.join("sub");
    std::fs::create_dir(&sub).unwrap();
    std::os::unix::fs::symlink(&victim, sub.join("big.mp4")).unwrap();
    let error = client.save(&id, &sub, options(4)).unwrap_err();
    assert!(matches!(error, Error::Save(SaveError::TargetExists { .. })));
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert_eq!(
        mock.count(Endpoint::Get),
        1,
        "one range asked, then refused"
    );
    assert_eq!(entries(&sub), ["big.mp4"], "the refused save left no part");
}

#[test]
fn an_existing_target_is_refused_with_at_most_one_chunk_fetched_unless_replaced() {
    let (mock, client, id, bytes) = setup(MockConfig::default());
    let tmp = scratch("exists");
    let dir = tmp.path();
    client.save(&id, dir, options(4)).unwrap();
    mock.clear_requests();
    let error = client.save(&id, dir, options(4)).unwrap_err();
    let Error::Save(SaveError::TargetExists { path }) = &error else {
        panic!("{error:?}");
    };
    assert_eq!(*path, dir.join("big.mp4"));
    assert_eq!(ranges_asked(&mock), [(0, 1024 * 1024)], "one probe at most");
    std::fs::write(dir.join("big.mp4"), b"old").unwrap();
    let replace = SaveOptions {
        overwrite: Overwrite::Replace,
        ..options(4)
    };
    let saved = client.save(&id, dir, replace).unwrap();
    assert!(std::fs::read(&saved.path).unwrap() == bytes);
}

#[test]
fn concurrent_saves_of_one_media_to_one_path_leave_one_winner() {
    let (_mock, client, id, bytes) = setup(MockConfig {
        bandwidth: Some(20_000_000),
        ..MockConfig::default()
    });
    let tmp = scratch("race");
    let dir = tmp.path();
    let results: Vec<_> = std::thread::scope(|s| {
        let saves: Vec<_> = (0..4)
            .map(|_| s.spawn(|| client.save(&id, dir, options(2))))
            .collect();
        saves.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "{results:?}");
    for result in &results {
        if let Err(error) = result {
            assert!(
                matches!(
                    error,
                    Error::Save(SaveError::Busy { .. } | SaveError::TargetExists { .. })
                ),
                "{error:?}"
            );
        }
    }
    assert!(std::fs::read(dir.join("big.mp4")).unwrap() == bytes);
    assert_eq!(entries(dir), ["big.mp4"]);
}

#[test]
fn a_cancel_writes_the_record_at_once_and_a_resume_completes() {
    let (_mock, client, id, bytes) = setup(MockConfig {
        bandwidth: Some(4_000_000),
        ..MockConfig::default()
    });
    let tmp = scratch("cancel");
    let dir = tmp.path();
    let cancel = CancelFlag::new();
    let flag = cancel.clone();
    let transfer = Transfer::default()
        .cancelled_by(&cancel)
        .with_progress(move |p: Progress| {
            if p.done >= 3_000_000 {
                flag.cancel();
            }
        });
    let opts = SaveOptions {
        transfer,
        ..options(4)
    };
    let error = client.save(&id, dir, opts).unwrap_err();
    let Error::Save(SaveError::Stopped {
        kept, total, cause, ..
    }) = &error
    else {
        panic!("{error:?}");
    };
    assert!(matches!(**cause, Error::Cancelled { .. }), "{cause:?}");
    assert_eq!(*total, Some(SIZE as u64));
    let record = SaveRecord::parse(&std::fs::read(record_of(dir, &id)).unwrap()).unwrap();
    assert_eq!(
        record.progress().bytes_done(),
        *kept,
        "written at once, up to date"
    );
    assert!(error.to_string().contains("kept"), "{error}");
    let saved = client.save(&id, dir, options(4)).unwrap();
    assert_eq!(saved.resumed, *kept);
    assert!(std::fs::read(&saved.path).unwrap() == bytes);
}

#[test]
fn two_media_of_one_name_in_one_batch_land_side_by_side() {
    let (mock, client, a, _) = setup(MockConfig::default());
    let b_bytes = media(1000, 3);
    let b = MediaId::new(mock.insert_media(b_bytes.clone(), "video/mp4", "big.mp4"));
    let tmp = scratch("batch");
    let dir = tmp.path();
    let names = BatchNames::new();
    let batch = SaveOptions {
        names: Some(&names),
        overwrite: Overwrite::Replace,
        ..options(2)
    };
    let first = client.save(&a, dir, batch.clone()).unwrap();
    let second = client.save(&b, dir, batch).unwrap();
    assert_eq!(first.path, dir.join("big.mp4"));
    assert_eq!(second.path, dir.join("big (2).mp4"));
    assert!(std::fs::read(&second.path).unwrap() == b_bytes);
    assert_eq!(std::fs::read(&first.path).unwrap().len(), SIZE);
}
