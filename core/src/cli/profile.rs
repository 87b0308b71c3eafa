//! `ringcast profile show`: the effective configuration, each value with
//! where it came from, for the same flags `ringcast serve` takes.

use std::process::ExitCode;

use clap::Subcommand;
use ringcast::config::layers;
use ringcast::config::machine::online_cpus;

use super::flags::ServeFlags;
use super::{init_logging, load, Failure};

#[derive(Subcommand)]
pub enum ProfileCommand {
    /// Print the effective configuration, each value with its source
    /// (default, profile, env, flag). Takes every flag of `serve`, so it
    /// shows exactly what that serve command would run with.
    Show(Box<ServeFlags>),
}

/// Prints the configuration as `serve` would run it with the same flags,
/// with the notes of `auto` and of the fit to this machine.
pub fn show(flags: ServeFlags) -> Result<ExitCode, Failure> {
    let (mut effective, why) = load(&flags.select, flags.flag_settings())?;
    init_logging(&effective.config);
    let mut notes: Vec<String> = why.into_iter().collect();
    notes.extend(layers::fit_to_machine(&mut effective, &online_cpus()));
    print!("{}", layers::render(&effective, &notes));
    Ok(ExitCode::SUCCESS)
}
