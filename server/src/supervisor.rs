//! No task dies for good: a panic in a long-lived task (a stage) is caught, logged with the
//! task's name, counted, and the task started afresh after a backoff; a panic in a request's
//! task (a stream) is caught, logged and counted, and the stream ends with INTERNAL instead
//! of a silent end that a client would take for success.
//!
//! The restart builds the task anew from its factory, so whatever state the panic may have
//! left half-changed is dropped with it.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::FutureExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The first pause before a restart; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest pause between two restarts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A run that lasted this long was healthy: the next panic starts the backoff afresh.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// Panics caught, by every task of this process (stages and streams).
static PANICS: AtomicU64 = AtomicU64::new(0);

/// Counts a panic caught outside [`catch`] (the analytics worker's thread catches its own).
pub fn count_panic() {
    PANICS.fetch_add(1, Ordering::Relaxed);
}

/// How many panics this process has caught so far.
pub fn panics() -> u64 {
    PANICS.load(Ordering::Relaxed)
}

/// Restarts of one supervised task.
#[derive(Debug, Default)]
pub struct Restarts(AtomicU64);

impl Restarts {
    /// How many times the task was restarted after a panic.
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Runs `make()`'s future as the task `name`, tracked by `tasks`; after a panic, logs it and
/// runs a fresh `make()` after a backoff, until a run ends normally or `shutdown` is
/// cancelled.
pub fn supervise<F, Fut>(
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
    name: &'static str,
    mut make: F,
) -> (JoinHandle<()>, Arc<Restarts>)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let restarts = Arc::new(Restarts::default());
    let (counted, shutdown) = (restarts.clone(), shutdown.clone());
    let handle = tasks.spawn(async move {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let started = tokio::time::Instant::now();
            if catch(name, make()).await.is_some() || shutdown.is_cancelled() {
                return;
            }
            counted.0.fetch_add(1, Ordering::Relaxed);
            if started.elapsed() >= HEALTHY_RUN {
                backoff = FIRST_BACKOFF;
            }
            tracing::warn!(task = name, retry_in = ?backoff, "restarting the task after its panic");
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    });
    (handle, restarts)
}

/// Runs `task`, catching a panic: `None` if it panicked (logged with `name` and counted).
pub async fn catch<T>(name: &'static str, task: impl Future<Output = T>) -> Option<T> {
    match AssertUnwindSafe(task).catch_unwind().await {
        Ok(value) => Some(value),
        Err(panic) => {
            PANICS.fetch_add(1, Ordering::Relaxed);
            tracing::error!(task = name, panic = %message(&*panic), "task panicked");
            None
        }
    }
}

/// The text of a panic payload.
pub fn message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_panicking_task_is_restarted_until_it_ends_normally() {
        let (tasks, shutdown) = (TaskTracker::new(), CancellationToken::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let before = panics();
        let (handle, restarts) = supervise(&tasks, &shutdown, "test", move || {
            let run = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if run < 3 {
                    panic!("run {run} fails");
                }
            }
        });
        handle.await.expect("the supervisor itself never panics");
        assert_eq!(runs.load(Ordering::SeqCst), 4);
        assert_eq!(restarts.count(), 3);
        assert!(panics() >= before + 3);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_ends_the_restarts() {
        let (tasks, shutdown) = (TaskTracker::new(), CancellationToken::new());
        let (handle, _) = supervise(&tasks, &shutdown, "test", || async { panic!("always") });
        shutdown.cancel();
        handle.await.expect("ends");
    }

    #[tokio::test]
    async fn catch_returns_the_value_or_none() {
        assert_eq!(catch("ok", async { 7 }).await, Some(7));
        assert_eq!(
            catch("bad", async { panic!("{}", String::from("boom")) }).await,
            None::<()>
        );
        let payload: Box<dyn Any + Send> = Box::new(String::from("text"));
        assert_eq!(message(&*payload), "text");
    }
}
