//! Who may call the server API: the configured keys, compared in constant
//! time, the optional allow-list of client addresses, and the cap on API
//! connections held at once. Built once at start, shared by every worker.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use sha1::{Digest as _, Sha1};
use subtle::ConstantTimeEq as _;

use crate::config::api::ApiKeyError;
use crate::config::proxy::TrustedProxies;
use crate::config::ServerConfig;

/// The server API's gate; `None` in [`super::gate::Gate`] when no key is set.
pub(crate) struct ApiGate {
    /// SHA-1 of every key: comparing digests hides the keys' lengths, and
    /// each comparison is constant-time (`subtle`).
    digests: Vec<[u8; 20]>,
    allowed: TrustedProxies,
    /// API connections open in the whole process (`api.max_connections`).
    open: Arc<AtomicUsize>,
    pub max_connections: usize,
    /// Served on a listener of its own (`api.listen`), not under `/api/`
    /// of the main port.
    pub own_port: bool,
}

/// One API connection's place under `api.max_connections`; released on drop.
#[derive(Debug)]
pub(crate) struct ApiSeat(Arc<AtomicUsize>);

impl Drop for ApiSeat {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn digest(key: &[u8]) -> [u8; 20] {
    Sha1::digest(key).into()
}

impl ApiGate {
    /// The gate of `config`, or `None` when the API is off (no key). An
    /// unreadable `api.key_file` fails the start; so does a key file with
    /// no key in it (the operator meant the API on).
    pub fn from_config(config: &ServerConfig) -> Result<Option<ApiGate>, ApiKeyError> {
        let api = &config.api;
        if !api.is_enabled() {
            return Ok(None);
        }
        let keys = api.load_keys()?;
        if keys.is_empty() {
            return Err(ApiKeyError::Empty);
        }
        Ok(Some(ApiGate {
            digests: keys.iter().map(|k| digest(k.expose().as_bytes())).collect(),
            allowed: api.allowed_clients.clone(),
            open: Arc::default(),
            max_connections: api.max_connections,
            own_port: api.listen.is_some(),
        }))
    }

    /// Whether `authorization` (the header's value) is `apikey KEY` with a
    /// configured key. Every key is compared, whichever matches.
    pub fn authorizes(&self, authorization: Option<&str>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let Some((scheme, key)) = value.split_once(' ') else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case("apikey") {
            return false;
        }
        let presented = digest(key.trim().as_bytes());
        let mut found = subtle::Choice::from(0);
        for known in &self.digests {
            found |= known.ct_eq(&presented);
        }
        found.into()
    }

    /// Whether `peer` may call the API (`api.allowed_clients`; empty: any).
    pub fn allows(&self, peer: IpAddr) -> bool {
        !self.allowed.is_enabled() || self.allowed.trusts(peer)
    }

    /// A seat under `api.max_connections`, or `None` when all are taken.
    pub fn seat(&self) -> Option<ApiSeat> {
        let before = self.open.fetch_add(1, Ordering::AcqRel);
        let seat = ApiSeat(self.open.clone());
        (before < self.max_connections).then_some(seat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::secret::Secret;

    fn gate(keys: &str, allowed: &[&str], max: usize) -> ApiGate {
        let mut config = ServerConfig::default();
        config.api.key = Secret::new(keys);
        config.api.allowed_clients = TrustedProxies::parse(allowed).expect("list");
        config.api.max_connections = max;
        ApiGate::from_config(&config).expect("keys").expect("on")
    }

    #[test]
    fn every_configured_key_is_accepted_and_nothing_else() {
        let g = gate("old-key,new-key", &[], 1);
        assert!(g.authorizes(Some("apikey old-key")));
        assert!(g.authorizes(Some("ApiKey new-key")));
        for refused in [
            None,
            Some(""),
            Some("apikey"),
            Some("apikey "),
            Some("apikey old"),
            Some("apikey old-key2"),
            Some("Bearer old-key"),
        ] {
            assert!(!g.authorizes(refused), "{refused:?}");
        }
        assert!(ApiGate::from_config(&ServerConfig::default())
            .expect("no file")
            .is_none());
    }

    #[test]
    fn allow_list_and_seats() {
        let g = gate("k", &["127.0.0.0/8"], 2);
        assert!(g.allows("127.0.0.2".parse().expect("ip")));
        assert!(!g.allows("10.0.0.1".parse().expect("ip")));
        let a = g.seat().expect("first");
        let _b = g.seat().expect("second");
        assert!(g.seat().is_none(), "a third is over api.max_connections");
        drop(a);
        assert!(g.seat().is_some(), "a seat is given back on drop");
    }
}
