//! `get` over the library's save, at the command line: SIGINT, SIGTERM and SIGKILL during
//! `get -c 4` then a rerun → byte-identical, and the two runs together fetch at most the
//! media plus 4 × 8 MB (from the emulator's request log); an existing target is refused
//! after at most one probe with exit 2; two media of one name in one run → two files.

mod support;

use std::time::{Duration, Instant};

use support::World;
use wecom_material_mock::{Endpoint, Settings};

const SIZE: usize = 40_000_000;

/// The bytes the `media/get` requests asked for (an upper bound of what was sent).
fn asked(w: &World) -> u64 {
    w.mock
        .requests_to(Endpoint::Get)
        .iter()
        .map(|r| {
            let range = r
                .headers
                .get("range")
                .expect("every save request is a range");
            let range = range.to_str().unwrap().trim_start_matches("bytes=");
            let (a, b) = range.split_once('-').unwrap();
            b.parse::<u64>().unwrap() + 1 - a.parse::<u64>().unwrap()
        })
        .sum()
}

fn bandwidth(w: &World, bytes_per_second: Option<u64>) {
    w.mock.set_settings(Settings {
        bandwidth: bytes_per_second,
        ..w.mock.settings()
    });
}

#[cfg(unix)]
#[test]
fn sigint_sigterm_and_sigkill_during_get_c4_then_a_rerun_fetch_little_twice() {
    for (signal, exit) in [("INT", Some(130)), ("TERM", Some(143)), ("KILL", None)] {
        let w = World::new(&format!("sig{signal}"));
        let bytes = support::pattern(SIZE);
        let id = w.insert_safe(&bytes, "video/mp4", "big.mp4");
        bandwidth(&w, Some(5_000_000));
        let record = w.dir.join(format!(".{id}.part.json"));
        let child = w
            .command()
            .args(["get", &id, "-c", "4"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Once the record exists, the ranges are running.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !record.exists() {
            assert!(
                Instant::now() < deadline,
                "SIG{signal}: no record was written"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(300));
        let status = std::process::Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let run: support::Run = child.wait_with_output().unwrap().into();
        if let Some(exit) = exit {
            assert_eq!(run.code, exit, "SIG{signal}: {}", run.stderr);
            let line = run.stderr.lines().last().unwrap_or("");
            assert!(
                line.contains(&format!("interrupted by SIG{signal}")) && line.contains("kept"),
                "{}",
                run.stderr
            );
        }
        assert!(record.exists(), "SIG{signal}: the record is kept");
        assert!(!w.dir.join("big.mp4").exists());

        bandwidth(&w, None);
        let run = w.run(["get", &id, "-c", "4"]);
        assert_eq!(run.code, 0, "SIG{signal}: {}", run.stderr);
        assert!(
            std::fs::read(w.dir.join("big.mp4")).unwrap() == bytes,
            "SIG{signal}: the file differs"
        );
        let both = asked(&w);
        assert!(
            both <= SIZE as u64 + 4 * 8 * 1024 * 1024,
            "SIG{signal}: {both} bytes asked by both runs"
        );
        assert!(both > SIZE as u64, "SIG{signal}: both runs fetched");
        assert!(!record.exists());
    }
}

#[test]
fn an_existing_target_is_refused_after_one_probe_with_exit_2() {
    let w = World::new("exists");
    let bytes = support::pattern(6_000_000);
    let id = w.insert_safe(&bytes, "video/mp4", "m60.bin");
    let run = w.run(["get", &id, "-o", "t2/", "-c", "2"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    w.mock.clear_requests();
    let run = w.run(["get", &id, "-o", "t2", "-c", "2"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("t2/m60.bin exists; pass --force"),
        "{}",
        run.stderr
    );
    assert!(asked(&w) <= 1024 * 1024, "at most the probe was fetched");
    let left: Vec<_> = std::fs::read_dir(w.dir.join("t2")).unwrap().collect();
    assert_eq!(left.len(), 1, "no part left: {left:?}");
}

#[test]
fn two_media_of_one_name_in_one_run_become_two_files() {
    for force in [false, true] {
        let w = World::new("samename");
        let a = support::pattern(300_000);
        let b: Vec<u8> = support::pattern(200_000).iter().map(|x| !x).collect();
        let id_a = w.insert_safe(&a, "application/octet-stream", "same.bin");
        let id_b = w.insert_safe(&b, "application/octet-stream", "same.bin");
        let mut args = vec!["--json", "get", &id_a, &id_b, "-o", "dup/"];
        if force {
            args.push("--force");
        }
        let run = w.run(args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(std::fs::read(w.dir.join("dup/same.bin")).unwrap(), a);
        assert_eq!(std::fs::read(w.dir.join("dup/same (2).bin")).unwrap(), b);
        let paths: Vec<String> = run
            .stdout
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["path"].to_string())
            .collect();
        assert_eq!(paths.len(), 2, "{}", run.stdout);
        assert!(paths[0].ends_with("same.bin\"") && paths[1].ends_with("same (2).bin\""));
    }
}

/// A second SIGINT or SIGTERM ends the run at once, with 128 + that signal, while the first
/// one's stop still waits for a stalled read.
#[cfg(unix)]
#[test]
fn a_second_signal_exits_at_once() {
    for (signal, exit) in [("INT", 130), ("TERM", 143)] {
        let w = World::new(&format!("second-sig{signal}"));
        let bytes = support::pattern(3_000_000);
        let id = w.insert_safe(&bytes, "application/octet-stream", "stalled.bin");
        w.mock.fault(
            Endpoint::Get,
            wecom_material_mock::Fault::Stall {
                after_bytes: 100_000,
                pause: Duration::from_secs(30),
                times: 10,
            },
        );
        let mut child = w
            .command()
            .args(["get", &id, "-c", "1", "--timeout", "60"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        // The first signal must come once the read is stalled: before that, the download
        // sees the cancel at its next buffer and ends on its own (a race on a loaded
        // machine). The stall comes after 100 000 bytes, all in the part file by then.
        let part = w.dir.join(format!(".{id}.part"));
        let len = || std::fs::metadata(&part).map_or(0, |m| m.len());
        while len() < 100_000 {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no stall reached"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(w.mock.count(Endpoint::Get) > 0);
        let kill = |child: &std::process::Child| {
            let status = std::process::Command::new("kill")
                .args([format!("-{signal}"), child.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
        };
        kill(&child);
        std::thread::sleep(Duration::from_millis(500));
        // The first signal's stop waits for the read to give up.
        assert!(child.try_wait().unwrap().is_none(), "SIG{signal}");
        kill(&child);
        let run: support::Run = child.wait_with_output().unwrap().into();
        assert_eq!(run.code, exit, "SIG{signal}: {}", run.stderr);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "SIG{signal}: the run waited for the stalled read"
        );
    }
}
