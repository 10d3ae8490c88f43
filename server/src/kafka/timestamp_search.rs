//! Finding the first offset at or after a timestamp, on brokers that answer that question
//! wrongly — used by Subscribe's `timestamp` start and by the analytics worker's restore.
//!
//! We ask the broker (ListOffsets by time) and then check its answer by reading the records
//! around it, because not every broker answers correctly: Tansu answers offset 0 whatever the
//! time, and librdkafka's mock broker (the embedded broker) answers -1, "the end". Real Kafka
//! answers correctly, and then the check costs two record reads. When the answer does not
//! hold, we binary-search the partition by record timestamp (about log2(records) reads), which
//! assumes timestamps grow with offsets — the same assumption Kafka's own time index makes.

use std::cell::Cell;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::ClientSettings;
use super::consumer::QuietEof;

/// Which records the search sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Committed records only (librdkafka's default): a transaction left open stalls the
    /// search at the last stable offset until the broker ends it.
    ReadCommitted,
    /// Every record: never stalled by an open transaction.
    ReadUncommitted,
}

/// Reads single records to find offsets by timestamp. Blocking: call from a blocking thread.
pub struct TimestampSearch {
    probe: BaseConsumer<QuietEof>,
    deadline: Instant,
    reads: Cell<u64>,
}

impl TimestampSearch {
    /// Creates a reader of committed records with its own short-lived consumer (no group);
    /// every call fails once `deadline` has passed.
    pub fn new(
        settings: &ClientSettings,
        deadline: impl Into<Instant>,
    ) -> Result<Self, KafkaError> {
        Self::with_isolation(settings, Isolation::ReadCommitted, deadline)
    }

    /// As [`new`](Self::new), seeing the records `isolation` says.
    pub fn with_isolation(
        settings: &ClientSettings,
        isolation: Isolation,
        deadline: impl Into<Instant>,
    ) -> Result<Self, KafkaError> {
        let isolation = match isolation {
            Isolation::ReadCommitted => "read_committed",
            Isolation::ReadUncommitted => "read_uncommitted",
        };
        let probe = super::consumer::assign_only(settings, "streamgate-timestamp-search", |c| {
            c.set("enable.partition.eof", "true")
                .set("isolation.level", isolation)
                .set("fetch.wait.max.ms", "50")
                .set("max.partition.fetch.bytes", "65536");
        })
        .create_with_context(QuietEof("timestamp search"))?;
        Ok(Self {
            probe,
            deadline: deadline.into(),
            reads: Cell::new(0),
        })
    }

    /// How many single-record reads the searches so far took (for logs).
    pub fn reads(&self) -> u64 {
        self.reads.get()
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The offset of the first record in `[low, high)` whose timestamp is at or after
    /// `target_ms`; `high` if there is none.
    pub fn offset_for(
        &self,
        topic: &str,
        partition: i32,
        target_ms: i64,
        low: i64,
        high: i64,
    ) -> Result<i64, KafkaError> {
        if low >= high {
            return Ok(high);
        }
        let broker_answer = self.broker_answer(topic, partition, target_ms, high)?;
        if let Some(candidate) = broker_answer
            && (low..=high).contains(&candidate)
            && self.holds(topic, partition, target_ms, candidate, low, high)?
        {
            return Ok(candidate);
        }
        tracing::debug!(
            topic,
            partition,
            ?broker_answer,
            "broker's offset for timestamp does not hold; searching"
        );
        self.search(topic, partition, target_ms, low, high)
    }

    fn broker_answer(
        &self,
        topic: &str,
        partition: i32,
        target_ms: i64,
        high: i64,
    ) -> Result<Option<i64>, KafkaError> {
        let mut query = TopicPartitionList::new();
        query.add_partition_offset(topic, partition, Offset::Offset(target_ms))?;
        let answer = self.probe.offsets_for_times(query, self.remaining())?;
        Ok(answer
            .find_partition(topic, partition)
            .and_then(|p| match p.offset() {
                Offset::Offset(n) => Some(n),
                Offset::End => Some(high),
                _ => None,
            }))
    }

    /// Whether `candidate` is the first offset at or after `target_ms`.
    fn holds(
        &self,
        topic: &str,
        partition: i32,
        target_ms: i64,
        candidate: i64,
        low: i64,
        high: i64,
    ) -> Result<bool, KafkaError> {
        let at_or_after_ok = candidate == high
            || self
                .timestamp_at(topic, partition, candidate)?
                .is_none_or(|(_, ts)| ts >= target_ms);
        if !at_or_after_ok {
            return Ok(false);
        }
        if candidate == low {
            return Ok(true);
        }
        Ok(match self.timestamp_at(topic, partition, candidate - 1)? {
            // The record before the candidate must be older; if reading from candidate-1
            // skipped to the candidate itself (a gap), that holds too.
            Some((offset, ts)) => ts < target_ms || offset >= candidate,
            None => true,
        })
    }

    fn search(
        &self,
        topic: &str,
        partition: i32,
        target_ms: i64,
        low: i64,
        high: i64,
    ) -> Result<i64, KafkaError> {
        let (mut lo, mut hi) = (low, high);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.timestamp_at(topic, partition, mid)? {
                Some((_, ts)) if ts >= target_ms => hi = mid,
                Some((offset, _)) => lo = offset + 1,
                None => hi = mid,
            }
        }
        Ok(lo)
    }

    /// Offset and timestamp of the first record at or after `offset`, `None` past the end.
    /// A record without a timestamp reads as the oldest possible (`i64::MIN`).
    pub fn timestamp_at(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<Option<(i64, i64)>, KafkaError> {
        self.reads.set(self.reads.get() + 1);
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(topic, partition, Offset::Offset(offset))?;
        self.probe.assign(&assignment)?;
        loop {
            let remaining = self.remaining();
            if remaining.is_zero() {
                return Err(KafkaError::MessageConsumption(
                    rdkafka::types::RDKafkaErrorCode::OperationTimedOut,
                ));
            }
            match self.probe.poll(remaining) {
                Some(Ok(message))
                    if message.topic() == topic
                        && message.partition() == partition
                        && message.offset() >= offset =>
                {
                    let ts = message.timestamp().to_millis().unwrap_or(i64::MIN);
                    return Ok(Some((message.offset(), ts)));
                }
                Some(Ok(_)) => {}
                Some(Err(KafkaError::PartitionEOF(p))) if p == partition => return Ok(None),
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
    }
}
