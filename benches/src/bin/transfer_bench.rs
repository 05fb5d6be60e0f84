//! Transfer benchmark: both clients (ureq and hyper) against the emulator, next to `curl`
//! against the same emulator. Run from the workspace root:
//!
//! ```text
//! cargo run --release -p wecom-material-benches --bin transfer-bench [RUNS]
//! ```
//!
//! It measures, each as the median of RUNS runs (default 5):
//! - uploading a 20,000,000-byte file (`upload(Upload::path(..))`, streamed from disk) against
//!   `curl -F media=@FILE` (curl's own `time_total`, so its process start is not counted);
//! - downloading a 200,000,000-byte media in 20 MB Range chunks into a sink: throughput, and the
//!   client process's peak RSS (`VmHWM`), against curl fetching the same ranges.
//!
//! The emulator runs in a child process (`transfer-bench serve`), so a client's peak RSS does
//! not include the media the emulator holds; every measurement runs in a child of its own
//! (`transfer-bench upload|download ureq|hyper …`) so its RSS is its own.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wecom_material_core::task::Upload;
use wecom_material_core::{DownloadOptions, MediaId, MediaType, Transfer};
use wecom_material_mock::{MockConfig, MockServer};

const CORP: &str = "ww-mock-corp";
const SECRET: &str = "mock-secret";
const UPLOAD_BYTES: usize = 20_000_000;
const DOWNLOAD_BYTES: usize = 200_000_000;
const CHUNK: u64 = 20_000_000;

/// Which client a child process measures.
#[derive(Clone, Copy)]
enum Which {
    Ureq,
    Hyper,
}

impl Which {
    const ALL: [Which; 2] = [Which::Ureq, Which::Hyper];

    fn parse(s: &str) -> Self {
        match s {
            "ureq" => Which::Ureq,
            "hyper" => Which::Hyper,
            other => panic!("unknown client {other}"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Which::Ureq => "ureq",
            Which::Hyper => "hyper",
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("serve") => serve(),
        Some("download") => download_child(Which::parse(&args[2]), &args[3], &args[4]),
        Some("upload") => upload_child(
            Which::parse(&args[2]),
            &args[3],
            Path::new(&args[4]),
            args[5].parse().unwrap(),
        ),
        Some(runs) => orchestrate(runs.parse().expect("RUNS is a number")),
        None => orchestrate(5),
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

fn ureq_client(base: &str) -> wecom_material_ureq::Client {
    wecom_material_ureq::Client::builder(CORP, SECRET)
        .base_url(base)
        .unwrap()
        .build()
}

fn hyper_client(base: &str) -> wecom_material_hyper::Client {
    wecom_material_hyper::Client::builder(CORP, SECRET)
        .base_url(base)
        .unwrap()
        .build()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Child: downloads the media into a sink; prints `SECONDS PEAK_RSS_KIB`.
fn download_child(which: Which, base: &str, media_id: &str) {
    let id = MediaId::new(media_id);
    let start = Instant::now();
    let total = match which {
        Which::Ureq => {
            let transfer = wecom_material_ureq::Transfer::default();
            ureq_client(base)
                .download(
                    &id,
                    &mut std::io::sink(),
                    DownloadOptions::default(),
                    transfer,
                )
                .unwrap()
                .total
        }
        Which::Hyper => runtime().block_on(async {
            let transfer = wecom_material_hyper::Transfer::default();
            let client = hyper_client(base);
            client
                .download(
                    &id,
                    &mut tokio::io::sink(),
                    DownloadOptions::default(),
                    transfer,
                )
                .await
                .unwrap()
                .total
        }),
    };
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(total, DOWNLOAD_BYTES as u64);
    println!(
        "{secs} {}",
        wecom_material_benches::peak_rss_kib().unwrap_or(0)
    );
}

/// Child: uploads the file `runs` times; prints one line of seconds per run. The first call
/// fetches the token and is not timed.
fn upload_child(which: Which, base: &str, path: &Path, runs: usize) {
    let warm = bytes::Bytes::from_static(b"warm-up");
    match which {
        Which::Ureq => {
            let client = ureq_client(base);
            client
                .upload(
                    MediaType::File,
                    Upload::bytes("warm.txt", warm),
                    Transfer::default(),
                )
                .unwrap();
            for _ in 0..runs {
                let start = Instant::now();
                let transfer = wecom_material_ureq::Transfer::default();
                client
                    .upload(
                        MediaType::File,
                        Upload::path(path).named("bench.bin"),
                        transfer,
                    )
                    .unwrap();
                println!("{}", start.elapsed().as_secs_f64());
            }
        }
        Which::Hyper => runtime().block_on(async {
            let client = hyper_client(base);
            client
                .upload(
                    MediaType::File,
                    Upload::bytes("warm.txt", warm),
                    Transfer::default(),
                )
                .await
                .unwrap();
            for _ in 0..runs {
                let start = Instant::now();
                let transfer = wecom_material_hyper::Transfer::default();
                let upload = client.upload(
                    MediaType::File,
                    Upload::path(path).named("bench.bin"),
                    transfer,
                );
                upload.await.unwrap();
                println!("{}", start.elapsed().as_secs_f64());
            }
        }),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn child_output(me: &Path, args: &[&str]) -> String {
    let out = Command::new(me).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
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
    let path = file.to_str().unwrap();
    // Interleaved, one upload per child and per curl run, so that every client meets the
    // emulator in the same state (it keeps every upload in memory).
    let url = format!("{base}/cgi-bin/media/upload?access_token={token}&type=file");
    let form = format!("media=@{path};filename=bench.bin");
    let mut upload_secs: [Vec<f64>; 3] = Default::default();
    for _ in 0..runs {
        for (i, which) in Which::ALL.into_iter().enumerate() {
            let out = child_output(&me, &["upload", which.name(), base, path, "1"]);
            upload_secs[i].push(out.trim().parse().unwrap());
        }
        if has_curl {
            upload_secs[2].push(curl_seconds(&["-F", &form, &url]));
        }
    }
    let [ureq_secs, hyper_secs, curl_secs] =
        upload_secs.map(|v| if v.is_empty() { f64::NAN } else { median(v) });
    for (which, secs) in [(Which::Ureq, ureq_secs), (Which::Hyper, hyper_secs)] {
        let ratio = if has_curl {
            format!(" ({:.2}x curl)", secs / curl_secs)
        } else {
            String::new()
        };
        println!(
            "upload 20,000,000 B    wecom-material ({:5}): {secs:.3} s{ratio}",
            which.name()
        );
    }
    if has_curl {
        println!("upload 20,000,000 B    curl -F:                {curl_secs:.3} s");
    }
    let _ = std::fs::remove_file(&file);

    // Download: 200,000,000 bytes in 20 MB ranges, peak RSS of the client process.
    let mb = DOWNLOAD_BYTES as f64 / 1e6;
    for which in Which::ALL {
        let (mut secs, mut rss) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let out = child_output(&me, &["download", which.name(), base, media_id]);
            let mut it = out.split_whitespace();
            secs.push(it.next().unwrap().parse::<f64>().unwrap());
            rss.push(it.next().unwrap().parse::<f64>().unwrap());
        }
        let secs = median(secs);
        println!(
            "download 200,000,000 B wecom-material ({:5}): {secs:.3} s, {:.0} MB/s, peak RSS {:.1} MiB",
            which.name(),
            mb / secs,
            median(rss) / 1024.0
        );
    }
    if has_curl {
        // Media ids may contain `+ / =` (the emulator draws such ids): percent-encode them.
        let id = media_id
            .replace('%', "%25")
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        let url = format!("{base}/cgi-bin/media/get?access_token={token}&media_id={id}");
        let ranged_fetch = || {
            (0..DOWNLOAD_BYTES as u64 / CHUNK)
                .map(|i| {
                    curl_seconds(&[
                        "-r",
                        &format!("{}-{}", i * CHUNK, (i + 1) * CHUNK - 1),
                        &url,
                    ])
                })
                .sum::<f64>()
        };
        let secs = median((0..runs).map(|_| ranged_fetch()).collect());
        println!(
            "download 200,000,000 B curl -r (10 ranges):    {secs:.3} s, {:.0} MB/s",
            mb / secs
        );
    }
    println!("(medians of {runs} runs)");
    drop(server.stdin.take());
    let _ = stop(&mut server);
}

/// Waits briefly for the server child to leave after its stdin closed, then kills it.
fn stop(child: &mut std::process::Child) -> std::io::Result<()> {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill()
}
