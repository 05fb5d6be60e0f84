//! The fleet worker: one process with a real `wecom_material_ureq::Client` whose token store
//! is a [`RedisTokenStore`], making business calls against the emulator and printing what it
//! got.
//!
//! The fleet tests run it by re-running their own test binary (`fleet_worker`, an ignored
//! test), the `fleet-bench` example by re-running itself; both pass the settings in
//! `WECOM_FLEET_*` environment variables. The store is wrapped in [`Traced`], which passes every
//! command to the Redis store unchanged and notes the replies, so that the output can say what
//! this process did. Output lines start with `FLEET `:
//!
//! * `FLEET ready` — gated workers: built and waiting for a line on stdin;
//! * `FLEET refreshing fence=N` — the store made this process the fleet's refresher (printed
//!   when LOOKUP answers, before the client's gettoken request);
//! * `FLEET superseded` — this process's COMMIT was refused (a newer fencing number exists);
//! * `FLEET token fp=… gen=… origin=… token_ms=… elapsed_ms=… trips=…` — `once` mode: the
//!   business call (`media/get` of an unknown media, answered 40007 when the token is
//!   accepted) went through with this token;
//! * `FLEET ok fp=… gen=…` — `loop` mode: a token WeCom accepted (printed when it changes);
//! * `FLEET error transport <message>` / `FLEET error other <error>` — no token (exit 1).
//!
//! `fp` is a fingerprint of the token, never the token. `gen` is `Shared(N)` (the store's
//! generation of the token the client got from the store) or `Local` (a token of the
//! process's own). `origin` is `Refreshed` (this process stored it), `Shared` (read from the
//! store), `Superseded` (its own COMMIT was refused and the stored one used) or `Local`.
//! `trips` are the store's Redis round trips ([`RedisTokenStore::round_trips`]); `token_ms` the
//! time from the start of the call until the store handed the token over; `elapsed_ms` the
//! time of the whole call (with its `media/get` request). Store warnings (the `log` crate) go to stderr as `warning: …`.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wecom_material_core::{ErrCode, Error, MediaId, RetryPolicy};
use wecom_material_redis::{
    AppKeys, CommitReply, Fallback, LookupReply, RedisTokenStore, SharedTokenPolicy, StoreCommand,
    StoreError, StoreReply, TokenStore,
};
use wecom_material_ureq::{Client, DownloadOptions};

/// What a worker does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// One business call, print the token it used, exit.
    Once,
    /// Business calls until the stop file exists (the client replaces a rejected token).
    Loop {
        /// Created by the test to end the loop.
        stop_file: PathBuf,
    },
}

/// A worker's settings.
#[derive(Debug, Clone)]
pub struct WorkerArgs {
    pub store_url: String,
    pub base_url: String,
    pub corp_id: String,
    pub secret: String,
    pub lease: Duration,
    pub fallback: Fallback,
    pub mode: Mode,
    /// Wait for a line on stdin before the first call, so that a whole fleet can be
    /// released at the same moment (see `Worker::release`).
    pub gate: bool,
}

const PREFIX: &str = "WECOM_FLEET_";

impl WorkerArgs {
    /// Sets the environment of `cmd` so that it runs this worker.
    pub fn apply(&self, cmd: &mut Command) {
        cmd.env(format!("{PREFIX}STORE"), &self.store_url)
            .env(format!("{PREFIX}BASE"), &self.base_url)
            .env(format!("{PREFIX}CORP"), &self.corp_id)
            .env(format!("{PREFIX}SECRET"), &self.secret)
            .env(
                format!("{PREFIX}LEASE_MS"),
                self.lease.as_millis().to_string(),
            )
            .env(
                format!("{PREFIX}FALLBACK"),
                match self.fallback {
                    Fallback::Local => "local",
                    Fallback::Fail => "fail",
                },
            );
        if self.gate {
            cmd.env(format!("{PREFIX}GATE"), "stdin");
        }
        match &self.mode {
            Mode::Once => cmd.env(format!("{PREFIX}MODE"), "once"),
            Mode::Loop { stop_file } => cmd
                .env(format!("{PREFIX}MODE"), "loop")
                .env(format!("{PREFIX}STOP"), stop_file),
        };
    }

    /// The settings of this process, if it was started as a worker.
    pub fn from_env() -> Option<WorkerArgs> {
        let var = |name: &str| std::env::var(format!("{PREFIX}{name}")).ok();
        let mode = match var("MODE")?.as_str() {
            "loop" => Mode::Loop {
                stop_file: PathBuf::from(var("STOP")?),
            },
            _ => Mode::Once,
        };
        Some(WorkerArgs {
            store_url: var("STORE")?,
            base_url: var("BASE")?,
            corp_id: var("CORP")?,
            secret: var("SECRET")?,
            lease: Duration::from_millis(var("LEASE_MS")?.parse().ok()?),
            fallback: if var("FALLBACK").as_deref() == Some("fail") {
                Fallback::Fail
            } else {
                Fallback::Local
            },
            mode,
            gate: var("GATE").is_some(),
        })
    }
}

/// A token's fingerprint, for output.
pub fn fingerprint(token: &str) -> String {
    let mut h = DefaultHasher::new();
    token.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// Prints `warn!` lines (and worse) on stderr as `warning: …`.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!("warning: {}", record.args());
        }
    }

    fn flush(&self) {}
}

static LOGGER: StderrLog = StderrLog;

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "FLEET {line}");
    let _ = out.flush();
}

/// What the store's replies said about the token the client holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Nothing yet.
    Nothing,
    /// Read from the store (LOOKUP answered it, generation).
    Shared(u64),
    /// Stored by this process (generation).
    Refreshed(u64),
    /// This process's COMMIT was refused; the store's token (generation) is used.
    Superseded(Option<u64>),
    /// The store failed: a token of the process's own.
    Local,
}

impl Seen {
    fn fields(self) -> (String, &'static str) {
        match self {
            Seen::Nothing => ("None".into(), "None"),
            Seen::Shared(g) => (format!("Shared({g})"), "Shared"),
            Seen::Refreshed(g) => (format!("Shared({g})"), "Refreshed"),
            Seen::Superseded(Some(g)) => (format!("Shared({g})"), "Superseded"),
            Seen::Superseded(None) => ("Unstored".into(), "Superseded"),
            Seen::Local => ("Local".into(), "Local"),
        }
    }
}

/// The Redis store, unchanged, with a note of what its replies said.
pub struct Traced {
    pub inner: RedisTokenStore,
    seen: Mutex<Seen>,
    /// When the store last answered with a token (LOOKUP ready, COMMIT stored or superseded).
    answered: Mutex<Option<Instant>>,
}

impl Traced {
    pub fn new(inner: RedisTokenStore) -> Self {
        Self {
            inner,
            seen: Mutex::new(Seen::Nothing),
            answered: Mutex::new(None),
        }
    }

    pub fn seen(&self) -> Seen {
        *self.seen.lock().unwrap()
    }

    pub fn answered(&self) -> Option<Instant> {
        *self.answered.lock().unwrap()
    }
}

impl TokenStore for Traced {
    fn run(&self, command: StoreCommand) -> Result<StoreReply, StoreError> {
        let reply = self.inner.run(command);
        let mut seen = self.seen.lock().unwrap();
        if let Ok(
            StoreReply::Lookup(LookupReply::Ready(_))
            | StoreReply::Commit(CommitReply::Stored { .. } | CommitReply::Superseded { .. }),
        ) = &reply
        {
            *self.answered.lock().unwrap() = Some(Instant::now());
        }
        match &reply {
            Ok(StoreReply::Lookup(LookupReply::Refresh { fence, .. })) => {
                say(&format!("refreshing fence={fence}"));
            }
            Ok(StoreReply::Lookup(LookupReply::Ready(g))) => *seen = Seen::Shared(g.generation),
            Ok(StoreReply::Commit(CommitReply::Stored { generation })) => {
                *seen = Seen::Refreshed(*generation);
            }
            Ok(StoreReply::Commit(CommitReply::Superseded { current })) => {
                say("superseded");
                *seen = Seen::Superseded(current.as_ref().map(|c| c.generation));
            }
            Ok(StoreReply::Warned) | Err(_) => *seen = Seen::Local,
            Ok(_) => {}
        }
        reply
    }
}

/// One business call that needs a valid token: `Ok` when WeCom accepted the token (the
/// unknown media answers 40007).
fn call(client: &Client) -> Result<(), Error> {
    match client.get(&MediaId::new("none"), DownloadOptions::default()) {
        Err(e) if e.errcode() == Some(ErrCode::InvalidMediaId) => Ok(()),
        Err(e) => Err(e),
        Ok(_) => Ok(()),
    }
}

fn report_error(e: &Error) -> i32 {
    match e {
        Error::Transport(t) => say(&format!("error transport {}", t.message)),
        other => say(&format!("error other {other}")),
    }
    1
}

/// Runs the worker; returns the exit status.
pub fn run(args: &WorkerArgs) -> i32 {
    let _ = log::set_logger(&LOGGER).map(|()| log::set_max_level(log::LevelFilter::Warn));
    let builder = Client::builder(args.corp_id.clone(), args.secret.clone())
        .base_url(&args.base_url)
        .expect("a valid base URL")
        .retry_policy(RetryPolicy {
            base_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            ..RetryPolicy::default()
        });
    let store =
        match RedisTokenStore::open(&args.store_url, AppKeys::for_client(builder.settings())) {
            Ok(store) => Arc::new(Traced::new(store)),
            Err(e) => {
                say(&format!("error store {e}"));
                return 1;
            }
        };
    let policy = SharedTokenPolicy {
        lease: args.lease,
        fallback: args.fallback,
        ..SharedTokenPolicy::default()
    };
    let client = builder.token_store(store.clone(), policy).build();
    if args.gate {
        say("ready");
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    }
    let held = |client: &Client| {
        client
            .export_token()
            .map(|t| fingerprint(&t.access_token))
            .unwrap_or_else(|| "none".into())
    };
    match &args.mode {
        Mode::Once => {
            let started = Instant::now();
            if let Err(e) = call(&client) {
                return report_error(&e);
            }
            let elapsed = started.elapsed();
            let (generation, origin) = store.seen().fields();
            // The time until the store handed the token over (the whole call for a local one).
            let token = store
                .answered()
                .map_or(elapsed, |at| at.saturating_duration_since(started));
            say(&format!(
                "token fp={} gen={generation} origin={origin} token_ms={} elapsed_ms={} trips={}",
                held(&client),
                token.as_millis(),
                elapsed.as_millis(),
                store.inner.round_trips()
            ));
            0
        }
        Mode::Loop { stop_file } => {
            let mut last_ok = String::new();
            while !stop_file.exists() {
                if let Err(e) = call(&client) {
                    return report_error(&e);
                }
                let fp = held(&client);
                if fp != last_ok {
                    let (generation, _) = store.seen().fields();
                    say(&format!("ok fp={fp} gen={generation}"));
                    last_ok = fp;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            0
        }
    }
}
