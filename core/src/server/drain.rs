//! What both socket drivers (`reactor.rs`, readiness; `ring_reactor.rs`,
//! completion) do alike around their connections: the drain on shutdown,
//! the accounting of a close, and the worker's last log line.

use std::time::Instant;

use tracing::{debug, info, warn};

use super::conn::Conn;
use super::metrics::CloseReason;
use super::summary;
use super::worker::Worker;
use crate::mailbox::{ConnId, KICK_SHUTDOWN};

/// A worker's drain: started by shutdown, done when every worker's
/// WebSockets have finished their close, or at `timeouts.drain_timeout`.
#[derive(Default)]
pub(crate) struct Drain {
    deadline: Option<Instant>,
    /// Whether this worker has told the drain latch it is done.
    released: bool,
}

/// What the driver does after [`Drain::step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DrainStep {
    /// Serve on.
    Serve,
    /// The drain just started (every connection was kicked): next turn.
    Started,
    /// Every worker is done: leave the loop.
    Done,
    /// The deadline passed: drop what is left ([`Drain::timed_out`]), leave.
    TimedOut,
}

impl Drain {
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// One turn's look at the drain. `stop`: shutdown was asked for;
    /// `slots`: every connection's slot, kicked once when the drain starts.
    pub fn step<'a>(
        &mut self,
        worker: &Worker,
        stop: bool,
        now: Instant,
        open: usize,
        slots: impl Iterator<Item = &'a crate::mailbox::Slot>,
    ) -> DrainStep {
        if stop && self.deadline.is_none() {
            // Ask every connection to close with 1001. The listener stays
            // open so that `/readyz` answers 503 (load balancers stop sending)
            // and new WebSocket upgrades get 503 with `Retry-After`.
            worker.ctx.draining.set(true);
            self.deadline = Some(now + worker.config.timeouts.drain_timeout);
            info!(worker = worker.id, open, "draining");
            for slot in slots {
                slot.kick(KICK_SHUTDOWN);
            }
            return DrainStep::Started;
        }
        let Some(deadline) = self.deadline else {
            return DrainStep::Serve;
        };
        // This worker is done when every WebSocket has finished its close
        // (plain HTTP requests such as health probes are not waited for);
        // the process is done when every worker is.
        if !self.released && worker.ctx.metrics.upgraded_current.get() == 0 {
            self.released = true;
            worker.drain.release();
        }
        if worker.drain.done() {
            return DrainStep::Done;
        }
        if now >= deadline {
            return DrainStep::TimedOut;
        }
        DrainStep::Serve
    }

    /// After a timed-out drain dropped `dropped` sockets, `left` of them
    /// WebSockets whose close did not finish.
    pub fn timed_out(&mut self, worker: &Worker, left: u64, dropped: usize) {
        if dropped > 0 {
            warn!(
                worker = worker.id,
                left, dropped, "drain timeout: dropping connections"
            );
        }
        if !self.released {
            self.released = true;
            worker.drain.release();
        }
    }
}

/// Counts the close of connection `id` (taken out of its table, which now
/// holds `open`): for `reason`, or, when `None`, for the reason the
/// connection recorded; and forgets its subscriptions.
pub(crate) fn closed(
    worker: &Worker,
    conn: &Conn,
    id: ConnId,
    reason: Option<CloseReason>,
    open: usize,
) {
    let reason = reason.unwrap_or_else(|| conn.close_reason());
    let m = &worker.ctx.metrics;
    m.closed(reason);
    // One line per connection at debug; refusals and abnormal closes are
    // summarised at info, per reason and interval (see `summary`), so a storm
    // of bad handshakes does not flood the log.
    let (w, upgraded, why, conn_id) = (worker.id, conn.upgraded, reason.as_str(), id.raw());
    debug!(worker = w, conn = conn_id, reason = why, upgraded, "closed");
    if reason != CloseReason::Refused {
        worker
            .ctx
            .summary
            .borrow_mut()
            .closed(reason, Instant::now());
    }
    if conn.upgraded {
        m.upgraded_current.set(m.upgraded_current.get() - 1);
    }
    m.connections_current.set(open as u64);
    // Forget its subscriptions, if it had any (a miss for non-`/ws` ones).
    worker.ctx.hub.leave(id);
}

/// The worker's last lines: the summary since the last one, and its totals.
pub(crate) fn stopped(worker: &Worker) {
    let lines = worker.ctx.summary.borrow_mut().take();
    summary::emit(worker.id, worker.config.log.summary_interval, &lines);
    let m = &worker.ctx.metrics;
    let hub = &m.pubsub;
    let (calls, frames) = (m.flush_calls.get(), m.flushed_frames.get());
    info!(
        worker = worker.id,
        publishes = hub.publishes.get(),
        deliveries = hub.deliveries.get(),
        slow_consumer_closes = hub.slow_consumer_closes.get(),
        overloaded = hub.overloaded.get(),
        flush_calls = calls,
        frames_per_flush = format!("{:.2}", frames as f64 / calls.max(1) as f64),
        recv_buffer_exhausted = m.recv_buffer_exhausted.get(),
        drain_timeout_closes = m.closed_count(CloseReason::DrainTimeout),
        "worker stopped"
    );
}
