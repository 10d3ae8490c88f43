//! The session: the task behind one Consume stream. It reads the client's acks and nacks,
//! delivers records from the group consumer in batches while the stream has room, pauses
//! fetching when it has none, redelivers what came due, dead-letters what used up its
//! attempts, and announces every assignment.
//!
//! Offsets: the consumer auto-commits (every second, on revocation, on close) what the
//! session *stored*, and the session stores a partition's offset only when the ledger's
//! acknowledged prefix moves. So whichever way the stream ends — the client's half-close,
//! a cancel, a lost connection, a crash of the server — nothing unacknowledged is committed.
//!
//! The session never waits on the client: responses go through its [`Outbox`].

use std::collections::HashMap;
use std::sync::Arc;

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use streamgate::proto::{self, ConsumeRequest, ConsumeResponse, ConsumedRecord, consume_response};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Duration, Instant};
use tonic::{Status, Streaming};

use super::dead_letters::{self, Writing};
use super::ledger::{DeadLetterTicket, Due, Ledger, PartitionKey, Rules};
use super::options::Pacing;
use super::outbox::{Outbox, Response, records, unknown_starts};
use crate::admission::Permit;
use crate::auth::Principal;
use crate::gateway::State;
use crate::gateway::error::{GatewayError, is_bad_request, request_error};
use crate::gateway::select::{Selector, Verdict};
use crate::gateway::subscribe::assignment::group_starts;
use crate::gateway::subscribe::consumer::{SubscriptionConsumer, is_fatal};
use crate::gateway::subscribe::record::{cost, to_record};
use crate::gateway::subscribe::start::Start;
use crate::kafka;

mod requests;
/// Most records in one response.
const MAX_BATCH_RECORDS: usize = 1000;
/// Most bytes in one response, unless its only record is larger.
const MAX_BATCH_BYTES: usize = 1024 * 1024;
/// Pause before writing a dead letter again after a failure.
const DEAD_LETTER_RETRY: Duration = Duration::from_secs(5);

/// Why the session ended.
enum End {
    /// The client closed its side: commit what was acked, then end with OK.
    Finished,
    /// The client cancelled or went away.
    ClientGone,
    /// The server shuts down.
    Shutdown,
    /// The stream cannot go on.
    Failed(Status),
}

/// The running side of one Consume stream.
pub struct Session {
    state: Arc<State>,
    consumer: Arc<SubscriptionConsumer>,
    requests: Streaming<ConsumeRequest>,
    /// How the stream ends: `None` for OK, else this status.
    end: oneshot::Sender<Option<Status>>,
    outbox: Outbox,
    group: String,
    start: Start,
    pacing: Pacing,
    ledger: Ledger,
    /// The stream's filter and decoding.
    selector: Selector,
    /// Whether the assigned partitions are paused (the ledger is full).
    paused: bool,
    /// Interned topic names.
    topics: HashMap<String, Arc<str>>,
    dead_letters: FuturesUnordered<Writing>,
    /// Acks and nacks of another stream or an earlier assignment, ignored.
    stale: u64,
    _permit: Permit,
    principal: Principal,
}

/// What [`Session::new`] needs about the stream.
pub struct Opened {
    /// The stream's filter and decoding.
    pub selector: Selector,
    /// The group consumer, subscribed.
    pub consumer: Arc<SubscriptionConsumer>,
    /// The client's requests after `start`.
    pub requests: Streaming<ConsumeRequest>,
    /// Where responses go.
    pub tx: mpsc::Sender<Response>,
    /// Where the final status goes.
    pub end: oneshot::Sender<Option<Status>>,
    /// The group.
    pub group: String,
    /// The start position (for partitions without a commit).
    pub start: Start,
    /// How the stream is paced.
    pub pacing: Pacing,
    /// The stream's share of `--max-subscriptions`.
    pub permit: Permit,
    /// Whose read quota its records count in.
    pub principal: Principal,
}

impl Session {
    /// A session over an opened stream.
    pub fn new(state: Arc<State>, opened: Opened) -> Self {
        let rules = Rules {
            stream: rand::random(),
            ack_deadline: opened.pacing.ack_deadline,
            max_attempts: opened.pacing.max_attempts,
        };
        Self {
            state,
            selector: opened.selector,
            consumer: opened.consumer,
            requests: opened.requests,
            end: opened.end,
            outbox: Outbox::new(opened.tx),
            group: opened.group,
            start: opened.start,
            pacing: opened.pacing,
            principal: opened.principal,
            ledger: Ledger::new(rules),
            paused: false,
            topics: HashMap::new(),
            dead_letters: FuturesUnordered::new(),
            stale: 0,
            _permit: opened.permit,
        }
    }

    /// Serves the stream until it ends, then commits (on a clean end) and closes the
    /// consumer.
    pub async fn run(mut self) {
        let end = self.serve().await;
        if self.stale > 0 {
            tracing::debug!(group = %self.group, stale = self.stale, "Consume stream ignored acks of earlier assignments");
        }
        let Session {
            consumer,
            outbox,
            end: final_status,
            state,
            group,
            ..
        } = self;
        let status = match end {
            End::Finished => {
                commit(&state, &consumer).await;
                // Leave the group before the client sees the end, so that its next stream
                // joins a settled group.
                kafka::consumer::close_within(
                    consumer,
                    &group,
                    &state.tasks,
                    state.request_timeout,
                )
                .await;
                None
            }
            End::ClientGone => {
                kafka::consumer::close_detached(consumer, &state.tasks);
                None
            }
            End::Shutdown => {
                kafka::consumer::close_detached(consumer, &state.tasks);
                Some(GatewayError::ShuttingDown.into())
            }
            End::Failed(status) => {
                kafka::consumer::close_detached(consumer, &state.tasks);
                Some(status)
            }
        };
        // The status first: the stream reads it once the channel is closed.
        let _ = final_status.send(status);
        drop(outbox);
    }

    async fn serve(&mut self) -> End {
        let consumer = self.consumer.clone();
        loop {
            let due = self.ledger.next_due();
            // Redeliver only once the client has taken everything sent before: a record
            // still queued for a slow client is not late, and must not be queued twice.
            let drained = self.outbox.is_drained();
            tokio::select! {
                biased;
                _ = self.state.shutdown.cancelled() => return End::Shutdown,
                _ = self.outbox.closed() => return End::ClientGone,
                room = self.outbox.room(), if self.outbox.has_queued() => {
                    if !room {
                        return End::ClientGone;
                    }
                    self.outbox.move_queued();
                }
                request = self.requests.message() => match request {
                    Ok(Some(request)) => {
                        if let Err(status) = self.handle(request) {
                            return End::Failed(status);
                        }
                    }
                    Ok(None) => return End::Finished,
                    Err(status) => match request_error(status) {
                        bad if is_bad_request(&bad) => return End::Failed(bad),
                        _ => return End::ClientGone,
                    },
                },
                _ = consumer.context().changed() => {
                    if consumer.context().take_changed() {
                        self.rebalanced().await;
                    }
                }
                written = self.dead_letters.next(), if !self.dead_letters.is_empty() => {
                    if let Some((ticket, result)) = written {
                        self.dead_letter_written(ticket, result);
                    }
                }
                _ = sleep_until(due), if due.is_some() && drained => self.redeliver_due(),
                // Something will come due, but the client has not taken everything yet: wake
                // once it has, so that the deadline above is armed. (Waiting for the deadline
                // instead would never wake on a stream where nothing else happens.)
                _ = self.outbox.emptied(), if due.is_some() && !drained => {}
                received = consumer.recv() => {
                    // Convert at once: the message borrows the consumer and is not Send.
                    let first = received.map(|m| self.convert(&m));
                    if let Err(status) = self.deliver_ready(first, &consumer).await {
                        return End::Failed(status);
                    }
                }
            }
        }
    }

    /// Delivers `first` and every record already waiting in the consumer, as one batch,
    /// while the ledger and the batch have room.
    async fn deliver_ready(
        &mut self,
        first: Result<Read, KafkaError>,
        consumer: &SubscriptionConsumer,
    ) -> Result<(), Status> {
        let now = Instant::now();
        let mut batch: Vec<ConsumedRecord> = Vec::new();
        let mut batch_bytes = 0;
        // Records the filter left out: they end a batch too, so a long run of them yields.
        let mut skipped = 0;
        let mut next = Some(first);
        while let Some(received) = next.take() {
            if consumer.context().take_changed() {
                // Whatever came before belongs to the revoked assignment.
                batch.clear();
                batch_bytes = 0;
                self.rebalanced().await;
            }
            match received {
                Ok(Read::Record(topic, record)) => {
                    let bytes = cost(&record);
                    batch_bytes += bytes;
                    batch.push(self.ledger.deliver(topic, record, bytes, now));
                }
                Ok(Read::Skipped(topic, partition, offset)) => {
                    skipped += 1;
                    self.state.records.filtered(&topic, 1);
                    // As if delivered and acknowledged at once.
                    if let Some((key, point)) = self.ledger.skip((topic, partition), offset) {
                        self.store(&key, point);
                    }
                }
                Err(e) if is_fatal(&e) => return Err(GatewayError::Kafka(e).into()),
                Err(e) => tracing::warn!(error = %e, "Consume consumer error; retrying"),
            }
            if self.is_full()
                || batch.len() + skipped >= MAX_BATCH_RECORDS
                || batch_bytes >= MAX_BATCH_BYTES
            {
                break;
            }
            next = consumer
                .recv()
                .now_or_never()
                .map(|r| r.map(|m| self.convert(&m)));
        }
        if !batch.is_empty() {
            if !self
                .state
                .wait_for_read_quota(&self.principal, batch.len(), batch_bytes)
                .await
            {
                return Ok(());
            }
            self.outbox.send(records(batch));
        }
        self.update_pause();
        Ok(())
    }

    /// A new assignment: forget what was outstanding (the consumer fetches it again from
    /// the group's commit), and announce where the stream now starts.
    async fn rebalanced(&mut self) {
        self.ledger.reassign();
        let assignment = self.consumer.assignment().unwrap_or_default();
        // A pause is not meant to outlive the assignment it was made for.
        let _ = self.consumer.resume(&assignment);
        self.paused = false;
        let starts = match group_starts(&self.state, &self.consumer, self.start).await {
            Some(starts) => starts,
            None => unknown_starts(&assignment),
        };
        self.outbox.send(Ok(ConsumeResponse {
            message: Some(consume_response::Message::Assignment(proto::Assignment {
                partitions: starts,
                group: Some(self.group.clone()),
            })),
        }));
    }

    /// Redelivers (or dead-letters) what came due, as far as the stream has room.
    fn redeliver_due(&mut self) {
        let room = self.pacing.max_outstanding.clamp(1, MAX_BATCH_RECORDS);
        let mut batch = Vec::new();
        for due in self.ledger.take_due(Instant::now(), room) {
            match due {
                Due::Redeliver(record) => batch.push(record),
                Due::DeadLetter(ticket) => self.dead_letters.push(dead_letters::write(
                    self.state.clone(),
                    self.group.clone(),
                    ticket,
                )),
            }
        }
        if !batch.is_empty() {
            self.outbox.send(records(batch));
        }
    }

    fn dead_letter_written(&mut self, ticket: DeadLetterTicket, result: Result<(), String>) {
        match result {
            Ok(()) => {
                self.state.records.consume_dead_letter();
                if let Some((key, offset)) = self.ledger.dead_lettered(&ticket) {
                    self.store(&key, offset);
                }
                self.update_pause();
            }
            Err(e) => {
                tracing::warn!(group = ?self.group, topic = ?ticket.record.topic, offset = ticket.record.offset, error = %e, "could not write a Consume dead letter; retrying");
                self.ledger
                    .dead_letter_failed(&ticket, Instant::now() + DEAD_LETTER_RETRY);
            }
        }
    }

    /// Stores `offset` (the next to consume) for the group's commit.
    fn store(&self, (topic, partition): &PartitionKey, offset: i64) {
        let mut list = TopicPartitionList::new();
        if list
            .add_partition_offset(topic, *partition, Offset::Offset(offset))
            .is_ok()
            // Fails only for a partition revoked meanwhile: its records come back.
            && let Err(e) = self.consumer.store_offsets(&list)
        {
            tracing::debug!(error = %e, topic = %topic, partition, "could not store a Consume offset");
        }
    }

    fn is_full(&self) -> bool {
        self.ledger.records() >= self.pacing.max_outstanding
            || self.ledger.bytes() >= self.pacing.max_outstanding_bytes
    }

    /// Pauses fetching when the ledger is full, resumes it when it has room again.
    fn update_pause(&mut self) {
        let full = self.is_full();
        if full == self.paused {
            return;
        }
        let Ok(assignment) = self.consumer.assignment() else {
            return;
        };
        let result = if full {
            self.consumer.pause(&assignment)
        } else {
            self.consumer.resume(&assignment)
        };
        match result {
            Ok(()) => self.paused = full,
            Err(e) => {
                tracing::warn!(error = %e, full, "could not pause or resume a Consume stream")
            }
        }
    }

    fn convert(&mut self, message: &rdkafka::message::BorrowedMessage<'_>) -> Read {
        let topic = match self.topics.get(message.topic()) {
            Some(name) => name.clone(),
            None => {
                let name: Arc<str> = Arc::from(message.topic());
                self.topics.insert(message.topic().to_owned(), name.clone());
                name
            }
        };
        let decoded = match self.selector.judge(message) {
            Verdict::Skip => {
                return Read::Skipped(topic, message.partition(), message.offset());
            }
            Verdict::Send(decoded) => decoded,
        };
        let mut record = to_record(message);
        if let Some(decoded) = decoded {
            decoded.set_on(&mut record);
        }
        Read::Record(topic, record)
    }
}

/// A record read from the consumer, as the stream sees it. Moved once, straight into the
/// ledger or dropped: boxing the record would cost an allocation per record for nothing.
#[allow(clippy::large_enum_variant)]
enum Read {
    /// To deliver.
    Record(Arc<str>, proto::Record),
    /// Left out by the filter, at this partition and offset.
    Skipped(Arc<str>, i32, i64),
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Commits what the session stored, before a clean end.
async fn commit(state: &State, consumer: &Arc<SubscriptionConsumer>) {
    let consumer = consumer.clone();
    let commit =
        tokio::task::spawn_blocking(move || consumer.commit_consumer_state(CommitMode::Sync));
    match tokio::time::timeout(state.request_timeout, commit).await {
        Ok(Ok(Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)))) => {}
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "final commit of a Consume stream failed"),
        Ok(Err(_)) | Err(_) => tracing::warn!("final commit of a Consume stream did not finish"),
    }
}
