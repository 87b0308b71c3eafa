//! The `ringcast` binary with profiles: every shipped profile starts on this
//! box and serves `/echo`; a bad profile, `--set` or environment variable is
//! refused with exit code 2 and one line naming source, key and reason,
//! before anything listens; `profile show` prints provenance; `doctor` exits
//! non-zero on a blocker.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Client, Frame};
use ringcast::proto::close::CloseCode;
use ringcast::proto::frame::OpCode;

const BIN: &str = env!("CARGO_BIN_EXE_ringcast");
const TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `ringcast ARGS` to completion (with a deadline), environment cleared
/// of `RINGCAST_*` except what `env` adds.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    command.args(args).stdin(Stdio::null());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("RINGCAST_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ringcast");
    let deadline = Instant::now() + TIMEOUT;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ringcast {args:?} did not exit within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("output")
}

/// A profile file in the target directory, removed on drop.
struct TempProfile(PathBuf);

impl TempProfile {
    fn new(name: &str, text: &str) -> TempProfile {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let path = dir.join(format!("{name}-{}.toml", std::process::id()));
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .expect("write profile");
        TempProfile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 path")
    }
}

impl Drop for TempProfile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn bad_profiles_are_refused_with_exit_2_and_one_line() {
    let cases = [
        (
            "unknown-key",
            "[limits]\nmax_mesage_size = 1\n",
            "limits.max_mesage_size: unknown key (did you mean limits.max_message_size?)",
        ),
        (
            "wrong-type",
            "[server]\nworkers = \"two\"\n",
            "server.workers: expected a non-negative integer, got the string \"two\"",
        ),
        (
            "out-of-range",
            "[io_uring]\nuring_entries = 1000\n",
            "io_uring.uring_entries: 1000 is not a power of two in 8..=32768",
        ),
        (
            "inconsistent",
            "[timeouts]\nping_interval = \"60s\"\nidle_timeout = \"60s\"\n",
            "timeouts.ping_interval: 1m must be shorter than timeouts.idle_timeout (1m)",
        ),
    ];
    for (name, text, want) in cases {
        let profile = TempProfile::new(name, text);
        let output = run(
            &[
                "serve",
                "--profile",
                profile.path(),
                "--listen",
                "127.0.0.1:0",
            ],
            &[],
        );
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert_eq!(
            stderr,
            format!("ringcast: {}: {want}\n", profile.path()),
            "{name}"
        );
        assert!(output.stdout.is_empty(), "{name}: started anyway");
    }
}

#[test]
fn bad_overrides_and_missing_files_are_refused_with_exit_2() {
    let output = run(
        &["serve", "--listen", "127.0.0.1:0"],
        &[("RINGCAST_TIMEOUTS__IDLE_TIMEOUT", "10s")],
    );
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr_of(&output),
        "ringcast: env RINGCAST_TIMEOUTS__IDLE_TIMEOUT: timeouts.ping_interval: 30s must be \
         shorter than timeouts.idle_timeout (10s)\n"
    );
    let output = run(&["profile", "show", "--set", "store.fsync=sometimes"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr_of(&output),
        "ringcast: --set store.fsync=sometimes: store.fsync: \"sometimes\" is not one of \
         always, batch, never\n"
    );
    let output = run(&["doctor", "--profile", "/nonexistent/hihg.toml"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).starts_with("ringcast: /nonexistent/hihg.toml: cannot read profile:"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn profile_show_prints_every_source() {
    let output = run(
        &[
            "profile",
            "show",
            "--profile",
            "medium",
            "--set",
            "server.backlog=2048",
        ],
        &[("RINGCAST_LIMITS__COMMAND_RATE", "50")],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert!(
        stdout.contains("# profile: medium from hardware-profiles/medium.toml (embedded)"),
        "{stdout}"
    );
    let line = |key: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no {key} in {stdout}"))
            .to_string()
    };
    assert!(line("max_connections_per_worker").ends_with("# profile medium"));
    assert!(line("command_rate").contains("50"));
    assert!(line("command_rate").ends_with("# env RINGCAST_LIMITS__COMMAND_RATE"));
    assert!(line("backlog").ends_with("# flag --set server.backlog=2048"));

    let output = run(&["profile", "show"], &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("# profile: none (embedded defaults)"),
        "{stdout}"
    );
    assert!(stdout.contains("history_size = 100"), "{stdout}");
    assert!(
        stdout
            .lines()
            .filter(|l| l.contains(" = "))
            .all(|l| l.contains("# default")),
        "{stdout}"
    );
    // The frame limit follows the message limit; [store] is read (by the
    // disk engine), so it carries no "not read yet" mark.
    assert!(
        stdout.lines().any(|l| l.starts_with("max_frame_size = ")
            && l.ends_with("# default (from limits.max_message_size)")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("fsync = ") && l.ends_with("# default")),
        "{stdout}"
    );
}

#[test]
fn profile_show_gives_the_frame_limit_its_source() {
    let output = run(
        &["profile", "show", "--set", "limits.max_message_size=2MiB"],
        &[],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let frame = stdout
        .lines()
        .find(|l| l.starts_with("max_frame_size = "))
        .unwrap_or_else(|| panic!("no max_frame_size in {stdout}"));
    assert!(frame.starts_with("max_frame_size = \"2 MiB\""), "{frame}");
    assert!(
        frame.ends_with("# flag --set limits.max_message_size=2MiB (from limits.max_message_size)"),
        "{frame}"
    );
}

#[test]
fn a_profile_name_with_a_typo_gets_a_hint() {
    for command in [
        &["serve", "--listen", "127.0.0.1:0"][..],
        &["profile", "show"],
    ] {
        let mut args = command.to_vec();
        args.extend(["--profile", "hihg"]);
        let output = run(&args, &[]);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert_eq!(
            stderr_of(&output),
            "ringcast: --profile: no profile \"hihg\": did you mean high?\n",
            "{args:?}"
        );
    }
}

#[test]
fn a_profile_with_several_errors_reports_all_of_them() {
    let profile = TempProfile::new(
        "several",
        "[server]\nworkers = \"two\"\n[limits]\ncommand_rate = -1\n\
         [pubsub]\nmax_publish_bytes = \"lots\"\n",
    );
    let output = run(
        &[
            "serve",
            "--profile",
            profile.path(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = stderr_of(&output);
    let lines: Vec<&str> = stderr.lines().collect();
    let path = profile.path();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(
        lines[0].starts_with(&format!(
            "ringcast: {path}: server.workers: expected a non-negative integer"
        )),
        "{stderr}"
    );
    assert_eq!(
        lines[1],
        format!("{path}: limits.command_rate: -1 is negative")
    );
    assert!(
        lines[2].starts_with(&format!("{path}: pubsub.max_publish_bytes: ")),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "started anyway");
}

#[test]
fn doctor_exits_non_zero_on_a_blocker() {
    // No machine has 1000 TiB of memory.
    let profile = TempProfile::new("huge", "[capacity]\nplanned_memory = \"1000 TiB\"\n");
    let output = run(&["doctor", "--profile", profile.path()], &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("BLOCKER  memory"), "{stdout}");
    assert!(stdout.contains("fix: "), "{stdout}");
}

/// A `ringcast serve` child, SIGKILLed on drop if still running.
struct Serving {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(profile: &str) -> Serving {
    serve_with(&["--profile", profile])
}

/// `ringcast serve ARGS --listen 127.0.0.1:0`, once it listens.
fn serve_with(args: &[&str]) -> Serving {
    let profile = args.join(" ");
    let mut child = Command::new(BIN)
        .arg("serve")
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .env("RINGCAST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ringcast serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(TIMEOUT).unwrap_or_else(|_| {
        let _ = child.kill();
        panic!("{profile}: no listening line")
    });
    let addr = line
        .trim()
        .strip_prefix("ringcast listening on ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("{profile}: unexpected line {line:?}"));
    Serving { child, addr }
}

#[test]
fn every_shipped_profile_starts_here_and_serves_echo() {
    for profile in ["medium", "high", "ultra", "auto"] {
        let mut server = serve(profile);
        let mut client = Client::connect(server.addr, "/echo");
        client.send(OpCode::Text, true, profile.as_bytes());
        assert_eq!(client.recv(), Some(Frame::Text(profile.to_string())));
        client.close(CloseCode::NORMAL, "done");
        assert_eq!(client.expect_close(), Some(1000));
        drop(client); // FIN: the server need not wait out its close timeout
                      // SAFETY: kill takes no pointers; the pid is our own live child.
        unsafe {
            libc::kill(server.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + TIMEOUT;
        while server.child.try_wait().expect("wait").is_none() {
            assert!(Instant::now() < deadline, "--profile {profile}: no exit");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(server.child.wait().expect("status").success(), "{profile}");
    }
}

/// A key means the same whichever layer sets it: raising the message limit
/// with `--set` alone lets a browser's single-frame message through, and a
/// frame over the limit is closed with 1009 naming the key and its value.
#[test]
fn a_message_limit_set_by_key_raises_the_frame_limit_too() {
    let server = serve_with(&["--set", "limits.max_message_size=2MiB"]);
    let mut client = Client::connect(server.addr, "/echo");
    let message: String = (0..1 << 20)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    client.send(OpCode::Text, true, message.as_bytes());
    assert_eq!(client.recv(), Some(Frame::Text(message)));
    // Only the header of a frame one byte over: it is refused on its length.
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&((2u64 << 20) + 1).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    client.send_raw(&header);
    loop {
        match client.recv() {
            Some(Frame::Close(close)) => {
                assert_eq!(
                    close,
                    Some((
                        1009,
                        "frame of 2097153 bytes over limits.max_frame_size = 2097152".into()
                    ))
                );
                break;
            }
            Some(_) => continue,
            None => panic!("no close frame"),
        }
    }
}
