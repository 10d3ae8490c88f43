//! The analytics worker: consumes R2 in a consumer group, counts with
//! [`PartitionWindows`](super::window::PartitionWindows) (one per assigned partition), and
//! once per tick writes what changed to R4 — input offsets and R4 records in one Kafka
//! transaction, so a crash neither loses nor double-counts.
//!
//! It is one thread that owns all window state (an actor with Kafka as its only inbox): the
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
//!   A record that is not a PageEvent is counted and skipped; the worker never stops on
//!   bad data.
//! - `commit.rs`: the changed windows and the input offsets, in one transaction.
//! - `restore.rs`: the assigned partitions' windows, rebuilt from R4 within the group's
//!   committed offsets (the rule lives in [`committed`](super::committed)).

mod commit;
mod restore;
mod run;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use streamgate::topic::TopicName;
use tokio_util::sync::CancellationToken;

use super::window::WindowSpec;
use crate::kafka::ClientSettings;
use run::Run;

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
