//! Issue 12, the CLI half: the built binary behaves like the transfer tools people know —
//! several files per call, standard input and output, output folders, `--quiet`, progress
//! counted from this run, the MB limit, completions and man pages. Each test runs the binary
//! against the emulator on 127.0.0.1.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{BIN, Run, World, arg};
use wecom_material_mock::{Endpoint, Fault};

const MIB: u64 = 1024 * 1024;

/// Runs `cmd` with `input` on its standard input (written from a thread, so a command that
/// stops reading early cannot block the test).
fn with_stdin(mut cmd: Command, input: Vec<u8>) -> Run {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    output.into()
}

/// The JSON Lines on stdout.
fn json_lines(run: &Run) -> Vec<serde_json::Value> {
    run.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

fn sorted_keys(value: &serde_json::Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

fn keys(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// A file of `len` bytes that takes no room (sparse): only its size matters.
fn sized_file(path: &Path, len: u64) {
    std::fs::File::create(path).unwrap().set_len(len).unwrap();
}

#[test]
fn upload_several_files_prints_json_lines_in_input_order() {
    let w = World::new("multi");
    let names = ["a.txt", "b.txt", "c.txt", "d.txt", "e.txt"];
    let paths: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| arg(&w.file(n, format!("file number {i}").as_bytes())))
        .collect();
    // The first upload to arrive is held back: its result comes last, its line stays first.
    w.mock.fault(
        Endpoint::Upload,
        Fault::Delay {
            delay: Duration::from_millis(300),
            times: 1,
        },
    );
    let run = w.run(
        ["--json", "upload", "file", "--jobs", "3"]
            .into_iter()
            .map(String::from)
            .chain(paths.iter().cloned()),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines = json_lines(&run);
    assert_eq!(lines.len(), names.len());
    for ((line, path), i) in lines.iter().zip(&paths).zip(0..) {
        assert_eq!(
            sorted_keys(line),
            keys(&["path", "type", "media_id", "created_at", "expires_at"])
        );
        assert_eq!(line["path"], path.as_str());
        let stored = w.mock.media(line["media_id"].as_str().unwrap()).unwrap();
        assert_eq!(&stored.bytes[..], format!("file number {i}").as_bytes());
        assert_eq!(stored.filename, names[i]);
    }
    // The threads share one client: one token between them.
    assert_eq!(w.mock.count(Endpoint::GetToken), 1);
    assert_eq!(w.mock.count(Endpoint::Upload), names.len());
}

#[test]
fn upload_several_files_reports_each_failure_and_exits_with_the_highest_status() {
    let w = World::new("multifail");
    let good = arg(&w.file("good.txt", b"a good file"));
    let tiny = arg(&w.file("tiny.txt", b"abc"));
    let api = arg(&w.file("api.txt", b"refused by WeCom"));
    let run = w.run([
        "--json",
        "upload",
        "file",
        "-j",
        "1",
        &good,
        &tiny,
        "missing.txt",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let lines = json_lines(&run);
    assert_eq!(lines.len(), 3);
    assert!(lines[0]["media_id"].is_string());
    for (line, path) in lines[1..].iter().zip([&tiny, "missing.txt"]) {
        assert_eq!(
            sorted_keys(line),
            keys(&["path", "error", "errcode", "exit"])
        );
        assert_eq!(line["path"], path);
        assert!(line["errcode"].is_null());
        assert_eq!(line["exit"], 2);
    }
    assert!(lines[2]["error"].as_str().unwrap().contains("missing.txt"));
    // Each failure is one line on stderr naming its file.
    assert_eq!(run.stderr.lines().count(), 2, "{}", run.stderr);
    assert!(run.stderr.contains(&format!("error: {tiny}: ")));

    // An API failure: its errcode, exit 1 (--jobs 1: in order, the fault meets the first).
    w.mock.fault(
        Endpoint::Upload,
        Fault::Errcode {
            code: 40058,
            times: 1,
        },
    );
    let run = w.run(["--json", "upload", "file", "--jobs", "1", &api, &good]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let lines = json_lines(&run);
    assert_eq!(lines[0]["path"], api.as_str());
    assert_eq!(lines[0]["errcode"], 40058);
    assert_eq!(lines[0]["exit"], 1);
    assert!(lines[1]["media_id"].is_string());

    // For people: one line per uploaded file, errors on stderr.
    let run = w.run(["upload", "file", &good, &tiny]);
    assert_eq!(run.code, 2);
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
    assert!(run.stdout.contains("media_id"), "{}", run.stdout);

    // --filename names one file; --jobs is at least 1.
    let run = w.run(["upload", "file", &good, &good, "--filename", "x.txt"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = w.run(["upload", "file", &good, "--jobs", "0"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[test]
fn upload_reads_standard_input_with_a_filename() {
    let w = World::new("stdin");
    let bytes = support::jpeg();
    let mut cmd = w.command();
    cmd.args([
        "--json",
        "upload",
        "image",
        "-",
        "--filename",
        "来自管道.jpg",
    ]);
    let run = with_stdin(cmd, bytes.clone());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json = run.json();
    assert_eq!(json["type"], "image");
    let stored = w.mock.media(json["media_id"].as_str().unwrap()).unwrap();
    assert_eq!(&stored.bytes[..], &bytes[..]);
    assert_eq!(stored.filename, "来自管道.jpg");

    // Without --filename, or with other paths: refused before anything is sent.
    let sent = w.mock.count(Endpoint::Upload);
    let mut cmd = w.command();
    cmd.args(["upload", "image", "-"]);
    let run = with_stdin(cmd, bytes.clone());
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--filename"), "{}", run.stderr);
    let mut cmd = w.command();
    cmd.args(["upload", "file", "-", "other.txt", "--filename", "x.txt"]);
    let run = with_stdin(cmd, bytes.clone());
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("must be the only PATH"),
        "{}",
        run.stderr
    );
    // Image bytes are checked as for a file.
    let mut cmd = w.command();
    cmd.args(["upload", "image", "-", "--filename", "x.jpg"]);
    let run = with_stdin(cmd, b"not an image at all".to_vec());
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(w.mock.count(Endpoint::Upload), sent);

    // Too big: reading stops at the limit + 1 byte; the MB limit and upload-by-url are named.
    let mut cmd = w.command();
    cmd.args(["upload", "voice", "-", "--filename", "v.amr"]);
    let size = 2 * MIB + 10;
    let run = with_stdin(cmd, vec![0; size as usize]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("2 MB limit for type voice"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("reading stopped after {} bytes", 2 * MIB + 1)),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("upload-by-url"), "{}", run.stderr);
    // Empty input: an error, never an empty upload.
    let mut cmd = w.command();
    cmd.args(["upload", "file", "-", "--filename", "e.bin"]);
    let run = with_stdin(cmd, Vec::new());
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("standard input is empty"),
        "{}",
        run.stderr
    );
    assert_eq!(w.mock.count(Endpoint::Upload), sent);
}

/// Issue 19: `upload file - --filename z.bin < /dev/zero` ran on past the 20 MB limit
/// (killed after 20 s); it must stop at the limit + 1 byte with a clear error.
#[cfg(unix)]
#[test]
fn endless_standard_input_is_refused_at_the_limit() {
    let w = World::new("devzero");
    let mut cmd = w.command();
    cmd.args(["upload", "file", "-", "--filename", "z.bin"]);
    let mut child = cmd
        .stdin(std::fs::File::open("/dev/zero").unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("still reading /dev/zero after 60 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let run: Run = child.wait_with_output().unwrap().into();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("over the 20 MB limit for type file"),
        "{}",
        run.stderr
    );
    assert_eq!(w.mock.count(Endpoint::Upload), 0);
}

#[test]
fn a_too_big_upload_names_the_limit_in_mb_and_points_at_upload_by_url() {
    let w = World::new("toobig");
    let path = w.dir.join("big.mp4");
    sized_file(&path, 10 * MIB + 1);
    let run = w.run(["upload", "video", &arg(&path)]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let line = run.stderr.trim_end();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.contains("10.00 MiB"), "{line}");
    assert!(line.contains("the 10 MB limit for type video"), "{line}");
    assert!(line.contains("wecom-material upload-by-url"), "{line}");
    // The same with --json, in the failure object.
    let run = w.run(["--json", "upload", "video", &arg(&path)]);
    assert_eq!(run.code, 2);
    assert!(
        run.json()["error"]
            .as_str()
            .unwrap()
            .contains("10 MB limit")
    );
    assert_eq!(w.mock.count(Endpoint::Upload), 0);
}

#[test]
fn get_writes_to_standard_output_with_dash() {
    let w = World::new("stdout");
    let bytes = support::pattern(2_500_000);
    let id = w
        .mock
        .insert_media(bytes.clone(), "application/octet-stream", "big.bin");
    let out = w
        .command()
        .args(["get", &id, "--output", "-"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout == bytes, "stdout is not the media");
    // Messages stay on stderr; no file named `-`, no partial file.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("to standard output"), "{stderr}");
    let names: Vec<_> = std::fs::read_dir(&w.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "cache")
        .collect();
    assert!(names.is_empty(), "{names:?}");

    // An error answer writes nothing on stdout.
    let run = w.run(["get", "no-such-media", "-o", "-"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stdout.is_empty());
    // Not with --json (stdout carries the media), not with several ids.
    let run = w.run(["--json", "get", &id, "-o", "-"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = w.run(["get", &id, &id, "-o", "-"]);
    assert_eq!(run.code, 2, "{}", run.stderr);

    // --deadline holds there too: a download of 10 s at this bandwidth ends after 1 s.
    w.mock.set_settings(wecom_material_mock::Settings {
        bandwidth: Some(250_000),
        ..w.mock.settings()
    });
    let started = std::time::Instant::now();
    let run = w.run(["get", &id, "-o", "-", "--deadline", "1"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("deadline of 1 s passed"),
        "{}",
        run.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(8));
}

#[test]
fn get_creates_output_directories() {
    let w = World::new("mkdirs");
    let bytes = b"hello, directories".to_vec();
    let id = w
        .mock
        .insert_media(bytes.clone(), "text/plain", "hello.txt");

    // A path ending in `/`: a directory, created with its parents.
    let run = w.run(["--json", "get", &id, "--output", "downloads/2026/"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let saved = w.dir.join("downloads/2026/hello.txt");
    assert_eq!(std::fs::read(&saved).unwrap(), bytes);
    assert_eq!(run.json()["path"], "downloads/2026/hello.txt");

    // An existing directory without the slash.
    let run = w.run(["get", &id, "--output", "downloads", "--force"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        std::fs::read(w.dir.join("downloads/hello.txt")).unwrap(),
        bytes
    );

    // Otherwise a file path whose parent directories are created.
    let run = w.run(["get", &id, "--output", "a/b/c/renamed.txt"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        std::fs::read(w.dir.join("a/b/c/renamed.txt")).unwrap(),
        bytes
    );
    assert!(!w.dir.join("a/b/c/renamed.txt").is_dir());
}

#[test]
fn get_several_ids_into_a_directory() {
    let w = World::new("multiget");
    let one = w
        .mock
        .insert_media(b"first media".to_vec(), "text/plain", "one.txt");
    let two = w
        .mock
        .insert_media(b"second media".to_vec(), "text/plain", "two.txt");
    let run = w.run(["--json", "get", &one, "no-such-media", &two, "-o", "out/"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let lines = json_lines(&run);
    assert_eq!(lines.len(), 3);
    assert_eq!(
        sorted_keys(&lines[0]),
        keys(&["media_id", "path", "filename", "content_type", "bytes"])
    );
    assert_eq!(lines[0]["media_id"], one.as_str());
    assert_eq!(lines[2]["media_id"], two.as_str());
    assert_eq!(
        sorted_keys(&lines[1]),
        keys(&["media_id", "error", "errcode", "exit"])
    );
    assert_eq!(lines[1]["errcode"], 40007);
    assert_eq!(lines[1]["exit"], 1);
    assert_eq!(
        std::fs::read(w.dir.join("out/one.txt")).unwrap(),
        b"first media"
    );
    assert_eq!(
        std::fs::read(w.dir.join("out/two.txt")).unwrap(),
        b"second media"
    );

    // Several ids and a file path: a usage error before any request.
    let gets = w.mock.count(Endpoint::Get);
    let run = w.run(["get", &one, &two, "--output", "single.txt"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("directory"), "{}", run.stderr);
    assert_eq!(w.mock.count(Endpoint::Get), gets);
    assert!(!w.dir.join("single.txt").exists());
}

/// Inserts the media until the emulator draws an id made of letters and digits only (one in
/// four is), so that the test can plant the part file under the id's own name.
fn safe_id(w: &World, bytes: &[u8]) -> String {
    loop {
        let id = w
            .mock
            .insert_media(bytes.to_vec(), "application/octet-stream", "big.bin");
        if id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return id;
        }
    }
}

#[test]
fn a_resumed_download_reports_only_the_bytes_of_this_run() {
    let w = World::new("resumespeed");
    let bytes = support::pattern(3 * MIB as usize);
    let id = safe_id(&w, &bytes);
    let done = MIB as usize;
    std::fs::write(w.dir.join(format!(".{id}.part")), &bytes[..done]).unwrap();
    // The record a run leaves next to its part file: without it a part is not resumed.
    let record = serde_json::json!({"version": 2, "media_id": id, "endpoint": "media", "total": bytes.len(), "done": [[0, done]]});
    std::fs::write(w.dir.join(format!(".{id}.part.json")), record.to_string()).unwrap();
    let run = w.run(["get", &id]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read(w.dir.join("big.bin")).unwrap(), bytes);
    // 2 MiB moved in this run, 1 MiB was on disk: the summary (and its speed) counts 2 MiB.
    assert!(
        run.stderr.contains(&format!("get {id}: 2.00 MiB in ")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("resumed at 1.00 MiB"), "{}", run.stderr);
    // The notice of the resume uses the same units.
    assert!(
        run.stderr.contains("continued an earlier run: 1.00 MiB"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(" MB"), "{}", run.stderr);
}

#[test]
fn quiet_drops_notices_and_progress_but_not_errors() {
    let w = World::new("quiet");
    let bytes = support::pattern(3 * MIB as usize);
    let id = safe_id(&w, &bytes);
    std::fs::write(w.dir.join(format!(".{id}.part")), &bytes[..1000]).unwrap();
    let record = serde_json::json!({"version": 2, "media_id": id, "endpoint": "media", "total": bytes.len(), "done": [[0, 1000]]});
    std::fs::write(w.dir.join(format!(".{id}.part.json")), record.to_string()).unwrap();
    let run = w.run(["--quiet", "get", &id]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    assert!(run.stdout.contains("saved"), "{}", run.stdout);
    assert_eq!(std::fs::read(w.dir.join("big.bin")).unwrap(), bytes);
    // Without it, the same run has notices; a run that resumed nothing says nothing of it.
    let run = w.run(["get", &id, "-o", "again.bin"]);
    assert!(!run.stderr.is_empty());
    assert!(!run.stderr.contains("continued"), "{}", run.stderr);
    // Errors are still printed.
    let run = w.run(["get", "no-such-media", "-q"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("40007"), "{}", run.stderr);
}

#[test]
fn completions_for_every_shell_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        for sub in ["upload-by-url", "upload-image", "hd-voice", "completions"] {
            assert!(script.contains(sub), "{shell} lacks {sub}");
        }
    }
    let out = Command::new(BIN)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    let script = String::from_utf8(out.stdout).unwrap();
    assert!(script.contains("-o default wecom-material"), "{script}");
    // The script is valid bash.
    if let Ok(checked) = Command::new("bash").arg("-n").stdin(Stdio::piped()).spawn() {
        let mut checked = checked;
        checked
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        assert!(
            checked.wait().unwrap().success(),
            "bash -n refuses the script"
        );
    }
    // An unknown shell: clap lists the accepted ones.
    let out = Command::new(BIN)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bash, elvish, fish, powershell, zsh"),
        "{stderr}"
    );
}

#[test]
fn manpage_writes_pages_that_render() {
    let dir = support::scratch("man");
    let out = Command::new(BIN)
        .arg("manpage")
        .arg(dir.join("man1"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let main = std::fs::read_to_string(dir.join("man1/wecom-material.1")).unwrap();
    assert!(main.starts_with(".ie"), "{}", &main[..80]);
    assert!(main.contains(".TH wecom-material 1"), "{main}");
    assert!(main.contains("upload\\-by\\-url"), "{main}");
    let upload = std::fs::read_to_string(dir.join("man1/wecom-material-upload.1")).unwrap();
    assert!(upload.contains("\\-\\-jobs"), "{upload}");
    // The hidden command itself gets no page.
    assert!(!dir.join("man1/wecom-material-manpage.1").exists());

    // Rendered by groff as man does (-k: preconv, for the UTF-8 text), without a warning.
    let rendered = Command::new("groff")
        .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
        .arg(dir.join("man1/wecom-material.1"))
        .output();
    if let Ok(rendered) = rendered {
        assert!(rendered.status.success());
        let warnings = String::from_utf8_lossy(&rendered.stderr);
        assert!(warnings.trim().is_empty(), "groff warns: {warnings}");
        let text = Command::new("groff")
            .args(["-k", "-man", "-Tutf8"])
            .arg(dir.join("man1/wecom-material.1"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains("wecom-material-upload-by-url(1)"), "{text}");
        assert!(text.contains("企业微信"), "{text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn several_large_uploads_each_end_with_a_summary_on_stderr() {
    let w = World::new("multisummary");
    let a = arg(&w.file("a.bin", &support::pattern(1_572_864)));
    let b = arg(&w.file("b.bin", &support::pattern(1_572_864)));
    let run = w.run(["upload", "file", &a, &b]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 2, "{}", run.stdout);
    for path in [&a, &b] {
        assert!(
            run.stderr.contains(&format!("upload {path}: 1.50 MiB in ")),
            "{}",
            run.stderr
        );
    }
    // --quiet drops them; the results stay.
    let run = w.run(["-q", "upload", "file", &a, &b]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 2, "{}", run.stdout);
}

#[test]
fn jobs_1_uploads_one_file_after_the_other() {
    let w = World::new("jobs1");
    let paths: Vec<String> = [100, 200, 300]
        .iter()
        .enumerate()
        .map(|(i, n)| arg(&w.file(&format!("f{i}.txt"), &support::pattern(*n))))
        .collect();
    // The first upload is held back; the emulator records a request when it has answered, so
    // a second upload sent alongside it would be recorded before it.
    w.mock.fault(
        Endpoint::Upload,
        Fault::Delay {
            delay: Duration::from_millis(300),
            times: 1,
        },
    );
    let run = w.run(
        ["--json", "upload", "file", "--jobs", "1"]
            .into_iter()
            .map(String::from)
            .chain(paths.iter().cloned()),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let sizes: Vec<u64> = w
        .mock
        .requests_to(Endpoint::Upload)
        .iter()
        .map(|r| r.body_len)
        .collect();
    assert_eq!(sizes.len(), 3);
    assert!(
        sizes.windows(2).all(|p| p[0] < p[1]),
        "sent out of order: {sizes:?}"
    );
}

#[test]
fn a_bad_md5_is_refused_without_blaming_its_case() {
    let w = World::new("badmd5");
    let url = "http://127.0.0.1:1/x.mp4";
    let base = [
        "upload-by-url",
        "video",
        "--url",
        url,
        "--filename",
        "x.mp4",
    ];
    let run = w.run(base.iter().copied().chain(["--md5", "ABC"]));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("--md5 must be 32 hex digits, in either case (got 3 characters)"),
        "{}",
        run.stderr
    );
    // 32 characters, one of them not hex.
    let run = w.run(
        base.iter()
            .copied()
            .chain(["--md5", &format!("{}G", "A".repeat(31))]),
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(w.mock.count(Endpoint::UploadByUrl), 0);
}
