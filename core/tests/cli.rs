//! The `ringcast` binary's operator surface, run as an operator runs it:
//! size and duration flags take the forms of their keys (and a bad one is
//! refused naming the flag), `profile show` previews a serve command line,
//! `serve` warns when the fd limit cannot hold the profile's planned
//! connections, and a token from `ringcast token` opens `/ws` on a server
//! with auth on, within the grants it names. Every process is bounded and
//! listens on loopback only.

mod common;
#[path = "support/install.rs"]
#[allow(dead_code)]
mod support;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{raw, read_head, serve_binary, upgrade_request, Client, Frame};
use ringcast::proto::frame::OpCode;
use serde_json::{json, Value};
use support::{kill_and_reap, spawn_reader, wait_timeout};

const BIN: &str = env!("CARGO_BIN_EXE_ringcast");
const TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `ringcast ARGS` to completion (killed after [`TIMEOUT`]), with no
/// `RINGCAST_*` variable from the test's environment.
fn run(args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    command.args(args);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("RINGCAST_") {
            command.env_remove(key);
        }
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ringcast");
    let stdout = spawn_reader(child.stdout.take().expect("stdout"));
    let stderr = spawn_reader(child.stderr.take().expect("stderr"));
    let Some(status) = wait_timeout(&mut child, TIMEOUT) else {
        kill_and_reap(&mut child);
        panic!("ringcast {args:?} did not exit within {TIMEOUT:?}");
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader").into_bytes(),
        stderr: stderr.join().expect("stderr reader").into_bytes(),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A server process, killed and reaped when the test ends, passed or not.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        kill_and_reap(&mut self.0);
    }
}

/// A file in the target directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("cli-{name}-{}", std::process::id()));
        std::fs::write(&path, text).expect("write temp file");
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn size_flags_with_units_set_the_limits_a_running_server_enforces() {
    let (server, addr, _log) = serve_binary(
        "cli-units",
        &[],
        &[
            "--max-message-size",
            "512KiB",
            "--max-frame-size",
            "512 KiB",
        ],
    );
    let _server = Server(server);
    let mut client = Client::connect(addr, "/echo");
    // One frame past the 64 KiB default, echoed whole.
    let payload: Vec<u8> = (0..512 * 1024).map(|i| (i % 251) as u8).collect();
    client.send(OpCode::Binary, true, &payload);
    assert!(
        client.recv() == Some(Frame::Binary(payload)),
        "a 512 KiB frame was not echoed"
    );
}

#[test]
fn a_bad_flag_value_is_refused_with_exit_2_naming_the_flag_and_its_key() {
    let cases = [
        (
            "--max-message-size=16XB",
            "--max-message-size: limits.max_message_size: \"16XB\": unknown unit \"XB\" (use B, \
             KiB, MiB, GiB or TiB)",
        ),
        (
            "--idle-timeout=30",
            "--idle-timeout: timeouts.idle_timeout: expected a duration string like \"30s\" or \
             \"250ms\", got the integer 30",
        ),
    ];
    for (arg, want) in cases {
        let output = run(&["serve", "--listen", "127.0.0.1:0", arg]);
        assert_eq!(output.status.code(), Some(2), "{arg}");
        assert_eq!(text(&output.stderr), format!("ringcast: {want}\n"), "{arg}");
        assert!(output.stdout.is_empty(), "{arg}: started anyway");
        // `profile show` takes the same flags and refuses the same way.
        let output = run(&["profile", "show", arg]);
        assert_eq!(output.status.code(), Some(2), "profile show {arg}");
        assert_eq!(text(&output.stderr), format!("ringcast: {want}\n"));
    }
}

#[test]
fn profile_show_previews_the_serve_command_line() {
    let output = run(&[
        "profile",
        "show",
        "--max-message-size",
        "16MiB",
        "--workers",
        "1",
        "--idle-timeout",
        "90s",
        "--set",
        "limits.max_outbound_bytes=2MiB",
    ]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let line = |key: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no {key} in\n{stdout}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        line("max_message_size"),
        "max_message_size = \"16 MiB\" # flag --max-message-size"
    );
    assert_eq!(line("workers"), "workers = 1 # flag --workers");
    assert_eq!(
        line("idle_timeout"),
        "idle_timeout = \"1m 30s\" # flag --idle-timeout"
    );
    assert_eq!(
        line("max_outbound_bytes"),
        "max_outbound_bytes = \"2 MiB\" # flag --set limits.max_outbound_bytes=2MiB"
    );
}

/// `ringcast serve ARGS` under `ulimit -n LIMIT` (soft and hard) until it
/// listens; returns what it wrote on stderr by then.
fn start_log_under_fd_limit(limit: u32, args: &[&str]) -> String {
    let script = format!("ulimit -n {limit} && exec \"$0\" \"$@\"");
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(script)
        .arg(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--workers", "1"])
        .args(["--no-pin", "--log-format", "human"])
        .args(args)
        .env_remove("RINGCAST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut server = command.spawn().expect("spawn sh");
    let stderr = spawn_reader(server.stderr.take().expect("stderr"));
    let mut stdout = server.stdout.take().expect("stdout");
    // The listening line (or EOF if the server stops): everything logged at
    // start is on stderr by then.
    let reader = std::thread::spawn(move || {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\n") && stdout.read(&mut byte).is_ok_and(|n| n == 1) {
            line.push(byte[0]);
        }
        String::from_utf8_lossy(&line).into_owned()
    });
    let deadline = std::time::Instant::now() + TIMEOUT;
    while !reader.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    kill_and_reap(&mut server);
    let listening = reader.join().expect("stdout reader");
    let log = stderr.join().expect("stderr reader");
    assert!(
        listening.starts_with("ringcast listening on "),
        "did not start: {listening:?}\n{log}"
    );
    log
}

#[test]
fn serve_warns_at_start_when_the_fd_limit_is_below_the_planned_connections() {
    // medium plans for 200,000 connections; 4096 descriptors hold ~3,000.
    let log = start_log_under_fd_limit(4096, &["--profile", "medium"]);
    let warning = log
        .lines()
        .find(|l| l.contains(" WARN ") && l.contains("open files:"))
        .unwrap_or_else(|| panic!("no open-files warning in\n{log}"));
    for part in [
        "hard 4096",
        "200000 planned connections",
        "LimitNOFILE=",
        "tuning/ringcast.service",
        "ulimit -n",
    ] {
        assert!(warning.contains(part), "{part:?} missing from {warning}");
    }
    // Without a capacity statement (the embedded defaults), nothing to warn.
    let log = start_log_under_fd_limit(4096, &["--profile", "default"]);
    assert!(!log.contains("open files:"), "{log}");
}

/// The secret both the server and `ringcast token` read, from one profile.
const SECRET: &str = "cli-test-secret-0123456789abcdef0123456789";

fn ws(addr: std::net::SocketAddr, token: &str) -> Result<Client, String> {
    let mut stream = raw(addr);
    let request = upgrade_request(&format!("/ws?token={token}"));
    stream.write_all(request.as_bytes()).expect("write");
    let head = read_head(&mut stream);
    if head.starts_with("HTTP/1.1 101") {
        return Ok(Client::from_stream(stream));
    }
    let mut body = String::new();
    let _ = stream.read_to_string(&mut body);
    Err(format!("{head}{body}"))
}

/// Sends `command` and returns the reply with its `id`.
fn call(client: &mut Client, command: Value) -> Value {
    client.send(OpCode::Text, true, command.to_string().as_bytes());
    loop {
        match client.recv() {
            Some(Frame::Text(t)) => {
                let v: Value = serde_json::from_str(&t).expect("json reply");
                if v.get("id") == command.get("id") {
                    return v;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn error_code(reply: &Value) -> &str {
    reply["error"]["code"].as_str().unwrap_or("ok")
}

#[test]
fn a_token_from_the_cli_opens_ws_within_its_grants_and_an_expired_one_does_not() {
    let secret = TempFile::new("secret", &format!("{SECRET}\n"));
    let profile = TempFile::new(
        "auth.toml",
        &format!(
            "[auth]\nauth_mode = \"jwt\"\njwt_secret_file = {:?}\njwt_leeway = \"0s\"\n",
            secret.path()
        ),
    );
    let token = |ttl: &str| {
        let output = run(&[
            "token",
            "--profile",
            profile.path(),
            "--sub",
            "u1",
            "--subs",
            "room:*",
            "--pubs",
            "room:*",
            "--ttl",
            ttl,
        ]);
        assert!(output.status.success(), "{}", text(&output.stderr));
        let token = text(&output.stdout).trim().to_owned();
        assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
        token
    };
    let fresh = token("1h");
    let expired = token("0s");

    let (server, addr, _log) = serve_binary("cli-token", &[], &["--profile", profile.path()]);
    let _server = Server(server);
    let mut client = ws(addr, &fresh).expect("a fresh token is accepted");
    let reply = call(
        &mut client,
        json!({"id": 1, "op": "subscribe", "channel": "room:1"}),
    );
    assert_eq!(error_code(&reply), "ok", "{reply}");
    let reply = call(
        &mut client,
        json!({"id": 2, "op": "publish", "channel": "room:1", "data": {"hi": 1}}),
    );
    assert_eq!(error_code(&reply), "ok", "{reply}");
    let reply = call(
        &mut client,
        json!({"id": 3, "op": "subscribe", "channel": "lobby"}),
    );
    assert_eq!(error_code(&reply), "forbidden", "{reply}");
    let refused = ws(addr, &expired)
        .err()
        .expect("an expired token is refused");
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    assert!(refused.contains("expired"), "{refused}");
}

#[test]
fn token_refuses_clearly_without_a_key_to_sign_with() {
    let output = run(&["token", "--sub", "u1"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with("ringcast: token: no key to sign with: set auth.jwt_secret"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
    // A public-key setup: the private half is asked for.
    let public = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jwt");
    let pem = public.join("rsa-public.pem");
    let set = format!("auth.jwt_pem_file={:?}", pem.to_str().expect("utf-8"));
    let output = run(&["token", "--sub", "u1", "--set", &set]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("auth.jwt_pem_file holds a public key, which cannot sign"),
        "{stderr}"
    );
    let key = public.join("rsa-private.pem");
    let output = run(&[
        "token",
        "--sub",
        "u1",
        "--set",
        &set,
        "--key",
        key.to_str().expect("utf-8"),
        "--alg",
        "RS256",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
}
