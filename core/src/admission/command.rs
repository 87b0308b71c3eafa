//! The command rate of one `/ws` connection: commands per second overall
//! (`limits.command_rate`), plus publishes and subscribes per second
//! separately (`limits.publish_rate`, `limits.subscribe_rate`), and the rule
//! that closes a connection that keeps hitting them.
//!
//! Each command asks [`CommandLimiter::check`] first and does what the
//! [`RateVerdict`] says:
//!
//! - [`RateVerdict::Run`]: run it;
//! - [`RateVerdict::Refuse`]: do not run it; reply the error `rate_limited`,
//!   whose message names the limit's keys and values
//!   ([`CommandPolicy::refusal_message`]);
//! - [`RateVerdict::Close`]: do not run it; close the connection with
//!   [`RATE_LIMIT_CLOSE`] and [`RATE_LIMIT_CLOSE_REASON`] (1008).
//!
//! A publish or subscribe takes a token from its own bucket (when that rate
//! is set) *and* from the overall one; it runs only if both have one, and a
//! refusal takes from neither. Every other command (`unsubscribe`, `info`,
//! `refresh`) takes only the overall token.
//!
//! **Persisting.** Refusals in a row (no command run in between) form a
//! streak; a streak reaching `limits.rate_limit_close_after` within
//! `limits.rate_limit_window` of its first refusal gets `Close`. A refusal
//! after the window starts a new streak, and any command that runs ends
//! it. A client that merely bumps into the limit gets a few errors and goes
//! on; one that ignores them and keeps sending is closed.
//!
//! Per-connection state: [`CommandLimiter`], 40 bytes (three 8-byte buckets,
//! the streak count and its start). The rates themselves live once per
//! worker in a [`CommandPolicy`].

use std::time::Instant;

use super::bucket::{Epoch, Nanos, Rate, TokenBucket};
use crate::config::ServerConfig;
use crate::proto::close::CloseCode;

/// The close code of a connection that persisted past the rate limit.
pub const RATE_LIMIT_CLOSE: CloseCode = CloseCode::POLICY;
/// The close reason sent with [`RATE_LIMIT_CLOSE`].
pub const RATE_LIMIT_CLOSE_REASON: &str =
    "rate limit exceeded: limits.rate_limit_close_after refusals in a row";

/// Which bucket a command draws from, besides the overall one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    Subscribe,
    Publish,
    /// `unsubscribe`, `info`, `refresh`, and anything else.
    Other,
}

/// Which rate refused a command: the overall one or the command kind's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `limits.command_rate` / `command_burst`.
    Commands,
    /// `limits.publish_rate` / `publish_burst`.
    Publishes,
    /// `limits.subscribe_rate` / `subscribe_burst`.
    Subscribes,
}

impl Limit {
    /// The rate key and its burst key.
    pub fn keys(self) -> (&'static str, &'static str) {
        match self {
            Limit::Commands => ("limits.command_rate", "limits.command_burst"),
            Limit::Publishes => ("limits.publish_rate", "limits.publish_burst"),
            Limit::Subscribes => ("limits.subscribe_rate", "limits.subscribe_burst"),
        }
    }
}

/// What the caller must do with the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateVerdict {
    Run,
    /// Reply `rate_limited` with [`CommandPolicy::refusal_message`] of the
    /// limit; the command was not run.
    Refuse(Limit),
    /// Close with [`RATE_LIMIT_CLOSE`]; the command was not run.
    Close,
}

/// The rates of every connection of one worker, built once from the
/// configuration. Its epoch is the timeline of the connections' buckets, so
/// all connections checked against one policy must use that policy only.
#[derive(Debug, Clone, Copy)]
pub struct CommandPolicy {
    epoch: Epoch,
    overall: Option<Rate>,
    publish: Option<Rate>,
    subscribe: Option<Rate>,
    /// 0: never close.
    close_after: u32,
    window: Nanos,
    /// The configured `(rate, burst)` of each [`Limit`], for messages.
    figures: [(u32, u32); 3],
}

impl CommandPolicy {
    /// The policy of `config`; `epoch` is when the worker started.
    pub fn from_config(config: &ServerConfig, epoch: Instant) -> CommandPolicy {
        CommandPolicy {
            epoch: Epoch::new(epoch),
            overall: Rate::per_second(config.limits.command_rate, config.limits.command_burst),
            publish: Rate::per_second(config.limits.publish_rate, config.limits.publish_burst),
            subscribe: Rate::per_second(
                config.limits.subscribe_rate,
                config.limits.subscribe_burst,
            ),
            close_after: config.limits.rate_limit_close_after,
            window: u64::try_from(config.limits.rate_limit_window.as_nanos()).unwrap_or(u64::MAX),
            figures: [
                (config.limits.command_rate, config.limits.command_burst),
                (config.limits.publish_rate, config.limits.publish_burst),
                (config.limits.subscribe_rate, config.limits.subscribe_burst),
            ],
        }
    }

    /// The message of a `rate_limited` reply: which keys refused, and their
    /// values.
    pub fn refusal_message(&self, limit: Limit) -> String {
        let (rate, burst) = self.figures[limit as usize];
        let (rate_key, burst_key) = limit.keys();
        format!("over {rate_key} = {rate} per second ({burst_key} = {burst})")
    }
}

/// One connection's command-rate state. Starts with full buckets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommandLimiter {
    overall: TokenBucket,
    publish: TokenBucket,
    subscribe: TokenBucket,
    /// Refusals in a row.
    streak: u32,
    /// When the streak's first refusal was.
    streak_start: Nanos,
}

impl CommandLimiter {
    pub const fn new() -> CommandLimiter {
        CommandLimiter {
            overall: TokenBucket::new(),
            publish: TokenBucket::new(),
            subscribe: TokenBucket::new(),
            streak: 0,
            streak_start: 0,
        }
    }

    /// Decides a command of `kind` arriving at `now`; see the module docs.
    pub fn check(
        &mut self,
        policy: &CommandPolicy,
        kind: CommandKind,
        now: Instant,
    ) -> RateVerdict {
        let now = policy.epoch.nanos(now);
        let (bucket, rate) = match kind {
            CommandKind::Publish => (Some(&mut self.publish), policy.publish.as_ref()),
            CommandKind::Subscribe => (Some(&mut self.subscribe), policy.subscribe.as_ref()),
            CommandKind::Other => (None, None),
        };
        // Work on copies and commit both only if both allow: a refusal by
        // one bucket must not spend the other's token.
        let mut own = bucket.as_deref().copied();
        let mut overall = self.overall;
        let own_ok = match (&mut own, rate) {
            (Some(own), Some(rate)) => own.try_take(rate, now).is_ok(),
            _ => true,
        };
        let overall_ok = match &policy.overall {
            Some(rate) => overall.try_take(rate, now).is_ok(),
            None => true,
        };
        // The command kind's own limit is the more specific: it is the one
        // named when both refuse.
        let limit = match (own_ok, kind) {
            (false, CommandKind::Publish) => Limit::Publishes,
            (false, CommandKind::Subscribe) => Limit::Subscribes,
            _ => Limit::Commands,
        };
        if own_ok && overall_ok {
            self.overall = overall;
            if let (Some(bucket), Some(own)) = (bucket, own) {
                *bucket = own;
            }
            self.streak = 0;
            return RateVerdict::Run;
        }
        if self.streak == 0 || now.saturating_sub(self.streak_start) > policy.window {
            self.streak = 1;
            self.streak_start = now;
        } else {
            self.streak = self.streak.saturating_add(1);
        }
        if policy.close_after > 0 && self.streak >= policy.close_after {
            RateVerdict::Close
        } else {
            RateVerdict::Refuse(limit)
        }
    }

    /// Refusals in a row so far (for metrics and tests).
    pub fn streak(&self) -> u32 {
        self.streak
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn policy(tweak: impl FnOnce(&mut ServerConfig)) -> (CommandPolicy, Instant) {
        let mut config = ServerConfig::default();
        config.limits.command_rate = 10;
        config.limits.command_burst = 5;
        config.limits.publish_rate = 2;
        config.limits.publish_burst = 2;
        config.limits.subscribe_rate = 1;
        config.limits.subscribe_burst = 3;
        config.limits.rate_limit_close_after = 4;
        config.limits.rate_limit_window = Duration::from_secs(10);
        tweak(&mut config);
        let t0 = Instant::now();
        (CommandPolicy::from_config(&config, t0), t0)
    }

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    use CommandKind::{Other, Publish, Subscribe};
    use RateVerdict::{Close, Run};
    const REFUSE: RateVerdict = RateVerdict::Refuse(Limit::Commands);
    const REFUSE_PUBLISH: RateVerdict = RateVerdict::Refuse(Limit::Publishes);

    #[test]
    fn publishes_and_subscribes_have_their_own_buckets() {
        let (p, t0) = policy(|_| {});
        let mut limiter = CommandLimiter::new();
        assert_eq!(limiter.check(&p, Publish, t0), Run);
        assert_eq!(limiter.check(&p, Publish, t0), Run);
        assert_eq!(
            limiter.check(&p, Publish, t0),
            REFUSE_PUBLISH,
            "publish burst is 2"
        );
        // Subscribes still have theirs, and others only need the overall one.
        assert_eq!(limiter.check(&p, Subscribe, t0), Run);
        assert_eq!(limiter.check(&p, Other, t0), Run);
        assert_eq!(limiter.check(&p, Subscribe, t0), Run);
        // The overall burst (5) is spent now: even a subscribe token cannot run.
        assert_eq!(limiter.check(&p, Subscribe, t0), REFUSE);
        assert_eq!(limiter.check(&p, Other, t0), REFUSE);
        // 100 ms later one overall token is back (10/s), but publishes wait
        // for 500 ms (2/s).
        assert_eq!(limiter.check(&p, Publish, ms(t0, 100)), REFUSE_PUBLISH);
        assert_eq!(limiter.check(&p, Other, ms(t0, 100)), Run);
        assert_eq!(limiter.check(&p, Publish, ms(t0, 500)), Run);
    }

    #[test]
    fn a_refusal_by_one_bucket_spends_no_token_of_the_other() {
        let (p, t0) = policy(|c| {
            c.limits.command_burst = 3;
            c.limits.publish_burst = 1;
        });
        let mut limiter = CommandLimiter::new();
        assert_eq!(limiter.check(&p, Publish, t0), Run);
        for _ in 0..2 {
            assert_eq!(limiter.check(&p, Publish, t0), REFUSE_PUBLISH);
        }
        // The two refused publishes did not spend overall tokens.
        assert_eq!(limiter.check(&p, Other, t0), Run);
        assert_eq!(limiter.check(&p, Other, t0), Run);
        assert_eq!(limiter.check(&p, Other, t0), REFUSE);
    }

    #[test]
    fn persisting_past_the_limit_closes() {
        let (p, t0) = policy(|c| c.limits.command_burst = 1);
        let mut limiter = CommandLimiter::new();
        assert_eq!(limiter.check(&p, Other, t0), Run);
        let verdicts: Vec<RateVerdict> = (0..5).map(|_| limiter.check(&p, Other, t0)).collect();
        assert_eq!(verdicts, [REFUSE, REFUSE, REFUSE, Close, Close]);
    }

    #[test]
    fn a_command_that_runs_ends_the_streak() {
        let (p, t0) = policy(|c| c.limits.command_burst = 1);
        let mut limiter = CommandLimiter::new();
        assert_eq!(limiter.check(&p, Other, t0), Run);
        for _ in 0..3 {
            assert_eq!(limiter.check(&p, Other, t0), REFUSE);
        }
        assert_eq!(limiter.streak(), 3);
        // 100 ms later a token is back: it runs, and the streak is over.
        assert_eq!(limiter.check(&p, Other, ms(t0, 100)), Run);
        assert_eq!(limiter.streak(), 0);
        for _ in 0..3 {
            assert_eq!(limiter.check(&p, Other, ms(t0, 100)), REFUSE);
        }
        assert_eq!(limiter.check(&p, Other, ms(t0, 100)), Close);
    }

    #[test]
    fn a_refusal_after_the_window_starts_a_new_streak() {
        let (p, t0) = policy(|c| {
            c.limits.command_rate = 1;
            c.limits.command_burst = 1;
            c.limits.rate_limit_window = Duration::from_millis(50);
        });
        let mut limiter = CommandLimiter::new();
        assert_eq!(limiter.check(&p, Other, t0), Run);
        // Three refusals, then the window passes before the fourth.
        for at in [0, 10, 20] {
            assert_eq!(limiter.check(&p, Other, ms(t0, at)), REFUSE);
        }
        assert_eq!(limiter.check(&p, Other, ms(t0, 80)), REFUSE, "new streak");
        assert_eq!(limiter.streak(), 1);
        for at in [90, 100] {
            assert_eq!(limiter.check(&p, Other, ms(t0, at)), REFUSE);
        }
        assert_eq!(limiter.check(&p, Other, ms(t0, 110)), Close);
    }

    #[test]
    fn zero_rates_and_zero_close_after_turn_things_off() {
        let (p, t0) = policy(|c| {
            c.limits.publish_rate = 0;
            c.limits.subscribe_rate = 0;
            c.limits.command_burst = 2;
            c.limits.rate_limit_close_after = 0;
        });
        let mut limiter = CommandLimiter::new();
        assert_eq!(limiter.check(&p, Publish, t0), Run);
        assert_eq!(limiter.check(&p, Subscribe, t0), Run);
        for _ in 0..1000 {
            assert_eq!(limiter.check(&p, Publish, t0), REFUSE, "never closes");
        }
    }

    #[test]
    fn a_zero_command_rate_turns_the_overall_limit_off() {
        let (p, t0) = policy(|c| {
            c.limits.command_rate = 0;
            c.limits.command_burst = 0;
        });
        let mut limiter = CommandLimiter::new();
        for _ in 0..10_000 {
            assert_eq!(limiter.check(&p, Other, t0), Run);
        }
        // The separate publish limit still holds (burst 2).
        assert_eq!(limiter.check(&p, Publish, t0), Run);
        assert_eq!(limiter.check(&p, Publish, t0), Run);
        assert_eq!(limiter.check(&p, Publish, t0), REFUSE_PUBLISH);
    }

    #[test]
    fn a_refusal_names_the_limit_that_refused() {
        let (p, t0) = policy(|_| {});
        let mut limiter = CommandLimiter::new();
        for _ in 0..3 {
            assert_eq!(limiter.check(&p, Subscribe, t0), Run);
        }
        let RateVerdict::Refuse(limit) = limiter.check(&p, Subscribe, t0) else {
            panic!("the fourth subscribe is over limits.subscribe_burst");
        };
        assert_eq!(limit, Limit::Subscribes);
        assert_eq!(
            p.refusal_message(limit),
            "over limits.subscribe_rate = 1 per second (limits.subscribe_burst = 3)"
        );
        assert_eq!(limiter.check(&p, Other, t0), Run);
        assert_eq!(limiter.check(&p, Other, t0), Run);
        assert_eq!(limiter.check(&p, Other, t0), REFUSE);
        assert_eq!(
            p.refusal_message(Limit::Commands),
            "over limits.command_rate = 10 per second (limits.command_burst = 5)"
        );
    }

    #[test]
    fn paced_clients_are_never_refused() {
        let (p, t0) = policy(|_| {});
        let mut limiter = CommandLimiter::new();
        // One publish every 500 ms (the publish rate) for a minute.
        for i in 0..120 {
            assert_eq!(
                limiter.check(&p, Publish, ms(t0, 500 * i)),
                Run,
                "publish {i}"
            );
        }
    }

    #[test]
    fn the_state_is_small() {
        assert_eq!(std::mem::size_of::<CommandLimiter>(), 40);
    }
}
