//! Waiting until an instant with better than monoio's timer resolution.
//!
//! monoio 0.2.4's timer wheel ticks in milliseconds: a `sleep` fires up to
//! ~1 ms after its deadline. For an open-loop sender that error lands in every
//! latency (measured from the intended send time), so the last stretch before
//! a deadline is spent yielding instead: [`wait_until`] sleeps on the timer
//! until `spin` before the deadline, then yields to the runtime in a loop.
//!
//! Yielding needs care in monoio 0.2.4: a task that wakes *itself* while it
//! is being polled is put back at the **front** of the run queue, so a naive
//! yield loop starves every other task (reads would complete only when the
//! spinning stops). A [`Yielder`] therefore bounces the wake through a
//! companion task: the spinner hands its waker over and wakes the companion,
//! which wakes the spinner on its next poll — each wake comes from another
//! task, so each lands at the back of the queue, behind every ready read and
//! write. While tasks stay queued the runtime keeps calling its driver's
//! `submit`, which submits and reaps IO, so connections are served while the
//! sender waits.
//!
//! The price: while a sender spins, the thread is 100 % busy, and monoio
//! timers do not fire (the runtime runs its timer wheel only when it parks,
//! and it never parks while tasks are queued). Scenario code keeps its timed
//! work in the pacing loop itself; a timer elsewhere on the thread fires
//! late, once the spinning pauses. `spin = 0` turns spinning off.
//!
//! **Naps.** A spinning thread is 100 % busy even when nothing happens, which
//! is wasteful on a shared box and, under real-time scheduling (`chrt -f`),
//! runs into the kernel's RT throttling (a thread that never sleeps is
//! stopped for 50 ms every second). With a nap of N µs, a spin round in which
//! no socket of the thread did anything ([`note_activity`] was not called)
//! is followed by a real sleep of N µs (the thread's timer slack is set to
//! 1 µs, see [`precise_timer_slack`]). The cost is accuracy: a reply that
//! lands during a nap is read up to N µs late, and its latency says so.
//! Default 0: no naps.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Default spin window before a deadline: just over one timer tick.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(1500);

/// Waits until `deadline`: timer sleep until `spin` before it, then yields
/// through `yielder`, napping `nap` whenever a round saw no socket activity.
pub async fn wait_until(deadline: Instant, spin: Duration, nap: Duration, yielder: &Yielder) {
    loop {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        let left = deadline - now;
        if left > spin {
            // The wheel fires late, never early: aim `spin` short of the deadline.
            monoio::time::sleep(left - spin).await;
            continue;
        }
        let before = activity();
        yielder.yield_now().await;
        if !nap.is_zero() && activity() == before {
            let left = deadline.saturating_duration_since(Instant::now());
            if left > nap {
                std::thread::sleep(nap);
            }
        }
    }
}

thread_local! {
    /// Socket events of this thread (reads and writes completed), for naps.
    static ACTIVITY: Cell<u64> = const { Cell::new(0) };
}

/// Records that a socket of this thread completed a read or a write.
pub fn note_activity() {
    ACTIVITY.with(|a| a.set(a.get().wrapping_add(1)));
}

fn activity() -> u64 {
    ACTIVITY.with(Cell::get)
}

/// Sets the calling thread's timer slack to 1 µs, so that short sleeps (naps)
/// end when asked rather than up to 50 µs later (the default slack).
pub fn precise_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer and only changes this
    // thread's timer slack.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong);
    }
}

/// Yields to every other ready task of the runtime, fairly (see the module
/// doc). One per thread; create it inside the runtime.
#[derive(Clone)]
pub struct Yielder {
    inner: Rc<Bounce>,
}

/// State shared by the yielding tasks and the companion task.
#[derive(Default)]
struct Bounce {
    /// Tasks that yielded, woken by the companion's next poll.
    waiting: RefCell<Vec<Waker>>,
    /// The companion task, parked until a task yields.
    companion: RefCell<Option<Waker>>,
}

impl Yielder {
    /// Spawns the companion task on the current monoio runtime.
    pub fn start() -> Yielder {
        let inner = Rc::new(Bounce::default());
        monoio::spawn(Companion(Rc::clone(&inner)));
        Yielder { inner }
    }

    /// Returns `Pending` once; the task is woken behind every task ready now.
    pub fn yield_now(&self) -> YieldNow<'_> {
        YieldNow {
            bounce: &self.inner,
            yielded: false,
        }
    }
}

/// The future of [`Yielder::yield_now`].
pub struct YieldNow<'a> {
    bounce: &'a Bounce,
    yielded: bool,
}

impl Future for YieldNow<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        self.bounce.waiting.borrow_mut().push(cx.waker().clone());
        if let Some(companion) = self.bounce.companion.borrow_mut().take() {
            companion.wake();
        }
        Poll::Pending
    }
}

/// The companion task: wakes the tasks that yielded, then parks. Never ends
/// (dropped with the runtime).
struct Companion(Rc<Bounce>);

impl Future for Companion {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let waiting = std::mem::take(&mut *self.0.waiting.borrow_mut());
        *self.0.companion.borrow_mut() = Some(cx.waker().clone());
        for w in waiting {
            w.wake();
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    //! Behaviour, not speed: how precise the pacing is on a given box is the
    //! generator's `generator_lag` figure in a real run, not a test bound.
    use super::*;

    fn runtime() -> monoio::Runtime<monoio::time::TimeDriver<monoio::LegacyDriver>> {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime")
    }

    /// A runtime with no timer: `monoio::time::sleep` panics on it.
    fn runtime_without_timer() -> monoio::Runtime<monoio::LegacyDriver> {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .build()
            .expect("runtime")
    }

    /// Times this thread gave up its CPU by blocking (a sleep, a blocking
    /// wait): `ru_nvcsw` of `RUSAGE_THREAD`. Being preempted on a busy box
    /// is an involuntary switch and does not count.
    fn voluntary_switches() -> i64 {
        // SAFETY: an all-zero rusage is a valid value of this plain C struct.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `usage` is a valid, writable rusage for the duration of the call.
        let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
        assert_eq!(rc, 0, "getrusage");
        usage.ru_nvcsw
    }

    /// Inside the spin window the wait yields instead of sleeping on the
    /// timer (which fires up to a tick late): on a runtime without a timer a
    /// timer sleep would panic, so reaching the deadline proves it spun.
    #[test]
    fn the_spin_window_never_touches_the_timer() {
        let mut rt = runtime_without_timer();
        rt.block_on(async {
            let yielder = Yielder::start();
            for nap in [Duration::ZERO, Duration::from_micros(10)] {
                let deadline = Instant::now() + Duration::from_millis(3);
                wait_until(deadline, Duration::from_secs(60), nap, &yielder).await;
                assert!(Instant::now() >= deadline, "returned early (nap {nap:?})");
            }
        });
    }

    /// A spin round in which no socket did anything is followed by a real
    /// sleep of the thread (a voluntary context switch); one with activity is not.
    #[test]
    fn idle_rounds_nap_and_busy_rounds_do_not() {
        let mut rt = runtime_without_timer();
        rt.block_on(async {
            precise_timer_slack();
            let yielder = Yielder::start();
            let nap = Duration::from_micros(50);

            let before = voluntary_switches();
            let deadline = Instant::now() + Duration::from_millis(20);
            wait_until(deadline, Duration::from_secs(60), nap, &yielder).await;
            assert!(Instant::now() >= deadline);
            let idle = voluntary_switches() - before;
            assert!(idle > 0, "20 ms of idle spinning never napped");

            // Another task notes socket activity every round: no round is idle.
            let busy = Rc::new(Cell::new(true));
            let (b, y) = (Rc::clone(&busy), yielder.clone());
            monoio::spawn(async move {
                while b.get() {
                    note_activity();
                    y.yield_now().await;
                }
            });
            let before = voluntary_switches();
            let deadline = Instant::now() + Duration::from_millis(20);
            wait_until(deadline, Duration::from_secs(60), nap, &yielder).await;
            let napped = voluntary_switches() - before;
            busy.set(false);
            assert_eq!(napped, 0, "napped although every round saw activity");
        });
    }

    #[test]
    fn never_returns_early_without_spin() {
        let mut rt = runtime();
        rt.block_on(async {
            let yielder = Yielder::start();
            let deadline = Instant::now() + Duration::from_millis(3);
            wait_until(deadline, Duration::ZERO, Duration::ZERO, &yielder).await;
            assert!(Instant::now() >= deadline);
        });
    }

    /// The reason for the companion task: a spinning task must let the
    /// others run. Here one task spins towards a deadline 30 s away while
    /// another yields 100 times through the same yielder and finishes: with
    /// a plain self-wake the spinner would stay at the front of the queue
    /// and the other task would finish only after the spin (an order, not a
    /// time: a slow box only stretches both).
    #[test]
    fn other_tasks_run_while_one_spins() {
        let mut rt = runtime();
        rt.block_on(async {
            let yielder = Yielder::start();
            let spun_out = Rc::new(Cell::new(false));
            let (done, y) = (Rc::clone(&spun_out), yielder.clone());
            monoio::spawn(async move {
                let deadline = Instant::now() + Duration::from_secs(30);
                wait_until(deadline, Duration::from_secs(60), Duration::ZERO, &y).await;
                done.set(true);
            });
            let y = yielder.clone();
            let ticks = monoio::spawn(async move {
                let mut ticks = 0u32;
                while ticks < 100 {
                    ticks += 1;
                    y.yield_now().await;
                }
                ticks
            })
            .await;
            assert_eq!(ticks, 100);
            assert!(
                !spun_out.get(),
                "the other task finished only once the spinner was done"
            );
        });
    }
}
