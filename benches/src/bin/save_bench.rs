//! Save benchmark (issue 18): the blocking client's durable `save` of a 200,000,000-byte
//! media into a directory, next to `curl` writing the same bytes into one file, with and
//! without an `fsync` before it counts as done. Run from the workspace root:
//!
//! ```text
//! cargo run --release -p wecom-material-benches --bin save-bench [RUNS] [CONNECTIONS]
//! ```
//!
//! Each figure is the median of RUNS runs (default 5), the three interleaved in one run, on
//! 127.0.0.1 with the emulator in a child process (`save-bench serve`):
//! - `curl`: one process, the media's ≤ 20 MB ranges one after the other over one connection,
//!   into one file (`-o -` to a file);
//! - `curl + fsync`: the same, then `fsync` of the file (what a durable copy costs);
//! - `save`: a child process (`save-bench save …`) that runs `Client::save` with CONNECTIONS
//!   (default 8) ranges at once — the part file, its record brought up to date with an
//!   `fdatasync` every 8 MiB (write-behind), the final `fsync` and the no-replace move
//!   included — and its peak RSS (`VmHWM`).
//!
//! The clocks start before the process is spawned (curl's token is fetched once before).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use wecom_material_benches::timed;
use wecom_material_core::MediaId;
use wecom_material_mock::{MockConfig, MockServer};
use wecom_material_ureq::SaveOptions;

const CORP: &str = "ww-mock-corp";
const SECRET: &str = "mock-secret";
const MEDIA_BYTES: usize = 200_000_000;
const RANGE: usize = 20_000_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("serve") => serve(),
        Some("save") => save_child(&args[2], &args[3], &args[4], args[5].parse().unwrap()),
        runs => {
            let runs = runs.map_or(5, |r| r.parse().expect("RUNS is a number"));
            let connections = args.get(2).map_or(8, |c| c.parse().expect("a number"));
            orchestrate(runs, connections);
        }
    }
}

/// Child: an emulator holding one 200 MB media; prints `BASE MEDIA_ID TOKEN` and serves
/// until its stdin closes.
fn serve() {
    // Ids without `+ / =`: curl is given the URL as it is.
    let mock = MockServer::start(MockConfig {
        ..MockConfig::default()
    });
    let media = wecom_material_benches::sample_bytes(MEDIA_BYTES);
    let id = mock.insert_media(media, "video/mp4", "big.mp4");
    let token = mock.access_token(CORP).unwrap();
    println!("{} {id} {token}", mock.base_url());
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    while std::io::stdin()
        .read_line(&mut line)
        .map(|n| n > 0)
        .unwrap_or(false)
    {}
}

/// Child: saves the media into `dir` with `connections` ranges at once.
fn save_child(base: &str, media_id: &str, dir: &str, connections: usize) {
    let client = wecom_material_ureq::Client::builder(CORP, SECRET)
        .base_url(base)
        .unwrap()
        .build();
    let options = SaveOptions {
        connections,
        ..SaveOptions::default()
    };
    let saved = client.save(&MediaId::new(media_id), dir, options).unwrap();
    assert_eq!(saved.bytes, MEDIA_BYTES as u64);
}

/// curl into one file, its ranges one after the other over one connection; `fsync` after.
fn curl(base: &str, token: &str, id: &str, out: &Path, fsync: bool) -> f64 {
    let url = format!("{base}/cgi-bin/media/get?access_token={token}&media_id={id}");
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--fail"]);
    let mut at = 0;
    while at < MEDIA_BYTES {
        let end = (at + RANGE).min(MEDIA_BYTES) - 1;
        if at > 0 {
            cmd.arg("--next");
        }
        cmd.args(["-r", &format!("{at}-{end}"), &url, "-o", "-"]);
        at = end + 1;
    }
    let start = Instant::now();
    let status = cmd.stdout(File::create(out).unwrap()).status().unwrap();
    assert!(status.success(), "curl failed");
    if fsync {
        File::open(out).unwrap().sync_all().unwrap();
    }
    let wall = start.elapsed().as_secs_f64();
    assert_eq!(std::fs::metadata(out).unwrap().len(), MEDIA_BYTES as u64);
    std::fs::remove_file(out).unwrap();
    wall
}

/// The save child: wall time and peak RSS (KiB), sampled from `/proc` until it exits.
fn save(me: &Path, base: &str, id: &str, dir: &Path, connections: usize) -> (f64, u64) {
    let _ = std::fs::remove_dir_all(dir);
    let mut cmd = Command::new(me);
    cmd.args(["save", base, id])
        .arg(format!("{}/", dir.display()))
        .arg(connections.to_string());
    let (wall, peak) = timed(cmd);
    assert_eq!(
        std::fs::metadata(dir.join("big.mp4")).unwrap().len(),
        MEDIA_BYTES as u64
    );
    std::fs::remove_dir_all(dir).unwrap();
    (wall, peak)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn orchestrate(runs: usize, connections: usize) {
    let me = std::env::current_exe().unwrap();
    let mut server = Command::new(&me)
        .arg("serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let [base, id, token]: [&str; 3] = line
        .split_whitespace()
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();
    // Beside the target directory: the same file system for all three.
    let work = std::env::temp_dir().join(format!("save-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let (mut plain, mut synced, mut saved, mut rss) = (vec![], vec![], vec![], 0);
    for run in 0..runs {
        plain.push(curl(base, token, id, &work.join("curl.bin"), false));
        synced.push(curl(base, token, id, &work.join("curl.bin"), true));
        let (wall, peak) = save(&me, base, id, &work.join("saved"), connections);
        saved.push(wall);
        rss = rss.max(peak);
        eprintln!(
            "run {run}: curl {:.3} s, curl + fsync {:.3} s, save {wall:.3} s ({peak} KiB)",
            plain[run], synced[run]
        );
    }
    let (plain, synced, saved) = (median(plain), median(synced), median(saved));
    println!(
        "| 200,000,000 B on 127.0.0.1 | wall (median of {runs}) | vs curl + fsync | vs curl |"
    );
    println!("|---|---|---|---|");
    println!("| curl | {plain:.3} s | {:.2}× | 1.00× |", plain / synced);
    println!(
        "| curl + fsync | {synced:.3} s | 1.00× | {:.2}× |",
        synced / plain
    );
    println!(
        "| `save`, {connections} connections (peak RSS {:.1} MiB) | {saved:.3} s | {:.2}× | {:.2}× |",
        rss as f64 / 1024.0,
        saved / synced,
        saved / plain
    );
    let _ = std::fs::remove_dir_all(&work);
    drop(server.stdin.take());
    let _ = server.kill();
    let _ = server.wait();
}
