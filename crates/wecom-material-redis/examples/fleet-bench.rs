//! Cold start of a fleet: N worker processes, each a real `wecom_material_ureq::Client` with a
//! `RedisTokenStore`, started and then released together, make their first business call at
//! the same moment through one fresh redis-server, against the emulator. Reports the
//! gettoken calls, the Redis round trips per worker and the workers' waits.
//!
//! ```text
//! cargo run --release -p wecom-material-redis --example fleet-bench -- 10 100
//! ```
//!
//! `-v` also prints every worker's origin (`Refreshed`, `Shared`), waits and round trips.
//!
//! Needs `redis-server` on PATH (`scripts/ensure-redis`). Each worker is this binary run
//! again with `WECOM_FLEET_*` set (see `tests/support/worker.rs`).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::RedisServer;
use support::fleet::{TokenLine, Worker, start_together, worker_command};
use support::worker::{self, Mode, WorkerArgs};
use wecom_material_mock::{App, Endpoint, MockConfig, MockServer};

fn main() {
    if let Some(args) = WorkerArgs::from_env() {
        std::process::exit(worker::run(&args));
    }
    let verbose = std::env::args().any(|a| a == "-v");
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| a != "-v")
        .map(|a| a.parse().expect("worker counts, e.g. `10 100`"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10, 100]
    } else {
        sizes
    };
    println!(
        "{:>7}  {:>8}  {:>20}  {:>22}  {:>12}  {:>13}",
        "workers",
        "gettoken",
        "round trips/worker",
        "token wait ms (med/max)",
        "call ms max",
        "all served ms"
    );
    for n in sizes {
        run(n, verbose);
    }
}

/// One cold start of `n` workers; with `verbose`, every worker's line too.
fn run(n: usize, verbose: bool) {
    // A fresh server and emulator for each run: a true cold start.
    let redis = RedisServer::start();
    let mock = MockServer::start(MockConfig {
        apps: vec![App::new("ww-bench", "bench-secret")],
        ..MockConfig::default()
    });
    let args = WorkerArgs {
        store_url: redis.url(),
        base_url: mock.base_url(),
        corp_id: "ww-bench".into(),
        secret: "bench-secret".into(),
        lease: Duration::from_secs(30),
        fallback: wecom_material_redis::Fallback::Local,
        mode: Mode::Once,
        gate: true,
    };
    let me = std::env::current_exe().expect("this binary");
    // Every worker is started (its client built) first and released at once: the stampede
    // of a cold start.
    let mut workers: Vec<Worker> = (0..n)
        .map(|_| Worker::spawn(worker_command(&args, &me, &[])))
        .collect();
    start_together(&mut workers, Duration::from_secs(120));
    let started = Instant::now();
    let mut lines: Vec<TokenLine> = workers
        .into_iter()
        .map(|w| {
            let (ok, out, stderr) = w.finish(Duration::from_secs(300));
            assert!(ok, "worker failed: {out:?} {stderr}");
            out.iter()
                .find_map(|l| TokenLine::parse(l))
                .expect("a token line")
        })
        .collect();
    let all_served = started.elapsed();
    lines.sort_by_key(|l| l.token_ms);
    if verbose {
        for l in &lines {
            println!(
                "  {:<10} token {:>4} ms  call {:>4} ms  {} round trips",
                l.origin, l.token_ms, l.elapsed_ms, l.trips
            );
        }
    }
    let trips: Vec<u64> = lines.iter().map(|l| l.trips).collect();
    let mean = trips.iter().sum::<u64>() as f64 / n as f64;
    let max_trips = trips.iter().max().copied().unwrap_or(0);
    let median = lines[n / 2].token_ms;
    let slowest = lines[n - 1].token_ms;
    let slowest_call = lines.iter().map(|l| l.elapsed_ms).max().unwrap_or(0);
    println!(
        "{n:>7}  {:>8}  {:>20}  {:>23}  {:>12}  {:>13}",
        mock.count(Endpoint::GetToken),
        format!("{mean:.2} mean, {max_trips} max"),
        format!("{median} / {slowest}"),
        slowest_call,
        all_served.as_millis()
    );
}
