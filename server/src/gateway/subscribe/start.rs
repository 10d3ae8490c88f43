//! Start positions: turning earliest / latest / offset / from-end / timestamp into one
//! concrete offset per partition.
//!
//! For timestamps we ask the broker (ListOffsets by time) and then check its answer by
//! reading the records around it, because not every broker answers correctly: Tansu answers
//! offset 0 whatever the time, and librdkafka's mock broker (the embedded broker) answers -1,
//! "the end". Real Kafka answers correctly, and then the check costs two record reads. When
//! the answer does not hold, we binary-search the partition by record timestamp, which
//! assumes timestamps grow with offsets — the same assumption Kafka's own time index makes.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::Instant;

use crate::kafka::{self, ClientSettings};

/// A requested start position, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The oldest stored record.
    Earliest,
    /// The next record written.
    Latest,
    /// An absolute offset, clamped into the partition.
    Offset(i64),
    /// This many records before the end.
    FromEnd(i64),
    /// The first record at or after this epoch-millisecond instant.
    Timestamp(i64),
}

impl Start {
    /// Whether this position is a plain edge (which a group applies only without commits).
    pub fn is_edge(self) -> bool {
        matches!(self, Start::Earliest | Start::Latest)
    }

    /// The offset for a partition holding `[low, high)`, for every position but timestamps.
    pub fn resolve_simple(self, low: i64, high: i64) -> Option<i64> {
        match self {
            Start::Earliest => Some(low),
            Start::Latest => Some(high),
            Start::Offset(n) => Some(n.clamp(low, high)),
            Start::FromEnd(n) => Some(high.saturating_sub(n).clamp(low, high)),
            Start::Timestamp(_) => None,
        }
    }
}

/// Reads single records to find offsets by timestamp. Blocking: call from a blocking thread.
pub struct TimestampSearch {
    probe: BaseConsumer,
    deadline: Instant,
}

impl TimestampSearch {
    /// Creates a reader with its own short-lived consumer (no group).
    pub fn new(settings: &ClientSettings, deadline: Instant) -> Result<Self, KafkaError> {
        let probe = kafka::consumer::assign_only(settings, "streamgate-timestamp-search", |c| {
            c.set("enable.partition.eof", "true")
                .set("fetch.wait.max.ms", "50")
                .set("max.partition.fetch.bytes", "65536");
        })
        .create()?;
        Ok(Self { probe, deadline })
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
    fn timestamp_at(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<Option<(i64, i64)>, KafkaError> {
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

#[cfg(test)]
mod tests {
    use super::Start;

    #[test]
    fn simple_positions_clamp_into_the_partition() {
        assert_eq!(Start::Earliest.resolve_simple(5, 10), Some(5));
        assert_eq!(Start::Latest.resolve_simple(5, 10), Some(10));
        assert_eq!(Start::Offset(7).resolve_simple(5, 10), Some(7));
        assert_eq!(Start::Offset(2).resolve_simple(5, 10), Some(5));
        assert_eq!(Start::Offset(99).resolve_simple(5, 10), Some(10));
        assert_eq!(Start::FromEnd(3).resolve_simple(5, 10), Some(7));
        assert_eq!(Start::FromEnd(30).resolve_simple(5, 10), Some(5));
        assert_eq!(Start::Timestamp(0).resolve_simple(5, 10), None);
    }
}
