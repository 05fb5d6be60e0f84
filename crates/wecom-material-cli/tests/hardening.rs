//! Issue 10 at the command line: secrets kept off the command line, rejected tokens not kept,
//! downloads that cannot corrupt. Every test runs the built binary against servers on
//! 127.0.0.1 only.

mod support;

use std::process::Command;

use support::{BIN, World, arg};
use wecom_material_mock::{Endpoint, Fault};

/// The entries of the token cache file (an empty map when the file is absent).
fn cache_entries(w: &World) -> usize {
    match std::fs::read(&w.cache) {
        Ok(bytes) => serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes)
            .expect("the cache is a JSON object")
            .len(),
        Err(_) => 0,
    }
}

const CB_TOKEN: &str = "QDG6eK";
const CB_AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";

/// `callback decrypt` takes the callback token and AES key from the environment, and its help
/// never shows their values.
#[test]
fn callback_decrypt_reads_token_and_aes_key_from_the_environment() {
    let run: support::Run = Command::new(BIN)
        .env("WECOM_CALLBACK_TOKEN", CB_TOKEN)
        .env("WECOM_CALLBACK_AES_KEY", CB_AES_KEY)
        .args(["--json", "callback", "decrypt"])
        .args([
            "--receive-id",
            "wx5823bf96d3bd56c7",
            "--signature",
            "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
            "--timestamp",
            "1409659589",
            "--nonce",
            "263014780",
            "--echostr",
            "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
        ])
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["plaintext"], "1616140317555161061");

    let help: support::Run = Command::new(BIN)
        .env("WECOM_CALLBACK_TOKEN", CB_TOKEN)
        .env("WECOM_CALLBACK_AES_KEY", CB_AES_KEY)
        .args(["callback", "decrypt", "--help"])
        .output()
        .unwrap()
        .into();
    assert_eq!(help.code, 0);
    assert!(
        help.stdout.contains("WECOM_CALLBACK_AES_KEY"),
        "{}",
        help.stdout
    );
    assert!(!help.stdout.contains(CB_AES_KEY) && !help.stdout.contains(CB_TOKEN));
}

/// A run that ends with a token rejection (after its one refresh) drops the cached token, so
/// the next run fetches a fresh one instead of failing with the rejected one.
#[test]
fn a_rejected_token_is_not_kept_in_the_cache_file() {
    let w = World::new("rejected-token");
    let id = w.mock.insert_media(support::jpeg(), "image/jpeg", "a.jpg");
    let run = w.run(["get", &id, "--output", &arg(&w.dir.join("first.jpg"))]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(cache_entries(&w), 1);
    for (i, code) in [40001, 40014, 42001].into_iter().enumerate() {
        w.mock
            .fault(Endpoint::Get, Fault::Errcode { code, times: 2 });
        let out = w.dir.join(format!("fail-{i}.jpg"));
        let run = w.run(["get", &id, "--output", &arg(&out)]);
        assert_eq!(run.code, 1, "{code}: {}", run.stderr);
        assert!(run.stderr.contains(&code.to_string()), "{}", run.stderr);
        assert_eq!(cache_entries(&w), 0, "{code}: the rejected token was kept");
        assert!(!out.exists());
        // The next run works with a fresh token, and caches it.
        let run = w.run([
            "get",
            &id,
            "--output",
            &arg(&w.dir.join(format!("ok-{i}.jpg"))),
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(cache_entries(&w), 1);
    }
}

/// The files in `dir`, sorted.
fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// 2, 3 and 10 concurrent `get`s of one media into one directory: each ends with the correct
/// file or a clear error (exit ≠ 0) — never a wrong file with exit 0 — and nothing is left
/// behind but the one correct file.
#[test]
fn concurrent_gets_of_one_media_never_save_a_wrong_file() {
    for n in [2usize, 3, 10] {
        let w = World::new(&format!("concurrent-{n}"));
        let bytes = support::pattern(2_500_000);
        let id = w.insert_safe(&bytes, "application/octet-stream", "big.bin");
        // Slow answers, so that the runs overlap.
        w.mock.fault(
            Endpoint::Get,
            Fault::Delay {
                delay: std::time::Duration::from_millis(300),
                times: n as u32,
            },
        );
        let children: Vec<_> = (0..n)
            .map(|_| {
                w.command()
                    .args(["get", &id])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let runs: Vec<support::Run> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap().into())
            .collect();
        let saved = w.dir.join("big.bin");
        let mut ok = 0;
        for run in &runs {
            if run.code == 0 {
                ok += 1;
                assert!(run.stdout.contains("saved"), "{}", run.stdout);
            } else {
                assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
                assert!(
                    run.stderr.contains("another run is downloading")
                        || run.stderr.contains("exists; pass --force"),
                    "{}",
                    run.stderr
                );
            }
        }
        assert!(ok >= 1, "no run succeeded");
        assert_eq!(std::fs::read(&saved).unwrap(), bytes, "{n} runs");
        // Only the media (and the scratch cache dir) remain: no part, record or stale file.
        let left: Vec<_> = listing(&w.dir)
            .into_iter()
            .filter(|f| f != "cache" && f != "xdg")
            .collect();
        assert_eq!(left, ["big.bin"], "{n} runs");
    }
}

/// A symlink planted at the part name is not followed: its target is untouched and the saved
/// file is a regular file with the media.
#[cfg(unix)]
#[test]
fn a_planted_symlink_at_the_part_name_is_not_followed() {
    let w = World::new("symlink");
    let bytes = support::jpeg();
    let id = w.insert_safe(&bytes, "image/jpeg", "photo.jpg");
    let victim = w.file("victim.txt", b"precious");
    std::os::unix::fs::symlink(&victim, w.dir.join(format!(".{id}.part"))).unwrap();
    std::os::unix::fs::symlink(&victim, w.dir.join(format!(".{id}.part.json"))).unwrap();
    let run = w.run(["get", &id]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    let saved = w.dir.join("photo.jpg");
    assert!(
        std::fs::symlink_metadata(&saved)
            .unwrap()
            .file_type()
            .is_file()
    );
    assert_eq!(std::fs::read(&saved).unwrap(), bytes);
}

/// A stray part file of zeros (no record) is not resumed: it is set aside and the media is
/// downloaded whole, byte-exact.
#[test]
fn a_stray_part_of_zeros_is_not_resumed() {
    let w = World::new("zeros");
    let bytes = support::pattern(300_000);
    let id = w.insert_safe(&bytes, "application/octet-stream", "m.bin");
    let part = w.file(&format!(".{id}.part"), &[0u8; 100_000]);
    let run = w.run(["get", &id]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read(w.dir.join("m.bin")).unwrap(), bytes);
    assert!(!part.exists());
    assert!(run.stderr.contains("set aside"), "{}", run.stderr);
    let gets = w.mock.requests_to(Endpoint::Get);
    assert_eq!(gets.len(), 1);
    let range = gets[0].headers.get("range").unwrap().to_str().unwrap();
    assert!(
        range.starts_with("bytes=0-"),
        "resumed a stray part: {range}"
    );
}

/// A part file of a media the server says is gone (40007) is removed, not kept as resumable.
#[test]
fn the_part_of_a_gone_media_is_removed() {
    let w = World::new("gone");
    let bytes = support::pattern(3_000_000);
    let id = w.insert_safe(&bytes, "application/octet-stream", "m.bin");
    // The first range (1 MiB) arrives; the next one cannot connect (1 try + 2 retries).
    w.mock.fault(
        Endpoint::Get,
        Fault::Delay {
            delay: std::time::Duration::from_millis(1),
            times: 1,
        },
    );
    w.mock
        .fault(Endpoint::Get, Fault::DropBeforeBody { times: 3 });
    let run = w.run(["get", &id]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let part = w.dir.join(format!(".{id}.part"));
    assert!(part.exists(), "{:?}", listing(&w.dir));

    w.mock.fault(
        Endpoint::Get,
        Fault::Errcode {
            code: 40007,
            times: 1,
        },
    );
    let run = w.run(["get", &id]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("40007"), "{}", run.stderr);
    assert!(!part.exists());
    assert!(
        !run.stderr.contains("partial download kept"),
        "{}",
        run.stderr
    );
    let left: Vec<_> = listing(&w.dir)
        .into_iter()
        .filter(|f| f != "cache" && f != "xdg")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A hostile server on 127.0.0.1 that stalls every `media/get` (see [`hostile_server`]).
fn stalling_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    hostile_server(None)
}

/// A hostile server on 127.0.0.1: answers gettoken, and answers `media/get` with `media`
/// (a whole raw HTTP response, in which `{URL}` is replaced by the request target, as a proxy
/// page that echoes it) or, with `None`, never answers (a stall). Returns its base URL and the
/// count of media requests.
fn hostile_server(
    answer: Option<&'static str>,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let media = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = media.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            if request_line.contains("/cgi-bin/gettoken") {
                let body =
                    r#"{"errcode":0,"errmsg":"ok","access_token":"TOK-stall","expires_in":7200}"#;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            } else {
                counter.fetch_add(1, Ordering::SeqCst);
                match answer {
                    Some(raw) => {
                        let target = request_line.split(' ').nth(1).unwrap_or("");
                        let _ = stream.write_all(raw.replace("{URL}", target).as_bytes());
                    }
                    None => held.push(stream), // never answered
                }
            }
        }
    });
    (base, media)
}

/// `--timeout` bounds a stall and `--retries` bounds how often it is retried.
#[test]
fn timeout_and_retries_bound_a_stalled_download() {
    use std::sync::atomic::Ordering;
    for retries in [0u32, 1] {
        let (base, media_requests) = stalling_server();
        let dir = support::scratch("stall");
        let run: support::Run = Command::new(BIN)
            .current_dir(&dir)
            .env("WECOM_SECRET", "s")
            .args(["--base-url", &base, "--corp-id", "ww", "--token-cache"])
            .arg(dir.join("tokens.json"))
            .args(["--timeout", "1", "--retries", &retries.to_string()])
            .args(["get", "m1", "--output", "out.bin"])
            .output()
            .unwrap()
            .into();
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
        assert!(!run.stderr.contains("TOK-stall"), "{}", run.stderr);
        assert_eq!(media_requests.load(Ordering::SeqCst), 1 + retries as usize);
        assert!(!dir.join("out.bin").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
    // Out of range values are usage errors.
    let run: support::Run = Command::new(BIN)
        .args(["--timeout", "0", "demo"])
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 2, "{}", run.stderr);
}

/// Hostile answers to a download never become a file: a media type with a non-zero
/// `Error-Code` header, and a proxy page that echoes the request URL (whose token must not
/// reach stderr).
#[test]
fn hostile_download_answers_are_errors_and_keep_the_token_off_stderr() {
    let cases: [(&'static str, &str); 2] = [
        (
            "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nError-Code: 40007\r\nError-Msg: invalid media_id\r\nContent-Length: 4\r\nConnection: close\r\n\r\nJPEG",
            "40007",
        ),
        (
            "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n<html>upstream failed for GET {URL}</html>",
            "access_token=***",
        ),
    ];
    for (answer, needle) in cases {
        let (base, media_requests) = hostile_server(Some(answer));
        let dir = support::scratch("hostile");
        let run: support::Run = Command::new(BIN)
            .current_dir(&dir)
            .env("WECOM_SECRET", "s")
            .args(["--base-url", &base, "--corp-id", "ww", "--token-cache"])
            .arg(dir.join("tokens.json"))
            .args(["--retries", "0", "get", "m1", "--output", "out.bin"])
            .output()
            .unwrap()
            .into();
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(run.stderr.contains(needle), "{}", run.stderr);
        assert!(!run.stderr.contains("TOK-stall"), "{}", run.stderr);
        assert!(media_requests.load(std::sync::atomic::Ordering::SeqCst) >= 1);
        assert!(!dir.join("out.bin").exists());
        let left: Vec<_> = listing(&dir)
            .into_iter()
            .filter(|f| f != "tokens.json")
            .collect();
        assert!(left.is_empty(), "{left:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The cache file's entries by key (an empty map when the file is absent).
fn cache_map(path: &std::path::Path) -> serde_json::Map<String, serde_json::Value> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).expect("the cache is a JSON object"),
        Err(_) => serde_json::Map::new(),
    }
}

/// Adds an entry of another app that expired long ago to the cache file (its mode kept).
fn plant_expired_entry(path: &std::path::Path) {
    let mut map = cache_map(path);
    let expired = serde_json::json!({
        "access_token": "EXPIRED-token-of-another-app",
        "expires_at_unix": 1_000,
        "generation": 1,
    });
    map.insert("another app, expired".into(), expired);
    std::fs::write(path, serde_json::to_vec_pretty(&map).unwrap()).unwrap();
}

/// The entry of the test's app (the one whose key names its corp id).
fn own_entry(map: &serde_json::Map<String, serde_json::Value>) -> Option<&serde_json::Value> {
    map.iter()
        .find(|(key, _)| key.contains(support::CORP_ID))
        .map(|(_, entry)| entry)
}

/// The cache file is written when the run's token differs from the one it loaded (a new one,
/// or none left), and then drops the expired entries of other apps; a run that ends with the
/// token it loaded, or that never had one, leaves the file as it was. Only a rejected token
/// is dropped: another API error keeps it.
#[test]
fn the_cache_file_is_written_only_when_the_token_changed() {
    let w = World::new("cache-writes");
    let path = w.file("a.txt", b"cache writes");
    let cache_dir = w.cache.parent().unwrap();
    std::fs::create_dir_all(cache_dir).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(cache_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(&w.cache, "{}").unwrap();
        std::fs::set_permissions(&w.cache, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let valid = serde_json::json!({
        "access_token": "VALID-token-of-another-app",
        "expires_at_unix": 4_102_444_800u64,
        "generation": 3,
    });
    let mut map = cache_map(&w.cache);
    map.insert("another app, valid".into(), valid.clone());
    std::fs::write(&w.cache, serde_json::to_vec(&map).unwrap()).unwrap();
    plant_expired_entry(&w.cache);

    // A new token: written, the expired entry dropped, the valid one kept.
    let run = w.run(["upload", "file", &arg(&path)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let map = cache_map(&w.cache);
    let token = w.mock.access_token(support::CORP_ID).unwrap();
    assert_eq!(own_entry(&map).unwrap()["access_token"], token.as_str());
    assert_eq!(map["another app, valid"], valid);
    assert!(!map.contains_key("another app, expired"), "{map:?}");

    // The same token at the end of the run: the file is not written.
    plant_expired_entry(&w.cache);
    let run = w.run(["upload", "file", &arg(&path)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(cache_map(&w.cache).contains_key("another app, expired"));
    // An API error that is not about the token: the token stays, nothing is written.
    let run = w.run(["get", "no-such-media"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let map = cache_map(&w.cache);
    assert!(map.contains_key("another app, expired"));
    assert_eq!(own_entry(&map).unwrap()["access_token"], token.as_str());
    assert_eq!(w.mock.count(Endpoint::GetToken), 1);

    // An app with no entry whose run never gets a token (a usage error): nothing is written.
    let run = w
        .command()
        .env("WECOM_SECRET", "another-secret")
        .args(["get", " "])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(cache_map(&w.cache).contains_key("another app, expired"));
    assert_eq!(w.mock.count(Endpoint::GetToken), 1);
}

/// A run whose secret WeCom refuses has no token to drop: it creates no cache file.
#[test]
fn a_refused_secret_creates_no_cache_file() {
    let w = World::new("refused-secret");
    let run: support::Run = w
        .command()
        .env("WECOM_SECRET", "wrong-secret")
        .args(["job", "jobid_x"])
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("40001"), "{}", run.stderr);
    assert!(!w.cache.exists());
    assert!(!w.cache.parent().unwrap().exists());
}

/// Apps sharing one cache file each keep their own token: the key names the base URL, the
/// corp id and a hash of the secret.
#[test]
fn apps_sharing_a_cache_file_keep_their_own_tokens() {
    let mock = wecom_material_mock::MockServer::start(wecom_material_mock::MockConfig {
        apps: vec![
            wecom_material_mock::App::new("ww-app-a", "secret-of-app-a"),
            wecom_material_mock::App::new("ww-app-b", "secret-of-app-b"),
        ],
        ..wecom_material_mock::MockConfig::default()
    });
    let dir = support::scratch("two-apps");
    let cache = dir.join("tokens.json");
    let run_as = |corp: &str, secret: &str| -> support::Run {
        Command::new(BIN)
            .current_dir(&dir)
            .env_remove("WECOM_TOKEN_STORE")
            .env("WECOM_SECRET", secret)
            .args(["--base-url", &mock.base_url(), "--corp-id", corp])
            .arg("--token-cache")
            .arg(&cache)
            .args(["job", "jobid_unknown"])
            .output()
            .unwrap()
            .into()
    };
    for (corp, secret) in [
        ("ww-app-a", "secret-of-app-a"),
        ("ww-app-b", "secret-of-app-b"),
        ("ww-app-a", "secret-of-app-a"),
        ("ww-app-b", "secret-of-app-b"),
    ] {
        let run = run_as(corp, secret);
        // An unknown job: an API error, after the token was used.
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(!run.stderr.contains("4001"), "{}", run.stderr);
    }
    assert_eq!(mock.count(Endpoint::GetToken), 2);
    let map = cache_map(&cache);
    assert_eq!(map.len(), 2, "{map:?}");
    for (key, entry) in &map {
        let corp = if key.contains("ww-app-a") {
            "ww-app-a"
        } else {
            "ww-app-b"
        };
        assert!(key.starts_with(&mock.base_url()), "{key}");
        assert_eq!(
            entry["access_token"],
            mock.access_token(corp).unwrap().as_str()
        );
        assert!(!key.contains("secret-of-app"), "{key}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Without --token-cache the cache is
/// `$XDG_CACHE_HOME/wecom-material/tokens.json`, else `$HOME/.cache/wecom-material/tokens.json`
/// (a relative variable counts as unset); with neither, the run works without a cache.
#[test]
fn the_default_cache_follows_xdg_cache_home_then_home() {
    let w = World::new("default-cache");
    let run_with = |env: &[(&str, &std::path::Path)]| -> support::Run {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(&w.dir)
            .env_remove("WECOM_TOKEN_CACHE")
            .env_remove("WECOM_TOKEN_STORE")
            .env_remove("XDG_CACHE_HOME")
            .env_remove("HOME")
            .env("WECOM_SECRET", support::SECRET)
            .args(["-v", "--base-url", &w.mock.base_url()])
            .args(["--corp-id", support::CORP_ID]);
        for (name, value) in env {
            cmd.env(name, value);
        }
        cmd.args(["job", "jobid_unknown"]).output().unwrap().into()
    };
    let xdg = w.dir.join("xdg");
    let home = w.dir.join("home");
    let in_xdg = xdg.join("wecom-material").join("tokens.json");
    let in_home = home
        .join(".cache")
        .join("wecom-material")
        .join("tokens.json");

    let run = run_with(&[("XDG_CACHE_HOME", &xdg), ("HOME", &home)]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(in_xdg.is_file() && !in_home.exists());
    // The next run finds the token there.
    let run = run_with(&[("XDG_CACHE_HOME", &xdg)]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(w.mock.count(Endpoint::GetToken), 1);

    let relative = std::path::Path::new("relative/xdg");
    let run = run_with(&[("XDG_CACHE_HOME", relative), ("HOME", &home)]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(in_home.is_file());
    assert!(!w.dir.join(relative).exists());
    assert_eq!(w.mock.count(Endpoint::GetToken), 2);

    let run = run_with(&[("XDG_CACHE_HOME", relative)]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("no token cache: neither XDG_CACHE_HOME nor HOME is set"),
        "{}",
        run.stderr
    );
    assert_eq!(w.mock.count(Endpoint::GetToken), 3);
}

/// A cache path that cannot be read (here under a regular file) is only a cache: the run
/// works, with a warning that it is ignored and one that it cannot be written.
#[test]
fn an_unreadable_cache_path_is_a_warning_not_a_failure() {
    let w = World::new("cache-unreadable");
    let file = w.file("plain.txt", b"a file, not a directory");
    let cache = file.join("tokens.json");
    let run: support::Run = Command::new(BIN)
        .current_dir(&w.dir)
        .env_remove("WECOM_TOKEN_STORE")
        .env("WECOM_SECRET", support::SECRET)
        .args([
            "--base-url",
            &w.mock.base_url(),
            "--corp-id",
            support::CORP_ID,
        ])
        .arg("--token-cache")
        .arg(&cache)
        .args(["upload", "file", &arg(&file)])
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let shown = cache.display().to_string();
    for warning in [
        format!("[warning] ignoring token cache {shown}: "),
        format!("[warning] cannot write token cache {shown}: "),
    ] {
        assert!(run.stderr.contains(&warning), "{warning} in {}", run.stderr);
    }
}

/// A cache file found open to other users is re-created private, with one warning that says
/// so; the token in it is still used.
#[cfg(unix)]
#[test]
fn a_cache_open_to_others_is_one_warning_and_made_private() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new("cache-wide");
    let path = w.file("a.txt", b"a wide cache");
    let run = w.run(["upload", "file", &arg(&path)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    std::fs::set_permissions(&w.cache, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = w.run(["upload", "file", &arg(&path)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("[warning] "))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(
        warnings[0].contains("was open to other users (file 0644"),
        "{}",
        run.stderr
    );
    let mode = std::fs::metadata(&w.cache).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(w.mock.count(Endpoint::GetToken), 1);
}
