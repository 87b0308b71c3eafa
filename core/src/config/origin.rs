//! The `Origin` allow-list of WebSocket handshakes (`admission.allowed_origins`).
//!
//! Browsers send `Origin` with every WebSocket handshake and scripts cannot
//! forge it, so the list stops a page on another site from opening a
//! connection with the user's cookies or cached credentials (cross-site
//! WebSocket hijacking). Non-browser clients send no `Origin` and can put
//! anything there anyway, so a request **without** `Origin` is always let
//! through: the list is a browser protection, not authentication.
//!
//! # Entries
//!
//! - An empty list turns the check off (the default): every origin passes.
//! - `scheme://host[:port]`, exactly as a browser serializes an origin:
//!   `https://app.example.com`, `http://localhost:3000`,
//!   `http://[::1]:8080`, `capacitor://localhost`. No path, query,
//!   userinfo or trailing slash. Scheme and host compare case-insensitively;
//!   a missing port means the scheme's default (80 for http/ws, 443 for
//!   https/wss), so `https://example.com` and `https://example.com:443` are
//!   the same entry.
//! - `scheme://*.suffix[:port]`: any host ending in `.suffix`, at any depth
//!   (`https://*.example.com` matches `https://a.example.com` and
//!   `https://a.b.example.com`, not `https://example.com` nor
//!   `https://badexample.com`); scheme and port must still match. `*` is
//!   allowed only as the whole first label.
//! - `null`: the opaque origin browsers send from sandboxed iframes and
//!   `file:` pages. Allowed only when listed literally.
//!
//! A request whose `Origin` is not matched is refused with 403
//! (`HandshakeError::OriginNotAllowed`).
//!
//! The list is parsed once, when the configuration loads (a bad entry is
//! refused there with the key and the entry); the server shares the parsed
//! [`OriginPolicy`] (re-exported as `admission::OriginPolicy`) and only
//! matches against it.

/// One allow-list entry, normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Null,
    Exact(Origin),
    /// Host ends in `.suffix` (`suffix` has no leading dot).
    Wildcard(Origin),
}

/// A parsed origin: lowercase scheme and host, effective port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// Parses `scheme://host[:port]`; `None` for anything else.
fn parse_origin(text: &str) -> Option<Origin> {
    let (scheme, rest) = text.split_once("://")?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok || rest.is_empty() {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        // IPv6 literal: `[::1]` or `[::1]:8080`.
        let (addr, after) = inner.split_once(']')?;
        let addr_ok = !addr.is_empty()
            && addr
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
        if !addr_ok {
            return None;
        }
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (format!("[{}]", addr.to_ascii_lowercase()), port)
    } else {
        match rest.rsplit_once(':') {
            Some((host, port)) => (host.to_ascii_lowercase(), Some(port)),
            None => (rest.to_ascii_lowercase(), None),
        }
    };
    let host_ok = !host.is_empty()
        && (host.starts_with('[')
            || host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.*_".contains(c)));
    if !host_ok {
        return None;
    }
    let port = match port {
        None => default_port(&scheme),
        Some(digits) => {
            if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            Some(digits.parse::<u16>().ok()?)
        }
    };
    Some(Origin { scheme, host, port })
}

/// The allow-list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginPolicy {
    entries: Vec<Entry>,
    /// The entries as written, for `ringcast profile show`.
    written: Vec<String>,
}

impl OriginPolicy {
    /// The check turned off: every origin passes.
    pub fn any() -> OriginPolicy {
        OriginPolicy::default()
    }

    /// Parses `admission.allowed_origins`; the error names the bad entry.
    pub fn parse<S: AsRef<str>>(list: &[S]) -> Result<OriginPolicy, String> {
        let mut entries = Vec::with_capacity(list.len());
        for raw in list {
            let raw = raw.as_ref();
            let bad = |why: &str| {
                format!("{raw:?} {why} (write scheme://host[:port] or scheme://*.domain[:port])")
            };
            if raw == "null" {
                entries.push(Entry::Null);
                continue;
            }
            let origin = parse_origin(raw).ok_or_else(|| bad("is not an origin"))?;
            let entry = match origin.host.strip_prefix("*.") {
                Some(suffix) => {
                    if suffix.is_empty() || suffix.contains('*') || suffix.starts_with('.') {
                        return Err(bad("has a misplaced '*'"));
                    }
                    Entry::Wildcard(Origin {
                        host: suffix.to_owned(),
                        ..origin
                    })
                }
                None if origin.host.contains('*') => return Err(bad("has a misplaced '*'")),
                None => Entry::Exact(origin),
            };
            entries.push(entry);
        }
        let written = list.iter().map(|raw| raw.as_ref().to_owned()).collect();
        Ok(OriginPolicy { entries, written })
    }

    /// The entries as they were written.
    pub fn as_written(&self) -> &[String] {
        &self.written
    }

    /// Whether the check is on (a non-empty list).
    pub fn is_enabled(&self) -> bool {
        !self.entries.is_empty()
    }

    /// Whether a handshake with this `Origin` header (`RequestHead::origin`)
    /// may proceed; `false` → 403.
    pub fn allows(&self, origin: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        if self.entries.is_empty() {
            return true;
        }
        let origin = origin.trim();
        if origin == "null" {
            return self.entries.contains(&Entry::Null);
        }
        let Some(origin) = parse_origin(origin) else {
            return false;
        };
        if origin.host.contains('*') {
            return false;
        }
        self.entries.iter().any(|entry| match entry {
            Entry::Null => false,
            Entry::Exact(allowed) => *allowed == origin,
            Entry::Wildcard(allowed) => {
                allowed.scheme == origin.scheme
                    && allowed.port == origin.port
                    && origin
                        .host
                        .strip_suffix(allowed.host.as_str())
                        .is_some_and(|head| head.len() > 1 && head.ends_with('.'))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(list: &[&str]) -> OriginPolicy {
        OriginPolicy::parse(list).expect("valid list")
    }

    #[test]
    fn off_by_default_and_absent_origins_pass() {
        let any = OriginPolicy::any();
        assert!(!any.is_enabled());
        assert!(any.allows(Some("https://evil.example")));
        assert!(any.allows(None));
        let on = policy(&["https://app.example.com"]);
        assert!(on.is_enabled());
        assert!(on.allows(None), "non-browser clients send no Origin");
    }

    #[test]
    fn exact_origins_match_scheme_host_and_port() {
        let p = policy(&["https://app.example.com", "http://localhost:3000"]);
        for ok in [
            "https://app.example.com",
            "HTTPS://App.Example.COM",
            "https://app.example.com:443",
            "http://localhost:3000",
        ] {
            assert!(p.allows(Some(ok)), "{ok}");
        }
        for no in [
            "http://app.example.com",
            "https://app.example.com:8443",
            "https://example.com",
            "https://app.example.com.evil.net",
            "http://localhost",
            "http://localhost:3001",
            "https://app.example.com/",
            "https://user@app.example.com",
            "app.example.com",
            "",
        ] {
            assert!(!p.allows(Some(no)), "{no}");
        }
    }

    #[test]
    fn wildcards_match_subdomains_only() {
        let p = policy(&["https://*.example.com"]);
        for ok in [
            "https://a.example.com",
            "https://a.b.example.com",
            "https://A.Example.com:443",
        ] {
            assert!(p.allows(Some(ok)), "{ok}");
        }
        for no in [
            "https://example.com",
            "https://badexample.com",
            "https://.example.com",
            "http://a.example.com",
            "https://a.example.com:444",
            "https://*.example.com",
            "https://a.example.com.evil.net",
        ] {
            assert!(!p.allows(Some(no)), "{no}");
        }
        let with_port = policy(&["https://*.example.com:8443"]);
        assert!(with_port.allows(Some("https://x.example.com:8443")));
        assert!(!with_port.allows(Some("https://x.example.com")));
    }

    #[test]
    fn null_ipv6_and_custom_schemes() {
        let p = policy(&["null", "http://[::1]:8080", "capacitor://localhost"]);
        assert!(p.allows(Some("null")));
        assert!(p.allows(Some("http://[::1]:8080")));
        assert!(!p.allows(Some("http://[::1]")));
        assert!(p.allows(Some("capacitor://localhost")));
        assert!(!p.allows(Some("capacitor://localhost:1")));
        assert!(!policy(&["https://a.example.com"]).allows(Some("null")));
    }

    #[test]
    fn bad_entries_are_refused_with_the_entry() {
        for bad in [
            "example.com",
            "https://",
            "https://example.com/",
            "https://example.com:",
            "https://example.com:99999",
            "https://*example.com",
            "https://a.*.example.com",
            "https://*.",
            "https://*",
            "*",
            "https://[zz]",
        ] {
            let err = OriginPolicy::parse(&[bad]).expect_err(bad);
            assert!(err.starts_with(&format!("{bad:?}")), "{err}");
        }
    }
}
