//! `upload … --via s3://BUCKET/PREFIX/` (issue 21): a video or file over the direct limit goes
//! through a real S3 server that checks SigV4 (`s3s-fs`, started per test on a free loopback
//! port and stopped by PID; `scripts/ensure-s3` installs it) into the emulator's upload by
//! URL. The library's tests (`wecom-material-ureq/tests/relay.rs`) run the 150 MB round trip
//! and the cancel; these check what the command adds: the AWS variables, the notice, the
//! JSON, the exit statuses and that no secret is printed.

mod support;

use std::process::Command;

use support::{CORP_ID, SECRET, World};
use wecom_material_mock::MockConfig;
use wecom_material_mock::s3_server::{ACCESS_KEY, REGION, S3Server, SECRET_KEY};
use wecom_material_mock::samples::write_large;

const BUCKET: &str = "wecom-cli-relay";
const VIA: &str = "s3://wecom-cli-relay/uploads/";
const SESSION_TOKEN: &str = "FwoGZXIvYXdzEJr-session-TOKEN-7c1d";

/// The command with the AWS variables of `s3` (and `secret` as the secret key).
fn relayed(w: &World, s3: &S3Server, secret: &str) -> Command {
    let mut cmd = w.command();
    for name in [
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "WECOM_RELAY",
    ] {
        cmd.env_remove(name);
    }
    cmd.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_ENDPOINT_URL_S3", s3.endpoint());
    cmd
}

fn run(mut cmd: Command, args: &[&str]) -> support::Run {
    cmd.args(args).output().expect("run the binary").into()
}

fn big_file(w: &World, name: &str, len: u64, seed: u64) -> String {
    let path = w.dir.join(name);
    write_large(&path, len, seed).unwrap();
    path.display().to_string()
}

fn assert_no_secret(run: &support::Run, token: Option<&str>) {
    for text in [&run.stdout, &run.stderr] {
        for secret in [SECRET_KEY, SESSION_TOKEN, SECRET] {
            assert!(!text.contains(secret), "secret printed: {text}");
        }
        if let Some(token) = token {
            assert!(!text.contains(token), "token printed: {text}");
        }
        // A presigned URL's signature follows `X-Amz-Signature=`: only ever masked.
        let mut signatures = text.split("X-Amz-Signature=").skip(1);
        assert!(
            signatures.all(|rest| rest.starts_with("***")),
            "signature printed: {text}"
        );
    }
}

#[test]
fn a_video_over_the_direct_limit_goes_through_the_bucket_with_one_notice() {
    let (w, s3) = (World::new("relay-video"), S3Server::start(BUCKET));
    let path = big_file(&w, "launch.mp4", 12_000_000, 41);
    let text = run(
        relayed(&w, &s3, SECRET_KEY),
        &["upload", "video", &path, "--via", VIA],
    );
    assert_eq!(text.code, 0, "{}", text.stderr);
    let notices: Vec<_> = text
        .stderr
        .lines()
        .filter(|l| l.contains("relaying through"))
        .collect();
    assert_eq!(
        notices,
        [format!(
            "{path} is 11.44 MiB, over the 10 MB direct limit for video: relaying through {VIA}"
        )]
    );
    assert!(
        text.stdout.contains("\njobid      jobid_"),
        "{}",
        text.stdout
    );
    assert!(!text.stdout.contains("object"), "{}", text.stdout);
    assert_eq!(s3.objects(BUCKET), Vec::<String>::new(), "deleted");
    let id = text
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("media_id   "))
        .unwrap();
    let stored = w.mock.media(id).unwrap();
    assert_eq!(stored.bytes, std::fs::read(&path).unwrap());
    assert_eq!(stored.filename, "launch.mp4");
    assert_no_secret(&text, w.mock.access_token(CORP_ID).as_deref());
    // The PUT's summary counts the whole file, once it is all out.
    let summaries: Vec<_> = text
        .stderr
        .lines()
        .filter(|l| l.starts_with(&format!("relay {path}: ")))
        .collect();
    assert_eq!(summaries.len(), 1, "{}", text.stderr);
    assert!(
        summaries[0].starts_with(&format!("relay {path}: 11.44 MiB in ")),
        "{}",
        text.stderr
    );
}

/// The direct limit is inclusive: a video of exactly 10 MB (WeCom's MB is 1 MiB) is uploaded
/// directly, not relayed.
#[test]
fn a_video_of_exactly_the_direct_limit_is_not_relayed() {
    let (w, s3) = (World::new("relay-limit"), S3Server::start(BUCKET));
    let path = big_file(&w, "limit.mp4", 10 * 1024 * 1024, 49);
    let text = run(
        relayed(&w, &s3, SECRET_KEY),
        &["upload", "video", &path, "--via", VIA],
    );
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(!text.stderr.contains("relaying"), "{}", text.stderr);
    assert!(!text.stdout.contains("jobid"), "{}", text.stdout);
    assert_eq!(w.mock.count(wecom_material_mock::Endpoint::Upload), 1);
    assert_eq!(w.mock.count(wecom_material_mock::Endpoint::UploadByUrl), 0);
}

#[test]
fn json_gives_the_upload_object_plus_the_job_id_and_verbose_logs_no_secret() {
    let (w, s3) = (World::new("relay-json"), S3Server::start(BUCKET));
    let path = big_file(&w, "report.bin", 21_000_000, 42);
    let mut cmd = relayed(&w, &s3, SECRET_KEY);
    cmd.env("WECOM_RELAY", VIA)
        .env("AWS_SESSION_TOKEN", SESSION_TOKEN);
    // A session token goes into every signed URL (s3s-fs does not check it).
    let json = run(cmd, &["-v", "--json", "upload", "file", &path]);
    assert_eq!(json.code, 0, "{}", json.stderr);
    assert_eq!(
        json.keys(),
        ["created_at", "expires_at", "jobid", "media_id", "type"]
    );
    assert_eq!(json.json()["type"], "file");
    assert!(
        json.stderr.contains("PUT http://127.0.0.1:"),
        "{}",
        json.stderr
    );
    assert!(
        json.stderr.contains("X-Amz-Signature=***"),
        "{}",
        json.stderr
    );
    assert_no_secret(&json, w.mock.access_token(CORP_ID).as_deref());
    assert_eq!(s3.objects(BUCKET), Vec::<String>::new());
}

#[test]
fn keep_object_keeps_it_and_says_where() {
    let (w, s3) = (World::new("relay-keep"), S3Server::start(BUCKET));
    let path = big_file(&w, "keep.bin", 21_000_000, 43);
    let json = run(
        relayed(&w, &s3, SECRET_KEY),
        &[
            "--json",
            "upload",
            "file",
            &path,
            "--via",
            VIA,
            "--keep-object",
        ],
    );
    assert_eq!(json.code, 0, "{}", json.stderr);
    let object = json.json()["object"].as_str().unwrap().to_owned();
    let key = object.strip_prefix("s3://wecom-cli-relay/").unwrap();
    assert!(
        key.starts_with("uploads/") && key.ends_with("-keep.bin"),
        "{key}"
    );
    assert_eq!(s3.objects(BUCKET), [key.to_owned()]);
}

#[test]
fn a_failed_job_exits_1_and_deletes_the_object() {
    let mut config = MockConfig::default();
    config.limits.upload_by_url_max_bytes = 15_000_000;
    let (w, s3) = (
        World::with_config("relay-fail", config),
        S3Server::start(BUCKET),
    );
    let path = big_file(&w, "big.mp4", 16_000_000, 44);
    let failed = run(
        relayed(&w, &s3, SECRET_KEY),
        &["upload", "video", &path, "--via", VIA],
    );
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    let last = failed.stderr.lines().last().unwrap_or("");
    assert!(
        last.starts_with("error: WeCom errcode 45001"),
        "{}",
        failed.stderr
    );
    assert!(last.contains("upload job jobid_"), "{last}");
    assert_eq!(s3.objects(BUCKET), Vec::<String>::new());
}

#[test]
fn wrong_credentials_exit_1_naming_the_bucket_and_nothing_reaches_wecom() {
    let (w, s3) = (World::new("relay-creds"), S3Server::start(BUCKET));
    let path = big_file(&w, "big.mp4", 11_000_000, 45);
    let wrong = "wrong-SECRET-key-b9e2";
    let failed = run(
        relayed(&w, &s3, wrong),
        &["upload", "video", &path, "--via", VIA],
    );
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    let last = failed.stderr.lines().last().unwrap_or("");
    assert!(last.contains("s3://wecom-cli-relay/uploads/"), "{last}");
    assert!(last.contains("HTTP 403 SignatureDoesNotMatch"), "{last}");
    assert!(!failed.stderr.contains(wrong));
    assert_eq!(w.mock.requests().len(), 0, "nothing reached WeCom");
    assert_eq!(s3.objects(BUCKET), Vec::<String>::new());
}

#[test]
fn an_image_over_10_mb_is_a_validation_error_and_nothing_is_sent() {
    let (w, s3) = (World::new("relay-image"), S3Server::start(BUCKET));
    let path = big_file(&w, "photo.jpg", 11_000_000, 46);
    let failed = run(
        relayed(&w, &s3, SECRET_KEY),
        &["upload", "image", &path, "--via", VIA],
    );
    assert_eq!(failed.code, 2, "{}", failed.stderr);
    assert!(
        failed
            .stderr
            .contains("over the 10 MB limit for type image"),
        "{}",
        failed.stderr
    );
    assert_eq!(w.mock.requests().len(), 0);
    assert_eq!(s3.objects(BUCKET), Vec::<String>::new());
}

#[test]
fn a_relay_without_credentials_or_with_a_bad_url_is_a_usage_error() {
    let w = World::new("relay-usage");
    let path = big_file(&w, "big.mp4", 11_000_000, 47);
    let mut cmd = w.command();
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    let missing = run(cmd, &["upload", "video", &path, "--via", VIA]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("AWS_ACCESS_KEY_ID"),
        "{}",
        missing.stderr
    );
    let mut cmd = w.command();
    cmd.env("AWS_ACCESS_KEY_ID", "k")
        .env("AWS_SECRET_ACCESS_KEY", "s");
    let bad = run(cmd, &["upload", "video", &path, "--via", "https://bucket/"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("s3://BUCKET/"), "{}", bad.stderr);
    // The relay's options without a relay: refused, even for a file that needs none.
    let small = w.file("small.txt", b"no relay needed");
    for option in ["--keep-object", "--s3-path-style"] {
        for file in [path.clone(), support::arg(&small)] {
            let refused = run(w.command(), &["upload", "file", &file, option]);
            assert_eq!(refused.code, 2, "{option}: {}", refused.stderr);
            assert!(
                refused
                    .stderr
                    .contains("need a relay: --via s3://BUCKET/PREFIX/"),
                "{option}: {}",
                refused.stderr
            );
        }
    }
    assert_eq!(w.mock.requests().len(), 0);
}

#[test]
fn ctrl_c_during_the_put_stops_it_and_leaves_no_object() {
    let (w, s3) = (World::new("relay-interrupt"), S3Server::start(BUCKET));
    let path = big_file(&w, "big.mp4", 80_000_000, 48);
    let mut cmd = relayed(&w, &s3, SECRET_KEY);
    cmd.args(["upload", "video", &path, "--via", VIA])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("run the binary");
    // The PUT is under way once the server writes its part file (s3s-fs: `.tmp.N.internal.part`).
    let started = std::time::Instant::now();
    let receiving = || {
        std::fs::read_dir(s3.root())
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                e.file_name().to_string_lossy().starts_with(".tmp.")
                    && e.metadata().is_ok_and(|m| m.len() > 1_000_000)
            })
    };
    while !receiving() {
        assert!(started.elapsed().as_secs() < 60, "the PUT never started");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let pid = child.id().to_string();
    let sent = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(sent.success());
    let stopped: support::Run = child.wait_with_output().unwrap().into();
    assert_eq!(stopped.code, 1, "{}", stopped.stderr);
    assert!(
        stopped.stderr.contains("interrupted: stopping"),
        "{}",
        stopped.stderr
    );
    assert!(
        stopped
            .stderr
            .contains("error: relayed upload cancelled by the caller after "),
        "{}",
        stopped.stderr
    );
    assert_eq!(s3.objects(BUCKET), Vec::<String>::new());
    assert_eq!(w.mock.requests().len(), 0, "nothing reached WeCom");
}
