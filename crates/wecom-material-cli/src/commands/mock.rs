//! `mock`: the emulator as a process. The flags, the run loop and what it prints are the
//! emulator crate's [`wecom_material_mock::cli`] (the standalone `wecom-material-mock`
//! binary runs the same code); this command adds the global credentials as fallbacks.
//!
//! Credentials: `mock --corp-id/--secret`, else the global `--corp-id/--secret`, else
//! `WECOM_CORP_ID`/`WECOM_SECRET` (clap reads those into the global options), else the
//! built-in defaults, each value on its own.

use wecom_material_mock::cli::MockCommandError;

use crate::cli::MockArgs;
use crate::failure::Failure;
use crate::session::Settings;

/// Runs the emulator until the process is stopped. The first line on stdout is its base URL
/// (or, with `--json`, one JSON line).
pub(crate) fn run(args: &MockArgs, global: &Settings, verbose: bool) -> Result<(), Failure> {
    wecom_material_mock::cli::run(args, global.corp_id.clone(), global.secret.clone(), verbose)
        .map_err(|e| match e {
            MockCommandError::Usage(m) => Failure::usage(m),
            MockCommandError::Start(m) => Failure::other(m),
        })
}
