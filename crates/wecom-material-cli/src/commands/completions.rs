//! `completions <SHELL>` (a completion script on stdout, clap_complete) and the hidden
//! `manpage <DIR>` (roff pages written by clap_mangen): both from the clap definitions in
//! `cli.rs`, so they never drift from the parser.

use std::path::Path;

use clap::CommandFactory;
use serde_json::json;

use crate::cli::{Cli, CompletionsArgs, ManpageArgs};
use crate::failure::Failure;
use crate::output::Output;

/// The binary's name, as the completion scripts register it.
const BIN_NAME: &str = "wecom-material";

/// Prints the completion script of `args.shell` on stdout.
pub(crate) fn completions(args: &CompletionsArgs) -> Result<(), Failure> {
    let mut command = Cli::command();
    let mut stdout = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut command, BIN_NAME, &mut stdout);
    Ok(())
}

/// Writes `wecom-material.1` and one page per subcommand (`wecom-material-upload.1`, …) into
/// `args.dir`, creating it when missing, and prints the main page's path.
pub(crate) fn manpage(out: Output, args: &ManpageArgs) -> Result<(), Failure> {
    let dir: &Path = &args.dir;
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::usage(format!("cannot create {}: {e}", dir.display())))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .map_err(|e| Failure::other(format!("cannot write into {}: {e}", dir.display())))?;
    let main = dir.join(format!("{BIN_NAME}.1"));
    out.emit(json!({ "path": main.display().to_string() }), || {
        format!("wrote {} and one page per subcommand", main.display())
    });
    Ok(())
}
