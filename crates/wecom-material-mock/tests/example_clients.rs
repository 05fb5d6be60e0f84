//! Runs the example clients of `examples/clients/` (Python with wechatpy, Node with plain
//! `fetch`) against a started emulator: they use the admin API to inject faults, add media and
//! read the request log, and exit non-zero when a check fails.
//!
//! When `python3` with `wechatpy` + `requests`, or `node` (18+, for `fetch`), is missing, the
//! test fails if the environment variable `CI` is set, and otherwise prints a skip notice.

use std::path::PathBuf;
use std::process::Command;

use wecom_material_mock::{Endpoint, MockConfig, MockServer};

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples/clients")
        .join(name)
}

/// Whether `program args` runs and exits 0.
fn works(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Fails under CI, else prints a notice: `true` when the test may go on.
fn available(ok: bool, what: &str, install: &str) -> bool {
    if ok {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{what} is missing and CI is set; install it: {install}"
    );
    eprintln!("SKIPPED: {what} is missing ({install}); with CI set this test fails instead");
    false
}

fn run(program: &str, script: &str) -> MockServer {
    let mock = MockServer::start(MockConfig::default());
    let out = Command::new(program)
        .arg(example(script))
        .env("WECOM_BASE_URL", mock.base_url())
        .env("WECOM_CORP_ID", "ww-mock-corp")
        .env("WECOM_SECRET", "mock-secret")
        .output()
        .expect("run the example");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains("all checks passed"), "{stdout}\n{stderr}");
    mock
}

#[test]
fn python_wechatpy_example_passes_against_the_emulator() {
    let ok = works("python3", &["-c", "import wechatpy, requests"]);
    if !available(
        ok,
        "python3 with wechatpy and requests",
        "pip install wechatpy==1.8.18 requests",
    ) {
        return;
    }
    let mock = run("python3", "wechatpy_client.py");
    // It really talked to this emulator: 3 token fetches, 2 uploads, 4 downloads.
    assert_eq!(mock.count(Endpoint::GetToken), 3);
    assert_eq!(mock.count(Endpoint::Upload), 2);
    assert_eq!(mock.count(Endpoint::Get), 4);
}

#[test]
fn node_fetch_example_passes_against_the_emulator() {
    let ok = works(
        "node",
        &["-e", "if (typeof fetch !== 'function') process.exit(1)"],
    );
    if !available(ok, "node 18 or newer", "apt-get install nodejs (18+)") {
        return;
    }
    let mock = run("node", "fetch_client.mjs");
    assert_eq!(mock.count(Endpoint::Upload), 3);
    assert_eq!(mock.count(Endpoint::Get), 4);
}
