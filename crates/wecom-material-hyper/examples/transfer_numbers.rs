//! Measures the async client against the emulator (run with `--release`):
//!
//! ```text
//! cargo run --release -p wecom-material-hyper --example transfer_numbers
//! ```
//!
//! The emulator runs in a child process (this program with the argument `serve`), so the
//! peak RSS printed for the client is the client's alone. Prints the wall time of uploading a
//! 20,000,000-byte file (and of `curl -F` doing the same, when curl is on PATH), and the
//! throughput and peak RSS of downloading a 200,000,000-byte media to a file.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use wecom_material_hyper::core::{MediaId, MediaType};
use wecom_material_hyper::{Client, Transfer};
use wecom_material_mock::{MockConfig, MockServer};

const CORP: &str = "ww-mock-corp";
const SECRET: &str = "mock-secret";
const UPLOAD: usize = 20_000_000;
const DOWNLOAD: usize = 200_000_000;

fn main() {
    if std::env::args().nth(1).as_deref() == Some("serve") {
        serve();
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("serve")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = lines.next().unwrap().unwrap();
    let media_id = lines.next().unwrap().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(measure(&base, &media_id));
    child.kill().ok();
    child.wait().ok();
}

/// The emulator's side: a 200,000,000-byte media, then wait to be killed.
fn serve() {
    let mock = MockServer::start(MockConfig::default());
    let bytes: Vec<u8> = (0..DOWNLOAD as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let id = mock.insert_media(bytes, "application/octet-stream", "big.bin");
    println!("{}\n{id}", mock.base_url());
    std::thread::park();
}

async fn measure(base: &str, media_id: &str) {
    let client = Client::builder(CORP, SECRET)
        .base_url(base)
        .unwrap()
        .build();
    let dir = std::env::temp_dir().join(format!("wecom-hyper-numbers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let upload = dir.join("upload.bin");
    // Written in pieces, so that the peak RSS below is the client's, not this buffer's.
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&upload).unwrap();
        for _ in 0..UPLOAD / 1_000_000 {
            f.write_all(&[0x5Au8; 1_000_000]).unwrap();
        }
    }

    // Warm up: the token and a pooled connection.
    client
        .upload_bytes(MediaType::File, "warm.txt", vec![1u8; 64].into())
        .await
        .unwrap();
    let mut best = f64::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        client
            .upload_path(MediaType::File, &upload, None, Transfer::default())
            .await
            .unwrap();
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!("upload {UPLOAD} B file (hyper, best of 3): {:.3} s", best);
    if let Some(curl) = curl_upload(base, &client, &upload) {
        println!(
            "upload {UPLOAD} B file (curl -F, best of 3): {:.3} s  → hyper/curl = {:.2}",
            curl,
            best / curl
        );
    }

    let out = dir.join("download.bin");
    let mut file = tokio::fs::File::create(&out).await.unwrap();
    let start = Instant::now();
    let done = client
        .download(&MediaId::new(media_id), &mut file, Transfer::default())
        .await
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(done.total, DOWNLOAD as u64);
    println!(
        "download {DOWNLOAD} B to a file: {:.3} s, {:.0} MB/s",
        secs,
        DOWNLOAD as f64 / secs / 1e6
    );
    if let Some(curl) = curl_download(base, &client, media_id, &dir.join("curl.bin")) {
        println!(
            "download {DOWNLOAD} B (curl, 10 Range requests of 20 MB): {:.3} s, {:.0} MB/s",
            curl,
            DOWNLOAD as f64 / curl / 1e6
        );
    }
    println!("client peak RSS (VmHWM): {}", peak_rss());
    std::fs::remove_dir_all(&dir).ok();
}

fn token(client: &Client) -> String {
    client.export_token().unwrap().access_token
}

fn curl_upload(base: &str, client: &Client, path: &Path) -> Option<f64> {
    let url = format!(
        "{base}/cgi-bin/media/upload?access_token={}&type=file",
        token(client)
    );
    let mut best = f64::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let status = Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-F"])
            .arg(format!("media=@{};filename=upload.bin", path.display()))
            .arg(&url)
            .status()
            .ok()?;
        if !status.success() {
            return None;
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    Some(best)
}

fn curl_download(base: &str, client: &Client, media_id: &str, out: &Path) -> Option<f64> {
    let url = format!(
        "{base}/cgi-bin/media/get?access_token={}&media_id={media_id}",
        token(client)
    );
    let start = Instant::now();
    // Ten Range requests of 20 MB, appended to one file.
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "for r in $(seq 0 9); do s=$((r*20000000)); e=$((s+19999999)); curl -sS -r $s-$e '{url}' || exit 1; done > '{}'",
            out.display()
        ))
        .status()
        .ok()?;
    status.success().then(|| start.elapsed().as_secs_f64())
}

fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(|l| l.trim_start_matches("VmHWM:").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}
