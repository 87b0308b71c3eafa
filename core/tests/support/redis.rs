//! A `redis-server` child on a free loopback port, for the tests of the
//! Redis engine (`.ci/run` installs Debian's `redis-server`).
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ringcast::engine::redis::settings::RedisSettings;

/// Every wait on Redis in these tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(10);

/// A `redis-server` child on 127.0.0.1, killed on drop.
pub struct RedisServer {
    pub port: u16,
    /// More `redis-server` arguments (TLS).
    extra: Vec<String>,
    child: Option<Child>,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with(Vec::new())
    }

    pub fn start_with(extra: Vec<String>) -> Self {
        let mut server = Self {
            port: free_port(),
            extra,
            child: None,
        };
        server.spawn();
        server
    }

    pub fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}): these tests need it on PATH \
                     (Debian: apt-get install -y redis-server)"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        while self.ping().is_err() {
            assert!(Instant::now() < deadline, "redis-server did not answer");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn settings(&self) -> RedisSettings {
        let mut s = RedisSettings::new(&self.url()).expect("valid url");
        s.ping_interval = Duration::from_millis(200);
        s.command_timeout = Duration::from_secs(1);
        s.backoff_max = Duration::from_millis(200);
        s
    }

    /// A plain client of the `redis` crate, for setup and inspection.
    pub fn client(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(self.url())?.get_connection_with_timeout(Duration::from_secs(1))
    }

    pub fn ping(&self) -> redis::RedisResult<String> {
        TcpStream::connect(("127.0.0.1", self.port))?;
        redis::cmd("PING").query(&mut self.client()?)
    }

    pub fn cmd<T: redis::FromRedisValue>(&self, cmd: &mut redis::Cmd) -> T {
        cmd.query(&mut self.client().expect("connect"))
            .expect("command")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
