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

impl StderrLogger {
    /// The line `record` prints when the level limit is `max`: none for a record of a
    /// dependency or above the limit; the masked texts replaced by `***`.
    fn line(&self, record: &Record<'_>, max: LevelFilter) -> Option<String> {
        if !self.enabled(record.metadata()) || record.level() > max {
            return None;
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
        Some(format!("[{level}] {}", crate::failure::one_line(&text)))
    }
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target().starts_with("wecom_material")
    }

    fn log(&self, record: &Record<'_>) {
        if let Some(line) = self.line(record, log::max_level()) {
            eprintln!("{line}");
        }
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line a record of `target` at `level` saying `text` prints under `max`.
    fn line(target: &str, level: Level, text: &str, max: LevelFilter) -> Option<String> {
        logger().line(
            &Record::builder()
                .target(target)
                .level(level)
                .args(format_args!("{text}"))
                .build(),
            max,
        )
    }

    /// Every text given to `mask` (4 bytes or more: shorter ones would mask ordinary words)
    /// is `***` in every line, however many there are and however often one is given.
    #[test]
    fn masked_texts_never_reach_a_line() {
        mask("first-SECRET-text");
        mask("second-TOKEN-text");
        mask("first-SECRET-text");
        mask("abc");
        let text = "a first-SECRET-text, a second-TOKEN-text and abc";
        assert_eq!(
            line(
                "wecom_material_core::x",
                Level::Warn,
                text,
                LevelFilter::Warn
            )
            .as_deref(),
            Some("[warning] a ***, a *** and abc")
        );
        let masked = logger().masked.lock().unwrap().clone();
        assert_eq!(
            masked.iter().filter(|m| *m == "first-SECRET-text").count(),
            1
        );
    }

    /// Only this project's records are printed (a dependency's may hold a whole URI), and
    /// only up to the level asked for: `-v` adds the debug lines to the warnings.
    #[test]
    fn only_this_projects_records_up_to_the_level_are_printed() {
        let ours = "wecom_material_ureq::run";
        for dependency in ["ureq::unversioned::run", "rustls::client"] {
            for max in [LevelFilter::Warn, LevelFilter::Debug] {
                assert_eq!(line(dependency, Level::Warn, "x", max), None);
            }
        }
        assert_eq!(
            line(ours, Level::Debug, "GET /x", LevelFilter::Debug).as_deref(),
            Some("[debug] GET /x")
        );
        assert_eq!(line(ours, Level::Debug, "GET /x", LevelFilter::Warn), None);
        assert_eq!(
            line(ours, Level::Warn, "w", LevelFilter::Debug).as_deref(),
            Some("[warning] w")
        );
        assert_eq!(
            line(ours, Level::Error, "e", LevelFilter::Warn).as_deref(),
            Some("[error] e")
        );
        assert_eq!(line(ours, Level::Trace, "t", LevelFilter::Debug), None);
    }
}
