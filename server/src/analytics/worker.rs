//! The analytics worker: consumes R2 in a consumer group, counts with [`PartitionWindows`]
//! (one per assigned partition), and once per tick writes what changed to R4 — input offsets
//! and R4 records in one Kafka transaction, so a crash neither loses nor double-counts.
//!
//! It is one thread that owns all window state (an actor with Kafka as its only inbox): the
//! consume loop, the transactions and the restore are all blocking librdkafka calls, so a
//! plain thread is simpler and cheaper than async here. Nothing else touches the state; the
//! stats hub learns the counts by reading R4, like any other reader — which is what lets two
//! servers split R2's partitions and still show the same global counts.
//!
//! Restore. Whenever the group assignment changes, every assigned partition is rebuilt from
//! R4: for each `(page, window, partition)` the record with the highest `input_offset` that
//! is still within the group's committed offset. Records of an aborted transaction (which
//! both test brokers show even to `read_committed` readers) or of a worker that died before
//! committing carry offsets beyond the commit and are ignored. The consumer then resumes at
//! the committed offset, and any record below a partition's restored offset is skipped.
//!
//! Any Kafka error inside a transaction ends this run; the supervisor starts a fresh one
//! (new consumer and producer, restore from R4) after a backoff. A record that is not a
//! PageEvent is counted and skipped; the worker never stops on bad data.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer as _, ThreadedProducer};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use streamgate::page_event::PageEvent;
use streamgate::topic::TopicName;
use tokio_util::sync::CancellationToken;

use super::record::StatsRecord;
use super::window::{PartitionWindows, WindowSpec, WindowUpdate};
use crate::kafka::ClientSettings;
use crate::logs::LogThrottle;
use crate::logs::preview;

/// How the worker runs.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Input topic (R2).
    pub input: TopicName,
    /// Output topic (R4).
    pub output: TopicName,
    /// Consumer group: its committed offsets are the worker's progress.
    pub group: String,
    /// This worker's transactional id; unique per running worker.
    pub transactional_id: String,
    /// Window shape.
    pub spec: WindowSpec,
    /// Events need a duration above this (the seed's filter: 100 ms).
    pub min_duration_ms: i64,
    /// How often changes are written to R4.
    pub tick: Duration,
    /// Bound on each blocking Kafka call (transaction steps, restore reads).
    pub timeout: Duration,
}

/// What the worker has done, for logs and tests.
#[derive(Debug, Default)]
pub struct WorkerCounters {
    /// Records counted in a window.
    pub counted: AtomicU64,
    /// Records filtered out by duration.
    pub filtered: AtomicU64,
    /// Records too late for their window.
    pub late: AtomicU64,
    /// Records that are not PageEvents.
    pub malformed: AtomicU64,
    /// Transactions committed.
    pub transactions: AtomicU64,
    /// Runs that ended in an error and were restarted.
    pub restarts: AtomicU64,
}

/// How [`Worker::abandon`] stops the worker: the ways a crash can catch it.
#[cfg(feature = "test-hooks")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abandon {
    /// At once, between two records: whatever was counted since the last commit is lost.
    Now,
    /// In the middle of the next transaction: its R4 records are written to the broker,
    /// then neither its offsets nor its commit follow (the broker aborts it later).
    MidTransaction,
}

const RUNNING: u8 = 0;
const ABANDON_NOW: u8 = 1;
const ABANDON_MID_TRANSACTION: u8 = 2;

/// The running worker.
pub struct Worker {
    counters: Arc<WorkerCounters>,
    // Set only through the test hook; the run loop reads it in every build.
    #[cfg_attr(not(feature = "test-hooks"), allow(dead_code))]
    abandon: Arc<AtomicU8>,
    thread: std::thread::JoinHandle<()>,
}

impl Worker {
    /// Starts the worker thread; it stops when `shutdown` is cancelled.
    pub fn spawn(
        client: ClientSettings,
        settings: WorkerSettings,
        shutdown: CancellationToken,
    ) -> std::io::Result<Self> {
        let counters = Arc::new(WorkerCounters::default());
        let abandon = Arc::new(AtomicU8::new(RUNNING));
        let (shared, stop) = (counters.clone(), abandon.clone());
        let thread = std::thread::Builder::new()
            .name("analytics-worker".into())
            .spawn(move || supervise(&client, &settings, &shared, &shutdown, &stop))?;
        Ok(Self {
            counters,
            abandon,
            thread,
        })
    }

    /// Stops the worker the way a crash would — no final commit, no abort, no clean-up of
    /// the transaction — and waits for its thread. For exactly-once tests (feature
    /// `test-hooks`).
    #[cfg(feature = "test-hooks")]
    pub fn abandon(self, how: Abandon) {
        let code = match how {
            Abandon::Now => ABANDON_NOW,
            Abandon::MidTransaction => ABANDON_MID_TRANSACTION,
        };
        self.abandon.store(code, Ordering::Release);
        self.join();
    }

    /// The worker's counters.
    pub fn counters(&self) -> Arc<WorkerCounters> {
        self.counters.clone()
    }

    /// Waits (blocking) for the thread to end; call after cancelling.
    pub fn join(self) {
        if self.thread.join().is_err() {
            tracing::error!("analytics worker thread panicked");
        }
    }
}

/// Why one run of the worker ended.
#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("restoring from the output topic: {0}")]
    Restore(String),
    #[error("abandoned")]
    Abandoned,
}

fn supervise(
    client: &ClientSettings,
    settings: &WorkerSettings,
    counters: &WorkerCounters,
    shutdown: &CancellationToken,
    abandon: &AtomicU8,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let started = Instant::now();
        let run = Run::start(client, settings, counters, shutdown, abandon);
        match run.and_then(|mut run| run.serve()) {
            Ok(()) | Err(RunError::Abandoned) => return,
            Err(e) => {
                counters.restarts.fetch_add(1, Ordering::Relaxed);
                // A run that lasted a while was healthy: start the backoff afresh.
                if started.elapsed() > Duration::from_secs(60) {
                    backoff = Duration::from_secs(1);
                }
                tracing::warn!(error = %e, retry_in = ?backoff, "analytics worker stopped; restarting from the last commit");
            }
        }
        let deadline = Instant::now() + backoff;
        while Instant::now() < deadline {
            if shutdown.is_cancelled() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// Sets a flag when the group assignment changed; runs inside `poll`, on the worker thread.
#[derive(Default)]
struct AssignmentFlag(AtomicBool);

impl ClientContext for AssignmentFlag {}

impl ConsumerContext for AssignmentFlag {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Error(e) = rebalance {
            tracing::warn!(error = %e, "analytics: rebalance failed");
        }
        self.0.store(true, Ordering::Release);
    }
}

/// The restore reader's context: end-of-partition is what it waits for, not an error to log.
struct QuietEof;

impl ClientContext for QuietEof {
    fn error(&self, error: KafkaError, reason: &str) {
        let eof = matches!(
            error,
            KafkaError::PartitionEOF(_)
                | KafkaError::Global(rdkafka::types::RDKafkaErrorCode::PartitionEOF)
        );
        if !eof {
            tracing::warn!(error = %error, reason, "analytics restore reader");
        }
    }
}

impl ConsumerContext for QuietEof {}

/// One run: a consumer, a transactional producer, and the windows of the assigned partitions.
struct Run<'a> {
    settings: &'a WorkerSettings,
    client: &'a ClientSettings,
    counters: &'a WorkerCounters,
    shutdown: &'a CancellationToken,
    abandon: &'a AtomicU8,
    consumer: BaseConsumer<AssignmentFlag>,
    producer: ThreadedProducer<rdkafka::producer::DefaultProducerContext>,
    partitions: HashMap<i32, PartitionWindows>,
    /// The offsets last committed, per partition.
    committed: HashMap<i32, i64>,
    malformed_log: LogThrottle,
    updates: Vec<WindowUpdate>,
}

impl<'a> Run<'a> {
    fn start(
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
            partitions: HashMap::new(),
            committed: HashMap::new(),
            malformed_log: LogThrottle::new(Duration::from_secs(5)),
            updates: Vec::new(),
        })
    }

    fn serve(&mut self) -> Result<(), RunError> {
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
                restore(
                    &self.consumer,
                    self.client,
                    self.settings,
                    &mut self.partitions,
                    &mut self.committed,
                )?;
            }
            match polled {
                Some(Ok(message)) => take(
                    &mut self.partitions,
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
                    restore(
                        &self.consumer,
                        self.client,
                        self.settings,
                        &mut self.partitions,
                        &mut self.committed,
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

    /// Writes the changed and closed windows and the input offsets in one transaction.
    fn commit(&mut self) -> Result<(), RunError> {
        let wall = now_ms();
        let mut records = Vec::new();
        let mut offsets = TopicPartitionList::new();
        for (partition, state) in &mut self.partitions {
            self.updates.clear();
            state.drain_updates(wall, &mut self.updates);
            let next = state.next_offset();
            for update in self.updates.drain(..) {
                records.push(StatsRecord::new(
                    update.page,
                    update.start_ms,
                    update.end_ms,
                    *partition,
                    next,
                    update.count,
                    update.is_final,
                ));
            }
            if self.committed.get(partition) != Some(&next) {
                offsets.add_partition_offset(
                    self.settings.input.as_str(),
                    *partition,
                    Offset::Offset(next),
                )?;
            }
        }
        if records.is_empty() && offsets.count() == 0 {
            return Ok(());
        }
        let group = self
            .consumer
            .group_metadata()
            .ok_or_else(|| RunError::Restore("the consumer has no group metadata".into()))?;
        self.producer.begin_transaction()?;
        let written = (|| -> Result<(), KafkaError> {
            for record in &records {
                self.send(record, wall)?;
            }
            if self.abandon.load(Ordering::Acquire) == ABANDON_MID_TRANSACTION {
                // Put the records on the broker inside the open transaction, then stop.
                self.producer.flush(self.settings.timeout)?;
                return Err(KafkaError::Canceled);
            }
            if offsets.count() > 0 {
                self.producer.send_offsets_to_transaction(
                    &offsets,
                    &group,
                    self.settings.timeout,
                )?;
            }
            self.producer.commit_transaction(self.settings.timeout)
        })();
        if let Err(e) = written {
            if self.abandon.load(Ordering::Acquire) == ABANDON_MID_TRANSACTION {
                return Err(RunError::Abandoned);
            }
            // Best effort: the broker aborts it anyway when the transaction times out.
            let _ = self.producer.abort_transaction(self.settings.timeout);
            return Err(e.into());
        }
        // The same offsets once more, outside the transaction: the embedded broker acks
        // transactional offset commits without storing them. Harmless on Kafka (equal
        // offsets); a crash between the two only means a restore from the older commit.
        if offsets.count() > 0 {
            self.consumer.commit(&offsets, CommitMode::Sync)?;
        }
        for element in offsets.elements() {
            if let Offset::Offset(next) = element.offset() {
                self.committed.insert(element.partition(), next);
            }
        }
        self.counters.transactions.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn send(&self, record: &StatsRecord, wall: i64) -> Result<(), KafkaError> {
        let (key, value) = (record.key(), record.to_json());
        let headers = OwnedHeaders::new().insert(Header {
            key: "content-type",
            value: Some("application/json"),
        });
        let mut attempt = BaseRecord::to(self.settings.output.as_str())
            .key(key.as_bytes())
            .payload(value.as_slice())
            .headers(headers)
            .timestamp(wall);
        let deadline = Instant::now() + self.settings.timeout;
        loop {
            match self.producer.send(attempt) {
                Ok(()) => return Ok(()),
                // A full local queue is backpressure: wait for deliveries, within the bound.
                Err((
                    KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                    back,
                )) if Instant::now() < deadline => {
                    attempt = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(e),
            }
        }
    }
}

/// Counts one record of R2.
fn take(
    partitions: &mut HashMap<i32, PartitionWindows>,
    counters: &WorkerCounters,
    malformed_log: &mut LogThrottle,
    message: &BorrowedMessage<'_>,
) {
    let partition = message.partition();
    let Some(state) = partitions.get_mut(&partition) else {
        // Not (or no longer) ours: the restore after the next rebalance covers it.
        return;
    };
    let offset = message.offset();
    if offset < state.next_offset() {
        // Counted before the restore point: never twice.
        return;
    }
    let wall = now_ms();
    let timestamp = message.timestamp().to_millis().unwrap_or(wall);
    let value = message.payload().unwrap_or_default();
    match PageEvent::decode(value) {
        Ok(event) => {
            let outcome = state.record(offset, timestamp, &event.name, event.duration_ms, wall);
            let counter = match outcome {
                super::window::Outcome::Counted => &counters.counted,
                super::window::Outcome::Filtered => &counters.filtered,
                super::window::Outcome::Late => &counters.late,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            state.malformed(offset, timestamp, wall);
            counters.malformed.fetch_add(1, Ordering::Relaxed);
            if let Some(times) = malformed_log.hit() {
                tracing::warn!(partition, offset, times, error = %e, value = ?preview(value), "analytics: skipping records that are not PageEvents");
            }
        }
    }
}

/// Rebuilds the state of every partition assigned to `consumer` from R4 and the group's
/// committed offsets, into `partitions` and `committed_offsets` (both replaced).
fn restore(
    consumer: &BaseConsumer<AssignmentFlag>,
    client: &ClientSettings,
    settings: &WorkerSettings,
    partitions: &mut HashMap<i32, PartitionWindows>,
    committed_offsets: &mut HashMap<i32, i64>,
) -> Result<(), RunError> {
    partitions.clear();
    committed_offsets.clear();
    let assignment = consumer.assignment()?;
    let mine: Vec<i32> = assignment
        .elements_for_topic(settings.input.as_str())
        .iter()
        .map(|e| e.partition())
        .collect();
    if mine.is_empty() {
        return Ok(());
    }
    let committed = consumer.committed_offsets(assignment, settings.timeout)?;
    let mut starts = HashMap::new();
    for element in committed.elements_for_topic(settings.input.as_str()) {
        let offset = match element.offset() {
            Offset::Offset(n) => {
                committed_offsets.insert(element.partition(), n);
                n
            }
            // No commit yet: the group starts at the beginning of the partition.
            _ => 0,
        };
        starts.insert(element.partition(), offset);
    }
    let restored = read_stats(client, settings, &starts)?;
    let wall = now_ms();
    for partition in mine {
        let next = starts.get(&partition).copied().unwrap_or(0);
        let mut state = PartitionWindows::new(settings.spec, settings.min_duration_ms, next);
        let mut windows = 0;
        for record in restored.values().filter(|r| r.partition == partition) {
            state.restore(
                &record.page,
                record.window_start_ms,
                record.count,
                record.is_final,
                wall,
            );
            windows += 1;
        }
        tracing::info!(
            partition,
            offset = next,
            restored = windows,
            "analytics: partition assigned"
        );
        partitions.insert(partition, state);
    }
    Ok(())
}

/// Reads the whole output topic and keeps, per `(page, window, partition)` of the partitions
/// in `committed`, the record with the highest input offset within the committed offset.
fn read_stats(
    client: &ClientSettings,
    settings: &WorkerSettings,
    committed: &HashMap<i32, i64>,
) -> Result<HashMap<String, StatsRecord>, RunError> {
    let reader: BaseConsumer<QuietEof> = client
        .config(|c| {
            // A group id is required by librdkafka; this reader only assigns, never commits.
            c.set("group.id", format!("{}-restore", settings.group))
                .set("enable.auto.commit", "false")
                .set("enable.partition.eof", "true")
                // The committed offsets decide what counts, not the isolation level (both
                // test brokers show aborted records anyway), and a transaction left open by
                // a crashed worker must not stall the restore.
                .set("isolation.level", "read_uncommitted");
        })
        .create_with_context(QuietEof)?;
    let metadata = reader.fetch_metadata(Some(settings.output.as_str()), settings.timeout)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == settings.output.as_str())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(RunError::Restore(format!(
            "topic {} not found",
            settings.output
        )));
    }
    let mut list = TopicPartitionList::new();
    for partition in &partitions {
        list.add_partition_offset(settings.output.as_str(), *partition, Offset::Beginning)?;
    }
    reader.assign(&list)?;

    // The end: every partition reported EOF, then nothing more arrived for a while. (Tansu's
    // high watermark lags the real end after batched writes, so EOF alone can come early.)
    let deadline = Instant::now() + settings.timeout * 6;
    let mut at_end = std::collections::HashSet::new();
    let mut best: HashMap<String, StatsRecord> = HashMap::new();
    let mut quiet_since = None;
    loop {
        if Instant::now() > deadline {
            return Err(RunError::Restore(
                "reading the output topic took too long".into(),
            ));
        }
        match reader.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                quiet_since = None;
                let Some(record) = message.payload().and_then(StatsRecord::parse) else {
                    continue;
                };
                let Some(limit) = committed.get(&record.partition) else {
                    continue;
                };
                if record.input_offset > *limit {
                    // Written by a transaction that did not commit with its offsets.
                    continue;
                }
                let key = record.key();
                if best
                    .get(&key)
                    .is_none_or(|b| record.input_offset >= b.input_offset)
                {
                    best.insert(key, record);
                }
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                at_end.insert(partition);
            }
            Some(Err(e)) => return Err(e.into()),
            None => {
                if at_end.len() >= partitions.len() {
                    let since = *quiet_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= Duration::from_millis(500) {
                        return Ok(best);
                    }
                }
            }
        }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
