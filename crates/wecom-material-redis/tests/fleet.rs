//! Many worker *processes* sharing one token through a real redis-server, against the
//! emulator: the fleet scenarios. Each worker is this test binary run again as the
//! ignored `fleet_worker` test (see `support/worker.rs`).

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use support::RedisServer;
use support::fleet::{TokenLine, Worker, start_together, worker_command};
use support::worker::{self, Mode, WorkerArgs};
use wecom_material_mock::{App, Endpoint, Fault, MockConfig, MockServer};

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
        fallback: wecom_material_redis::Fallback::Local,
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

#[test]
fn a_cold_start_of_100_worker_processes_makes_exactly_one_gettoken() {
    let redis = RedisServer::start();
    let mock = mock();
    let a = WorkerArgs {
        gate: true,
        ..args(&redis, &mock, Duration::from_secs(30), Mode::Once)
    };
    // All 100 started and connected first, then released at once: a true stampede.
    let mut workers: Vec<Worker> = (0..100).map(|_| spawn(&a)).collect();
    start_together(&mut workers, WAIT);
    let lines = finish_all(workers);
    assert_eq!(mock.count(Endpoint::GetToken), 1);
    assert_eq!(count(&lines, "Refreshed"), 1, "{lines:?}");
    assert_eq!(count(&lines, "Shared"), 99, "{lines:?}");
    let fps: BTreeSet<_> = lines.iter().map(|l| l.fp.as_str()).collect();
    assert_eq!(fps.len(), 1, "everyone has the same token");
    assert!(lines.iter().all(|l| l.generation == "Shared(1)"));
}

#[test]
fn a_token_revoked_while_100_workers_run_costs_exactly_one_more_gettoken() {
    let redis = RedisServer::start();
    let mock = mock();
    let dir = std::env::temp_dir().join(format!("wecom-fleet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let stop_file = dir.join("stop");
    let _ = std::fs::remove_file(&stop_file);
    let a = args(
        &redis,
        &mock,
        Duration::from_secs(30),
        Mode::Loop {
            stop_file: stop_file.clone(),
        },
    );
    let workers: Vec<Worker> = (0..100).map(|_| spawn(&a)).collect();
    let first: Vec<String> = workers
        .iter()
        .map(|w| {
            w.wait_for_line(WAIT, |l| l.starts_with("ok "))
                .unwrap_or_else(|| panic!("a worker got no token: {:?}", w.lines()))
        })
        .collect();
    assert!(
        first.iter().all(|l| l.ends_with("gen=Shared(1)")),
        "{first:?}"
    );
    assert_eq!(mock.count(Endpoint::GetToken), 1);

    // WeCom revokes the token: every worker sees 40014 and gets the replacement.
    mock.revoke_tokens();
    for w in &workers {
        w.wait_for_line(WAIT, |l| {
            l.starts_with("ok ") && !l.ends_with("gen=Shared(1)")
        })
        .unwrap_or_else(|| panic!("a worker got no new token: {:?}", w.lines()));
    }
    std::fs::write(&stop_file, b"stop").unwrap();
    let mut newest = BTreeSet::new();
    for w in workers {
        let (ok, lines, stderr) = w.finish(WAIT);
        assert!(ok, "worker failed: {lines:?} {stderr}");
        newest.insert(lines.last().cloned().unwrap());
        let refreshes = lines.iter().filter(|l| *l == "refreshing").count();
        assert!(refreshes <= 2, "{lines:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(mock.count(Endpoint::GetToken), 2);
    assert_eq!(
        newest.len(),
        1,
        "everyone ends on the same token: {newest:?}"
    );
    assert!(
        newest.iter().all(|l| l.ends_with("gen=Shared(2)")),
        "{newest:?}"
    );
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
        .wait_for_line(WAIT, |l| l == "refreshing")
        .expect("the first worker refreshes");
    // Its gettoken request reaches the emulator (and takes the delay) well within this;
    // then it dies holding the lock, fence 1, for the rest of its 3 s lease.
    std::thread::sleep(Duration::from_millis(1500));
    refresher.kill();

    let survivors: Vec<Worker> = (0..20).map(|_| spawn(&a)).collect();
    let mut refreshes = 0;
    let mut lines = Vec::new();
    for w in survivors {
        let (ok, out, stderr) = w.finish(WAIT);
        assert!(ok, "survivor failed: {out:?} {stderr}");
        refreshes += out.iter().filter(|l| *l == "refreshing").count();
        lines.push(out.iter().find_map(|l| TokenLine::parse(l)).unwrap());
    }
    // Exactly one survivor took the refresh over (fence 2), and all were served.
    assert_eq!(refreshes, 1, "{lines:?}");
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
        .wait_for_line(WAIT, |l| l == "refreshing")
        .expect("the first worker refreshes");
    // A second worker waits out the 2 s lease, takes over and stores its token first.
    let taker = spawn(&a);
    let (ok, taker_lines, err) = taker.finish(WAIT);
    assert!(ok, "{taker_lines:?} {err}");
    let taken = taker_lines
        .iter()
        .find_map(|l| TokenLine::parse(l))
        .unwrap();
    assert_eq!(
        (taken.origin.as_str(), taken.generation.as_str()),
        ("Refreshed", "Shared(2)")
    );
    // The stalled refresher's COMMIT (fence 1) is refused: it is handed the stored token.
    let (ok, stalled_lines, err) = stalled.finish(WAIT);
    assert!(ok, "{stalled_lines:?} {err}");
    let late = stalled_lines
        .iter()
        .find_map(|l| TokenLine::parse(l))
        .unwrap();
    assert_eq!(
        (late.origin.as_str(), late.generation.as_str()),
        ("Shared", "Shared(2)")
    );
    let mut conn = redis.connection();
    let keys = wecom_material_redis::AppKeys::new(
        &wecom_material_core::BaseUrl::parse(&mock.base_url()).unwrap(),
        &wecom_material_core::GetToken::new(CORP, wecom_material_core::CorpSecret::new(SECRET)),
    );
    let stored_gen: String = redis::cmd("HGET")
        .arg(keys.token())
        .arg("gen")
        .query(&mut conn)
        .unwrap();
    assert_eq!(stored_gen, "2");
    assert_eq!(mock.count(Endpoint::GetToken), 2);
}

#[test]
fn redis_stopped_mid_run_falls_back_to_own_tokens_or_fails_as_configured() {
    let mut redis = RedisServer::start();
    let mock = mock();
    let a = args(&redis, &mock, Duration::from_secs(30), Mode::Once);
    let shared = finish_all(vec![spawn(&a)]);
    assert_eq!(shared[0].origin, "Refreshed");
    redis.stop();

    // Fallback (the default): one warning naming the store, a token of the worker's own.
    let workers: Vec<Worker> = (0..3).map(|_| spawn(&a)).collect();
    for w in workers {
        let (ok, lines, stderr) = w.finish(WAIT);
        assert!(ok, "{lines:?} {stderr}");
        let line = lines.iter().find_map(|l| TokenLine::parse(l)).unwrap();
        assert_eq!(
            (line.origin.as_str(), line.generation.as_str()),
            ("Local", "Local(1)")
        );
        let warnings: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("warning: "))
            .collect();
        assert_eq!(warnings.len(), 1, "{stderr}");
        assert!(
            warnings[0].contains(&format!("token store: {}: ", redis.url())),
            "{stderr}"
        );
    }
    assert_eq!(mock.count(Endpoint::GetToken), 1 + 3);

    // `Fallback::Fail`: an error naming the store without its password, no gettoken.
    let with_password = WorkerArgs {
        store_url: format!("redis://:pw-SECRET@127.0.0.1:{}", redis.port()),
        fallback: wecom_material_redis::Fallback::Fail,
        ..a
    };
    let (ok, lines, stderr) = spawn(&with_password).finish(WAIT);
    assert!(!ok);
    let error = lines.iter().find(|l| l.starts_with("error ")).unwrap();
    assert!(
        error.starts_with(&format!(
            "error token store: redis://***@127.0.0.1:{}: ",
            redis.port()
        )),
        "{error}"
    );
    assert!(!format!("{lines:?}{stderr}").contains("pw-SECRET"));
    assert_eq!(mock.count(Endpoint::GetToken), 4);
}
