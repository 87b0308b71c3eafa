//! `ringcast-load api` against a real server: publishes are acknowledged,
//! every one is delivered to the subscriber, and the report has its figures.

mod common;

use common::{run_load_env, serial, start_ringcast};
use ringcast::config::secret::Secret;

#[test]
fn api_publishes_are_counted_and_every_one_is_delivered() {
    let _one_at_a_time = serial();
    let server = start_ringcast(|c| c.api.key = Secret::new("load-key"));
    let addr = server.local_addr();
    let url = format!("http://{addr}");
    let ws = format!("ws://{addr}/ws");
    let run = run_load_env(
        &[
            "api",
            "--url",
            &url,
            "--connections",
            "4",
            "--channels",
            "3",
            "--ws-url",
            &ws,
            "--warmup",
            "100ms",
            "--duration",
            "500ms",
            "--drain",
            "2s",
        ],
        &[("RINGCAST_API_KEY", "load-key")],
    );
    assert!(run.status.success(), "{}", run.text);
    let r = &run.report;
    assert_eq!(r["scenario"], "api", "{}", run.text);
    assert_eq!(r["connections"], 4);
    assert!(r["acked"].as_u64().is_some_and(|n| n > 0), "{r}");
    assert_eq!(r["refused"], 0, "{r}");
    assert_eq!(r["lost"], 0, "every acknowledged publish arrives: {r}");
    assert!(
        r["delivery_latency"]["count"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{r}"
    );
    let p50 = r["request_latency"]["p50_us"].as_u64().expect("p50");
    let p99 = r["request_latency"]["p99_us"].as_u64().expect("p99");
    assert!(p50 <= p99, "{r}");
    let wrong = run_load_env(
        &["api", "--url", &url, "--duration", "100ms"],
        &[("RINGCAST_API_KEY", "nope")],
    );
    assert!(wrong.status.success(), "{}", wrong.text);
    assert_eq!(
        wrong.report["acked"], 0,
        "a wrong key publishes nothing: {}",
        wrong.text
    );
    assert!(wrong.report["refused"].as_u64().is_some_and(|n| n > 0));
    server.join();
}
