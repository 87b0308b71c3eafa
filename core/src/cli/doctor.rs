//! `ringcast doctor`: checks this machine against what the profile needs;
//! exit 1 when a finding is a blocker.

use std::process::ExitCode;

use ringcast::config::doctor::{self, Probe};

use super::{init_logging, load, profile_label, Failure, SelectArgs};

/// Prints the report; the exit code is its worst finding's.
pub fn run(select: SelectArgs) -> Result<ExitCode, Failure> {
    let (effective, why) = load(&select, Vec::new())?;
    init_logging(&effective.config);
    if let Some(why) = why {
        println!("{why}");
    }
    let config = &effective.config;
    let findings = doctor::run(config, &Probe::read(config));
    print!(
        "{}",
        doctor::render(&profile_label(&effective), config, &findings)
    );
    Ok(match doctor::worst(&findings) {
        doctor::Status::Blocker => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    })
}
