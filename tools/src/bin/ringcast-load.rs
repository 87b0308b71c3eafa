//! `ringcast-load`: a load generator for any RFC 6455 server.
//!
//! One subcommand per scenario; today `connect` (open N idle connections at a
//! rate, hold them, measure the server's memory per connection). Progress goes
//! to stderr, the report to stdout (and to `--json PATH`). Exit codes: 0 the
//! run completed (its report counts any failed connections), 1 the run could
//! not be carried out, 2 bad arguments or a run that cannot fit the limits.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ringcast_tools::connect::{self, ConnectConfig};
use ringcast_tools::cpus::CpuList;
use ringcast_tools::rlimit::{raise_nofile, reserved_fds};
use ringcast_tools::source::SourceAddrs;
use ringcast_tools::url::WsUrl;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "ringcast-load",
    version,
    about = "Load generator for RFC 6455 WebSocket servers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Open many connections at a fixed rate, hold them idle, and report
    /// handshake latency and the server's RSS growth per connection.
    Connect(ConnectArgs),
}

#[derive(Args)]
struct ConnectArgs {
    /// Target, e.g. ws://127.0.0.1:8080/echo
    #[arg(long)]
    url: String,
    /// Connections to open in all
    #[arg(long)]
    connections: u64,
    /// Connections started per second, over all threads
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// How long to hold the connections once all are open
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    hold: Duration,
    /// Wait after the open phase before sampling the server's RSS (capped at --hold)
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    settle: Duration,
    /// Source addresses, round-robin: 127.0.0.2-127.0.0.9, or a comma list
    #[arg(long)]
    source: Option<String>,
    /// PID of the server, to report its RSS growth per connection
    #[arg(long)]
    server_pid: Option<u32>,
    /// Generator threads, one monoio runtime each
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Pin generator threads to these CPUs (thread i -> i-th CPU, wrapping): 1, 0,2, 2-3
    #[arg(long)]
    cpus: Option<String>,
    /// Limit on TCP connect + handshake of one connection
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    connect_timeout: Duration,
    /// Limit on waiting for the server's close frame at the end
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    close_timeout: Duration,
    /// Also write the report as JSON to this file
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Connect(args) => run_connect(args),
    }
}

/// A one-line error and exit code 2 (bad arguments, or a run that cannot fit).
fn refuse(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("ringcast-load: {msg}");
    ExitCode::from(2)
}

fn run_connect(args: ConnectArgs) -> ExitCode {
    let url = match WsUrl::parse(&args.url) {
        Ok(u) => u,
        Err(e) => return refuse(format!("--url: {e}")),
    };
    let sources = match args
        .source
        .as_deref()
        .map(str::parse::<SourceAddrs>)
        .transpose()
    {
        Ok(s) => s,
        Err(e) => return refuse(format!("--source: {e}")),
    };
    let cpus = match args.cpus.as_deref().map(str::parse::<CpuList>).transpose() {
        Ok(c) => c,
        Err(e) => return refuse(format!("--cpus: {e}")),
    };
    if let Some(Err(e)) = cpus.as_ref().map(CpuList::check_online) {
        return refuse(format!("--cpus: {e}"));
    }
    if !(args.rate.is_finite() && args.rate > 0.0) {
        return refuse("--rate must be a positive number of connections per second");
    }
    if args.threads == 0 || args.threads > 1024 {
        return refuse("--threads must be between 1 and 1024");
    }
    if args.connections == 0 {
        return refuse("--connections must be at least 1");
    }

    let limit = match raise_nofile() {
        Ok(l) => l,
        Err(e) => return refuse(format!("cannot read or raise RLIMIT_NOFILE: {e}")),
    };
    let allowed = limit.soft.saturating_sub(reserved_fds(args.threads));
    eprintln!(
        "open-file limit: soft {} -> {} (hard {}): room for {allowed} connections",
        limit.before, limit.soft, limit.hard
    );
    if args.connections > allowed {
        return refuse(format!(
            "--connections {} exceeds the {allowed} this process's open-file limit allows (hard limit {}, {} kept for the runtime)",
            args.connections,
            limit.hard,
            reserved_fds(args.threads)
        ));
    }

    let cfg = ConnectConfig {
        url,
        connections: args.connections,
        rate: args.rate,
        hold: args.hold,
        settle: args.settle,
        sources,
        server_pid: args.server_pid,
        threads: args.threads,
        cpus,
        connect_timeout: args.connect_timeout,
        close_timeout: args.close_timeout,
    };
    let mut report = match connect::run(&cfg, &mut |line| eprintln!("{line}")) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ringcast-load: {e}");
            return ExitCode::from(1);
        }
    };
    report.fd_limit = Some(limit.soft);
    println!("{report}");
    if let Some(path) = &args.json {
        let written = serde_json::to_vec_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|json| std::fs::write(path, json).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("ringcast-load: cannot write {}: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}
