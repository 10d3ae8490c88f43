//! One run of the worker: a consumer in the group and a transactional producer, the poll
//! loop that drives them, and counting one record of R2 into its partition's windows.
//!
//! A run lives until shutdown, an abandon (test hook), or the first Kafka error; the
//! supervisor in [`super`] starts the next. The loop restores after every rebalance
//! ([`super::restore`]) and writes what changed ([`super::commit`]) when [`super::pace`] says;
//! both work on the state this file declares, which only this thread ever touches.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, OwnedHeaders};
use rdkafka::producer::{DefaultProducerContext, Producer as _, ThreadedProducer};
use rdkafka::{ClientContext, Message};
use streamgate::time::now_millis;
use tokio_util::sync::CancellationToken;

use super::decoder::{Decoded, Decoder};
use super::pace::{Due, Pace};
use super::pipeline::Pipeline;
use super::recovery::{Recovery, Treatment};
use super::{ABANDON_NOW, PANIC_NEXT, RUNNING, RunError, WorkerCounters, WorkerSettings};
use crate::analytics::committed::{CommittedOffsets, WithoutCommit};
use crate::analytics::window::{Outcome, PartitionWindows, WindowUpdate};
use crate::kafka::ClientSettings;
use crate::kafka::dead_letter::DeadLetter;
use crate::kafka::lag::LagReporter;
use crate::logs::{LogThrottle, preview};

/// Dead letters pending before a commit comes early.
const MAX_PENDING_DEAD_LETTERS: usize = 10_000;
/// Bytes of pending dead letters (keys, values, headers) before a commit comes early.
const MAX_PENDING_DEAD_LETTER_BYTES: usize = 16 * 1024 * 1024;
/// Within a run of polls that all return records, how often the shutdown token is looked at.
const SHUTDOWN_CHECK_EVERY: u32 = 256;

/// Sets a flag when the group assignment changed, and reports the group's lag; runs inside
/// `poll`, on the worker thread.
pub(super) struct AssignmentFlag {
    changed: AtomicBool,
    lag: LagReporter,
}

impl ClientContext for AssignmentFlag {
    fn stats_raw(&self, statistics: &[u8]) {
        self.lag.report(statistics);
    }
}

impl ConsumerContext for AssignmentFlag {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Error(e) = rebalance {
            tracing::warn!(error = %e, "analytics: rebalance failed");
        }
        self.changed.store(true, Ordering::Release);
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
    /// Shared with the poll loop, whose messages borrow it while they wait to be counted.
    pub(super) consumer: Arc<BaseConsumer<AssignmentFlag>>,
    pub(super) producer: ThreadedProducer<DefaultProducerContext>,
    pub(super) state: State,
    pub(super) malformed_log: LogThrottle,
    pub(super) updates: Vec<WindowUpdate>,
    /// Dead letters to write in the next transaction.
    pub(super) dead_letters: DeadLetters,
    /// What failed before, across runs: isolation and poisoned records.
    pub(super) recovery: &'a mut Recovery,
}

/// A record's dead letter, owned: it waits for the tick's transaction.
pub(super) struct PendingDeadLetter {
    pub(super) key: Option<Vec<u8>>,
    pub(super) value: Option<Vec<u8>>,
    pub(super) headers: OwnedHeaders,
}

/// The dead letters of the records taken since the last commit.
#[derive(Default)]
pub(super) struct DeadLetters {
    pub(super) pending: Vec<PendingDeadLetter>,
    bytes: usize,
}

impl DeadLetters {
    /// Keeps the dead letter of `message`, refused for `reason`.
    fn push(&mut self, message: &BorrowedMessage<'_>, reason: &str) {
        let letter = DeadLetter::of(message, reason);
        let (key, value) = (
            letter.key.map(<[u8]>::to_vec),
            letter.value.map(<[u8]>::to_vec),
        );
        self.bytes += key.as_ref().map_or(0, Vec::len)
            + value.as_ref().map_or(0, Vec::len)
            + reason.len()
            + 256;
        self.pending.push(PendingDeadLetter {
            key,
            value,
            headers: letter.headers,
        });
    }

    /// Enough is pending that the commit should not wait for the tick.
    fn full(&self) -> bool {
        self.pending.len() >= MAX_PENDING_DEAD_LETTERS
            || self.bytes >= MAX_PENDING_DEAD_LETTER_BYTES
    }

    /// Forgets them (they were committed).
    pub(super) fn clear(&mut self) {
        self.pending.clear();
        self.bytes = 0;
    }
}

/// The run's producer, its transactions initialised. Its `transactional.id` is the worker's:
/// a new one fences every earlier producer of the worker, and the broker aborts the
/// transaction that one left open.
pub(super) fn transactional_producer(
    client: &ClientSettings,
    settings: &WorkerSettings,
) -> Result<ThreadedProducer<DefaultProducerContext>, KafkaError> {
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
    Ok(producer)
}

impl<'a> Run<'a> {
    pub(super) fn start(
        client: &'a ClientSettings,
        settings: &'a WorkerSettings,
        counters: &'a WorkerCounters,
        shutdown: &'a CancellationToken,
        abandon: &'a AtomicU8,
        recovery: &'a mut Recovery,
    ) -> Result<Self, RunError> {
        let consumer: BaseConsumer<AssignmentFlag> = client
            .config(|c| {
                c.set("group.id", &settings.group)
                    .set("enable.auto.commit", "false")
                    .set("auto.offset.reset", "earliest")
                    .set("isolation.level", "read_committed")
                    .set("session.timeout.ms", "10000")
                    .set("heartbeat.interval.ms", "2000");
                crate::kafka::consumer::prefetch(c, 8192);
                crate::kafka::consumer::stage_fetch_wait(c, settings.tick);
                crate::kafka::lag::enable(c);
            })
            .create_with_context(AssignmentFlag {
                changed: AtomicBool::new(false),
                lag: client.lag_reporter(&settings.group),
            })?;
        let producer = transactional_producer(client, settings)?;
        consumer.subscribe(&[settings.input.as_str()])?;
        tracing::info!(input = %settings.input, output = %settings.output, group = %settings.group, transactional_id = %settings.transactional_id, "analytics worker started");
        Ok(Self {
            settings,
            client,
            counters,
            shutdown,
            abandon,
            consumer: Arc::new(consumer),
            producer,
            state: State {
                partitions: HashMap::new(),
                committed: CommittedOffsets::new(WithoutCommit::FromStart),
            },
            malformed_log: LogThrottle::new(Duration::from_secs(5)),
            updates: Vec::new(),
            dead_letters: DeadLetters::default(),
            recovery,
        })
    }

    pub(super) fn serve(&mut self) -> Result<(), RunError> {
        // The loop polls through its own handle: the messages in the pipeline borrow it
        // while `self` is borrowed mutably to count and commit.
        let consumer = Arc::clone(&self.consumer);
        let max_name = self.settings.max_page_name_bytes;
        let mut pipeline = Pipeline::new(Decoder::start(max_name)?, max_name);
        let mut now = Instant::now();
        let mut pace = Pace::new(self.settings.tick, now);
        let mut wall = WallClock::anchored(now);
        // Polls since the shutdown token was last looked at (it takes a lock): at every poll
        // that found nothing, and every SHUTDOWN_CHECK_EVERY polls within a burst.
        let mut unchecked = 0;
        loop {
            match self.abandon.load(Ordering::Acquire) {
                ABANDON_NOW => return Err(RunError::Abandoned),
                PANIC_NEXT => {
                    self.abandon.store(RUNNING, Ordering::Release);
                    panic!("injected panic (test hook)");
                }
                _ => {}
            }
            if unchecked == 0 && self.shutdown.is_cancelled() {
                // Write what is counted, so a restart has less to redo; then leave.
                if !self.assignment_changed() {
                    self.count(&mut pipeline, Drain::All, wall.at(now))?;
                    let _ = self.commit();
                }
                return Ok(());
            }
            let polled = consumer.poll(pace.wait(now));
            // One clock read per record: the wall clock, the pace and the next poll's wait
            // all go by it.
            now = Instant::now();
            // A rebalance runs inside `poll`: restore before counting what it returned (the
            // record may be the first of a newly assigned partition).
            if self.assignment_changed() {
                self.restore(&mut pipeline)?;
                // A restore reads R4 for a while: the record is taken at the clock's time.
                now = Instant::now();
            }
            let record = matches!(polled, Some(Ok(_)));
            unchecked = if record {
                (unchecked + 1) % SHUTDOWN_CHECK_EVERY
            } else {
                0
            };
            match polled {
                Some(Ok(message)) => pipeline.push(message),
                Some(Err(e)) => tracing::debug!(error = %e, "analytics: consumer error"),
                None => {}
            }
            // Isolating (see `recovery`): every record is counted, and committed, on its own.
            // A poll that found nothing: the worker caught up, count what is in flight.
            if !record || self.recovery.isolating() {
                self.count(&mut pipeline, Drain::All, wall.at(now))?;
            } else if pipeline.is_full() {
                self.count(&mut pipeline, Drain::Ready, wall.at(now))?;
            }
            let pending = self.recovery.taken_since_commit() > 0 || !pipeline.is_empty();
            // Many dead letters pending: commit before the tick.
            let early = (self.recovery.isolating() && pending) || self.dead_letters.full();
            let due = pace.polled(record, pending, now);
            if early || due.is_some() {
                if self.assignment_changed() {
                    self.restore(&mut pipeline)?;
                } else {
                    self.count(&mut pipeline, Drain::All, wall.at(now))?;
                    self.commit()?;
                }
                now = Instant::now();
                if let Some(due) = due {
                    pace.committed(due, now);
                    if due == Due::Tick {
                        wall = WallClock::anchored(now);
                    }
                }
            }
        }
    }

    /// Counts what the pipeline has decoded (`Drain::Ready`: the batch the decoder holds,
    /// handing it the next) or everything in it (`Drain::All`).
    fn count(
        &mut self,
        pipeline: &mut Pipeline<'_>,
        drain: Drain,
        wall: i64,
    ) -> Result<(), RunError> {
        let mut intake = Intake {
            state: &mut self.state,
            settings: self.settings,
            counters: self.counters,
            malformed_log: &mut self.malformed_log,
            dead_letters: &mut self.dead_letters,
            recovery: self.recovery,
        };
        let count = |message: &BorrowedMessage<'_>, decoded: Decoded<'_>| {
            take(&mut intake, message, decoded, wall);
        };
        match drain {
            Drain::Ready => pipeline.advance(count)?,
            Drain::All => pipeline.count_all(count)?,
        }
        Ok(())
    }

    /// Rebuilds the state after an assignment change; what was polled or taken since the
    /// last commit is dropped with it (the consumer reads it again).
    fn restore(&mut self, pipeline: &mut Pipeline<'_>) -> Result<(), RunError> {
        pipeline.discard()?;
        self.dead_letters.clear();
        self.recovery.run_ended();
        self.state
            .restore(&self.consumer, self.client, self.settings, self.counters)?;
        let state = &self.state;
        self.recovery
            .retain_partitions(|p| state.partitions.contains_key(&p));
        Ok(())
    }

    fn assignment_changed(&self) -> bool {
        self.consumer
            .context()
            .changed
            .swap(false, Ordering::AcqRel)
    }
}

/// How much of the pipeline [`Run::count`] counts.
#[derive(Clone, Copy)]
enum Drain {
    Ready,
    All,
}

/// The wall clock read through the monotonic one, so that a record costs one clock read,
/// not two. Anchored afresh at every tick: a step of the system clock shows within a tick.
struct WallClock {
    at: Instant,
    wall_ms: i64,
}

impl WallClock {
    /// Reads the wall clock, as of `now` (just read).
    fn anchored(now: Instant) -> Self {
        Self {
            at: now,
            wall_ms: now_millis(),
        }
    }

    /// Epoch milliseconds at `now`.
    fn at(&self, now: Instant) -> i64 {
        let since = now.saturating_duration_since(self.at).as_millis();
        self.wall_ms
            .saturating_add(i64::try_from(since).unwrap_or(i64::MAX))
    }
}

/// What counting one record touches: the run's parts apart from the consumer (which the
/// polled message borrows).
struct Intake<'r> {
    state: &'r mut State,
    settings: &'r WorkerSettings,
    counters: &'r WorkerCounters,
    malformed_log: &'r mut LogThrottle,
    dead_letters: &'r mut DeadLetters,
    recovery: &'r mut Recovery,
}

/// Counts one record of R2 (its value `decoded` as a PageEvent), or dead-letters it.
fn take(intake: &mut Intake<'_>, message: &BorrowedMessage<'_>, decoded: Decoded<'_>, wall: i64) {
    let partition = message.partition();
    let Some(windows) = intake.state.partitions.get_mut(&partition) else {
        // Not (or no longer) ours: the restore after the next rebalance covers it.
        return;
    };
    let offset = message.offset();
    if offset < windows.next_offset() {
        // Counted before the restore point: never twice.
        return;
    }
    let counters = intake.counters;
    // Before looking at it: a panic from here on is this record's (see `recovery`).
    intake.recovery.taken(partition, offset);
    match intake.recovery.treatment(partition, offset) {
        Treatment::Process => {}
        Treatment::DeadLetter(reason) => {
            windows.skip(offset);
            tracing::warn!(
                partition,
                offset,
                reason,
                "analytics: dead-lettering a record whose transaction failed"
            );
            intake
                .dead_letters
                .push(message, &format!("its transaction failed: {reason}"));
            return;
        }
        Treatment::Skip(reason) => {
            windows.skip(offset);
            counters.skipped.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                partition,
                offset,
                reason,
                "analytics: passing over a record that neither its transaction nor its dead letter could take"
            );
            return;
        }
    }
    let timestamp = message.timestamp().to_millis().unwrap_or(wall);
    let reason = match decoded {
        Decoded::NameTooLong(len) => {
            windows.malformed(offset, timestamp, wall);
            counters.malformed.fetch_add(1, Ordering::Relaxed);
            format!(
                "the page name has {len} bytes, more than the limit of {} \
                 (--max-page-name-bytes)",
                intake.settings.max_page_name_bytes
            )
        }
        Decoded::Event { name, duration_ms } => {
            let outcome = windows.record(offset, timestamp, name, duration_ms, wall);
            let counter = match outcome {
                Outcome::Counted => &counters.counted,
                Outcome::Filtered => &counters.filtered,
                Outcome::Late => &counters.late,
                Outcome::Future => &counters.future,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            if outcome != Outcome::Future {
                return;
            }
            format!(
                "timestamp {timestamp} is more than {} ms ahead of the worker's clock ({wall}) \
                 (--max-event-skew)",
                intake.settings.spec.max_skew_ms()
            )
        }
        Decoded::Malformed(error) => {
            windows.malformed(offset, timestamp, wall);
            counters.malformed.fetch_add(1, Ordering::Relaxed);
            error.to_owned()
        }
        // Raised here, after `taken`, as it would have been had this thread decoded it.
        Decoded::Panicked(panic) => panic!("decoding the record panicked: {panic}"),
    };
    let value = message.payload().unwrap_or_default();
    if let Some(times) = intake.malformed_log.hit() {
        tracing::warn!(partition, offset, times, reason, value = ?preview(value), "analytics: dead-lettering records the worker cannot count");
    }
    intake.dead_letters.push(message, &reason);
}
