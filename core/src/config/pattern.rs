//! Channel patterns: which channels a token lets its holder subscribe to
//! (`subs` claim) and publish to (`pubs` claim).
//!
//! # The pattern language
//!
//! A pattern is 1 to [`MAX_PATTERN_LEN`] bytes of the channel alphabet
//! (`A-Z a-z 0-9 _ - : . @ /`, see `docs/protocol.md`), plus two special
//! forms:
//!
//! - **exact**: `user:42` matches the channel `user:42` and nothing else.
//!   Comparison is byte for byte, case-sensitive.
//! - **prefix**: a pattern ending in `*` matches every channel that starts
//!   with what precedes the `*` (followed by zero or more characters):
//!   `room:*` matches `room:1`, `room:lobby:2` and `room:`; `*` alone matches
//!   every channel. `*` anywhere but at the end is invalid (no infix or
//!   suffix wildcards: a pattern is always a literal or a literal prefix).
//! - **`{sub}`**: replaced by the token's `sub` claim, once per occurrence,
//!   when the token is accepted: `user:{sub}` with `sub = "42"` is the exact
//!   pattern `user:42`, and `inbox:{sub}:*` the prefix `inbox:42:`. The
//!   substitution is literal: a `*` inside `sub` is an ordinary character and
//!   never becomes a wildcard (and, being outside the channel alphabet, can
//!   then match no channel). Any other `{` or `}` is invalid.
//!
//! A list holds at most [`MAX_PATTERNS`] patterns; a token breaking any of
//! these rules is refused as a whole ("invalid claims"): a typo in an
//! issuer's pattern must show up at once, not as a silently narrower grant.
//!
//! Matching is a linear scan (`O(patterns × pattern length)`), bounded by the
//! two limits above, with no allocation.
//!
//! The language lives in `config` because configuration values are written
//! in it (`auth.jwt_default_subs`, `auth.jwt_default_pubs`, checked when the
//! configuration loads); `auth` compiles token claims with it and re-exports
//! it as `auth::pattern`.

use std::fmt;

/// Most patterns in one `subs` or `pubs` list.
pub const MAX_PATTERNS: usize = 64;
/// Longest pattern, in bytes, before `{sub}` is substituted.
pub const MAX_PATTERN_LEN: usize = 256;

const PLACEHOLDER: &str = "{sub}";

/// Why a pattern list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("more than {MAX_PATTERNS} patterns")]
    TooMany,
    #[error("pattern {0:?} is empty or longer than {MAX_PATTERN_LEN} bytes")]
    BadLength(String),
    #[error("pattern {0:?}: '*' is only allowed as the last character")]
    MisplacedWildcard(String),
    #[error("pattern {0:?}: only {{sub}} may appear in braces")]
    BadPlaceholder(String),
    #[error("pattern {0:?}: character outside A-Z a-z 0-9 _ - : . @ /")]
    BadCharacter(String),
}

/// One compiled pattern: a literal, or a literal prefix.
#[derive(Clone, PartialEq, Eq)]
struct Pattern {
    literal: Box<str>,
    prefix: bool,
}

impl Pattern {
    fn matches(&self, channel: &str) -> bool {
        if self.prefix {
            channel.starts_with(&*self.literal)
        } else {
            channel == &*self.literal
        }
    }
}

/// A compiled list of patterns, 16 bytes. "Everything" (`*`, and every
/// identity when `auth.auth_mode = "none"`) and "nothing" (the empty list)
/// take no heap allocation.
#[derive(Clone, PartialEq, Eq)]
pub struct Patterns(Inner);

#[derive(Clone, PartialEq, Eq)]
enum Inner {
    All,
    /// Empty: matches nothing (an empty boxed slice does not allocate).
    List(Box<[Pattern]>),
}

impl Default for Patterns {
    /// Matches nothing.
    fn default() -> Patterns {
        Patterns::none()
    }
}

fn channel_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_-:.@/".contains(&b)
}

impl Patterns {
    /// Matches no channel.
    pub fn none() -> Patterns {
        Patterns(Inner::List(Box::default()))
    }

    /// Matches every channel.
    pub fn all() -> Patterns {
        Patterns(Inner::All)
    }

    /// Checks a list without a `sub` to substitute (configuration time):
    /// the same rules as [`Patterns::compile`].
    pub fn validate<S: AsRef<str>>(patterns: &[S]) -> Result<(), PatternError> {
        Patterns::compile(patterns, "").map(|_| ())
    }

    /// Compiles `patterns` (as written in a token or the configuration),
    /// substituting `sub` for `{sub}`.
    pub fn compile<S: AsRef<str>>(patterns: &[S], sub: &str) -> Result<Patterns, PatternError> {
        if patterns.len() > MAX_PATTERNS {
            return Err(PatternError::TooMany);
        }
        if patterns.is_empty() {
            return Ok(Patterns::none());
        }
        let mut list = Vec::with_capacity(patterns.len());
        for raw in patterns {
            let raw = raw.as_ref();
            if raw == "*" {
                return Ok(Patterns::all());
            }
            list.push(compile_one(raw, sub)?);
        }
        Ok(Patterns(Inner::List(list.into_boxed_slice())))
    }

    /// Whether `channel` is matched by at least one pattern.
    pub fn matches(&self, channel: &str) -> bool {
        match &self.0 {
            Inner::All => true,
            Inner::List(list) => list.iter().any(|p| p.matches(channel)),
        }
    }

    /// Matches every channel.
    pub fn is_all(&self) -> bool {
        matches!(self.0, Inner::All)
    }

    /// Matches no channel.
    pub fn is_none(&self) -> bool {
        matches!(&self.0, Inner::List(list) if list.is_empty())
    }
}

fn compile_one(raw: &str, sub: &str) -> Result<Pattern, PatternError> {
    if raw.is_empty() || raw.len() > MAX_PATTERN_LEN {
        return Err(PatternError::BadLength(raw.to_owned()));
    }
    let (body, prefix) = match raw.strip_suffix('*') {
        Some(body) => (body, true),
        None => (raw, false),
    };
    let mut literal = String::with_capacity(body.len());
    let mut rest = body;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix(PLACEHOLDER) {
            literal.push_str(sub);
            rest = after;
            continue;
        }
        let b = rest.as_bytes()[0];
        match b {
            b'*' => return Err(PatternError::MisplacedWildcard(raw.to_owned())),
            b'{' | b'}' => return Err(PatternError::BadPlaceholder(raw.to_owned())),
            _ if channel_char(b) => {
                literal.push(char::from(b));
                rest = &rest[1..];
            }
            _ => return Err(PatternError::BadCharacter(raw.to_owned())),
        }
    }
    Ok(Pattern {
        literal: literal.into_boxed_str(),
        prefix,
    })
}

impl fmt::Debug for Patterns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::All => f.write_str("[\"*\"]"),
            Inner::List(list) => f
                .debug_list()
                .entries(list.iter().map(|p| {
                    if p.prefix {
                        format!("{}*", p.literal)
                    } else {
                        p.literal.to_string()
                    }
                }))
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(patterns: &[&str], sub: &str) -> Patterns {
        Patterns::compile(patterns, sub).expect("valid patterns")
    }

    #[test]
    fn exact_patterns_match_only_themselves() {
        let p = compile(&["user:42"], "42");
        assert!(p.matches("user:42"));
        for other in ["user:4", "user:420", "User:42", "user:42:x", ""] {
            assert!(!p.matches(other), "{other}");
        }
    }

    #[test]
    fn a_trailing_star_is_a_prefix() {
        let p = compile(&["room:*"], "u");
        for yes in ["room:1", "room:lobby:2", "room:"] {
            assert!(p.matches(yes), "{yes}");
        }
        for no in ["room", "rooms:1", "xroom:1", "Room:1"] {
            assert!(!p.matches(no), "{no}");
        }
        let everything = compile(&["*"], "u");
        assert!(everything.is_all());
        assert!(everything.matches("anything/at:all"));
    }

    #[test]
    fn lists_match_if_any_pattern_does() {
        let p = compile(&["room:*", "user:42", "news"], "42");
        assert!(p.matches("room:9") && p.matches("user:42") && p.matches("news"));
        assert!(!p.matches("user:43") && !p.matches("news:1"));
        assert!(Patterns::none().is_none());
        assert!(!compile(&[], "x").matches("room:1"));
    }

    #[test]
    fn sub_is_substituted_literally() {
        let p = compile(&["user:{sub}", "inbox:{sub}:*", "{sub}.{sub}"], "42");
        assert!(p.matches("user:42"));
        assert!(p.matches("inbox:42:a") && !p.matches("inbox:43:a"));
        assert!(p.matches("42.42"));
        // A `*` inside sub is no wildcard: it can match no channel.
        let sneaky = compile(&["user:{sub}"], "*");
        assert!(!sneaky.matches("user:42"));
        assert!(!sneaky.matches("user:"));
        // Nor is `{sub}` inside sub expanded again.
        let nested = compile(&["a:{sub}"], "{sub}");
        assert!(!nested.matches("a:{sub}{sub}"));
        assert!(nested.matches("a:{sub}"));
    }

    #[test]
    fn invalid_patterns_are_refused() {
        let refused = |p: &str| Patterns::compile(&[p], "42").expect_err(p);
        assert!(matches!(refused(""), PatternError::BadLength(_)));
        assert!(matches!(
            refused(&"a".repeat(MAX_PATTERN_LEN + 1)),
            PatternError::BadLength(_)
        ));
        assert!(Patterns::compile(&["a".repeat(MAX_PATTERN_LEN)], "").is_ok());
        for p in ["*room", "ro*om", "**", "room:**"] {
            assert!(
                matches!(refused(p), PatternError::MisplacedWildcard(_)),
                "{p}"
            );
        }
        for p in ["user:{id}", "user:{", "user:}", "user:{sub"] {
            assert!(matches!(refused(p), PatternError::BadPlaceholder(_)), "{p}");
        }
        for p in ["room 1", "room:?", "é"] {
            assert!(matches!(refused(p), PatternError::BadCharacter(_)), "{p}");
        }
        let many: Vec<String> = (0..=MAX_PATTERNS).map(|i| format!("c{i}")).collect();
        assert_eq!(Patterns::compile(&many, ""), Err(PatternError::TooMany));
        assert!(Patterns::compile(&many[..MAX_PATTERNS], "").is_ok());
    }

    #[test]
    fn debug_shows_the_compiled_patterns() {
        let p = compile(&["user:{sub}", "room:*"], "7");
        assert_eq!(format!("{p:?}"), r#"["user:7", "room:*"]"#);
    }
}
