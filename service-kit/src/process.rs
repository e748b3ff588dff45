//! Process exit for the binaries: errors are printed as their cause chain, without a
//! backtrace, because operators read them (a bad setting, an unreachable database).

use std::process::ExitCode;

pub fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
