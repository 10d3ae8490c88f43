//! Unit tests of `ledger`.

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

/// The nack flood: one outstanding record nacked 100,000 times, each with a shorter delay,
/// leaves one schedule entry, and the record comes due once, at the last nack's time.
#[test]
fn repeated_nacks_of_one_record_keep_one_schedule_entry() {
    let now = Instant::now();
    let mut ledger = ledger(0);
    let ids = deliver(&mut ledger, 0, [5], now);
    for i in (0..100_000u64).rev() {
        let at = now + Duration::from_millis(i);
        assert_eq!(ledger.nack(&ids[0], at), Outcome::Applied(None));
        assert_eq!(ledger.scheduled(), 1, "after nack {i}");
    }
    assert_eq!(ledger.next_due(), Some(now));
    let due = ledger.take_due(now + Duration::from_secs(1), 10);
    assert_eq!(due.len(), 1, "one redelivery, not one per nack");
    assert_eq!(ledger.scheduled(), 1, "its next deadline");
    ledger.ack(&AckId {
        attempt: 2,
        ..ids[0].clone()
    });
    assert_eq!((ledger.scheduled(), ledger.records()), (0, 0));
}

#[test]
fn skipped_records_count_as_acknowledged() {
    let mut ledger = ledger(0);
    let now = Instant::now();
    let key = (Arc::from("t"), 0);
    // Nothing outstanding: the commit point passes a skipped record at once.
    assert_eq!(ledger.skip(key.clone(), 5), Some((key.clone(), 6)));
    // A delivered record holds the commit point back; a skip above it does not move it.
    let ids = deliver(&mut ledger, 0, [6], now);
    assert_eq!(ledger.skip(key.clone(), 7), None);
    assert_eq!(ledger.records(), 1, "a skipped record is not outstanding");
    // Acking the delivered one commits past the skipped one too.
    assert_eq!(ledger.ack(&ids[0]), Outcome::Applied(Some((key, 8))));
    assert!(ledger.next_due().is_none(), "skips are never due again");
}
