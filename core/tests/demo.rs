//! The demo chat page over real sockets: served at `GET /` with its strict
//! Content-Security-Policy while auth is off, not under JWT, and as
//! `server.demo_page` forces it.

mod common;

use common::{http, start};
use ringcast::auth::{AuthMode, KeySource, Secret};
use ringcast::config::DemoPage;

#[test]
fn the_page_and_the_sdk_are_served_with_a_strict_csp() {
    let server = start(false, |_| {});
    let page = http(server.local_addr(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("Content-Type: text/html"), "{page}");
    assert!(
        page.contains("Content-Security-Policy: default-src 'none'; script-src 'self';"),
        "{page}"
    );
    assert!(page.contains("<script type=\"module\" src=\"/demo/app.js\">"));
    let sdk = http(
        server.local_addr(),
        b"GET /demo/ringcast-client.js HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert!(sdk.starts_with("HTTP/1.1 200"), "{sdk}");
    assert!(sdk.contains("Content-Type: text/javascript"), "{sdk}");
    assert!(
        sdk.contains("export class RingcastClient"),
        "the SDK's build"
    );
    let other = http(
        server.local_addr(),
        b"GET /demo/x.js HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert!(other.starts_with("HTTP/1.1 404"), "{other}");
}

fn status_of(server: &ringcast::server::ServerHandle, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    let response = http(server.local_addr(), request.as_bytes());
    response.get(9..12).unwrap_or_default().to_string()
}

fn with_auth(demo: DemoPage) -> ringcast::server::ServerHandle {
    start(false, |c| {
        c.auth.mode = AuthMode::Jwt;
        c.auth.key = KeySource::Secret(Secret::new("0123456789abcdef0123456789abcdef-test"));
        c.server.demo_page = demo;
    })
}

#[test]
fn no_page_when_auth_is_on_unless_turned_on() {
    let server = with_auth(DemoPage::Auto);
    for path in ["/", "/demo/app.js", "/demo/ringcast-client.js"] {
        assert_eq!(status_of(&server, path), "404", "{path}");
    }
    let forced = with_auth(DemoPage::On);
    assert_eq!(status_of(&forced, "/"), "200");
}

#[test]
fn the_key_turns_it_off_without_auth() {
    let server = start(false, |c| c.server.demo_page = DemoPage::Off);
    assert_eq!(status_of(&server, "/"), "404");
    assert_eq!(status_of(&server, "/demo/app.js"), "404");
}
