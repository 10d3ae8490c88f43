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
//! The reader is a separate, assign-only consumer that reads R4 from the beginning,
//! `read_uncommitted`: the committed offsets decide what counts, and a transaction left open
//! by a crashed worker must not stall the restore.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use streamgate::time::now_millis;

use super::run::{AssignmentFlag, State};
use super::{RunError, WorkerSettings};
use crate::analytics::committed::{BestRecords, CommittedOffsets};
use crate::analytics::record::StatsRecord;
use crate::analytics::window::PartitionWindows;
use crate::kafka::ClientSettings;
use crate::kafka::consumer::assign_only;

/// The restore reader's context: end-of-partition is what it waits for, not an error to log.
struct QuietEof;

impl ClientContext for QuietEof {
    fn error(&self, error: KafkaError, reason: &str) {
        let eof = matches!(
            error,
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
        );
        if !eof {
            tracing::warn!(error = %error, reason, "analytics restore reader");
        }
    }
}

impl ConsumerContext for QuietEof {}

impl State {
    /// Rebuilds the state of every partition assigned to `consumer` from R4 and the group's
    /// committed offsets, into `partitions` and `committed` (both replaced).
    pub(super) fn restore(
        &mut self,
        consumer: &BaseConsumer<AssignmentFlag>,
        client: &ClientSettings,
        settings: &WorkerSettings,
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
        let restored = read_stats(client, settings, &mine, &self.committed)?;
        let wall = now_millis();
        for partition in mine {
            let next = self.committed.limit(partition).unwrap_or(0);
            let mut windows = PartitionWindows::new(settings.spec, settings.min_duration_ms, next);
            let mut restored_windows = 0;
            for record in restored.of_partition(partition) {
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
        Ok(())
    }
}

/// Reads the whole output topic and keeps, per `(page, window, partition)` of the partitions
/// in `mine`, the record with the highest input offset within `committed`.
fn read_stats(
    client: &ClientSettings,
    settings: &WorkerSettings,
    mine: &BTreeSet<i32>,
    committed: &CommittedOffsets,
) -> Result<BestRecords, RunError> {
    let (reader, partitions) = open_reader(client, settings)?;
    // The end: every partition reported EOF, then nothing more arrived for a while. (Tansu's
    // high watermark lags the real end after batched writes, so EOF alone can come early.)
    let deadline = Instant::now() + settings.timeout * 6;
    let mut at_end = HashSet::new();
    let mut best = BestRecords::new(committed.clone());
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
                if mine.contains(&record.partition) {
                    best.offer(record);
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
                        return Ok(best);
                    }
                }
            }
        }
    }
}

/// An assign-only reader of every partition of the output topic, from the beginning, and
/// how many partitions that is.
fn open_reader(
    client: &ClientSettings,
    settings: &WorkerSettings,
) -> Result<(BaseConsumer<QuietEof>, usize), RunError> {
    let reader: BaseConsumer<QuietEof> =
        assign_only(client, &format!("{}-restore", settings.group), |c| {
            c.set("enable.partition.eof", "true")
                // The committed offsets decide what counts, not the isolation level (both
                // test brokers show aborted records anyway), and a transaction left open by
                // a crashed worker must not stall the restore.
                .set("isolation.level", "read_uncommitted");
        })
        .create_with_context(QuietEof)?;
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
    for partition in &partitions {
        list.add_partition_offset(output, *partition, Offset::Beginning)?;
    }
    reader.assign(&list)?;
    Ok((reader, partitions.len()))
}
