//! Writing a run's progress: the changed and closed windows as R4 records, the dead letters
//! of the records the worker could not count, and the input offsets, in one Kafka
//! transaction, then the same offsets once more as a plain commit.
//!
//! One transaction is what makes the counts exactly once: either R4 has the records *and*
//! the group has the offsets they are complete up to, or neither (an aborted transaction's
//! records carry offsets beyond the commit, and every reader ignores them — see
//! [`committed`](crate::analytics::committed)). The plain commit after it is for the
//! embedded broker, which acks transactional offset commits without storing them.
//!
//! The dead letters ride in the same transaction, so they are exactly once too: an aborted
//! transaction's dead letters are aborted with it (and, like its R4 records, carry no
//! committed offset), and the next run re-reads those records and dead-letters them again.
//! A dead letter's timestamp is the worker's clock when it was written: the original's is in
//! its `x-original-timestamp` header, and a record stamped 2100 must not live in the
//! dead-letter topic until 2100 past its retention.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders, ToBytes};
use rdkafka::producer::{BaseRecord, Producer as _};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use streamgate::time::now_millis;

use super::run::{PendingDeadLetter, Run, transactional_producer};
/// Pause between two attempts at a transactional call that failed retriably.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// The least time a retried call gets, even at its deadline.
const MIN_CALL_TIME: Duration = Duration::from_millis(100);

use super::{ABANDON_MID_TRANSACTION, RunError, outage};
use crate::analytics::record::StatsRecord;

impl Run<'_> {
    /// Writes the changed and closed windows and the input offsets in one transaction.
    pub(super) fn commit(&mut self) -> Result<(), RunError> {
        let wall = now_millis();
        let (records, offsets) = self.changes(wall)?;
        if records.is_empty() && offsets.count() == 0 && self.dead_letters.pending.is_empty() {
            self.recovery.attempting([]);
            self.recovery.committed();
            return Ok(());
        }
        self.recovery
            .attempting(offsets.elements().iter().filter_map(|e| match e.offset() {
                Offset::Offset(next) => Some((e.partition(), next)),
                _ => None,
            }));
        let started = Instant::now();
        let transacted = self.transact_through_outages(&records, &offsets, wall);
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.counters
            .transaction_micros
            .fetch_add(micros, Ordering::Relaxed);
        transacted?;
        self.recovery.committed();
        let dead_letters = self.dead_letters.pending.len() as u64;
        self.dead_letters.clear();
        // The same offsets once more, outside the transaction: the embedded broker acks
        // transactional offset commits without storing them. Harmless on Kafka (equal
        // offsets); a crash between the two only means a restore from the older commit.
        // A failed plain commit (a broker outage) costs no more than that, so it does not
        // end the run: the offsets are not marked committed, and the next commit carries
        // them again.
        let plain = match offsets.count() {
            0 => Ok(()),
            _ => self.consumer.commit(&offsets, CommitMode::Sync),
        };
        match plain {
            Ok(()) => {
                for element in offsets.elements() {
                    if let Offset::Offset(next) = element.offset() {
                        self.state.committed.insert(element.partition(), next);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "analytics: the plain commit after a transaction failed; carrying on")
            }
        }
        self.counters.transactions.fetch_add(1, Ordering::Relaxed);
        self.counters
            .dead_letters
            .fetch_add(dead_letters, Ordering::Relaxed);
        Ok(())
    }

    /// What changed since the last commit: the R4 records of every changed or closed window,
    /// and the input offset of every partition whose offset moved.
    fn changes(&mut self, wall: i64) -> Result<(Vec<StatsRecord>, TopicPartitionList), RunError> {
        let mut records = Vec::new();
        let mut offsets = TopicPartitionList::new();
        for (partition, state) in &mut self.state.partitions {
            self.updates.clear();
            state.drain_updates(wall, &mut self.updates);
            let next = state.next_offset();
            for update in self.updates.drain(..) {
                records.push(StatsRecord::new(
                    update.page,
                    update.start_ms,
                    update.end_ms,
                    *partition,
                    next,
                    update.count,
                    update.is_final,
                ));
            }
            if self.state.committed.get(*partition) != Some(next) {
                offsets.add_partition_offset(
                    self.settings.input.as_str(),
                    *partition,
                    Offset::Offset(next),
                )?;
            }
        }
        Ok((records, offsets))
    }

    /// [`transact`](Self::transact), written again with the same records, dead letters and
    /// offsets while it fails the way a broker outage makes it fail, for up to
    /// [`outage::RIDE_OUT`]. Exactly once still holds: the failed attempt was aborted (its
    /// records are invisible to every reader of R4, its offsets not committed), and the
    /// windows have not moved meanwhile — this thread neither polls nor counts.
    fn transact_through_outages(
        &mut self,
        records: &[StatsRecord],
        offsets: &TopicPartitionList,
        wall: i64,
    ) -> Result<(), RunError> {
        let deadline = Instant::now() + outage::RIDE_OUT;
        loop {
            let outcome = self.transact(records, &self.dead_letters.pending, offsets, wall);
            let error = match &outcome {
                Err(RunError::Transaction(e)) if outage::is_outage(e) => e,
                _ => return outcome,
            };
            if Instant::now() >= deadline || self.shutdown.is_cancelled() {
                return outcome;
            }
            tracing::warn!(%error, "analytics: a transaction failed as the broker was out of reach; writing it again");
            self.counters
                .transaction_retries
                .fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(outage::PAUSE);
            if !self.finish_abort(deadline) {
                // The run ends with the transaction's own error; the restart's new producer
                // fences this one, and the broker aborts what it left open.
                return outcome;
            }
        }
    }

    /// Makes sure the failed transaction is aborted before the next begins: `transact`'s own
    /// abort fails too while the broker is away. An abort that is not through after
    /// [`outage::ABORT_PATIENCE`] is left to the broker: the producer is replaced (see
    /// [`replace_producer`](Self::replace_producer)). False if neither is done by
    /// `deadline`.
    fn finish_abort(&mut self, deadline: Instant) -> bool {
        let patience = Instant::now() + outage::ABORT_PATIENCE;
        while Instant::now() < deadline && !self.shutdown.is_cancelled() {
            let error = match self.producer.abort_transaction(self.settings.timeout) {
                Ok(()) => return true,
                Err(e) if outage::nothing_to_abort(&e) => return true,
                Err(e) => e,
            };
            let waiting = outage::is_outage(&error) || outage::is_retriable(&error);
            if !waiting || Instant::now() >= patience {
                tracing::warn!(%error, "analytics: the failed transaction's abort is not going through; replacing the producer");
                return self.replace_producer(deadline);
            }
            tracing::debug!(%error, "analytics: the abort is not through yet");
            std::thread::sleep(outage::PAUSE);
        }
        false
    }

    /// A new transactional producer in place of one whose transaction cannot be finished:
    /// after a lost connection librdkafka bumps the producer's epoch before it aborts
    /// (KIP-360), and a broker that does not answer that bump leaves the abort waiting for
    /// ever. The new producer has the worker's `transactional.id`, so initialising it fences
    /// the old one and has the coordinator abort its open transaction — what a restart of the
    /// run would do, without dropping the consumer and the windows. Tried until `deadline`
    /// while the broker is still away.
    fn replace_producer(&mut self, deadline: Instant) -> bool {
        while Instant::now() < deadline && !self.shutdown.is_cancelled() {
            match transactional_producer(self.client, self.settings) {
                Ok(producer) => {
                    // Dropping the fenced producer purges what it still held.
                    self.producer = producer;
                    self.counters
                        .producer_replacements
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::info!("analytics: a new transactional producer took over");
                    return true;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "analytics: the new producer cannot start yet");
                    std::thread::sleep(outage::PAUSE);
                }
            }
        }
        false
    }

    /// One transaction: `records` to R4, `dead_letters` to their topic, `offsets` to the
    /// group, commit. Aborted on error.
    fn transact(
        &self,
        records: &[StatsRecord],
        dead_letters: &[PendingDeadLetter],
        offsets: &TopicPartitionList,
        wall: i64,
    ) -> Result<(), RunError> {
        let group = self
            .consumer
            .group_metadata()
            .ok_or_else(|| RunError::Restore("the consumer has no group metadata".into()))?;
        self.producer.begin_transaction()?;
        let written = (|| -> Result<(), KafkaError> {
            for record in records {
                self.send_stats(record, wall)?;
            }
            for letter in dead_letters {
                let mut attempt = BaseRecord::to(self.settings.dead_letters.as_str())
                    .headers(letter.headers.clone());
                if let Some(key) = &letter.key {
                    attempt = attempt.key(key.as_slice());
                }
                if let Some(value) = &letter.value {
                    attempt = attempt.payload(value.as_slice());
                }
                self.send(attempt.timestamp(wall))?;
            }
            if self.abandon.load(Ordering::Acquire) == ABANDON_MID_TRANSACTION {
                // Put the records on the broker inside the open transaction, then stop.
                self.producer.flush(self.settings.timeout)?;
                return Err(KafkaError::Canceled);
            }
            let deadline = Instant::now() + self.settings.timeout;
            if offsets.count() > 0 {
                self.retrying(deadline, |left| {
                    self.producer
                        .send_offsets_to_transaction(offsets, &group, left)
                })?;
            }
            self.await_deliveries()?;
            self.retrying(deadline, |left| self.producer.commit_transaction(left))
        })();
        if let Err(e) = written {
            if self.abandon.load(Ordering::Acquire) == ABANDON_MID_TRANSACTION {
                return Err(RunError::Abandoned);
            }
            // Best effort: the broker aborts it anyway when the transaction times out.
            let _ = self.producer.abort_transaction(self.settings.timeout);
            self.counters.aborted.fetch_add(1, Ordering::Relaxed);
            // Offsets moved or dead letters in it: possibly a record's fault (`recovery`).
            return Err(RunError::Transaction(e));
        }
        Ok(())
    }

    /// Runs a transactional call again while it fails with an error librdkafka calls
    /// retriable, until `deadline`: the transaction stays open and whole meanwhile. That is
    /// what a broker outage or a reconnect to the transaction coordinator looks like (the
    /// call times out), and riding it out here keeps the run — its windows and consumer —
    /// instead of aborting and restoring from R4. Anything else, or the deadline, fails the
    /// transaction.
    fn retrying(
        &self,
        deadline: Instant,
        mut call: impl FnMut(Duration) -> Result<(), KafkaError>,
    ) -> Result<(), KafkaError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match call(left.max(MIN_CALL_TIME)) {
                Err(KafkaError::Transaction(e))
                    if e.is_retriable() && Instant::now() < deadline =>
                {
                    tracing::debug!(error = %e, "analytics: transactional call failed; retrying");
                    self.counters
                        .transaction_retries
                        .fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(RETRY_PAUSE);
                }
                other => return other,
            }
        }
    }

    /// Waits until every record of the transaction is acknowledged (or failed: the commit
    /// then fails). `commit_transaction` would wait itself, but the Rust wrapper's flush
    /// sleeps through a whole 100 ms poll whenever a record is still out — the producer's
    /// own thread takes the acknowledgement — and the worker counts nothing meanwhile: a
    /// tenth of a second per transaction, where the acknowledgement takes a millisecond or two.
    fn await_deliveries(&self) -> Result<(), KafkaError> {
        let deadline = Instant::now() + self.settings.timeout;
        while self.producer.in_flight_count() > 0 {
            if Instant::now() >= deadline {
                return Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    fn send_stats(&self, record: &StatsRecord, wall: i64) -> Result<(), KafkaError> {
        let (key, value) = (record.key(), record.to_json());
        let headers = OwnedHeaders::new().insert(Header {
            key: "content-type",
            value: Some("application/json"),
        });
        self.send(
            BaseRecord::to(self.settings.output.as_str())
                .key(key.as_bytes())
                .payload(value.as_slice())
                .headers(headers)
                .timestamp(wall),
        )
    }

    fn send<K, P>(&self, mut attempt: BaseRecord<'_, K, P>) -> Result<(), KafkaError>
    where
        K: ToBytes + ?Sized,
        P: ToBytes + ?Sized,
    {
        let deadline = Instant::now() + self.settings.timeout;
        loop {
            match self.producer.send(attempt) {
                Ok(()) => return Ok(()),
                // A full local queue is backpressure: wait for deliveries, within the bound.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if Instant::now() < deadline =>
                {
                    attempt = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(e),
            }
        }
    }
}
