//! `-v`: this project's log records on stderr, with known secrets masked.
//!
//! Only records whose target is one of this project's crates are printed: the transports log
//! each request as `METHOD <redacted uri>`. Records of dependencies (ureq logs whole URIs,
//! access tokens included) are dropped.

use std::sync::{Mutex, OnceLock};

use log::{Level, LevelFilter, Log, Metadata, Record};

/// The logger.
struct StderrLogger {
    /// Texts never to print (the secret, tokens seen), replaced by `***`.
    masked: Mutex<Vec<String>>,
}

static LOGGER: OnceLock<StderrLogger> = OnceLock::new();

fn logger() -> &'static StderrLogger {
    LOGGER.get_or_init(|| StderrLogger {
        masked: Mutex::new(Vec::new()),
    })
}

/// Installs the logger: debug records with `verbose`, warnings otherwise.
pub(crate) fn init(verbose: bool) {
    if log::set_logger(logger()).is_ok() {
        log::set_max_level(if verbose {
            LevelFilter::Debug
        } else {
            LevelFilter::Warn
        });
    }
}

/// Adds a text the logger must never print (a secret or a token).
pub(crate) fn mask(secret: &str) {
    if secret.len() >= 4 {
        let mut masked = logger().masked.lock().unwrap_or_else(|e| e.into_inner());
        if !masked.iter().any(|m| m == secret) {
            masked.push(secret.to_owned());
        }
    }
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target().starts_with("wecom_material")
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) || record.level() > log::max_level() {
            return;
        }
        let mut text = record.args().to_string();
        for secret in self.masked.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            text = text.replace(secret.as_str(), "***");
        }
        let level = match record.level() {
            Level::Error => "error",
            Level::Warn => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        };
        eprintln!("[{level}] {}", crate::failure::one_line(&text));
    }

    fn flush(&self) {}
}
