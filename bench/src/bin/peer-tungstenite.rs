//! Peer server for side-by-side runs: tokio-tungstenite, echo and broadcast.
//!
//! - `GET /echo`: every text or binary message is sent back as it came.
//! - `GET /ws`: every text or binary message is sent to every client
//!   connected to `/ws`, the sender included (what `ringcast-load fanout
//!   --protocol broadcast` drives).
//!
//! Written the way the crate's own examples are (`echo-server.rs`,
//! `server.rs`): the stream is split, echo is `read.forward(write)`, and a
//! broadcast client's writer task forwards its queue into the sink, so writes
//! are flushed once per batch of ready messages rather than per message.
//! Default `WebSocketConfig` (it reserves a 128 KiB read buffer per
//! connection: that is the idle memory this peer is known for).
//!
//! One thread: a current-thread runtime and a `LocalSet` (see `peer.rs`).
//! `peer-tungstenite --listen 127.0.0.1:0` prints `listening on ADDR` when ready.

use std::rc::Rc;

use futures_util::{future, stream, StreamExt, TryStreamExt};
use ringcast_bench::peer::{announce, bind, Args, Hub};
use tokio::net::TcpStream;
use tokio::sync::mpsc::unbounded_channel;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::Message;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Echo,
    Broadcast,
}

fn main() -> std::io::Result<()> {
    let args = Args::from_env("peer-tungstenite");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, serve(args))
}

async fn serve(args: Args) -> std::io::Result<()> {
    let listener = bind(args.listen)?;
    announce(&listener)?;
    let hub: Rc<Hub<Message>> = Hub::new();
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
        tokio::task::spawn_local(connection(stream, hub.clone()));
    }
}

// The handshake callback's error type is tungstenite's (`ErrorResponse`, an
// `http::Response`): its size is not ours to choose.
#[allow(clippy::result_large_err)]
async fn connection(stream: TcpStream, hub: Rc<Hub<Message>>) {
    let mut endpoint = None;
    let route = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        endpoint = match req.uri().path() {
            "/echo" => Some(Endpoint::Echo),
            "/ws" => Some(Endpoint::Broadcast),
            _ => None,
        };
        if endpoint.is_some() {
            Ok(resp)
        } else {
            let mut refusal = ErrorResponse::new(Some("not found\n".into()));
            *refusal.status_mut() = StatusCode::NOT_FOUND;
            Err(refusal)
        }
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, route).await else {
        return;
    };
    let (write, read) = ws.split();
    let data = |msg: &Message| future::ready(msg.is_text() || msg.is_binary());
    match endpoint {
        Some(Endpoint::Echo) => {
            let _ = read.try_filter(data).forward(write).await;
        }
        Some(Endpoint::Broadcast) => {
            let (tx, mut rx) = unbounded_channel::<Message>();
            let id = hub.join(tx);
            let writer = tokio::task::spawn_local(
                stream::poll_fn(move |cx| rx.poll_recv(cx))
                    .map(Ok)
                    .forward(write),
            );
            let _ = read
                .try_filter(data)
                .try_for_each(|msg| {
                    hub.broadcast(&msg);
                    future::ready(Ok(()))
                })
                .await;
            hub.leave(id);
            // The queue's last sender is gone: the writer flushes what is
            // queued, then closes the sink and ends.
            let _ = writer.await;
        }
        None => {}
    }
}
