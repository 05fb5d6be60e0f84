//! `--token-store` / `WECOM_TOKEN_STORE` (issue 11): runs of the built binary share one
//! access token through a real `redis-server` started by each test (never a mock of Redis):
//! one `gettoken` for a fleet of runs, the store's outage is one warning and no failure, a bad
//! URL is a usage error, no password or secret is ever printed or stored, the token cache
//! file is left alone, and `redis+unix://` works.

mod support;

use std::process::{Child, Command, Stdio};

use support::{CORP_ID, Run, SECRET, World, arg};
use wecom_material_mock::Endpoint;
use wecom_material_redis::test_server::RedisServer;

const PASSWORD: &str = "pw-SECRET";

/// Starts a command with its output captured.
fn spawn(mut cmd: Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the binary")
}

fn finish(child: Child) -> Run {
    child
        .wait_with_output()
        .expect("wait for the binary")
        .into()
}

/// A run that succeeded and printed nothing on stderr (no warning: the store answered).
fn assert_clean(run: &Run, what: &str) {
    assert_eq!(run.code, 0, "{what}: {}", run.stderr);
    assert_eq!(run.stderr, "", "{what}: stderr");
}

/// The non-empty stderr lines.
fn lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// Every key of the server with its value as text (strings and hashes).
fn dump(server: &RedisServer) -> Vec<(String, String)> {
    let mut conn = server.connection();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
    let mut out = Vec::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE").arg(&key).query(&mut conn).unwrap();
        let value = match kind.as_str() {
            "string" => redis::cmd("GET")
                .arg(&key)
                .query::<String>(&mut conn)
                .unwrap(),
            "hash" => {
                let pairs: Vec<String> = redis::cmd("HGETALL").arg(&key).query(&mut conn).unwrap();
                pairs.join(" ")
            }
            other => panic!("unexpected type {other} of key {key}"),
        };
        out.push((key, value));
    }
    out.sort();
    out
}

/// Five runs at once (three uploads, two downloads), then three one after another, all with
/// the store on the command line: one `gettoken` in all, no warning, the cache file untouched,
/// and the token in Redis under the app's hashed tag.
#[test]
fn runs_sharing_a_store_make_one_gettoken() {
    let w = World::new("store-fleet");
    let server = RedisServer::start();
    let url = server.url();
    let ids: Vec<String> = (0..2)
        .map(|i| w.insert_safe(&support::jpeg(), "image/jpeg", &format!("p{i}.jpg")))
        .collect();
    let mut children = Vec::new();
    for i in 0..3 {
        let path = w.file(&format!("up{i}.jpg"), &support::jpeg());
        let mut cmd = w.command();
        cmd.args([
            "--token-store",
            &url,
            "--json",
            "upload",
            "image",
            &arg(&path),
        ]);
        children.push(spawn(cmd));
    }
    for (i, id) in ids.iter().enumerate() {
        let out = w.dir.join(format!("down{i}/"));
        let mut cmd = w.command();
        cmd.args(["--token-store", &url, "--json", "get", id, "--output"])
            .arg(&out);
        children.push(spawn(cmd));
    }
    for (i, child) in children.into_iter().enumerate() {
        let run = finish(child);
        assert_clean(&run, &format!("concurrent run {i}"));
        assert!(run.json().is_object(), "run {i}: {}", run.stdout);
    }
    for i in 0..3 {
        let path = w.file(&format!("seq{i}.bin"), b"sequential run");
        let run = w.run(["--token-store", &url, "upload", "file", &arg(&path)]);
        assert_clean(&run, &format!("sequential run {i}"));
        assert!(run.stdout.contains("media_id"), "{}", run.stdout);
    }
    assert_eq!(
        w.mock.count(Endpoint::GetToken),
        1,
        "one gettoken for 8 runs"
    );
    assert!(!w.cache.exists(), "the token cache file was written");
    assert!(!w.dir.join("xdg").exists(), "the default cache was written");
    let keys: Vec<String> = dump(&server).into_iter().map(|(k, _)| k).collect();
    assert!(
        keys.iter()
            .any(|k| k.starts_with("wecom-material:{") && k.ends_with("}:token")),
        "{keys:?}"
    );
}

/// `WECOM_TOKEN_STORE` does what `--token-store` does: three runs at once and two after
/// them, one `gettoken`.
#[test]
fn the_environment_variable_names_the_store() {
    let w = World::new("store-env");
    let server = RedisServer::start();
    let with_env = |args: &[&str]| {
        let mut cmd = w.command();
        cmd.env("WECOM_TOKEN_STORE", server.url()).args(args);
        cmd
    };
    let paths: Vec<String> = (0..5)
        .map(|i| {
            arg(&w.file(
                &format!("e{i}.txt"),
                format!("environment run {i}").as_bytes(),
            ))
        })
        .collect();
    let children: Vec<Child> = paths[..3]
        .iter()
        .map(|p| spawn(with_env(&["--json", "upload", "file", p])))
        .collect();
    for child in children {
        assert_clean(&finish(child), "concurrent env run");
    }
    for p in &paths[3..] {
        let run: Run = with_env(&["--json", "upload", "file", p])
            .output()
            .unwrap()
            .into();
        assert_clean(&run, "sequential env run");
    }
    assert_eq!(w.mock.count(Endpoint::GetToken), 1);
    assert!(!w.cache.exists());
    // The help names the variable but never shows its value (it may hold a password).
    let help: Run = {
        let mut cmd = Command::new(support::BIN);
        cmd.env(
            "WECOM_TOKEN_STORE",
            format!("redis://:{PASSWORD}@127.0.0.1:1"),
        )
        .arg("--help");
        cmd.output().unwrap().into()
    };
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("WECOM_TOKEN_STORE"), "{}", help.stdout);
    assert!(help.stdout.contains("--token-cache"), "{}", help.stdout);
    assert!(!help.stdout.contains(PASSWORD), "{}", help.stdout);
}

/// A store that does not answer (a stopped server's URL, with a password): the run succeeds
/// with a token of its own, as it would without a store, and stderr holds exactly one warning
/// that names the store without its password. Several files in one run (threads sharing the
/// client) still warn once; `-v` never shows the password either.
#[test]
fn an_unreachable_store_is_one_warning_and_the_run_goes_on() {
    let w = World::new("store-down");
    let mut server = RedisServer::start_with(&["--requirepass", PASSWORD]);
    let port = server.port();
    server.stop();
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{port}");
    let shown = format!("redis://***@127.0.0.1:{port}");

    let path = w.file("photo.jpg", &support::jpeg());
    let run = w.run([
        "--token-store",
        &url,
        "--json",
        "upload",
        "image",
        &arg(&path),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json = run.json();
    assert!(json["media_id"].is_string(), "{}", run.stdout);
    let warnings = lines(&run.stderr);
    assert_eq!(warnings.len(), 1, "stderr: {:?}", run.stderr);
    let line = warnings[0];
    assert!(line.starts_with("[warning] token store: "), "{line}");
    assert!(line.contains(&shown), "{line}");
    assert!(
        line.contains("using a token of this process's own"),
        "{line}"
    );
    assert!(!run.stderr.contains(PASSWORD) && !run.stdout.contains(PASSWORD));
    assert_eq!(w.mock.count(Endpoint::GetToken), 1);

    // Four files on four threads, then a download of one of them: one warning per run.
    let paths: Vec<String> = (0..4)
        .map(|i| {
            arg(&w.file(
                &format!("f{i}.txt"),
                format!("threaded file {i}").as_bytes(),
            ))
        })
        .collect();
    let mut args = vec!["--token-store", &url, "upload", "file", "--jobs", "4"];
    args.extend(paths.iter().map(String::as_str));
    let run = w.run(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.matches("media_id").count(), 4, "{}", run.stdout);
    let warnings = lines(&run.stderr);
    assert_eq!(warnings.len(), 1, "stderr: {:?}", run.stderr);
    assert!(warnings[0].contains(&shown), "{}", warnings[0]);
    let id = json["media_id"].as_str().unwrap();
    let run = w.run(["-q", "--token-store", &url, "get", id, "--output", "-"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(lines(&run.stderr).len(), 1, "stderr: {:?}", run.stderr);
    // Each run fell back to a token of its own, and none went to the cache file.
    assert_eq!(w.mock.count(Endpoint::GetToken), 3);
    assert!(!w.cache.exists());

    // -v logs more, and still never the password.
    let run = w.run(["-v", "--token-store", &url, "job", "no-such-job"]);
    assert!(run.stderr.contains(&shown), "{}", run.stderr);
    assert!(!run.stderr.contains(PASSWORD), "{}", run.stderr);
    assert!(!run.stderr.contains(SECRET), "{}", run.stderr);
}

/// A server that wants a password: with the right one the runs share a token; with a wrong
/// one it is the one warning (the server's refusal), never the password, and the run goes on.
#[test]
fn a_store_with_a_password() {
    let w = World::new("store-auth");
    let server = RedisServer::start_with(&["--requirepass", PASSWORD]);
    let port = server.port();
    let good = format!("redis://:{PASSWORD}@127.0.0.1:{port}");
    for i in 0..2 {
        let path = w.file(&format!("a{i}.txt"), b"password run");
        let run = w.run(["--token-store", &good, "upload", "file", &arg(&path)]);
        assert_clean(&run, "right password");
    }
    assert_eq!(w.mock.count(Endpoint::GetToken), 1);

    let bad = format!("redis://:wrong-{PASSWORD}@127.0.0.1:{port}");
    let path = w.file("b.txt", b"password run");
    let run = w.run(["--token-store", &bad, "upload", "file", &arg(&path)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let warnings = lines(&run.stderr);
    assert_eq!(warnings.len(), 1, "stderr: {:?}", run.stderr);
    assert!(
        warnings[0].contains(&format!("redis://***@127.0.0.1:{port}")),
        "{}",
        warnings[0]
    );
    assert!(!run.stderr.contains(PASSWORD), "{}", run.stderr);
    assert_eq!(w.mock.count(Endpoint::GetToken), 2);
}

/// `-v` shows what the store answered (who refreshes, who reads the stored token), never the
/// token itself.
#[test]
fn verbose_runs_trace_the_store_without_the_token() {
    let w = World::new("store-trace");
    let server = RedisServer::start();
    let url = server.url();
    let path = w.file("t.txt", b"traced run");
    let first = w.run(["-v", "--token-store", &url, "upload", "file", &arg(&path)]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let second = w.run(["-v", "--token-store", &url, "upload", "file", &arg(&path)]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let store = format!("token store {url}: ");
    for line in [
        format!("{store}LOOKUP → refresh with fence 1"),
        format!("{store}COMMIT fence 1 → stored as generation 1"),
    ] {
        assert!(first.stderr.contains(&line), "{line} in {}", first.stderr);
    }
    let ready = format!("{store}LOOKUP → ready (generation 1, ");
    assert!(second.stderr.contains(&ready), "{}", second.stderr);
    assert!(!second.stderr.contains("COMMIT"), "{}", second.stderr);
    // The store replaces the cache file: no word about a cache.
    for run in [&first, &second] {
        assert!(!run.stderr.contains("token cache"), "{}", run.stderr);
    }
    assert_eq!(w.mock.count(Endpoint::GetToken), 1);
    let token = dump(&server)
        .into_iter()
        .find(|(key, _)| key.ends_with(":token"))
        .map(|(_, value)| value)
        .expect("the token record");
    let fields: Vec<&str> = token.split(' ').collect();
    let at = fields
        .iter()
        .position(|f| *f == "token")
        .expect("a token field");
    let token = fields[at + 1];
    assert!(token.len() > 8, "{token}");
    assert!(!first.stderr.contains(token) && !second.stderr.contains(token));
}

/// URLs that are not a Redis store: exit 2 before anything is sent, one clear line that
/// never shows the password; with --json the failure object says exit 2 too.
#[test]
fn a_bad_store_url_is_a_usage_error() {
    let w = World::new("store-bad");
    let path = w.file("x.txt", b"never sent");
    let cases = [
        ("http://x".to_owned(), "not a Redis URL"),
        (format!("http://:{PASSWORD}@x:1"), "not a Redis URL"),
        (format!("redis://:{PASSWORD}@"), "bad store URL"),
        (
            format!("redis://:{PASSWORD}@host:notaport"),
            "bad store URL",
        ),
        ("garbage".to_owned(), "not a URL"),
        (PASSWORD.to_owned(), "not a URL"),
    ];
    for (url, reason) in &cases {
        let run = w.run(["--token-store", url, "upload", "file", &arg(&path)]);
        assert_eq!(run.code, 2, "{url}: {}", run.stderr);
        let text = run.stderr.trim_end();
        assert_eq!(text.lines().count(), 1, "{url}: {:?}", run.stderr);
        assert!(text.starts_with("error: --token-store"), "{text}");
        assert!(text.contains(reason), "{url}: {text}");
        assert!(text.contains("expected redis://"), "{text}");
        assert!(!text.contains(PASSWORD), "{url}: {text}");

        let run = w.run([
            "--json",
            "--token-store",
            url,
            "upload",
            "file",
            &arg(&path),
        ]);
        assert_eq!(run.code, 2);
        assert_eq!(run.json()["exit"], 2);
        assert!(!run.stdout.contains(PASSWORD), "{}", run.stdout);
    }
    assert_eq!(w.mock.count(Endpoint::GetToken), 0);
    assert_eq!(w.mock.count(Endpoint::Upload), 0);
}

/// What the store holds: the app's keys under a hashed tag, with neither the secret nor the
/// corp id in a key or a value; the cache file is neither written nor read (a token cached
/// in it by an earlier run without the store is not used: the store run fetches its own).
#[test]
fn the_store_holds_no_secret_and_the_cache_file_is_left_alone() {
    let w = World::new("store-keys");
    let server = RedisServer::start();
    let url = server.url();
    let path = w.file("k.txt", b"keys of the store");

    // A run without the store caches its token in the file.
    let run = w.run(["upload", "file", &arg(&path)]);
    assert_clean(&run, "run with the cache file");
    assert_eq!(w.mock.count(Endpoint::GetToken), 1);
    let cached = std::fs::read(&w.cache).expect("the cache file");

    let run = w.run(["--token-store", &url, "upload", "file", &arg(&path)]);
    assert_clean(&run, "run with the store");
    assert_eq!(
        w.mock.count(Endpoint::GetToken),
        2,
        "the store run used the cache file's token"
    );
    assert_eq!(
        std::fs::read(&w.cache).unwrap(),
        cached,
        "the cache file changed"
    );

    let entries = dump(&server);
    assert!(!entries.is_empty());
    for (key, value) in &entries {
        assert!(key.starts_with("wecom-material:{"), "{key}");
        for text in [key, value] {
            assert!(!text.contains(SECRET), "{key} = {value}");
            assert!(!text.contains(CORP_ID), "{key} = {value}");
        }
    }
    let token = entries
        .iter()
        .find(|(k, _)| k.ends_with(":token"))
        .expect("a token key");
    assert!(token.1.contains("token "), "{token:?}");
}

/// `redis+unix://` to a server listening on a socket (mode 700): runs at once and one after
/// another share one token, and the token is in that server.
#[test]
fn a_unix_socket_store() {
    let w = World::new("store-unix");
    let socket = w.dir.join("redis.sock");
    let server =
        RedisServer::start_with(&["--unixsocket", &arg(&socket), "--unixsocketperm", "700"]);
    let url = format!("redis+unix://{}", arg(&socket));
    let children: Vec<Child> = (0..3)
        .map(|i| {
            let path = w.file(&format!("u{i}.txt"), b"unix socket run");
            let mut cmd = w.command();
            cmd.args(["--token-store", &url, "upload", "file", &arg(&path)]);
            spawn(cmd)
        })
        .collect();
    for child in children {
        assert_clean(&finish(child), "concurrent unix run");
    }
    let path = w.file("u-last.txt", b"unix socket run");
    let run = w.run(["--token-store", &url, "upload", "file", &arg(&path)]);
    assert_clean(&run, "sequential unix run");
    assert_eq!(w.mock.count(Endpoint::GetToken), 1);
    assert!(!w.cache.exists());
    assert!(dump(&server).iter().any(|(k, _)| k.ends_with(":token")));
}

/// A token WeCom stops accepting (the emulator revokes every token) is replaced once for the
/// whole fleet: the first run after the revocation refreshes it through the store, runs at
/// once after it and the runs after them use the new one.
#[test]
fn a_revoked_token_is_replaced_once_through_the_store() {
    let w = World::new("store-revoke");
    let server = RedisServer::start();
    let url = server.url();
    let upload = |name: &str| {
        let path = w.file(name, b"revocation run");
        let mut cmd = w.command();
        cmd.args([
            "--token-store",
            &url,
            "--json",
            "upload",
            "file",
            &arg(&path),
        ]);
        cmd
    };
    assert_clean(&upload("r0.txt").output().unwrap().into(), "first run");
    assert_eq!(w.mock.count(Endpoint::GetToken), 1);
    w.mock.revoke_tokens();
    let children: Vec<Child> = (1..4)
        .map(|i| spawn(upload(&format!("r{i}.txt"))))
        .collect();
    for child in children {
        assert_clean(&finish(child), "run after the revocation");
    }
    assert_clean(&upload("r4.txt").output().unwrap().into(), "last run");
    assert_eq!(
        w.mock.count(Endpoint::GetToken),
        2,
        "one refresh for the fleet"
    );
    let current = w.mock.access_token(CORP_ID).expect("a live token");
    let stored = dump(&server)
        .into_iter()
        .find(|(k, _)| k.ends_with(":token"))
        .expect("a token key")
        .1;
    assert!(stored.contains(&current), "{stored:?} lacks the live token");
}

/// `rediss://` is built in (the `tls` feature): a TLS store URL is accepted, and a store that
/// does not answer is the usual one warning, not a usage error.
#[test]
fn a_tls_store_url_is_accepted() {
    let w = World::new("store-tls");
    let mut server = RedisServer::start();
    let port = server.port();
    server.stop();
    let path = w.file("t.txt", b"tls store run");
    let url = format!("rediss://:{PASSWORD}@127.0.0.1:{port}/0");
    let run = w.run(["--token-store", &url, "upload", "file", &arg(&path)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let warnings = lines(&run.stderr);
    assert_eq!(warnings.len(), 1, "stderr: {:?}", run.stderr);
    assert!(
        warnings[0].contains(&format!("rediss://***@127.0.0.1:{port}/0")),
        "{}",
        warnings[0]
    );
    assert!(!run.stderr.contains(PASSWORD));
}

/// Issue 19, panic 2: a 10 MB token in the Redis entry made every run of the fleet panic in
/// the URI builder while the entry lasted. The entry is refused where its reply is parsed:
/// the run warns once, names what is wrong (never the text) and goes on with a token of its
/// own.
#[test]
fn a_10_mb_token_in_the_store_is_ignored_with_one_warning() {
    let w = World::new("store-huge-token");
    let server = RedisServer::start();
    let file = arg(&w.file("h.txt", b"huge token entry"));
    let upload = || {
        let mut cmd = w.command();
        cmd.args([
            "--token-store",
            &server.url(),
            "--json",
            "upload",
            "file",
            &file,
        ]);
        let run: Run = cmd.output().unwrap().into();
        run
    };
    assert_clean(&upload(), "first run fills the store");
    let (key, _) = dump(&server)
        .into_iter()
        .find(|(_, value)| value.contains("token "))
        .expect("the token record");
    let huge = "T".repeat(10 * 1024 * 1024);
    let mut conn = server.connection();
    let () = redis::cmd("HSET")
        .arg(&key)
        .arg("token")
        .arg(&huge)
        .query(&mut conn)
        .unwrap();
    let run = upload();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let warnings = lines(&run.stderr);
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(
        warnings[0].contains("the stored token entry is unusable (access_token is 10485760 bytes"),
        "{}",
        warnings[0]
    );
    assert!(!run.stderr.contains("TTTTTTTT"));
    assert_eq!(
        w.mock.count(Endpoint::GetToken),
        2,
        "the run used a token of its own"
    );
}

/// A run refreshing the token for the others holds the store's lease for 10 s at most (a run
/// stopped with Ctrl-C mid-refresh holds the others up no longer than that), not the
/// library's default of 30 s.
#[test]
fn a_refreshing_run_holds_the_lease_for_10_s() {
    let w = World::new("store-lease");
    let server = RedisServer::start();
    let url = server.url();
    w.mock.fault(
        Endpoint::GetToken,
        wecom_material_mock::Fault::Delay {
            delay: std::time::Duration::from_secs(3),
            times: 1,
        },
    );
    let path = w.file("lease.txt", b"a slow gettoken");
    let mut cmd = w.command();
    cmd.args(["--token-store", &url, "upload", "file", &arg(&path)]);
    let child = spawn(cmd);
    let mut conn = server.connection();
    let waited = std::time::Instant::now();
    let lock = loop {
        let keys: Vec<String> = redis::cmd("KEYS").arg("*:lock").query(&mut conn).unwrap();
        if let Some(key) = keys.into_iter().next() {
            break key;
        }
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(10),
            "no lease taken"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let ttl: i64 = redis::cmd("PTTL").arg(&lock).query(&mut conn).unwrap();
    assert!((1..=10_000).contains(&ttl), "lease {ttl} ms");
    assert_clean(&finish(child), "the refreshing run");
    assert_eq!(w.mock.count(Endpoint::GetToken), 1);
}
