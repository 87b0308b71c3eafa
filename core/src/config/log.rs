//! The `[log]` table and its values: which events reach stderr
//! (`log.level`, a [`LogLevel`]) and how each line is written (`log.format`,
//! a [`LogFormat`]).
//!
//! Both are ordinary keys (profile, `RINGCAST_LOG__LEVEL`, `--set`), and the
//! older names stay: `RINGCAST_LOG` and `RINGCAST_LOG_FORMAT` are read as the
//! env layer of these keys (see [`super::layers`]) and `--log-format` is a
//! flag of `ringcast serve`. The binary installs its subscriber only once the
//! configuration is resolved, so these types guarantee what it needs: a
//! [`LogLevel`] always builds an `EnvFilter`, and a bad one is refused while
//! loading (exit 2), never discovered at start-up.

use std::fmt;
use std::str::FromStr;

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::EnvFilter;

/// `[log]` (read by the binary): the keys `log.level` and `log.format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSection {
    /// Which events reach stderr: a level (`error`, `warn`, `info`, `debug`,
    /// `trace`, `off`) or `EnvFilter` directives (`warn,ringcast::server=debug`);
    /// `debug` adds a line per connection accepted, upgraded and closed.
    /// Also `RINGCAST_LOG`. Default `info`.
    pub level: LogLevel,
    /// Log line format on stderr: `human` or `json` (one object per line).
    /// Also `RINGCAST_LOG_FORMAT` and `serve --log-format`. Default `human`.
    pub format: LogFormat,
    /// How often, at most, each worker writes one line per reason summarising
    /// refused handshakes and abnormal closes (the per-connection lines are at
    /// `debug`). Must be above zero. Default `10s`.
    pub summary_interval: std::time::Duration,
}

impl LogSection {
    pub(super) fn validate(&self) -> Result<(), super::ConfigError> {
        if self.summary_interval.is_zero() {
            return super::refuse("log.summary_interval", "must be positive");
        }
        Ok(())
    }
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            level: LogLevel::default(),
            format: LogFormat::default(),
            summary_interval: std::time::Duration::from_secs(10),
        }
    }
}

/// An `EnvFilter` directive list, checked: `info`, `warn,ringcast::server=debug`.
///
/// Stricter than `EnvFilter` in one way: a directive without `=` must be a
/// level (`error`, `warn`, `info`, `debug`, `trace`, `off`, or `0`..=`5`).
/// `EnvFilter` would read `warning` or `degub` as a *target* enabled at
/// trace, which silently turns every other line off; write `target=trace`
/// for that. Default `info`.
#[derive(Clone, PartialEq, Eq)]
pub struct LogLevel(String);

impl LogLevel {
    /// Checks `text` as a filter; the reason says what is wrong.
    pub fn parse(text: &str) -> Result<LogLevel, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty: expected a level like \"info\" or directives like \
                 \"warn,ringcast::server=debug\""
                .into());
        }
        for directive in text.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            if !directive.contains('=') && directive.parse::<LevelFilter>().is_err() {
                return Err(format!(
                    "{directive:?} is not a level (error, warn, info, debug, trace, off); \
                     a target needs one: {directive}=debug"
                ));
            }
        }
        EnvFilter::builder()
            .parse(text)
            .map_err(|e| format!("{text:?} is not a valid filter: {e}"))?;
        Ok(LogLevel(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The filter to install.
    pub fn filter(&self) -> EnvFilter {
        // `parse` accepted this very text, and a parse is deterministic.
        EnvFilter::builder()
            .parse(&self.0)
            .unwrap_or_else(|_| EnvFilter::new("info"))
    }
}

impl Default for LogLevel {
    fn default() -> Self {
        LogLevel("info".into())
    }
}

impl fmt::Debug for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How log lines are written to stderr. Default [`LogFormat::Human`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// One line of text per event; ANSI colours only when stderr is a terminal.
    #[default]
    Human,
    /// One JSON object per line, for log shippers (Loki, Elasticsearch, ...):
    /// `timestamp`, `level`, `target`, `message` and the event's fields at
    /// the top level.
    Json,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Human => "human",
            LogFormat::Json => "json",
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LogFormat {
    type Err = String;
    /// Case and surrounding blanks do not matter (`RINGCAST_LOG_FORMAT=JSON`
    /// always worked).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "human" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("{s:?} is not one of human, json")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_directives_are_accepted() {
        for text in [
            "info",
            "WARN",
            "off",
            "3",
            "warn,ringcast::server=debug",
            "ringcast=trace",
            " debug ",
            "info,",
        ] {
            let level = LogLevel::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(level.as_str(), text.trim());
            let _ = level.filter();
        }
        assert_eq!(LogLevel::default().as_str(), "info");
    }

    #[test]
    fn a_bad_level_is_refused_with_the_reason() {
        assert_eq!(
            LogLevel::parse("warning").expect_err("not a level"),
            "\"warning\" is not a level (error, warn, info, debug, trace, off); a target \
             needs one: warning=debug"
        );
        assert!(LogLevel::parse("info,degub").is_err());
        assert!(LogLevel::parse("").expect_err("empty").starts_with("empty"));
        let err = LogLevel::parse("ringcast=loud").expect_err("bad level");
        assert!(err.contains("is not a valid filter"), "{err}");
    }

    #[test]
    fn formats_parse_in_any_case() {
        assert_eq!("json".parse(), Ok(LogFormat::Json));
        assert_eq!("JSON ".parse(), Ok(LogFormat::Json));
        assert_eq!("human".parse(), Ok(LogFormat::Human));
        assert_eq!(
            "xml".parse::<LogFormat>(),
            Err("\"xml\" is not one of human, json".into())
        );
        assert_eq!(LogFormat::default(), LogFormat::Human);
        assert_eq!(LogFormat::Json.to_string(), "json");
    }
}
