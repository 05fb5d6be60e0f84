//! A small load generator for the emulator as a process: N clients (default 50), each on its
//! own keep-alive connection, upload a 100 KB file and get it back, in a loop, for D seconds
//! (default 20). It reports requests per second, the latency percentiles, the emulator's peak
//! RSS (`VmHWM` in `/proc/PID/status`), its RSS at the end, and its RSS after
//! `POST /__mock/reset`.
//!
//! ```sh
//! cargo build --release -p wecom-material-mock --features cli --bins --examples
//! target/release/examples/load                          # runs target/release/wecom-material-mock --json
//! target/release/examples/load --clients 50 --seconds 20 -- target/release/wecom-material mock --json --max-media-bytes 200000000
//! ```
//!
//! Everything after `--` is the emulator's command line; it must print the `--json` line
//! first (or, as emulators before `--json` did, its base URL, with the default credentials).
//! Linux only (it reads `/proc`).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

const BOUNDARY: &str = "loadgen7MA4YWxkTrZu0gW";

struct Options {
    clients: usize,
    seconds: u64,
    size: usize,
    command: Vec<String>,
}

fn options() -> Options {
    let mut o = Options {
        clients: 50,
        seconds: 20,
        size: 100_000,
        command: vec!["target/release/wecom-material-mock".into(), "--json".into()],
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match a.as_str() {
            "--clients" => o.clients = num("--clients") as usize,
            "--seconds" => o.seconds = num("--seconds"),
            "--size" => o.size = num("--size") as usize,
            "--" => {
                o.command = args.by_ref().collect();
                break;
            }
            other => panic!("unknown argument {other}; see the example's docs"),
        }
    }
    assert!(!o.command.is_empty(), "no emulator command after --");
    o
}

/// `VmHWM` and `VmRSS` of a process, in KiB.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn start(command: &[String]) -> (Child, SocketAddr, serde_json::Value) {
    let mut child = Command::new(&command[0])
        .args(&command[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("run {command:?}: {e} (build it first, see the docs)"));
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    // The `--json` line; an emulator from before `--json` printed its base URL first.
    let info: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| {
        let base = line.trim();
        let port = base
            .strip_prefix("http://127.0.0.1:")
            .unwrap_or_else(|| panic!("neither the --json line ({e}) nor a base URL: {line}"));
        serde_json::json!({
            "port": port.parse::<u16>().unwrap(),
            "corp_id": "ww-mock-corp",
            "secret": "mock-secret",
        })
    });
    let port = info["port"].as_u64().unwrap() as u16;
    (child, SocketAddr::from(([127, 0, 0, 1], port)), info)
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> Sender {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// One request on the connection: status and body.
async fn call(
    sender: &mut Sender,
    method: Method,
    target: &str,
    content_type: Option<&str>,
    body: Bytes,
) -> Result<(u16, Bytes), String> {
    sender.ready().await.map_err(|e| e.to_string())?;
    let mut req = Request::builder()
        .method(method)
        .uri(target)
        .header("host", "127.0.0.1");
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let req = req.body(Full::new(body)).map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, body))
}

fn form(size: usize) -> Bytes {
    let mut b = Vec::with_capacity(size + 256);
    b.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"media\"; filename=\"load.bin\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    b.extend((0..size).map(|i| (i % 251) as u8));
    b.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    Bytes::from(b)
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

async fn client(addr: SocketAddr, token: Arc<str>, body: Bytes, stop: Arc<AtomicBool>) -> Tally {
    let mut sender = connect(addr).await;
    let mut t = Tally::default();
    let upload_target = format!("/cgi-bin/media/upload?access_token={token}&type=file");
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    let expected_len = body.len() - 200; // at least the payload came back
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let up = call(
            &mut sender,
            Method::POST,
            &upload_target,
            Some(&content_type),
            body.clone(),
        )
        .await;
        t.latencies_us.push(started.elapsed().as_micros() as u64);
        let media_id = match up {
            Ok((200, answer)) => serde_json::from_slice::<serde_json::Value>(&answer)
                .ok()
                .and_then(|v| v["media_id"].as_str().map(str::to_owned)),
            Ok((status, answer)) => {
                t.first_error.get_or_insert(format!(
                    "upload: {status} {}",
                    String::from_utf8_lossy(&answer)
                ));
                None
            }
            Err(e) => {
                t.first_error.get_or_insert(format!("upload: {e}"));
                sender = connect(addr).await;
                None
            }
        };
        let Some(media_id) = media_id else {
            t.errors += 1;
            continue;
        };
        let started = Instant::now();
        let got = call(
            &mut sender,
            Method::GET,
            &format!(
                "/cgi-bin/media/get?access_token={token}&media_id={}",
                // Encoded, so that an emulator handing out `+ / =` ids is measured fairly too.
                percent_encoding::utf8_percent_encode(
                    &media_id,
                    percent_encoding::NON_ALPHANUMERIC
                )
            ),
            None,
            Bytes::new(),
        )
        .await;
        t.latencies_us.push(started.elapsed().as_micros() as u64);
        match got {
            Ok((200, b)) if b.len() >= expected_len => {}
            Ok((status, b)) => {
                t.errors += 1;
                t.first_error.get_or_insert(format!(
                    "get: {status} {}",
                    String::from_utf8_lossy(&b[..b.len().min(200)])
                ));
            }
            Err(e) => {
                t.errors += 1;
                t.first_error.get_or_insert(format!("get: {e}"));
                sender = connect(addr).await;
            }
        }
    }
    t
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn main() {
    let o = options();
    let (mut child, addr, info) = start(&o.command);
    let pid = child.id();
    let (_, rss_start) = memory(pid);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (tally, elapsed, rss_end, rss_reset, stats) = runtime.block_on(async {
        let mut admin = connect(addr).await;
        let corp = info["corp_id"].as_str().unwrap();
        let secret = info["secret"].as_str().unwrap();
        let (_, answer) = call(
            &mut admin,
            Method::GET,
            &format!("/cgi-bin/gettoken?corpid={corp}&corpsecret={secret}"),
            None,
            Bytes::new(),
        )
        .await
        .unwrap();
        let token: Arc<str> =
            serde_json::from_slice::<serde_json::Value>(&answer).unwrap()["access_token"]
                .as_str()
                .unwrap()
                .into();
        let body = form(o.size);
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let tasks: Vec<_> = (0..o.clients)
            .map(|_| tokio::spawn(client(addr, token.clone(), body.clone(), stop.clone())))
            .collect();
        tokio::time::sleep(Duration::from_secs(o.seconds)).await;
        stop.store(true, Ordering::Relaxed);
        let mut all = Tally::default();
        for task in tasks {
            let t = task.await.unwrap();
            all.latencies_us.extend(t.latencies_us);
            all.errors += t.errors;
            if all.first_error.is_none() {
                all.first_error = t.first_error;
            }
        }
        let elapsed = started.elapsed();
        let (_, rss_end) = memory(pid);
        let (_, stats) = call(&mut admin, Method::GET, "/__mock/stats", None, Bytes::new())
            .await
            .unwrap();
        call(
            &mut admin,
            Method::POST,
            "/__mock/reset",
            None,
            Bytes::new(),
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (_, rss_reset) = memory(pid);
        // A test suite goes on after a reset: a light request every 100 ms for 5 s.
        for _ in 0..50 {
            let _ = call(&mut admin, Method::GET, "/__mock/stats", None, Bytes::new()).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (_, rss_later) = memory(pid);
        (all, elapsed, rss_end, (rss_reset, rss_later), stats)
    });
    let (peak, _) = memory(pid);
    let _ = child.kill();
    let _ = child.wait();
    let mut lat = tally.latencies_us;
    lat.sort_unstable();
    let n = lat.len();
    let stats: serde_json::Value = serde_json::from_slice(&stats).unwrap_or_default();
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!("emulator: {}", o.command.join(" "));
    println!(
        "{} clients, {} s, upload {} B + get, each on its own keep-alive connection",
        o.clients, o.seconds, o.size
    );
    println!(
        "requests: {n} in {:.1} s = {:.0} req/s; errors: {}{}",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        tally.errors,
        tally
            .first_error
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
    println!(
        "latency ms: p50 {:.1}, p99 {:.1}, max {:.1}",
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0)
    );
    println!(
        "emulator RSS: start {:.1} MiB, peak (VmHWM) {:.1} MiB, end {:.1} MiB; after POST /__mock/reset: {:.1} MiB 1 s later, {:.1} MiB after 5 s more of light requests",
        mib(rss_start),
        mib(peak),
        mib(rss_end),
        mib(rss_reset.0),
        mib(rss_reset.1)
    );
    println!(
        "emulator store at the end: {} media, {} bytes; evicted for the budget: {}",
        stats["media_count"], stats["media_bytes"], stats["evicted_budget"]
    );
}
