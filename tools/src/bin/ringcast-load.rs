//! `ringcast-load`: a load generator for any RFC 6455 server.
//!
//! One subcommand per scenario: `echo` (round-trip latency, open or closed
//! loop), `fanout` (publish → delivery latency over many subscribers),
//! `storm` (drop subscribers at once, measure the reconnect and resume),
//! `connect` (idle connections and the server's memory per connection),
//! `api` (server API publishes per second and publish → delivery), and
//! `plot` (overlay the latency curves of several `--json` reports).
//!
//! Live progress goes to stderr when it is a terminal; the report goes to
//! stdout (and to `--json`, `--hgrm`, `--plot` files). Ctrl-C ends the window
//! early and still prints the report; a second Ctrl-C exits at once.
//! Exit codes: 0 the run completed (its report counts any failures), 1 the
//! run could not be carried out (or a file could not be written), 2 bad
//! arguments or a run that cannot fit the limits.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ringcast::os::cpus::CpuList;
use ringcast::os::rlimit::raise_nofile;
use ringcast_tools::connect::{self, ConnectConfig};
use ringcast_tools::echo::{self, EchoConfig, Load};
use ringcast_tools::engine::EngineConfig;
use ringcast_tools::fanout::{self, FanoutConfig, Protocol};
use ringcast_tools::plot;
use ringcast_tools::progress::Progress;
use ringcast_tools::rlimit::reserved_fds;
use ringcast_tools::source::SourceAddrs;
use ringcast_tools::storm::StormPlan;
use ringcast_tools::summary::RunReport;
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
    /// Round-trip latency and throughput against an echo endpoint, open loop
    /// (--rate, coordinated omission corrected) or closed loop (--inflight).
    Echo(EchoArgs),
    /// Publish → delivery latency over S subscribers: ringcast v1 (/ws) or a
    /// plain broadcast server; gaps and duplicates by offset.
    Fanout(FanoutArgs),
    /// Hold N subscribers, drop them (or a fraction) at once, reconnect with
    /// resume; time until all are back, and messages missed.
    Storm(StormArgs),
    /// Open many connections at a fixed rate, hold them idle, and report
    /// handshake latency and the server's RSS growth per connection.
    Connect(ConnectArgs),
    /// Overlay the latency-by-percentile curves of several --json reports.
    Plot(PlotArgs),
    /// ringcast's server API: publishes per second on keep-alive connections
    /// (closed loop) and, with --ws-url, request → delivery latency.
    Api(ApiArgs),
}

#[derive(Args)]
struct ApiArgs {
    /// The server API: http://HOST:PORT (the main port, or api.listen)
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// API key [or the environment variable RINGCAST_API_KEY]
    #[arg(long)]
    key: Option<String>,
    /// Keep-alive connections, one publishing thread each (closed loop)
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Channels published to, round-robin (apibench:0 ..)
    #[arg(long, default_value_t = 16)]
    channels: usize,
    /// Filler bytes in each publish's data
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// A /ws URL whose subscriber of every channel measures delivery
    #[arg(long)]
    ws_url: Option<String>,
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    warmup: Duration,
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    duration: Duration,
    /// After the window, the longest wait for the last deliveries
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    drain: Duration,
    /// Write the report as JSON to this file
    #[arg(long)]
    json: Option<PathBuf>,
    /// Accepted for symmetry with the other scenarios (this one prints no
    /// live progress)
    #[arg(long)]
    quiet: bool,
}

/// Options every measuring scenario shares.
#[derive(Args)]
struct Common {
    /// Target, e.g. ws://127.0.0.1:8080/echo
    #[arg(long)]
    url: String,
    /// Generator threads, one pinned monoio runtime each
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Pin generator threads to these CPUs (thread i -> i-th CPU, wrapping): 1, 0,2, 2-3
    #[arg(long)]
    cpus: Option<String>,
    /// Source addresses, round-robin: 127.0.0.2-127.0.0.9, or a comma list
    #[arg(long)]
    source: Option<String>,
    /// Load applied before recording starts
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    warmup: Duration,
    /// Recorded window
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    duration: Duration,
    /// After the window, the longest wait for replies still in flight
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    drain: Duration,
    /// Limit on TCP connect + handshake (+ subscribe) of one connection
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    connect_timeout: Duration,
    /// Limit on waiting for the server's close frames at the end
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    close_timeout: Duration,
    /// Connections opened per second during setup, all threads together
    #[arg(long, default_value_t = 5000.0)]
    connect_rate: f64,
    /// Spin-wait this long before each scheduled send for µs-precise send
    /// times (0 = timer only, ~1 ms late)
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1500us")]
    spin: Duration,
    /// While spin-waiting with no socket activity, sleep this long at a time
    /// (frees the core, e.g. under chrt; a reply landing in a nap is read up
    /// to this late). 0 = pure spin
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    nap: Duration,
    /// Name of this run in plots and comparisons
    #[arg(long)]
    label: Option<String>,
    /// Write the report as JSON to this file
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the latency distribution in HdrHistogram's .hgrm format (ms);
    /// other metrics go beside it (FILE.generator_lag.hgrm, ...)
    #[arg(long)]
    hgrm: Option<PathBuf>,
    /// Plot latency by percentile: .svg, or .html for a page with the table
    #[arg(long)]
    plot: Option<PathBuf>,
    /// No live progress, even on a terminal
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
struct EchoArgs {
    #[command(flatten)]
    common: Common,
    /// Connections
    #[arg(long, default_value_t = 100)]
    connections: u64,
    /// Open loop: messages per second over all connections
    #[arg(long, conflicts_with = "inflight")]
    rate: Option<f64>,
    /// Closed loop: messages in flight per connection
    #[arg(long)]
    inflight: Option<u32>,
    /// Message size in bytes (at least 16: the send-time stamp)
    #[arg(long, default_value_t = 20)]
    size: usize,
    /// Send binary frames (default text)
    #[arg(long)]
    binary: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum ProtocolArg {
    /// ringcast wire protocol v1 (subscribe/publish on /ws)
    Ringcast,
    /// A server that sends every message it receives to every client
    Broadcast,
}

#[derive(Args)]
struct PubSubArgs {
    /// Subscriber connections
    #[arg(long, default_value_t = 1000)]
    subscribers: u64,
    /// Channels the subscribers are spread over (ringcast): subscriber i on channel i % C
    #[arg(long, default_value_t = 1)]
    channels: u64,
    /// Publisher connections (the rate is split between them)
    #[arg(long, default_value_t = 1)]
    publishers: u64,
    /// Publishes per second, all publishers together
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Payload bytes of each publish (at least 42: stamp, publisher, sequence)
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Channel names are PREFIX:0 .. PREFIX:C-1
    #[arg(long, default_value = "load")]
    channel_prefix: String,
}

#[derive(Args)]
struct FanoutArgs {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    pubsub: PubSubArgs,
    /// What the server speaks
    #[arg(long, value_enum, default_value = "ringcast")]
    protocol: ProtocolArg,
    /// Publishers connect here instead of --url: another node of a cluster
    /// (engine.kind = "redis"), so every delivery crosses nodes
    #[arg(long)]
    publish_url: Option<String>,
}

#[derive(Args)]
struct StormArgs {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    pubsub: PubSubArgs,
    /// When to drop, counted from the start of the recorded window
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    drop_after: Duration,
    /// Share of the subscribers dropped at once (0 < f <= 1)
    #[arg(long, default_value_t = 1.0)]
    drop_fraction: f64,
    /// Resubscribe without `since` (to see what resume saves)
    #[arg(long)]
    no_resume: bool,
    /// Wait this long after the drop before reconnecting (a client's back-off)
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    reconnect_delay: Duration,
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
    /// Offer this Sec-WebSocket-Extensions value in every handshake, e.g.
    /// "permessage-deflate; client_max_window_bits" (held connections send
    /// no data, so nothing compressed is ever received)
    #[arg(long)]
    extensions: Option<String>,
    /// Also write the report as JSON to this file
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct PlotArgs {
    /// --json reports to overlay
    #[arg(required = true)]
    reports: Vec<PathBuf>,
    /// Output: .svg, or .html for a page with the percentile table
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
    /// Metric to plot: latency, generator_lag, setup, resubscribe, resume
    #[arg(long, default_value = "latency")]
    metric: String,
    /// Plot title
    #[arg(long)]
    title: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Echo(args) => run_echo(args),
        Command::Fanout(args) => run_fanout(args),
        Command::Storm(args) => run_storm(args),
        Command::Connect(args) => run_connect(args),
        Command::Plot(args) => run_plot(args),
        Command::Api(args) => run_api(args),
    }
}

fn run_api(args: ApiArgs) -> ExitCode {
    let Some(authority) = args
        .url
        .strip_prefix("http://")
        .map(|a| a.trim_end_matches('/'))
    else {
        return refuse("--url: expected http://HOST:PORT");
    };
    let addr = match std::net::ToSocketAddrs::to_socket_addrs(authority).map(|mut a| a.next()) {
        Ok(Some(addr)) => addr,
        _ => return refuse(format!("--url: cannot resolve {authority}")),
    };
    let key = match args.key.or_else(|| std::env::var("RINGCAST_API_KEY").ok()) {
        Some(key) => key,
        None => return refuse("no API key: --key or RINGCAST_API_KEY"),
    };
    let ws = match args.ws_url.as_deref().map(WsUrl::parse).transpose() {
        Ok(ws) => ws,
        Err(e) => return refuse(format!("--ws-url: {e}")),
    };
    if args.connections == 0 || args.connections > 4096 {
        return refuse("--connections: 1 to 4096");
    }
    let cfg = ringcast_tools::api::ApiConfig {
        addr,
        authority: authority.to_string(),
        key,
        connections: args.connections,
        channels: args.channels.max(1),
        size: args.size,
        warmup: args.warmup,
        duration: args.duration,
        drain: args.drain,
        ws,
    };
    match ringcast_tools::api::run(&cfg) {
        Ok(report) => {
            print!("{}", report.text());
            if let Some(path) = &args.json {
                if let Err(e) = std::fs::write(path, report.json().to_string()) {
                    eprintln!("ringcast-load: {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ringcast-load: api: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A one-line error and exit code 2 (bad arguments, or a run that cannot fit).
fn refuse(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("ringcast-load: {msg}");
    ExitCode::from(2)
}

/// A one-line error and exit code 1 (the run could not be carried out).
fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("ringcast-load: {msg}");
    ExitCode::from(1)
}

fn parse_cpus(cpus: Option<&str>) -> Result<Option<CpuList>, String> {
    let cpus = cpus
        .map(str::parse::<CpuList>)
        .transpose()
        .map_err(|e| format!("--cpus: {e}"))?;
    if let Some(Err(e)) = cpus.as_ref().map(CpuList::check_online) {
        return Err(format!("--cpus: {e}"));
    }
    Ok(cpus)
}

fn parse_sources(source: Option<&str>) -> Result<Option<SourceAddrs>, String> {
    source
        .map(str::parse::<SourceAddrs>)
        .transpose()
        .map_err(|e| format!("--source: {e}"))
}

/// Raises the open-file limit and checks `connections` fit under it; says
/// how many connections the limit allows.
fn check_fd_limit(connections: u64, threads: usize) -> Result<u64, String> {
    let limit = raise_nofile().map_err(|e| format!("cannot read or raise RLIMIT_NOFILE: {e}"))?;
    let allowed = limit.soft.saturating_sub(reserved_fds(threads));
    eprintln!(
        "open-file limit: soft {} -> {} (hard {}): room for {allowed} connections",
        limit.before, limit.soft, limit.hard
    );
    if connections > allowed {
        return Err(format!(
            "a run of {connections} connections exceeds the {allowed} this process's open-file limit allows (hard limit {}, {} kept for the runtime)",
            limit.hard,
            reserved_fds(threads)
        ));
    }
    Ok(limit.soft)
}

/// Ctrl-C and SIGTERM: the first sets the flag (end the window, report), the
/// second exits at once.
fn install_interrupt() -> Option<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&flag)).ok()?;
        signal_hook::flag::register(sig, Arc::clone(&flag)).ok()?;
    }
    Some(flag)
}

/// The engine settings from the common options (validated).
fn engine_config(c: &Common, connections: u64) -> Result<(EngineConfig, u64), String> {
    let url = WsUrl::parse(&c.url).map_err(|e| format!("--url: {e}"))?;
    if c.threads == 0 || c.threads > 1024 {
        return Err("--threads must be between 1 and 1024".into());
    }
    if c.duration.is_zero() {
        return Err("--duration must be more than 0".into());
    }
    if !(c.connect_rate.is_finite() && c.connect_rate > 0.0) {
        return Err("--connect-rate must be a positive number".into());
    }
    let cpus = parse_cpus(c.cpus.as_deref())?;
    let sources = parse_sources(c.source.as_deref())?;
    let fd_limit = check_fd_limit(connections, c.threads)?;
    Ok((
        EngineConfig {
            url,
            split: None,
            sources,
            threads: c.threads,
            cpus,
            warmup: c.warmup,
            duration: c.duration,
            drain: c.drain,
            connect_timeout: c.connect_timeout,
            close_timeout: c.close_timeout,
            connect_rate: c.connect_rate,
            connections,
            spin: c.spin,
            nap: c.nap,
            interrupt: install_interrupt(),
        },
        fd_limit,
    ))
}

/// Prints the report and writes the files asked for.
fn finish(report: &RunReport, c: &Common) -> ExitCode {
    println!("{report}");
    let mut ok = true;
    if let Some(path) = &c.json {
        match report.write_json(path) {
            Ok(()) => println!("wrote {} (JSON report)", path.display()),
            Err(e) => {
                eprintln!("ringcast-load: cannot write the JSON report: {e}");
                ok = false;
            }
        }
    }
    if let Some(path) = &c.hgrm {
        match report.write_hgrm(path) {
            Ok(files) => {
                for file in files {
                    println!("wrote {} (percentile distribution, .hgrm)", file.display());
                }
            }
            Err(e) => {
                eprintln!("ringcast-load: cannot write the .hgrm file: {e}");
                ok = false;
            }
        }
    }
    if let Some(path) = &c.plot {
        let title = format!("{} — {}", report.label, report.mode);
        let curves: Vec<_> = plot::curve_of(report, "latency").into_iter().collect();
        match plot::write_plot(path, &title, &curves) {
            Ok(kind) => println!("wrote {} (latency {})", path.display(), kind.what()),
            Err(e) => {
                eprintln!("ringcast-load: cannot write the plot: {e}");
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn run_echo(args: EchoArgs) -> ExitCode {
    let load = match (args.rate, args.inflight) {
        (Some(rate), None) if rate.is_finite() && rate > 0.0 => Load::Open { rate },
        (Some(_), None) => {
            return refuse("--rate must be a positive number of messages per second")
        }
        (None, Some(k)) if k > 0 => Load::Closed { inflight: k },
        (None, Some(_)) => return refuse("--inflight must be at least 1"),
        _ => return refuse("give --rate R (open loop) or --inflight K (closed loop)"),
    };
    if args.connections == 0 {
        return refuse("--connections must be at least 1");
    }
    if args.size < 16 || args.size > 16 * 1024 * 1024 {
        return refuse("--size must be between 16 bytes (the send-time stamp) and 16 MiB");
    }
    let (engine, fd_limit) = match engine_config(&args.common, args.connections) {
        Ok(e) => e,
        Err(e) => return refuse(e),
    };
    let target = match load {
        Load::Open { rate } => Some(rate),
        Load::Closed { .. } => None,
    };
    let progress = Progress::new(!args.common.quiet, args.connections, target);
    let cfg = EchoConfig {
        engine,
        connections: args.connections,
        size: args.size,
        binary: args.binary,
        load,
    };
    match echo::run(cfg, &progress, args.common.label.clone(), Some(fd_limit)) {
        Ok(report) => finish(&report, &args.common),
        Err(e) => fail(e),
    }
}

fn pubsub_config(
    common: &Common,
    p: &PubSubArgs,
    protocol: Protocol,
    storm: Option<StormPlan>,
) -> Result<FanoutConfig, String> {
    if p.subscribers == 0 {
        return Err("--subscribers must be at least 1".into());
    }
    if p.publishers == 0 {
        return Err("--publishers must be at least 1".into());
    }
    if p.channels == 0 {
        return Err("--channels must be at least 1".into());
    }
    if !(p.rate.is_finite() && p.rate > 0.0) {
        return Err("--rate must be a positive number of publishes per second".into());
    }
    if p.size < fanout::MIN_SIZE || p.size > 1024 * 1024 {
        return Err(format!(
            "--size must be between {} bytes (stamp, publisher, sequence) and 1 MiB",
            fanout::MIN_SIZE
        ));
    }
    let (engine, fd_limit) = engine_config(common, p.subscribers + p.publishers)?;
    Ok(FanoutConfig {
        engine,
        protocol,
        subscribers: p.subscribers,
        channels: p.channels,
        publishers: p.publishers,
        rate: p.rate,
        size: p.size,
        channel_prefix: p.channel_prefix.clone(),
        storm,
        fd_limit: Some(fd_limit),
    })
}

fn run_fanout(args: FanoutArgs) -> ExitCode {
    let protocol = match args.protocol {
        ProtocolArg::Ringcast => Protocol::Ringcast,
        ProtocolArg::Broadcast => Protocol::Broadcast,
    };
    let mut cfg = match pubsub_config(&args.common, &args.pubsub, protocol, None) {
        Ok(c) => c,
        Err(e) => return refuse(e),
    };
    if let Some(raw) = &args.publish_url {
        match WsUrl::parse(raw) {
            Ok(url) => cfg.engine.split = Some((cfg.subscribers, url)),
            Err(e) => return refuse(format!("--publish-url: {e}")),
        }
    }
    run_pubsub(cfg, &args.common)
}

/// Runs a fan-out or storm scenario with live progress, then reports it.
fn run_pubsub(cfg: FanoutConfig, common: &Common) -> ExitCode {
    let total = cfg.subscribers + cfg.publishers;
    let progress = Progress::new(!common.quiet, total, Some(cfg.rate));
    match fanout::run(cfg, &progress, common.label.clone()) {
        Ok(report) => finish(&report, common),
        Err(e) => fail(e),
    }
}

fn run_storm(args: StormArgs) -> ExitCode {
    if !(args.drop_fraction > 0.0 && args.drop_fraction <= 1.0) {
        return refuse("--drop-fraction must be in (0, 1]");
    }
    if args.drop_after >= args.common.duration {
        return refuse("--drop-after must fall inside --duration");
    }
    let plan = StormPlan {
        drop_after: args.drop_after,
        fraction: args.drop_fraction,
        resume: !args.no_resume,
        reconnect_delay: args.reconnect_delay,
    };
    let cfg = match pubsub_config(&args.common, &args.pubsub, Protocol::Ringcast, Some(plan)) {
        Ok(c) => c,
        Err(e) => return refuse(e),
    };
    run_pubsub(cfg, &args.common)
}

fn run_plot(args: PlotArgs) -> ExitCode {
    let mut curves = Vec::new();
    for path in &args.reports {
        match plot::read_curve(path, &args.metric) {
            Ok(c) => curves.push(c),
            Err(e) => return fail(e),
        }
    }
    let title = args
        .title
        .unwrap_or_else(|| format!("{} by percentile", args.metric));
    match plot::write_plot(&args.output, &title, &curves) {
        Ok(kind) => {
            println!(
                "wrote {} ({}; {} run(s), metric {})",
                args.output.display(),
                kind.what(),
                curves.len(),
                args.metric
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn run_connect(args: ConnectArgs) -> ExitCode {
    let mut url = match WsUrl::parse(&args.url) {
        Ok(u) => u,
        Err(e) => return refuse(format!("--url: {e}")),
    };
    url.extensions = args.extensions.clone();
    let sources = match parse_sources(args.source.as_deref()) {
        Ok(s) => s,
        Err(e) => return refuse(e),
    };
    let cpus = match parse_cpus(args.cpus.as_deref()) {
        Ok(c) => c,
        Err(e) => return refuse(e),
    };
    if !(args.rate.is_finite() && args.rate > 0.0) {
        return refuse("--rate must be a positive number of connections per second");
    }
    if args.threads == 0 || args.threads > 1024 {
        return refuse("--threads must be between 1 and 1024");
    }
    if args.connections == 0 {
        return refuse("--connections must be at least 1");
    }
    let fd_limit = match check_fd_limit(args.connections, args.threads) {
        Ok(l) => l,
        Err(e) => return refuse(e),
    };

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
    // Progress lines only on a terminal; the report says it all otherwise.
    let tty = std::io::stderr().is_terminal();
    let mut report = match connect::run(&cfg, &mut |line| {
        if tty {
            eprintln!("{line}");
        }
    }) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    report.fd_limit = Some(fd_limit);
    println!("{report}");
    if let Some(path) = &args.json {
        let written = serde_json::to_vec_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|json| std::fs::write(path, json).map_err(|e| e.to_string()));
        if let Err(e) = written {
            return fail(format!("cannot write {}: {e}", path.display()));
        }
    }
    ExitCode::SUCCESS
}
