//! The `ringcast` binary: `ringcast serve` runs the server.
//!
//! Prints `ringcast listening on ADDR` on stdout once every worker accepts
//! (scripts and tests wait for that line); everything else goes to stderr
//! through `tracing` (level from `RINGCAST_LOG`, default `info`). SIGINT or
//! SIGTERM drains (close 1001 to every connection); a second signal exits at
//! once. Errors are one line; exit code 2 for bad configuration.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ringcast::config::ServerConfig;
use ringcast::server::{self, StartError};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tracing::info;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "ringcast",
    version,
    about = "WebSocket messaging server, one io_uring event loop per core"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
}

/// Every flag defaults to the embedded configuration (see `ServerConfig`).
#[derive(Args)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Worker threads, one event loop per core; 0 = online cores [default: 0]
    #[arg(long)]
    workers: Option<usize>,
    /// Do not pin workers to cores.
    #[arg(long)]
    no_pin: bool,
    /// Use the epoll driver even where io_uring works.
    #[arg(long)]
    force_epoll: bool,
    /// Largest frame payload in bytes [default: 65536]
    #[arg(long)]
    max_frame_size: Option<u64>,
    /// Largest message in bytes; also raises the frame limit to match when that is not set [default: 65536]
    #[arg(long)]
    max_message_size: Option<u64>,
    /// Largest handshake request head in bytes [default: 8192]
    #[arg(long)]
    max_handshake_bytes: Option<usize>,
    /// Outbound bytes queued per connection before it is closed as a slow consumer [default: 1048576]
    #[arg(long)]
    max_outbound_bytes: Option<usize>,
    /// Connections per worker before new handshakes get 503 [default: 100000]
    #[arg(long)]
    max_connections_per_worker: Option<usize>,
    /// Handshake timeout, e.g. 10s [default: 10s]
    #[arg(long, value_parser = humantime::parse_duration)]
    handshake_timeout: Option<Duration>,
    /// Silence before the server pings, e.g. 30s [default: 30s]
    #[arg(long, value_parser = humantime::parse_duration)]
    ping_interval: Option<Duration>,
    /// Silence before the connection is closed, e.g. 60s [default: 60s]
    #[arg(long, value_parser = humantime::parse_duration)]
    idle_timeout: Option<Duration>,
    /// Wait for the peer's close frame, e.g. 5s [default: 5s]
    #[arg(long, value_parser = humantime::parse_duration)]
    close_timeout: Option<Duration>,
    /// Wait for connections to close on shutdown, e.g. 10s [default: 10s]
    #[arg(long, value_parser = humantime::parse_duration)]
    drain_timeout: Option<Duration>,
    /// io_uring entries per worker [default: 1024]
    #[arg(long)]
    uring_entries: Option<u32>,
    /// Listen backlog per worker [default: 1024]
    #[arg(long)]
    backlog: Option<u32>,
    /// Subprotocol the server accepts (repeatable, in preference order).
    #[arg(long = "subprotocol")]
    subprotocols: Vec<String>,
}

impl ServeArgs {
    fn into_config(self) -> ServerConfig {
        let mut c = ServerConfig::default();
        macro_rules! set {
            ($($field:ident),*) => { $(if let Some(v) = self.$field { c.$field = v; })* };
        }
        set!(
            listen,
            workers,
            max_handshake_bytes,
            max_outbound_bytes,
            max_connections_per_worker,
            handshake_timeout,
            ping_interval,
            idle_timeout,
            close_timeout,
            drain_timeout,
            uring_entries,
            backlog
        );
        if let Some(max) = self.max_message_size {
            c.max_message_size = max;
            c.max_frame_size = max;
        }
        if let Some(max) = self.max_frame_size {
            c.max_frame_size = max;
        }
        c.pin_workers = !self.no_pin;
        c.force_epoll = self.force_epoll;
        c.subprotocols = self.subprotocols;
        c
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RINGCAST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match cli.command {
        Command::Serve(args) => match serve(args.into_config()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ringcast: {e}");
                match e {
                    ServeError::Start(StartError::Config(_)) => ExitCode::from(2),
                    _ => ExitCode::FAILURE,
                }
            }
        },
    }
}

#[derive(Debug, thiserror::Error)]
enum ServeError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

fn serve(config: ServerConfig) -> Result<(), ServeError> {
    // Handlers first: a signal during start-up must not kill us half-started.
    let mut signals = Signals::new([SIGINT, SIGTERM]).map_err(ServeError::Signals)?;
    let handle = server::start(config)?;
    println!("ringcast listening on {}", handle.local_addr());
    let _ = std::io::stdout().flush();
    if let Some(signal) = signals.forever().next() {
        info!(signal, "shutting down: closing connections with 1001");
    }
    handle.shutdown();
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            eprintln!("ringcast: second signal, exiting now");
            std::process::exit(130);
        }
    });
    handle.join();
    info!("stopped");
    Ok(())
}
