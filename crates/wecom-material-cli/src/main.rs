//! `wecom-material`: every WeCom temporary material operation from the shell.
//!
//! Exit status: 0 on success, 1 on an API or transport error, 2 on a usage or validation
//! error (nothing sent). Errors are one line on stderr, except clap's usage errors, which are
//! printed whole (the argument, the accepted values, "did you mean"). With `--json` a failure
//! also prints one object on stdout: `{"error", "errcode", "exit"}`.

#![forbid(unsafe_code)]

mod cli;
mod commands;
mod failure;
mod interrupt;
mod logger;
mod output;
mod progress;
mod relay;
mod session;
mod stop_signal;
mod token_store;

use std::process::ExitCode;

use clap::Parser;

use wecom_material_core::ops::get_media::MediaEndpoint;

use crate::cli::{CallbackCommand, Cli, Command};
use crate::failure::{EXIT_USAGE, Failure};
use crate::output::Output;
use crate::session::{Session, Settings};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    logger::init(cli.verbose);
    let json = cli.json;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) if failure.is_reported() => ExitCode::from(failure.exit_code()),
        Err(failure) => {
            eprintln!("error: {failure}");
            if json {
                Output::json_line(&failure.to_json());
            }
            ExitCode::from(failure.exit_code())
        }
    }
}

/// clap's whole message (stderr; `--help` and `--version` on stdout, exit 0). No arguments
/// print the help, exit 2. With `--json` among the arguments, a usage error also prints the
/// JSON failure object with clap's first line.
fn usage_error(e: &clap::Error) -> ExitCode {
    let _ = e.print();
    let code = u8::try_from(e.exit_code()).unwrap_or(EXIT_USAGE);
    let wants_json = std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json");
    if code != 0 && wants_json {
        let text = e.render().to_string();
        let first = if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        {
            "a command is required (the help is on stderr)"
        } else {
            let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            line.trim_start_matches("error: ")
        };
        Output::json_line(&serde_json::json!({
            "error": failure::one_line(first),
            "errcode": null,
            "exit": code,
        }));
    }
    ExitCode::from(code)
}

fn run(cli: Cli) -> Result<(), Failure> {
    let out = Output {
        json: cli.json,
        quiet: cli.quiet,
    };
    let settings = Settings {
        base_url: cli.base_url,
        corp_id: cli.corp_id,
        secret: cli.secret,
        token_cache: cli.token_cache,
        token_store: cli.token_store,
        idle_timeout: std::time::Duration::from_secs(cli.timeout),
        retries: cli.retries,
    };
    match cli.command {
        Command::Upload(args) => with_session(&settings, |s| commands::upload::run(s, out, &args)),
        Command::UploadImage(args) => {
            with_session(&settings, |s| commands::upload_image::run(s, out, &args))
        }
        Command::Get(args) => with_session(&settings, |s| {
            commands::get::run(s, out, &args, MediaEndpoint::Media)
        }),
        Command::HdVoice(args) => with_session(&settings, |s| {
            commands::get::run(s, out, &args, MediaEndpoint::HdVoice)
        }),
        Command::UploadByUrl(args) => {
            with_session(&settings, |s| commands::upload_by_url::run(s, out, &args))
        }
        Command::Job(args) => with_session(&settings, |s| commands::job::run(s, out, &args)),
        Command::Callback {
            command: CallbackCommand::Decrypt(args),
        } => commands::callback::run(out, &args),
        Command::Mock(args) => commands::mock::run(&args, &settings, cli.verbose),
        Command::Demo => commands::demo::run(out),
        Command::Completions(args) => commands::completions::completions(&args),
        Command::Manpage(args) => commands::completions::manpage(out, &args),
    }
}

/// Runs an API command with a client whose token comes from and goes back to the cache.
fn with_session(
    settings: &Settings,
    command: impl FnOnce(&Session) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let session = std::sync::Arc::new(Session::open(settings)?);
    let _save_on_signal = interrupt::SaveOnSignal::install(std::sync::Arc::clone(&session));
    let result = command(&session);
    session.persist_after(&result);
    result
}
