//! The stats hub: reads R4 from every partition, sums the per-partition counts into global
//! per-page counts per window, and once per tick publishes a snapshot to every watcher.
//!
//! Fan-out is a `watch` channel: each watcher sees the latest snapshot when it is ready for
//! one, so a slow watcher skips ticks (and is told how many) instead of queueing them, and
//! a thousand watchers cost one snapshot per tick between them.
//!
//! A count in R4 is per `(page, window, R2 partition)`; the hub keeps, per such cell, the
//! record with the highest `input_offset` that is within the workers' committed offset of
//! that partition (like the restore: records of an aborted or unfinished transaction carry
//! offsets beyond the commit; newer ones wait until the commit reaches them). A window's
//! total is the sum over partitions — which is why two servers that split R2's partitions
//! show the same global counts. The hub reads `read_uncommitted`, so a transaction left open
//! by a crashed worker never stalls it; the committed offsets decide instead.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use streamgate::topic::TopicName;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::record::StatsRecord;
use super::window::WindowSpec;
use crate::kafka::ClientSettings;
use crate::logs::LogThrottle;

/// Most pages the hub tracks; beyond this, new page names are not added to the page list
/// (their counts still show in the windows they appear in).
const MAX_PAGES: usize = 10_000;

/// The global counts of one window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowTotals {
    /// Window end, epoch ms (exclusive).
    pub end_ms: i64,
    /// Page → count, summed over R2 partitions.
    pub pages: BTreeMap<String, u64>,
    /// Every count of the window is final and its grace period is over.
    pub is_final: bool,
}

/// What every watcher sees at one tick.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Tick number; a watcher that sees tick 7 after tick 4 skipped 2.
    pub tick: u64,
    /// Wall time of the snapshot, epoch ms.
    pub generated_at_ms: i64,
    /// Window start → totals, for the retained windows.
    pub windows: BTreeMap<i64, WindowTotals>,
    /// Every page seen, sorted.
    pub pages: Arc<BTreeSet<String>>,
}

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
    /// How much history is kept (rolling counts can reach this far back).
    pub retention: Duration,
}

/// A handle on the running hub.
#[derive(Clone)]
pub struct Hub {
    snapshots: watch::Receiver<Arc<Snapshot>>,
    settings: HubSettings,
}

impl Hub {
    /// Starts the hub; it stops when `shutdown` is cancelled.
    pub fn spawn(
        client: ClientSettings,
        settings: HubSettings,
        shutdown: CancellationToken,
    ) -> Result<(Self, JoinHandle<()>), rdkafka::error::KafkaError> {
        let consumer: StreamConsumer = client
            .config(|c| {
                // The workers' group, to read its committed offsets; the hub only assigns,
                // never joins the group and never commits.
                c.set("group.id", &settings.group)
                    .set("enable.auto.commit", "false")
                    .set("isolation.level", "read_uncommitted")
                    .set("queued.max.messages.kbytes", "4096");
            })
            .create()?;
        let first = Arc::new(Snapshot {
            tick: 0,
            generated_at_ms: now_ms(),
            windows: BTreeMap::new(),
            pages: Arc::new(BTreeSet::new()),
        });
        let (publish, snapshots) = watch::channel(first);
        let state = Totals::new(settings.spec, settings.retention);
        let task = tokio::spawn(run(consumer, settings.clone(), state, publish, shutdown));
        Ok((
            Self {
                snapshots,
                settings,
            },
            task,
        ))
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

async fn run(
    consumer: StreamConsumer,
    settings: HubSettings,
    mut totals: Totals,
    publish: watch::Sender<Arc<Snapshot>>,
    shutdown: CancellationToken,
) {
    let consumer = Arc::new(consumer);
    let mut ticker = tokio::time::interval(settings.tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut assigned = false;
    let mut problems = LogThrottle::new(Duration::from_secs(30));
    let mut tick = 0;
    let mut fetching: Option<JoinHandle<Result<HashMap<i32, i64>, rdkafka::error::KafkaError>>> =
        None;
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(fetched) = async { fetching.as_mut()?.await.ok() }, if fetching.is_some() => {
                fetching = None;
                match fetched {
                    Ok(committed) => totals.set_committed(committed),
                    Err(e) => if let Some(times) = problems.hit() {
                        tracing::warn!(error = %e, times, "stats hub: cannot read the workers' committed offsets; retrying");
                    },
                }
            }
            _ = ticker.tick() => {
                if fetching.is_none() {
                    fetching = Some(committed_offsets(consumer.clone(), settings.input.clone()));
                }
                if !assigned {
                    match assign(&consumer, &settings).await {
                        Ok(()) => assigned = true,
                        Err(e) => if let Some(times) = problems.hit() {
                            tracing::warn!(topic = %settings.topic, error = %e, times, "stats hub: cannot read the stats topic yet; retrying");
                        },
                    }
                }
                tick += 1;
                let snapshot = totals.snapshot(tick, now_ms());
                publish.send_replace(Arc::new(snapshot));
            }
            message = consumer.recv(), if assigned => match message {
                Ok(message) => {
                    if let Some(record) = message.payload().and_then(StatsRecord::parse) {
                        totals.apply(record);
                    }
                }
                Err(e) => if let Some(times) = problems.hit() {
                    tracing::warn!(error = %e, times, "stats hub: consumer error; carrying on");
                },
            },
        }
    }
    let _ = tokio::task::spawn_blocking(move || drop(consumer)).await;
}

/// Reads the workers' committed offset of every partition of `input`, in the background.
fn committed_offsets(
    consumer: Arc<StreamConsumer>,
    input: TopicName,
) -> JoinHandle<Result<HashMap<i32, i64>, rdkafka::error::KafkaError>> {
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
async fn assign(
    consumer: &Arc<StreamConsumer>,
    settings: &HubSettings,
) -> Result<(), rdkafka::error::KafkaError> {
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
            return Err(rdkafka::error::KafkaError::MetadataFetch(
                rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition,
            ));
        }
        let since = now_ms() - i64::try_from(settings.retention.as_millis()).unwrap_or(i64::MAX);
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
    .map_err(|_| rdkafka::error::KafkaError::Canceled)?
}

/// One cell: a page in a window, for one R2 partition.
#[derive(Debug, Clone, Copy)]
struct Cell {
    input_offset: i64,
    count: u64,
    is_final: bool,
}

/// What the hub holds for one cell: the count it shows, and a newer record that waits for
/// the commit to reach its offset.
#[derive(Debug, Clone, Copy, Default)]
struct CellState {
    accepted: Option<Cell>,
    pending: Option<Cell>,
}

/// One window's cells: its end, and page → R2 partition → cell.
type WindowCells = (i64, HashMap<String, HashMap<i32, CellState>>);

/// The hub's state: every retained cell.
#[derive(Debug)]
pub struct Totals {
    spec: WindowSpec,
    retention_ms: i64,
    /// Window start → (end, page → partition → cell).
    windows: BTreeMap<i64, WindowCells>,
    pages: Arc<BTreeSet<String>>,
    newest_end: i64,
    /// The workers' committed offsets; `None` until first read. A partition without a
    /// commit (a broker that keeps none) accepts records as they come.
    committed: Option<HashMap<i32, i64>>,
}

impl Totals {
    /// Empty state.
    pub fn new(spec: WindowSpec, retention: Duration) -> Self {
        Self {
            spec,
            retention_ms: i64::try_from(retention.as_millis()).unwrap_or(i64::MAX),
            windows: BTreeMap::new(),
            pages: Arc::new(BTreeSet::new()),
            newest_end: i64::MIN,
            committed: None,
        }
    }

    /// Takes the workers' committed offsets and accepts the records they now cover.
    pub fn set_committed(&mut self, committed: HashMap<i32, i64>) {
        for (_, pages) in self.windows.values_mut() {
            for partitions in pages.values_mut() {
                for (partition, state) in partitions.iter_mut() {
                    if let Some(pending) = state.pending
                        && committed
                            .get(partition)
                            .is_none_or(|c| pending.input_offset <= *c)
                    {
                        if state
                            .accepted
                            .is_none_or(|a| a.input_offset <= pending.input_offset)
                        {
                            state.accepted = Some(pending);
                        }
                        state.pending = None;
                    }
                }
            }
        }
        self.committed = Some(committed);
    }

    /// Takes one R4 record.
    pub fn apply(&mut self, record: StatsRecord) {
        if record.window_end_ms <= self.newest_end.saturating_sub(self.retention_ms) {
            return;
        }
        self.newest_end = self.newest_end.max(record.window_end_ms);
        if !self.pages.contains(&record.page) && self.pages.len() < MAX_PAGES {
            Arc::make_mut(&mut self.pages).insert(record.page.clone());
        }
        let (_, pages) = self
            .windows
            .entry(record.window_start_ms)
            .or_insert_with(|| (record.window_end_ms, HashMap::new()));
        let cell = Cell {
            input_offset: record.input_offset,
            count: record.count,
            is_final: record.is_final,
        };
        let state = pages
            .entry(record.page)
            .or_default()
            .entry(record.partition)
            .or_default();
        let covered = self.committed.as_ref().map(|committed| {
            committed
                .get(&record.partition)
                .is_none_or(|c| cell.input_offset <= *c)
        });
        let slot = if covered == Some(true) {
            &mut state.accepted
        } else {
            &mut state.pending
        };
        if slot.is_none_or(|existing| existing.input_offset <= cell.input_offset) {
            *slot = Some(cell);
        }
        // Forget what fell out of the retained history.
        let horizon = self.newest_end.saturating_sub(self.retention_ms);
        while let Some((&start, (end, _))) = self.windows.first_key_value() {
            if *end > horizon {
                break;
            }
            self.windows.remove(&start);
        }
    }

    /// The global totals at wall time `now_ms`.
    pub fn snapshot(&self, tick: u64, now_ms: i64) -> Snapshot {
        let windows = self
            .windows
            .iter()
            .filter_map(|(start, (end, pages))| {
                let mut all_final = true;
                let totals: BTreeMap<String, u64> = pages
                    .iter()
                    .filter_map(|(page, partitions)| {
                        // Something newer waits for its commit: not final yet.
                        all_final &= partitions.values().all(|s| s.pending.is_none());
                        let cells: Vec<Cell> =
                            partitions.values().filter_map(|s| s.accepted).collect();
                        all_final &= cells.iter().all(|c| c.is_final);
                        (!cells.is_empty())
                            .then(|| (page.clone(), cells.iter().map(|c| c.count).sum()))
                    })
                    .collect();
                let grace_over = now_ms >= end.saturating_add(self.spec.grace_ms());
                (!totals.is_empty()).then_some((
                    *start,
                    WindowTotals {
                        end_ms: *end,
                        pages: totals,
                        is_final: all_final && grace_over,
                    },
                ))
            })
            .collect();
        Snapshot {
            tick,
            generated_at_ms: now_ms,
            windows,
            pages: self.pages.clone(),
        }
    }
}

/// The window a live view shows at `now_ms`: the one containing now, unless the data is
/// all older than that (a replay, or a stopped source), then the newest window with data.
pub fn current_window(snapshot: &Snapshot, spec: &WindowSpec, now_ms: i64) -> (i64, i64) {
    let here = spec.tile_start(now_ms);
    match snapshot.windows.iter().next_back() {
        Some((start, totals))
            if totals
                .end_ms
                .saturating_add(spec.grace_ms())
                .saturating_add(spec.size_ms())
                < now_ms =>
        {
            (*start, totals.end_ms)
        }
        _ => (here, here + spec.size_ms()),
    }
}

/// Each page's count over `[now - rolling, now]`: whole windows inside the period count in
/// full; the one cut by the period's start counts pro rata (counts are per window, so this
/// is the finest the data allows). Tumbling-aligned windows only, so nothing counts twice.
pub fn rolling_counts(
    snapshot: &Snapshot,
    spec: &WindowSpec,
    now_ms: i64,
    rolling_ms: i64,
) -> HashMap<String, u64> {
    let from = now_ms - rolling_ms;
    let mut out: HashMap<String, f64> = HashMap::new();
    for (start, totals) in snapshot.windows.range(spec.tile_start(from)..=now_ms) {
        if start.rem_euclid(spec.size_ms()) != 0 || totals.end_ms - start != spec.size_ms() {
            continue;
        }
        // The current window's counts cover [start, now] only.
        let covered_end = totals.end_ms.min(now_ms);
        let span = covered_end - start;
        let overlap = covered_end - (*start).max(from);
        if span <= 0 || overlap <= 0 {
            continue;
        }
        let fraction = overlap as f64 / span as f64;
        for (page, count) in &totals.pages {
            *out.entry(page.clone()).or_default() += *count as f64 * fraction;
        }
    }
    out.into_iter()
        .map(|(page, value)| (page, value.round() as u64))
        .collect()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> WindowSpec {
        WindowSpec::tumbling(5_000, 1_000).expect("valid")
    }

    fn record(
        page: &str,
        start: i64,
        partition: i32,
        offset: i64,
        count: u64,
        fin: bool,
    ) -> StatsRecord {
        StatsRecord::new(
            page.into(),
            start,
            start + 5_000,
            partition,
            offset,
            count,
            fin,
        )
    }

    #[test]
    fn sums_partitions_and_keeps_the_latest_count_per_partition() {
        let mut totals = Totals::new(spec(), Duration::from_secs(600));
        totals.set_committed(HashMap::new());
        totals.apply(record("P1", 0, 0, 10, 3, false));
        totals.apply(record("P1", 0, 1, 7, 2, false));
        totals.apply(record("P1", 0, 0, 12, 4, false));
        // A stale (lower offset) record never wins, whatever order it arrives in.
        totals.apply(record("P1", 0, 0, 11, 9, false));
        totals.apply(record("P2", 0, 1, 8, 1, false));
        let snapshot = totals.snapshot(1, 100_000);
        let window = &snapshot.windows[&0];
        assert_eq!(window.pages["P1"], 6);
        assert_eq!(window.pages["P2"], 1);
        assert!(!window.is_final);
        assert_eq!(snapshot.pages.iter().collect::<Vec<_>>(), ["P1", "P2"]);
    }

    #[test]
    fn only_records_within_the_committed_offsets_count() {
        let mut totals = Totals::new(spec(), Duration::from_secs(600));
        // Before the commits are known, nothing shows.
        totals.apply(record("P1", 0, 0, 10, 3, false));
        assert!(totals.snapshot(1, 1_000).windows.is_empty());
        totals.set_committed(HashMap::from([(0, 10)]));
        assert_eq!(totals.snapshot(2, 1_000).windows[&0].pages["P1"], 3);
        // Beyond the commit (an aborted or unfinished transaction): waits, and keeps the
        // window from looking final.
        totals.apply(record("P1", 0, 0, 15, 9, true));
        let snapshot = totals.snapshot(3, 100_000);
        assert_eq!(snapshot.windows[&0].pages["P1"], 3);
        assert!(!snapshot.windows[&0].is_final);
        // The commit reaches it: it counts.
        totals.set_committed(HashMap::from([(0, 15)]));
        let snapshot = totals.snapshot(4, 100_000);
        assert_eq!(snapshot.windows[&0].pages["P1"], 9);
        assert!(snapshot.windows[&0].is_final);
    }

    #[test]
    fn a_window_is_final_when_every_count_is_and_grace_is_over() {
        let mut totals = Totals::new(spec(), Duration::from_secs(600));
        totals.set_committed(HashMap::new());
        totals.apply(record("P1", 0, 0, 10, 3, true));
        totals.apply(record("P2", 0, 1, 10, 3, false));
        assert!(!totals.snapshot(1, 100_000).windows[&0].is_final);
        totals.apply(record("P2", 0, 1, 11, 3, true));
        assert!(
            !totals.snapshot(1, 5_999).windows[&0].is_final,
            "grace not over"
        );
        assert!(totals.snapshot(1, 6_000).windows[&0].is_final);
    }

    #[test]
    fn old_windows_are_forgotten() {
        let mut totals = Totals::new(spec(), Duration::from_secs(10));
        totals.set_committed(HashMap::new());
        totals.apply(record("P1", 0, 0, 1, 1, true));
        totals.apply(record("P1", 20_000, 0, 2, 1, false));
        let snapshot = totals.snapshot(1, 25_000);
        assert_eq!(
            snapshot.windows.keys().copied().collect::<Vec<_>>(),
            [20_000]
        );
        totals.apply(record("P1", 0, 0, 3, 5, true));
        assert!(!totals.snapshot(2, 25_000).windows.contains_key(&0));
    }

    #[test]
    fn rolling_count_pro_rates_the_window_cut_by_the_period() {
        let mut totals = Totals::new(spec(), Duration::from_secs(600));
        totals.set_committed(HashMap::new());
        totals.apply(record("P1", 0, 0, 1, 10, true));
        totals.apply(record("P1", 5_000, 0, 2, 4, false));
        let snapshot = totals.snapshot(1, 7_000);
        // [2 s, 7 s]: 3/5 of the first window (6) + the current window so far (4).
        assert_eq!(rolling_counts(&snapshot, &spec(), 7_000, 5_000)["P1"], 10);
        // [6 s, 7 s]: half of what the current window counted over its 2 s.
        assert_eq!(rolling_counts(&snapshot, &spec(), 7_000, 1_000)["P1"], 2);
        assert_eq!(rolling_counts(&snapshot, &spec(), 7_000, 10_000)["P1"], 14);
    }

    #[test]
    fn the_live_window_is_now_unless_all_data_is_old() {
        let mut totals = Totals::new(spec(), Duration::from_secs(600));
        totals.set_committed(HashMap::new());
        totals.apply(record("P1", 10_000, 0, 1, 1, false));
        let snapshot = totals.snapshot(1, 12_000);
        assert_eq!(current_window(&snapshot, &spec(), 12_000), (10_000, 15_000));
        assert_eq!(current_window(&snapshot, &spec(), 16_000), (15_000, 20_000));
        assert_eq!(
            current_window(&snapshot, &spec(), 100_000),
            (10_000, 15_000)
        );
    }
}
