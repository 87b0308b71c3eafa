//! The command line of the `ringcast` binary: the argument definitions, the
//! selection of a profile with its overrides, and why a command fails.
//!
//! One file per subcommand (`serve`, `profile`, `doctor`, `token`, `api`), and
//! `flags.rs` for the flags `serve` and `profile show` share; what every
//! command shares lives here: [`SelectArgs`] (`--profile`, `--set`),
//! [`load`] (every layer applied once), [`init_logging`] (started only once
//! the `[log]` keys are resolved) and [`Failure`], which decides the exit
//! code.

pub mod api;
pub mod capacity;
pub mod doctor;
pub mod flags;
pub mod profile;
pub mod serve;
pub mod token;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use ringcast::config::layers::{self, Effective, LoadError, Setting};
use ringcast::config::log::LogFormat;
use ringcast::config::machine::MachineFacts;
use ringcast::config::profile as profiles;
use ringcast::config::ServerConfig;
use ringcast::server::StartError;

use self::flags::ServeFlags;
use self::profile::ProfileCommand;
use self::token::{TokenArgs, TokenError};

#[derive(Parser)]
#[command(
    name = "ringcast",
    version,
    about = "WebSocket messaging server, one io_uring event loop per core"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(Box<ServeFlags>),
    /// Inspect hardware profiles.
    Profile {
        #[command(subcommand)]
        command: ProfileCommand,
    },
    /// Check this machine against what the profile needs (exit 1 on a blocker).
    Doctor(SelectArgs),
    /// Print a JWT signed with the configured key, for trying /ws with auth on.
    Token(Box<TokenArgs>),
    /// Call the server API: publish, history, presence, info.
    Api(Box<self::api::ApiArgs>),
}

/// Which configuration: a profile, then overrides.
#[derive(Args)]
pub struct SelectArgs {
    /// Hardware profile: medium, high, ultra, auto (the tier nearest to this
    /// machine), default (embedded defaults), or a TOML file [env: RINGCAST_PROFILE]
    #[arg(long, value_name = "NAME|PATH")]
    pub profile: Option<String>,
    /// Override one key, e.g. --set limits.max_message_size=16MiB (repeatable;
    /// wins over the profile, RINGCAST_* variables and the flags below)
    #[arg(long = "set", value_name = "TABLE.FIELD=VALUE")]
    pub set: Vec<String>,
}

/// Why the binary stops: a bad configuration (exit 2) or anything else (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Config(#[from] LoadError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("token: {0}")]
    Token(#[from] TokenError),
    #[error("api: {0}")]
    Api(#[from] self::api::ApiCliError),
}

impl Failure {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            // A token is refused before anything is signed, for want of a
            // key or for a flag the configuration contradicts.
            // An unreachable or refusing Redis is a configuration the
            // operator must fix (engine.redis_url), unless they asked to
            // start degraded. So is a store directory that is missing or
            // not writable.
            Failure::Config(_)
            | Failure::Start(
                StartError::Config(_) | StartError::Engine(_) | StartError::Store(_),
            )
            | Failure::Token(_) => ExitCode::from(2),
            _ => ExitCode::FAILURE,
        }
    }
}

/// Installs the global `tracing` subscriber from the resolved `[log]` keys:
/// `log.level` filters, lines go to stderr in `log.format`. Called once the
/// configuration has loaded (both values were checked then), so nothing here
/// can fail; what goes wrong before it is printed by `main` as one line.
pub fn init_logging(config: &ServerConfig) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(config.log.level.filter());
    match config.log.format {
        LogFormat::Human => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        // Fields at the top level (`"worker":0`), not under `"fields"`: what
        // log shippers index without a parsing rule. No span lists: the
        // server opens no spans.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
}

/// The process environment, as UTF-8 pairs (others cannot be ringcast's).
fn environment() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Selects the profile and applies every layer; `why` receives what `auto`
/// decided.
pub fn load(
    select: &SelectArgs,
    flags: Vec<Setting>,
) -> Result<(Effective, Option<String>), Failure> {
    let spec = select
        .profile
        .clone()
        .or_else(|| std::env::var("RINGCAST_PROFILE").ok());
    let selection = profiles::select(spec.as_deref(), MachineFacts::read)?;
    let mut settings = flags;
    for arg in &select.set {
        settings.push(Setting::parse_set(arg)?);
    }
    let effective = layers::load(selection.profile, environment(), &settings)?;
    Ok((effective, selection.why))
}

/// The profile in force, for a log line or a report heading.
pub fn profile_label(effective: &Effective) -> String {
    match &effective.profile {
        Some(p) => format!("{} from {}", p.name, p.file),
        None => "none (embedded defaults)".into(),
    }
}
