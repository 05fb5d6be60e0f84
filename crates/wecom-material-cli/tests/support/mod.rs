//! Runs the built `wecom-material` binary against an in-process emulator, in a temporary
//! directory of its own.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use wecom_material_mock::{App, MockConfig, MockServer, samples};

pub const CORP_ID: &str = "ww-cli-test";
pub const SECRET: &str = "s3cr3t-CLI-test-value-9d1f";
pub const BIN: &str = env!("CARGO_BIN_EXE_wecom-material");

/// An emulator, a scratch directory and a token cache file.
pub struct World {
    pub mock: MockServer,
    pub dir: PathBuf,
    pub cache: PathBuf,
}

/// What a run printed and how it ended.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The stdout as one JSON object.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?}", self.stdout))
    }

    /// Sorted keys of the JSON object on stdout.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .json()
            .as_object()
            .expect("a JSON object")
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// A fresh directory under the system temp dir.
pub fn scratch(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "wecom-cli-test-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl World {
    pub fn new(name: &str) -> World {
        // Ids with `+ / =`: every command must percent-encode them.
        let strict = MockConfig {
            strict_ids: true,
            ..MockConfig::default()
        };
        Self::with_config(name, strict)
    }

    /// A world whose emulator has `config` (its app replaced by the tests' one).
    pub fn with_config(name: &str, config: MockConfig) -> World {
        let mock = MockServer::start(MockConfig {
            apps: vec![App::new(CORP_ID, SECRET)],
            ..config
        });
        let dir = scratch(name);
        let cache = dir.join("cache").join("tokens.json");
        World { mock, dir, cache }
    }

    /// Inserts a media until the emulator draws an id of letters, digits, `-` and `_` only
    /// (one in four at the latest; the others hold `+ / =`), so that a test can name its part
    /// file `.ID.part` the way the command does for such ids.
    pub fn insert_safe(&self, bytes: &[u8], content_type: &str, filename: &str) -> String {
        loop {
            let id = self
                .mock
                .insert_media(bytes.to_vec(), content_type, filename);
            if id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
            {
                return id;
            }
        }
    }

    /// A command with the connection settings (the secret through the environment) and the
    /// scratch directory as working directory.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(&self.dir)
            .env_remove("WECOM_BASE_URL")
            .env_remove("WECOM_CORP_ID")
            .env_remove("WECOM_TOKEN_CACHE")
            .env_remove("WECOM_TOKEN_STORE")
            .env("WECOM_SECRET", SECRET)
            .env("XDG_CACHE_HOME", self.dir.join("xdg"))
            .args(["--base-url", &self.mock.base_url(), "--corp-id", CORP_ID])
            .arg("--token-cache")
            .arg(&self.cache);
        cmd
    }

    /// Runs the binary with `args` after the connection settings.
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.command()
            .args(args)
            .output()
            .expect("run the binary")
            .into()
    }

    /// Writes a file into the scratch directory and returns its path.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for World {
    /// Removes the scratch directory of a passing test (a failing one keeps it to look at).
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A path as a string argument.
pub fn arg(path: &Path) -> String {
    path.to_str().unwrap().to_owned()
}

pub fn jpeg() -> Vec<u8> {
    samples::jpeg(622)
}

pub fn png() -> Vec<u8> {
    samples::png(333)
}

pub fn amr() -> Vec<u8> {
    samples::amr(326)
}

pub fn mp4() -> Vec<u8> {
    samples::mp4(1_024)
}

/// `n` bytes that differ from chunk to chunk.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + i / 977) as u8).collect()
}
