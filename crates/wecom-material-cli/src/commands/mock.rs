//! `mock [--listen ADDR] [--corp-id ID --secret S]`: the emulator as a process.

use std::io::Write;

use wecom_material_mock::{App, MockConfig};

use crate::cli::MockArgs;
use crate::failure::Failure;

/// Runs the emulator until the process is stopped. The first line on stdout is its base URL.
pub(crate) fn run(args: &MockArgs) -> Result<(), Failure> {
    let mut config = MockConfig::default();
    if let (Some(corp_id), Some(secret)) = (&args.corp_id, &args.secret) {
        config.apps = vec![App::new(corp_id.clone(), secret.clone())];
    }
    let corp_id = config.apps[0].corp_id.clone();
    wecom_material_mock::run_blocking(args.listen, config, |handle| {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{}", handle.base_url());
        let _ = stdout.flush();
        eprintln!(
            "WeCom emulator on {} for corp id {corp_id}; stop it with Ctrl-C",
            handle.base_url()
        );
    })
    .map_err(|e| Failure::other(format!("emulator on {}: {e}", args.listen)))
}
