//! Every command of the built binary against the emulator: results, `--json` field names
//! (issue 6), exit codes, downloads (`--force`, resume), the token cache and secrecy.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use support::{BIN, CORP_ID, SECRET, World, arg};
use wecom_material_mock::{Endpoint, Fault};

fn keys(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// One line on stderr that names the code and its meaning.
fn assert_one_line_error(run: &support::Run, needles: &[&str]) {
    let text = run.stderr.trim_end();
    assert_eq!(text.lines().count(), 1, "stderr: {:?}", run.stderr);
    for n in needles {
        assert!(text.contains(n), "stderr {text:?} lacks {n:?}");
    }
}

#[test]
fn upload_every_type_prints_the_json_fields_of_the_issue() {
    let w = World::new("upload");
    let cases = [
        ("image", "photo.jpg", support::jpeg()),
        ("voice", "hello.amr", support::amr()),
        ("video", "clip.mp4", support::mp4()),
        (
            "file",
            "季度报告.txt",
            "第一季度报告\n".repeat(10).into_bytes(),
        ),
    ];
    for (kind, name, bytes) in cases {
        let path = w.file(name, &bytes);
        let run = w.run(["--json", "upload", kind, &arg(&path)]);
        assert_eq!(run.code, 0, "{kind}: {}", run.stderr);
        assert_eq!(
            run.keys(),
            keys(&["type", "media_id", "created_at", "expires_at"])
        );
        let json = run.json();
        assert_eq!(json["type"], kind);
        let created = json["created_at"].as_u64().expect("integer created_at");
        let expires = json["expires_at"].as_u64().expect("integer expires_at");
        assert_eq!(expires - created, 3 * 24 * 3600);
        let stored = w.mock.media(json["media_id"].as_str().unwrap()).unwrap();
        assert_eq!(&stored.bytes[..], &bytes[..]);
        assert_eq!(stored.filename, name);
    }
    // --filename overrides the display name; without --json the output is for people.
    let path = w.file("x.bin", b"0123456789");
    let run = w.run(["upload", "file", &arg(&path), "--filename", "名字.txt"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("media_id"), "{}", run.stdout);
}

#[test]
fn upload_image_prints_the_url() {
    let w = World::new("uploadimg");
    let path = w.file("logo.png", &support::png());
    let run = w.run(["--json", "upload-image", &arg(&path)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.keys(), keys(&["url"]));
    assert!(
        run.json()["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1")
    );
}

#[test]
fn validation_failures_exit_2_and_send_nothing() {
    let w = World::new("validation");
    let mp4 = w.file("clip.mp4", &support::mp4());
    let not_amr = w.file("voice.amr", &support::mp4());
    let tiny = w.file("tiny.txt", b"abc");
    let empty = w.file("empty.txt", b"");
    let cases: Vec<Vec<String>> = vec![
        vec!["upload".into(), "image".into(), arg(&mp4)],
        vec!["upload".into(), "voice".into(), arg(&not_amr)],
        vec!["upload".into(), "file".into(), arg(&tiny)],
        vec!["upload".into(), "file".into(), arg(&empty)],
        vec!["upload".into(), "file".into(), "no-such-file".into()],
        vec!["upload".into(), "audio".into(), arg(&mp4)],
        vec!["upload-image".into(), arg(&mp4)],
        vec![
            "upload-by-url".into(),
            "video".into(),
            "--url".into(),
            "http://127.0.0.1:1/x.mp4".into(),
            "--filename".into(),
            "x.mp4".into(),
            "--md5".into(),
            "NOT-HEX".into(),
        ],
        vec![
            "upload-by-url".into(),
            "video".into(),
            "--url".into(),
            "http://127.0.0.1:1/x.mp4".into(),
            "--filename".into(),
            "x.mp4".into(),
        ],
    ];
    for args in cases {
        let run = w.run(&args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
        // clap's usage errors are printed whole (see usage_errors_…); ours are one line.
        if !run.stderr.contains("For more information, try '--help'.") {
            assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
        }
        assert!(run.stdout.is_empty());
    }
    // A directory where a file is read: refused as not a file, whatever the command.
    let dir = arg(&w.dir);
    let url_args = [
        "--url",
        "http://127.0.0.1:1/x",
        "--filename",
        "x",
        "--md5-of",
    ];
    for args in [
        &["upload", "file", &dir][..],
        &["upload", "video", &dir, &dir],
        &["upload-image", &dir],
        &[&["upload-by-url", "file"][..], &url_args, &[&dir]].concat(),
    ] {
        let run = w.run(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        let expected = format!("{dir} is not a file");
        assert!(run.stderr.contains(&expected), "{args:?}: {}", run.stderr);
    }
    // Missing credentials are a usage error too.
    let run: support::Run = Command::new(BIN)
        .env_remove("WECOM_CORP_ID")
        .env_remove("WECOM_SECRET")
        .args(["--base-url", &w.mock.base_url(), "job", "jobid_x"])
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        w.mock.requests().is_empty(),
        "requests sent: {:?}",
        w.mock.requests()
    );
}

#[test]
fn api_error_exits_1_with_the_errcode_on_one_line() {
    let w = World::new("apierror");
    let run = w.run(["get", "no-such-media"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_one_line_error(&run, &["40007", "invalid media_id"]);
    // No file, no temporary file left.
    let names: Vec<_> = std::fs::read_dir(&w.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "cache")
        .collect();
    assert!(names.is_empty(), "{names:?}");

    // A wrong secret: 40001 from gettoken.
    let run: support::Run = w
        .command()
        .env("WECOM_SECRET", "wrong-secret")
        .args(["job", "jobid_x"])
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 1);
    assert_one_line_error(&run, &["40001"]);
    assert!(!run.stderr.contains("wrong-secret"));
}

#[test]
fn get_saves_under_the_server_filename_and_never_overwrites_without_force() {
    let w = World::new("get");
    let bytes = "你好，世界\n".repeat(100).into_bytes();
    let id = w.mock.insert_media(bytes.clone(), "text/plain", "测试.txt");
    let out = w.dir.join("out");
    std::fs::create_dir(&out).unwrap();

    let run = w.run(["--json", "get", &id, "--output", &arg(&out)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.keys(),
        keys(&["path", "filename", "content_type", "bytes"])
    );
    let json = run.json();
    assert_eq!(json["filename"], "测试.txt");
    assert_eq!(json["bytes"].as_u64(), Some(bytes.len() as u64));
    assert!(
        json["content_type"]
            .as_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let saved = out.join("测试.txt");
    assert_eq!(json["path"].as_str().unwrap(), arg(&saved));
    assert_eq!(std::fs::read(&saved).unwrap(), bytes);

    // Again into the same directory: refused, the file is untouched, nothing left behind.
    std::fs::write(&saved, b"mine").unwrap();
    let run = w.run(["get", &id, "--output", &arg(&out)]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--force"), "{}", run.stderr);
    assert_eq!(std::fs::read(&saved).unwrap(), b"mine");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);

    // An explicit existing path is refused before any request.
    let gets = w.mock.count(Endpoint::Get);
    let run = w.run(["get", &id, "--output", &arg(&saved)]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(w.mock.count(Endpoint::Get), gets);

    // --force replaces it.
    let run = w.run(["get", &id, "--output", &arg(&saved), "--force"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read(&saved).unwrap(), bytes);
    let run = w.run(["get", &id, "--output", &arg(&out), "--force"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);

    // Default output directory: the working directory; a new explicit path works too.
    let run = w.run(["get", &id]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read(w.dir.join("测试.txt")).unwrap(), bytes);
    let run = w.run(["get", &id, "--output", "copy.bin"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read(w.dir.join("copy.bin")).unwrap(), bytes);
}

#[test]
fn get_resumes_a_partial_file_left_by_an_interrupted_run() {
    let w = World::new("resume");
    let bytes = support::pattern(3_000_000);
    // The part file is `.<id>.part` only for an id without `+ / =` (the emulator draws such
    // ids among others: one in four at the latest).
    let id = std::iter::repeat_with(|| {
        w.mock
            .insert_media(bytes.clone(), "application/octet-stream", "big.bin")
    })
    .take(4)
    .find(|id| {
        id.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
    })
    .expect("a URL-safe id");
    let part = w.dir.join(format!(".{id}.part"));
    assert!(
        id.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
    );
    // A run that breaks after 1.2 MB and then cannot reconnect (1 try + 2 retries) keeps its
    // part file, with the record that makes it resumable.
    w.mock.fault(
        Endpoint::Get,
        Fault::DropMidBody {
            after_bytes: 1_234_567,
            times: 1,
        },
    );
    w.mock
        .fault(Endpoint::Get, Fault::DropBeforeBody { times: 3 });
    let run = w.run(["get", &id]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("partial download kept"),
        "{}",
        run.stderr
    );
    // The record names the intervals that arrived (the part holds them at their offsets).
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.dir.join(format!(".{id}.part.json"))).unwrap())
            .unwrap();
    let kept: Vec<(usize, usize)> = serde_json::from_value(record["done"].clone()).unwrap();
    let on_disk = std::fs::read(&part).unwrap();
    assert!(!kept.is_empty());
    for &(s, e) in &kept {
        assert_eq!(on_disk[s..e], bytes[s..e]);
    }
    w.mock.clear_requests();

    let run = w.run(["--json", "get", &id]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["bytes"].as_u64(), Some(bytes.len() as u64));
    assert_eq!(std::fs::read(w.dir.join("big.bin")).unwrap(), bytes);
    assert!(!part.exists());
    // Only the missing bytes were asked for.
    let mut fetched = 0;
    for get in w.mock.requests_to(Endpoint::Get) {
        let range = get.headers.get("range").expect("a Range header");
        let range = range.to_str().unwrap().trim_start_matches("bytes=");
        let (a, b) = range.split_once('-').unwrap();
        let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse::<usize>().unwrap() + 1);
        assert!(
            kept.iter().all(|&(s, e)| b <= s || a >= e),
            "{a}..{b} refetched"
        );
        fetched += b - a;
    }
    let kept_len: usize = kept.iter().map(|(s, e)| e - s).sum();
    assert_eq!(fetched, bytes.len() - kept_len);

    // A partial file that is already complete (killed before the rename) is fetched again.
    std::fs::write(&part, &bytes).unwrap();
    let run = w.run(["get", &id, "--output", "again.bin"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read(w.dir.join("again.bin")).unwrap(), bytes);
    assert!(!part.exists());
}

#[test]
fn hd_voice_downloads_from_jssdk() {
    let w = World::new("hdvoice");
    let id = w.mock.insert_media(support::amr(), "audio/amr", "v.amr");
    let run = w.run(["--json", "hd-voice", &id]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.keys(),
        keys(&["path", "filename", "content_type", "bytes"])
    );
    let json = run.json();
    // A relative path, relative to the working directory of the run.
    let path = w.dir.join(json["path"].as_str().unwrap());
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        json["bytes"].as_u64().unwrap()
    );
    assert_eq!(w.mock.count(Endpoint::GetJssdk), 1);
    assert_eq!(w.mock.count(Endpoint::Get), 0);

    // To standard output: from jssdk too.
    let out = w
        .command()
        .args(["hd-voice", &id, "-o", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout == support::amr(), "stdout is not the media");
    assert_eq!(w.mock.count(Endpoint::GetJssdk), 2);
    assert_eq!(w.mock.count(Endpoint::Get), 0);
}

#[test]
fn upload_by_url_then_job_and_wait() {
    let w = World::new("byurl");
    let bytes = support::pattern(300_000);
    let local = w.file("local.bin", &bytes);
    let url = w.mock.serve_file("files/report.bin", bytes.clone(), true);

    let run = w.run([
        "--json",
        "upload-by-url",
        "file",
        "--url",
        &url,
        "--filename",
        "report.bin",
        "--md5-of",
        &arg(&local),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.keys(), keys(&["jobid"]));
    let jobid = run.json()["jobid"].as_str().unwrap().to_owned();

    // `job --json` and `upload-by-url --wait --json` print the same fields (issue 12).
    let job_fields = keys(&[
        "jobid",
        "status",
        "media_id",
        "created_at",
        "expires_at",
        "errcode",
        "errmsg",
    ]);
    let run = w.run(["--json", "job", &jobid, "--wait"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.keys(), job_fields);
    let json = run.json();
    assert_eq!(json["status"], "finished");
    assert_eq!(json["jobid"], jobid.as_str());
    assert_eq!(json["errcode"], 0);
    let (created, expires) = (json["created_at"].as_u64(), json["expires_at"].as_u64());
    assert_eq!(expires.unwrap() - created.unwrap(), 3 * 24 * 3600);
    let media_id = json["media_id"].as_str().unwrap();
    assert_eq!(&w.mock.media(media_id).unwrap().bytes[..], &bytes[..]);

    // --wait in one go; the MD5 given directly, in capitals: accepted, sent lowercase.
    let md5 = wecom_material_ureq::md5_file(&local)
        .unwrap()
        .to_ascii_uppercase();
    let run = w.run([
        "--json",
        "upload-by-url",
        "file",
        "--url",
        &url,
        "--filename",
        "report.bin",
        "--md5",
        &md5,
        "--wait",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.keys(), job_fields);
    assert_eq!(run.json()["status"], "finished");
    assert!(run.json()["created_at"].is_u64());
    assert!(run.json()["expires_at"].is_u64());
    // The core refuses anything but lowercase hex, and the emulator compares the MD5 with
    // the file's: a finished job means the capitals were sent lowercase.
    assert!(md5.chars().any(|c| c.is_ascii_uppercase()));

    // A job that fails (MD5 mismatch): `job` reports it, `--wait` exits 1 with the errcode.
    let run = w.run([
        "--json",
        "upload-by-url",
        "file",
        "--url",
        &url,
        "--filename",
        "report.bin",
        "--md5",
        &"0".repeat(32),
        "--wait",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_one_line_error(&run, &["301019"]);
    // One object on stdout: the job's fields and the failure's.
    let mut with_failure = job_fields.clone();
    with_failure.extend(["error".to_owned(), "exit".to_owned()]);
    with_failure.sort();
    assert_eq!(run.keys(), with_failure);
    let json = run.json();
    assert_eq!(json["status"], "failed");
    assert_eq!(json["errcode"], 301019);
    assert_eq!(json["exit"], 1);
    assert!(json["error"].as_str().unwrap().contains("301019"));

    // Unknown job: an API error; with --json, the failure object on stdout too.
    let run = w.run(["job", "jobid_unknown"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stdout.is_empty());
    let run = w.run(["--json", "job", "jobid_unknown"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.keys(), keys(&["error", "errcode", "exit"]));
    assert_eq!(run.json()["exit"], 1);
    assert!(run.json()["errcode"].is_i64(), "{}", run.stdout);
}

#[test]
fn one_gettoken_across_runs_and_a_private_cache_without_the_secret() {
    let w = World::new("tokencache");
    let path = w.file("a.txt", b"hello, token cache");
    for _ in 0..3 {
        let run = w.run(["upload", "file", &arg(&path)]);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let run = w.run(["job", "jobid_unknown"]);
    assert_eq!(run.code, 1);
    assert_eq!(w.mock.count(Endpoint::GetToken), 1);
    assert_eq!(w.mock.count(Endpoint::Upload), 3);

    let text = std::fs::read_to_string(&w.cache).unwrap();
    assert!(!text.contains(SECRET), "the secret is in the cache file");
    let token = w.mock.access_token(CORP_ID).unwrap();
    assert!(text.contains(&token), "the cache holds the token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&w.cache).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    }

    // A revoked token: one refresh (40014), the new token replaces the old one in the file.
    w.mock.revoke_tokens();
    let run = w.run(["upload", "file", &arg(&path)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(w.mock.count(Endpoint::GetToken), 2);
    let new_token = w.mock.access_token(CORP_ID).unwrap();
    assert_ne!(new_token, token);
    assert!(
        std::fs::read_to_string(&w.cache)
            .unwrap()
            .contains(&new_token)
    );
}

#[test]
fn verbose_logs_requests_without_secret_or_token() {
    let w = World::new("verbose");
    let path = w.file("a.jpg", &support::jpeg());
    let first = w.run(["-v", "--json", "upload", "image", &arg(&path)]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let id = first.json()["media_id"].as_str().unwrap().to_owned();
    let second = w.run(["-v", "get", &id, "--output", "b.jpg"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let token = w.mock.access_token(CORP_ID).unwrap();
    assert!(first.stderr.contains("GET ") && first.stderr.contains("/cgi-bin/gettoken"));
    assert!(first.stderr.contains("POST ") && first.stderr.contains("/cgi-bin/media/upload"));
    assert!(first.stderr.contains("***"), "{}", first.stderr);
    assert!(second.stderr.contains("/cgi-bin/media/get"));
    for run in [&first, &second] {
        for text in [&run.stdout, &run.stderr] {
            assert!(!text.contains(SECRET), "secret printed: {text}");
            assert!(!text.contains(&token), "token printed: {text}");
        }
    }
}

/// Runs the binary with `args` and nothing else (no settings, no emulator).
fn bare<I, S>(args: I) -> support::Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(BIN)
        .env_remove("WECOM_BASE_URL")
        .env_remove("WECOM_CORP_ID")
        .env_remove("WECOM_SECRET")
        .args(args)
        .output()
        .unwrap()
        .into()
}

#[test]
fn usage_errors_print_clap_s_whole_message_and_exit_2() {
    // "Did you mean": the tip survives.
    let run = bare(["uplod", "file", "x"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("unrecognized subcommand 'uplod'"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("tip:") && run.stderr.contains("'upload'"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
    // The accepted values of an argument.
    let run = bare(["upload", "audio", "x"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("invalid value 'audio' for '<TYPE>'"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("[possible values: image, voice, video, file]"),
        "{}",
        run.stderr
    );
    // Which required argument is missing.
    let run = bare(["get"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("<MEDIA_ID>..."), "{}", run.stderr);
    // With --json, the failure object on stdout too.
    let run = bare(["--json", "upload", "audio", "x"]);
    assert_eq!(run.code, 2);
    assert_eq!(run.keys(), keys(&["error", "errcode", "exit"]));
    let json = run.json();
    assert_eq!(json["exit"], 2);
    assert!(json["errcode"].is_null());
    assert!(
        json["error"].as_str().unwrap().contains("'audio'"),
        "{json}"
    );
    // --help and --version: stdout, exit 0.
    let run = bare(["--help"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("upload-by-url"));
    assert!(run.stdout.contains("--quiet"));
}

#[test]
fn no_arguments_print_the_help_and_exit_2() {
    let run = bare(Vec::<String>::new());
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("Usage: wecom-material"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("upload-by-url"), "{}", run.stderr);
    assert!(run.stderr.contains("Commands:"), "{}", run.stderr);
}

#[test]
fn json_failures_print_one_object_on_stdout() {
    let w = World::new("jsonfail");
    // An API error: errcode and exit 1.
    let run = w.run(["--json", "get", "no-such-media"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_one_line_error(&run, &["40007"]);
    assert_eq!(run.keys(), keys(&["error", "errcode", "exit"]));
    let json = run.json();
    assert_eq!(json["errcode"], 40007);
    assert_eq!(json["exit"], 1);
    assert!(json["error"].as_str().unwrap().contains("invalid media_id"));
    // A validation error: no errcode, exit 2, nothing sent.
    let run = w.run(["--json", "upload", "file", "no-such-file"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let json = run.json();
    assert!(json["errcode"].is_null());
    assert_eq!(json["exit"], 2);
    assert!(json["error"].as_str().unwrap().contains("no-such-file"));
    // Without --json, stdout stays empty.
    let run = w.run(["upload", "file", "no-such-file"]);
    assert_eq!(run.code, 2);
    assert!(run.stdout.is_empty());
}

#[test]
fn callback_decrypt_official_vectors_and_a_job_event() {
    // The URL check vector of SPEC §8.
    let base = [
        "--token",
        "QDG6eK",
        "--aes-key",
        "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
        "--receive-id",
        "wx5823bf96d3bd56c7",
    ];
    let run: support::Run = Command::new(BIN)
        .args(["--json", "callback", "decrypt"])
        .args(base)
        .args([
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
    assert_eq!(run.keys(), keys(&["plaintext", "event", "job_id"]));
    let json = run.json();
    assert_eq!(json["plaintext"], "1616140317555161061");
    assert!(json["event"].is_null() && json["job_id"].is_null());

    // A job-finished event delivered as XML on stdin.
    use wecom_material_core::JobId;
    use wecom_material_core::callback::{
        CallbackConfig, build_event_request, event_xml_upload_media_job_finish,
    };
    let config = CallbackConfig::new(
        "QDG6eK",
        "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
        "wx5823bf96d3bd56c7",
    )
    .unwrap();
    let xml = event_xml_upload_media_job_finish(
        "wx5823bf96d3bd56c7",
        1_425_284_517,
        &JobId::new("jobid_cli_1"),
    );
    let request = build_event_request(
        &config,
        &"http://127.0.0.1:9/cb".parse().unwrap(),
        "1409659813",
        "1372623149",
        [7; 16],
        &xml,
    )
    .unwrap();
    let query = request.uri().query().unwrap().to_owned();
    let signature = query
        .split('&')
        .find_map(|p| p.strip_prefix("msg_signature="))
        .unwrap()
        .to_owned();
    let decrypt = |signature: &str| -> support::Run {
        let mut child = Command::new(BIN)
            .args(["--json", "callback", "decrypt"])
            .args(base)
            .args([
                "--signature",
                signature,
                "--timestamp",
                "1409659813",
                "--nonce",
                "1372623149",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(request.body())
            .unwrap();
        child.wait_with_output().unwrap().into()
    };
    let run = decrypt(&signature);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json = run.json();
    assert_eq!(json["event"], "upload_media_job_finish");
    assert_eq!(json["job_id"], "jobid_cli_1");
    assert!(json["plaintext"].as_str().unwrap().contains("jobid_cli_1"));

    // A wrong signature is refused: exit 2.
    let run = decrypt(&"0".repeat(40));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.stderr.trim_end().lines().count(), 1);
}

#[test]
fn mock_prints_its_base_url_first_and_serves_the_other_commands() {
    /// Stops the emulator process even when an assertion fails.
    struct Stop(std::process::Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Stop(
        Command::new(BIN)
            .args([
                "mock",
                "--corp-id",
                "ww-standalone",
                "--secret",
                "standalone-secret",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut first = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let base = first.trim().to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{first:?}");
    let dir = support::scratch("mockcmd");
    std::fs::write(dir.join("a.txt"), b"hello, standalone emulator").unwrap();
    let run: support::Run = Command::new(BIN)
        .current_dir(&dir)
        .env("WECOM_BASE_URL", &base)
        .env("WECOM_CORP_ID", "ww-standalone")
        .env("WECOM_SECRET", "standalone-secret")
        .env("WECOM_TOKEN_CACHE", dir.join("tokens.json"))
        .args(["--json", "upload", "file", "a.txt"])
        .output()
        .unwrap()
        .into();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["type"], "file");
}

#[test]
fn demo_exits_0() {
    let run: support::Run = Command::new(BIN)
        .arg("demo")
        .env_remove("WECOM_BASE_URL")
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("same MD5"), "{}", run.stdout);
    assert!(run.stdout.contains("季度报告.txt"), "{}", run.stdout);
    // The job's wait was ended by its callback (the poll fallback is 10 s away).
    assert!(run.stdout.contains("callback after "), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("callback receiver at http://127.0.0.1:"),
        "{}",
        run.stderr
    );
    for secret in [
        "mock-secret",
        "wecom-material-demo",
        "d2Vjb20tbWF0ZXJpYWwgZGVtbyBjYWxsYmFjayBrZXk",
    ] {
        assert!(!run.stdout.contains(secret), "{secret}");
        assert!(!run.stderr.contains(secret), "{secret}");
    }
}

/// Issue 19: `upload --deadline SECS` gives each upload an overall limit. The emulator holds
/// the upload request for 3 s; the 1 s deadline ends it: exit 1, one line naming the upload's
/// deadline and how far it got, nothing on stdout.
#[test]
fn upload_with_a_deadline_ends_with_the_deadline_error() {
    let w = World::new("upload-deadline");
    let path = w.file("a.bin", &support::pattern(100_000));
    let delay = std::time::Duration::from_secs(3);
    w.mock
        .fault(Endpoint::Upload, Fault::Delay { delay, times: 1 });
    let run = w.run(["upload", "file", &arg(&path), "--deadline", "1"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_one_line_error(
        &run,
        &[
            "upload's deadline of 1 s passed after",
            "of 100000 payload bytes were sent",
        ],
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

/// A command that does not stop itself on a signal (here `job --wait`) is ended by SIGINT,
/// SIGTERM or SIGHUP with 128 + the signal, as the default action would, after the token it
/// fetched was saved: the next run makes no gettoken.
#[cfg(unix)]
#[test]
fn a_signal_ends_a_waiting_job_with_128_plus_it_after_saving_the_token() {
    let w = World::new("job-signal");
    let bytes = support::pattern(100_000);
    let local = w.file("local.bin", &bytes);
    // The job fetches a file held back until the end: it stays processing.
    let (url, gate) = w.mock.serve_file_gated("files/held.bin", bytes);
    let run = w.run([
        "--json",
        "upload-by-url",
        "file",
        "--url",
        &url,
        "--filename",
        "held.bin",
        "--md5-of",
        &arg(&local),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let jobid = run.json()["jobid"].as_str().unwrap().to_owned();
    for (signal, exit) in [("INT", 130), ("TERM", 143), ("HUP", 129)] {
        std::fs::remove_file(&w.cache).unwrap();
        let gettokens = w.mock.count(Endpoint::GetToken);
        let polls = w.mock.count(Endpoint::GetUploadByUrlResult);
        let child = w
            .command()
            .args(["job", &jobid, "--wait"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Once it polls, it holds its token.
        let waited = std::time::Instant::now();
        while w.mock.count(Endpoint::GetUploadByUrlResult) == polls {
            assert!(waited.elapsed() < std::time::Duration::from_secs(20));
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let status = Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let run: support::Run = child.wait_with_output().unwrap().into();
        assert_eq!(run.code, exit, "SIG{signal}: {}", run.stderr);
        assert_eq!(w.mock.count(Endpoint::GetToken), gettokens + 1);
        let token = w.mock.access_token(CORP_ID).unwrap();
        let cache = std::fs::read_to_string(&w.cache).unwrap();
        assert!(cache.contains(&token), "SIG{signal}: {cache}");
    }
    gate.open();
}

/// `callback decrypt` reads at most 1 MiB of stdin (WeCom's deliveries are a few kB): one
/// byte more is refused as too large; exactly 1 MiB is read, and refused only for what it
/// holds.
#[test]
fn callback_decrypt_reads_at_most_1_mib_of_stdin() {
    let decrypt = |body: Vec<u8>| -> support::Run {
        let mut child = Command::new(BIN)
            .args(["callback", "decrypt", "--token", "QDG6eK"])
            .args(["--aes-key", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"])
            .args(["--receive-id", "wx5823bf96d3bd56c7", "--signature", "0"])
            .args(["--timestamp", "1409659813", "--nonce", "1372623149"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&body);
        });
        let run = child.wait_with_output().unwrap().into();
        writer.join().unwrap();
        run
    };
    const MIB: usize = 1024 * 1024;
    let run = decrypt(vec![b'x'; MIB + 1]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the body on stdin is larger than 1 MiB"),
        "{}",
        run.stderr
    );
    let run = decrypt(vec![b'x'; MIB]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("the body on stdin: "), "{}", run.stderr);
    assert!(!run.stderr.contains("larger"), "{}", run.stderr);
}

/// `job` without --json prints the state for people: processing, finished with the media id
/// and times, failed with the errcode; a --wait that runs out of time exits 1 saying how long
/// it waited.
#[test]
fn job_states_for_people_and_a_wait_that_runs_out_of_time() {
    let w = World::new("job-text");
    let bytes = support::pattern(50_000);
    let local = w.file("local.bin", &bytes);
    let start = |url: &str, md5: &[&str]| -> String {
        let args = [&["--json", "upload-by-url", "file", "--url", url][..], md5].concat();
        let run = w.run([&args[..], &["--filename", "j.bin"]].concat());
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.json()["jobid"].as_str().unwrap().to_owned()
    };
    let (url, gate) = w.mock.serve_file_gated("files/later.bin", bytes.clone());
    let held = start(&url, &["--md5-of", &arg(&local)]);

    let run = w.run(["job", &held]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, format!("job {held}: processing\n"));
    let run = w.run(["job", &held, "--wait", "--timeout", "1"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.stdout, format!("job {held}: processing\n"));
    assert_eq!(
        run.stderr,
        format!("error: job {held} still processing after 1 s\n")
    );

    gate.open();
    let finished = w
        .mock
        .wait_for_job(&held, std::time::Duration::from_secs(10));
    let Some(wecom_material_mock::JobStatus::Finished { media_id, .. }) = finished else {
        panic!("the job ends once the file is released: {finished:?}");
    };
    let run = w.run(["job", &held]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", run.stdout);
    assert_eq!(lines[0], format!("job {held}: finished"));
    assert_eq!(lines[1], format!("media_id   {media_id}"));
    assert!(lines[2].starts_with("created_at 20") && lines[2].ends_with(" UTC"));
    assert!(lines[3].starts_with("expires_at 20") && lines[3].ends_with(" UTC"));

    let served = w.mock.serve_file("files/now.bin", bytes, true);
    let failed = start(&served, &["--md5", &"0".repeat(32)]);
    w.mock
        .wait_for_job(&failed, std::time::Duration::from_secs(10));
    let run = w.run(["job", &failed]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with(&format!("job {failed}: failed with WeCom errcode 301019 (")),
        "{}",
        run.stdout
    );
}
