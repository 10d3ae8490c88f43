//! The stats hub: reads R4 from every partition, sums the per-partition counts into global
//! per-page counts per window, and once per tick publishes a snapshot to every watcher.
//!
//! Fan-out is a `watch` channel: each watcher sees the latest snapshot when it is ready for
//! one, so a slow watcher skips ticks (and is told how many) instead of queueing them, and
//! a thousand watchers cost one snapshot per tick between them.
//!
//! A count in R4 is per `(page, window, R2 partition)`; the hub keeps, per such cell, the
//! record with the highest `input_offset` that is within the workers' committed offset of
//! that partition (the same rule as the restore, in
//! [`committed`](crate::analytics::committed): records of an aborted or unfinished
//! transaction carry offsets beyond the commit; newer ones wait until the commit reaches
//! them). A window's total is the sum over partitions — which is why two servers that split
//! R2's partitions show the same global counts. The hub reads `read_uncommitted`, so a
//! transaction left open by a crashed worker never stalls it; the committed offsets decide
//! instead.
//!
//! The hub never dies for good: it runs under [`supervise`], so a panic is caught, logged,
//! counted, and a fresh run (a new consumer, the history read again from R4) starts after a
//! backoff; watchers keep their channel across runs and the tick number keeps growing.
//!
//! This file owns the task (an assign-only consumer of R4, the periodic read of the
//! workers' committed offsets, the ticker) and the [`Hub`] handle. The parts:
//!
//! - `reads.rs`: when the committed offsets are read (every tick, and soon after records
//!   arrive that wait for them), pure.
//! - `totals.rs`: the cells and their sums ([`Totals`]), pure.
//! - `view.rs`: what watchers see ([`Snapshot`]) and the live and rolling views of it.

mod reads;
mod totals;
mod view;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};
use streamgate::time::{millis_of_std, now_millis};
use streamgate::topic::TopicName;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::record::StatsRecord;
use super::window::WindowSpec;
use crate::kafka::ClientSettings;
use crate::kafka::consumer::{assign_only, close};
use crate::logs::LogThrottle;
use crate::supervisor::{Restarts, supervise};
use reads::Reads;
pub use totals::Totals;
pub use view::{Snapshot, WindowTotals, current_window, rolling_counts};

/// Hub settings.
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// The workers' input topic (R2), whose committed offsets validate R4 records.
    pub input: TopicName,
    /// The workers' consumer group.
    pub group: String,
    /// The topic of windowed counts (R4).
    pub topic: TopicName,
    /// The window shape the workers use.
    pub spec: WindowSpec,
    /// How often a snapshot is published.
    pub tick: Duration,
    /// How much history is kept (rolling counts can reach this far back); a page not seen
    /// in it is forgotten.
    pub retention: Duration,
    /// How far ahead of the wall clock a window may start and still be taken (the workers'
    /// event skew allowance and a window): a record from further ahead is ignored, as it
    /// would move the retention horizon past every real record.
    pub max_ahead: Duration,
}

/// A handle on the running hub.
#[derive(Clone)]
pub struct Hub {
    snapshots: watch::Receiver<Arc<Snapshot>>,
    settings: HubSettings,
    restarts: Arc<Restarts>,
}

/// What every run of the hub shares: the watchers' channel and the tick count.
struct Shared {
    publish: watch::Sender<Arc<Snapshot>>,
    ticks: AtomicU64,
}

impl Hub {
    /// Starts the hub under supervision, its task tracked by `tasks`; it stops when
    /// `shutdown` is cancelled.
    pub fn spawn(
        client: ClientSettings,
        settings: HubSettings,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Result<(Self, JoinHandle<()>), KafkaError> {
        // The first run's consumer, made here so that a configuration error stops the start.
        let mut first_consumer = Some(consumer(&client, &settings)?);
        let first = Arc::new(Snapshot {
            tick: 0,
            generated_at_ms: now_millis(),
            windows: BTreeMap::new(),
            pages: Arc::new(BTreeSet::new()),
        });
        let (publish, snapshots) = watch::channel(first);
        let shared = Arc::new(Shared {
            publish,
            ticks: AtomicU64::new(0),
        });
        let (run_settings, token) = (settings.clone(), shutdown.clone());
        let (task, restarts) = supervise(tasks, &shutdown, "stats hub", move || {
            let made = first_consumer.take();
            let (client, settings) = (client.clone(), run_settings.clone());
            let (shared, shutdown) = (shared.clone(), token.clone());
            async move {
                let consumer = match made {
                    Some(consumer) => consumer,
                    None => match crate::kafka::consumer::make_until_ready(
                        "stats hub",
                        || consumer(&client, &settings),
                        Duration::from_secs(5),
                        &shutdown,
                    )
                    .await
                    {
                        Some(consumer) => consumer,
                        None => return,
                    },
                };
                let totals = Totals::new(settings.spec, settings.retention, settings.max_ahead);
                run(consumer, settings, totals, &shared, shutdown).await;
            }
        });
        Ok((
            Self {
                snapshots,
                settings,
                restarts,
            },
            task,
        ))
    }

    /// How many times the hub was restarted after a panic.
    pub fn restarts(&self) -> u64 {
        self.restarts.count()
    }

    /// A receiver of snapshots, marked as having seen none.
    pub fn watch(&self) -> watch::Receiver<Arc<Snapshot>> {
        let mut receiver = self.snapshots.clone();
        receiver.mark_changed();
        receiver
    }

    /// The hub's settings.
    pub fn settings(&self) -> &HubSettings {
        &self.settings
    }
}

/// The hub's consumer of R4: the workers' group, to read its committed offsets; the hub
/// only assigns, never joins the group and never commits.
fn consumer(client: &ClientSettings, settings: &HubSettings) -> Result<StreamConsumer, KafkaError> {
    assign_only(client, &settings.group, |c| {
        c.set("isolation.level", "read_uncommitted");
        crate::kafka::consumer::prefetch(c, 4096);
        crate::kafka::consumer::stage_fetch_wait(c, settings.tick);
    })
    .create()
}

async fn run(
    consumer: StreamConsumer,
    settings: HubSettings,
    mut totals: Totals,
    shared: &Shared,
    shutdown: CancellationToken,
) {
    let consumer = Arc::new(consumer);
    let mut ticker = tokio::time::interval(settings.tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut assigned = false;
    let mut problems = LogThrottle::new(Duration::from_secs(30));
    let mut fetching: Option<JoinHandle<Result<HashMap<i32, i64>, KafkaError>>> = None;
    let mut reads = Reads::new(settings.tick);
    let read = |reads: &mut Reads| {
        reads.started();
        Some(committed_offsets(consumer.clone(), settings.input.clone()))
    };
    loop {
        let early_read = reads.due();
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            // Every outcome, a failed task included, clears `fetching`: a finished handle is
            // never polled again, and the next tick starts a new read.
            joined = fetched(&mut fetching), if fetching.is_some() => {
                fetching = None;
                let waiting = match joined {
                    Ok(Ok(committed)) => totals.set_committed(committed),
                    Ok(Err(e)) => {
                        if let Some(times) = problems.hit() {
                            tracing::warn!(error = %e, times, "stats hub: cannot read the workers' committed offsets; retrying");
                        }
                        true
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "stats hub: the read of the workers' committed offsets failed; retrying");
                        true
                    }
                };
                reads.finished(waiting, Instant::now());
            }
            // Records wait for their commit: read it before the tick (see `reads.rs`).
            _ = sleep_until(early_read), if fetching.is_none() && early_read.is_some() => {
                fetching = read(&mut reads);
            }
            _ = ticker.tick() => {
                if fetching.is_none() {
                    fetching = read(&mut reads);
                }
                if !assigned {
                    match assign(&consumer, &settings).await {
                        Ok(()) => assigned = true,
                        Err(e) => if let Some(times) = problems.hit() {
                            tracing::warn!(topic = %settings.topic, error = %e, times, "stats hub: cannot read the stats topic yet; retrying");
                        },
                    }
                }
                let tick = shared.ticks.fetch_add(1, Ordering::Relaxed) + 1;
                let snapshot = totals.snapshot(tick, now_millis());
                shared.publish.send_replace(Arc::new(snapshot));
            }
            message = consumer.recv(), if assigned => match message {
                Ok(message) => {
                    if let Some(record) = message.payload().and_then(StatsRecord::parse)
                        && totals.apply(record, now_millis())
                    {
                        reads.waiting_arrived(Instant::now());
                    }
                }
                Err(e) => if let Some(times) = problems.hit() {
                    tracing::warn!(error = %e, times, "stats hub: consumer error; carrying on");
                },
            },
        }
    }
    close(consumer).await;
}

/// Ready at `due`; never without one.
async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due.into()).await,
        None => std::future::pending().await,
    }
}

/// The outcome of the committed-offsets read in flight; never ready without one.
async fn fetched(
    fetching: &mut Option<JoinHandle<Result<HashMap<i32, i64>, KafkaError>>>,
) -> Result<Result<HashMap<i32, i64>, KafkaError>, tokio::task::JoinError> {
    match fetching {
        Some(handle) => handle.await,
        None => std::future::pending().await,
    }
}

/// Reads the workers' committed offset of every partition of `input`, in the background.
fn committed_offsets(
    consumer: Arc<StreamConsumer>,
    input: TopicName,
) -> JoinHandle<Result<HashMap<i32, i64>, KafkaError>> {
    tokio::task::spawn_blocking(move || {
        let topic = input.as_str();
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(5))?;
        let mut list = TopicPartitionList::new();
        for t in metadata.topics().iter().filter(|t| t.name() == topic) {
            for p in t.partitions() {
                list.add_partition(topic, p.id());
            }
        }
        let committed = consumer.committed_offsets(list, Duration::from_secs(5))?;
        Ok(committed
            .elements_for_topic(topic)
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(n) => Some((e.partition(), n)),
                _ => None,
            })
            .collect())
    })
}

/// Assigns every partition of the stats topic, from the records of the last `retention`.
async fn assign(consumer: &Arc<StreamConsumer>, settings: &HubSettings) -> Result<(), KafkaError> {
    let (consumer, settings) = (consumer.clone(), settings.clone());
    tokio::task::spawn_blocking(move || {
        let topic = settings.topic.as_str();
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(5))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            return Err(KafkaError::MetadataFetch(
                RDKafkaErrorCode::UnknownTopicOrPartition,
            ));
        }
        let since = now_millis().saturating_sub(millis_of_std(settings.retention));
        let mut query = TopicPartitionList::new();
        for partition in &partitions {
            query.add_partition_offset(topic, *partition, Offset::Offset(since))?;
        }
        // Brokers that answer the time lookup wrongly (both test brokers do) get a read
        // from the beginning: slower to start, never wrong.
        let found = consumer
            .offsets_for_times(query, Duration::from_secs(5))
            .ok();
        let mut list = TopicPartitionList::new();
        for partition in partitions {
            let start = found
                .as_ref()
                .and_then(|f| f.find_partition(topic, partition))
                .map(|e| e.offset())
                .filter(|o| matches!(o, Offset::Offset(n) if *n > 0))
                .unwrap_or(Offset::Beginning);
            list.add_partition_offset(topic, partition, start)?;
        }
        consumer.assign(&list)
    })
    .await
    .map_err(|_| KafkaError::Canceled)?
}
