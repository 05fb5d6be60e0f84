//! The fleet worker: one process that gets a token through the shared store (gettoken over
//! plain ureq against the emulator when it is the refresher) and prints what it got.
//!
//! The fleet tests run it by re-running their own test binary (`fleet_worker`, an ignored
//! test), the `fleet-bench` example by re-running itself; both pass the settings in
//! `WECOM_FLEET_*` environment variables. Output lines start with `FLEET `:
//!
//! * `FLEET refreshing` — this process calls gettoken now (printed before the request);
//! * `FLEET token fp=… gen=… origin=… elapsed_ms=… trips=…` — `once` mode's result;
//! * `FLEET ok fp=… gen=…` — `loop` mode: a token WeCom accepted (printed when it changes);
//! * `FLEET error …` — no token (exit status 1).
//!
//! `fp` is a fingerprint of the token, never the token. Store warnings go to stderr.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use wecom_material_core::{BaseUrl, CorpSecret, Error, GetToken, TokenGrant, TransportError};
use wecom_material_redis::{Fallback, SharedToken, SharedTokenPolicy, SharedTokens};

/// What a worker does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Get one token, print it, exit.
    Once,
    /// Get a token and check it on a business call until the stop file exists; replace a
    /// rejected one.
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
    /// Wait for a line on stdin before asking for a token, so that a whole fleet can be
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

/// Prints `warn!` lines of the store on stderr.
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

fn transport(e: impl std::fmt::Display) -> Error {
    Error::Transport(TransportError::maybe_sent(e.to_string()))
}

/// GET over ureq; the body as bytes.
fn get(agent: &ureq::Agent, uri: &http::Uri) -> Result<http::Response<Vec<u8>>, Error> {
    let request = http::Request::get(uri.clone())
        .body(())
        .map_err(transport)?;
    let response = agent.run(request).map_err(transport)?;
    let (parts, mut body) = response.into_parts();
    let bytes = body.read_to_vec().map_err(transport)?;
    Ok(http::Response::from_parts(parts, bytes))
}

/// Runs the worker; returns the exit status.
pub fn run(args: &WorkerArgs) -> i32 {
    let _ = log::set_logger(&LOGGER).map(|()| log::set_max_level(log::LevelFilter::Warn));
    let base = BaseUrl::parse(&args.base_url).expect("a valid base URL");
    let credentials = GetToken::new(args.corp_id.clone(), CorpSecret::new(args.secret.clone()));
    let policy = SharedTokenPolicy {
        lease: args.lease,
        fallback: args.fallback,
        ..SharedTokenPolicy::default()
    };
    let tokens = match SharedTokens::open(&args.store_url, &base, &credentials, policy) {
        Ok(tokens) => tokens,
        Err(e) => {
            say(&format!("error {e}"));
            return 1;
        }
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let gettoken = || -> Result<TokenGrant, Error> {
        say("refreshing");
        let request = credentials.build(&base);
        credentials.parse(get(&agent, request.uri())?)
    };
    if args.gate {
        say("ready");
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    }
    let started = Instant::now();
    match &args.mode {
        Mode::Once => match tokens.token(gettoken) {
            Ok(t) => {
                say(&format!(
                    "token fp={} gen={:?} origin={:?} elapsed_ms={} trips={}",
                    fingerprint(t.token.expose()),
                    t.generation,
                    t.origin,
                    started.elapsed().as_millis(),
                    tokens.store().round_trips()
                ));
                0
            }
            Err(e) => {
                say(&format!("error {e}"));
                1
            }
        },
        Mode::Loop { stop_file } => run_loop(&tokens, &agent, &base, gettoken, stop_file),
    }
}

fn run_loop(
    tokens: &SharedTokens,
    agent: &ureq::Agent,
    base: &BaseUrl,
    mut gettoken: impl FnMut() -> Result<TokenGrant, Error>,
    stop_file: &std::path::Path,
) -> i32 {
    let mut last_ok = String::new();
    let mut held: Option<SharedToken> = None;
    while !stop_file.exists() {
        let got = match held.take() {
            Some(t) => Ok(t),
            None => tokens.token(&mut gettoken),
        };
        let token = match got {
            Ok(t) => t,
            Err(e) => {
                say(&format!("error {e}"));
                return 1;
            }
        };
        // A business call that needs a valid token: an unknown media answers 40007.
        let uri = base.uri(
            "/cgi-bin/media/get",
            &[("access_token", token.token.expose()), ("media_id", "none")],
        );
        let errcode = match get(agent, &uri) {
            Ok(r) => serde_json::from_slice::<serde_json::Value>(r.body())
                .ok()
                .and_then(|v| v["errcode"].as_i64()),
            Err(e) => {
                say(&format!("error {e}"));
                return 1;
            }
        };
        match errcode {
            Some(40014 | 42001) => match tokens.replace(token.generation, &mut gettoken) {
                Ok(next) => held = Some(next),
                Err(e) => {
                    say(&format!("error {e}"));
                    return 1;
                }
            },
            Some(40007) => {
                let fp = fingerprint(token.token.expose());
                if fp != last_ok {
                    say(&format!("ok fp={fp} gen={:?}", token.generation));
                    last_ok = fp;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            other => {
                say(&format!("error unexpected errcode {other:?}"));
                return 1;
            }
        }
    }
    0
}
