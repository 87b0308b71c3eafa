//! `ringcast profile capacity`: what the effective configuration holds on a
//! box — connections, deliveries/s, memory, what binds first — with its
//! arithmetic, computed by `ringcast::config::capacity` from measured costs.
//!
//! The box is the tier's own (its header names the hardware) for an
//! embedded tier, else this machine; `--on-this-machine` and the fact flags
//! override it, so a profile can be scaled to any box.

use std::process::ExitCode;

use clap::Args;
use ringcast::config::capacity::{self, Load, Machine, Statement};
use ringcast::config::doctor::checks::limit;
use ringcast::config::keys::parse_size;
use ringcast::config::layers::{self, Effective};
use ringcast::config::machine::{online_cpus, MachineFacts};

use super::{init_logging, load, profile_label, Failure, SelectArgs};

#[derive(Args)]
pub struct CapacityArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Bytes of a published message's data
    #[arg(long, value_name = "BYTES", default_value_t = Load::default().message_size)]
    pub message_size: u64,
    /// Channels each connection subscribes to
    #[arg(long, value_name = "K", default_value_t = Load::default().subscriptions_per_connection)]
    pub subscriptions_per_connection: u64,
    /// Pushes a busy subscriber gets per write: more batching costs less CPU
    /// per delivery
    #[arg(long, value_name = "F", default_value_t = Load::default().pushes_per_write)]
    pub pushes_per_write: f64,
    /// Compute for this machine (its CPUs, MemTotal, fd hard limit) even
    /// for an embedded tier, whose own box is the default
    #[arg(long)]
    pub on_this_machine: bool,
    /// Cores of the box (workers = 0 runs one per core)
    #[arg(long, value_name = "N")]
    pub cores: Option<u64>,
    /// Memory of the box, e.g. 32GiB
    #[arg(long, value_name = "SIZE", value_parser = parse_memory)]
    pub memory: Option<u64>,
    /// Hard open-file limit the server runs with
    #[arg(long, value_name = "N")]
    pub fd_limit: Option<u64>,
    /// NIC line rate in Gbit/s (this machine's is not read: 1 unless given)
    #[arg(long, value_name = "GBIT")]
    pub nic_gbit: Option<f64>,
    /// Print the statement as JSON
    #[arg(long)]
    pub json: bool,
}

fn parse_memory(text: &str) -> Result<u64, String> {
    parse_size(text)
}

/// This machine's facts; the NIC is not read (assumed 1 Gbit/s).
pub fn this_machine() -> Machine {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let fd_limit = limit(&limits, "Max open files").map_or(1024, |(_, hard)| hard);
    Machine {
        label: "this machine".into(),
        cores: online_cpus().len().max(1) as u64,
        memory: MachineFacts::read().mem_total,
        fd_limit: fd_limit.min(1 << 40),
        nic_bits_per_sec: 1_000_000_000,
    }
}

/// The box a statement is for by default: an embedded tier's own, else
/// this machine.
pub fn default_machine(effective: &Effective) -> Machine {
    effective
        .profile
        .as_ref()
        .filter(|p| p.file.ends_with("(embedded)"))
        .and_then(|p| capacity::reference_box(&p.name))
        .unwrap_or_else(this_machine)
}

/// The statement for `effective` on its default box with the default load,
/// as `profile show` prints it.
pub fn default_statement(effective: &Effective) -> Statement {
    let machine = default_machine(effective);
    capacity::compute(&effective.config, &Load::default(), &machine)
}

/// The statement for `effective` on this machine with the default load, its
/// workers capped at the cores as `serve` caps them: what `doctor` prints,
/// and `profile capacity --on-this-machine`.
pub fn this_machine_statement(effective: &Effective) -> Statement {
    let mut fitted = effective.clone();
    let _ = layers::fit_to_machine(&mut fitted, &online_cpus());
    capacity::compute(&fitted.config, &Load::default(), &this_machine())
}

pub fn run(args: CapacityArgs) -> Result<ExitCode, Failure> {
    let (mut effective, why) = load(&args.select, Vec::new())?;
    init_logging(&effective.config);
    let mut machine = if args.on_this_machine {
        this_machine()
    } else {
        default_machine(&effective)
    };
    if args.on_this_machine {
        // Serve caps the workers at this machine's cores: so does the statement.
        let _ = layers::fit_to_machine(&mut effective, &online_cpus());
    }
    if let Some(cores) = args.cores {
        machine.cores = cores;
    }
    if let Some(memory) = args.memory {
        machine.memory = memory;
    }
    if let Some(fds) = args.fd_limit {
        machine.fd_limit = fds;
    }
    if let Some(gbit) = args.nic_gbit {
        machine.nic_bits_per_sec = (gbit * 1e9) as u64;
    }
    let load = Load {
        message_size: args.message_size,
        subscriptions_per_connection: args.subscriptions_per_connection,
        pushes_per_write: args.pushes_per_write,
    };
    let statement = capacity::compute(&effective.config, &load, &machine);
    if args.json {
        let mut value = statement.to_json();
        value["profile"] = profile_label(&effective).into();
        println!("{value:#}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("# ringcast capacity: profile {}", profile_label(&effective));
    if let Some(why) = why {
        println!("# {why}");
    }
    println!("# {}", statement.summary());
    for line in &statement.lines {
        println!("{line}");
    }
    println!(
        "\ncosts measured up to {} on {}; `--json` lists each with its command",
        capacity::COSTS_DATE,
        capacity::COSTS_BOX
    );
    Ok(ExitCode::SUCCESS)
}
