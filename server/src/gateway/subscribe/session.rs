//! The session: the task that feeds one Subscribe stream. It receives records from the
//! consumer and hands them to the response stream's channel, announces every (group)
//! assignment, tracks `stop_at_end` and `max_records`, and when it ends on its own terms
//! waits until the last record was handed over and commits before the stream closes.
//!
//! It owns the consumer: whichever way the session ends, it closes the consumer (leaving the
//! group), on the blocking pool.

use std::collections::HashMap;
use std::sync::Arc;

use rdkafka::Offset;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use streamgate::proto::{self, SubscribeResponse, subscribe_response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use super::consumer::{SubscriptionConsumer, is_fatal};
use super::plan::Plan;
use super::record::{self, to_record};
use super::start::Start;
use super::stream::{Item, RecordPosition};
use crate::error::GatewayError;
use crate::gateway::State;
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
    delivered: u64,
    announced: bool,
    /// With `stop_at_end`: partitions not yet read up to their end offset.
    pending_ends: HashMap<(Arc<str>, i32), i64>,
    /// Interned topic names, so records do not allocate one each.
    topic_names: HashMap<String, Arc<str>>,
    /// Bytes of records waiting between this session and the transport
    /// (`--subscribe-buffer-bytes`): each record holds its cost until it is taken.
    budget: Arc<Semaphore>,
    _permit: OwnedSemaphorePermit,
}

impl Session {
    /// A session for `plan`, sending to `tx`; holds its subscription `permit` until it ends.
    pub fn new(
        state: Arc<State>,
        consumer: Arc<SubscriptionConsumer>,
        tx: mpsc::Sender<Item>,
        plan: &Plan,
        permit: OwnedSemaphorePermit,
    ) -> Self {
        Self {
            consumer,
            tx,
            group: plan.group.clone(),
            start: plan.start,
            stop_at_end: plan.stop_at_end,
            max_records: plan.max_records,
            delivered: 0,
            announced: false,
            pending_ends: HashMap::new(),
            topic_names: plan
                .topics
                .iter()
                .map(|t| (t.to_string(), Arc::from(t.as_str())))
                .collect(),
            budget: Arc::new(Semaphore::new(state.limits.subscribe_buffer_bytes)),
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
        let mut ended_on_own_terms = false;
        loop {
            if self.announced && self.finished() {
                self.finish().await;
                ended_on_own_terms = true;
                break;
            }
            tokio::select! {
                biased;
                _ = self.state.shutdown.cancelled() => {
                    let _ = self.tx.try_send(Item::Error(GatewayError::ShuttingDown.into()));
                    break;
                }
                _ = self.tx.closed() => break,
                _ = consumer.context().changed(), if self.group.is_some() => {
                    if consumer.context().take_changed() && !self.announce_group_assignment().await {
                        break;
                    }
                }
                received = consumer.recv() => {
                    // Convert before any await: the message borrows the consumer.
                    let received = received.map(|m| self.record_item(&m));
                    if self.group.is_some() && consumer.context().take_changed() && !self.announce_group_assignment().await {
                        break;
                    }
                    match received {
                        Ok((item, cost, topic, partition, offset)) => {
                            if !self.deliver_record(item, cost).await {
                                break;
                            }
                            self.delivered += 1;
                            if let Some(end) = self.pending_ends.get(&(topic.clone(), partition))
                                && offset + 1 >= *end
                            {
                                self.pending_ends.remove(&(topic, partition));
                            }
                        }
                        Err(KafkaError::PartitionEOF(_)) => self.drop_partitions_at_end(),
                        Err(e) if is_fatal(&e) => {
                            let _ = self.deliver(Item::Error(GatewayError::Kafka(e).into())).await;
                            break;
                        }
                        Err(e) => tracing::warn!(error = %e, "subscription consumer error; retrying"),
                    }
                }
            }
        }
        drop(consumer);
        let Session {
            consumer,
            tx,
            state,
            ..
        } = self;
        if ended_on_own_terms {
            // Leave the group before the client sees the end, so that its next stream of the
            // same group joins a settled group instead of racing this member's departure.
            kafka::consumer::close(consumer).await;
        } else {
            kafka::consumer::close_detached(consumer, &state.tasks);
        }
        drop(tx);
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

    /// Sends a record once the byte budget has room for its `cost` (a record larger than
    /// the whole budget waits until the buffer is empty, then goes alone).
    async fn deliver_record(&self, item: Item, cost: usize) -> bool {
        let capacity = self.state.limits.subscribe_buffer_bytes;
        let permits = u32::try_from(cost.min(capacity)).unwrap_or(u32::MAX);
        let budget = tokio::select! {
            budget = self.budget.clone().acquire_many_owned(permits) => budget.ok(),
            _ = self.tx.closed() => None,
            _ = self.state.shutdown.cancelled() => None,
        };
        match (budget, item) {
            (Some(budget), Item::Record(record, position, cost, _)) => {
                self.deliver(Item::Record(record, position, cost, Some(budget)))
                    .await
            }
            (Some(_), other) => self.deliver(other).await,
            (None, _) => false,
        }
    }

    /// Sends an Assignment and records the end offsets `stop_at_end` waits for.
    pub async fn announce(
        &mut self,
        starts: Vec<proto::PartitionStart>,
        group: Option<String>,
    ) -> bool {
        self.pending_ends.clear();
        for s in &starts {
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
        if let Some(name) = self.topic_names.get(topic) {
            return name.clone();
        }
        let name: Arc<str> = Arc::from(topic);
        self.topic_names.insert(topic.to_owned(), name.clone());
        name
    }

    /// The item for one record, with its cost against the byte budget.
    fn record_item(&mut self, message: &BorrowedMessage<'_>) -> (Item, usize, Arc<str>, i32, i64) {
        let topic = self.intern(message.topic());
        let record = to_record(message);
        let cost = record::cost(&record);
        let position = RecordPosition {
            topic: topic.clone(),
            partition: message.partition(),
            offset: message.offset(),
        };
        (
            Item::Record(record, position, cost, None),
            cost,
            topic,
            message.partition(),
            message.offset(),
        )
    }
}
