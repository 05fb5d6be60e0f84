//! `wecom-material mock`: the built binary as a process, driven over HTTP as a client in
//! another language would (credentials, the printed settings, `-v`, loopback only, latency,
//! bandwidth, the 45033 setting, the id alphabet, `--json`, several apps, the settings flags,
//! the byte budget's note).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_wecom-material");

/// A running `mock` process, killed on drop.
struct Mock {
    child: Child,
    /// The first stdout line.
    base: String,
    /// `host:port`.
    addr: String,
    /// The `export` lines.
    exports: Vec<String>,
    stderr: Receiver<String>,
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for var in [
        "WECOM_CORP_ID",
        "WECOM_SECRET",
        "WECOM_BASE_URL",
        "WECOM_TOKEN_CACHE",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn start(args: &[&str], env: &[(&str, &str)]) -> Mock {
    let mut child = command(args, env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the binary");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..4 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        lines.push(line.trim_end().to_owned());
    }
    let err = child.stderr.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let base = lines[0].clone();
    let addr = base.strip_prefix("http://").expect("a base URL").to_owned();
    Mock {
        child,
        base,
        addr,
        exports: lines[1..].to_vec(),
        stderr: rx,
    }
}

struct Resp {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// One HTTP/1.1 request with `Connection: close`.
fn http(addr: &str, method: &str, target: &str, extra: &str, body: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n{extra}\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let headers = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = headers[9..12].parse().unwrap();
    Resp {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

fn gettoken(m: &Mock, corp: &str, secret: &str) -> Resp {
    http(
        &m.addr,
        "GET",
        &format!("/cgi-bin/gettoken?corpid={corp}&corpsecret={secret}"),
        "",
        b"",
    )
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn first_line_is_the_base_url_then_export_lines_with_the_defaults() {
    let m = start(&["mock"], &[]);
    assert!(m.base.starts_with("http://127.0.0.1:"), "{}", m.base);
    assert_eq!(
        m.exports,
        [
            format!("export WECOM_BASE_URL={}", m.base),
            "export WECOM_CORP_ID=ww-mock-corp".to_owned(),
            "export WECOM_SECRET=mock-secret".to_owned(),
        ]
    );
    assert_eq!(
        gettoken(&m, "ww-mock-corp", "mock-secret").json()["errcode"],
        0
    );
}

#[test]
fn credentials_mock_options_then_global_options_then_environment() {
    let env = [
        ("WECOM_CORP_ID", "env-corp"),
        ("WECOM_SECRET", "env secret"),
    ];
    let m = start(&["mock"], &env);
    assert_eq!(m.exports[1], "export WECOM_CORP_ID=env-corp");
    assert_eq!(m.exports[2], "export WECOM_SECRET='env secret'");
    assert_eq!(
        gettoken(&m, "env-corp", "env%20secret").json()["errcode"],
        0
    );
    drop(m);

    let m = start(
        &["--corp-id", "global-corp", "--secret", "global-s", "mock"],
        &env,
    );
    assert_eq!(m.exports[1], "export WECOM_CORP_ID=global-corp");
    assert_eq!(m.exports[2], "export WECOM_SECRET=global-s");
    assert_eq!(gettoken(&m, "global-corp", "global-s").json()["errcode"], 0);
    assert_eq!(
        gettoken(&m, "env-corp", "env%20secret").json()["errcode"],
        40013
    );
    drop(m);

    let m = start(
        &[
            "--corp-id",
            "global-corp",
            "--secret",
            "global-s",
            "mock",
            "--corp-id",
            "own-corp",
            "--secret",
            "own-s",
        ],
        &env,
    );
    assert_eq!(m.exports[1], "export WECOM_CORP_ID=own-corp");
    assert_eq!(m.exports[2], "export WECOM_SECRET=own-s");
    assert_eq!(gettoken(&m, "own-corp", "own-s").json()["errcode"], 0);
    drop(m);

    // Each value on its own: the mock's corp id, the environment's secret.
    let m = start(&["mock", "--corp-id", "own-corp"], &env);
    assert_eq!(m.exports[1], "export WECOM_CORP_ID=own-corp");
    assert_eq!(m.exports[2], "export WECOM_SECRET='env secret'");
}

#[test]
fn verbose_logs_one_masked_line_per_request() {
    let m = start(&["-v", "mock"], &[]);
    let token = gettoken(&m, "ww-mock-corp", "mock-secret").json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let up = http(
        &m.addr,
        "POST",
        "/__mock/media?filename=a.bin",
        "",
        &[9u8; 3000],
    );
    let id = up.json()["media_id"].as_str().unwrap().to_owned();
    let r = http(
        &m.addr,
        "GET",
        &format!(
            "/cgi-bin/media/get?access_token={token}&media_id={}",
            enc(&id)
        ),
        "Range: bytes=0-99\r\n",
        b"",
    );
    assert_eq!(r.status, 206);
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    // Each line is written before its answer is sent: after the two answers, both are on
    // their way; a third (an admin call logged by mistake) would be too.
    while lines.len() < 2 && Instant::now() < deadline {
        if let Ok(line) = m.stderr.recv_timeout(Duration::from_millis(200))
            && line.starts_with("mock: ")
        {
            lines.push(line);
        }
    }
    while let Ok(line) = m.stderr.recv_timeout(Duration::from_millis(300)) {
        if line.starts_with("mock: ") {
            lines.push(line);
        }
    }
    assert_eq!(lines.len(), 2, "one line per API request: {lines:?}");
    assert!(
        lines[0].starts_with(
            "mock: GET /cgi-bin/gettoken?corpid=ww-mock-corp&corpsecret=*** 200 errcode=0 req=0 resp="
        ),
        "{}",
        lines[0]
    );
    assert!(lines[0].ends_with(" range=-"), "{}", lines[0]);
    assert_eq!(
        lines[1],
        format!(
            "mock: GET /cgi-bin/media/get?access_token=***&media_id={} 206 errcode=- req=0 resp=100 range=bytes=0-99",
            enc(&id)
        )
    );
    for line in &lines {
        assert!(!line.contains(&token) && !line.contains("mock-secret"));
    }
}

#[test]
fn a_non_loopback_listen_address_needs_allow_remote() {
    let out = command(&["mock", "--listen", "0.0.0.0:0"], &[])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--allow-remote"), "{err}");
    assert!(out.stdout.is_empty());

    let m = start(&["mock", "--listen", "0.0.0.0:0", "--allow-remote"], &[]);
    let port = m.addr.rsplit(':').next().unwrap();
    let r = http(
        &format!("127.0.0.1:{port}"),
        "GET",
        "/cgi-bin/gettoken?corpid=ww-mock-corp&corpsecret=mock-secret",
        "",
        b"",
    );
    assert_eq!(r.json()["errcode"], 0);
}

#[test]
fn latency_bandwidth_and_concurrency_settings() {
    let m = start(
        &[
            "mock",
            "--latency-ms",
            "200",
            "--bandwidth",
            "1000000",
            "--max-concurrent-per-media",
            "2",
        ],
        &[],
    );
    let settings = http(&m.addr, "GET", "/__mock/settings", "", b"").json();
    assert_eq!(
        (
            &settings["latency_ms"],
            &settings["bandwidth"],
            &settings["max_concurrent_per_media"]
        ),
        (&200.into(), &1_000_000.into(), &2.into()),
        "{settings}"
    );
    let started = Instant::now();
    assert_eq!(gettoken(&m, "ww-mock-corp", "mock-secret").status, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
    // 300 KB at 1 MB/s takes at least 0.3 s (the lower bound only: never a speed check).
    let token = gettoken(&m, "ww-mock-corp", "mock-secret").json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = http(
        &m.addr,
        "POST",
        "/__mock/media?filename=a.bin",
        "",
        &[1u8; 300_000],
    )
    .json()["media_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let started = Instant::now();
    let r = http(
        &m.addr,
        "GET",
        &format!(
            "/cgi-bin/media/get?access_token={token}&media_id={}",
            enc(&id)
        ),
        "",
        b"",
    );
    assert_eq!(r.body.len(), 300_000);
    assert!(started.elapsed() >= Duration::from_millis(300 + 200 - 50));
    assert!(
        r.headers.contains("content-length: 300000"),
        "{}",
        r.headers
    );

    let bad = command(&["mock", "--bandwidth", "0"], &[])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

fn add_media(addr: &str, query: &str, body: &[u8]) -> String {
    let r = http(addr, "POST", &format!("/__mock/media?{query}"), "", body);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["media_id"].as_str().unwrap().to_owned()
}

fn is_wecom_alphabet(id: &str) -> bool {
    id.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[test]
fn ids_use_wecoms_alphabet_unless_strict_ids_and_safe_ids_is_a_no_op() {
    for args in [&["mock"][..], &["mock", "--safe-ids"][..]] {
        let m = start(args, &[]);
        for _ in 0..8 {
            let id = add_media(&m.addr, "filename=a.bin", b"123456");
            assert!(is_wecom_alphabet(&id), "{args:?}: {id}");
        }
    }
    let m = start(&["mock", "--strict-ids"], &[]);
    let ids: Vec<String> = (0..2)
        .map(|_| add_media(&m.addr, "filename=a.bin", b"123456"))
        .collect();
    assert!(
        ids.iter()
            .any(|id| id.contains('+') && id.contains('/') && id.contains('=')),
        "{ids:?}"
    );
}

/// Starts `mock --json …` and reads its one stdout line.
fn start_json(args: &[&str]) -> (Child, serde_json::Value, Receiver<String>) {
    let mut child = command(&[&["mock", "--json"], args].concat(), &[])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the binary");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Nothing else comes on stdout.
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = out.read_to_string(&mut rest);
        assert!(rest.is_empty(), "more stdout after the JSON line: {rest}");
    });
    let info: serde_json::Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("the first line is not JSON ({e}): {line}"));
    (child, info, rx)
}

#[test]
fn json_prints_one_line_with_everything_a_harness_needs_once_bound() {
    let (mut child, info, _err) = start_json(&["--corp-id", "ww-j", "--secret", "sj"]);
    let base = info["base_url"].as_str().unwrap().to_owned();
    let port = info["port"].as_u64().unwrap();
    assert_eq!(base, format!("http://127.0.0.1:{port}"));
    assert_eq!(info["corp_id"], "ww-j");
    assert_eq!(info["secret"], "sj");
    assert_eq!(
        info["apps"],
        serde_json::json!([{"corp_id": "ww-j", "secret": "sj"}])
    );
    assert_eq!(info["pid"].as_u64().unwrap(), u64::from(child.id()));
    assert_eq!(info["admin_url"], format!("{base}/__mock"));
    // Bound already: the first request succeeds without a retry.
    let addr = base.strip_prefix("http://").unwrap();
    let r = http(addr, "GET", "/__mock/stats", "", b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["gettoken"], 0);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn several_apps_get_their_own_tokens_and_share_media_within_a_corp() {
    let (mut child, info, _err) = start_json(&[
        "--corp-id",
        "ww-a",
        "--secret",
        "s1",
        "--app",
        "ww-a:s2",
        "--app",
        "ww-b:s3",
    ]);
    assert_eq!(info["apps"].as_array().unwrap().len(), 3);
    let addr = info["base_url"]
        .as_str()
        .unwrap()
        .strip_prefix("http://")
        .unwrap()
        .to_owned();
    let token = |corp: &str, secret: &str| {
        let r = http(
            &addr,
            "GET",
            &format!("/cgi-bin/gettoken?corpid={corp}&corpsecret={secret}"),
            "",
            b"",
        );
        r.json()["access_token"].as_str().unwrap().to_owned()
    };
    let (t1, t2, t3) = (
        token("ww-a", "s1"),
        token("ww-a", "s2"),
        token("ww-b", "s3"),
    );
    assert!(t1 != t2 && t2 != t3);
    let wrong = http(
        &addr,
        "GET",
        "/cgi-bin/gettoken?corpid=ww-b&corpsecret=s1",
        "",
        b"",
    );
    assert_eq!(wrong.json()["errcode"], 40001);
    // Uploaded with app 1 of corp a: app 2 of corp a gets it, corp b does not.
    let boundary = "b0undary";
    let form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"media\"; filename=\"a.txt\"\r\n\
         Content-Type: text/plain\r\n\r\nshared bytes\r\n--{boundary}--\r\n"
    );
    let up = http(
        &addr,
        "POST",
        &format!("/cgi-bin/media/upload?access_token={}&type=file", enc(&t1)),
        &format!("Content-Type: multipart/form-data; boundary={boundary}\r\n"),
        form.as_bytes(),
    );
    let id = up.json()["media_id"].as_str().unwrap().to_owned();
    let get = |t: &str| {
        http(
            &addr,
            "GET",
            &format!("/cgi-bin/media/get?access_token={}&media_id={id}", enc(t)),
            "",
            b"",
        )
    };
    assert_eq!(get(&t2).body, b"shared bytes");
    assert_eq!(get(&t3).json()["errcode"], 40007);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn flags_set_the_rules_the_admin_api_shows() {
    let (mut child, info, _err) = start_json(&[
        "--upload-img-quota",
        "7",
        "--max-file-bytes",
        "4096",
        "--request-log",
        "3",
        "--max-media-bytes",
        "1000000",
        "--strict-ids",
    ]);
    let addr = info["base_url"]
        .as_str()
        .unwrap()
        .strip_prefix("http://")
        .unwrap()
        .to_owned();
    let s = http(&addr, "GET", "/__mock/settings", "", b"").json();
    assert_eq!(s["upload_img_daily_quota"], 7);
    assert_eq!(s["limits"]["file"], 4096);
    assert_eq!(s["request_log_capacity"], 3);
    assert_eq!(s["max_media_bytes"], 1_000_000);
    assert_eq!(s["strict_ids"], true);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn the_byte_budget_evicts_the_oldest_media_with_a_note_on_stderr() {
    let (mut child, info, err) = start_json(&["--max-media-bytes", "250"]);
    let addr = info["base_url"]
        .as_str()
        .unwrap()
        .strip_prefix("http://")
        .unwrap()
        .to_owned();
    let first = add_media(&addr, "filename=a.bin", &[1u8; 100]);
    let second = add_media(&addr, "filename=b.bin", &[2u8; 100]);
    let third = add_media(&addr, "filename=c.bin", &[3u8; 100]);
    let stats = http(&addr, "GET", "/__mock/stats", "", b"").json();
    assert_eq!(stats["media_count"], 2);
    assert_eq!(stats["media_bytes"], 200);
    assert_eq!(stats["evicted_budget"], 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    let note = loop {
        let line = err
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("a note on stderr");
        if line.contains("note:") {
            break line;
        }
    };
    assert!(
        note.contains(&first) && note.contains("max_media_bytes"),
        "{note}"
    );
    assert!(!note.contains(&second) && !note.contains(&third), "{note}");
    let _ = child.kill();
    let _ = child.wait();
}
