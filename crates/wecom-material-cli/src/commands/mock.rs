//! `mock [--listen ADDR] [--corp-id ID] [--secret S] [--latency-ms N] [--bandwidth B]
//! [--max-concurrent-per-media K] [--safe-ids] [--allow-remote]`: the emulator as a process.
//!
//! Credentials: `mock --corp-id/--secret`, else the global `--corp-id/--secret`, else
//! `WECOM_CORP_ID`/`WECOM_SECRET` (clap reads those into the global options), else the
//! built-in defaults, each value on its own. Stdout: the base URL on the first line, then
//! `export` lines ready to paste into a shell (it is a test server: printing its own secret is
//! the point). With `-v`, one line per request on stderr, token and secret masked.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use wecom_material_mock::{App, MockConfig};

use crate::cli::MockArgs;
use crate::failure::Failure;
use crate::session::Settings;

/// Runs the emulator until the process is stopped. The first line on stdout is its base URL.
pub(crate) fn run(args: &MockArgs, global: &Settings, verbose: bool) -> Result<(), Failure> {
    if !args.listen.ip().is_loopback() && !args.allow_remote {
        return Err(Failure::usage(format!(
            "--listen {} is not a loopback address; the emulator has no authentication, so \
             add --allow-remote to listen there anyway",
            args.listen
        )));
    }
    let mut config = MockConfig::default();
    let default = config.apps[0].clone();
    let corp_id = args
        .corp_id
        .clone()
        .or_else(|| global.corp_id.clone())
        .unwrap_or(default.corp_id);
    let secret = args
        .secret
        .clone()
        .or_else(|| global.secret.clone())
        .unwrap_or(default.secret);
    config.apps = vec![App::new(corp_id.clone(), secret.clone())];
    config.latency = Duration::from_millis(args.latency_ms);
    config.bandwidth = args.bandwidth;
    config.max_concurrent_per_media = args
        .max_concurrent_per_media
        .map(|k| usize::try_from(k).unwrap_or(usize::MAX));
    config.safe_ids = args.safe_ids;
    if verbose {
        config.on_request = Some(Arc::new(|request| {
            eprintln!("mock: {}", request.summary());
        }));
    }
    wecom_material_mock::run_blocking(args.listen, config, |handle| {
        let base = handle.base_url();
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{base}");
        let _ = writeln!(stdout, "export WECOM_BASE_URL={}", shell_quote(&base));
        let _ = writeln!(stdout, "export WECOM_CORP_ID={}", shell_quote(&corp_id));
        let _ = writeln!(stdout, "export WECOM_SECRET={}", shell_quote(&secret));
        let _ = stdout.flush();
        eprintln!(
            "WeCom emulator on {base} for corp id {corp_id}; admin API at {base}/__mock/; \
             stop it with Ctrl-C"
        );
    })
    .map_err(|e| Failure::other(format!("emulator on {}: {e}", args.listen)))
}

/// The value as one POSIX shell word: as it is when it has only safe characters, else in
/// single quotes.
fn shell_quote(value: &str) -> String {
    let safe = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./:@%+=,".contains(&b));
    if safe {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn shell_quoting() {
        assert_eq!(
            shell_quote("http://127.0.0.1:8080"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's$x"), r"'it'\''s$x'");
        assert_eq!(shell_quote(""), "''");
    }
}
