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
