//! A protocol-v1 (`/ws`) client over [`Client`]: JSON commands with ids,
//! replies matched to them, pushes kept in order while a reply is awaited.

use std::collections::VecDeque;
use std::io::Write;
use std::net::SocketAddr;

use ringcast::proto::frame::{encode_masked_frame_into, OpCode};
use serde_json::{json, Value};

use super::{Client, Frame, MASK};

pub struct Ws {
    pub client: Client,
    next_id: u64,
    /// Messages without an id (pushes) that arrived while a reply was
    /// awaited, in order.
    pub pushes: VecDeque<Value>,
}

impl Ws {
    pub fn connect(addr: SocketAddr) -> Ws {
        Ws::connect_to(addr, "/ws")
    }

    /// Upgrades on `path` (a query string with a token, say).
    pub fn connect_to(addr: SocketAddr, path: &str) -> Ws {
        Ws {
            client: Client::connect(addr, path),
            next_id: 1,
            pushes: VecDeque::new(),
        }
    }

    /// Sends `command` as it is (no id added).
    pub fn send(&mut self, command: Value) {
        self.client
            .send(OpCode::Text, true, command.to_string().as_bytes());
    }

    /// The next JSON message (pings answered); `None` when the server closed
    /// or went away.
    pub fn try_recv(&mut self) -> Option<Value> {
        loop {
            match self.client.recv()? {
                Frame::Text(text) => {
                    return Some(serde_json::from_str(&text).expect("the server sent JSON"))
                }
                Frame::Ping(p) => self.client.send(OpCode::Pong, true, &p),
                Frame::Close(_) => return None,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    pub fn recv(&mut self) -> Value {
        self.try_recv().expect("a message from the server")
    }

    /// Sends `command` with a fresh id; its reply, or `None` when the server
    /// went away first (a write to a dead server fails: that is gone too).
    pub fn try_call(&mut self, mut command: Value) -> Option<Value> {
        let id = self.next_id;
        self.next_id += 1;
        command["id"] = json!(id);
        let mut frame = Vec::new();
        encode_masked_frame_into(
            &mut frame,
            OpCode::Text,
            true,
            MASK,
            command.to_string().as_bytes(),
        );
        self.client.stream.write_all(&frame).ok()?;
        loop {
            let msg = self.try_recv()?;
            if msg.get("id").is_none() {
                self.pushes.push_back(msg);
            } else {
                assert_eq!(msg["id"], json!(id), "reply out of order: {msg}");
                return Some(msg);
            }
        }
    }

    pub fn call(&mut self, command: Value) -> Value {
        self.try_call(command).expect("the server answered")
    }

    /// The next push (kept or new); `None` when the server went away.
    pub fn try_next_push(&mut self) -> Option<Value> {
        if let Some(push) = self.pushes.pop_front() {
            return Some(push);
        }
        let msg = self.try_recv()?;
        assert!(msg.get("id").is_none(), "not a push: {msg}");
        Some(msg)
    }

    pub fn next_push(&mut self) -> Value {
        self.try_next_push().expect("a push")
    }

    /// The worker (core) serving this connection.
    pub fn worker(&mut self) -> u64 {
        self.call(json!({"op":"info"}))["result"]["worker"]
            .as_u64()
            .expect("info names the worker")
    }
}

/// Opens connections until one lands on each of a two-worker server's
/// workers.
pub fn one_per_worker(addr: SocketAddr) -> [Ws; 2] {
    let mut found: [Option<Ws>; 2] = [None, None];
    for _ in 0..200 {
        let mut ws = Ws::connect(addr);
        let w = ws.worker() as usize;
        if found[w].is_none() {
            found[w] = Some(ws);
        }
        if found.iter().all(Option::is_some) {
            break;
        }
    }
    found.map(|ws| ws.expect("the kernel spread 200 connections over both workers"))
}

/// A channel name under `prefix` that worker `owner` owns.
pub fn channel_owned_by(ws: &mut Ws, owner: u64, prefix: &str) -> String {
    (0..1000)
        .map(|i| format!("{prefix}:{i}"))
        .find(|c| ws.call(json!({"op":"info","channel":c}))["result"]["owner"] == json!(owner))
        .expect("some channel hashes to each owner")
}
