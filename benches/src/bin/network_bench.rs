//! Network benchmark: the emulator with a realistic network (latency added to every answer,
//! a bandwidth cap per connection for media bodies), the `wecom-material` command against
//! single-stream and sequential baselines, side by side in one run. From the workspace root:
//!
//! ```text
//! cargo build --release -p wecom-material-cli
//! cargo run --release -p wecom-material-benches --bin network-bench [RUNS]     # full (≈ 2 min)
//! cargo run --release -p wecom-material-benches --bin network-bench -- --quick  # CI smoke
//! ```
//!
//! (a) one 200,000,000-byte media at 20 ms latency and 25 MB/s per connection, fetched by
//!     `curl` as one stream (its ≤ 20 MB ranges one after the other over one connection, as
//!     WeCom requires ranges for large media), then by `wecom-material get --connections`
//!     1, 4 and 8; wall time, ratio to curl, and the command's peak RSS.
//! (b) 200 files of 100 KB uploaded at 30 ms latency by a sequential loop of `curl -F` (as a
//!     shell loop or wechatpy does), then by `wecom-material upload file … --jobs` 1, 8, 16.
//! Each figure is the median of RUNS runs (default 3). `--quick` shrinks both to a 20 MB
//! media and 20 files, one run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wecom_material_benches::timed;
use wecom_material_mock::{MockConfig, MockServer, Settings};

const CORP: &str = "ww-mock-corp";
const SECRET: &str = "mock-secret";
const RANGE: u64 = 20_000_000;

struct Sizes {
    media: usize,
    files: usize,
    file_len: usize,
    runs: usize,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let runs = args.iter().find_map(|a| a.parse().ok()).unwrap_or(3);
    let sizes = if quick {
        Sizes {
            media: 20_000_000,
            files: 20,
            file_len: 100_000,
            runs: 1,
        }
    } else {
        Sizes {
            media: 200_000_000,
            files: 200,
            file_len: 100_000,
            runs,
        }
    };
    let cli = cli_path();
    let work = std::env::temp_dir().join(format!("wecom-network-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let mock = MockServer::start(MockConfig::default());
    let base = mock.base_url();
    let media = wecom_material_benches::sample_bytes(sizes.media);
    let media_id = mock.insert_media(media, "video/mp4", "bench.mp4");
    let token = gettoken(&base);

    mock.set_settings(Settings {
        latency: Duration::from_millis(20),
        bandwidth: Some(25_000_000),
        max_concurrent_per_media: None,
    });
    println!(
        "(a) {} B media, 20 ms latency, 25 MB/s per connection, median of {} run(s)",
        sizes.media, sizes.runs
    );
    let curl = median(sizes.runs, || {
        curl_download(&base, &token, &media_id, sizes.media, &work).0
    });
    println!("| client | wall | ratio to curl | peak RSS |\n|---|---|---|---|");
    println!("| curl, one stream | {curl:.2} s | 1.00× | |");
    for n in [1, 4, 8] {
        let mut rss = 0;
        let wall = median(sizes.runs, || {
            let (wall, peak) = cli_download(&cli, &base, &media_id, n, &work);
            rss = rss.max(peak);
            wall
        });
        let ratio = wall / curl;
        println!(
            "| wecom-material get --connections {n} | {wall:.2} s | {ratio:.2}× | {:.1} MiB |",
            rss as f64 / 1024.0
        );
    }

    mock.set_settings(Settings {
        latency: Duration::from_millis(30),
        bandwidth: None,
        max_concurrent_per_media: None,
    });
    let files = make_files(&work, sizes.files, sizes.file_len);
    println!(
        "\n(b) {} files of {} B, 30 ms latency, median of {} run(s)",
        sizes.files, sizes.file_len, sizes.runs
    );
    let sequential = median(sizes.runs, || curl_uploads(&base, &token, &files));
    println!("| client | wall | ratio to the loop |\n|---|---|---|");
    println!("| sequential loop of curl -F | {sequential:.2} s | 1.00× |");
    for jobs in [1, 8, 16] {
        let wall = median(sizes.runs, || cli_uploads(&cli, &base, &files, jobs, &work));
        println!(
            "| wecom-material upload --jobs {jobs} | {wall:.2} s | {:.2}× |",
            wall / sequential
        );
    }
    std::fs::remove_dir_all(&work).ok();
}

/// The release build of the command, next to this benchmark.
fn cli_path() -> PathBuf {
    let here = std::env::current_exe().unwrap();
    let path = here.with_file_name("wecom-material");
    assert!(
        path.exists(),
        "{} is missing: cargo build --release -p wecom-material-cli",
        path.display()
    );
    path
}

fn median(runs: usize, mut measure: impl FnMut() -> f64) -> f64 {
    let mut all: Vec<f64> = (0..runs.max(1)).map(|_| measure()).collect();
    all.sort_by(f64::total_cmp);
    all[all.len() / 2]
}

fn gettoken(base: &str) -> String {
    let url = format!("{base}/cgi-bin/gettoken?corpid={CORP}&corpsecret={SECRET}");
    let out = Command::new("curl").args(["-sS", &url]).output().unwrap();
    let body = String::from_utf8(out.stdout).unwrap();
    let start = body.find("\"access_token\":\"").unwrap() + 16;
    body[start..].split('"').next().unwrap().to_owned()
}

/// curl, one process and one connection: the media's ranges one after the other.
fn curl_download(base: &str, token: &str, id: &str, len: usize, work: &Path) -> (f64, u64) {
    let url = format!("{base}/cgi-bin/media/get?access_token={token}&media_id={id}");
    let out = work.join("curl.bin");
    let mut cmd = Command::new("curl");
    cmd.arg("-sS").arg("--fail");
    let mut at = 0;
    while at < len as u64 {
        let end = (at + RANGE).min(len as u64) - 1;
        if at > 0 {
            cmd.arg("--next");
        }
        cmd.args(["-r", &format!("{at}-{end}"), &url, "-o"])
            .arg(work.join(format!("curl-{at}")));
        at = end + 1;
    }
    let start = Instant::now();
    let status = cmd.status().unwrap();
    let wall = start.elapsed().as_secs_f64();
    assert!(status.success(), "curl failed");
    std::fs::remove_file(out).ok();
    for entry in std::fs::read_dir(work).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with("curl-") {
            std::fs::remove_file(entry.path()).ok();
        }
    }
    (wall, 0)
}

fn cli(cli: &Path, base: &str, work: &Path) -> Command {
    let mut cmd = Command::new(cli);
    cmd.env("WECOM_BASE_URL", base)
        .env("WECOM_CORP_ID", CORP)
        .env("WECOM_SECRET", SECRET)
        // A directory of its own, which the command creates private (no warning about it).
        .env("WECOM_TOKEN_CACHE", work.join("cache").join("tokens.json"))
        .stdout(Stdio::null());
    cmd
}

fn cli_download(cli_path: &Path, base: &str, id: &str, n: usize, work: &Path) -> (f64, u64) {
    let dir = work.join(format!("get-{n}"));
    std::fs::remove_dir_all(&dir).ok();
    let mut cmd = cli(cli_path, base, work);
    cmd.args([
        "--quiet",
        "get",
        id,
        "--connections",
        &n.to_string(),
        "--output",
    ])
    .arg(format!("{}/", dir.display()));
    let measured = timed(cmd);
    std::fs::remove_dir_all(&dir).ok();
    measured
}

fn make_files(work: &Path, n: usize, len: usize) -> Vec<PathBuf> {
    let dir = work.join("uploads");
    std::fs::create_dir_all(&dir).unwrap();
    (0..n)
        .map(|i| {
            let path = dir.join(format!("f{i:03}.bin"));
            std::fs::write(&path, wecom_material_benches::sample_bytes(len + i)).unwrap();
            path
        })
        .collect()
}

/// A loop of `curl -F`, one process per file, as a shell loop does.
fn curl_uploads(base: &str, token: &str, files: &[PathBuf]) -> f64 {
    let url = format!("{base}/cgi-bin/media/upload?access_token={token}&type=file");
    let start = Instant::now();
    for file in files {
        let form = format!("media=@{}", file.display());
        let out = Command::new("curl")
            .args(["-sS", "--fail", "-F", &form, &url])
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stdout.starts_with(b"{\"errcode\":0"),
            "curl -F failed"
        );
    }
    start.elapsed().as_secs_f64()
}

fn cli_uploads(cli_path: &Path, base: &str, files: &[PathBuf], jobs: usize, work: &Path) -> f64 {
    let mut cmd = cli(cli_path, base, work);
    cmd.args(["--quiet", "upload", "file", "--jobs", &jobs.to_string()])
        .args(files);
    timed(cmd).0
}
