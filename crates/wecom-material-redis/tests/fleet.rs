//! Many worker *processes* sharing one token through a real redis-server, against the
//! emulator: the fleet scenarios. Each worker is this test binary run again as the
//! ignored `fleet_worker` test: a real `wecom_material_ureq::Client` with a `RedisTokenStore`
//! making business calls (see `support/worker.rs`).

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use support::RedisServer;
use support::fleet::{TokenLine, Worker, start_together, worker_command};
use support::worker::{self, Mode, WorkerArgs};
use wecom_material_mock::{App, Endpoint, Fault, MockConfig, MockServer};
use wecom_material_redis::{AppKeys, Fallback};

const CORP: &str = "ww-fleet-corp";
const SECRET: &str = "fleet-SECRET-0123456789";
const WAIT: Duration = Duration::from_secs(180);

#[test]
#[ignore = "the worker process of the fleet tests: they run it, it does nothing on its own"]
fn fleet_worker() {
    if let Some(args) = WorkerArgs::from_env() {
        std::process::exit(worker::run(&args));
    }
}

fn mock() -> MockServer {
    MockServer::start(MockConfig {
        apps: vec![App::new(CORP, SECRET)],
        ..MockConfig::default()
    })
}

fn args(redis: &RedisServer, mock: &MockServer, lease: Duration, mode: Mode) -> WorkerArgs {
    WorkerArgs {
        store_url: redis.url(),
        base_url: mock.base_url(),
        corp_id: CORP.to_owned(),
        secret: SECRET.to_owned(),
        lease,
        fallback: Fallback::Local,
        mode,
        gate: false,
    }
}

fn spawn(args: &WorkerArgs) -> Worker {
    let me = std::env::current_exe().expect("the test binary");
    Worker::spawn(worker_command(
        args,
        &me,
        &[
            "fleet_worker",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
            "-q",
        ],
    ))
}

/// Runs `once` workers to the end; their token lines.
fn finish_all(workers: Vec<Worker>) -> Vec<TokenLine> {
    workers
        .into_iter()
        .map(|w| {
            let (ok, lines, stderr) = w.finish(WAIT);
            assert!(ok, "worker failed: {lines:?} {stderr}");
            lines
                .iter()
                .find_map(|l| TokenLine::parse(l))
                .unwrap_or_else(|| panic!("no token line in {lines:?}"))
        })
        .collect()
}

fn count(lines: &[TokenLine], origin: &str) -> usize {
    lines.iter().filter(|l| l.origin == origin).count()
}

fn refreshing(lines: &[String]) -> usize {
    lines.iter().filter(|l| l.starts_with("refreshing")).count()
}

fn warnings(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect()
}

/// A fresh directory for a loop-mode stop file.
fn stop_file(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wecom-fleet-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("stop");
    let _ = std::fs::remove_file(&file);
    file
}

fn keys(mock: &MockServer) -> AppKeys {
    let builder = wecom_material_ureq::Client::builder(CORP, SECRET)
        .base_url(&mock.base_url())
        .unwrap();
    AppKeys::for_client(builder.settings())
}

fn stored_generation(redis: &RedisServer, mock: &MockServer) -> Option<String> {
    redis::cmd("HGET")
        .arg(keys(mock).token())
        .arg("gen")
        .query(&mut redis.connection())
        .unwrap()
}

#[test]
fn a_cold_start_of_100_worker_processes_makes_exactly_one_gettoken() {
    let redis = RedisServer::start();
    let mock = mock();
    let a = WorkerArgs {
        gate: true,
        ..args(&redis, &mock, Duration::from_secs(30), Mode::Once)
    };
    // All 100 started and their clients built first, then released at once: a stampede.
    let mut workers: Vec<Worker> = (0..100).map(|_| spawn(&a)).collect();
    start_together(&mut workers, WAIT);
    let lines = finish_all(workers);
    assert_eq!(mock.count(Endpoint::GetToken), 1);
    assert_eq!(count(&lines, "Refreshed"), 1, "{lines:?}");
    assert_eq!(count(&lines, "Shared"), 99, "{lines:?}");
    let fps: BTreeSet<_> = lines.iter().map(|l| l.fp.as_str()).collect();
    assert_eq!(fps.len(), 1, "everyone has the same token: {fps:?}");
    assert!(
        lines.iter().all(|l| l.generation == "Shared(1)"),
        "{lines:?}"
    );
    assert_eq!(stored_generation(&redis, &mock).as_deref(), Some("1"));
}

#[test]
fn a_token_revoked_while_100_workers_run_costs_exactly_one_more_gettoken() {
    let redis = RedisServer::start();
    let mock = mock();
    let stop = stop_file("revoked");
    let a = args(
        &redis,
        &mock,
        Duration::from_secs(30),
        Mode::Loop {
            stop_file: stop.clone(),
        },
    );
    let workers: Vec<Worker> = (0..100).map(|_| spawn(&a)).collect();
    let first: BTreeSet<String> = workers
        .iter()
        .map(|w| {
            w.wait_for_line(WAIT, |l| l.starts_with("ok "))
                .unwrap_or_else(|| panic!("a worker got no token: {:?}", w.lines()))
        })
        .collect();
    assert_eq!(first.len(), 1, "one token for all: {first:?}");
    assert!(
        first.iter().all(|l| l.ends_with("gen=Shared(1)")),
        "{first:?}"
    );
    assert_eq!(mock.count(Endpoint::GetToken), 1);

    // WeCom revokes the token: every worker's next call sees 40014 and its client gets the
    // replacement through the store.
    mock.revoke_tokens();
    for w in &workers {
        w.wait_for_line(WAIT, |l| {
            l.starts_with("ok ") && !l.ends_with("gen=Shared(1)")
        })
        .unwrap_or_else(|| panic!("a worker got no new token: {:?}", w.lines()));
    }
    std::fs::write(&stop, b"stop").unwrap();
    let mut newest = BTreeSet::new();
    let mut refreshes = 0;
    for w in workers {
        let (ok, lines, stderr) = w.finish(WAIT);
        assert!(ok, "worker failed: {lines:?} {stderr}");
        assert!(warnings(&stderr).is_empty(), "{stderr}");
        refreshes += refreshing(&lines);
        let last = lines.iter().rev().find(|l| l.starts_with("ok ")).cloned();
        newest.insert(last.unwrap());
    }
    let _ = std::fs::remove_dir_all(stop.parent().unwrap());
    assert_eq!(mock.count(Endpoint::GetToken), 2);
    assert_eq!(refreshes, 2, "one refresher per token window");
    assert_eq!(
        newest.len(),
        1,
        "everyone ends on the same token: {newest:?}"
    );
    assert!(
        newest.iter().all(|l| l.ends_with("gen=Shared(2)")),
        "{newest:?}"
    );
    assert_eq!(stored_generation(&redis, &mock).as_deref(), Some("2"));
}

#[test]
fn a_refresher_killed_mid_refresh_is_taken_over_after_its_lease() {
    let redis = RedisServer::start();
    let mock = mock();
    // The first gettoken hangs long enough for its caller to be killed inside it.
    mock.fault(
        Endpoint::GetToken,
        Fault::Delay {
            delay: Duration::from_secs(20),
            times: 1,
        },
    );
    let a = args(&redis, &mock, Duration::from_secs(3), Mode::Once);
    let mut refresher = spawn(&a);
    refresher
        .wait_for_line(WAIT, |l| l == "refreshing fence=1")
        .expect("the first worker refreshes");
    // Its gettoken request reaches the emulator (and takes the delay) well within this;
    // then it dies holding the lock, fence 1, for the rest of its 3 s lease.
    std::thread::sleep(Duration::from_millis(1500));
    refresher.kill();
    let before = mock.count(Endpoint::GetToken);
    assert!(before <= 1);

    let survivors: Vec<Worker> = (0..20).map(|_| spawn(&a)).collect();
    let mut refreshes = Vec::new();
    let mut lines = Vec::new();
    for w in survivors {
        let (ok, out, stderr) = w.finish(WAIT);
        assert!(ok, "survivor failed: {out:?} {stderr}");
        refreshes.extend(out.iter().filter(|l| l.starts_with("refreshing")).cloned());
        lines.push(out.iter().find_map(|l| TokenLine::parse(l)).unwrap());
    }
    // Exactly one survivor took the refresh over (fence 2), and all were served by it.
    assert_eq!(refreshes, ["refreshing fence=2"], "{lines:?}");
    assert_eq!(mock.count(Endpoint::GetToken) - before, 1);
    assert_eq!(count(&lines, "Refreshed"), 1, "{lines:?}");
    assert!(
        lines.iter().all(|l| l.generation == "Shared(2)"),
        "{lines:?}"
    );
    let fps: BTreeSet<_> = lines.iter().map(|l| l.fp.as_str()).collect();
    assert_eq!(fps.len(), 1);
}

#[test]
fn a_refresher_stalled_past_its_lease_cannot_store_its_late_token() {
    let redis = RedisServer::start();
    let mock = mock();
    mock.fault(
        Endpoint::GetToken,
        Fault::Delay {
            delay: Duration::from_secs(5),
            times: 1,
        },
    );
    let a = args(&redis, &mock, Duration::from_secs(2), Mode::Once);
    let stalled = spawn(&a);
    stalled
        .wait_for_line(WAIT, |l| l == "refreshing fence=1")
        .expect("the first worker refreshes");
    // A second worker waits out the 2 s lease, takes over and stores its token first.
    let taker = spawn(&a);
    let (ok, taker_lines, err) = taker.finish(WAIT);
    assert!(ok, "{taker_lines:?} {err}");
    assert!(
        taker_lines.contains(&"refreshing fence=2".to_owned()),
        "{taker_lines:?}"
    );
    let taken = taker_lines
        .iter()
        .find_map(|l| TokenLine::parse(l))
        .unwrap();
    assert_eq!(
        (taken.origin.as_str(), taken.generation.as_str()),
        ("Refreshed", "Shared(2)")
    );
    assert_eq!(stored_generation(&redis, &mock).as_deref(), Some("2"));
    // The stalled refresher's COMMIT (fence 1) is refused: it is handed the stored token.
    let (ok, stalled_lines, err) = stalled.finish(WAIT);
    assert!(ok, "{stalled_lines:?} {err}");
    assert!(
        stalled_lines.contains(&"superseded".to_owned()),
        "{stalled_lines:?}"
    );
    let late = stalled_lines
        .iter()
        .find_map(|l| TokenLine::parse(l))
        .unwrap();
    assert_eq!(
        (late.origin.as_str(), late.generation.as_str()),
        ("Superseded", "Shared(2)")
    );
    assert_eq!(
        late.fp, taken.fp,
        "the stalled worker uses the stored token"
    );
    assert_eq!(stored_generation(&redis, &mock).as_deref(), Some("2"));
    assert_eq!(mock.count(Endpoint::GetToken), 2);
}

#[test]
fn redis_stopped_mid_run_falls_back_to_own_tokens_or_fails_as_configured() {
    let mut redis = RedisServer::start();
    let mock = mock();
    let stop = stop_file("outage");
    let looping = args(
        &redis,
        &mock,
        Duration::from_secs(30),
        Mode::Loop {
            stop_file: stop.clone(),
        },
    );
    let workers: Vec<Worker> = (0..4).map(|_| spawn(&looping)).collect();
    for w in &workers {
        w.wait_for_line(WAIT, |l| {
            l.starts_with("ok ") && l.ends_with("gen=Shared(1)")
        })
        .unwrap_or_else(|| panic!("a worker got no token: {:?}", w.lines()));
    }
    assert_eq!(mock.count(Endpoint::GetToken), 1);

    // Redis goes away, then WeCom revokes the token: each running worker fails to reach the
    // store, warns once and gets a token of its own (fallback `Local`, the default).
    redis.stop();
    mock.revoke_tokens();
    for w in &workers {
        w.wait_for_line(WAIT, |l| l.starts_with("ok ") && l.ends_with("gen=Local"))
            .unwrap_or_else(|| panic!("a worker did not fall back: {:?}", w.lines()));
    }
    // Workers starting during the outage do the same.
    let once = args(&redis, &mock, Duration::from_secs(30), Mode::Once);
    let late: Vec<Worker> = (0..2).map(|_| spawn(&once)).collect();
    std::fs::write(&stop, b"stop").unwrap();
    let expected = format!("token store: {}: ", redis.url());
    for w in workers.into_iter().chain(late) {
        let (ok, lines, stderr) = w.finish(WAIT);
        assert!(ok, "{lines:?} {stderr}");
        if let Some(line) = lines.iter().find_map(|l| TokenLine::parse(l)) {
            assert_eq!(
                (line.origin.as_str(), line.generation.as_str()),
                ("Local", "Local")
            );
        }
        let warned = warnings(&stderr);
        assert_eq!(warned.len(), 1, "one warning per process: {stderr}");
        assert!(warned[0].contains(&expected), "{stderr}");
        assert!(
            warned[0].ends_with("using a token of this process's own until the store answers"),
            "{stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(stop.parent().unwrap());
    assert_eq!(
        mock.count(Endpoint::GetToken),
        1 + 4 + 2,
        "one gettoken per process"
    );

    // `Fallback::Fail`: an error naming the store without its password, no gettoken.
    let with_password = WorkerArgs {
        store_url: format!("redis://:pw-SECRET@127.0.0.1:{}", redis.port()),
        fallback: Fallback::Fail,
        ..once
    };
    let (ok, lines, stderr) = spawn(&with_password).finish(WAIT);
    assert!(!ok);
    let error = lines.iter().find(|l| l.starts_with("error ")).unwrap();
    assert!(
        error.starts_with(&format!(
            "error transport token store: redis://***@127.0.0.1:{}: ",
            redis.port()
        )),
        "{error}"
    );
    assert!(!format!("{lines:?}{stderr}").contains("pw-SECRET"));
    assert_eq!(mock.count(Endpoint::GetToken), 7);
}
