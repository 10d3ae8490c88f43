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
//!   record and byte counts are the stream's memory bound.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
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
    /// When records come due, earliest first. Entries go stale when their record is
    /// acked or rescheduled; they are skipped when they surface.
    due: BinaryHeap<Reverse<(Instant, PartitionKey, i64)>>,
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
            due: BinaryHeap::new(),
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
            // counts right.
            Some(old) => self.bytes -= old.cost,
            None => self.records += 1,
        }
        self.bytes += cost;
        self.due.push(Reverse((due, key, offset)));
        delivered
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
                pending.due = at;
                self.due.push(Reverse((at, key, id.offset)));
                Outcome::Applied(None)
            }
            _ => Outcome::Unknown,
        }
    }

    /// When the next record comes due, if any is outstanding.
    pub fn next_due(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, key, offset))) = self.due.peek() {
            if self.is_live(*at, key, *offset) {
                return Some(*at);
            }
            self.due.pop();
        }
        None
    }

    /// Takes up to `limit` records due at `now`, earliest first.
    pub fn take_due(&mut self, now: Instant, limit: usize) -> Vec<Due> {
        let mut taken = Vec::new();
        while taken.len() < limit {
            let Some(at) = self.next_due() else { break };
            if at > now {
                break;
            }
            let Reverse((_, key, offset)) = self.due.pop().expect("peeked");
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
            self.due.push(Reverse((at, ticket.key.clone(), offset)));
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
        self.due.push(Reverse((due, key.clone(), offset)));
        Due::Redeliver(self.consumed(&key, &record, attempt))
    }

    fn is_live(&self, at: Instant, key: &PartitionKey, offset: i64) -> bool {
        self.partitions
            .get(&key.0)
            .and_then(|t| t.get(&key.1))
            .and_then(|p| p.pending.get(&offset))
            .is_some_and(|p| p.due == at && !p.dead_lettering)
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
mod tests {
    use super::*;

    const DEADLINE: Duration = Duration::from_secs(30);

    fn ledger(max_attempts: u32) -> Ledger {
        let mut ledger = Ledger::new(Rules {
            stream: 7,
            ack_deadline: DEADLINE,
            max_attempts,
        });
        ledger.reassign();
        ledger
    }

    fn record(partition: i32, offset: i64) -> proto::Record {
        proto::Record {
            topic: "t".into(),
            partition,
            offset,
            ..Default::default()
        }
    }

    fn deliver(
        ledger: &mut Ledger,
        partition: i32,
        offsets: impl IntoIterator<Item = i64>,
        now: Instant,
    ) -> Vec<AckId> {
        offsets
            .into_iter()
            .map(|offset| {
                let delivered = ledger.deliver(Arc::from("t"), record(partition, offset), 10, now);
                AckId::parse(&delivered.ack_id).expect("a valid id")
            })
            .collect()
    }

    fn committed(outcome: Outcome) -> Option<i64> {
        match outcome {
            Outcome::Applied(point) => point.map(|(_, offset)| offset),
            other => panic!("not applied: {other:?}"),
        }
    }

    #[test]
    fn commits_only_the_acked_prefix_whatever_the_ack_order() {
        let now = Instant::now();
        let mut ledger = ledger(0);
        let ids = deliver(&mut ledger, 0, 10..15, now);
        assert_eq!(
            committed(ledger.ack(&ids[3])),
            None,
            "13 acked above the gap at 10"
        );
        assert_eq!(committed(ledger.ack(&ids[1])), None);
        assert_eq!(
            committed(ledger.ack(&ids[0])),
            Some(12),
            "10 and 11 acked; 12 is not"
        );
        assert_eq!(
            committed(ledger.ack(&ids[2])),
            Some(14),
            "13 was acked before"
        );
        assert_eq!(
            committed(ledger.ack(&ids[4])),
            Some(15),
            "all acked: past the last"
        );
        assert_eq!((ledger.records(), ledger.bytes()), (0, 0));
        assert_eq!(ledger.ack(&ids[4]), Outcome::Unknown, "acked twice");
    }

    #[test]
    fn keeps_partitions_apart() {
        let now = Instant::now();
        let mut ledger = ledger(0);
        let zero = deliver(&mut ledger, 0, [5], now);
        let one = deliver(&mut ledger, 1, [9], now);
        assert_eq!(committed(ledger.ack(&one[0])), Some(10));
        assert_eq!(ledger.records(), 1);
        assert_eq!(committed(ledger.ack(&zero[0])), Some(6));
    }

    #[test]
    fn redelivers_at_the_deadline_with_the_next_attempt_and_later_again() {
        let start = Instant::now();
        let mut ledger = ledger(0);
        let ids = deliver(&mut ledger, 0, [0, 1], start);
        ledger.ack(&ids[1]);
        assert!(ledger.take_due(start + DEADLINE / 2, 10).is_empty());
        assert_eq!(
            ledger.next_due(),
            Some(start + DEADLINE),
            "1 was acked: only 0 is due"
        );
        let due = ledger.take_due(start + DEADLINE, 10);
        let [Due::Redeliver(again)] = due.as_slice() else {
            panic!("one redelivery: {due:?}")
        };
        assert_eq!(again.delivery_attempt, 2);
        assert_eq!(again.record.as_ref().map(|r| r.offset), Some(0));
        assert_eq!(
            ledger.next_due(),
            Some(start + 2 * DEADLINE),
            "a new deadline"
        );
        // The first attempt's id still acks it: the record was processed.
        assert_eq!(committed(ledger.ack(&ids[0])), Some(2));
        assert_eq!(ledger.next_due(), None);
    }

    #[test]
    fn a_nack_redelivers_after_its_delay_and_a_stale_attempts_nack_does_nothing() {
        let start = Instant::now();
        let mut ledger = ledger(0);
        let ids = deliver(&mut ledger, 0, [0], start);
        let later = start + Duration::from_secs(2);
        assert_eq!(ledger.nack(&ids[0], later), Outcome::Applied(None));
        assert!(ledger.take_due(start, 10).is_empty());
        let due = ledger.take_due(later, 10);
        let [Due::Redeliver(again)] = due.as_slice() else {
            panic!("{due:?}")
        };
        assert_eq!(again.delivery_attempt, 2);
        assert_eq!(
            ledger.nack(&ids[0], later),
            Outcome::Unknown,
            "attempt 1 is history"
        );
        let second = AckId::parse(&again.ack_id).expect("id");
        assert_eq!(ledger.nack(&second, later), Outcome::Applied(None));
    }

    #[test]
    fn dead_letters_after_the_last_attempt_and_then_counts_it_as_acked() {
        let start = Instant::now();
        let mut ledger = ledger(2);
        let ids = deliver(&mut ledger, 0, [0, 1], start);
        ledger.ack(&ids[1]);
        ledger.nack(&ids[0], start);
        let Due::Redeliver(again) = ledger.take_due(start, 10).remove(0) else {
            panic!("attempt 2 first")
        };
        ledger.nack(&AckId::parse(&again.ack_id).expect("id"), start);
        let Due::DeadLetter(ticket) = ledger.take_due(start, 10).remove(0) else {
            panic!("then the dead-letter topic")
        };
        assert_eq!((ticket.record.offset, ticket.attempts), (0, 2));
        assert_eq!(
            ledger.next_due(),
            None,
            "not redelivered while being dead-lettered"
        );
        assert_eq!(ledger.ack(&ids[0]), Outcome::Unknown);
        // A failed write is retried later; a successful one commits past it.
        ledger.dead_letter_failed(&ticket, start + DEADLINE);
        let Due::DeadLetter(ticket) = ledger.take_due(start + DEADLINE, 10).remove(0) else {
            panic!("retried")
        };
        assert_eq!(ledger.dead_lettered(&ticket).map(|(_, o)| o), Some(2));
        assert_eq!(ledger.records(), 0);
    }

    #[test]
    fn ids_of_another_epoch_or_stream_are_stale() {
        let now = Instant::now();
        let mut ledger = ledger(0);
        let old = deliver(&mut ledger, 0, [0], now);
        ledger.reassign();
        assert_eq!((ledger.records(), ledger.next_due()), (0, None));
        let new = deliver(&mut ledger, 0, [0], now);
        assert_eq!(ledger.ack(&old[0]), Outcome::Stale);
        let mut foreign = new[0].clone();
        foreign.stream += 1;
        assert_eq!(ledger.ack(&foreign), Outcome::Stale);
        assert_eq!(ledger.nack(&foreign, now), Outcome::Stale);
        assert_eq!(committed(ledger.ack(&new[0])), Some(1));
    }

    #[test]
    fn take_due_stops_at_its_limit() {
        let now = Instant::now();
        let mut ledger = ledger(0);
        deliver(&mut ledger, 0, 0..10, now);
        assert_eq!(ledger.take_due(now + DEADLINE, 4).len(), 4);
        assert_eq!(ledger.take_due(now + DEADLINE, 100).len(), 6);
    }
}
