//! `wecom-material-mock`: the WeCom emulator as a standalone command, the same as
//! `wecom-material mock` without the rest of the CLI. What the Python wheel installs.

use std::process::ExitCode;

use clap::Parser;
use wecom_material_mock::cli::{MockArgs, MockCommandError, run};

/// A loopback emulator of the WeCom temporary material API, with an admin API under
/// /__mock/ (faults, clock, request log, reset). The first stdout line (its base URL, or with
/// --json one JSON line) is printed once the socket is bound.
#[derive(Parser)]
#[command(name = "wecom-material-mock", version)]
struct Command {
    #[command(flatten)]
    mock: MockArgs,
    /// Log one line per request on stderr (token and secret masked).
    #[arg(short, long)]
    verbose: bool,
}

fn main() -> ExitCode {
    let command = Command::parse();
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match run(
        &command.mock,
        env("WECOM_CORP_ID"),
        env("WECOM_SECRET"),
        command.verbose,
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wecom-material-mock: {e}");
            match e {
                MockCommandError::Usage(_) => ExitCode::from(2),
                MockCommandError::Start(_) => ExitCode::FAILURE,
            }
        }
    }
}
