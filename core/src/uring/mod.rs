//! A core's connection ring: socket IO as io_uring completions.
//!
//! The foundation of the completion-based IO path: one ring per worker,
//! owned by that worker's thread, that carries multishot `accept` on the
//! worker's listener, multishot `recv` per connection into a per-core
//! provided-buffer ring ([`bufring::BufRing`]: an idle connection holds no
//! buffer), `sendmsg` over a connection's queued frames, and `shutdown`,
//! `close` and cancellation, everything queued during a loop turn going to
//! the kernel in one `io_uring_enter` ([`Ring::submit_and_reap`]).
//!
//! This layer knows sockets and buffers, not connections: every operation
//! carries a caller-chosen 56-bit token, which comes back with its
//! completions (a connection's id with a generation, so a late completion
//! for a reused slot can be told apart). What is the caller's to keep:
//!
//! - a multishot op ends on any completion without `more` (EOF, an error,
//!   `ECANCELED`, `ENOBUFS` when the buffer ring ran dry): re-arm it, after
//!   buffers came back for `ENOBUFS`, whose bytes stay in the socket;
//! - at most one send in flight per socket (a later one could overtake a
//!   send waiting for socket space), and the iovecs and bytes of a send
//!   stay valid until its completion;
//! - `close(2)` does not end a pending recv: cancel (or shut down) first and
//!   reuse the slot only after the recv's last completion.
//!
//! Setup probes the kernel (`IORING_REGISTER_PROBE`) and takes the best of
//! `SINGLE_ISSUER | DEFER_TASKRUN`, `COOP_TASKRUN`, plain; [`Features`] says
//! what it got, for the worker's log line.

pub mod bufring;

use std::fmt;
use std::io;
use std::os::fd::RawFd;

use io_uring::{cqueue, opcode, squeue, types, IoUring, Probe};

use self::bufring::BufRing;

/// `IORING_ENTER_GETEVENTS`: with `DEFER_TASKRUN`, completions are produced
/// only inside an enter that asks for events.
const ENTER_GETEVENTS: u32 = 1;

/// What a token's operation was, in the top byte of `user_data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    Accept = 1,
    Recv = 2,
    Send = 3,
    Shutdown = 4,
    Close = 5,
    Cancel = 6,
}

impl Op {
    fn from_byte(b: u8) -> Option<Op> {
        Some(match b {
            1 => Op::Accept,
            2 => Op::Recv,
            3 => Op::Send,
            4 => Op::Shutdown,
            5 => Op::Close,
            6 => Op::Cancel,
            _ => return None,
        })
    }
}

/// Largest token: 56 bits (the top byte names the operation).
pub const TOKEN_MAX: u64 = (1 << 56) - 1;

fn user_data(op: Op, token: u64) -> u64 {
    debug_assert!(token <= TOKEN_MAX);
    (u64::from(op as u8) << 56) | (token & TOKEN_MAX)
}

/// One completion, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    pub op: Op,
    pub token: u64,
    /// The syscall's result: bytes, a new fd, or `-errno`.
    pub result: i32,
    /// A multishot op is still armed.
    pub more: bool,
    /// The provided buffer a `recv` filled (`result` bytes of it).
    pub buffer: Option<u16>,
}

/// What the kernel gave this ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    pub defer_taskrun: bool,
    pub coop_taskrun: bool,
    pub recv_multishot: bool,
    pub accept_multishot: bool,
    pub send_msg: bool,
    pub cancel: bool,
    pub shutdown: bool,
    pub close: bool,
}

impl Features {
    /// Everything the completion path needs; without it the worker keeps the
    /// readiness path.
    pub fn complete(&self) -> bool {
        self.recv_multishot
            && self.accept_multishot
            && self.send_msg
            && self.cancel
            && self.shutdown
            && self.close
    }
}

impl fmt::Display for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let setup = if self.defer_taskrun {
            "single_issuer+defer_taskrun"
        } else if self.coop_taskrun {
            "coop_taskrun"
        } else {
            "plain"
        };
        let mut ops = Vec::new();
        for (name, have) in [
            ("accept_multishot", self.accept_multishot),
            ("recv_multishot", self.recv_multishot),
            ("sendmsg", self.send_msg),
            ("cancel", self.cancel),
            ("shutdown", self.shutdown),
            ("close", self.close),
        ] {
            ops.push(if have {
                name.to_owned()
            } else {
                format!("no {name}")
            });
        }
        write!(f, "{setup}; {}", ops.join(", "))
    }
}

/// The ring's sizes.
#[derive(Debug, Clone, Copy)]
pub struct RingConfig {
    /// Submission queue entries (a power of two).
    pub entries: u32,
    /// Completion queue entries, several times `entries` so a burst of
    /// multishot completions does not overflow.
    pub cq_entries: u32,
    /// Provided receive buffers (a power of two, at most 32,768).
    pub buffers: u16,
    /// Of those, how many the kernel gets at start (the rest as
    /// [`Ring::grow_buffers`] hands them out).
    pub initial_buffers: u16,
    /// Bytes per receive buffer.
    pub buffer_size: usize,
}

pub struct Ring {
    ring: IoUring,
    bufs: BufRing,
    features: Features,
    /// Entries pushed since the last enter.
    queued: u32,
}

/// The buffer group of the connection ring's receive buffers.
const GROUP: u16 = 0;

impl Ring {
    /// Builds the ring with the best setup flags the kernel takes, probes
    /// its opcodes and registers the receive buffers.
    pub fn new(config: RingConfig) -> io::Result<Self> {
        let (ring, defer_taskrun, coop_taskrun) = build(config)?;
        let mut probe = Probe::new();
        ring.submitter().register_probe(&mut probe)?;
        let has = |code: u8| probe.is_supported(code);
        let features = Features {
            defer_taskrun,
            coop_taskrun,
            // Multishot recv shares RECV's opcode (6.0 added the flag):
            // the buffer ring registering is the 5.19 check, the first
            // arming the 6.0 one (`EINVAL` there means no multishot).
            recv_multishot: has(opcode::RecvMulti::CODE),
            accept_multishot: has(opcode::AcceptMulti::CODE),
            send_msg: has(opcode::SendMsg::CODE),
            cancel: has(opcode::AsyncCancel2::CODE),
            shutdown: has(opcode::Shutdown::CODE),
            close: has(opcode::Close::CODE),
        };
        let bufs = BufRing::register(
            &ring,
            GROUP,
            config.buffers,
            config.initial_buffers,
            config.buffer_size,
        )?;
        Ok(Self {
            ring,
            bufs,
            features,
            queued: 0,
        })
    }

    pub fn features(&self) -> Features {
        self.features
    }

    pub fn buffers(&self) -> &BufRing {
        &self.bufs
    }

    /// The bytes a `recv` completion delivered in `buffer`.
    pub fn data(&self, buffer: u16, len: usize) -> &[u8] {
        self.bufs.get(buffer, len)
    }

    /// [`Ring::data`], writable: a completion's buffer is the caller's until
    /// [`Ring::recycle`], so its bytes may be changed in place.
    pub fn data_mut(&mut self, buffer: u16, len: usize) -> &mut [u8] {
        self.bufs.get_mut(buffer, len)
    }

    /// Signals `eventfd` whenever a completion is posted, so a runtime that
    /// waits on the eventfd (not on the ring's fd, which misses wake-ups
    /// under `DEFER_TASKRUN`) learns there is something to reap.
    pub fn register_eventfd(&self, eventfd: RawFd) -> io::Result<()> {
        self.ring.submitter().register_eventfd(eventfd)
    }

    /// Gives a receive buffer back once its bytes are consumed.
    pub fn recycle(&mut self, buffer: u16) {
        self.bufs.recycle(buffer);
    }

    /// Doubles the receive buffers the kernel may fill, up to the ring's
    /// size; the count now, or `None` when it already had them all.
    pub fn grow_buffers(&mut self) -> Option<u16> {
        self.bufs.grow()
    }

    /// Gives several receive buffers back with one tail update.
    pub fn recycle_all(&mut self, buffers: impl IntoIterator<Item = u16>) {
        self.bufs.recycle_all(buffers);
    }

    fn push(&mut self, entry: squeue::Entry) -> io::Result<()> {
        // SAFETY (for every caller): the entry's pointers, if any, are valid
        // until its completion, as each public method's contract states.
        let full = unsafe { self.ring.submission().push(&entry).is_err() };
        if full {
            // Make room: hand what is queued to the kernel now.
            self.enter(0)?;
            // SAFETY: as above.
            unsafe { self.ring.submission().push(&entry) }
                .map_err(|_| io::Error::other("submission queue full after submit"))?;
        }
        self.queued += 1;
        Ok(())
    }

    /// Arms multishot accept on `listener`: one completion per accepted
    /// connection, the new fd in `result`.
    pub fn accept_multishot(&mut self, listener: RawFd, token: u64) -> io::Result<()> {
        let entry = opcode::AcceptMulti::new(types::Fd(listener))
            .flags(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK)
            .build()
            .user_data(user_data(Op::Accept, token));
        self.push(entry)
    }

    /// Arms multishot recv on `fd` into the provided buffers.
    pub fn recv_multishot(&mut self, fd: RawFd, token: u64) -> io::Result<()> {
        let entry = opcode::RecvMulti::new(types::Fd(fd), GROUP)
            .build()
            .user_data(user_data(Op::Recv, token));
        self.push(entry)
    }

    /// Queues a `sendmsg` of `msg`'s iovecs on `fd`.
    ///
    /// # Safety
    ///
    /// `msg`, its iovec array and the bytes they point to must stay valid
    /// and unchanged until this send's completion is reaped.
    pub unsafe fn send_msg(
        &mut self,
        fd: RawFd,
        msg: *const libc::msghdr,
        token: u64,
    ) -> io::Result<()> {
        let entry = opcode::SendMsg::new(types::Fd(fd), msg)
            .flags(libc::MSG_NOSIGNAL as u32)
            .build()
            .user_data(user_data(Op::Send, token));
        self.push(entry)
    }

    /// Cancels every pending operation of `op` with `token` (its last
    /// completion follows, `-ECANCELED` unless it had just finished).
    pub fn cancel(&mut self, op: Op, token: u64) -> io::Result<()> {
        let target = types::CancelBuilder::user_data(user_data(op, token)).all();
        let entry = opcode::AsyncCancel2::new(target)
            .build()
            .user_data(user_data(Op::Cancel, token));
        self.push(entry)
    }

    /// Queues `shutdown(fd, SHUT_WR)`: a FIN after the queued bytes.
    ///
    /// The kernel runs this opcode asynchronously and appears to look `fd`
    /// up only then: if `fd` may be closed (and reused by an accept) before
    /// it runs, call `shutdown(2)` instead (the completion reactor does,
    /// after seeing a reused descriptor shut down).
    pub fn shutdown_write(&mut self, fd: RawFd, token: u64) -> io::Result<()> {
        let entry = opcode::Shutdown::new(types::Fd(fd), libc::SHUT_WR)
            .build()
            .user_data(user_data(Op::Shutdown, token));
        self.push(entry)
    }

    /// Queues `close(fd)`; the caller gives up the fd now.
    pub fn close(&mut self, fd: RawFd, token: u64) -> io::Result<()> {
        let entry = opcode::Close::new(types::Fd(fd))
            .build()
            .user_data(user_data(Op::Close, token));
        self.push(entry)
    }

    /// Entries queued and not yet handed to the kernel.
    pub fn queued(&self) -> u32 {
        self.queued
    }

    fn enter(&mut self, wait: u32) -> io::Result<usize> {
        let queued = std::mem::take(&mut self.queued);
        loop {
            // SAFETY: no signal mask is passed; the flags are valid for
            // every setup this ring may have.
            let res = unsafe {
                self.ring
                    .submitter()
                    .enter::<libc::sigset_t>(queued, wait, ENTER_GETEVENTS, None)
            };
            match res {
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                // EBUSY: the CQ is full; reap first, the caller enters again
                // (and submits then what this call could not).
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    self.queued += queued;
                    return Ok(0);
                }
                other => return other,
            }
        }
    }

    /// The loop turn's one system call: submits everything queued, waits
    /// for at least `wait` completions (0: none), and appends every
    /// completion ready to `out`.
    pub fn submit_and_reap(&mut self, wait: u32, out: &mut Vec<Completion>) -> io::Result<()> {
        self.enter(wait)?;
        self.reap(out);
        Ok(())
    }

    /// Appends the completions already in the queue, without a system call.
    pub fn reap(&mut self, out: &mut Vec<Completion>) {
        for cqe in self.ring.completion() {
            let data = cqe.user_data();
            let Some(op) = Op::from_byte((data >> 56) as u8) else {
                continue;
            };
            let flags = cqe.flags();
            out.push(Completion {
                op,
                token: data & TOKEN_MAX,
                result: cqe.result(),
                more: cqueue::more(flags),
                buffer: cqueue::buffer_select(flags),
            });
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // The buffers must outlive the kernel's use of them: unregister
        // before `bufs` is dropped (the ring's own drop closes it after).
        let _ = self.bufs.unregister(&self.ring);
    }
}

/// The best ring the kernel builds: `SINGLE_ISSUER | DEFER_TASKRUN` (6.1),
/// else `COOP_TASKRUN` (5.19), else plain. Returns which one.
fn build(config: RingConfig) -> io::Result<(IoUring, bool, bool)> {
    let cq = config.cq_entries.max(config.entries);
    let mut builder = IoUring::builder();
    builder
        .setup_cqsize(cq)
        .setup_single_issuer()
        .setup_defer_taskrun();
    if let Ok(ring) = builder.build(config.entries) {
        return Ok((ring, true, false));
    }
    let mut builder = IoUring::builder();
    builder.setup_cqsize(cq).setup_coop_taskrun();
    if let Ok(ring) = builder.build(config.entries) {
        return Ok((ring, false, true));
    }
    let mut builder = IoUring::builder();
    builder.setup_cqsize(cq);
    Ok((builder.build(config.entries)?, false, false))
}

#[cfg(test)]
mod tests;
