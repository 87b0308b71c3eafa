//! `ringcast-load fanout` and `storm` end to end: wire protocol v1 against
//! ringcast's `/ws` (started in-process), and `--protocol broadcast` against
//! a tiny broadcast server from `common`.
//!
//! What is checked: every delivery is counted and accounted for (no gap, no
//! duplicate, nothing lost at the end, deliveries = what the offsets say was
//! published), percentiles present and ordered; in a storm, every dropped
//! subscriber comes back, and with resume nothing is missed — without
//! resume, a reconnect that waits loses messages and the report says so.
//!
//! No bound here holds only on a fast box: counts follow from the open-loop
//! schedule, rates are the window's counts over the window (both by
//! intended time, so exact), and times are bounded only from below (a
//! reconnect cannot come before its delay).

mod common;

use std::time::Duration;

use common::{
    assert_ordered_percentiles, count, run_load, serial, start_broadcast_server, start_ringcast,
};

#[test]
fn ringcast_fanout_delivers_every_message_once() {
    let _serial = serial();
    let server = start_ringcast(|_| {});
    let url = format!("ws://{}/ws", server.local_addr());
    let run = run_load(&[
        "fanout",
        "--url",
        &url,
        "--subscribers",
        "60",
        "--channels",
        "3",
        "--publishers",
        "2",
        "--rate",
        "150",
        "--warmup",
        "300ms",
        "--duration",
        "1500ms",
        "--threads",
        "2",
    ]);
    assert!(run.status.success(), "{}", run.text);
    let r = &run.report;
    assert_eq!(r["scenario"], "fanout");
    assert_eq!(r["connections"]["opened"], 62, "{}", run.text);
    assert_eq!(r["errors"], serde_json::json!({}), "{}", run.text);
    for zero in [
        "gaps",
        "duplicates",
        "missed",
        "lost_at_end",
        "undelivered",
        "unanswered",
    ] {
        assert_eq!(count(&run, zero), 0, "{zero}\n{}", run.text);
    }
    // 150/s for 1.8 s; each publish reaches the 20 subscribers of its channel.
    let sent = count(&run, "sent");
    assert_eq!(sent, 270, "{}", run.text);
    assert_eq!(count(&run, "acked"), sent, "{}", run.text);
    assert_eq!(count(&run, "received"), sent * 20, "{}", run.text);
    assert_eq!(
        count(&run, "expected_deliveries"),
        sent * 20,
        "{}",
        run.text
    );
    assert_eq!(r["metrics"]["latency"]["count"], 225 * 20, "{}", run.text);
    // The window's deliveries over the window, both by intended publish
    // time: exact however slow the box (4500 over 1.5 s).
    let deliveries = r["throughput"]["deliveries_per_s"].as_f64().unwrap_or(0.0);
    assert_eq!(r["measured_s"], 1.5, "{}", run.text);
    assert!((deliveries - 3000.0).abs() < 1e-6, "{}", run.text);
    assert_ordered_percentiles(&run, "latency");
    assert_ordered_percentiles(&run, "generator_lag");
    assert_ordered_percentiles(&run, "setup");
    server.join();
}

#[test]
fn broadcast_fanout_against_a_plain_broadcast_server() {
    let _serial = serial();
    let addr = start_broadcast_server(Duration::from_secs(20));
    let run = run_load(&[
        "fanout",
        "--url",
        &format!("ws://{addr}/"),
        "--protocol",
        "broadcast",
        "--subscribers",
        "20",
        "--publishers",
        "2",
        "--rate",
        "100",
        "--warmup",
        "200ms",
        "--duration",
        "1s",
    ]);
    assert!(run.status.success(), "{}", run.text);
    for zero in [
        "gaps",
        "duplicates",
        "lost_at_end",
        "undelivered",
        "bad_messages",
    ] {
        assert_eq!(count(&run, zero), 0, "{zero}\n{}", run.text);
    }
    let sent = count(&run, "sent");
    assert_eq!(sent, 120, "{}", run.text);
    assert_eq!(count(&run, "received"), sent * 20, "{}", run.text);
    // The publishers are clients too: each gets every message back.
    assert_eq!(count(&run, "publisher_receipts"), sent * 2, "{}", run.text);
    assert_eq!(
        run.report["metrics"]["latency"]["count"],
        100 * 20,
        "{}",
        run.text
    );
    assert_ordered_percentiles(&run, "latency");
}

#[test]
fn storm_with_resume_misses_nothing() {
    let _serial = serial();
    let server = start_ringcast(|_| {});
    let url = format!("ws://{}/ws", server.local_addr());
    let run = run_load(&[
        "storm",
        "--url",
        &url,
        "--subscribers",
        "300",
        "--channels",
        "3",
        "--publishers",
        "3",
        "--rate",
        "150",
        "--warmup",
        "200ms",
        "--duration",
        "2s",
        "--drop-after",
        "500ms",
        "--reconnect-delay",
        "150ms",
    ]);
    assert!(run.status.success(), "{}", run.text);
    let r = &run.report;
    assert_eq!(r["scenario"], "storm");
    assert_eq!(count(&run, "dropped"), 300, "{}", run.text);
    assert_eq!(count(&run, "resubscribed"), 300, "{}", run.text);
    assert_eq!(count(&run, "recovered"), 300, "{}", run.text);
    for zero in [
        "gaps",
        "duplicates",
        "missed",
        "lost_at_end",
        "undelivered",
        "not_recovered",
    ] {
        assert_eq!(count(&run, zero), 0, "{zero}\n{}", run.text);
    }
    assert_eq!(count(&run, "received"), count(&run, "expected_deliveries"));
    let back = r["figures"]["all_back_s"].as_f64().unwrap_or(0.0);
    let receiving = r["figures"]["all_receiving_s"].as_f64().unwrap_or(0.0);
    assert!(back >= 0.15, "all back after {back} s\n{}", run.text);
    assert!(receiving >= back, "{}", run.text);
    assert_ordered_percentiles(&run, "resubscribe");
    assert_ordered_percentiles(&run, "resume");
    assert!(run.text.contains("all_back_s"), "{}", run.text);
    server.join();
}

#[test]
fn storm_without_resume_counts_what_it_missed() {
    let _serial = serial();
    let server = start_ringcast(|_| {});
    let url = format!("ws://{}/ws", server.local_addr());
    let run = run_load(&[
        "storm",
        "--url",
        &url,
        "--subscribers",
        "50",
        "--channels",
        "1",
        "--publishers",
        "2",
        "--rate",
        "100",
        "--warmup",
        "100ms",
        "--duration",
        "1500ms",
        "--drop-after",
        "300ms",
        "--reconnect-delay",
        "300ms",
        "--no-resume",
    ]);
    assert!(run.status.success(), "{}", run.text);
    assert_eq!(count(&run, "resubscribed"), 50, "{}", run.text);
    assert_eq!(count(&run, "not_recovered"), 50, "{}", run.text);
    // ~30 publishes are due during each subscriber's outage of at least
    // 300 ms: every subscriber misses some.
    let missed = count(&run, "missed");
    assert!(missed >= 50, "missed {missed}\n{}", run.text);
    assert_eq!(count(&run, "undelivered"), missed, "{}", run.text);
    assert_eq!(count(&run, "gaps"), 0, "{}", run.text);
    server.join();
}
