//! `ringcast profile show`: the effective configuration, each value with
//! where it came from, for the same flags `ringcast serve` takes; and
//! `ringcast profile capacity` (`capacity.rs`).

use std::process::ExitCode;

use clap::Subcommand;
use ringcast::config::layers;
use ringcast::config::machine::online_cpus;

use super::capacity::{default_machine, default_statement, CapacityArgs};
use super::flags::ServeFlags;
use super::{init_logging, load, Failure};

#[derive(Subcommand)]
pub enum ProfileCommand {
    /// Print the effective configuration, each value with its source
    /// (default, profile, env, flag). Takes every flag of `serve`, so it
    /// shows exactly what that serve command would run with.
    Show(Box<ServeFlags>),
    /// Compute what the effective configuration holds — connections,
    /// deliveries/s, memory, which resource binds first — and print the
    /// arithmetic (`--json` for data).
    Capacity(Box<CapacityArgs>),
}

/// Prints the configuration as `serve` would run it with the same flags,
/// with the notes of `auto` and of the fit to this machine.
pub fn show(flags: ServeFlags) -> Result<ExitCode, Failure> {
    let (mut effective, why) = load(&flags.select, flags.flag_settings())?;
    init_logging(&effective.config);
    let mut notes: Vec<String> = why.into_iter().collect();
    // Computed before the workers are fitted to this machine: the statement
    // is for the profile's own box.
    notes.push(format!(
        "capacity on {}: {} (ringcast profile capacity prints the arithmetic)",
        default_machine(&effective).label,
        default_statement(&effective).summary()
    ));
    notes.extend(layers::fit_to_machine(&mut effective, &online_cpus()));
    print!("{}", layers::render(&effective, &notes));
    Ok(ExitCode::SUCCESS)
}
