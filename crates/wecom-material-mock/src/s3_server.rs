//! A real S3-compatible server for tests (feature `s3-server`): `s3s-fs` (crates.io, a
//! file-system backed S3 server that checks every request's SigV4 signature, presigned URLs
//! included, when given credentials), started on a free loopback port over a fresh
//! directory, stopped by its PID and the directory removed on drop. `scripts/ensure-s3`
//! installs the binary; `S3S_FS` names another one. For the relay's tests (the library's and
//! the CLI's); not an emulator of S3 and not meant for production.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The access key every test server accepts.
pub const ACCESS_KEY: &str = "wecom-test-access-key";
/// Its secret.
pub const SECRET_KEY: &str = "wecom-test-SECRET-4f1c2a7e9b0d";
/// The region the tests sign for (s3s-fs accepts any).
pub const REGION: &str = "us-east-1";

/// A running `s3s-fs`, killed by its PID when dropped (its directory removed).
pub struct S3Server {
    child: Option<Child>,
    port: u16,
    root: PathBuf,
}

impl S3Server {
    /// Starts a server on a free port of 127.0.0.1 with an empty bucket named `bucket`, and
    /// waits until it answers.
    ///
    /// # Panics
    /// If `s3s-fs` is not installed or does not come up.
    pub fn start(bucket: &str) -> S3Server {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let root = std::env::temp_dir().join(format!("wecom-s3s-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join(bucket)).expect("the server's directory");
        let bin = std::env::var("S3S_FS").unwrap_or_else(|_| "s3s-fs".to_owned());
        for _ in 0..5 {
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .and_then(|l| l.local_addr())
                .expect("a free loopback port")
                .port();
            let child = Command::new(&bin)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
                .arg(&root)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot run {bin} ({e}): run scripts/ensure-s3 to install it")
                });
            let mut server = S3Server {
                child: Some(child),
                port,
                root: root.clone(),
            };
            if server.wait_ready(Duration::from_secs(10)) {
                return server;
            }
            server.kill();
        }
        panic!("s3s-fs did not come up");
    }

    fn wait_ready(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                return false; // exited: the port was taken
            }
            if TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// `http://127.0.0.1:PORT` (use path-style addressing).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The directory that holds the buckets (one directory each).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The keys stored in `bucket`, sorted (the server's own bookkeeping files left out).
    pub fn objects(&self, bucket: &str) -> Vec<String> {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, base, out);
                } else if let Ok(rel) = path.strip_prefix(base) {
                    let key = rel.to_string_lossy().replace('\\', "/");
                    if !key.starts_with(".") && !key.contains("/.") {
                        out.push(key);
                    }
                }
            }
        }
        let base = self.root.join(bucket);
        let mut keys = Vec::new();
        walk(&base, &base, &mut keys);
        keys.sort();
        keys
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
