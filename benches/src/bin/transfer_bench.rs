//! Transfer benchmark: the blocking client against the emulator, next to `curl` against the
//! same emulator. Run from the workspace root:
//!
//! ```text
//! cargo run --release -p wecom-material-benches --bin transfer-bench
//! ```
//!
//! It measures, each as the median of several runs:
//! - uploading a 20,000,000-byte file (`upload_path`, streamed from disk) against
//!   `curl -F media=@FILE` (curl's own `time_total`, so its process start is not counted);
//! - downloading a 200,000,000-byte media in 20 MB Range chunks into a sink: throughput, and the
//!   client process's peak RSS (`VmHWM`), against curl fetching the same ranges.
//!
//! The emulator runs in a child process (`transfer-bench serve`), so the client's peak RSS
//! does not include the media the emulator holds; the download runs in another child
//! (`transfer-bench download`) so its RSS is its own.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wecom_material_core::{MediaId, MediaType};
use wecom_material_mock::{MockConfig, MockServer};
use wecom_material_ureq::{Client, Transfer};

const CORP: &str = "ww-mock-corp";
const SECRET: &str = "mock-secret";
const UPLOAD_BYTES: usize = 20_000_000;
const DOWNLOAD_BYTES: usize = 200_000_000;
const CHUNK: u64 = 20_000_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("serve") => serve(),
        Some("download") => download_child(&args[2], &args[3]),
        Some("upload") => upload_child(&args[2], Path::new(&args[3]), args[4].parse().unwrap()),
        None => orchestrate(args.get(2).and_then(|n| n.parse().ok()).unwrap_or(5)),
        Some(other) => panic!("unknown mode {other}"),
    }
}

/// Child: an emulator holding one 200 MB media; prints `BASE MEDIA_ID TOKEN` and serves until
/// its stdin closes.
fn serve() {
    let mock = MockServer::start(MockConfig::default());
    let media = wecom_material_benches::sample_bytes(DOWNLOAD_BYTES);
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

fn client(base: &str) -> Client {
    Client::builder(CORP, SECRET)
        .base_url(base)
        .unwrap()
        .build()
}

/// Child: downloads the media into a sink; prints `SECONDS PEAK_RSS_KIB`.
fn download_child(base: &str, media_id: &str) {
    let client = client(base);
    let id = MediaId::new(media_id);
    let start = Instant::now();
    let done = client
        .download(&id, &mut std::io::sink(), Transfer::default())
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(done.total, DOWNLOAD_BYTES as u64);
    println!(
        "{secs} {}",
        wecom_material_benches::peak_rss_kib().unwrap_or(0)
    );
}

/// Child: uploads the file `runs` times; prints one line of seconds per run.
fn upload_child(base: &str, path: &Path, runs: usize) {
    let client = client(base);
    // The first call fetches the token; time uploads only.
    client
        .upload_bytes(
            MediaType::File,
            "warm.txt",
            bytes::Bytes::from_static(b"warm-up"),
        )
        .unwrap();
    for _ in 0..runs {
        let start = Instant::now();
        client
            .upload_path(
                MediaType::File,
                path,
                Some("bench.bin"),
                Transfer::default(),
            )
            .unwrap();
        println!("{}", start.elapsed().as_secs_f64());
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn curl_seconds(args: &[&str]) -> f64 {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{time_total}"])
        .args(args)
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "curl failed");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn orchestrate(runs: usize) {
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
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (base, media_id, token) = (fields[0], fields[1], fields[2]);
    let has_curl = Command::new("curl").arg("--version").output().is_ok();

    // Upload: 20,000,000 bytes from a file.
    let file: PathBuf =
        std::env::temp_dir().join(format!("wecom-bench-{}.bin", std::process::id()));
    std::fs::write(&file, wecom_material_benches::sample_bytes(UPLOAD_BYTES)).unwrap();
    let out = Command::new(&me)
        .args(["upload", base, file.to_str().unwrap(), &runs.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "upload child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours = median(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.parse().unwrap())
            .collect(),
    );
    println!(
        "upload 20,000,000 B   wecom-material (ureq): {:.3} s median of {runs}",
        ours
    );
    if has_curl {
        let url = format!("{base}/cgi-bin/media/upload?access_token={token}&type=file");
        let form = format!("media=@{};filename=bench.bin", file.display());
        let curl = median(
            (0..runs)
                .map(|_| curl_seconds(&["-F", &form, &url]))
                .collect(),
        );
        println!(
            "upload 20,000,000 B   curl -F:                {:.3} s median of {runs}  (ratio {:.2}x)",
            curl,
            ours / curl
        );
    }
    let _ = std::fs::remove_file(&file);

    // Download: 200,000,000 bytes in 20 MB ranges, peak RSS of the client process.
    let mut secs = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..runs {
        let out = Command::new(&me)
            .args(["download", base, media_id])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "download child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let mut it = text.split_whitespace();
        secs.push(it.next().unwrap().parse::<f64>().unwrap());
        rss.push(it.next().unwrap().parse::<f64>().unwrap());
    }
    let ours = median(secs);
    let mb = DOWNLOAD_BYTES as f64 / 1e6;
    println!(
        "download 200,000,000 B wecom-material (ureq): {:.3} s, {:.0} MB/s, peak RSS {:.1} MiB (median of {runs})",
        ours,
        mb / ours,
        median(rss) / 1024.0
    );
    if has_curl {
        let url = format!("{base}/cgi-bin/media/get?access_token={token}&media_id={media_id}");
        let curl = median(
            (0..runs)
                .map(|_| {
                    (0..DOWNLOAD_BYTES as u64 / CHUNK)
                        .map(|i| {
                            curl_seconds(&[
                                "-r",
                                &format!("{}-{}", i * CHUNK, (i + 1) * CHUNK - 1),
                                &url,
                            ])
                        })
                        .sum::<f64>()
                })
                .collect(),
        );
        println!(
            "download 200,000,000 B curl -r (10 ranges):    {:.3} s, {:.0} MB/s  (ratio {:.2}x)",
            curl,
            mb / curl,
            ours / curl
        );
    }
    drop(server.stdin.take());
    let _ = server.wait_timeout();
}

trait WaitTimeout {
    fn wait_timeout(&mut self) -> std::io::Result<()>;
}

impl WaitTimeout for std::process::Child {
    /// Waits briefly for the server child to leave after its stdin closed, then kills it.
    fn wait_timeout(&mut self) -> std::io::Result<()> {
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if self.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill()
    }
}
