//! Peer server for side-by-side runs: fastwebsockets (over hyper's HTTP/1.1
//! upgrade), echo and broadcast.
//!
//! - `GET /echo`: every text or binary message is sent back as it came.
//! - `GET /ws`: every text or binary message is sent to every client
//!   connected to `/ws`, the sender included (what `ringcast-load fanout
//!   --protocol broadcast` drives).
//!
//! Written the way the crate's own examples are (`echo_server.rs`,
//! `echo_server_split.rs`): hyper serves the upgrade, `/echo` reads through a
//! `FragmentCollector` and writes each message back; a broadcast client is
//! split (`unstable-split`, over `tokio::io::split`), its reader queues each
//! message to every client's writer task, and the writer also sends the
//! pongs and the close reply the reader owes (`send_fn`). Connection tasks
//! run `unconstrained`, as in the examples.
//!
//! One thread: a current-thread runtime and a `LocalSet` (see `peer.rs`).
//! `peer-fastwebsockets --listen 127.0.0.1:0` prints `listening on ADDR` when ready.

use std::convert::Infallible;
use std::rc::Rc;

use bytes::Bytes;
use fastwebsockets::upgrade::{self, UpgradeFut};
use fastwebsockets::{FragmentCollector, FragmentCollectorRead, Frame, OpCode, Payload};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use ringcast_bench::peer::{announce, bind, Args, Hub};
use tokio::sync::mpsc::unbounded_channel;

/// What a broadcast client's writer task sends: one whole frame.
type Out = (OpCode, Bytes);

fn main() -> std::io::Result<()> {
    let args = Args::from_env("peer-fastwebsockets");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, serve(args))
}

async fn serve(args: Args) -> std::io::Result<()> {
    let listener = bind(args.listen)?;
    announce(&listener)?;
    let hub: Rc<Hub<Out>> = Hub::new();
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of file descriptors and the like: keep serving the others.
            Err(err) => {
                eprintln!("accept: {err}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let hub = hub.clone();
        tokio::task::spawn_local(async move {
            let service = service_fn(move |req| route(req, hub.clone()));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

async fn route(
    mut req: Request<Incoming>,
    hub: Rc<Hub<Out>>,
) -> Result<Response<Empty<Bytes>>, Infallible> {
    let broadcast = match req.uri().path() {
        "/echo" => false,
        "/ws" => true,
        _ => return Ok(status(StatusCode::NOT_FOUND)),
    };
    if !upgrade::is_upgrade_request(&req) {
        return Ok(status(StatusCode::UPGRADE_REQUIRED));
    }
    let Ok((response, fut)) = upgrade::upgrade(&mut req) else {
        return Ok(status(StatusCode::BAD_REQUEST));
    };
    tokio::task::spawn_local(tokio::task::unconstrained(async move {
        if broadcast {
            broadcast_client(fut, hub).await
        } else {
            echo_client(fut).await
        }
    }));
    Ok(response)
}

fn status(code: StatusCode) -> Response<Empty<Bytes>> {
    let mut response = Response::new(Empty::new());
    *response.status_mut() = code;
    response
}

async fn echo_client(fut: UpgradeFut) {
    let Ok(ws) = fut.await else { return };
    let mut ws = FragmentCollector::new(ws);
    while let Ok(frame) = ws.read_frame().await {
        let done = match frame.opcode {
            OpCode::Close => true,
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await.is_err(),
            _ => false,
        };
        if done {
            break;
        }
    }
}

async fn broadcast_client(fut: UpgradeFut, hub: Rc<Hub<Out>>) {
    let Ok(ws) = fut.await else { return };
    let (read, mut write) = ws.split(tokio::io::split);
    let mut read = FragmentCollectorRead::new(read);
    let (tx, mut rx) = unbounded_channel::<Out>();
    let id = hub.join(tx.clone());
    let writer = tokio::task::spawn_local(async move {
        while let Some((opcode, payload)) = rx.recv().await {
            let frame = Frame::new(true, opcode, None, Payload::Borrowed(&payload));
            if write.write_frame(frame).await.is_err() || opcode == OpCode::Close {
                break;
            }
        }
    });
    // Pongs and the close reply go through the writer, like the messages.
    let mut owed = |frame: Frame<'_>| {
        let _ = tx.send((frame.opcode, Bytes::copy_from_slice(&frame.payload)));
        async { Ok::<(), Infallible>(()) }
    };
    while let Ok(frame) = read.read_frame(&mut owed).await {
        match frame.opcode {
            OpCode::Text | OpCode::Binary => {
                hub.broadcast(&(frame.opcode, into_bytes(frame.payload)));
            }
            OpCode::Close => break,
            _ => {}
        }
    }
    hub.leave(id);
    drop(tx);
    // Every sender is gone: the writer sends what is queued, then ends.
    let _ = writer.await;
}

/// The payload as shared `Bytes`, without a copy where it already owns its buffer.
fn into_bytes(payload: Payload<'_>) -> Bytes {
    match payload {
        Payload::Bytes(bytes) => bytes.freeze(),
        Payload::Owned(vec) => Bytes::from(vec),
        Payload::Borrowed(slice) => Bytes::copy_from_slice(slice),
        Payload::BorrowedMut(slice) => Bytes::copy_from_slice(slice),
    }
}
