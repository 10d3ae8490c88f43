//! Rebuilding the windows of the assigned partitions from R4, within the group's committed
//! offsets — what a run does whenever the group assignment changes.
//!
//! For each `(page, window, partition)` of an assigned partition the restore keeps the
//! record with the highest `input_offset` that is still within the group's committed
//! offset ([`BestRecords`]; a partition without a commit starts at 0, so nothing written for
//! it counts). Records of an aborted transaction (which both test brokers show even to
//! `read_committed` readers) or of a worker that died before committing carry offsets
//! beyond the commit and are ignored. The consumer then resumes at the committed offset,
//! and any record below a partition's restored offset is skipped.
//!
//! The reader is a separate, assign-only consumer, `read_uncommitted`: the committed offsets
//! decide what counts, and a transaction left open by a crashed worker must not stall the
//! restore.
//!
//! # Only what can still matter
//!
//! R4 keeps every update ever written (a week of them, say), but only the windows that can
//! still change matter to a restore, so it reads only the records written since a *horizon*,
//! not R4's whole history — its cost follows the window shape, not R4's age:
//!
//! ```text
//! anchor  = min(now, timestamp of the first R2 record at the committed offset), over the
//!           assigned partitions (now for a partition with nothing left to read)
//! horizon = anchor − (size + grace + max event skew + 3 ticks + CLOCK_MARGIN_MS)
//! ```
//!
//! and in each R4 partition it starts at the first offset whose record timestamp is at or
//! after the horizon (R4 records carry the wall time of their transaction as timestamp),
//! found by [`TimestampSearch`]: the broker's ListOffsets-by-time answer, checked, else a
//! binary search over record timestamps (both test brokers answer that lookup wrongly). From
//! there it reads to the end, as before.
//!
//! Why skipping the older records is safe:
//!
//! - A window gets a record only while it counts events, and an event counts only up to
//!   `--max-event-skew` (30 s by default) ahead of the worker's clock. So a
//!   record written before the horizon belongs to a window starting before
//!   `horizon + skew`, which closes (its end + grace) before `anchor − margin`.
//! - Such a window is final: from the anchor on, the partition's stream time is at least
//!   the anchor (the next record counted is the one at the committed offset, and stream time
//!   flows with the wall clock after it), so its count can no longer change and events for
//!   it are late anyway. Its last record, final or not, stays in R4 for every reader.
//! - Every window that can still change started after `horizon + skew`, so all of its
//!   records were written after the horizon and are read. The anchor is the resume point,
//!   not just the wall clock, so a worker catching up on a backlog after a long outage
//!   still restores the windows of that backlog.
//! - To make "final" hold without the skipped records, a restore that skipped any record
//!   starts each partition's stream time at `anchor − margin` at the least (as a restored
//!   final record would): a record for a skipped window that arrives later is late, as in a
//!   worker that never stopped, instead of restarting that window's count from zero.
//! - The margin (3 ticks + `CLOCK_MARGIN_MS`) covers the wall time a transaction takes
//!   between taking its timestamp and its commit, and clock differences between the
//!   servers that write R4 (the search assumes timestamps grow with offsets, which several
//!   writers only roughly keep).
//!
//! [`WorkerCounters::restore_records_read`](super::WorkerCounters) counts the R4 records
//! read, so tests can check the cost by counting rather than timing.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use streamgate::time::now_millis;

use super::run::{AssignmentFlag, State};
use super::{RunError, WorkerCounters, WorkerSettings};
use crate::analytics::committed::{BestRecords, CommittedOffsets};
use crate::analytics::record::StatsRecord;
use crate::analytics::window::{PartitionWindows, WindowSpec};
use streamgate::time::millis_of_std;

use crate::kafka::consumer::{QuietEof, assign_only};
use crate::kafka::{ClientSettings, Isolation, TimestampSearch};

/// Clock differences between the servers writing R4 that the horizon tolerates.
const CLOCK_MARGIN_MS: i64 = 5_000;

/// Ticks of margin: a transaction takes its timestamp before it commits.
const MARGIN_TICKS: i64 = 3;

/// Where a restore starts reading R4, from where the assigned partitions resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Horizon {
    /// R4 records with a timestamp below this are not read.
    since_ms: i64,
    /// Every window with a record before `since_ms` is final once stream time is here.
    floor_ms: i64,
}

impl Horizon {
    /// The horizon for partitions that resume at `anchor_ms` (the earliest of their
    /// first-record timestamps and the wall clock).
    fn new(spec: WindowSpec, tick: Duration, skew: Duration, anchor_ms: i64) -> Self {
        let tick_ms = i64::try_from(tick.as_millis()).unwrap_or(i64::MAX);
        let margin = tick_ms
            .saturating_mul(MARGIN_TICKS)
            .saturating_add(CLOCK_MARGIN_MS);
        let open_for = spec.size_ms().saturating_add(spec.grace_ms());
        let since_ms = anchor_ms
            .saturating_sub(open_for)
            .saturating_sub(millis_of_std(skew))
            .saturating_sub(margin);
        Self {
            since_ms,
            floor_ms: anchor_ms.saturating_sub(margin),
        }
    }
}

/// What one pass over R4 found.
struct Read {
    best: BestRecords,
    /// R4 records read.
    records: u64,
    /// Whether the horizon skipped any record.
    skipped: bool,
}

impl State {
    /// Rebuilds the state of every partition assigned to `consumer` from R4 and the group's
    /// committed offsets, into `partitions` and `committed` (both replaced).
    pub(super) fn restore(
        &mut self,
        consumer: &BaseConsumer<AssignmentFlag>,
        client: &ClientSettings,
        settings: &WorkerSettings,
        counters: &WorkerCounters,
    ) -> Result<(), RunError> {
        self.partitions.clear();
        self.committed.clear();
        let assignment = consumer.assignment()?;
        let input = settings.input.as_str();
        let mine: BTreeSet<i32> = assignment
            .elements_for_topic(input)
            .iter()
            .map(|e| e.partition())
            .collect();
        if mine.is_empty() {
            return Ok(());
        }
        let committed = consumer.committed_offsets(assignment, settings.timeout)?;
        for element in committed.elements_for_topic(input) {
            // No commit yet: the group starts at the beginning of the partition, which
            // `WithoutCommit::FromStart` says for the partitions left out here.
            if let Offset::Offset(n) = element.offset() {
                self.committed.insert(element.partition(), n);
            }
        }
        let search = TimestampSearch::with_isolation(
            client,
            Isolation::ReadUncommitted,
            Instant::now() + settings.timeout,
        )?;
        let anchor = resume_anchor(consumer, &search, settings, &mine, &self.committed)?;
        let horizon = Horizon::new(
            settings.spec,
            settings.tick,
            settings.max_event_skew,
            anchor,
        );
        let read = read_stats(client, settings, &search, horizon, &mine, &self.committed)?;
        counters
            .restore_records_read
            .fetch_add(read.records, Ordering::Relaxed);
        let wall = now_millis();
        for partition in mine {
            let next = self.committed.limit(partition).unwrap_or(0);
            let mut windows = PartitionWindows::new(settings.spec, settings.min_duration_ms, next);
            if read.skipped {
                // Stream time at the floor at least, as a restored final record of the
                // window closing there would set it: every skipped window is final.
                let closing = settings.spec.size_ms() + settings.spec.grace_ms();
                windows.restore("", horizon.floor_ms.saturating_sub(closing), 0, true, wall);
            }
            let mut restored_windows = 0;
            for record in read.best.of_partition(partition) {
                windows.restore(
                    &record.page,
                    record.window_start_ms,
                    record.count,
                    record.is_final,
                    wall,
                );
                restored_windows += 1;
            }
            tracing::info!(
                partition,
                offset = next,
                restored = restored_windows,
                "analytics: partition assigned"
            );
            self.partitions.insert(partition, windows);
        }
        tracing::info!(
            records_read = read.records,
            since_ms = horizon.since_ms,
            search_reads = search.reads(),
            "analytics: restored from the output topic"
        );
        counters.restores.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Where the assigned partitions resume, in time: the earliest timestamp of the first R2
/// record each will count (at its committed offset), and never later than now.
fn resume_anchor(
    consumer: &BaseConsumer<AssignmentFlag>,
    search: &TimestampSearch,
    settings: &WorkerSettings,
    mine: &BTreeSet<i32>,
    committed: &CommittedOffsets,
) -> Result<i64, RunError> {
    let input = settings.input.as_str();
    let mut anchor = now_millis();
    for &partition in mine {
        let next = committed.limit(partition).unwrap_or(0);
        let (_, high) = consumer.fetch_watermarks(input, partition, settings.timeout)?;
        if next >= high {
            // Nothing left to read: what comes next is written from now on.
            continue;
        }
        if let Some((_, ts)) = search.timestamp_at(input, partition, next)? {
            anchor = anchor.min(ts);
        }
    }
    Ok(anchor)
}

/// Reads the output topic from `horizon` on and keeps, per `(page, window, partition)` of
/// the partitions in `mine`, the record with the highest input offset within `committed`.
fn read_stats(
    client: &ClientSettings,
    settings: &WorkerSettings,
    search: &TimestampSearch,
    horizon: Horizon,
    mine: &BTreeSet<i32>,
    committed: &CommittedOffsets,
) -> Result<Read, RunError> {
    let (reader, partitions, skipped) = open_reader(client, settings, search, horizon)?;
    // The end: every partition reported EOF, then nothing more arrived for a while. (Tansu's
    // high watermark lags the real end after batched writes, so EOF alone can come early.)
    let deadline = Instant::now() + settings.timeout * 6;
    let mut at_end = HashSet::new();
    let mut read = Read {
        best: BestRecords::new(committed.clone()),
        records: 0,
        skipped,
    };
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
                read.records += 1;
                let Some(record) = message.payload().and_then(StatsRecord::parse) else {
                    continue;
                };
                if mine.contains(&record.partition) {
                    read.best.offer(record);
                }
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                at_end.insert(partition);
            }
            Some(Err(e)) => return Err(e.into()),
            None => {
                if at_end.len() >= partitions {
                    let since = *quiet_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= Duration::from_millis(500) {
                        return Ok(read);
                    }
                }
            }
        }
    }
}

/// An assign-only reader of every partition of the output topic, each from its first record
/// at or after the horizon; how many partitions that is, and whether any record was skipped.
fn open_reader(
    client: &ClientSettings,
    settings: &WorkerSettings,
    search: &TimestampSearch,
    horizon: Horizon,
) -> Result<(BaseConsumer<QuietEof>, usize, bool), RunError> {
    let reader: BaseConsumer<QuietEof> =
        assign_only(client, &format!("{}-restore", settings.group), |c| {
            c.set("enable.partition.eof", "true")
                // The committed offsets decide what counts, not the isolation level (both
                // test brokers show aborted records anyway), and a transaction left open by
                // a crashed worker must not stall the restore.
                .set("isolation.level", "read_uncommitted");
        })
        .create_with_context(QuietEof("analytics restore reader"))?;
    let output = settings.output.as_str();
    let metadata = reader.fetch_metadata(Some(output), settings.timeout)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == output)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(RunError::Restore(format!(
            "topic {} not found",
            settings.output
        )));
    }
    let mut list = TopicPartitionList::new();
    let mut skipped = false;
    for partition in &partitions {
        let (low, high) = reader.fetch_watermarks(output, *partition, settings.timeout)?;
        let start = search.offset_for(output, *partition, horizon.since_ms, low, high)?;
        skipped |= start > low;
        list.add_partition_offset(output, *partition, Offset::Offset(start))?;
    }
    reader.assign(&list)?;
    Ok((reader, partitions.len(), skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SKEW: Duration = Duration::from_secs(30);
    const SKEW_MS: i64 = 30_000;

    #[test]
    fn the_horizon_reaches_back_one_window_grace_skew_and_margin() {
        let spec = WindowSpec::tumbling(5_000, 3_000).expect("spec");
        let horizon = Horizon::new(spec, Duration::from_millis(200), SKEW, 1_000_000);
        // 5 s + 3 s + 30 s + 3 × 200 ms + 5 s.
        assert_eq!(horizon.since_ms, 1_000_000 - 43_600);
        assert_eq!(horizon.floor_ms, 1_000_000 - 5_600);
    }

    #[test]
    fn every_window_with_a_skipped_record_is_final_at_the_floor() {
        // A record is written at wall time `t` for a window that counted an event at most
        // the skew ahead of the clock: start <= t + skew. Skipped: t < since.
        for (size, advance, grace) in [
            (5_000, 5_000, 0),
            (5_000, 1_000, 3_000),
            (60_000, 60_000, 10_000),
        ] {
            let spec = WindowSpec::new(size, advance, grace).expect("spec");
            let horizon = Horizon::new(spec, Duration::from_millis(500), SKEW, 10_000_000);
            let t = horizon.since_ms - 1;
            let latest_start = spec
                .starts_containing(t + SKEW_MS)
                .last()
                .expect("a window");
            assert!(
                spec.closes_at(latest_start) <= horizon.floor_ms,
                "{spec:?}: a skipped window closes by the floor"
            );
            // And a window still open at the floor started after the horizon plus the skew:
            // each of its records was written at or after the horizon, and is read.
            let open_start = horizon.floor_ms - size - grace + 1;
            assert!(open_start - SKEW_MS >= horizon.since_ms);
        }
    }

    #[test]
    fn the_horizon_saturates_instead_of_overflowing() {
        let spec = WindowSpec::tumbling(5_000, 0).expect("spec");
        let horizon = Horizon::new(spec, Duration::MAX, Duration::MAX, i64::MIN + 1);
        assert_eq!(horizon.since_ms, i64::MIN);
        assert_eq!(horizon.floor_ms, i64::MIN);
    }
}
