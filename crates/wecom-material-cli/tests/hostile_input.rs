//! Issue 19 at the command line: a scripted hostile server on 127.0.0.1 answers what it
//! likes, and the command must end with a clear, typed error — no panic, no unbounded body,
//! no secret echoed, nothing raw on the terminal, no token lost to an interrupt.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{BIN, Run};

/// One request as the scripted server saw it.
#[derive(Debug, Clone, Default)]
struct Seen {
    line: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `bytes=a-b` of a Range request.
    fn range(&self) -> Option<(u64, u64)> {
        let spec = self.header("range")?.strip_prefix("bytes=")?;
        let (a, b) = spec.split_once('-')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    }
}

type Handler = dyn Fn(&Seen, &mut TcpStream) + Send + Sync;

/// A server on 127.0.0.1 that reads each request's head (and its body, by Content-Length)
/// and lets `answer` write anything back, one thread per connection. Returns the base URL
/// and the requests seen.
fn scripted(
    answer: impl Fn(&Seen, &mut TcpStream) + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let answer: Arc<Handler> = Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let (log, answer) = (log.clone(), answer.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = Seen::default();
                if reader.read_line(&mut request.line).unwrap_or(0) == 0 {
                    return;
                }
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = line.trim_end().split_once(':') {
                        request
                            .headers
                            .push((k.trim().to_owned(), v.trim().to_owned()));
                    }
                }
                let len: u64 = request
                    .header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let _ = std::io::copy(&mut reader.by_ref().take(len), &mut std::io::sink());
                log.lock().unwrap().push(request.clone());
                answer(&request, &mut stream);
            });
        }
    });
    (base, seen)
}

const TOKEN: &str = "TOKEN-hostile-4f9a8b7c6d5e";
const SECRET: &str = "SECRET-hostile-1a2b3c4d5e6f";

fn gettoken(stream: &mut TcpStream, expires_in: &str) {
    let body = format!(
        r#"{{"errcode":0,"errmsg":"ok","access_token":"{TOKEN}","expires_in":{expires_in}}}"#
    );
    respond(stream, "200 OK", "application/json", &body);
}

fn respond(stream: &mut TcpStream, status: &str, content_type: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// The command against `base`, in `dir`, with the secret in the environment.
fn command(base: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env("WECOM_SECRET", SECRET)
        .env_remove("WECOM_TOKEN_STORE")
        .args([
            "--base-url",
            base,
            "--corp-id",
            "ww-hostile",
            "--token-cache",
        ])
        .arg(dir.join("tokens.json"));
    cmd
}

fn run(cmd: &mut Command) -> Run {
    cmd.stdin(Stdio::null()).output().unwrap().into()
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "tokens.json")
        .collect();
    names.sort();
    names
}

/// Issue 19, panic 1: gettoken `expires_in` ≥ 2^63 panicked ("overflow when adding duration
/// to instant") with nothing on stdout under `--json`. Now a decode error, exit 1, the JSON
/// failure object printed, nothing cached.
#[test]
fn an_expires_in_near_2_pow_63_is_a_decode_error_not_a_panic() {
    for expires_in in [
        "9223372036854775807",
        "9223372036854775808",
        "1000000000000000000",
    ] {
        let (base, _) = scripted(move |req, s| {
            if req.line.contains("/cgi-bin/gettoken") {
                gettoken(s, expires_in);
            }
        });
        let dir = support::scratch("expires-in");
        let r = run(command(&base, &dir).args(["--json", "get", "m1", "--output", "out.bin"]));
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
        assert!(
            r.stderr.contains("above the ceiling of 86400 s"),
            "{}",
            r.stderr
        );
        assert_eq!(r.json()["exit"], 1, "{}", r.stdout);
        assert!(
            !dir.join("tokens.json").exists()
                || !std::fs::read_to_string(dir.join("tokens.json"))
                    .unwrap()
                    .contains(TOKEN)
        );
        assert!(!dir.join("out.bin").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Issue 19, panic 3: `get` of a 70,000-character media id panicked in the URI builder and
/// left an empty `.part`. Now a validation error before anything is sent or created.
#[test]
fn a_70000_character_media_id_is_refused_before_anything_is_sent() {
    let (base, seen) = scripted(|req, s| {
        if req.line.contains("/cgi-bin/gettoken") {
            gettoken(s, "7200");
        }
    });
    let dir = support::scratch("long-id");
    let id = "m".repeat(70_000);
    for args in [["--json", "--output", "out.bin"], ["-q", "--output", "-"]] {
        let r = run(command(&base, &dir).args(["get", &id]).args(args));
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
        assert!(
            r.stderr
                .contains("media_id is 70000 bytes; at most 256 allowed"),
            "{}",
            r.stderr
        );
    }
    let r = run(command(&base, &dir).args(["get", "abc\u{1b}[31m", "--output", "out.bin"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("control character"), "{}", r.stderr);
    assert!(!r.stderr.contains('\u{1b}'), "{}", r.stderr);
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .all(|s| !s.line.contains("/media/get"))
    );
    assert!(listing(&dir).is_empty(), "{:?}", listing(&dir));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 19, item 2: a 200 without Content-Length and endless data was saved as a 2 GB file,
/// exit 0. The body is cut at 200 MiB, the largest media WeCom serves: a decode error, and
/// nothing saved under the final name.
#[test]
fn an_endless_body_without_content_length_is_cut_at_the_largest_media() {
    let (base, _) = scripted(|req, s| {
        if req.line.contains("/cgi-bin/gettoken") {
            return gettoken(s, "7200");
        }
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
             Content-Disposition: attachment; filename=\"big.bin\"\r\nConnection: close\r\n\r\n"
        );
        // "Endless" for the client: 300 MiB, past the cap, but bounded so that a client
        // without the cap fails this test instead of filling the disk.
        let block = vec![0u8; 1 << 20];
        for _ in 0..300 {
            if s.write_all(&block).is_err() {
                break;
            }
        }
    });
    let dir = support::scratch("endless");
    let r = run(command(&base, &dir).args(["get", "m1", "--output", "out.bin"]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("ran past 209715200 bytes"),
        "{}",
        r.stderr
    );
    assert!(!dir.join("out.bin").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Answers gettoken, and every media request with the head of a 1,000,000-byte media (206
/// with its Content-Range for a Range request), then 1,000 bytes, then nothing for `hold`.
fn trickling_server(hold: Duration) -> (String, Arc<Mutex<Vec<Seen>>>) {
    scripted(move |req, s| {
        if req.line.contains("/cgi-bin/gettoken") {
            return gettoken(s, "7200");
        }
        let total = 1_000_000u64;
        // A Range past the end is answered up to the last byte, as WeCom does.
        let head = match req.range().map(|(a, b)| (a, b.min(total - 1))) {
            Some((a, b)) => format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {a}-{b}/{total}\r\nContent-Length: {}\r\n",
                b - a + 1
            ),
            None => format!("HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n"),
        };
        let _ = write!(
            s,
            "{head}Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"t.bin\"\r\n\r\n"
        );
        let _ = s.write_all(&[7u8; 1000]);
        let _ = s.flush();
        std::thread::sleep(hold);
    })
}

/// Issue 19, item 8: a download whose answers stall after every 1,000 bytes was resumed
/// forever. Each attempt now has to deliver 64 KiB to count as progress: the fifth attempt in
/// a row without it ends the run with a typed stall, and the partial file is kept.
#[test]
fn a_trickle_that_keeps_breaking_ends_with_a_typed_stall() {
    let (base, seen) = trickling_server(Duration::from_secs(5));
    let dir = support::scratch("trickle");
    let started = Instant::now();
    let r = run(command(&base, &dir).args([
        "--json",
        "get",
        "m1",
        "--output",
        "out.bin",
        "--timeout",
        "1",
        "--retries",
        "0",
    ]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("the transfer stalled: 5 attempts in a row each delivered under 65536 bytes"),
        "{}",
        r.stderr
    );
    assert!(
        r.json()["error"].as_str().unwrap().contains("stalled"),
        "{}",
        r.stdout
    );
    let media = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.line.contains("/media/get"))
        .count();
    assert_eq!(media, 5, "{:?}", seen.lock().unwrap());
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(!dir.join("out.bin").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 19, item 2: `get --deadline SECS` gives the whole download an overall limit.
#[test]
fn a_deadline_ends_a_download_that_would_go_on() {
    let (base, _) = trickling_server(Duration::from_millis(900));
    let dir = support::scratch("deadline");
    let started = Instant::now();
    let r = run(command(&base, &dir).args([
        "get",
        "m1",
        "--output",
        "out.bin",
        "--timeout",
        "1",
        "--deadline",
        "2",
    ]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("deadline of 2 s passed"), "{}", r.stderr);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(!dir.join("out.bin").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 19, item 7: `Content-Encoding: gzip` saved the compressed bytes, exit 0. Media
/// requests say `Accept-Encoding: identity`, and any other coding is a decode error.
#[test]
fn a_content_coded_media_answer_is_refused() {
    let (base, seen) = scripted(|req, s| {
        if req.line.contains("/cgi-bin/gettoken") {
            return gettoken(s, "7200");
        }
        let body = [
            0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Encoding: gzip\r\n\
             Content-Disposition: attachment; filename=\"z.bin\"\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = s.write_all(&body);
    });
    let dir = support::scratch("gzip");
    let r = run(command(&base, &dir).args(["--retries", "0", "get", "m1", "--output", "out.bin"]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("Content-Encoding"), "{}", r.stderr);
    assert!(!dir.join("out.bin").exists());
    let media = seen
        .lock()
        .unwrap()
        .iter()
        .find(|s| s.line.contains("/media/get"))
        .cloned()
        .unwrap();
    assert_eq!(
        media.header("accept-encoding"),
        Some("identity"),
        "{media:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 19, item 3: a JSON error's errmsg was never masked (the secret printed on stderr and
/// in `--json`), a 40014 errmsg printed the token, and an HTML page holding a 29-character
/// token showed it in "body starts …".
#[test]
fn secrets_and_tokens_echoed_by_the_server_are_masked() {
    let answers: [&'static str; 3] = ["40001 SECRET", "40014 TOKEN", "html"];
    for which in answers {
        let (base, _) = scripted(move |req, s| {
            if req.line.contains("/cgi-bin/gettoken") {
                return gettoken(s, "7200");
            }
            match which {
                "40001 SECRET" => respond(
                    s,
                    "200 OK",
                    "application/json",
                    &format!(
                        r#"{{"errcode":40001,"errmsg":"invalid credential {SECRET} for corp, hint: [x]"}}"#
                    ),
                ),
                "40014 TOKEN" => respond(
                    s,
                    "200 OK",
                    "application/json",
                    &format!(
                        r#"{{"errcode":40014,"errmsg":"invalid access_token {TOKEN}, hint: [y]"}}"#
                    ),
                ),
                _ => respond(
                    s,
                    "500 Internal Server Error",
                    "text/html",
                    "<html><body>session Zx9Qw3Er5Ty7Ui9Op1As3Df5Gh expired</body></html>",
                ),
            }
        });
        let dir = support::scratch("echo");
        let file = dir.join("a.txt");
        std::fs::write(&file, b"hello hostile world").unwrap();
        let r = run(command(&base, &dir)
            .args(["--json", "--retries", "0", "upload", "file"])
            .arg(&file));
        assert_eq!(r.code, 1, "{which}: {}", r.stderr);
        for secret in [SECRET, TOKEN, "Zx9Qw3Er5Ty7Ui9Op1As3Df5Gh"] {
            assert!(!r.stderr.contains(secret), "{which}: {}", r.stderr);
            assert!(!r.stdout.contains(secret), "{which}: {}", r.stdout);
        }
        assert!(r.stderr.contains("***"), "{which}: {}", r.stderr);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Issue 19, item 6: a media id `abc\n\e[31mRED…` from an upload answer was printed raw in
/// text mode, and a `filename*` with U+202E was saved with the override in the name.
#[test]
fn server_strings_reach_the_terminal_escaped_and_names_lose_bidi_controls() {
    let (base, _) = scripted(|req, s| {
        if req.line.contains("/cgi-bin/gettoken") {
            return gettoken(s, "7200");
        }
        if req.line.contains("/media/upload") {
            let body = r#"{"errcode":0,"errmsg":"","type":"file","media_id":"abc\n\u001b[31mRED\u202e","created_at":"1380000000"}"#;
            return respond(s, "200 OK", "application/json", body);
        }
        let body = b"%PDF-1.4 not really";
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: application/pdf\r\n\
             Content-Disposition: attachment; filename*=utf-8''invoice%E2%80%AEfdp.exe\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = s.write_all(body);
    });
    let dir = support::scratch("escape");
    let file = dir.join("a.txt");
    std::fs::write(&file, b"hello hostile world").unwrap();
    let r = run(command(&base, &dir).args(["upload", "file"]).arg(&file));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        !r.stdout.contains('\u{1b}') && !r.stdout.contains('\u{202e}'),
        "{:?}",
        r.stdout
    );
    assert!(
        r.stdout.contains(r"abc\u{a}\u{1b}[31mRED\u{202e}"),
        "{}",
        r.stdout
    );
    let r = run(command(&base, &dir)
        .args(["--json", "upload", "file"])
        .arg(&file));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.contains('\u{1b}'), "{:?}", r.stdout);
    assert_eq!(r.json()["media_id"], "abc\n\u{1b}[31mRED\u{202e}");

    let out = dir.join("downloads");
    std::fs::create_dir_all(&out).unwrap();
    let r = run(command(&base, &dir)
        .args(["get", "m1", "--output"])
        .arg(format!("{}/", out.display())));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(listing(&out), vec!["invoicefdp.exe".to_owned()]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 19, item 7: an interrupted run never saved the token it fetched, so the next run
/// made another gettoken. Ctrl-C (SIGINT) now saves it before the process exits with 130.
#[cfg(unix)]
#[test]
fn an_interrupted_run_saves_the_token_it_fetched() {
    let (base, seen) = scripted(|req, s| {
        if req.line.contains("/cgi-bin/gettoken") {
            return gettoken(s, "7200");
        }
        std::thread::sleep(Duration::from_secs(30)); // never answers in time
    });
    let dir = support::scratch("interrupt");
    // The stopped save ends once its read gives up: after 2 s of silence, not the 30 s the
    // server holds the answer.
    let child = command(&base, &dir)
        .args(["get", "m1", "--output", "out.bin", "--timeout", "2"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let waited = Instant::now();
    while !seen
        .lock()
        .unwrap()
        .iter()
        .any(|s| s.line.contains("/media/get"))
    {
        assert!(
            waited.elapsed() < Duration::from_secs(20),
            "no media request"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let r: Run = child.wait_with_output().unwrap().into();
    assert_eq!(r.code, 130, "{}", r.stderr);
    let cache = std::fs::read_to_string(dir.join("tokens.json")).unwrap();
    assert!(cache.contains(TOKEN), "{cache}");
    let _ = std::fs::remove_dir_all(&dir);
}
