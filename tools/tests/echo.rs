//! `ringcast-load echo` end to end: against ringcast's `/echo` (started
//! in-process), and against a test echo server that answers after a known
//! delay or stalls once for 200 ms.
//!
//! What is checked: the counts add up, percentiles are present and ordered,
//! the injected delay shows in the latency, a stall shows in the open-loop
//! tail (coordinated omission corrected) and in the closed loop's warning,
//! an impossible rate is flagged client-bound, and the `.hgrm` and plot files
//! are written. Every run is a few seconds at most, one at a time.
//!
//! No bound here holds only on a fast box: counts follow from the open-loop
//! schedule (every message due is sent, however late), latencies have lower
//! bounds set by the test servers, rates are the window's counts over the
//! window (both by intended send time, so exact), and a Ctrl-C is sent once
//! the server has seen traffic, not after a sleep. How fast things are is
//! for benchmarks.

mod common;

use std::time::Duration;

use common::{
    assert_ordered_percentiles, count, run_load, run_load_env, serial, start_echo_server,
    start_ringcast, EchoBehaviour,
};

#[test]
fn open_loop_against_ringcast_counts_every_echo() {
    let _serial = serial();
    let server = start_ringcast(|_| {});
    let url = format!("ws://{}/echo", server.local_addr());
    for env in [
        [("MONOIO_FORCE_LEGACY_DRIVER", "0")],
        [("MONOIO_FORCE_LEGACY_DRIVER", "1")],
    ] {
        let run = run_load_env(
            &[
                "echo",
                "--url",
                &url,
                "--connections",
                "20",
                "--rate",
                "2000",
                "--warmup",
                "300ms",
                "--duration",
                "1500ms",
            ],
            if env[0].1 == "1" { &env } else { &[] },
        );
        assert!(run.status.success(), "{}", run.text);
        let r = &run.report;
        assert_eq!(r["scenario"], "echo");
        assert_eq!(r["connections"]["opened"], 20, "{}", run.text);
        assert_eq!(count(&run, "sent"), count(&run, "received"), "{}", run.text);
        assert_eq!(count(&run, "unanswered"), 0, "{}", run.text);
        assert_eq!(count(&run, "bad_messages"), 0, "{}", run.text);
        assert_eq!(count(&run, "not_sent"), 0, "{}", run.text);
        // 2000/s for 1.8 s in all, 1.5 s of it recorded.
        let sent = count(&run, "sent");
        assert!((3500..=3700).contains(&sent), "sent {sent}\n{}", run.text);
        assert_eq!(r["metrics"]["latency"]["count"], 3000, "{}", run.text);
        assert_ordered_percentiles(&run, "latency");
        assert_ordered_percentiles(&run, "generator_lag");
        // The rate is the window's echoes over the window, both by intended
        // send time: exact however slow the box (3000 over 1.5 s).
        let received = r["throughput"]["received_per_s"].as_f64().unwrap_or(0.0);
        assert_eq!(r["measured_s"], 1.5, "{}", run.text);
        assert!((received - 2000.0).abs() < 1e-6, "{}", run.text);
        if env[0].1 == "1" {
            assert_eq!(r["driver"], "epoll", "{}", run.text);
        }
        assert!(run.text.contains("p99.99"), "{}", run.text);
    }
    server.join();
}

#[test]
fn closed_loop_against_ringcast_keeps_k_in_flight() {
    let _serial = serial();
    let server = start_ringcast(|_| {});
    let url = format!("ws://{}/echo", server.local_addr());
    let run = run_load(&[
        "echo",
        "--url",
        &url,
        "--connections",
        "10",
        "--inflight",
        "4",
        "--size",
        "64",
        "--binary",
        "--warmup",
        "200ms",
        "--duration",
        "1s",
        "--threads",
        "2",
        "--cpus",
        "0",
        "--source",
        "127.0.0.2-127.0.0.3",
    ]);
    assert!(run.status.success(), "{}", run.text);
    assert_eq!(count(&run, "sent"), count(&run, "received"), "{}", run.text);
    // Each connection starts with its 4 in flight, and all are answered.
    assert!(count(&run, "received") >= 10 * 4, "{}", run.text);
    assert_eq!(count(&run, "bad_messages"), 0, "{}", run.text);
    assert_ordered_percentiles(&run, "latency");
    assert!(run.report["metrics"]["generator_lag"].is_null());
    assert_eq!(run.report["threads"], 2);
    assert_eq!(run.report["cpus"], serde_json::json!([0]));
    let warnings = run.report["warnings"].to_string();
    assert!(warnings.contains("coordinated omission"), "{warnings}");
    server.join();
}

/// The echo server answers 20 ms after each message: no latency can be
/// below it (an upper bound would be a claim about the box's speed).
#[test]
fn an_injected_delay_shows_in_the_latency() {
    let _serial = serial();
    let addr = start_echo_server(
        EchoBehaviour {
            delay: Duration::from_millis(20),
            stall: None,
        },
        Duration::from_secs(20),
    );
    let run = run_load(&[
        "echo",
        "--url",
        &format!("ws://{addr}/"),
        "--connections",
        "4",
        "--rate",
        "200",
        "--warmup",
        "200ms",
        "--duration",
        "1s",
    ]);
    assert!(run.status.success(), "{}", run.text);
    let [p50, ..] = assert_ordered_percentiles(&run, "latency");
    assert!(
        p50 >= 20_000,
        "p50 {p50} µs below the 20 ms delay\n{}",
        run.text
    );
    assert_eq!(count(&run, "unanswered"), 0, "{}", run.text);
    assert_eq!(
        run.report["metrics"]["latency"]["count"], 200,
        "{}",
        run.text
    );
}

/// The server stalls every echo for 200 ms once, 600 ms into a 2 s run. An
/// open loop keeps sending during the stall and charges each message its
/// wait from the intended send time: ~10 % of the messages wait, so p99 is
/// far up in the stall. A closed loop stops sending during the stall, so
/// only its few messages in flight carry the wait; its report must say what
/// it hid.
#[test]
fn a_stall_shows_in_the_open_loop_tail_and_in_the_closed_loop_warning() {
    let _serial = serial();
    let behaviour = EchoBehaviour {
        delay: Duration::ZERO,
        stall: Some((Duration::from_millis(600), Duration::from_millis(200))),
    };
    let addr = start_echo_server(behaviour, Duration::from_secs(20));
    let open = run_load(&[
        "echo",
        "--url",
        &format!("ws://{addr}/"),
        "--connections",
        "4",
        "--rate",
        "500",
        "--warmup",
        "0s",
        "--duration",
        "2s",
    ]);
    assert!(open.status.success(), "{}", open.text);
    let [_, p90, p99, ..] = assert_ordered_percentiles(&open, "latency");
    assert!(
        p99 >= 100_000,
        "p99 {p99} µs: the stall is hidden\n{}",
        open.text
    );
    assert!(p90 < p99);

    let addr = start_echo_server(behaviour, Duration::from_secs(20));
    let closed = run_load(&[
        "echo",
        "--url",
        &format!("ws://{addr}/"),
        "--connections",
        "4",
        "--inflight",
        "1",
        "--warmup",
        "0s",
        "--duration",
        "2s",
    ]);
    assert!(closed.status.success(), "{}", closed.text);
    let [.., max_closed] = assert_ordered_percentiles(&closed, "latency");
    assert!(
        max_closed >= 150_000,
        "closed loop max {max_closed} µs: the messages in flight saw the stall\n{}",
        closed.text
    );
    let silence = closed.report["figures"]["longest_silence_ms"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(silence >= 150.0, "silence {silence}\n{}", closed.text);
    let warnings = closed.report["warnings"].to_string();
    assert!(warnings.contains("went silent"), "{warnings}");
}

/// A rate no single generator thread can send is flagged client-bound.
#[test]
fn an_impossible_rate_is_flagged_client_bound() {
    let _serial = serial();
    let server = start_ringcast(|_| {});
    let url = format!("ws://{}/echo", server.local_addr());
    let page = std::env::temp_dir().join(format!(
        "ringcast-load-client-bound-{}.html",
        std::process::id()
    ));
    let run = run_load(&[
        "echo",
        "--url",
        &url,
        "--connections",
        "8",
        "--rate",
        "5000000",
        "--warmup",
        "0s",
        "--duration",
        "1s",
        "--drain",
        "1s",
        "--plot",
        page.to_str().expect("utf8"),
    ]);
    assert!(run.status.success(), "{}", run.text);
    assert_eq!(run.report["client_bound"], true, "{}", run.text);
    let reasons = run.report["client_bound_reasons"].to_string();
    assert!(reasons.contains("fell behind"), "{reasons}");
    assert!(run.text.contains("CLIENT-BOUND"), "{}", run.text);
    // The page and the plot in it say so too, with the reasons.
    let html = std::fs::read_to_string(&page).expect("page written");
    let _ = std::fs::remove_file(&page);
    assert!(
        html.contains("<p class=\"client-bound\">") && html.contains("fell behind"),
        "{html}"
    );
    let svg = &html[html.find("<svg").expect("svg")..];
    assert!(svg.contains("(CLIENT-BOUND)"), "{svg}");
    server.join();
}

#[test]
fn hgrm_and_plot_files_are_written() {
    let _serial = serial();
    let server = start_ringcast(|_| {});
    let url = format!("ws://{}/echo", server.local_addr());
    let dir = std::env::temp_dir().join(format!("ringcast-load-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let hgrm = dir.join("run.hgrm");
    let svg = dir.join("run.svg");
    let run = run_load(&[
        "echo",
        "--url",
        &url,
        "--connections",
        "4",
        "--rate",
        "1000",
        "--warmup",
        "0s",
        "--duration",
        "500ms",
        "--hgrm",
        hgrm.to_str().expect("utf8"),
        "--plot",
        svg.to_str().expect("utf8"),
        "--label",
        "ringcast-test",
    ]);
    assert!(run.status.success(), "{}", run.text);
    // The run says what it wrote.
    for file in [&hgrm, &svg, &dir.join("run.generator_lag.hgrm")] {
        assert!(
            run.text.contains(&format!("wrote {}", file.display())),
            "{}",
            run.text
        );
    }
    let text = std::fs::read_to_string(&hgrm).expect("hgrm written");
    assert!(text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)"));
    assert!(text.contains("#[Max     ="), "{text}");
    assert!(text.contains("Total count    =          500]"), "{text}");
    let lag = std::fs::read_to_string(dir.join("run.generator_lag.hgrm")).expect("lag hgrm");
    assert!(lag.contains("#[Buckets"));
    let plot = std::fs::read_to_string(&svg).expect("svg written");
    assert!(plot.starts_with("<svg") && plot.contains("ringcast-test"));

    // Two reports overlaid by the plot subcommand.
    let json = dir.join("a.json");
    std::fs::write(&json, run.report.to_string()).expect("json");
    let cmp = dir.join("cmp.html");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringcast-load"))
        .args([
            "plot",
            json.to_str().expect("utf8"),
            json.to_str().expect("utf8"),
        ])
        .arg("-o")
        .arg(&cmp)
        .output()
        .expect("plot runs");
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!("wrote {} (HTML page", cmp.display())) && said.contains("2 run(s)"),
        "{said}"
    );
    let page = std::fs::read_to_string(&cmp).expect("html written");
    assert!(page.contains("<svg") && page.matches("<tr><th>ringcast-test</th>").count() == 2);
    // The page's table shows the percentiles the text report printed.
    let latency = &run.report["metrics"]["latency"];
    let text_row = run
        .text
        .lines()
        .find(|l| l.starts_with("latency "))
        .expect("latency row");
    for key in [
        "p50_us", "p90_us", "p99_us", "p999_us", "p9999_us", "max_us",
    ] {
        let us = latency[key].as_u64().expect("percentile");
        let shown = ringcast_tools::report::Micros(us).to_string();
        assert!(
            text_row.contains(&shown),
            "{key}: {shown} not in {text_row}"
        );
        assert!(
            page.contains(&format!("<td>{shown}</td>")),
            "{key}: {shown} not in\n{page}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    server.join();
}

#[test]
fn refuses_bad_arguments() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringcast-load"))
        .args(["echo", "--url", "ws://127.0.0.1:9/", "--connections", "1"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--rate R"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringcast-load"))
        .args([
            "echo",
            "--url",
            "ws://127.0.0.1:9/",
            "--rate",
            "10",
            "--size",
            "8",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}

/// Ctrl-C ends the window early and still prints (and writes) the report,
/// marked interrupted, covering what was measured.
#[test]
fn ctrl_c_reports_what_was_measured() {
    let _serial = serial();
    let server = start_ringcast(|_| {});
    let url = format!("ws://{}/echo", server.local_addr());
    let json = std::env::temp_dir().join(format!("ringcast-load-int-{}.json", std::process::id()));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ringcast-load"))
        .args([
            "echo",
            "--url",
            &url,
            "--connections",
            "4",
            "--rate",
            "1000",
            "--warmup",
            "0s",
            "--duration",
            "30s",
            "--quiet",
            "--json",
        ])
        .arg(&json)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    // Interrupt once the window has traffic in it (the server has echoed
    // 300 messages), however long the start took.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while echoed(server.local_addr()) < 300.0 {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server saw no 300 messages in 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill only sends a signal to the child we spawned.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("ringcast-load did not stop after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("stdout"), &mut out)
        .expect("read");
    assert!(out.contains("warning: interrupted"), "{out}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json written")).expect("json");
    let _ = std::fs::remove_file(&json);
    assert_eq!(report["interrupted"], true);
    // The window ended at the Ctrl-C, long before its 30 s.
    let measured = report["measured_s"].as_f64().unwrap_or(0.0);
    assert!(measured > 0.0 && measured < 30.0, "measured {measured} s");
    assert!(report["counts"]["sent"].as_u64().unwrap_or(0) >= 300);
    assert!(report["metrics"]["latency"]["count"].as_u64().unwrap_or(0) > 0);
    server.join();
}

/// Messages the in-process ringcast has received over all workers, from
/// its `/metrics`.
fn echoed(addr: std::net::SocketAddr) -> f64 {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return 0.0;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
        .lines()
        .filter(|line| line.starts_with("ringcast_messages_received_total"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
