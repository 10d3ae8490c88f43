//! Subscribe: one Kafka consumer per stream, feeding a bounded channel that tonic drains at
//! the client's pace (so a slow client slows only its own consumer).
//!
//! Without a group the stream assigns itself every partition at the resolved start offsets.
//! With a group it subscribes, announces each assignment it gets, and stores a record's offset
//! only once the record was handed to the transport (see [`stream`]). Ending on its own
//! (`max_records`, `stop_at_end`) waits until the last record was handed over and commits
//! synchronously before the stream closes, so the next stream of the group continues exactly.

mod consumer;
mod start;
mod stream;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use streamgate::page_event::PageEvent;
use streamgate::proto::{
    self, SubscribeRequest, SubscribeResponse, start_position, subscribe_response,
};
use streamgate::topic::TopicName;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio::time::Instant;

pub use self::consumer::SubscriptionConsumer;
use self::consumer::SubscriptionContext;
use self::start::{Start, TimestampSearch};
pub use self::stream::SubscribeStream;
use self::stream::{Item, RecordPosition};
use super::State;
use crate::error::GatewayError;
use crate::kafka;
use streamgate::time::{from_millis, to_millis};

/// Longest consumer group id accepted (Kafka has no hard limit; this keeps logs sane).
const MAX_GROUP_LEN: usize = 255;

/// A validated Subscribe request.
struct Plan {
    topics: Vec<TopicName>,
    group: Option<String>,
    start: Start,
    stop_at_end: bool,
    max_records: Option<u64>,
}

impl Plan {
    fn from_request(request: SubscribeRequest) -> Result<Self, GatewayError> {
        if request.topics.is_empty() {
            return Err(GatewayError::InvalidArgument(
                "topics is empty: name at least one topic".into(),
            ));
        }
        let mut topics = Vec::with_capacity(request.topics.len());
        for name in request.topics {
            let topic = TopicName::new(name)?;
            if !topics.contains(&topic) {
                topics.push(topic);
            }
        }
        let group = match request.group {
            Some(g)
                if g.is_empty() || g.len() > MAX_GROUP_LEN || g.chars().any(char::is_control) =>
            {
                return Err(GatewayError::InvalidArgument(format!(
                    "group must be 1 to {MAX_GROUP_LEN} bytes without control characters"
                )));
            }
            other => other,
        };
        let start = match request.start.and_then(|s| s.position) {
            None => Start::Latest,
            Some(start_position::Position::Earliest(_)) => Start::Earliest,
            Some(start_position::Position::Latest(_)) => Start::Latest,
            Some(start_position::Position::Offset(n)) if n >= 0 => Start::Offset(n),
            Some(start_position::Position::FromEnd(n)) if n >= 0 => Start::FromEnd(n),
            Some(start_position::Position::Offset(n) | start_position::Position::FromEnd(n)) => {
                return Err(GatewayError::InvalidArgument(format!(
                    "start offset must be 0 or more, got {n}"
                )));
            }
            Some(start_position::Position::Timestamp(ts)) => {
                Start::Timestamp(to_millis(&ts).ok_or_else(|| {
                    GatewayError::InvalidArgument("start timestamp is not a valid instant".into())
                })?)
            }
        };
        if request.max_records == Some(0) {
            return Err(GatewayError::InvalidArgument(
                "max_records must be 1 or more when set".into(),
            ));
        }
        Ok(Self {
            topics,
            group,
            start,
            stop_at_end: request.stop_at_end,
            max_records: request.max_records,
        })
    }
}

/// Opens a subscription. Errors found before the first record (bad request, unknown topic,
/// unreachable broker) are returned here, as the call's status.
pub async fn open(
    state: Arc<State>,
    request: SubscribeRequest,
    deadline: Instant,
) -> Result<SubscribeStream, GatewayError> {
    let plan = Plan::from_request(request)?;
    let permit = state
        .subscriptions
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            GatewayError::Capacity(format!(
                "the server already serves its maximum of {} subscriptions (--max-subscriptions)",
                state.max_subscriptions
            ))
        })?;
    let budget = deadline.saturating_duration_since(Instant::now());

    let mut partitions = Vec::new();
    for topic in &plan.topics {
        let description = state
            .admin
            .describe(topic.as_str(), false, budget)
            .await?
            .ok_or_else(|| GatewayError::UnknownTopic(topic.to_string()))?;
        partitions.extend(
            description
                .partitions
                .iter()
                .map(|p| (topic.as_str().to_owned(), p.partition)),
        );
    }

    let consumer = Arc::new(create_consumer(&state, &plan)?);
    let (tx, rx) = mpsc::channel(state.subscribe_buffer);
    let topic_names: Vec<&str> = plan.topics.iter().map(TopicName::as_str).collect();
    let mut session = Session::new(state.clone(), consumer.clone(), tx, &plan, permit);

    match &plan.group {
        None => {
            let starts = resolve_starts(&state, &partitions, plan.start, deadline).await?;
            let mut assignment = TopicPartitionList::new();
            for s in &starts {
                assignment
                    .add_partition_offset(&s.topic, s.partition, Offset::Offset(s.start_offset))
                    .map_err(GatewayError::Kafka)?;
            }
            consumer.assign(&assignment).map_err(GatewayError::Kafka)?;
            session.announce(starts, None).await;
        }
        Some(group) => {
            if !plan.start.is_edge() {
                let starts = resolve_starts(&state, &partitions, plan.start, deadline).await?;
                reset_group_offsets(&consumer, group, &starts, budget).await?;
            }
            consumer
                .subscribe(&topic_names)
                .map_err(GatewayError::Kafka)?;
        }
    }
    state.tasks.spawn(session.run());
    Ok(SubscribeStream::new(
        rx,
        plan.group.is_some().then_some(&consumer),
    ))
}

fn create_consumer(state: &State, plan: &Plan) -> Result<SubscriptionConsumer, GatewayError> {
    let config = state.client_settings.config(|config| {
        config
            // Bounds librdkafka's prefetch queue: the memory a slow client can pin.
            .set("queued.max.messages.kbytes", "4096")
            .set(
                "enable.partition.eof",
                if plan.stop_at_end { "true" } else { "false" },
            );
        match &plan.group {
            Some(group) => config
                .set("group.id", group)
                .set("enable.auto.commit", "true")
                .set("auto.commit.interval.ms", "1000")
                // Offsets are stored by the response stream once a record is handed over.
                .set("enable.auto.offset.store", "false")
                .set(
                    "auto.offset.reset",
                    if plan.start == Start::Earliest {
                        "earliest"
                    } else {
                        "latest"
                    },
                )
                .set("session.timeout.ms", "6000")
                .set("heartbeat.interval.ms", "1000"),
            // librdkafka's consumer wants a group id even when it only assigns partitions;
            // this one never joins or commits.
            None => config
                .set("group.id", "streamgate-private-reader")
                .set("enable.auto.commit", "false"),
        };
    });
    config
        .create_with_context(SubscriptionContext::default())
        .map_err(GatewayError::Kafka)
}

/// Resolves the start offset of every partition.
async fn resolve_starts(
    state: &State,
    partitions: &[(String, i32)],
    start: Start,
    deadline: Instant,
) -> Result<Vec<proto::PartitionStart>, GatewayError> {
    let budget = deadline.saturating_duration_since(Instant::now());
    let mut starts = Vec::with_capacity(partitions.len());
    for (topic, partition) in partitions {
        let (low, high) = state.admin.watermarks(topic, *partition, budget).await?;
        starts.push(proto::PartitionStart {
            topic: topic.clone(),
            partition: *partition,
            start_offset: start.resolve_simple(low, high).unwrap_or(high),
            low_watermark: low,
            high_watermark: high,
        });
    }
    if let Start::Timestamp(target) = start {
        let settings = state.client_settings.clone();
        let bootstrap = state.bootstrap.clone();
        starts = tokio::task::spawn_blocking(move || {
            let search = TimestampSearch::new(&settings, deadline)?;
            for s in &mut starts {
                s.start_offset = search.offset_for(
                    &s.topic,
                    s.partition,
                    target,
                    s.low_watermark,
                    s.high_watermark,
                )?;
            }
            Ok::<_, KafkaError>(starts)
        })
        .await
        .map_err(|e| GatewayError::FailedPrecondition(format!("timestamp search failed: {e}")))?
        .map_err(|e| GatewayError::Unavailable {
            bootstrap,
            timeout: budget,
            detail: format!("timestamp search: {e}"),
        })?;
    }
    Ok(starts)
}

/// Sets a group's committed offsets, as `kafka-consumer-groups --reset-offsets` does.
async fn reset_group_offsets(
    consumer: &Arc<SubscriptionConsumer>,
    group: &str,
    starts: &[proto::PartitionStart],
    budget: Duration,
) -> Result<(), GatewayError> {
    let mut offsets = TopicPartitionList::new();
    for s in starts {
        offsets
            .add_partition_offset(&s.topic, s.partition, Offset::Offset(s.start_offset))
            .map_err(GatewayError::Kafka)?;
    }
    let consumer = consumer.clone();
    let commit = tokio::task::spawn_blocking(move || consumer.commit(&offsets, CommitMode::Sync));
    match tokio::time::timeout(budget, commit).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(GatewayError::FailedPrecondition(format!(
            "could not reset the offsets of group {group:?} ({e}); a group's offsets can only be reset while it has no active member"
        ))),
        Ok(Err(e)) => Err(GatewayError::FailedPrecondition(format!(
            "offset reset failed: {e}"
        ))),
        Err(_) => Err(GatewayError::Unavailable {
            bootstrap: String::new(),
            timeout: budget,
            detail: format!("no answer to the offset reset of group {group:?}"),
        }),
    }
}

/// The running side of one subscription.
struct Session {
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
    _permit: OwnedSemaphorePermit,
}

impl Session {
    fn new(
        state: Arc<State>,
        consumer: Arc<SubscriptionConsumer>,
        tx: mpsc::Sender<Item>,
        plan: &Plan,
        permit: OwnedSemaphorePermit,
    ) -> Self {
        Self {
            state,
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
            _permit: permit,
        }
    }

    async fn run(mut self) {
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
                        Ok((item, topic, partition, offset)) => {
                            if !self.deliver(item).await {
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

    /// Sends an Assignment and records the end offsets `stop_at_end` waits for.
    async fn announce(
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
        self.deliver(Item::Message(message, None)).await
    }

    /// Looks up where a group stream starts in each partition it was just given.
    async fn announce_group_assignment(&mut self) -> bool {
        let Ok(assigned) = self.consumer.assignment() else {
            return true;
        };
        let consumer = self.consumer.clone();
        let timeout = self.state.request_timeout;
        let committed =
            tokio::task::spawn_blocking(move || consumer.committed_offsets(assigned, timeout))
                .await;
        let committed = match committed {
            Ok(Ok(list)) => list,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not read the group's committed offsets");
                return true;
            }
            Err(_) => return true,
        };
        // TopicPartitionList elements are not Send: copy out what we need before awaiting.
        let committed: Vec<(String, i32, Offset)> = committed
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition(), e.offset()))
            .collect();
        let mut starts = Vec::new();
        let mut positions = TopicPartitionList::new();
        for (topic, partition, committed_offset) in committed {
            let (low, high) = match self
                .state
                .admin
                .watermarks(&topic, partition, timeout)
                .await
            {
                Ok(marks) => marks,
                Err(e) => {
                    tracing::warn!(error = %e, "could not read watermarks");
                    (0, 0)
                }
            };
            // A committed offset is kept as it is (never clamped down to a high watermark,
            // which some brokers under-report); only a partition without one gets its
            // start from the fallback position, and that start is remembered below.
            let (start_offset, uncommitted) = match committed_offset {
                Offset::Offset(n) => (n.max(low), false),
                _ if self.start == Start::Earliest => (low, true),
                _ => (high, true),
            };
            if uncommitted {
                let _ =
                    positions.add_partition_offset(&topic, partition, Offset::Offset(start_offset));
            }
            starts.push(proto::PartitionStart {
                topic,
                partition,
                start_offset,
                low_watermark: low,
                high_watermark: high,
            });
        }
        starts.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        // Remember where the group starts in every partition it has no commit for, as the
        // Java consumer's auto-commit does: otherwise a partition that delivered nothing keeps
        // no commit, and the group's next stream would fall back to `latest` and skip it.
        if let Err(e) = self.consumer.store_offsets(&positions) {
            tracing::debug!(error = %e, "could not store start offsets (partitions revoked meanwhile)");
        }
        self.announce(starts, self.group.clone()).await
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

    fn record_item(&mut self, message: &BorrowedMessage<'_>) -> (Item, Arc<str>, i32, i64) {
        let topic = self.intern(message.topic());
        let record = to_record(message);
        let position = RecordPosition {
            topic: topic.clone(),
            partition: message.partition(),
            offset: message.offset(),
        };
        let response = SubscribeResponse {
            message: Some(subscribe_response::Message::Record(record)),
        };
        (
            Item::Message(response, Some(position)),
            topic,
            message.partition(),
            message.offset(),
        )
    }
}

/// Errors after which a subscription cannot go on.
fn is_fatal(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::GroupAuthorizationFailed
                | RDKafkaErrorCode::Fatal
        )
    )
}

/// Converts a Kafka record into the API's Record, decoding a PageEvent when it is one.
fn to_record(message: &BorrowedMessage<'_>) -> proto::Record {
    let (timestamp, timestamp_type) = match message.timestamp() {
        rdkafka::Timestamp::NotAvailable => (None, proto::TimestampType::Unspecified),
        rdkafka::Timestamp::CreateTime(ms) => {
            (Some(from_millis(ms)), proto::TimestampType::CreateTime)
        }
        rdkafka::Timestamp::LogAppendTime(ms) => {
            (Some(from_millis(ms)), proto::TimestampType::LogAppendTime)
        }
    };
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|h| proto::Header {
                    key: h.key.to_owned(),
                    value: h
                        .value
                        .map(bytes::Bytes::copy_from_slice)
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    let page_event = message
        .payload()
        .and_then(|v| PageEvent::decode(v).ok())
        .map(|e| proto::PageEvent {
            name: e.name.into_owned(),
            user: Some(e.user.into_owned()),
            date: Some(from_millis(e.date_ms)),
            duration_ms: Some(e.duration_ms),
        });
    proto::Record {
        topic: message.topic().to_owned(),
        partition: message.partition(),
        offset: message.offset(),
        timestamp,
        timestamp_type: timestamp_type as i32,
        key: message.key().map(bytes::Bytes::copy_from_slice),
        headers,
        value: message.payload().map(bytes::Bytes::copy_from_slice),
        page_event,
    }
}
