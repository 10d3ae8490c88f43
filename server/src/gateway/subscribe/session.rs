//! The session: the task that feeds one Subscribe stream. Each time the consumer has a
//! record it takes every record librdkafka already holds behind it (within the batch bounds)
//! and hands them to the response stream's channel as one [`Delivery`], so the per-record
//! cost is encoding it ([`WireRecord`], into the session's arena) and nothing else: no
//! channel send, no wake-up, no budget check, no allocation of its own. It announces every (group) assignment, tracks `stop_at_end` and `max_records`,
//! and when it ends on its own terms waits until the last record was handed over and
//! commits before the stream closes.
//!
//! It owns the consumer: whichever way the session ends, it closes the consumer (leaving the
//! group), on the blocking pool.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::BytesMut;
use futures::{FutureExt, StreamExt};
use rdkafka::Offset;
use rdkafka::consumer::{CommitMode, Consumer, MessageStream};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use streamgate::proto::{self, SubscribeResponse, subscribe_response};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::consumer::{SubscriptionConsumer, SubscriptionContext, is_fatal};
use super::mask::RecordMask;
use super::plan::Plan;
use super::start::Start;
use super::stream::{Delivery, Item, MAX_BATCH_RECORDS};
use super::wire::WireRecord;
use crate::admission::Permit;
use crate::auth::Principal;
use crate::gateway::State;
use crate::gateway::error::GatewayError;
use crate::gateway::select::{Selector, Verdict};
use crate::kafka;

/// The running side of one subscription.
pub struct Session {
    state: Arc<State>,
    consumer: Arc<SubscriptionConsumer>,
    tx: mpsc::Sender<Item>,
    group: Option<String>,
    start: Start,
    stop_at_end: bool,
    max_records: Option<u64>,
    /// The fields of each record to send.
    mask: RecordMask,
    /// The stream's filter and decoding, with its topics' schemas as they were at the start.
    selector: Selector,
    delivered: u64,
    announced: bool,
    /// With `stop_at_end`: partitions not yet read up to their end offset.
    pending_ends: HashMap<(Arc<str>, i32), i64>,
    /// Interned topic names, so positions do not allocate one each.
    topic_names: Vec<Arc<str>>,
    /// Where records are encoded; each delivery takes its bytes off the front (see
    /// [`Delivery`]), and a block is reused once every delivery in it was sent.
    arena: BytesMut,
    /// Bytes of records waiting between this session and the transport
    /// (`--subscribe-buffer-bytes`): each record holds its cost until it is taken.
    budget: Arc<Semaphore>,
    /// Records waiting between this session and the transport (`--subscribe-buffer`).
    room: Arc<Semaphore>,
    _permit: Permit,
    /// Whose read quota the stream's records count in.
    principal: Principal,
}

impl Session {
    /// A session for `plan`, sending to `tx`; holds its subscription `permit` until it ends.
    pub fn new(
        state: Arc<State>,
        consumer: Arc<SubscriptionConsumer>,
        tx: mpsc::Sender<Item>,
        plan: &Plan,
        permit: Permit,
        principal: Principal,
    ) -> Self {
        Self {
            principal,
            consumer,
            tx,
            group: plan.group.clone(),
            start: plan.start,
            stop_at_end: plan.stop_at_end,
            max_records: plan.max_records,
            mask: plan.mask,
            selector: Selector::new(
                plan.selection.clone(),
                plan.topics.iter().map(|t| t.as_str()),
                &state.schemas.current(),
                state.value_limits(),
                state.records.clone(),
            ),
            delivered: 0,
            announced: false,
            pending_ends: HashMap::new(),
            topic_names: plan.topics.iter().map(|t| Arc::from(t.as_str())).collect(),
            arena: BytesMut::new(),
            budget: Arc::new(Semaphore::new(state.limits.subscribe_buffer_bytes)),
            room: Arc::new(Semaphore::new(state.limits.subscribe_buffer)),
            _permit: permit,
            state,
        }
    }

    /// Another handle on the stream's channel (to end it with a status from outside).
    pub fn sender(&self) -> mpsc::Sender<Item> {
        self.tx.clone()
    }

    /// Feeds the stream until it ends (on its own terms, client gone, shutdown, fatal error),
    /// then closes the consumer.
    pub async fn run(mut self) {
        let consumer = self.consumer.clone();
        // One message stream for the whole session: it registers its waker once.
        let mut messages = consumer.stream();
        let ended_on_own_terms = loop {
            if self.announced && self.finished() {
                self.finish().await;
                break true;
            }
            tokio::select! {
                biased;
                _ = self.state.shutdown.cancelled() => {
                    let _ = self.tx.try_send(Item::Error(GatewayError::ShuttingDown.into()));
                    break false;
                }
                _ = self.tx.closed() => break false,
                _ = consumer.context().changed(), if self.group.is_some() => {
                    if consumer.context().take_changed() && !self.announce_group_assignment().await {
                        break false;
                    }
                }
                Some(received) = messages.next() => {
                    if !self.deliver_ready(received, &mut messages).await {
                        break false;
                    }
                }
            }
        };
        drop(messages);
        drop(consumer);
        let Session {
            consumer,
            tx,
            state,
            group,
            ..
        } = self;
        if ended_on_own_terms {
            // Leave the group before the client sees the end, so that its next stream of the
            // same group joins a settled group instead of racing this member's departure.
            kafka::consumer::close_within(
                consumer,
                group.as_deref().unwrap_or(""),
                &state.tasks,
                state.request_timeout,
            )
            .await;
        } else {
            kafka::consumer::close_detached(consumer, &state.tasks);
        }
        drop(tx);
    }

    /// Delivers `first` and every message librdkafka already holds behind it, in batches;
    /// false once the stream is over (client gone, shutdown, a fatal error).
    async fn deliver_ready(
        &mut self,
        first: KafkaResult<BorrowedMessage<'_>>,
        messages: &mut MessageStream<'_, SubscriptionContext>,
    ) -> bool {
        let max_records = MAX_BATCH_RECORDS.min(self.state.limits.subscribe_buffer);
        let mut batch = Delivery::default();
        // The decoded value's fields of the record being encoded, reused.
        let mut extra = Vec::new();
        let mut next = Some(first);
        while let Some(received) = next.take() {
            // A rebalance runs inside the poll that returned this message: the new
            // assignment is announced after what was read before it, and before this record.
            let reassigned = self.group.is_some() && self.consumer.context().take_changed();
            let mut full = reassigned.then(|| self.seal(&mut batch));
            // The message borrows the consumer: it is encoded before anything is awaited.
            let received = received.map(|message| {
                extra.clear();
                if !self.selector.is_passthrough() {
                    match self.selector.judge(&message) {
                        Verdict::Skip => {
                            if !batch.has_room(0, max_records) {
                                full = Some(self.seal(&mut batch));
                            }
                            let topic = self.intern(message.topic());
                            let at = (message.partition(), message.offset());
                            batch.skip(&topic, at);
                            self.passed(topic, at);
                            return;
                        }
                        Verdict::Send(Some(decoded)) => decoded.encode_fields(&mut extra),
                        Verdict::Send(None) => {}
                    }
                }
                let record = WireRecord::new(&message, self.mask).with_extra(&extra);
                if !batch.has_room(record.entry_len(), max_records) {
                    full = Some(self.seal(&mut batch));
                }
                let topic = self.intern(record.topic());
                let at = record.position();
                batch.push(&mut self.arena, &record, &topic, at);
                self.delivered += 1;
                self.passed(topic, at);
            });
            if let Some(full) = full
                && !self.send_batch(full).await
            {
                return false;
            }
            if reassigned && !self.announce_group_assignment().await {
                return false;
            }
            match received {
                Ok(()) => {}
                Err(KafkaError::PartitionEOF(_)) => self.drop_partitions_at_end(),
                Err(e) if is_fatal(&e) => {
                    let last = self.seal(&mut batch);
                    let _ = self.send_batch(last).await;
                    let _ = self
                        .deliver(Item::Error(GatewayError::Kafka(e).into()))
                        .await;
                    return false;
                }
                Err(e) => tracing::warn!(error = %e, "subscription consumer error; retrying"),
            }
            if self.announced && self.finished() {
                break;
            }
            next = messages.next().now_or_never().flatten();
        }
        let last = self.seal(&mut batch);
        self.send_batch(last).await
    }

    /// Takes the records of `batch` (leaving it empty) with their bytes from the arena.
    fn seal(&mut self, batch: &mut Delivery) -> Delivery {
        let mut sealed = std::mem::take(batch);
        sealed.seal(&mut self.arena);
        sealed
    }

    /// With `stop_at_end`: drops the record's partition from those still to be read once the
    /// record is its last one.
    fn passed(&mut self, topic: Arc<str>, (partition, offset): (i32, i64)) {
        if self.pending_ends.is_empty() {
            return;
        }
        let key = (topic, partition);
        if self
            .pending_ends
            .get(&key)
            .is_some_and(|end| offset + 1 >= *end)
        {
            self.pending_ends.remove(&key);
        }
    }

    fn finished(&self) -> bool {
        self.max_records.is_some_and(|max| self.delivered >= max)
            || (self.stop_at_end && self.pending_ends.is_empty())
    }

    /// Sends one item, unless the client left or the server shuts down.
    async fn deliver(&self, item: Item) -> bool {
        tokio::select! {
            sent = self.tx.send(item) => sent.is_ok(),
            _ = self.state.shutdown.cancelled() => false,
        }
    }

    /// Sends the records of `delivery` (sealed) once the buffer has room for them: their
    /// count in `--subscribe-buffer`, their bytes in `--subscribe-buffer-bytes` (a batch
    /// larger than the whole byte budget waits until the buffer is empty, then goes alone).
    async fn send_batch(&self, mut delivery: Delivery) -> bool {
        if delivery.is_empty() {
            return true;
        }
        let (count, size) = (delivery.len(), delivery.bytes);
        if !self
            .state
            .wait_for_read_quota(&self.principal, count, size)
            .await
        {
            return false;
        }
        let capacity = self.state.limits.subscribe_buffer_bytes;
        let bytes = u32::try_from(delivery.bytes.min(capacity)).unwrap_or(u32::MAX);
        let records = u32::try_from(delivery.len()).unwrap_or(u32::MAX);
        let budget = async {
            let bytes = self.budget.clone().acquire_many_owned(bytes).await.ok()?;
            let records = self.room.clone().acquire_many_owned(records).await.ok()?;
            Some([bytes, records])
        };
        let budget = tokio::select! {
            budget = budget => budget,
            _ = self.tx.closed() => None,
            _ = self.state.shutdown.cancelled() => None,
        };
        match budget {
            Some(budget) => {
                delivery.budget.extend(budget);
                self.deliver(Item::Records(delivery)).await
            }
            None => false,
        }
    }

    /// Sends an Assignment and records the end offsets `stop_at_end` waits for.
    pub async fn announce(
        &mut self,
        starts: Vec<proto::PartitionStart>,
        group: Option<String>,
    ) -> bool {
        self.pending_ends.clear();
        let stop_at_end = self.stop_at_end;
        for s in starts.iter().filter(|_| stop_at_end) {
            if s.start_offset < s.high_watermark {
                let topic = self.intern(&s.topic);
                self.pending_ends
                    .insert((topic, s.partition), s.high_watermark);
            }
        }
        self.announced = true;
        let message = SubscribeResponse {
            message: Some(subscribe_response::Message::Assignment(proto::Assignment {
                partitions: starts,
                group,
            })),
        };
        self.deliver(Item::Message(message)).await
    }

    /// Announces where a group stream starts in each partition it was just given (see
    /// [`assignment`](super::assignment)).
    async fn announce_group_assignment(&mut self) -> bool {
        match super::assignment::group_starts(&self.state, &self.consumer, self.start).await {
            Some(starts) => self.announce(starts, self.group.clone()).await,
            None => true,
        }
    }

    /// After an end-of-partition event: drops every pending partition whose position
    /// reached its end (covers control records, which never arrive as messages).
    fn drop_partitions_at_end(&mut self) {
        let Ok(positions) = self.consumer.position() else {
            return;
        };
        for element in positions.elements() {
            if let Offset::Offset(position) = element.offset() {
                let key = (self.intern(element.topic()), element.partition());
                if self
                    .pending_ends
                    .get(&key)
                    .is_some_and(|end| position >= *end)
                {
                    self.pending_ends.remove(&key);
                }
            }
        }
    }

    /// Ends the stream on our own terms: waits until every record was handed to the
    /// transport, then commits the group's offsets before the stream closes.
    async fn finish(&self) {
        let (handed_over, done) = oneshot::channel();
        if self.deliver(Item::Barrier(handed_over)).await {
            tokio::select! {
                _ = done => {}
                _ = self.tx.closed() => {}
                _ = self.state.shutdown.cancelled() => {}
            }
        }
        if self.group.is_some() {
            let consumer = self.consumer.clone();
            let commit = tokio::task::spawn_blocking(move || {
                consumer.commit_consumer_state(CommitMode::Sync)
            });
            match tokio::time::timeout(self.state.request_timeout, commit).await {
                Ok(Ok(Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)))) => {}
                Ok(Ok(Err(e))) => {
                    tracing::warn!(error = %e, "final commit of a subscription failed")
                }
                Ok(Err(_)) | Err(_) => {
                    tracing::warn!("final commit of a subscription did not finish")
                }
            }
        }
    }

    fn intern(&mut self, topic: &str) -> Arc<str> {
        // A scan, not a hash map: a stream reads few topics, and this runs for every record.
        if let Some(name) = self.topic_names.iter().find(|name| ***name == *topic) {
            return name.clone();
        }
        let name: Arc<str> = Arc::from(topic);
        self.topic_names.push(name.clone());
        name
    }
}
