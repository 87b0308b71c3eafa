//! `ringcast profile show`: the effective configuration, each value with
//! where it came from.

use std::process::ExitCode;

use clap::Subcommand;
use ringcast::config::layers;
use ringcast::config::machine::online_cpus;

use super::{init_logging, load, Failure, SelectArgs};

#[derive(Subcommand)]
pub enum ProfileCommand {
    /// Print the effective configuration, each value with its source
    /// (default, profile, env, flag).
    Show(SelectArgs),
}

/// Prints the configuration as `serve` would run it, with the notes of
/// `auto` and of the fit to this machine.
pub fn show(select: SelectArgs) -> Result<ExitCode, Failure> {
    let (mut effective, why) = load(&select, Vec::new())?;
    init_logging(&effective.config);
    let mut notes: Vec<String> = why.into_iter().collect();
    notes.extend(layers::fit_to_machine(&mut effective, &online_cpus()));
    print!("{}", layers::render(&effective, &notes));
    Ok(ExitCode::SUCCESS)
}
