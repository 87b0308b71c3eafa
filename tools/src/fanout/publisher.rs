//! One fan-out publisher: its state ([`Pub`]), the publish itself (v1
//! command or broadcast text frame, stamped with its intended time), the task
//! that opens its connection ([`pub_task`]), and the handler that counts the
//! server's acknowledgements and keeps each channel's highest acknowledged
//! offset for the end-of-run loss accounting.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Instant;

use ringcast::proto::frame::{encode_masked_frame_into, OpCode};

use super::{FanThread, Protocol, READ_BUF};
use crate::client::new_mask;
use crate::dispatch::NOT_OPEN;
use crate::engine::Window;
use crate::link::{self, Handler, Link, DEFAULT_MAX_BACKLOG};
use crate::stamp::write_broadcast_header;
use crate::stats::{Counter, Metric};
use crate::v1::{encode_publish_into, parse_published, parse_server_message, ServerMessage};

/// One publisher.
pub(super) struct Pub {
    pub(super) index: u64,
    /// Publishes sent so far (the next one's sequence number).
    pub(super) sent: Cell<u64>,
    pub(super) link: RefCell<Option<Rc<Link>>>,
}

impl FanThread {
    /// Sends publish `k` of publisher `p`, meant for `intended`.
    pub(super) fn publish(&self, p: &Pub, intended: u64, window: &Window) {
        let k = p.sent.get();
        let link = p.link.borrow().clone();
        let Some(link) = link else {
            self.ctx.not_sent(NOT_OPEN);
            return;
        };
        p.sent.set(k + 1);
        let mut payload = self.payload.borrow_mut();
        write_broadcast_header(&mut payload, intended, p.index as u32, k);
        let result = match self.cfg.protocol {
            Protocol::Ringcast => {
                let channel = ((k * self.cfg.publishers + p.index) % self.cfg.channels) as usize;
                let mut scratch = self.scratch.borrow_mut();
                scratch.clear();
                encode_publish_into(&mut scratch, k + 1, &self.channels[channel], &payload);
                link.send_with(|out| {
                    encode_masked_frame_into(out, OpCode::Text, true, new_mask(), &scratch)
                })
            }
            Protocol::Broadcast => link.send(OpCode::Text, &payload),
        };
        let sent = self.ctx.count_send(result, intended, window);
        if sent && self.cfg.protocol == Protocol::Ringcast {
            self.replies_pending.set(self.replies_pending.get() + 1);
        }
    }
}

pub(super) async fn pub_task(t: Rc<FanThread>, slot: usize) {
    let p = Rc::clone(&t.pubs[slot]);
    let ctx = Rc::clone(&t.ctx);
    let started = Instant::now();
    match ctx.dial(t.cfg.subscribers + p.index).await {
        Err(e) => {
            ctx.stats().error(&format!("connect: {}", e.cause()));
            t.tally.setup_done();
        }
        Ok(conn) => {
            ctx.stats()
                .record(Metric::Setup, started.elapsed().as_micros() as u64);
            let (link, reader) = link::start(conn, DEFAULT_MAX_BACKLOG);
            p.link.replace(Some(Rc::clone(&link)));
            t.tally.setup_done();
            let mut handler = PubHandler {
                t: Rc::clone(&t),
                p: Rc::clone(&p),
            };
            let end = ctx
                .read_until_end(reader, &link, &mut handler, READ_BUF)
                .await;
            ctx.report_end(&link, &end, "publisher");
        }
    }
    t.tally.end();
}

struct PubHandler {
    t: Rc<FanThread>,
    p: Rc<Pub>,
}

impl Handler for PubHandler {
    fn on_message(&mut self, _link: &Link, data: &[u8], _text: bool, _now_ns: u64) {
        let t = &self.t;
        if t.cfg.protocol == Protocol::Broadcast {
            t.ctx.stats().add(Counter::PublisherReceipts, 1);
            return;
        }
        let msg = std::str::from_utf8(data)
            .ok()
            .and_then(parse_server_message);
        let mut stats = t.ctx.stats();
        match msg {
            Some(ServerMessage::Reply {
                id: Some(id),
                result,
            }) if id >= 1 => {
                t.replies_pending
                    .set(t.replies_pending.get().saturating_sub(1));
                match parse_published(result) {
                    Some(published) => {
                        stats.add(Counter::Acked, 1);
                        let channel = (((id - 1) * t.cfg.publishers + self.p.index)
                            % t.cfg.channels) as usize;
                        let mut acked = t.acked_max.borrow_mut();
                        acked[channel] = acked[channel].max(published.offset);
                    }
                    None => {
                        stats.add(Counter::BadMessages, 1);
                        stats.error("bad publish reply");
                    }
                }
            }
            Some(ServerMessage::Error { code, .. }) => {
                t.replies_pending
                    .set(t.replies_pending.get().saturating_sub(1));
                stats.error(&format!("publish: {code}"));
            }
            Some(ServerMessage::Push { .. }) => stats.add(Counter::PublisherReceipts, 1),
            _ => {
                stats.add(Counter::BadMessages, 1);
                stats.error("not a v1 reply");
            }
        }
    }

    fn on_ping(&mut self) {
        self.t.ctx.stats().add(Counter::Pings, 1);
    }
}
