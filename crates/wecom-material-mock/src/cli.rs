//! The emulator as a command (feature `cli`): the flags and the run loop shared by the
//! standalone `wecom-material-mock` binary (what the Python wheel ships) and the
//! `wecom-material mock` subcommand.
//!
//! Stdout: with `--json`, one JSON line (`base_url`, `port`, `corp_id`, `secret`, `apps`,
//! `pid`, `admin_url`); otherwise the base URL, then `export` lines ready to paste into a
//! shell. Either way the first line is printed after the socket is bound: it is the readiness
//! signal. It is a test server: printing its own secrets is the point. Stderr: a banner, the
//! notes of [`MockConfig::on_note`] (a media evicted for the byte budget), and with `verbose`
//! one line per request (token and secret masked).

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::{App, CallbackTarget, MockConfig};

/// The flags of the emulator command. `Debug` redacts the secrets, the callback token and the
/// AES key.
#[derive(Clone, clap::Args)]
pub struct MockArgs {
    /// Address to listen on (loopback only unless --allow-remote).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Allow a --listen address that is not loopback (the emulator and its admin API have no
    /// authentication: anyone who can reach it can drive it).
    #[arg(long)]
    pub allow_remote: bool,
    /// Corp id of the first app [default: WECOM_CORP_ID (for `wecom-material mock`, its global
    /// --corp-id first), else ww-mock-corp].
    #[arg(long, value_name = "ID")]
    pub corp_id: Option<String>,
    /// Secret of the first app [default: WECOM_SECRET (for `wecom-material mock`, its global
    /// --secret first), else mock-secret].
    #[arg(long, value_name = "S")]
    pub secret: Option<String>,
    /// One more app (repeatable). Apps of one corp share its media; each app gets its own
    /// token.
    #[arg(long = "app", value_name = "CORP_ID:SECRET", value_parser = parse_app)]
    pub apps: Vec<(String, String)>,
    /// Print one JSON line (base_url, port, corp_id, secret, apps, pid, admin_url) as the
    /// first and only stdout line, once the socket is bound: the readiness signal for a
    /// test harness.
    #[arg(long)]
    pub json: bool,
    /// Milliseconds added to every answer (a realistic round trip).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub latency_ms: u64,
    /// Bytes per second of each download body, per connection [default: unlimited].
    #[arg(long, value_name = "BYTES_PER_SEC", value_parser = clap::value_parser!(u64).range(1..))]
    pub bandwidth: Option<u64>,
    /// Answer 45033 to a media/get when K answers for the same media id are already in flight
    /// [default: no limit].
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_concurrent_per_media: Option<u64>,
    /// Hand out media ids with `+`, `/` and `=` (every second one), to check that a client
    /// percent-encodes them. By default ids use WeCom's alphabet [A-Za-z0-9_-].
    #[arg(long)]
    pub strict_ids: bool,
    /// No effect: the ids of WeCom's alphabet are the default now (see --strict-ids).
    #[arg(long, hide = true)]
    pub safe_ids: bool,
    /// Requests the log keeps (a ring buffer; the oldest go first).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub request_log: usize,
    /// Bytes all media and uploadimg images may hold together; past it the oldest go, with
    /// a note on stderr [default: 2 GiB]. Media also go 3 days after upload (emulator clock).
    #[arg(long, value_name = "BYTES")]
    pub max_media_bytes: Option<u64>,
    /// Successful uploadimg calls per corp per day before 45009.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub upload_img_quota: u32,
    /// Largest media/upload image, in bytes [default: 10 MiB].
    #[arg(long, value_name = "BYTES")]
    pub max_image_bytes: Option<u64>,
    /// Largest media/upload voice, in bytes [default: 2 MiB].
    #[arg(long, value_name = "BYTES")]
    pub max_voice_bytes: Option<u64>,
    /// Largest media/upload video, in bytes [default: 10 MiB].
    #[arg(long, value_name = "BYTES")]
    pub max_video_bytes: Option<u64>,
    /// Largest media/upload file, in bytes [default: 20 MiB].
    #[arg(long, value_name = "BYTES")]
    pub max_file_bytes: Option<u64>,
    /// Largest media/uploadimg image, in bytes [default: 2 MiB].
    #[arg(long, value_name = "BYTES")]
    pub max_uploadimg_bytes: Option<u64>,
    /// Largest file media/upload_by_url fetches, in bytes [default: 200 MiB].
    #[arg(long, value_name = "BYTES")]
    pub max_upload_by_url_bytes: Option<u64>,
    /// Deliver the encrypted job-finished callback to this loopback http:// URL (needs
    /// --callback-token and --callback-aes-key).
    #[arg(long, value_name = "URL", requires_all = ["callback_token", "callback_aes_key"])]
    pub callback_url: Option<String>,
    /// The callback's Token.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "WECOM_MOCK_CALLBACK_TOKEN",
        hide_env_values = true
    )]
    pub callback_token: Option<String>,
    /// The callback's 43-character EncodingAESKey.
    #[arg(
        long,
        value_name = "KEY",
        env = "WECOM_MOCK_CALLBACK_AES_KEY",
        hide_env_values = true
    )]
    pub callback_aes_key: Option<String>,
    /// The receive id the callback message ends with [default: the first app's corp id].
    #[arg(long, value_name = "ID")]
    pub callback_receive_id: Option<String>,
}

impl std::fmt::Debug for MockArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("MockArgs")
            .field("listen", &self.listen)
            .field("corp_id", &self.corp_id)
            .field("secret", &redacted(&self.secret))
            .field(
                "apps",
                &self.apps.iter().map(|(c, _)| c).collect::<Vec<_>>(),
            )
            .field("json", &self.json)
            .field("strict_ids", &self.strict_ids)
            .field("callback_url", &self.callback_url)
            .field("callback_token", &redacted(&self.callback_token))
            .field("callback_aes_key", &redacted(&self.callback_aes_key))
            .finish_non_exhaustive()
    }
}

/// Why the command could not run.
#[derive(Debug)]
pub enum MockCommandError {
    /// The flags do not fit together (exit 2).
    Usage(String),
    /// The emulator could not start (the address is taken, …).
    Start(String),
}

impl std::fmt::Display for MockCommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MockCommandError::Usage(m) | MockCommandError::Start(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for MockCommandError {}

fn parse_app(value: &str) -> Result<(String, String), String> {
    match value.split_once(':') {
        Some((corp, secret)) if !corp.is_empty() && !secret.is_empty() => {
            Ok((corp.to_owned(), secret.to_owned()))
        }
        _ => Err("expected CORP_ID:SECRET, both non-empty".to_owned()),
    }
}

impl MockArgs {
    /// The configuration these flags describe; `corp_id` and `secret` are the fallbacks for
    /// the first app when `--corp-id` / `--secret` are not given.
    pub fn config(
        &self,
        corp_id: Option<String>,
        secret: Option<String>,
    ) -> Result<MockConfig, MockCommandError> {
        let usage = |m: String| Err(MockCommandError::Usage(m));
        if !self.listen.ip().is_loopback() && !self.allow_remote {
            return usage(format!(
                "--listen {} is not a loopback address; the emulator has no authentication, \
                 so add --allow-remote to listen there anyway",
                self.listen
            ));
        }
        let mut config = MockConfig::default();
        let default = config.apps[0].clone();
        let first = App::new(
            self.corp_id.clone().or(corp_id).unwrap_or(default.corp_id),
            self.secret.clone().or(secret).unwrap_or(default.secret),
        );
        config.apps = vec![first];
        for (corp, secret) in &self.apps {
            let app = App::new(corp.clone(), secret.clone());
            if config.apps.contains(&app) {
                return usage(format!("--app {corp}:… is given twice"));
            }
            config.apps.push(app);
        }
        config.latency = Duration::from_millis(self.latency_ms);
        config.bandwidth = self.bandwidth;
        config.max_concurrent_per_media = self
            .max_concurrent_per_media
            .map(|k| usize::try_from(k).unwrap_or(usize::MAX));
        config.strict_ids = self.strict_ids;
        config.request_log_capacity = self.request_log;
        if let Some(n) = self.max_media_bytes {
            config.max_media_bytes = n;
        }
        config.upload_img_daily_quota = self.upload_img_quota;
        let limits = &mut config.limits;
        for (flag, slot) in [
            (self.max_image_bytes, &mut limits.image.max_bytes),
            (self.max_voice_bytes, &mut limits.voice.max_bytes),
            (self.max_video_bytes, &mut limits.video.max_bytes),
            (self.max_file_bytes, &mut limits.file.max_bytes),
            (self.max_uploadimg_bytes, &mut limits.upload_img.max_bytes),
            (
                self.max_upload_by_url_bytes,
                &mut limits.upload_by_url_max_bytes,
            ),
        ] {
            if let Some(n) = flag {
                *slot = n;
            }
        }
        if let Some(url) = &self.callback_url {
            let target = CallbackTarget::new(
                url.clone(),
                self.callback_token.clone().unwrap_or_default(),
                self.callback_aes_key.clone().unwrap_or_default(),
                self.callback_receive_id
                    .clone()
                    .unwrap_or_else(|| config.apps[0].corp_id.clone()),
            );
            if let Err(m) = crate::callback::check_target(&target) {
                return usage(format!("--callback-*: {m}"));
            }
            config.callback = Some(target);
        }
        Ok(config)
    }
}

/// Runs the emulator until the process is stopped (see the module docs for what it prints).
/// `corp_id` and `secret` are the fallbacks for the first app.
pub fn run(
    args: &MockArgs,
    corp_id: Option<String>,
    secret: Option<String>,
    verbose: bool,
) -> Result<(), MockCommandError> {
    let mut config = args.config(corp_id, secret)?;
    if verbose {
        config.on_request = Some(Arc::new(|request| {
            eprintln!("mock: {}", request.summary());
        }));
    }
    config.on_note = Some(Arc::new(|note| eprintln!("mock: note: {note}")));
    let apps = config.apps.clone();
    let json = args.json;
    crate::run_blocking(args.listen, config, |handle| {
        let base = handle.base_url();
        let first = &apps[0];
        let mut stdout = std::io::stdout().lock();
        if json {
            let line = serde_json::json!({
                "base_url": base,
                "port": handle.addr().port(),
                "corp_id": first.corp_id,
                "secret": first.secret,
                "apps": apps
                    .iter()
                    .map(|a| serde_json::json!({"corp_id": a.corp_id, "secret": a.secret}))
                    .collect::<Vec<_>>(),
                "pid": std::process::id(),
                "admin_url": format!("{base}{}", crate::admin::PREFIX.trim_end_matches('/')),
            });
            let _ = writeln!(stdout, "{line}");
        } else {
            let _ = writeln!(stdout, "{base}");
            let _ = writeln!(stdout, "export WECOM_BASE_URL={}", shell_quote(&base));
            let _ = writeln!(
                stdout,
                "export WECOM_CORP_ID={}",
                shell_quote(&first.corp_id)
            );
            let _ = writeln!(stdout, "export WECOM_SECRET={}", shell_quote(&first.secret));
        }
        let _ = stdout.flush();
        eprintln!(
            "WeCom emulator on {base} for corp id {}{}; admin API at {base}/__mock/ \
             (contract: {base}/__mock/openapi.json); stop it with Ctrl-C",
            first.corp_id,
            if apps.len() > 1 {
                format!(" and {} more app(s)", apps.len() - 1)
            } else {
                String::new()
            }
        );
    })
    .map_err(|e| MockCommandError::Start(format!("emulator on {}: {e}", args.listen)))
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
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        mock: MockArgs,
    }

    fn parse(args: &[&str]) -> Result<MockArgs, clap::Error> {
        Cmd::try_parse_from(std::iter::once("mock").chain(args.iter().copied())).map(|c| c.mock)
    }

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

    #[test]
    fn flags_become_the_configuration() {
        let args = parse(&[
            "--app",
            "ww-b:sb",
            "--app",
            "ww-a:s:with:colons",
            "--strict-ids",
            "--request-log",
            "5",
            "--max-media-bytes",
            "1000",
            "--upload-img-quota",
            "3",
            "--max-file-bytes",
            "64",
            "--max-upload-by-url-bytes",
            "99",
        ])
        .unwrap();
        let c = args.config(Some("ww-a".into()), None).unwrap();
        let apps: Vec<(&str, &str)> = c
            .apps
            .iter()
            .map(|a| (a.corp_id.as_str(), a.secret.as_str()))
            .collect();
        assert_eq!(
            apps,
            [
                ("ww-a", "mock-secret"),
                ("ww-b", "sb"),
                ("ww-a", "s:with:colons")
            ]
        );
        assert!(c.strict_ids);
        assert_eq!(c.request_log_capacity, 5);
        assert_eq!(c.max_media_bytes, 1000);
        assert_eq!(c.upload_img_daily_quota, 3);
        assert_eq!(c.limits.file.max_bytes, 64);
        assert_eq!(c.limits.upload_by_url_max_bytes, 99);
        assert_eq!(c.limits.image, crate::Limits::default().image);
        // The defaults.
        let c = parse(&[]).unwrap().config(None, None).unwrap();
        assert!(!c.strict_ids);
        assert_eq!(c.max_media_bytes, 2 * 1024 * 1024 * 1024);
        assert_eq!(c.request_log_capacity, 10_000);
    }

    #[test]
    fn debug_shows_no_secret() {
        let args = parse(&[
            "--secret",
            "top-secret-1",
            "--app",
            "ww-b:top-secret-2",
            "--callback-url",
            "http://127.0.0.1:9/cb",
            "--callback-token",
            "top-secret-3",
            "--callback-aes-key",
            "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
        ])
        .unwrap();
        let shown = format!("{args:?}");
        assert!(shown.contains("ww-b"), "{shown}");
        for secret in ["top-secret", "jWmYm7"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        assert!(parse(&["--app", "no-colon"]).is_err());
        assert!(parse(&["--app", ":secret"]).is_err());
        assert!(parse(&["--callback-url", "http://127.0.0.1:9/cb"]).is_err());
        let dup = parse(&["--app", "ww-x:s", "--app", "ww-x:s"]).unwrap();
        assert!(matches!(
            dup.config(None, None),
            Err(MockCommandError::Usage(_))
        ));
        let remote = parse(&["--listen", "0.0.0.0:0"]).unwrap();
        assert!(matches!(
            remote.config(None, None),
            Err(MockCommandError::Usage(_))
        ));
        let far = parse(&[
            "--callback-url",
            "http://example.com/cb",
            "--callback-token",
            "t",
            "--callback-aes-key",
            "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
        ])
        .unwrap();
        match far.config(None, None) {
            Err(MockCommandError::Usage(m)) => {
                assert!(m.contains("loopback"), "{m}");
                assert!(!m.contains("jWmYm7"), "the key is never shown: {m}");
            }
            other => panic!("{other:?}"),
        }
    }
}
