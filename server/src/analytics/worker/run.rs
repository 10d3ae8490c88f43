//! One run of the worker: a consumer in the group and a transactional producer, the poll
//! loop that drives them, and counting one record of R2 into its partition's windows.
//!
//! A run lives until shutdown, an abandon (test hook), or the first Kafka error; the
//! supervisor in [`super`] starts the next. The loop restores after every rebalance
//! ([`super::restore`]) and writes what changed once per tick ([`super::commit`]); both
//! work on the state this file declares, which only this thread ever touches.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::BorrowedMessage;
use rdkafka::producer::{DefaultProducerContext, Producer as _, ThreadedProducer};
use rdkafka::{ClientContext, Message};
use streamgate::page_event::PageEvent;
use streamgate::time::now_millis;
use tokio_util::sync::CancellationToken;

use super::{ABANDON_NOW, RunError, WorkerCounters, WorkerSettings};
use crate::analytics::committed::{CommittedOffsets, WithoutCommit};
use crate::analytics::window::{Outcome, PartitionWindows, WindowUpdate};
use crate::kafka::ClientSettings;
use crate::logs::{LogThrottle, preview};

/// Sets a flag when the group assignment changed; runs inside `poll`, on the worker thread.
#[derive(Default)]
pub(super) struct AssignmentFlag(AtomicBool);

impl ClientContext for AssignmentFlag {}

impl ConsumerContext for AssignmentFlag {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Error(e) = rebalance {
            tracing::warn!(error = %e, "analytics: rebalance failed");
        }
        self.0.store(true, Ordering::Release);
    }
}

/// What a run knows of its partitions: their windows, and the offsets last committed. The
/// restore fills it, counting and committing move it on. A struct of its own, apart from the
/// consumer, so that a polled message (which borrows the consumer) can be counted into it.
pub(super) struct State {
    pub(super) partitions: HashMap<i32, PartitionWindows>,
    /// The offsets last committed, per partition (only those with a commit; one without
    /// starts at 0).
    pub(super) committed: CommittedOffsets,
}

/// One run: a consumer, a transactional producer, and the windows of the assigned partitions.
pub(super) struct Run<'a> {
    pub(super) settings: &'a WorkerSettings,
    pub(super) client: &'a ClientSettings,
    pub(super) counters: &'a WorkerCounters,
    pub(super) shutdown: &'a CancellationToken,
    pub(super) abandon: &'a AtomicU8,
    pub(super) consumer: BaseConsumer<AssignmentFlag>,
    pub(super) producer: ThreadedProducer<DefaultProducerContext>,
    pub(super) state: State,
    pub(super) malformed_log: LogThrottle,
    pub(super) updates: Vec<WindowUpdate>,
}

impl<'a> Run<'a> {
    pub(super) fn start(
        client: &'a ClientSettings,
        settings: &'a WorkerSettings,
        counters: &'a WorkerCounters,
        shutdown: &'a CancellationToken,
        abandon: &'a AtomicU8,
    ) -> Result<Self, RunError> {
        let consumer: BaseConsumer<AssignmentFlag> = client
            .config(|c| {
                c.set("group.id", &settings.group)
                    .set("enable.auto.commit", "false")
                    .set("auto.offset.reset", "earliest")
                    .set("isolation.level", "read_committed")
                    .set("session.timeout.ms", "10000")
                    .set("heartbeat.interval.ms", "2000")
                    .set("queued.max.messages.kbytes", "8192");
            })
            .create_with_context(AssignmentFlag::default())?;
        let producer: ThreadedProducer<_> = client
            .config(|c| {
                c.set("transactional.id", &settings.transactional_id)
                    .set("enable.idempotence", "true")
                    .set("acks", "all")
                    .set("linger.ms", "5")
                    // A worker that dies mid-transaction holds readers of R4 back (on Kafka)
                    // until the broker aborts it: keep that short.
                    .set("transaction.timeout.ms", "10000");
            })
            .create()?;
        producer.init_transactions(settings.timeout)?;
        consumer.subscribe(&[settings.input.as_str()])?;
        tracing::info!(input = %settings.input, output = %settings.output, group = %settings.group, transactional_id = %settings.transactional_id, "analytics worker started");
        Ok(Self {
            settings,
            client,
            counters,
            shutdown,
            abandon,
            consumer,
            producer,
            state: State {
                partitions: HashMap::new(),
                committed: CommittedOffsets::new(WithoutCommit::FromStart),
            },
            malformed_log: LogThrottle::new(Duration::from_secs(5)),
            updates: Vec::new(),
        })
    }

    pub(super) fn serve(&mut self) -> Result<(), RunError> {
        let mut next_tick = Instant::now() + self.settings.tick;
        loop {
            if self.abandon.load(Ordering::Acquire) == ABANDON_NOW {
                return Err(RunError::Abandoned);
            }
            if self.shutdown.is_cancelled() {
                // Write what is counted, so a restart has less to redo; then leave.
                if !self.assignment_changed() {
                    let _ = self.commit();
                }
                return Ok(());
            }
            let wait = next_tick
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(100));
            let polled = self.consumer.poll(wait);
            // A rebalance runs inside `poll`: restore before counting what it returned (the
            // record may be the first of a newly assigned partition).
            if self.assignment_changed() {
                self.state
                    .restore(&self.consumer, self.client, self.settings, self.counters)?;
            }
            match polled {
                Some(Ok(message)) => take(
                    &mut self.state,
                    self.counters,
                    &mut self.malformed_log,
                    &message,
                ),
                Some(Err(e)) => tracing::debug!(error = %e, "analytics: consumer error"),
                None => {}
            }
            if Instant::now() >= next_tick {
                next_tick = Instant::now() + self.settings.tick;
                if self.assignment_changed() {
                    self.state.restore(
                        &self.consumer,
                        self.client,
                        self.settings,
                        self.counters,
                    )?;
                } else {
                    self.commit()?;
                }
            }
        }
    }

    fn assignment_changed(&self) -> bool {
        self.consumer.context().0.swap(false, Ordering::AcqRel)
    }
}

/// Counts one record of R2.
fn take(
    state: &mut State,
    counters: &WorkerCounters,
    malformed_log: &mut LogThrottle,
    message: &BorrowedMessage<'_>,
) {
    let partition = message.partition();
    let Some(windows) = state.partitions.get_mut(&partition) else {
        // Not (or no longer) ours: the restore after the next rebalance covers it.
        return;
    };
    let offset = message.offset();
    if offset < windows.next_offset() {
        // Counted before the restore point: never twice.
        return;
    }
    let wall = now_millis();
    let timestamp = message.timestamp().to_millis().unwrap_or(wall);
    let value = message.payload().unwrap_or_default();
    match PageEvent::decode(value) {
        Ok(event) => {
            let outcome = windows.record(offset, timestamp, &event.name, event.duration_ms, wall);
            let counter = match outcome {
                Outcome::Counted => &counters.counted,
                Outcome::Filtered => &counters.filtered,
                Outcome::Late => &counters.late,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            windows.malformed(offset, timestamp, wall);
            counters.malformed.fetch_add(1, Ordering::Relaxed);
            if let Some(times) = malformed_log.hit() {
                tracing::warn!(partition, offset, times, error = %e, value = ?preview(value), "analytics: skipping records that are not PageEvents");
            }
        }
    }
}
