//! The demo chat page (`GET /`), embedded in the binary: a newcomer runs the
//! server and opens http://127.0.0.1:8080/ in two tabs. `server.demo_page`
//! decides: `"auto"` (default) serves it only while authentication is off
//! (`auth.auth_mode = "none"`, the embedded default) — the page connects
//! without a token, so under JWT it would not work — `"on"` / `"off"` force
//! it. The SDK it loads is clients/js's build, joined into one file by
//! clients/js/scripts/bundle.mjs (clients/js/test.sh checks it is current).

/// One embedded file.
pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static [u8],
}

/// Everything the page loads comes from this server; nothing inline, no
/// third party, no framing. `connect-src 'self'` covers the same-origin
/// `ws://` / `wss://` of `/ws`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The headers every demo response carries.
pub const HEADERS: [(&str, &str); 3] = [
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Cache-Control", "no-cache"),
];

/// The embedded file at `path`, if any.
pub fn asset(path: &str) -> Option<Asset> {
    let (content_type, body): (&str, &[u8]) = match path {
        "/" => (
            "text/html; charset=utf-8",
            include_bytes!("demo/index.html"),
        ),
        "/demo/app.js" => (
            "text/javascript; charset=utf-8",
            include_bytes!("demo/app.js"),
        ),
        "/demo/ringcast-client.js" => (
            "text/javascript; charset=utf-8",
            include_bytes!("demo/ringcast-client.js"),
        ),
        "/demo/style.css" => ("text/css; charset=utf-8", include_bytes!("demo/style.css")),
        _ => return None,
    };
    Some(Asset { content_type, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_what_it_loads_are_embedded() {
        let page = asset("/").expect("page");
        let html = std::str::from_utf8(page.body).expect("utf-8");
        for loaded in ["/demo/app.js", "/demo/style.css"] {
            assert!(html.contains(loaded), "{loaded}");
            assert!(asset(loaded).is_some(), "{loaded}");
        }
        let app = std::str::from_utf8(asset("/demo/app.js").expect("app").body).expect("utf-8");
        assert!(app.contains("./ringcast-client.js"));
        assert!(asset("/demo/ringcast-client.js").is_some());
        assert!(asset("/demo/nope.js").is_none());
        assert!(asset("/index.html").is_none());
    }

    #[test]
    fn nothing_inline_is_needed() {
        // The CSP refuses inline scripts and styles: the page must have none.
        let html = std::str::from_utf8(asset("/").expect("page").body).expect("utf-8");
        assert!(!html.contains("<script>") && !html.contains("style="));
        assert!(!html.contains("<style"));
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
    }
}
