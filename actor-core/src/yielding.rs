//! Yielding to the other tasks of a tokio worker without waiting for its I/O driver.
//!
//! `tokio::task::yield_now` defers the task until its worker has run out of tasks and polled the
//! I/O driver (an `epoll_wait` system call), which costs more than handling a message. A task
//! that wakes itself while it is polled is instead put at the back of its worker's run queue,
//! behind the tasks already queued (tokio still polls the driver every 61 scheduler ticks, so
//! I/O is not starved).

use std::future::Future;
use std::task::Poll;

/// Yields once to the tasks queued on this worker: used by `ask`, so the actor it has just sent
/// to runs before it looks for the answer. (The actor loop's yield after `throughput` messages
/// stays tokio's: there the longer pause lets producers fill the next batch.)
pub(crate) fn yield_to_queue() -> impl Future<Output = ()> {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
}

#[cfg(all(test, not(actor_loom)))]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// The yielding task is polled again only after a task queued before it has run.
    #[tokio::test(flavor = "current_thread")]
    async fn queued_tasks_run_before_the_yielder_resumes() {
        let ran = Arc::new(AtomicBool::new(false));
        let r = ran.clone();
        let other = tokio::spawn(async move { r.store(true, Ordering::SeqCst) });
        super::yield_to_queue().await;
        assert!(ran.load(Ordering::SeqCst), "the queued task ran first");
        other.await.expect("task");
    }
}
