//! Two things every consumer of this server needs: the configuration of a consumer that
//! only *assigns* partitions (it reads, but never joins a group and never commits), and a
//! way to close a consumer without blocking the async runtime.

use rdkafka::ClientConfig;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::ClientSettings;

/// The configuration of an assign-only consumer: shared settings, `role`, then `-X`.
///
/// librdkafka's consumer wants a `group.id` even when it only assigns partitions; `group`
/// names it (it shows up in the broker's logs) but is never joined, and nothing is ever
/// committed under it. A reader of another group's committed offsets (the stats hub) passes
/// that group here.
pub fn assign_only(
    settings: &ClientSettings,
    group: &str,
    role: impl FnOnce(&mut ClientConfig),
) -> ClientConfig {
    settings.config(|config| {
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        role(config);
    })
}

/// How long librdkafka waits before fetching again for a partition whose prefetch queue was
/// full. Its default (1 s) assumes an application that drains the queue in bursts; a
/// consumer whose reader is slower than the fetcher (a gRPC client, a transaction) hit that
/// full second over and over: Subscribe read at a quarter of kcat's rate with every
/// process idle. Emptying the few MiB of queue [`prefetch`] allows takes milliseconds.
const FETCH_QUEUE_BACKOFF_MS: &str = "10";

/// Bounds a consumer's prefetch queue to `kbytes` (the memory a slow reader can pin) and
/// lets fetching resume soon after the reader made room.
pub fn prefetch(config: &mut ClientConfig, kbytes: usize) {
    config
        .set("queued.max.messages.kbytes", kbytes.to_string())
        .set("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS);
}

/// Sets the fetch wait (librdkafka `fetch.wait.max.ms`) of a stage that must see new
/// records well within its `tick`: a tenth of it, between 10 ms and librdkafka's default
/// 500 ms. Brokers that hold a fetch to its end (the embedded broker, Tansu) add the whole
/// wait to every record's latency; Kafka answers as soon as records arrive, so there it only
/// sets how often an idle stage asks — which the floor bounds (100 fetches/s at most, even
/// with a 1 ms `--stats-tick`).
pub fn stage_fetch_wait(config: &mut ClientConfig, tick: std::time::Duration) {
    let millis = (tick / 10).as_millis().clamp(10, 500);
    config.set("fetch.wait.max.ms", millis.to_string());
}

/// Makes a consumer for a restarted run of the stage `stage`, retrying every `retry` until
/// `make` succeeds; `None` if `shutdown` comes first.
pub async fn make_until_ready<C>(
    stage: &str,
    mut make: impl FnMut() -> Result<C, rdkafka::error::KafkaError>,
    retry: std::time::Duration,
    shutdown: &tokio_util::sync::CancellationToken,
) -> Option<C> {
    loop {
        match make() {
            Ok(consumer) => return Some(consumer),
            Err(e) => {
                tracing::error!(stage, error = %e, "cannot create the stage's consumer; retrying")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(retry) => {}
        }
    }
}

/// Closes `consumer` on the blocking pool and waits for it. Dropping a consumer commits its
/// stored offsets and leaves its group, which waits on the broker: never on a runtime thread.
pub async fn close<C: Send + 'static>(consumer: C) {
    let _ = tokio::task::spawn_blocking(move || drop(consumer)).await;
}

/// Closes the consumer of `group` on the blocking pool and waits for it, but no longer than
/// `limit`: librdkafka's close waits for a rebalance in progress and for the broker's answer
/// to LeaveGroup, and a stream's end must not hang on a slow or silent coordinator. Past the
/// limit the close goes on detached, tracked by `tasks`, and a warning says so.
pub async fn close_within<C: Send + 'static>(
    consumer: C,
    group: &str,
    tasks: &tokio_util::task::TaskTracker,
    limit: std::time::Duration,
) {
    let closing = tasks.spawn_blocking(move || drop(consumer));
    if tokio::time::timeout(limit, closing).await.is_err() {
        tracing::warn!(
            group,
            ?limit,
            "a consumer did not leave its group in time; its stream ends anyway"
        );
    }
}

/// Closes `consumer` on the blocking pool without waiting; the task is tracked by `tasks`,
/// so the server's drain still waits for it (within its bound).
pub fn close_detached<C: Send + 'static>(consumer: C, tasks: &tokio_util::task::TaskTracker) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            tasks.spawn_blocking_on(move || drop(consumer), &runtime);
        }
        Err(_) => drop(consumer),
    }
}

/// The context of a reader that sets `enable.partition.eof` to learn where a partition
/// ends: end-of-partition is what it waits for, not an error. librdkafka also hands the
/// end of a partition no longer assigned to the client's error callback, which rdkafka's
/// default context logs at ERROR; this one drops those and logs the rest as warnings
/// naming the reader.
pub struct QuietEof(pub &'static str);

impl rdkafka::ClientContext for QuietEof {
    fn error(&self, error: KafkaError, reason: &str) {
        if !is_partition_eof(&error) {
            tracing::warn!(error = %error, reason, reader = self.0, "Kafka client error");
        }
    }
}

impl ConsumerContext for QuietEof {}

/// Whether `error` is only the end of a partition, as a consumer that sets
/// `enable.partition.eof` receives it: through its queue, or through the error callback
/// for a partition no longer assigned.
pub fn is_partition_eof(error: &KafkaError) -> bool {
    matches!(
        error,
        KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn stage_wait(tick: Duration) -> String {
        let mut config = ClientConfig::new();
        stage_fetch_wait(&mut config, tick);
        config.get("fetch.wait.max.ms").expect("set").to_owned()
    }

    #[test]
    fn a_stage_waits_a_tenth_of_its_tick_within_bounds() {
        assert_eq!(stage_wait(Duration::from_secs(1)), "100");
        assert_eq!(
            stage_wait(Duration::from_millis(1)),
            "10",
            "an idle stage stays cheap"
        );
        assert_eq!(
            stage_wait(Duration::from_secs(60)),
            "500",
            "librdkafka's default"
        );
    }
}
