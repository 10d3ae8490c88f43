//! The ledger of one Consume stream: every record delivered and not yet acknowledged, per
//! partition, with its delivery attempt and when it is due again. Pure: no I/O and no
//! clock of its own (the session passes `now`), so every rule below is unit-tested.
//!
//! - A partition's commit point is its lowest unacknowledged offset, or one past the
//!   highest delivered when nothing is outstanding: Kafka commits a contiguous prefix, so
//!   acks above a gap wait until the gap is acked.
//! - A record is due again at its ack deadline, or when a nack's delay ends; then it is
//!   redelivered with the next attempt number, or, after the last allowed attempt, handed
//!   out for the dead-letter topic and counted as acknowledged once it is written there.
//! - A rebalance starts a new epoch and forgets everything outstanding: the consumer
//!   fetches a reassigned partition again from the group's commit, so what was not acked
//!   comes back with new ids, and acks with an old epoch's ids are stale.
//! - The ledger holds the records themselves (for redelivery without refetching), so its
//!   record and byte counts are the stream's memory bound. Its schedule holds exactly one
//!   entry per outstanding record: a nack moves the record's entry rather than adding one,
//!   so a client repeating nacks of one id, however often, costs nothing that stays.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use streamgate::proto::{self, ConsumedRecord};
use tokio::time::Instant;

use super::ack_id::AckId;

/// A partition: topic and partition number.
pub type PartitionKey = (Arc<str>, i32);

/// The delivery rules of one stream.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// The stream's random tag, written into every ack id.
    pub stream: u32,
    /// How long a delivery may stay unacknowledged.
    pub ack_deadline: Duration,
    /// Deliveries before a record is dead-lettered; 0: unlimited.
    pub max_attempts: u32,
}

/// What an ack or a nack did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Applied; for an ack, the partition's new commit point if it moved.
    Applied(Option<(PartitionKey, i64)>),
    /// An id of another stream or an earlier epoch: ignored.
    Stale,
    /// An id of this epoch whose record is no longer outstanding (acked twice, or
    /// already on its way to the dead-letter topic): ignored.
    Unknown,
}

/// A record that came due.
#[derive(Debug)]
pub enum Due {
    /// Deliver it again.
    Redeliver(ConsumedRecord),
    /// It had its last attempt: write it to the dead-letter topic, then call
    /// [`Ledger::dead_lettered`].
    DeadLetter(DeadLetterTicket),
}

/// A record on its way to the dead-letter topic, and how to find it again afterwards.
#[derive(Debug, Clone)]
pub struct DeadLetterTicket {
    /// The record.
    pub record: proto::Record,
    /// Its deliveries so far.
    pub attempts: u32,
    epoch: u64,
    key: PartitionKey,
}

#[derive(Debug)]
struct Pending {
    record: proto::Record,
    cost: usize,
    attempt: u32,
    due: Instant,
    /// Set while its dead letter is being written: not redelivered, not yet acked.
    dead_lettering: bool,
}

#[derive(Debug, Default)]
struct Partition {
    pending: BTreeMap<i64, Pending>,
    /// One past the highest offset delivered in this epoch.
    delivered_to: Option<i64>,
    /// The last commit point handed out.
    committed_to: Option<i64>,
}

impl Partition {
    fn commit_point(&self) -> Option<i64> {
        self.pending
            .first_key_value()
            .map(|(offset, _)| *offset)
            .or(self.delivered_to)
    }

    /// The commit point, if it moved past the last one handed out.
    fn advance(&mut self) -> Option<i64> {
        let point = self.commit_point()?;
        if self.committed_to.is_some_and(|c| c >= point) {
            return None;
        }
        self.committed_to = Some(point);
        Some(point)
    }
}

/// Everything outstanding on one stream.
#[derive(Debug)]
pub struct Ledger {
    rules: Rules,
    epoch: u64,
    partitions: HashMap<Arc<str>, HashMap<i32, Partition>>,
    records: usize,
    bytes: usize,
    /// When records come due, earliest first: one entry per outstanding record that is
    /// not being dead-lettered, at its `due` (moved, never added, on a reschedule).
    due: BTreeSet<(Instant, PartitionKey, i64)>,
}

impl Ledger {
    /// An empty ledger at epoch 0 (before the first assignment).
    pub fn new(rules: Rules) -> Self {
        Self {
            rules,
            epoch: 0,
            partitions: HashMap::new(),
            records: 0,
            bytes: 0,
            due: BTreeSet::new(),
        }
    }

    /// Records delivered and not yet acknowledged.
    pub fn records(&self) -> usize {
        self.records
    }

    /// Bytes those records hold (as [`super::super::subscribe`]'s cost counts them).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// A new assignment: a new epoch, and nothing outstanding.
    pub fn reassign(&mut self) {
        self.epoch += 1;
        self.partitions.clear();
        self.due.clear();
        self.records = 0;
        self.bytes = 0;
    }

    /// Records a first delivery of `record` (costing `cost` bytes) and returns it with its
    /// ack id.
    pub fn deliver(
        &mut self,
        topic: Arc<str>,
        record: proto::Record,
        cost: usize,
        now: Instant,
    ) -> ConsumedRecord {
        let key = (topic, record.partition);
        let offset = record.offset;
        let due = now + self.rules.ack_deadline;
        let delivered = self.consumed(&key, &record, 1);
        let partition = self.read(&key, offset);
        let previous = partition.pending.insert(
            offset,
            Pending {
                record,
                cost,
                attempt: 1,
                due,
                dead_lettering: false,
            },
        );
        match previous {
            // The same offset twice in one epoch (librdkafka does not do this): keep the
            // counts and the schedule right.
            Some(old) => {
                self.bytes -= old.cost;
                self.due.remove(&(old.due, key.clone(), offset));
            }
            None => self.records += 1,
        }
        self.bytes += cost;
        self.due.insert((due, key, offset));
        delivered
    }

    /// Records that the record at `offset` of `key` was read and left out by the stream's
    /// filter: it counts as delivered and acknowledged at once, so the commit point passes
    /// it as soon as nothing below it is outstanding. Returns the new commit point, if it
    /// moved.
    pub fn skip(&mut self, key: PartitionKey, offset: i64) -> Option<(PartitionKey, i64)> {
        let point = self.read(&key, offset).advance();
        point.map(|point| (key, point))
    }

    /// Acknowledges the delivery `id`.
    pub fn ack(&mut self, id: &AckId) -> Outcome {
        let Some((key, partition)) = self.current(id) else {
            return Outcome::Stale;
        };
        match partition.pending.get(&id.offset) {
            Some(pending) if !pending.dead_lettering => {}
            _ => return Outcome::Unknown,
        }
        let removed = partition.pending.remove(&id.offset).expect("checked above");
        let point = partition.advance();
        self.records -= 1;
        self.bytes -= removed.cost;
        self.due.remove(&(removed.due, key.clone(), id.offset));
        Outcome::Applied(point.map(|p| (key, p)))
    }

    /// Schedules the delivery `id` again at `at` (a nack), if it is still outstanding and
    /// `id` is its latest delivery: a nack of an attempt already redelivered changes nothing.
    pub fn nack(&mut self, id: &AckId, at: Instant) -> Outcome {
        let Some((key, partition)) = self.current(id) else {
            return Outcome::Stale;
        };
        match partition.pending.get_mut(&id.offset) {
            Some(pending) if !pending.dead_lettering && pending.attempt == id.attempt => {
                let before = std::mem::replace(&mut pending.due, at);
                self.due.remove(&(before, key.clone(), id.offset));
                self.due.insert((at, key, id.offset));
                Outcome::Applied(None)
            }
            _ => Outcome::Unknown,
        }
    }

    /// When the next record comes due, if any is outstanding.
    pub fn next_due(&self) -> Option<Instant> {
        self.due.first().map(|(at, _, _)| *at)
    }

    /// Entries in the schedule: never more than [`Self::records`].
    #[cfg(test)]
    fn scheduled(&self) -> usize {
        self.due.len()
    }

    /// Takes up to `limit` records due at `now`, earliest first.
    pub fn take_due(&mut self, now: Instant, limit: usize) -> Vec<Due> {
        let mut taken = Vec::new();
        while taken.len() < limit {
            let Some(at) = self.next_due() else { break };
            if at > now {
                break;
            }
            let (_, key, offset) = self.due.pop_first().expect("peeked");
            taken.push(self.come_due(key, offset, now));
        }
        taken
    }

    /// The dead letter of `ticket` was written: the record counts as acknowledged. Returns
    /// the partition's new commit point if it moved (nothing if the partition was
    /// reassigned meanwhile).
    pub fn dead_lettered(&mut self, ticket: &DeadLetterTicket) -> Option<(PartitionKey, i64)> {
        if ticket.epoch != self.epoch {
            return None;
        }
        let partition = self.partition_mut(&ticket.key.0, ticket.key.1)?;
        let removed = partition.pending.remove(&ticket.record.offset)?;
        let point = partition.advance();
        self.records -= 1;
        self.bytes -= removed.cost;
        point.map(|p| (ticket.key.clone(), p))
    }

    /// Writing the dead letter of `ticket` failed: try again at `at`.
    pub fn dead_letter_failed(&mut self, ticket: &DeadLetterTicket, at: Instant) {
        if ticket.epoch != self.epoch {
            return;
        }
        let offset = ticket.record.offset;
        if let Some(pending) = self
            .partition_mut(&ticket.key.0, ticket.key.1)
            .and_then(|p| p.pending.get_mut(&offset))
        {
            pending.dead_lettering = false;
            pending.due = at;
            self.due.insert((at, ticket.key.clone(), offset));
        }
    }

    fn come_due(&mut self, key: PartitionKey, offset: i64, now: Instant) -> Due {
        let rules = self.rules;
        let epoch = self.epoch;
        let pending = self
            .partition_mut(&key.0, key.1)
            .and_then(|p| p.pending.get_mut(&offset))
            .expect("a live due entry has its record");
        if rules.max_attempts != 0 && pending.attempt >= rules.max_attempts {
            pending.dead_lettering = true;
            return Due::DeadLetter(DeadLetterTicket {
                record: pending.record.clone(),
                attempts: pending.attempt,
                epoch,
                key,
            });
        }
        pending.attempt += 1;
        pending.due = now + rules.ack_deadline;
        let (record, attempt, due) = (pending.record.clone(), pending.attempt, pending.due);
        self.due.insert((due, key.clone(), offset));
        Due::Redeliver(self.consumed(&key, &record, attempt))
    }

    /// The partition `id` points at, if `id` is of this stream and epoch.
    fn current(&mut self, id: &AckId) -> Option<(PartitionKey, &mut Partition)> {
        if id.stream != self.rules.stream || id.epoch != self.epoch {
            return None;
        }
        let topic = self.partitions.get_key_value(id.topic.as_str())?.0.clone();
        let partition = self.partition_mut(&id.topic, id.partition)?;
        Some(((topic, id.partition), partition))
    }

    /// The partition of `key`, having read the record at `offset` (delivered or skipped).
    fn read(&mut self, key: &PartitionKey, offset: i64) -> &mut Partition {
        let partition = self
            .partitions
            .entry(key.0.clone())
            .or_default()
            .entry(key.1)
            .or_default();
        // The stream started here: that much is committed already (or was skipped).
        partition.committed_to.get_or_insert(offset);
        partition.delivered_to = Some(
            partition
                .delivered_to
                .map_or(offset + 1, |d| d.max(offset + 1)),
        );
        partition
    }

    fn partition_mut(&mut self, topic: &str, partition: i32) -> Option<&mut Partition> {
        self.partitions.get_mut(topic)?.get_mut(&partition)
    }

    fn consumed(&self, key: &PartitionKey, record: &proto::Record, attempt: u32) -> ConsumedRecord {
        let id = AckId {
            stream: self.rules.stream,
            epoch: self.epoch,
            attempt,
            partition: key.1,
            offset: record.offset,
            topic: key.0.to_string(),
        };
        ConsumedRecord {
            record: Some(record.clone()),
            ack_id: id.to_string(),
            delivery_attempt: attempt,
        }
    }
}

#[cfg(test)]
mod tests;
