//! The loop a bus client runs on each core: handle what the inbox holds, a
//! batch at a time, retry spilled sends, do periodic work, sleep when idle.
//!
//! A batch bounds the work done per turn (`pubsub.inbox_batch` for pub/sub),
//! so one flood of messages cannot starve the connections of the core, which
//! run as other tasks of the same runtime: after a full batch the loop yields.
//! With spilled messages left it polls again shortly (a full target inbox
//! sends no wake-up when it empties); otherwise it sleeps until a message
//! arrives or the next tick.

use std::time::{Duration, Instant};

use super::Port;
use crate::rt::yield_now;

/// How long a core with spilled messages waits before retrying them.
const SPILL_RETRY: Duration = Duration::from_micros(200);

/// How a client's drain loop paces itself.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Messages handled per turn before yielding (at least 1).
    pub batch: usize,
    /// How often `on_tick` runs, also when no message arrives (`None`: never).
    pub tick: Option<Duration>,
}

/// Runs forever on core `port.core()`: every message goes to `handle`, and
/// `on_tick` runs every `pace.tick`.
pub async fn run<M>(
    port: &Port<M>,
    pace: Pace,
    mut handle: impl FnMut(M),
    mut on_tick: impl FnMut(Instant),
) {
    let batch = pace.batch.max(1);
    let mut last_tick = Instant::now();
    loop {
        let handled = drain(port, batch, &mut handle);
        let spilling = port.retry_spill();
        let now = Instant::now();
        if let Some(tick) = pace.tick {
            if now.duration_since(last_tick) >= tick {
                on_tick(now);
                last_tick = now;
            }
        }
        if handled == batch {
            yield_now().await;
        } else if spilling {
            monoio::time::sleep(SPILL_RETRY).await;
        } else if let Some(tick) = pace.tick {
            monoio::select! {
                _ = port.ready() => {}
                _ = monoio::time::sleep(tick) => {}
            }
        } else {
            port.ready().await;
        }
    }
}

/// Hands up to `budget` inbox messages to `handle`; returns how many.
pub fn drain<M>(port: &Port<M>, budget: usize, mut handle: impl FnMut(M)) -> usize {
    let mut handled = 0;
    while handled < budget {
        let Some(msg) = port.try_recv() else {
            break;
        };
        handle(msg);
        handled += 1;
    }
    handled
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::Mesh;
    use std::cell::{Cell, RefCell};
    use std::sync::Arc;
    use std::task::{Poll, Waker};

    #[test]
    fn drain_stops_at_the_budget_and_keeps_the_rest() {
        let mesh = Arc::new(Mesh::new(2, 8));
        let port = Port::new(1, mesh.clone());
        for n in 0..5 {
            assert_eq!(mesh.try_send(1, n), Ok(()));
        }
        let mut got = Vec::new();
        assert_eq!(drain(&port, 3, |n| got.push(n)), 3);
        assert_eq!(drain(&port, 3, |n| got.push(n)), 2);
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
    }

    /// The loop hands over messages sent from another thread, sleeping on
    /// the inbox in between: nothing else runs on this runtime to wake it, so
    /// a lost wake-up hangs (the harness times out) and reordering fails.
    #[test]
    fn run_hands_every_message_to_the_handler_in_order() {
        const N: u32 = 1000;
        let mesh = Arc::new(Mesh::new(2, 4));
        let sender = {
            let mesh = mesh.clone();
            std::thread::spawn(move || {
                let mut next = 0;
                while next < N {
                    match mesh.try_send(1, next) {
                        Ok(()) => next += 1,
                        Err(_) => std::thread::yield_now(),
                    }
                }
            })
        };
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("rt");
        let got = RefCell::new(Vec::new());
        let done: Cell<Option<Waker>> = Cell::new(None);
        rt.block_on(async {
            let port = Port::new(1, mesh);
            let pace = Pace {
                batch: 3,
                tick: None,
            };
            let handle = |n| {
                got.borrow_mut().push(n);
                if got.borrow().len() == N as usize {
                    if let Some(waker) = done.take() {
                        waker.wake();
                    }
                }
            };
            let finished = std::future::poll_fn(|cx| {
                if got.borrow().len() == N as usize {
                    Poll::Ready(())
                } else {
                    done.set(Some(cx.waker().clone()));
                    Poll::Pending
                }
            });
            monoio::select! {
                _ = run(&port, pace, handle, |_| {}) => {}
                _ = finished => {}
            }
        });
        sender.join().expect("sender finished");
        assert_eq!(got.into_inner(), (0..N).collect::<Vec<_>>());
    }
}
