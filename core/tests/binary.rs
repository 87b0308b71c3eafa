//! The `ringcast` binary itself: `MONOIO_FORCE_LEGACY_DRIVER=1` gives every
//! worker the epoll driver (and says so), and SIGTERM drains and exits 0.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Client, Frame};
use ringcast::proto::frame::OpCode;

#[test]
fn forced_legacy_driver_serves_and_sigterm_exits_cleanly() {
    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("binary-legacy.log");
    let mut server = Command::new(env!("CARGO_BIN_EXE_ringcast"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "2",
            "--no-pin",
        ])
        .env("MONOIO_FORCE_LEGACY_DRIVER", "1")
        .env("RINGCAST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start ringcast");
    let stdout = server.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("listening line");
    let addr = line
        .trim()
        .strip_prefix("ringcast listening on ")
        .expect(&line)
        .parse()
        .expect("addr");

    let mut client = Client::connect(addr, "/echo");
    client.send(OpCode::Text, true, b"legacy");
    assert_eq!(client.recv(), Some(Frame::Text("legacy".into())));

    // SAFETY: sending a signal to our own child process, by its pid.
    assert_eq!(unsafe { libc::kill(server.id() as i32, libc::SIGTERM) }, 0);
    assert_eq!(client.expect_close(), Some(1001));
    client.close(ringcast::proto::close::CloseCode::GOING_AWAY, "");
    drop(client);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "server did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status}");
    let log = std::fs::read_to_string(&log).expect("log");
    let epoll_workers = log
        .lines()
        .filter(|l| l.contains("worker started") && l.contains("epoll"))
        .count();
    assert_eq!(epoll_workers, 2, "each worker logs its driver:\n{log}");
    assert!(
        !log.contains("io_uring ("),
        "no worker got io_uring:\n{log}"
    );
}
