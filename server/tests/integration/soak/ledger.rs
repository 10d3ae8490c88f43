//! The soak's ledger: every record the load publishes carries a unique id (`soak-<id>`),
//! and the ledger knows, for each id, whether the server acknowledged it and where it
//! landed; for each reader group, which positions were delivered, acked or nacked, and in
//! which assignment. From that it judges what the docs promise:
//!
//! - nothing acknowledged is lost: every acked record reaches each group;
//! - nothing is written twice: a value lands at one position only (the producer is
//!   idempotent), and an acknowledged one where its acknowledgement said;
//! - nothing is delivered twice beyond at-least-once: a Subscribe group gets a position
//!   again only after a rebalance gave its partition out anew; a Consume group only after
//!   a nack of it, or after a rebalance (which brings back everything from a partition's
//!   first unacked record, acked ones above it included).
//!
//! Memory is a few bytes per record (positions are dense per partition), so that the soak's
//! own bookkeeping barely shows in the process's RSS.

use std::collections::HashMap;

/// Violations kept for the report; more are only counted.
const KEPT_VIOLATIONS: usize = 20;

/// What became of one published record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// Sent, no answer yet.
    Pending,
    /// Acknowledged at this partition and offset.
    Acked(i32, i64),
    /// Refused or failed: it may or may not have been written.
    Failed,
}

/// The published side: one outcome per id.
#[derive(Debug, Default)]
pub struct Sent {
    outcomes: Vec<Outcome>,
}

impl Sent {
    /// A fresh id for the next record.
    pub fn allocate(&mut self) -> u64 {
        self.outcomes.push(Outcome::Pending);
        self.outcomes.len() as u64 - 1
    }

    pub fn settle(&mut self, id: u64, outcome: Outcome) {
        self.outcomes[id as usize] = outcome;
    }

    pub fn outcome(&self, id: u64) -> Option<Outcome> {
        self.outcomes.get(id as usize).copied()
    }

    /// The acknowledged records: (id, partition, offset).
    pub fn acked(&self) -> impl Iterator<Item = (u64, i32, i64)> + '_ {
        self.outcomes
            .iter()
            .enumerate()
            .filter_map(|(id, o)| match *o {
                Outcome::Acked(p, offset) => Some((id as u64, p, offset)),
                _ => None,
            })
    }

    /// How many records ended each way: (acked, failed, pending).
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        for o in &self.outcomes {
            match o {
                Outcome::Acked(..) => counts.0 += 1,
                Outcome::Failed => counts.1 += 1,
                Outcome::Pending => counts.2 += 1,
            }
        }
        counts
    }
}

/// The value the load writes for `id`.
pub fn value_of(id: u64) -> String {
    format!("soak-{id}")
}

/// The id in a value the load wrote.
pub fn id_of(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value)
        .ok()?
        .strip_prefix("soak-")?
        .parse()
        .ok()
}

/// How a group's reader treats a record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// Subscribe: delivered is done.
    Subscribe,
    /// Consume: done when acked; a nack sends it again.
    Consume,
}

/// One position's state in a group.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Slot {
    /// The partition's assignment epoch at the last delivery; 0: never delivered.
    epoch: u32,
    /// The delivery attempt the server gave it last.
    attempt: u32,
    state: State,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
enum State {
    #[default]
    Unseen,
    Delivered,
    Nacked,
    Acked,
}

/// One reader group's deliveries.
#[derive(Debug)]
pub struct Deliveries {
    kind: Kind,
    /// Per partition, bumped by every Assignment that gives the partition to a member.
    epochs: HashMap<i32, u32>,
    /// Per partition, indexed by offset.
    slots: HashMap<i32, Vec<Slot>>,
    /// Where records of ids that were not acknowledged landed (to catch a second copy).
    unacked_positions: HashMap<u64, (i32, i64)>,
    pub delivered: u64,
    /// Deliveries of a position seen before that the rules allow.
    pub allowed_repeats: u64,
    pub violation_count: u64,
    pub violations: Vec<String>,
}

impl Deliveries {
    pub fn new(kind: Kind) -> Self {
        Self {
            kind,
            epochs: HashMap::new(),
            slots: HashMap::new(),
            unacked_positions: HashMap::new(),
            delivered: 0,
            allowed_repeats: 0,
            violation_count: 0,
            violations: Vec::new(),
        }
    }

    /// Records a broken rule.
    pub fn violation(&mut self, what: String) {
        self.violation_count += 1;
        if self.violations.len() < KEPT_VIOLATIONS {
            self.violations.push(what);
        }
    }

    /// A member received an Assignment holding `partitions`.
    pub fn assigned(&mut self, partitions: impl IntoIterator<Item = i32>) {
        for p in partitions {
            *self.epochs.entry(p).or_insert(0) += 1;
        }
    }

    /// Partitions some member was given so far.
    pub fn assigned_partitions(&self) -> usize {
        self.epochs.len()
    }

    fn slot(&mut self, partition: i32, offset: i64) -> &mut Slot {
        let slots = self.slots.entry(partition).or_default();
        let index = usize::try_from(offset).expect("offsets are not negative");
        if slots.len() <= index {
            slots.resize(index + 1, Slot::default());
        }
        &mut slots[index]
    }

    /// A record at `partition`/`offset` with `value`, delivered with `attempt` (Consume; 1
    /// for Subscribe), checked against what was sent and what this group saw before.
    pub fn deliver(
        &mut self,
        sent: &Sent,
        partition: i32,
        offset: i64,
        value: &[u8],
        attempt: u32,
    ) {
        self.delivered += 1;
        self.check_value(sent, partition, offset, value);
        if offset < 0 {
            return self.violation(format!("a negative offset {offset} on {partition}"));
        }
        let epoch = self.epochs.get(&partition).copied().unwrap_or(0).max(1);
        let previous = *self.slot(partition, offset);
        let rebalanced = previous.epoch < epoch;
        // A nack brings a record back on the same stream with the next attempt; a rebalance
        // brings anything back, at attempt 1.
        let verdict = match previous.state {
            State::Unseen => {
                (attempt != 1).then(|| format!("first delivery with attempt {attempt}"))
            }
            State::Nacked if !rebalanced && attempt != previous.attempt + 1 => Some(format!(
                "redelivered after a nack with attempt {attempt}, not {}",
                previous.attempt + 1
            )),
            State::Nacked => None,
            _ if rebalanced => None,
            state => Some(format!(
                "delivered again ({state:?}) with no rebalance in between"
            )),
        };
        if previous.state != State::Unseen && verdict.is_none() {
            self.allowed_repeats += 1;
        }
        if let Some(why) = verdict {
            self.violation(format!("{partition}/{offset}: {why}"));
        }
        *self.slot(partition, offset) = Slot {
            epoch,
            attempt,
            state: State::Delivered,
        };
    }

    /// The value at a position must be one the load sent, at the position its
    /// acknowledgement named, and (if never acknowledged) at one position only.
    fn check_value(&mut self, sent: &Sent, partition: i32, offset: i64, value: &[u8]) {
        let here = (partition, offset);
        let Some(id) = id_of(value) else {
            return self.violation(format!(
                "{partition}/{offset}: a value the load never wrote"
            ));
        };
        match sent.outcome(id) {
            None => self.violation(format!("{partition}/{offset}: id {id} was never allocated")),
            Some(Outcome::Acked(p, o)) if (p, o) != here => self.violation(format!(
                "id {id} at {partition}/{offset}, acknowledged at {p}/{o}: written twice"
            )),
            Some(Outcome::Acked(..)) => {}
            Some(Outcome::Pending | Outcome::Failed) => {
                let first = *self.unacked_positions.entry(id).or_insert(here);
                if first != here {
                    self.violation(format!(
                        "id {id} at {partition}/{offset} and at {}/{}: written twice",
                        first.0, first.1
                    ));
                }
            }
        }
    }

    /// The reader acked (Consume) the record at this position.
    pub fn acked(&mut self, partition: i32, offset: i64) {
        self.slot(partition, offset).state = State::Acked;
    }

    /// The reader nacked (Consume) the record at this position.
    pub fn nacked(&mut self, partition: i32, offset: i64) {
        self.slot(partition, offset).state = State::Nacked;
    }

    /// Acknowledged records this group has not finished (Subscribe: not delivered; Consume:
    /// not acked): how many, and the first few.
    pub fn missing(&self, sent: &Sent) -> (usize, Vec<(u64, i32, i64)>) {
        let done = |p: i32, o: i64| {
            let slot = self
                .slots
                .get(&p)
                .and_then(|s| s.get(usize::try_from(o).ok()?));
            matches!(
                (self.kind, slot.map(|s| s.state)),
                (Kind::Subscribe, Some(State::Delivered)) | (Kind::Consume, Some(State::Acked))
            )
        };
        let mut count = 0;
        let mut first = Vec::new();
        for (id, p, o) in sent.acked() {
            if !done(p, o) {
                count += 1;
                if first.len() < 5 {
                    first.push((id, p, o));
                }
            }
        }
        (count, first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(n: usize) -> Sent {
        let mut sent = Sent::default();
        for i in 0..n {
            let id = sent.allocate();
            sent.settle(id, Outcome::Acked(0, i as i64));
        }
        sent
    }

    fn v(id: u64) -> Vec<u8> {
        value_of(id).into_bytes()
    }

    #[test]
    fn a_repeat_within_one_assignment_is_a_violation_and_after_a_rebalance_is_not() {
        let sent = sent(3);
        let mut group = Deliveries::new(Kind::Subscribe);
        group.assigned([0]);
        group.deliver(&sent, 0, 0, &v(0), 1);
        group.deliver(&sent, 0, 1, &v(1), 1);
        assert_eq!(group.violation_count, 0);
        group.deliver(&sent, 0, 1, &v(1), 1);
        assert_eq!(group.violation_count, 1, "{:?}", group.violations);
        group.assigned([0]);
        group.deliver(&sent, 0, 1, &v(1), 1);
        assert_eq!((group.violation_count, group.allowed_repeats), (1, 1));
        assert_eq!(group.missing(&sent), (1, vec![(2, 0, 2)]));
    }

    #[test]
    fn consume_allows_a_nacked_record_again_with_the_next_attempt_only() {
        let sent = sent(2);
        let mut group = Deliveries::new(Kind::Consume);
        group.assigned([0]);
        group.deliver(&sent, 0, 0, &v(0), 1);
        group.nacked(0, 0);
        group.deliver(&sent, 0, 0, &v(0), 3);
        assert_eq!(group.violation_count, 1, "attempt 3 after attempt 1");
        group.nacked(0, 0);
        group.deliver(&sent, 0, 0, &v(0), 4);
        group.acked(0, 0);
        assert_eq!(group.violation_count, 1);
        group.deliver(&sent, 0, 0, &v(0), 1);
        assert_eq!(
            group.violation_count, 2,
            "an acked record again, no rebalance"
        );
        assert_eq!(
            group.missing(&sent).0,
            2,
            "record 1 never came; record 0 is out again"
        );
    }

    #[test]
    fn a_value_at_a_second_position_is_a_duplicate_write() {
        let mut sent = sent(1);
        let failed = sent.allocate();
        sent.settle(failed, Outcome::Failed);
        let mut group = Deliveries::new(Kind::Subscribe);
        group.assigned([0, 1]);
        group.deliver(&sent, 1, 0, &v(0), 1);
        group.deliver(&sent, 0, 5, &v(failed), 1);
        group.deliver(&sent, 0, 6, &v(failed), 1);
        group.deliver(&sent, 0, 7, b"not ours", 1);
        assert_eq!(group.violation_count, 3, "{:?}", group.violations);
    }
}
