//! Runs the `reqwest_transport` example's binary against the emulator: the 1,000,000-byte
//! round trip, a media over 20 MB (830002 → Range chunks, a body dropped mid-chunk and
//! resumed), and a token revoked while a request is under way.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use wecom_material_core::md5sum::Md5Hex;
use wecom_material_mock::{Endpoint, Fault, MockConfig, MockServer, samples};

const CORP_ID: &str = "ww-mock-corp";
const SECRET: &str = "mock-secret";

/// The example's binary, next to this test's (`target/<profile>/examples/`), built (or found
/// up to date) by cargo first: `cargo nextest` does not build examples, and a stale binary
/// would test old code.
fn example() -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    BUILT.call_once(|| {
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args([
            "build",
            "-p",
            "wecom-material",
            "--example",
            "reqwest_transport",
        ]);
        // Without the variables cargo sets for this test (CARGO_MANIFEST_DIR, …): build
        // scripts that watch them would rebuild, and the next `cargo test` rebuild again.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            let ours = [
                "CARGO_MANIFEST_",
                "CARGO_PKG_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
            ];
            if ours.iter().any(|p| name.starts_with(p)) || name == "CARGO_PRIMARY_PACKAGE" {
                cargo.env_remove(&*name);
            }
        }
        let status = cargo.status().expect("cargo runs");
        assert!(status.success(), "building the example failed");
    });
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    profile_dir
        .join("examples")
        .join(format!("reqwest_transport{}", std::env::consts::EXE_SUFFIX))
}

fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The log names requests with the token and the secret masked.
fn assert_log_is_redacted(output: &Output, token_seen: &[String]) {
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        !log.contains(SECRET),
        "the secret leaked into the log:\n{log}"
    );
    for token in token_seen {
        assert!(
            !log.contains(token.as_str()),
            "a token leaked into the log:\n{log}"
        );
    }
    assert!(log.contains("access_token=***"), "{log}");
}

#[test]
fn the_reqwest_example_round_trips_resumes_a_large_media_and_survives_a_revoked_token() {
    let mock = MockServer::start(MockConfig {
        strict_ids: true,
        ..MockConfig::default()
    });
    let big = samples::noise(25_000_001);
    let big_md5 = Md5Hex::of(&big);
    let big_id = mock.insert_media(big, "application/octet-stream", "big.bin");
    // Media requests, in order: the download back (held 3 s while the test revokes the token,
    // so it is refused with 40014), its retry, the large media whole (830002), its first
    // range (dropped after 5,000,000 bytes), then the rest.
    let delay = |delay| Fault::Delay { delay, times: 1 };
    mock.fault(Endpoint::Get, delay(Duration::from_secs(3)));
    mock.fault(Endpoint::Get, delay(Duration::ZERO));
    mock.fault(Endpoint::Get, delay(Duration::ZERO));
    mock.fault(
        Endpoint::Get,
        Fault::DropMidBody {
            after_bytes: 5_000_000,
            times: 1,
        },
    );

    let mut child = Command::new(example())
        .args([&mock.base_url(), CORP_ID, SECRET, &big_id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the example starts");
    // Once the upload is in, the token is revoked: the next request (held by the fault)
    // carries a dead token.
    let first_token = loop {
        if mock.count(Endpoint::Upload) > 0 {
            let token = mock.requests_to(Endpoint::Upload)[0]
                .query_param("access_token")
                .expect("the upload carries the token");
            mock.revoke_tokens();
            break token;
        }
        if child.try_wait().expect("the example runs").is_some() {
            break String::new();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let output = child.wait_with_output().expect("the example ends");
    let stdout = lines(&output.stdout);

    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {stdout:#?}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.last().map(String::as_str), Some("ok"));
    assert!(
        stdout.contains(&format!("media {big_id}: 25000001 bytes, md5 {big_md5}")),
        "{stdout:#?}"
    );
    assert!(
        stdout.contains(&"downloaded 1000000 bytes back, identical".to_owned()),
        "{stdout:#?}"
    );

    // What WeCom stored: the 1,000,000 bytes under the name 样例.bin, as a file.
    let uploaded_id = stdout[0]
        .strip_prefix("uploaded 样例.bin as ")
        .expect("the upload line");
    let stored = mock.media(uploaded_id).expect("the upload is stored");
    assert_eq!(stored.filename, "样例.bin");
    assert_eq!(stored.bytes.len(), 1_000_000);

    // One token before the revocation, one after it.
    assert_eq!(mock.count(Endpoint::GetToken), 2);
    let gets = mock.requests_to(Endpoint::Get);
    let tokens: Vec<_> = gets.iter().map(|r| r.query_param("access_token")).collect();
    assert_eq!(tokens[0].as_deref(), Some(first_token.as_str()));
    assert!(
        tokens[1..]
            .iter()
            .all(|t| t.as_deref() != Some(&first_token))
    );
    let ranges: Vec<Option<String>> = gets
        .iter()
        .map(|r| {
            r.headers
                .get("range")
                .map(|v| v.to_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(
        ranges,
        [
            None,
            None,
            None,
            Some("bytes=0-19999999".to_owned()),
            Some("bytes=5000000-24999999".to_owned()),
            Some("bytes=25000000-25000000".to_owned()),
        ]
    );
    let all_tokens: Vec<String> = mock
        .requests()
        .iter()
        .filter_map(|r| r.query_param("access_token"))
        .collect();
    assert_log_is_redacted(&output, &all_tokens);
}

#[test]
fn the_reqwest_example_ends_with_the_error_and_status_1() {
    let mock = MockServer::start(MockConfig {
        strict_ids: true,
        ..MockConfig::default()
    });
    let output = Command::new(example())
        .args([&mock.base_url(), CORP_ID, "wrong-secret"])
        .output()
        .expect("the example runs");
    let stdout = lines(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout:#?}");
    let last = stdout.last().expect("a last line");
    assert!(last.starts_with("WeCom error 40001"), "{last}");
    assert!(!String::from_utf8_lossy(&output.stderr).contains("wrong-secret"));
    assert_eq!(
        mock.count(Endpoint::Upload),
        0,
        "nothing is uploaded without a token"
    );

    let usage = Command::new(example()).output().expect("the example runs");
    assert_eq!(usage.status.code(), Some(1));
    assert!(lines(&usage.stdout).last().unwrap().starts_with("usage: "));
}
