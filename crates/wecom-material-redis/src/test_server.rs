//! A real `redis-server` for tests (feature `test-server`): started on a free loopback port
//! without persistence, stopped by its PID on drop. Debian's `redis-server` package provides
//! the binary (`scripts/ensure-redis` installs it); `REDIS_SERVER` names another one. The
//! crate's own tests and the CLI's use it; it is not meant for production.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`, killed (by its PID) when dropped.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    /// The extra arguments it was started with, for a restart.
    extra: Vec<String>,
    /// It listens for TLS only (`rediss://`).
    tls: bool,
}

impl RedisServer {
    /// Starts a server on a free port of 127.0.0.1 and waits until it answers.
    ///
    /// # Panics
    /// If `redis-server` is not installed or does not come up.
    pub fn start() -> RedisServer {
        Self::start_on(None, &[], false)
    }

    /// Starts a server that speaks TLS only, with this certificate and key (PEM files; the
    /// certificate should name `127.0.0.1`) and no client certificates asked for. Its
    /// [`RedisServer::url`] is `rediss://127.0.0.1:PORT`; [`RedisServer::connection`] does
    /// not work with it.
    pub fn start_tls(cert_file: &std::path::Path, key_file: &std::path::Path) -> RedisServer {
        let (cert, key) = (
            cert_file.display().to_string(),
            key_file.display().to_string(),
        );
        let args = ["--tls-cert-file", &cert, "--tls-key-file", &key];
        Self::start_on(
            None,
            &[&args[..], &["--tls-auth-clients", "no"]].concat(),
            true,
        )
    }

    /// Starts a server with extra arguments (e.g. `--requirepass`, `--unixsocket`). The
    /// test's own [`RedisServer::connection`] only works without a password.
    pub fn start_with(extra: &[&str]) -> RedisServer {
        Self::start_on(None, extra, false)
    }

    /// Starts a server again on the port of a stopped one, with the same arguments (a
    /// restart after an outage).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop it first");
        let extra = std::mem::take(&mut self.extra);
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        *self = Self::start_on(Some(self.port), &extra, self.tls);
    }

    fn start_on(fixed: Option<u16>, extra: &[&str], tls: bool) -> RedisServer {
        let bin = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned());
        let mut last = String::new();
        for _ in 0..5 {
            let port = fixed.unwrap_or_else(|| {
                TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                    .and_then(|l| l.local_addr())
                    .expect("a free loopback port")
                    .port()
            });
            let port_text = port.to_string();
            let listen = match tls {
                false => vec!["--port", &port_text],
                true => vec!["--port", "0", "--tls-port", &port_text],
            };
            let child = Command::new(&bin)
                .args(listen)
                .args(["--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .args(["--protected-mode", "no", "--loglevel", "warning"])
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot run {bin} ({e}): run scripts/ensure-redis to install it")
                });
            let mut server = RedisServer {
                child: Some(child),
                port,
                extra: extra.iter().map(|a| (*a).to_owned()).collect(),
                tls,
            };
            if server.wait_ready(Duration::from_secs(10)) {
                return server;
            }
            last = format!("redis-server on port {port} did not come up");
            server.stop();
        }
        panic!("{last}");
    }

    fn wait_ready(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                return false; // exited: the port was taken
            }
            if self.tls {
                // Listening is all the test can see without a TLS client.
                if TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok() {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            if let Ok(mut conn) = redis::Client::open(self.url()).and_then(|c| c.get_connection()) {
                // Any answer will do: with a password, PING answers NOAUTH.
                match redis::cmd("PING").query::<String>(&mut conn) {
                    Ok(_) => return true,
                    Err(e) if e.kind() != redis::ErrorKind::Io => return true,
                    Err(_) => {}
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// `redis://127.0.0.1:PORT` (`rediss://…` for a TLS server).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A fresh connection for the test's own checks.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("connect to the test redis-server")
    }

    /// Closes every client connection of the server but the one asking (`CLIENT KILL TYPE
    /// normal`) and says how many it closed: a server that dropped its clients.
    pub fn kill_clients(&self) -> i64 {
        redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("normal")
            .query(&mut self.connection())
            .expect("CLIENT KILL on the test redis-server")
    }

    /// Kills the server (SIGKILL by PID) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The port is closed once the process is gone.
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
