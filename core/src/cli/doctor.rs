//! `ringcast doctor`: checks this machine against what the profile needs;
//! exit 1 when a finding is a blocker.

use std::process::ExitCode;

use ringcast::config::doctor::{self, Finding, Probe, Status};
use ringcast::config::{EngineKind, ServerConfig};
use ringcast::engine::redis::{probe, RedisSettings};

use super::capacity::this_machine_statement;
use super::{init_logging, load, profile_label, Failure, SelectArgs};

/// Prints the report; the exit code is its worst finding's.
pub fn run(select: SelectArgs) -> Result<ExitCode, Failure> {
    let (effective, why) = load(&select, Vec::new())?;
    init_logging(&effective.config);
    if let Some(why) = why {
        println!("{why}");
    }
    let config = &effective.config;
    let mut findings = doctor::run(config, &Probe::read(config));
    if config.engine.kind == EngineKind::Redis {
        findings.push(redis_finding(config));
    }
    print!(
        "{}",
        doctor::render(&profile_label(&effective), config, &findings)
    );
    // The same computation as `ringcast profile capacity --on-this-machine`.
    println!(
        "capacity on this machine (ringcast profile capacity --on-this-machine): {}",
        this_machine_statement(&effective).summary()
    );
    Ok(match doctor::worst(&findings) {
        doctor::Status::Blocker => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    })
}

/// `engine.kind = "redis"`: does the configured Redis answer, which version,
/// is AOF on. Unreachable is a blocker (the server would exit 2); AOF off is
/// a warning: a Redis restart then loses every channel's history and epoch.
fn redis_finding(config: &ServerConfig) -> Finding {
    let settings = RedisSettings::from_config(config);
    let url = settings.url.redacted().to_string();
    match probe(&settings) {
        Err(e) => Finding {
            check: "redis",
            status: Status::Blocker,
            detail: e.to_string(),
            fix: Some(format!(
                "start Redis at {url}, or correct engine.redis_url (and its password)"
            )),
        },
        Ok(facts) => {
            let pubsub = if facts.sharded_pubsub {
                "sharded pub/sub"
            } else {
                "plain pub/sub (sharded needs Redis 7)"
            };
            let detail = format!(
                "{url} answers: Redis {}, AOF {}, {pubsub}",
                facts.version,
                if facts.aof_enabled { "on" } else { "off" }
            );
            let (status, fix) = if facts.aof_enabled {
                (Status::Ok, None)
            } else {
                (
                    Status::Warn,
                    Some(
                        "appendonly yes (and appendfsync everysec) in redis.conf: without \
                         AOF a Redis restart loses every channel's history and epoch"
                            .to_string(),
                    ),
                )
            };
            Finding {
                check: "redis",
                status,
                detail,
                fix,
            }
        }
    }
}
