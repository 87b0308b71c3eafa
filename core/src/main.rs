//! The `ringcast` binary.
//!
//! - `ringcast serve` runs the server. Prints `ringcast listening on ADDR` on
//!   stdout once every worker accepts (scripts and tests wait for that line);
//!   everything else goes to stderr through `tracing`. Level and targets are
//!   the key `log.level` (an `EnvFilter` directive, default `info`; `debug`
//!   adds a line per connection accepted, upgraded and closed), the format
//!   is `log.format` (`human`, the default, or `json`: one object per line
//!   with `timestamp`, `level`, `target`, `message` and the event's fields at
//!   the top level). Both layer like every key, highest first: a flag
//!   (`--set log.level=debug`, and `--log-format json` for the format), the
//!   environment (`RINGCAST_LOG__LEVEL`, or its older name `RINGCAST_LOG`;
//!   `RINGCAST_LOG__FORMAT`, or `RINGCAST_LOG_FORMAT`), the profile's `[log]`
//!   table, the default. Logging starts once the configuration is resolved:
//!   a refusal before that is the one line on stderr described below. SIGINT
//!   or SIGTERM drains (close 1001 to every connection); a second signal
//!   exits at once. SIGHUP reloads the TLS certificate and key (new
//!   connections get them; a bad file is refused and the old pair stays).
//!   Each size and duration flag takes what its key takes (`--max-message-size
//!   16MiB` is `--set limits.max_message_size=16MiB`), and sets only its key.
//! - `ringcast profile show` prints the effective configuration, each value
//!   with where it came from; it takes every flag of `serve`, so `profile show
//!   --workers 2` previews `serve --workers 2`.
//! - `ringcast doctor` checks this machine against what the profile needs.
//! - `ringcast token --sub u1 --subs 'room:*' --pubs 'room:*' --ttl 1h`
//!   prints a JWT signed with the configured key (a shared secret; for a
//!   public-key setup, `--key PRIVATE.pem --alg ALG`), for trying `/ws`.
//!
//! All four take `--profile medium|high|ultra|auto|default|PATH` (or
//! `RINGCAST_PROFILE`) and `--set table.field=value`; the layering is
//! described in `ringcast::config::layers`. Errors are one line; exit code 2
//! for a bad configuration (refused before anything starts) or a token that
//! cannot be made, 1 for other failures and for a doctor report with a
//! blocker.

mod cli;

use std::process::ExitCode;

use clap::Parser;

use cli::profile::ProfileCommand;
use cli::{Cli, Command};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // No logging yet: each command starts it once its configuration (with
    // the `[log]` keys) is resolved. A failure is one line on stderr.
    let result = match cli.command {
        Command::Serve(args) => cli::serve::run(*args),
        Command::Profile {
            command: ProfileCommand::Show(flags),
        } => cli::profile::show(*flags),
        Command::Profile {
            command: ProfileCommand::Capacity(args),
        } => cli::capacity::run(*args),
        Command::Doctor(select) => cli::doctor::run(select),
        Command::Token(args) => cli::token::run(*args),
        Command::Api(args) => cli::api::run(*args).map_err(cli::Failure::from),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ringcast: {e}");
            e.exit_code()
        }
    }
}
