//! Small helpers for the tasks of one core's monoio runtime.

use std::future::poll_fn;
use std::task::Poll;

/// Lets every other ready task of the core run once.
pub async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

/// A wake-up between tasks of one core: [`Notify::notify`] marks it and
/// wakes the task waiting in [`Notify::wait`], if any; a notify with no
/// waiter is kept for the next wait (so none is lost between a check and
/// the wait). One waiter at a time (the last one to wait is woken).
#[derive(Default)]
pub struct Notify {
    set: std::cell::Cell<bool>,
    waker: std::cell::Cell<Option<std::task::Waker>>,
}

impl Notify {
    pub fn notify(&self) {
        self.set.set(true);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// Returns once notified since the last return.
    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.set.replace(false) {
                Poll::Ready(())
            } else {
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notify_before_the_wait_is_kept_and_a_wait_without_one_sleeps() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("rt");
        rt.block_on(async {
            let n = Notify::default();
            n.notify();
            n.wait().await;
            monoio::select! {
                _ = n.wait() => panic!("no second notify was given"),
                _ = monoio::time::sleep(std::time::Duration::from_millis(5)) => {}
            }
        });
    }
}
