//! `ringcast serve`: the server's life from start-up to the drain.
//!
//! The flags (see [`super::flags`]) resolve the configuration; then logging
//! starts, the open-file limit is raised (with a warning when it cannot hold
//! the profile's planned connections), transparent huge pages are allowed or
//! not (`server.transparent_huge_pages`) and the server runs until a signal.

use std::io::Write;
use std::process::ExitCode;

use ringcast::config::doctor::{checks, Status};
use ringcast::config::layers;
use ringcast::config::machine::online_cpus;
use ringcast::config::ServerConfig;
use ringcast::os::rlimit::raise_nofile;
use ringcast::os::thp::set_transparent_huge_pages;
use ringcast::server;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tracing::{info, warn};

use super::flags::ServeFlags;
use super::{init_logging, load, profile_label, Failure};

/// Loads the configuration, fits it to this machine, raises the fd limit and
/// serves until a signal.
pub fn run(flags: ServeFlags) -> Result<ExitCode, Failure> {
    let (mut effective, why) = load(&flags.select, flags.flag_settings())?;
    init_logging(&effective.config);
    if let Some(why) = why {
        info!("{why}");
    }
    info!(profile = %profile_label(&effective), "configuration loaded");
    for warning in layers::fit_to_machine(&mut effective, &online_cpus()) {
        warn!("{warning}");
    }
    // Each connection is an fd.
    match raise_nofile() {
        Ok(limit) => info!(soft = limit.soft, hard = limit.hard, "open-file limit"),
        Err(e) => warn!("cannot raise the open-file limit: {e}"),
    }
    warn_if_fds_fall_short(&effective.config);
    let huge = effective.config.server.transparent_huge_pages;
    if let Err(e) = set_transparent_huge_pages(huge) {
        warn!("cannot set transparent huge pages (server.transparent_huge_pages = {huge}): {e}");
    }
    serve(effective.config)?;
    Ok(ExitCode::SUCCESS)
}

/// Warns when the open-file limits, as they stand after the raise, cannot
/// hold the connections the profile plans for (`capacity.planned_connections`):
/// each connection is one fd, and past the limit `accept` fails with
/// `EMFILE`, which clients see as refused connections long before the
/// profile's capacity. The judgement and the fix (`LimitNOFILE` in the unit
/// from `tuning/`, `ulimit -n`, the container's `--ulimit`) are those of
/// `ringcast doctor`'s open-files check, so the two never disagree. Caps
/// beyond the limit without a capacity statement stay doctor's business:
/// the embedded defaults allow more connections than most boxes' limits.
fn warn_if_fds_fall_short(config: &ServerConfig) {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let finding = checks::open_files(
        config,
        read("/proc/self/limits").as_deref(),
        read("/proc/sys/fs/nr_open").as_deref(),
    );
    if finding.status == Status::Blocker {
        let fix = finding.fix.unwrap_or_default();
        warn!("open files: {}; fix: {fix}", finding.detail);
    }
}

/// Starts the server, prints the line scripts wait for, and runs the
/// signal loop: SIGHUP reloads TLS, the first SIGINT or SIGTERM drains, a
/// second one exits at once.
fn serve(config: ServerConfig) -> Result<(), Failure> {
    use signal_hook::consts::SIGHUP;
    // Handlers first: a signal during start-up must not kill us half-started
    // (a SIGHUP then is a reload once the server runs).
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP]).map_err(Failure::Signals)?;
    let drain_timeout = humantime::format_duration(config.timeouts.drain_timeout).to_string();
    let handle = server::start(config)?;
    println!("ringcast listening on {}", handle.local_addr());
    let _ = std::io::stdout().flush();
    // SIGHUP (`systemctl reload`) re-reads the TLS certificate and key for new
    // connections and serving goes on; a refused file (or TLS off) leaves the
    // certificate in service as it was. SIGINT or SIGTERM starts the drain.
    for signal in signals.forever() {
        if signal == SIGHUP {
            match handle.reload_tls() {
                Ok(()) => info!(
                    cert = %handle.tls_cert_path().unwrap_or(std::path::Path::new("")).display(),
                    "tls certificate reloaded"
                ),
                Err(e) => warn!("tls certificate not reloaded: {e}"),
            }
            continue;
        }
        info!(
            signal,
            drain_timeout, "shutting down: closing connections with 1001"
        );
        break;
    }
    handle.shutdown();
    std::thread::spawn(move || {
        // Only a second SIGINT or SIGTERM cuts the drain short; new
        // connections are refused by now, so a SIGHUP has nothing to reload.
        for signal in signals.forever() {
            if signal == SIGHUP {
                info!("SIGHUP during the drain: nothing to reload");
                continue;
            }
            warn!(
                signal,
                "second signal: exiting now, without waiting for the drain"
            );
            std::process::exit(130);
        }
    });
    handle.join();
    info!("stopped");
    Ok(())
}
