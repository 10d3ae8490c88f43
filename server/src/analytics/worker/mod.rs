//! The analytics worker: consumes R2 in a consumer group, counts with
//! [`PartitionWindows`](super::window::PartitionWindows) (one per assigned partition), and
//! once per tick writes what changed to R4 — input offsets and R4 records in one Kafka
//! transaction, so a crash neither loses nor double-counts.
//!
//! It is one thread that owns all window state (an actor with Kafka as its only inbox; a
//! second thread only decodes the values it polls, see `decoder.rs`): the
//! consume loop, the transactions and the restore are all blocking librdkafka calls, so a
//! plain thread is simpler and cheaper than async here. Nothing else touches the state; the
//! stats hub learns the counts by reading R4, like any other reader — which is what lets two
//! servers split R2's partitions and still show the same global counts.
//!
//! This file owns the handle ([`Worker`]), its settings and counters, and the supervisor:
//! any Kafka error inside a run ends that run, and the supervisor starts a fresh one (new
//! consumer and producer, restore from R4) after a backoff. One run's parts:
//!
//! - `run.rs`: the consumer and the transactional producer, the poll loop, counting a record.
//!   A record the worker cannot count — not a PageEvent, a page name longer than
//!   `max_page_name_bytes`, a timestamp more than `max_event_skew` ahead of the clock — is
//!   counted as such and put in the dead-letter topic; the worker never stops on bad data.
//! - `decoder.rs`, `pipeline.rs`: the values decoded on a second thread, in batches, while
//!   the worker polls the next ones; the messages wait on the worker's thread until their
//!   batch is back, and everything in flight is counted before a commit.
//! - `pace.rs`: when to commit — every tick, and once per tick as soon as a backlog is read.
//! - `commit.rs`: the changed windows, the dead letters and the input offsets, in one
//!   transaction: an aborted transaction's dead letters are aborted with it, and the next
//!   run dead-letters those records again.
//! - `restore.rs`: the assigned partitions' windows, rebuilt from R4 within the group's
//!   committed offsets (the rule lives in [`committed`](super::committed)).
//! - `recovery.rs`: the bound on restarts per input record (isolate, dead-letter, skip).
//!
//! A panic inside a run is caught here, logged, counted (`restarts` and
//! [`crate::supervisor::panics`]) and treated like a failed run: the thread never dies for
//! good.

mod commit;
mod decoder;
mod outage;
mod pace;
mod pipeline;
mod recovery;
mod restore;
mod run;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use streamgate::topic::TopicName;
use tokio_util::sync::CancellationToken;

use super::window::WindowSpec;
use crate::kafka::ClientSettings;
use recovery::Recovery;
use run::Run;

/// How the worker runs.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Input topic (R2).
    pub input: TopicName,
    /// Output topic (R4).
    pub output: TopicName,
    /// Dead-letter topic (`error.<input>.<group>`) for records the worker cannot count.
    pub dead_letters: TopicName,
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
    /// Records stamped further than this ahead of the worker's clock are dead-lettered.
    pub max_event_skew: Duration,
    /// Longer page names are dead-lettered (this keeps every R4 record small).
    pub max_page_name_bytes: usize,
    /// Distinct pages per window and partition; further pages count as `(other)`.
    pub max_pages: usize,
    /// The pause before the first restart after a failure; it doubles, up to 30 s, while
    /// runs keep failing.
    pub first_restart_backoff: Duration,
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
    /// Records that are not PageEvents, or whose page name is too long.
    pub malformed: AtomicU64,
    /// Records stamped more than `max_event_skew` ahead of the worker's clock.
    pub future: AtomicU64,
    /// Dead letters committed.
    pub dead_letters: AtomicU64,
    /// Records passed over because even their dead letter could not be written.
    pub skipped: AtomicU64,
    /// Transactions committed.
    pub transactions: AtomicU64,
    /// Transactions that failed and were aborted (their run restarts).
    pub aborted: AtomicU64,
    /// Transactional calls retried after a retriable failure (a broker outage, a
    /// reconnect), the transaction kept.
    pub transaction_retries: AtomicU64,
    /// Transactional producers replaced within a run: a failed transaction's abort did not
    /// go through after an outage, and a new producer fenced the stuck one.
    pub producer_replacements: AtomicU64,
    /// Time spent in transactions, committed or aborted, in microseconds: the worker counts
    /// nothing meanwhile.
    pub transaction_micros: AtomicU64,
    /// Runs that ended in an error or a panic and were restarted.
    pub restarts: AtomicU64,
    /// Restores completed (one per assignment with partitions).
    pub restores: AtomicU64,
    /// R4 records the restores read, all restores together: what a restore costs.
    pub restore_records_read: AtomicU64,
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
/// The next loop iteration panics (test hook), then the worker runs on.
const PANIC_NEXT: u8 = 3;

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
        mut settings: WorkerSettings,
        shutdown: CancellationToken,
    ) -> std::io::Result<Self> {
        // The limits travel with the spec, so that every window of every run (restored ones
        // included) keeps them.
        let skew_ms = i64::try_from(settings.max_event_skew.as_millis()).unwrap_or(i64::MAX);
        settings.spec = settings.spec.with_limits(skew_ms, settings.max_pages);
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

    /// Makes the worker's next loop iteration panic, as a bug would (feature `test-hooks`):
    /// the supervisor catches it and starts a fresh run.
    #[cfg(feature = "test-hooks")]
    pub fn inject_panic(&self) {
        self.abandon.store(PANIC_NEXT, Ordering::Release);
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
    /// A transaction with input in it failed: perhaps because of a record (see `recovery`).
    #[error("transaction failed: {0}")]
    Transaction(KafkaError),
    #[error("restoring from the output topic: {0}")]
    Restore(String),
    #[error("abandoned")]
    Abandoned,
    #[error(transparent)]
    Decoder(#[from] decoder::DecoderGone),
    #[error("starting the decoding thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// The longest pause between two restarts of the worker.
const MAX_RESTART_BACKOFF: Duration = Duration::from_secs(30);

fn supervise(
    client: &ClientSettings,
    settings: &WorkerSettings,
    counters: &WorkerCounters,
    shutdown: &CancellationToken,
    abandon: &AtomicU8,
) {
    let first_backoff = settings.first_restart_backoff;
    let mut backoff = first_backoff;
    let mut recovery = Recovery::default();
    loop {
        let started = Instant::now();
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let mut run = Run::start(client, settings, counters, shutdown, abandon, &mut recovery)?;
            run.serve()
        }));
        let reason = match outcome {
            Ok(Ok(())) | Ok(Err(RunError::Abandoned)) => return,
            Ok(Err(RunError::Transaction(e))) => {
                let reason = e.to_string();
                recovery.failed(&reason);
                format!("transaction failed: {reason}")
            }
            Ok(Err(e)) => {
                recovery.run_ended();
                e.to_string()
            }
            Err(panic) => {
                let reason = format!(
                    "the worker panicked: {}",
                    crate::supervisor::message(&*panic)
                );
                crate::supervisor::count_panic();
                tracing::error!(task = "analytics worker", panic = %crate::supervisor::message(&*panic), "task panicked");
                recovery.failed(&reason);
                reason
            }
        };
        counters.restarts.fetch_add(1, Ordering::Relaxed);
        // A run that lasted a while was healthy: start the backoff afresh.
        if started.elapsed() > Duration::from_secs(60) {
            backoff = first_backoff;
        }
        tracing::warn!(error = %reason, retry_in = ?backoff, isolating = recovery.isolating(), "analytics worker stopped; restarting from the last commit");
        let deadline = Instant::now() + backoff;
        while Instant::now() < deadline {
            if shutdown.is_cancelled() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        backoff = (backoff * 2).min(MAX_RESTART_BACKOFF);
    }
}
