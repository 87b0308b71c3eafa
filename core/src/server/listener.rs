//! Binding one `SO_REUSEPORT` listening socket per worker.
//!
//! The kernel spreads incoming connections over the sockets of a reuseport
//! group, so each worker accepts on its own socket and never shares an accept
//! queue. The catch: a second ringcast process on the same port would join the
//! group silently and take half the connections. Before binding, a probe socket
//! *without* `SO_REUSEPORT` checks that the port is really free, so a clash is
//! reported as "address in use" instead.
//!
//! Socket buffer sizes (`server.so_rcvbuf`, `server.so_sndbuf`) are set on the
//! listening sockets before `listen`, so every accepted socket inherits them
//! and the window scale offered in the SYN-ACK matches the receive buffer.

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("cannot listen on {addr}: address already in use (another process holds the port)")]
    InUse { addr: SocketAddr },
    #[error("cannot listen on {addr}: {source}")]
    Io { addr: SocketAddr, source: io::Error },
}

/// `SO_RCVBUF`/`SO_SNDBUF` for the listening sockets, in bytes; 0 leaves the
/// kernel's autotuning alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketBuffers {
    pub recv: usize,
    pub send: usize,
}

fn set_buffers(socket: &Socket, buffers: SocketBuffers) -> io::Result<()> {
    if buffers.recv > 0 {
        socket.set_recv_buffer_size(buffers.recv)?;
    }
    if buffers.send > 0 {
        socket.set_send_buffer_size(buffers.send)?;
    }
    Ok(())
}

fn socket_for(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    Ok(socket)
}

/// Binds `count` listeners on `addr` (port 0 picks one free port shared by all).
pub fn bind_reuseport(
    addr: SocketAddr,
    count: usize,
    backlog: u32,
    buffers: SocketBuffers,
) -> Result<Vec<TcpListener>, BindError> {
    let io_err = |addr, source| BindError::Io { addr, source };
    // Probe: a plain bind fails if anybody, reuseport or not, holds the port.
    let probe = socket_for(addr).map_err(|e| io_err(addr, e))?;
    if let Err(e) = probe.bind(&addr.into()) {
        return Err(match e.kind() {
            io::ErrorKind::AddrInUse => BindError::InUse { addr },
            _ => io_err(addr, e),
        });
    }
    let bound = probe
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .ok_or_else(|| io_err(addr, io::Error::other("no local address")))?;
    drop(probe);

    let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
    (0..count)
        .map(|_| {
            let socket = socket_for(bound)?;
            socket.set_reuse_port(true)?;
            socket.set_nonblocking(true)?;
            set_buffers(&socket, buffers)?;
            socket.bind(&bound.into())?;
            socket.listen(backlog)?;
            Ok(TcpListener::from(socket))
        })
        .collect::<io::Result<Vec<_>>>()
        .map_err(|e| match e.kind() {
            io::ErrorKind::AddrInUse => BindError::InUse { addr: bound },
            _ => io_err(bound, e),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_gives_every_worker_the_same_port() {
        let listeners = bind_reuseport(
            "127.0.0.1:0".parse().expect("addr"),
            3,
            128,
            SocketBuffers::default(),
        )
        .expect("bind");
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().expect("addr").port())
            .collect();
        assert_ne!(ports[0], 0);
        assert!(ports.iter().all(|p| *p == ports[0]));
    }

    #[test]
    fn a_taken_port_is_reported_not_shared() {
        let first = bind_reuseport(
            "127.0.0.1:0".parse().expect("addr"),
            1,
            128,
            SocketBuffers::default(),
        )
        .expect("bind");
        let addr = first[0].local_addr().expect("addr");
        match bind_reuseport(addr, 1, 128, SocketBuffers::default()) {
            Err(BindError::InUse { addr: a }) => assert_eq!(a, addr),
            other => panic!("expected InUse, got {other:?}"),
        }
    }

    #[test]
    fn accepted_sockets_inherit_the_listener_buffer_sizes() {
        let buffers = SocketBuffers {
            recv: 64 * 1024,
            send: 32 * 1024,
        };
        let listeners =
            bind_reuseport("127.0.0.1:0".parse().expect("addr"), 1, 16, buffers).expect("bind");
        let listener = &listeners[0];
        listener.set_nonblocking(false).expect("blocking");
        let _client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (accepted, _) = listener.accept().expect("accept");
        let accepted = Socket::from(accepted);
        // Linux doubles the value asked for (room for bookkeeping).
        assert_eq!(
            accepted.recv_buffer_size().expect("rcvbuf"),
            2 * buffers.recv
        );
        assert_eq!(
            accepted.send_buffer_size().expect("sndbuf"),
            2 * buffers.send
        );
    }
}
