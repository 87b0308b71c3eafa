//! `admission.trusted_proxies` over real sockets: behind a trusted proxy the
//! per-IP cap and the per-IP handshake rate count the client named by
//! `X-Forwarded-For` (rightmost untrusted entry), not the proxy; from an
//! untrusted peer the header is ignored. Every client here connects from
//! 127.0.0.1 and plays the proxy; both IO drivers.

mod common;

use std::io::Write;

use common::{raw, read_head, start, upgrade_request, Client, DRIVERS};
use ringcast::admission::TrustedProxies;
use ringcast::config::layers::{load, Setting};

/// A trusted-proxy list, as a profile would give it.
fn proxies(list: &[&str]) -> TrustedProxies {
    TrustedProxies::parse(list).expect("valid list")
}

/// An upgrade of `/echo` from 127.0.0.1 with `X-Forwarded-For: forwarded`
/// (no header for `None`): the open client, or the refusal's response head.
fn upgrade(addr: std::net::SocketAddr, forwarded: Option<&str>) -> Result<Client, String> {
    let mut stream = raw(addr);
    let header = forwarded.map_or(String::new(), |f| format!("X-Forwarded-For: {f}\r\n"));
    let request = upgrade_request("/echo").replace("\r\n\r\n", &format!("\r\n{header}\r\n"));
    stream.write_all(request.as_bytes()).expect("write");
    let head = read_head(&mut stream);
    match head.starts_with("HTTP/1.1 101") {
        true => Ok(Client::from_stream(stream)),
        false => Err(head),
    }
}

fn refused(result: Result<Client, String>, what: &str) -> String {
    let head = result.err().unwrap_or_else(|| panic!("{what}: admitted"));
    assert!(head.starts_with("HTTP/1.1 503"), "{what}: {head}");
    head
}

#[test]
fn the_per_ip_cap_counts_forwarded_clients_of_a_trusted_proxy() {
    for epoll in DRIVERS {
        let server = start(epoll, |c| {
            c.admission.trusted_proxies = proxies(&["127.0.0.1/32"]);
            c.limits.max_connections_per_ip = 1;
        });
        let addr = server.local_addr();
        let a = upgrade(addr, Some("203.0.113.1")).expect("client .1");
        let b = upgrade(addr, Some("198.51.100.7, 203.0.113.2")).expect("client .2");
        refused(upgrade(addr, Some("203.0.113.1")), "client .1 again");
        // Entries left of the client are the client's own words: a spoofed
        // address there does not get it a new slot.
        refused(
            upgrade(addr, Some("192.0.2.55, 203.0.113.1")),
            "client .1 spoofing",
        );
        // IPv6 with a port, and spaces.
        let c = upgrade(addr, Some(" [2001:db8::1]:4711 ")).expect("IPv6 client");
        refused(upgrade(addr, Some("2001:db8::2")), "same /64");
        // No header, or garbage: the proxy counts as itself (one slot).
        let d = upgrade(addr, None).expect("the proxy itself");
        refused(upgrade(addr, Some("not-an-address")), "garbage = the proxy");
        refused(upgrade(addr, None), "the proxy again");
        drop((a, b, c, d));
    }
}

#[test]
fn the_per_ip_rate_counts_forwarded_clients_of_a_trusted_proxy() {
    let server = start(false, |c| {
        c.admission.trusted_proxies = proxies(&["10.0.0.0/8", "127.0.0.1"]);
        c.admission.rate_per_ip = 1;
        c.admission.burst_per_ip = 1;
    });
    let addr = server.local_addr();
    let a = upgrade(addr, Some("203.0.113.1, 10.1.2.3")).expect("client .1");
    let b = upgrade(addr, Some("203.0.113.2")).expect("client .2");
    let head = refused(upgrade(addr, Some("203.0.113.1")), "client .1 paced");
    assert!(head.contains("Retry-After: "), "{head}");
    drop((a, b));
}

#[test]
fn an_untrusted_peer_s_forwarded_for_is_ignored() {
    for epoll in DRIVERS {
        let server = start(epoll, |c| c.limits.max_connections_per_ip = 1);
        let addr = server.local_addr();
        let a = upgrade(addr, Some("203.0.113.1")).expect("first");
        refused(
            upgrade(addr, Some("203.0.113.2")),
            "same peer, other header",
        );
        drop(a);
        // Trusting another network changes nothing for 127.0.0.1.
        let server = start(epoll, |c| {
            c.limits.max_connections_per_ip = 1;
            c.admission.trusted_proxies = proxies(&["10.0.0.0/8"]);
        });
        let addr = server.local_addr();
        let a = upgrade(addr, Some("203.0.113.1")).expect("first");
        refused(upgrade(addr, Some("203.0.113.2")), "untrusted peer");
        drop(a);
    }
}

/// A bad entry never reaches the server: it is refused while the
/// configuration loads, with its source, the key and the reason.
#[test]
fn a_bad_trusted_proxies_entry_is_refused_at_load() {
    let set = |arg: &str| Setting::parse_set(arg).expect("well-formed --set");
    let err = load(
        None,
        Vec::new(),
        &[set(r#"admission.trusted_proxies=["10.0.0.1/8"]"#)],
    )
    .expect_err("host bits");
    assert_eq!(
        err.to_string(),
        "--set admission.trusted_proxies=[\"10.0.0.1/8\"]: admission.trusted_proxies: \
         \"10.0.0.1/8\" has bits set past the prefix (did you mean \"10.0.0.0/8\"?)"
    );
    let ok = load(
        None,
        Vec::new(),
        &[set(r#"admission.trusted_proxies=["10.0.0.0/8", "::1"]"#)],
    )
    .expect("valid");
    let proxies = &ok.config.admission.trusted_proxies;
    assert!(proxies.trusts("::1".parse().expect("address")));
    assert!(proxies.trusts("10.9.8.7".parse().expect("address")));
}
