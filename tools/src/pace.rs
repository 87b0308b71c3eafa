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
    use super::*;

    fn runtime() -> monoio::Runtime<monoio::time::TimeDriver<monoio::LegacyDriver>> {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime")
    }

    /// How long this thread has waited for a CPU while ready to run (another
    /// process had it): the second field of `/proc/thread-self/schedstat`.
    fn run_delay() -> Duration {
        let stat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
        let ns = stat.split_whitespace().nth(1).and_then(|f| f.parse().ok());
        Duration::from_nanos(ns.expect("run_delay field"))
    }

    /// `late` less the time the thread waited for a CPU since `queued` was
    /// read: on a loaded box that wait is the scheduler's, not the pacer's.
    fn unqueued(late: Duration, queued: Duration) -> Duration {
        late.saturating_sub(run_delay().saturating_sub(queued))
    }

    #[test]
    fn spinning_is_precise_to_well_under_a_timer_tick() {
        let mut rt = runtime();
        let mut late = rt.block_on(async {
            let yielder = Yielder::start();
            let mut late = Vec::new();
            for _ in 0..21 {
                let queued = run_delay();
                let deadline = Instant::now() + Duration::from_micros(2300);
                wait_until(deadline, DEFAULT_SPIN, Duration::ZERO, &yielder).await;
                late.push(unqueued(Instant::now() - deadline, queued));
            }
            late
        });
        late.sort();
        // A timer-only wait is typically ~1 ms late; spinning is µs late.
        let median = late[late.len() / 2];
        assert!(median < Duration::from_micros(300), "lateness {late:?}");
    }

    #[test]
    fn napping_is_still_precise() {
        let mut rt = runtime();
        let mut late = rt.block_on(async {
            precise_timer_slack();
            let yielder = Yielder::start();
            let mut late = Vec::new();
            for _ in 0..21 {
                let queued = run_delay();
                let deadline = Instant::now() + Duration::from_micros(2300);
                wait_until(deadline, DEFAULT_SPIN, Duration::from_micros(10), &yielder).await;
                late.push(unqueued(Instant::now() - deadline, queued));
            }
            late
        });
        late.sort();
        let median = late[late.len() / 2];
        assert!(median < Duration::from_micros(300), "lateness {late:?}");
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
    /// others run. A plain self-wake would keep it at the front of the queue
    /// and this counter would stay at 0 until the spin ends.
    #[test]
    fn other_tasks_run_while_one_spins() {
        let mut rt = runtime();
        rt.block_on(async {
            let yielder = Yielder::start();
            let ticks = Rc::new(std::cell::Cell::new(0u32));
            let t = Rc::clone(&ticks);
            let y = yielder.clone();
            monoio::spawn(async move {
                loop {
                    t.set(t.get() + 1);
                    y.yield_now().await;
                }
            });
            let deadline = Instant::now() + Duration::from_millis(1);
            wait_until(deadline, Duration::from_millis(5), Duration::ZERO, &yielder).await;
            assert!(ticks.get() > 10, "the other task ran {} times", ticks.get());
        });
    }
}
