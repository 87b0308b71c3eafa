//! The disk engine's side of the owner core (`engine.kind = "disk"`): the
//! memory engine's publish path, plus the record appended to the core's log
//! ([`crate::engine::disk::Log`]) and the publish's effects held until the
//! log has it.
//!
//! # Holding effects, in order
//!
//! `owner_publish` appends the record while it assigns the offset (a
//! refused append changes nothing and answers `unavailable`). From then on
//! every effect the owner produces — the publisher's reply, the deliveries,
//! a subscribe reply — goes through [`Hub::emit`]: while records wait for
//! their write (or one is in flight, or effects are already held) it joins
//! the held queue, else it goes at once. The hub loop ([`run`]) commits the
//! log and releases exactly the effects held before the commit began; the
//! rest wait for the next one. So effects leave in the order they were
//! produced (the ordering argument of `hub.rs` is unchanged), and none
//! leaves before the records it shows are written (and synced, with
//! `store.fsync = always`).
//!
//! A failed commit answers the publishes it held `unavailable`, drops
//! their deliveries, answers subscribe replies held with them
//! `unavailable`, and rolls the channels back to their last written offset:
//! nobody saw the lost records.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{answer_msg, Hub, Msg};
use crate::bus::drain;
use crate::engine::disk::{Log, RecoveredChannel, StoreStats};
use crate::mailbox::ConnId;
use crate::proto::v1::{published_frame, push_frame};
use crate::pubsub::answer::{published_json, ReplyTo};
use crate::pubsub::channel::OwnedChannel;
use crate::pubsub::Refusal;
use crate::rt::yield_now;

/// An effect waiting for the log.
pub(super) enum Held {
    /// A message to send as it is (a delivery is dropped if the commit fails).
    Msg(usize, Msg),
    /// A publish's success reply (`ok`), or `unavailable` to `reply` if
    /// the commit fails.
    Ack {
        to: usize,
        conn: ConnId,
        reply: ReplyTo,
        ok: Msg,
    },
    /// A successful subscribe's reply.
    Sub {
        to: usize,
        channel: Arc<str>,
        conn: ConnId,
        id: Option<u64>,
        reply: Bytes,
        replay: Vec<Bytes>,
    },
}

/// The hub's disk-engine state.
pub(super) struct Durable {
    pub log: Rc<Log>,
    /// The store's process-wide figures (the scrape renders them).
    pub stats: Arc<StoreStats>,
    held: RefCell<VecDeque<Held>>,
    /// `(channel, offset)` of every record appended since the last commit
    /// began, to roll back if it fails.
    touched: RefCell<Vec<(Arc<str>, u64)>>,
    in_flight: Cell<bool>,
}

impl Durable {
    fn holding(&self) -> bool {
        self.log.has_pending() || self.in_flight.get() || !self.held.borrow().is_empty()
    }
}

impl Hub {
    /// Runs this hub on the disk engine: every publish is appended to `log`
    /// before it is acknowledged; `recovered` are the channels the logs gave
    /// back that this core owns.
    pub fn with_store(
        mut self,
        log: Rc<Log>,
        recovered: Vec<RecoveredChannel>,
        stats: Arc<StoreStats>,
    ) -> Self {
        let now = Instant::now();
        let now_ms = crate::engine::disk::unix_ms();
        {
            let mut owned = self.owned.borrow_mut();
            for ch in recovered {
                let name: Arc<str> = Arc::from(ch.name.as_str());
                let history = ch
                    .history
                    .into_iter()
                    .filter_map(|e| {
                        let data = std::str::from_utf8(&e.payload).ok()?;
                        let age = Duration::from_millis(now_ms.saturating_sub(e.timestamp_ms));
                        let at = now.checked_sub(age).unwrap_or(now);
                        let frame = push_frame(&name, e.offset, &ch.epoch, data);
                        Some((e.offset, at, frame))
                    })
                    .collect();
                let restored =
                    OwnedChannel::restore(ch.epoch, ch.last_offset, history, self.cores(), now);
                owned.insert(name, restored);
            }
        }
        self.store = Some(Durable {
            log,
            stats,
            held: RefCell::default(),
            touched: RefCell::default(),
            in_flight: Cell::new(false),
        });
        self
    }

    /// The disk engine's figures, when `engine.kind = "disk"`.
    pub fn store_stats(&self) -> Option<&Arc<StoreStats>> {
        self.store.as_ref().map(|s| &s.stats)
    }

    /// Appends a publish's record (disk engine; no-op otherwise). Called by
    /// `owner_publish` with the offset about to be assigned.
    pub(super) fn store_append(
        &self,
        channel: &Arc<str>,
        offset: u64,
        epoch: &str,
        data: &str,
    ) -> Result<(), Refusal> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let now_ms = crate::engine::disk::unix_ms();
        store
            .log
            .append(offset, now_ms, epoch, channel, data.as_bytes())
            .map_err(|why| Refusal::unavailable(&why))?;
        store.touched.borrow_mut().push((channel.clone(), offset));
        Ok(())
    }

    /// Sends an owner-side effect: held behind the log when the disk engine
    /// has unwritten records (see the module doc), else at once.
    pub(super) fn emit(&self, to: usize, msg: Msg) {
        match &self.store {
            Some(store) if store.holding() => store.held.borrow_mut().push_back(Held::Msg(to, msg)),
            _ => self.dispatch(to, msg),
        }
    }

    /// A publish's success reply, after its record is written: a v1
    /// `published` frame, or `{"offset","epoch"}` for the server API.
    pub(super) fn emit_ack(
        &self,
        to: usize,
        conn: ConnId,
        reply: ReplyTo,
        channel: &str,
        offset: u64,
    ) {
        let ok = match reply {
            ReplyTo::Ws(id) => Msg::PublishReply {
                conn,
                reply: published_frame(id, offset),
            },
            ReplyTo::Api(_) => {
                let epoch = self
                    .owned
                    .borrow()
                    .get(channel)
                    .map(|c| c.epoch().to_owned());
                let json = published_json(offset, epoch.as_deref().unwrap_or(""));
                match answer_msg(conn, reply, Ok(json)) {
                    Some(msg) => msg,
                    None => return,
                }
            }
            ReplyTo::Nobody => return,
        };
        match &self.store {
            Some(store) if store.holding() => store.held.borrow_mut().push_back(Held::Ack {
                to,
                conn,
                reply,
                ok,
            }),
            _ => self.dispatch(to, ok),
        }
    }

    /// A subscribe's reply (`ok`: with its replay), behind what is held.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn emit_subscribe_reply(
        &self,
        to: usize,
        channel: Arc<str>,
        conn: ConnId,
        id: Option<u64>,
        reply: Bytes,
        replay: Vec<Bytes>,
        ok: bool,
    ) {
        match &self.store {
            Some(store) if ok && store.holding() => store.held.borrow_mut().push_back(Held::Sub {
                to,
                channel,
                conn,
                id,
                reply,
                replay,
            }),
            _ => self.emit(
                to,
                Msg::SubscribeReply {
                    channel,
                    conn,
                    reply,
                    replay,
                    ok,
                },
            ),
        }
    }

    /// Writes what the log holds and releases the effects held before the
    /// write began; with nothing to write, releases everything held.
    async fn commit(&self) {
        let Some(store) = &self.store else {
            return;
        };
        if !store.log.has_pending() {
            if !store.in_flight.get() {
                self.release_held(usize::MAX, None);
            }
            return;
        }
        let n = store.held.borrow().len();
        let touched = std::mem::take(&mut *store.touched.borrow_mut());
        store.in_flight.set(true);
        let result = store.log.commit().await;
        store.in_flight.set(false);
        match result {
            Ok(()) => self.release_held(n, None),
            Err(why) => {
                {
                    let mut owned = self.owned.borrow_mut();
                    for (channel, offset) in touched.iter().rev() {
                        if let Some(ch) = owned.get_mut(channel) {
                            ch.rollback(offset - 1);
                        }
                    }
                }
                self.release_held(n, Some(&why));
            }
        }
    }

    fn release_held(&self, n: usize, failed: Option<&str>) {
        let Some(store) = &self.store else {
            return;
        };
        let items: Vec<Held> = {
            let mut held = store.held.borrow_mut();
            let n = n.min(held.len());
            held.drain(..n).collect()
        };
        for item in items {
            match (item, failed) {
                (Held::Ack { to, ok, .. }, None) => self.dispatch(to, ok),
                (
                    Held::Ack {
                        to, conn, reply, ..
                    },
                    Some(why),
                ) => {
                    if let Some(msg) = answer_msg(conn, reply, Err(Refusal::unavailable(why))) {
                        self.dispatch(to, msg);
                    }
                }
                (
                    Held::Sub {
                        to,
                        channel,
                        conn,
                        reply,
                        replay,
                        ..
                    },
                    None,
                ) => {
                    let msg = Msg::SubscribeReply {
                        channel,
                        conn,
                        reply,
                        replay,
                        ok: true,
                    };
                    self.dispatch(to, msg);
                }
                (
                    Held::Sub {
                        to,
                        channel,
                        conn,
                        id,
                        ..
                    },
                    Some(why),
                ) => {
                    let reply = Refusal::unavailable(why).frame(id);
                    let msg = Msg::SubscribeReply {
                        channel,
                        conn,
                        reply,
                        replay: Vec::new(),
                        ok: false,
                    };
                    self.dispatch(to, msg);
                }
                (Held::Msg(_, Msg::Deliver { .. }), Some(_)) => {}
                (Held::Msg(to, msg), _) => self.dispatch(to, msg),
            }
        }
    }
}

/// The hub's task on the disk engine: the memory engine's loop (drain a
/// batch, retry spills, sweep on the tick) plus, every turn, one commit of
/// what the turn appended — the group commit — and the log's upkeep.
pub(super) async fn run(hub: Rc<Hub>) {
    let Some(store) = &hub.store else {
        return;
    };
    let log = store.log.clone();
    let ttl = hub.settings.history_ttl;
    let tick = (ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let batch = hub.settings.inbox_batch.max(1);
    let (mut last_tick, mut last_upkeep) = (Instant::now(), Instant::now());
    loop {
        let handled = drain::drain(&hub.port, batch, |msg| hub.handle(msg));
        let spilling = hub.port.retry_spill();
        hub.commit().await;
        let now = Instant::now();
        if now.duration_since(last_tick) >= tick {
            hub.sweep(now);
            last_tick = now;
        }
        if now.duration_since(last_upkeep) >= log.next_due() {
            log.maintain(now).await;
            last_upkeep = Instant::now();
        }
        if handled == batch || log.has_pending() {
            yield_now().await;
        } else if spilling {
            monoio::time::sleep(Duration::from_micros(200)).await;
        } else {
            let wait = tick.min(log.next_due());
            monoio::select! {
                _ = hub.port.ready() => {}
                _ = log.wake.wait() => {}
                _ = monoio::time::sleep(wait) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::bus::Mesh;
    use crate::config::{FsyncPolicy, ServerConfig};
    use crate::engine::disk::log::create_segment;
    use crate::engine::disk::recover::segment_name;
    use crate::engine::disk::LogSettings;
    use crate::mailbox::{Kicks, Slot};
    use crate::pubsub::Settings;

    const ONE: ConnId = ConnId::from_raw(1);

    fn tempdir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "ringcast-durable-{tag}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).expect("mkdir");
        dir
    }

    /// A one-core hub on a log in `dir`; `read_only` opens segment 0 so
    /// that every write to it fails.
    fn hub(dir: &std::path::Path, segment_size: u64, read_only: bool) -> (Hub, Arc<StoreStats>) {
        let mut config = ServerConfig::default();
        config.server.workers = 1;
        let s = LogSettings {
            dir: dir.to_path_buf(),
            run: 1,
            core: 0,
            segment_size,
            fsync: FsyncPolicy::Always,
            fsync_interval: Duration::from_millis(10),
            max_disk: 0,
            min_free: 0,
            history_ttl: Duration::from_secs(300),
        };
        let path = dir.join(segment_name(1, 0, 0));
        let (mut file, _) = create_segment(dir, &path, segment_size, 0).expect("segment");
        if read_only {
            file = std::fs::File::open(&path).expect("reopen");
        }
        let stats = Arc::new(StoreStats::default());
        let log = Rc::new(Log::new(s, file, Vec::new(), stats.clone()));
        let settings = Settings::from_config(&config);
        let hub = Hub::new(0, Arc::new(Mesh::new(1, 64)), settings, Rc::default());
        (hub.with_store(log, Vec::new(), stats.clone()), stats)
    }

    fn replies(slot: &Slot) -> Vec<String> {
        std::iter::from_fn(|| slot.outbox.borrow_mut().pop_front())
            .map(|frame| String::from_utf8_lossy(&frame).into_owned())
            .collect()
    }

    fn runtime() -> monoio::Runtime<monoio::time::TimeDriver<monoio::LegacyDriver>> {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime")
    }

    #[test]
    fn acks_wait_for_the_commit_and_one_fsync_covers_the_turn() {
        let dir = tempdir("ack");
        let (hub, stats) = hub(&dir, 1 << 20, false);
        let slot = Rc::new(Slot::new(ONE, Rc::new(Kicks::default())));
        hub.join(slot.clone(), "");
        hub.subscribe(ONE, "a", Some(100), None).expect("subscribe");
        assert_eq!(
            replies(&slot).len(),
            1,
            "nothing written yet: answered at once"
        );
        runtime().block_on(async {
            for n in 1..=5u64 {
                hub.publish(ONE, "a", Bytes::from(n.to_string()), ReplyTo::Ws(Some(n)))
                    .expect("publish");
            }
            assert!(replies(&slot).is_empty(), "no ack or push before the write");
            hub.commit().await;
        });
        let got = replies(&slot);
        assert_eq!(got.len(), 10, "{got:?}");
        for n in 1..=5u64 {
            assert!(
                got.iter()
                    .any(|r| r.contains(&format!(r#""id":{n},"result":{{"offset":{n}}}"#))),
                "{got:?}"
            );
        }
        assert_eq!(StoreStats::get(&stats.fsyncs), 1, "group commit");
        assert_eq!(StoreStats::get(&stats.records), 5);
        // And it is on disk: recovery reads it back.
        let r = crate::engine::disk::recover(
            &dir,
            10,
            Duration::from_secs(60),
            crate::engine::disk::unix_ms(),
        )
        .expect("recover");
        assert_eq!(r.channels[0].last_offset, 5);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_failed_write_answers_unavailable_and_takes_the_publishes_back() {
        let dir = tempdir("fail");
        let (hub, stats) = hub(&dir, 1 << 20, true);
        let slot = Rc::new(Slot::new(ONE, Rc::new(Kicks::default())));
        hub.join(slot.clone(), "");
        runtime().block_on(async {
            hub.publish(ONE, "a", Bytes::from_static(b"1"), ReplyTo::Ws(Some(1)))
                .expect("publish");
            hub.publish(ONE, "a", Bytes::from_static(b"2"), ReplyTo::Ws(Some(2)))
                .expect("publish");
            hub.commit().await;
        });
        let got = replies(&slot);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got.iter().all(|r| r.contains(r#""code":"unavailable""#)),
            "{got:?}"
        );
        assert_eq!(
            hub.owned.borrow().get("a").map(|c| c.last_offset()),
            Some(0)
        );
        assert_eq!(StoreStats::get(&stats.write_errors), 1);
        // Until a new segment is written, publishes are refused at once.
        hub.publish(ONE, "a", Bytes::from_static(b"3"), ReplyTo::Ws(Some(3)))
            .expect("routed");
        let got = replies(&slot);
        assert!(
            got[0].contains(r#""id":3,"error":{"code":"unavailable""#),
            "{got:?}"
        );
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn with_no_segment_ready_a_publish_that_does_not_fit_is_refused_and_not_applied() {
        let dir = tempdir("full");
        let (hub, stats) = hub(&dir, 64 << 10, false);
        let slot = Rc::new(Slot::new(ONE, Rc::new(Kicks::default())));
        hub.join(slot.clone(), "");
        let big = Bytes::from(format!("\"{}\"", "x".repeat(30 << 10)));
        runtime().block_on(async {
            for id in 1..=3 {
                hub.publish(ONE, "a", big.clone(), ReplyTo::Ws(Some(id)))
                    .expect("routed");
            }
            hub.commit().await;
        });
        let got = replies(&slot);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].contains(r#""offset":1"#) && got[1].contains(r#""offset":2"#));
        assert!(
            got[2].contains(r#""id":3,"error":{"code":"unavailable""#),
            "{got:?}"
        );
        assert_eq!(
            hub.owned.borrow().get("a").map(|c| c.last_offset()),
            Some(2)
        );
        assert_eq!(StoreStats::get(&stats.refused), 1);
        std::fs::remove_dir_all(dir).ok();
    }
}
