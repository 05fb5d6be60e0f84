//! Starting worker processes and reading what they print.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::worker::WorkerArgs;

/// Starts gated workers, waits until every one is ready, then releases them all at once.
pub fn start_together(workers: &mut [Worker], within: Duration) {
    for w in workers.iter() {
        w.wait_for_line(within, |l| l == "ready")
            .unwrap_or_else(|| panic!("a worker did not start: {:?}", w.lines()));
    }
    for w in workers.iter_mut() {
        w.release();
    }
}

/// A worker process, its `FLEET` lines collected by a reader thread.
pub struct Worker {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
    stderr: Option<JoinHandle<String>>,
}

/// How to start a worker: the command that re-runs a binary in worker mode.
pub fn worker_command(args: &WorkerArgs, program: &std::path::Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(extra);
    args.apply(&mut cmd);
    cmd.stdin(if args.gate {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

impl Worker {
    /// Starts `cmd` (from [`worker_command`]).
    pub fn spawn(mut cmd: Command) -> Worker {
        let mut child = cmd.spawn().expect("start a worker process");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("piped stdout");
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("FLEET ") {
                    sink.lock().unwrap().push(rest.to_owned());
                }
            }
        });
        let mut err = child.stderr.take().expect("piped stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut err, &mut text);
            text
        });
        Worker {
            child,
            lines,
            reader: Some(reader),
            stderr: Some(stderr),
        }
    }

    /// The `FLEET` lines so far (without the prefix).
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits until a line satisfies `pred`, for at most `within`.
    pub fn wait_for_line(&self, within: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(line) = self.lines().into_iter().find(|l| pred(l)) {
                return Some(line);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// Releases a gated worker (it is waiting for a line on stdin).
    pub fn release(&mut self) {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = std::io::Write::write_all(&mut stdin, b"go\n");
        }
    }

    /// SIGKILL by PID.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the exit (killing the process after `within`): exit success, lines, stderr.
    pub fn finish(mut self, within: Duration) -> (bool, Vec<String>, String) {
        let deadline = Instant::now() + within;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => {
                    self.kill();
                    break None;
                }
            }
        };
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        (status.is_some_and(|s| s.success()), self.lines(), stderr)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// One `token …` line, split into its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenLine {
    pub fp: String,
    pub generation: String,
    pub origin: String,
    pub token_ms: u64,
    pub elapsed_ms: u64,
    pub trips: u64,
}

impl TokenLine {
    /// Parses `token fp=… gen=… origin=… token_ms=… elapsed_ms=… trips=…`.
    pub fn parse(line: &str) -> Option<TokenLine> {
        let rest = line.strip_prefix("token ")?;
        let field = |name: &str| {
            rest.split(' ')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .map(str::to_owned)
        };
        Some(TokenLine {
            fp: field("fp")?,
            generation: field("gen")?,
            origin: field("origin")?,
            token_ms: field("token_ms")?.parse().ok()?,
            elapsed_ms: field("elapsed_ms")?.parse().ok()?,
            trips: field("trips")?.parse().ok()?,
        })
    }
}
