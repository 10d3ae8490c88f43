//! The drain: once the shutdown token is cancelled, everything the server started must end
//! within `--shutdown-timeout` — open connections, the stages, every tracked task, and the
//! producer's flush. Each step waits on a deadline, never forever: tonic's graceful shutdown
//! alone would wait for open streams indefinitely, and a blocking Kafka call can hang.
//! Blocking work still running at the deadline is abandoned here; the binary then exits
//! without waiting for it (see `main`).

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::kafka::Producer;
use crate::stages::Stages;

/// Runs `serve` until it ends; once `shutdown` is cancelled, gives open connections until
/// the drain's deadline (`bound` after the cancel) to close. Returns the outcome and that
/// deadline, which every later step of the drain shares.
pub async fn serve_until_drained<E>(
    serve: impl Future<Output = Result<(), E>>,
    shutdown: &CancellationToken,
    bound: Duration,
) -> (Result<(), E>, Instant) {
    tokio::pin!(serve);
    tokio::select! {
        result = &mut serve => (result, Instant::now() + bound),
        _ = shutdown.cancelled() => {
            let deadline = Instant::now() + bound;
            // Streams watch the token and end themselves; the deadline covers any that do not.
            match tokio::time::timeout_at(deadline, &mut serve).await {
                Ok(result) => (result, deadline),
                Err(_) => {
                    tracing::warn!(timeout = ?bound, "connections still open after the drain time; closing them");
                    (Ok(()), deadline)
                }
            }
        }
    }
}

/// Waits for the stages, then for every other tracked task, until `deadline`.
pub async fn stages_and_tasks(stages: Stages, tasks: &TaskTracker, deadline: Instant) {
    if tokio::time::timeout_at(deadline, stages.stopped())
        .await
        .is_err()
    {
        tracing::warn!("background stages still stopping at the drain deadline");
    }
    tasks.close();
    if tokio::time::timeout_at(deadline, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            tasks = tasks.len(),
            "tasks still running at the drain deadline; leaving them"
        );
    }
}

/// Flushes the producer until `deadline`. Records still unacknowledged then were never
/// acknowledged to a client either (Publish answers only after the broker's ack).
pub async fn flush(producer: Producer, deadline: Instant) {
    let in_flight = producer.in_flight();
    let budget = deadline.saturating_duration_since(Instant::now());
    let flushing = tokio::task::spawn_blocking(move || producer.flush(budget));
    match tokio::time::timeout(budget, flushing).await {
        Ok(Ok(Ok(()))) => tracing::info!(records = in_flight, "producer flushed"),
        Ok(Ok(Err(e))) => {
            tracing::warn!(error = %e, records = in_flight, "producer flush incomplete")
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "producer flush failed"),
        Err(_) => tracing::warn!(
            records = in_flight,
            "producer flush still blocked; leaving it"
        ),
    }
}
