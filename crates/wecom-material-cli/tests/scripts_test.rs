//! `scripts/test` (issue 12): cargo-nextest when it is installed, plain `cargo test`
//! otherwise, doctests either way, and never a cargo install on the way (redis-server, when
//! missing, comes from scripts/ensure-redis; s3s-fs from scripts/ensure-s3, which `cargo
//! install`s it only when it is missing). Run with a stand-in `cargo` first on PATH that
//! records its arguments, so nothing is built, and a stand-in `s3s-fs`.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's `scripts/test`.
fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/test")
}

/// Runs `scripts/test` with a fake `cargo` whose `nextest --version` succeeds when
/// `nextest_installed`; returns the exit status and one line per cargo call.
fn run_with_fake_cargo(name: &str, nextest_installed: bool) -> (i32, Vec<String>) {
    let dir =
        std::env::temp_dir().join(format!("wecom-scripts-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("calls.log");
    let fake = dir.join("cargo");
    let nextest_status = if nextest_installed { 0 } else { 101 };
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\n\
             if [ \"$1\" = nextest ] && [ \"$2\" = --version ]; then exit {nextest_status}; fi\n\
             echo \"$*\" >> '{}'\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    // scripts/ensure-s3 installs s3s-fs only when it is missing: present, nothing is built.
    let s3s = dir.join("s3s-fs");
    std::fs::write(&s3s, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&s3s, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let status = Command::new("bash")
        .arg(script())
        .env("PATH", path)
        .env_remove("WECOM_TEST_RUNNER")
        .output()
        .unwrap();
    let calls = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    (status.status.code().unwrap_or(-1), calls)
}

#[test]
fn without_nextest_it_runs_cargo_test_and_installs_nothing() {
    let (code, calls) = run_with_fake_cargo("plain", false);
    assert_eq!(code, 0);
    assert_eq!(
        calls,
        ["test --workspace --all-features --no-fail-fast"],
        "plain cargo test runs the unit, integration and doc tests"
    );
}

#[test]
fn with_nextest_it_runs_nextest_then_the_doctests() {
    let (code, calls) = run_with_fake_cargo("nextest", true);
    assert_eq!(code, 0);
    assert_eq!(
        calls,
        [
            "nextest run --workspace --all-features --no-fail-fast",
            "test --workspace --all-features --doc",
        ]
    );
    assert!(!calls.iter().any(|c| c.starts_with("install")));
}
