//! `wecom-material`: every WeCom temporary material operation from the shell.
//!
//! Exit status: 0 on success, 1 on an API or transport error, 2 on a usage or validation
//! error (nothing sent). Errors are one line on stderr.

#![forbid(unsafe_code)]

mod cli;
mod commands;
mod failure;
mod logger;
mod output;
mod part_file;
mod progress;
mod session;
mod token_store;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{CallbackCommand, Cli, Command};
use crate::commands::get::Source;
use crate::failure::{EXIT_USAGE, Failure};
use crate::output::Output;
use crate::session::{Session, Settings};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // clap's message is several lines; the contract is one line.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("usage error");
            eprintln!("{} (see --help)", failure::one_line(first));
            return ExitCode::from(EXIT_USAGE);
        }
        Err(e) => {
            // --help, --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    logger::init(cli.verbose);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let out = Output { json: cli.json };
    let settings = Settings {
        base_url: cli.base_url,
        corp_id: cli.corp_id,
        secret: cli.secret,
        token_cache: cli.token_cache,
        idle_timeout: std::time::Duration::from_secs(cli.timeout),
        retries: cli.retries,
    };
    match cli.command {
        Command::Upload(args) => with_session(&settings, |s| commands::upload::run(s, out, &args)),
        Command::UploadImage(args) => {
            with_session(&settings, |s| commands::upload_image::run(s, out, &args))
        }
        Command::Get(args) => with_session(&settings, |s| {
            commands::get::run(s, out, &args, Source::Media)
        }),
        Command::HdVoice(args) => with_session(&settings, |s| {
            commands::get::run(s, out, &args, Source::HdVoice)
        }),
        Command::UploadByUrl(args) => {
            with_session(&settings, |s| commands::upload_by_url::run(s, out, &args))
        }
        Command::Job(args) => with_session(&settings, |s| commands::job::run(s, out, &args)),
        Command::Callback {
            command: CallbackCommand::Decrypt(args),
        } => commands::callback::run(out, &args),
        Command::Mock(args) => commands::mock::run(&args),
        Command::Demo => commands::demo::run(out),
    }
}

/// Runs an API command with a client whose token comes from and goes back to the cache.
fn with_session(
    settings: &Settings,
    command: impl FnOnce(&Session) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let session = Session::open(settings)?;
    let result = command(&session);
    session.persist_after(&result);
    result
}
