//! Inputs the fuzzers found, kept as plain tests. Each one is written up in
//! `regressions.md` (what broke, where, the minimized input). A test marked
//! `#[ignore]` pins a bug still open in `core/src`: remove the `ignore` once
//! the fix lands, so it can never come back.

use std::time::Instant;

use ringcast::proto::close::CloseCode;
use ringcast::proto::session::{Session, SessionConfig};

/// R1, found by the `session` target: the minimized input, replayed through
/// the target.
#[test]
fn r1_session_target_input() {
    ringcast_fuzz::session::check(b"\x02\x3b\x39\x96\x97\x1c\x00\x02");
}

/// R1: after the server's own close, a protocol error from the peer must not
/// send a second close frame (RFC 6455 §5.5.1: the close frame is the last
/// frame an endpoint sends).
#[test]
fn r1_no_second_close_after_server_close() {
    let t0 = Instant::now();
    let mut session = Session::new(&SessionConfig::default(), t0);
    let mut out = Vec::new();
    session.close(CloseCode::POLICY, "", t0, &mut out);
    assert_eq!(out, b"\x88\x02\x03\xf0", "our close frame");
    // A masked, empty continuation frame with no message to continue: a
    // protocol error (1002) while we wait for the peer's close.
    let mut bad = *b"\x00\x80\x00\x00\x00\x00";
    session.handle_read(&mut bad, t0, &mut out, |_, _| {});
    assert!(session.is_finished());
    assert_eq!(
        out, b"\x88\x02\x03\xf0",
        "a second close frame followed the first"
    );
}
