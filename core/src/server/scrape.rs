//! `GET /metrics`: the fan-in of every core's figures, and the HTTP response.
//!
//! The core that took the request asks every core (itself included) for its
//! [`Snapshot`] over the scrape bus, a [`Mesh`] of its own so that pub/sub
//! traffic never waits behind a scrape, nor a scrape behind a flood of
//! deliveries. Each core answers from its own task ([`run`]); the asking core
//! collects the answers under the scrape's number and, once every core has
//! answered, renders the text (`metrics.rs`), wraps it in an HTTP response
//! and queues it in the connection's outbox with a kick. With one worker the
//! whole scrape completes inside [`Scraper::start`].

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;

use super::metrics::{self, Metrics, Snapshot};
use crate::bus::{drain, Mesh, Port};
use crate::mailbox::{Slot, KICK_OUTBOUND};
use crate::proto::handshake::encode_plain_response_into;
use crate::pubsub::hub::Hub;

/// What cores send each other for a scrape.
#[derive(Debug)]
pub(crate) enum Msg {
    /// To every core: report your figures to core `from` for scrape `scrape`.
    Ask { from: usize, scrape: u64 },
    /// To the scraping core: one core's figures.
    Report {
        scrape: u64,
        snapshot: Box<Snapshot>,
    },
}

/// The scrape bus for `cores` cores. One scrape puts one message in every
/// inbox and one answer per core in the scraping core's; more at once spill.
pub(crate) fn mesh(cores: usize) -> Mesh<Msg> {
    Mesh::new(cores, cores)
}

/// Scrape messages handled per turn before the core's sockets get theirs.
const BATCH: usize = 64;

/// A `GET /metrics` waiting for the other cores.
struct Pending {
    slot: Rc<Slot>,
    snapshots: Vec<Snapshot>,
}

/// One core's part in scrapes: answering the others, and collecting the
/// answers to its own.
pub(crate) struct Scraper {
    port: Port<Msg>,
    /// The figures this core reports (its metrics and its hub's gauges).
    metrics: Rc<Metrics>,
    hub: Rc<Hub>,
    /// Scrapes started on this core, by number, waiting for every core's
    /// snapshot; removed when complete. A connection that gives up waiting
    /// (its deadline) leaves its entry until the last answer comes.
    pending: RefCell<HashMap<u64, Pending>>,
    next: Cell<u64>,
}

impl Scraper {
    pub fn new(core: usize, mesh: Arc<Mesh<Msg>>, metrics: Rc<Metrics>, hub: Rc<Hub>) -> Self {
        Self {
            port: Port::new(core, mesh),
            metrics,
            hub,
            pending: RefCell::default(),
            next: Cell::new(0),
        }
    }

    /// Starts a `GET /metrics`: asks every core for its figures; the HTTP
    /// response lands in `slot`'s outbox (with a kick) once all have answered.
    pub fn start(&self, slot: Rc<Slot>) {
        let scrape = self.next.get();
        self.next.set(scrape + 1);
        let cores = self.port.cores();
        let pending = Pending {
            slot,
            snapshots: Vec::with_capacity(cores),
        };
        self.pending.borrow_mut().insert(scrape, pending);
        let from = self.port.core();
        for core in 0..cores {
            self.dispatch(core, Msg::Ask { from, scrape });
        }
    }

    fn dispatch(&self, to: usize, msg: Msg) {
        self.port.dispatch(to, msg, |msg| self.handle(msg));
    }

    fn handle(&self, msg: Msg) {
        match msg {
            Msg::Ask { from, scrape } => {
                let core = self.port.core();
                let snapshot = Box::new(self.metrics.snapshot(core, self.hub.snapshot()));
                self.dispatch(from, Msg::Report { scrape, snapshot });
            }
            Msg::Report { scrape, snapshot } => self.report(scrape, *snapshot),
        }
    }

    fn report(&self, scrape: u64, snapshot: Snapshot) {
        let done = {
            let mut pending = self.pending.borrow_mut();
            let Some(entry) = pending.get_mut(&scrape) else {
                return;
            };
            entry.snapshots.push(snapshot);
            if entry.snapshots.len() < self.port.cores() {
                return;
            }
            pending.remove(&scrape)
        };
        let Some(mut done) = done else { return };
        done.snapshots.sort_by_key(|s| s.worker);
        let mut body = metrics::render(&done.snapshots);
        if let Some(stats) = self.hub.store_stats() {
            metrics::render_store(&mut body, stats);
        }
        if let Some(cluster) = self.hub.cluster() {
            metrics::render_engine(&mut body, cluster);
        }
        let mut response = Vec::with_capacity(body.len() + 200);
        let content_type = "text/plain; version=0.0.4; charset=utf-8";
        encode_plain_response_into(&mut response, 200, content_type, body.as_bytes(), &[]);
        done.slot.outbox.borrow_mut().push(Bytes::from(response));
        done.slot.kick(KICK_OUTBOUND);
    }
}

/// The scrape task of one core: answers scrape messages as they arrive.
pub(crate) async fn run(scraper: Rc<Scraper>) {
    let pace = drain::Pace {
        batch: BATCH,
        tick: None,
    };
    drain::run(&scraper.port, pace, |msg| scraper.handle(msg), |_| {}).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerConfig;
    use crate::mailbox::{ConnId, Kicks};
    use crate::pubsub::Settings;

    fn scrapers(cores: usize) -> Vec<Scraper> {
        let mut config = ServerConfig::default();
        config.server.workers = cores;
        let pubsub = Arc::new(Mesh::new(cores, 64));
        let scrape = Arc::new(mesh(cores));
        (0..cores)
            .map(|core| {
                let metrics = Rc::new(Metrics::default());
                let settings = Settings::from_config(&config);
                let hub = Hub::new(core, pubsub.clone(), settings, metrics.pubsub.clone());
                Scraper::new(core, scrape.clone(), metrics, Rc::new(hub))
            })
            .collect()
    }

    fn response(slot: &Slot) -> String {
        let frame = slot.outbox.borrow_mut().pop_front().expect("a response");
        String::from_utf8_lossy(&frame).into_owned()
    }

    #[test]
    fn one_core_answers_at_once() {
        let cores = scrapers(1);
        let slot = Rc::new(Slot::new(ConnId::from_raw(1), Rc::new(Kicks::default())));
        cores[0].metrics.connections_opened.set(3);
        cores[0].start(slot.clone());
        assert_eq!(slot.take_kicks(), KICK_OUTBOUND);
        let text = response(&slot);
        assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
        assert!(
            text.contains("ringcast_connections_opened_total{worker=\"0\"} 3\n"),
            "{text}"
        );
        assert!(cores[0].pending.borrow().is_empty());
    }

    #[test]
    fn the_response_waits_for_every_core_and_lists_them_in_order() {
        let cores = scrapers(3);
        let slot = Rc::new(Slot::new(ConnId::from_raw(1), Rc::new(Kicks::default())));
        cores[1].start(slot.clone());
        assert!(
            slot.outbox.borrow().is_empty(),
            "cores 0 and 2 have not answered"
        );
        for core in [2, 0] {
            assert_eq!(
                drain::drain(&cores[core].port, BATCH, |m| cores[core].handle(m)),
                1
            );
        }
        assert!(
            slot.outbox.borrow().is_empty(),
            "the answers wait in core 1's inbox"
        );
        assert_eq!(
            drain::drain(&cores[1].port, BATCH, |m| cores[1].handle(m)),
            2
        );
        let text = response(&slot);
        let at = |w: usize| {
            text.find(&format!("ringcast_connections{{worker=\"{w}\"}}"))
                .expect("every worker's series")
        };
        assert!(at(0) < at(1) && at(1) < at(2), "{text}");
    }
}
