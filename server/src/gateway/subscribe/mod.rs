//! Subscribe: one Kafka consumer per stream, feeding a bounded channel that tonic drains at
//! the client's pace (so a slow client slows only its own consumer).
//!
//! Without a group the stream assigns itself every partition at the resolved start offsets.
//! With a group it subscribes, announces each assignment it gets, and stores a record's offset
//! only once the record was handed to the transport (see [`stream`]). Ending on its own
//! (`max_records`, `stop_at_end`) waits until the last record was handed over and commits
//! synchronously before the stream closes, so the next stream of the group continues exactly.
//!
//! This module only wires the parts together in [`open`]:
//! - [`plan`] validates the request and resolves start offsets;
//! - [`mask`] reads the request's `read_mask`: which record fields the stream sends;
//! - [`start`] turns a start position into an offset (timestamps through
//!   [`TimestampSearch`](crate::kafka::TimestampSearch));
//! - [`consumer`] configures the Kafka consumer and watches group rebalances;
//! - [`session`] is the task that feeds the stream;
//! - [`group_start`] decides where a group stream starts in a newly assigned partition,
//!   [`assignment`] looks up what it needs and announces it;
//! - [`record`] converts Kafka records into API records;
//! - [`wire`] encodes a Kafka record straight into a `RecordBatch` entry;
//! - [`stream`] is the response stream tonic sends from.

// `pub(super)`: Consume (the acknowledged sibling) reuses the group machinery.
pub(super) mod assignment;
pub(super) mod consumer;
mod group_start;
mod mask;
pub(super) mod plan;
pub(super) mod record;
mod session;
pub(super) mod start;
mod stream;
mod wire;

use std::sync::Arc;

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use streamgate::proto::SubscribeRequest;
use streamgate::topic::TopicName;
use tokio::sync::mpsc;
use tokio::time::Instant;

pub use self::consumer::SubscriptionConsumer;
use self::plan::Plan;
use self::session::Session;
use self::stream::Item;
pub use self::stream::SubscribeStream;
use super::State;
use crate::admission::Slot;
use crate::auth::Principal;
use crate::gateway::error::GatewayError;

/// Opens a subscription. Errors found before the first record (bad request, unknown topic,
/// unreachable broker) are returned here, as the call's status.
pub async fn open(
    state: Arc<State>,
    request: SubscribeRequest,
    deadline: Instant,
    principal: &Principal,
) -> Result<SubscribeStream, GatewayError> {
    let plan = Plan::from_request(
        request,
        state.limits.max_subscribe_topics,
        &state.limits.filter,
    )?;
    state.access.subscribe(
        principal,
        plan.topics.iter().map(|t| t.as_str()),
        plan.group.as_deref(),
        plan.group.is_some() && !plan.start.is_edge(),
    )?;
    let permit = state.admission.admit(Slot::Stream, principal)?;
    let budget = deadline.saturating_duration_since(Instant::now());
    let partitions = plan.partitions(&state, budget).await?;

    let (consumer, starts) = match &plan.group {
        None => {
            let consumer = Arc::new(
                consumer::create(&state, None, plan.start, plan.stop_at_end)
                    .map_err(GatewayError::Kafka)?,
            );
            let mut starts =
                plan::resolve_starts(&state, &partitions, plan.start, deadline).await?;
            plan::apply_resume(&mut starts, &plan.resume);
            assign(&consumer, &starts)?;
            (consumer, Some(starts))
        }
        Some(group) => {
            let consumer = join_group(
                &state,
                &plan,
                group,
                &partitions,
                deadline,
                plan.stop_at_end,
            )
            .await?;
            (consumer, None)
        }
    };
    let (tx, rx) = mpsc::channel(state.limits.subscribe_buffer);
    let mut session = Session::new(
        state.clone(),
        consumer.clone(),
        tx,
        &plan,
        permit,
        principal.clone(),
    );
    if let Some(starts) = starts {
        session.announce(starts, None).await;
    }
    // A panic must not look like a clean end of the stream to the client.
    let on_panic = session.sender();
    state.tasks.spawn(async move {
        if crate::supervisor::catch("subscribe session", session.run())
            .await
            .is_none()
        {
            let _ = on_panic.try_send(Item::Error(tonic::Status::internal(
                "the subscription's task failed; the server's log says why",
            )));
        }
    });
    Ok(SubscribeStream::new(
        rx,
        plan.group.is_some().then_some(&consumer),
        state.records.clone(),
    ))
}

/// Assigns every partition of a stream without a group at its start offset.
fn assign(
    consumer: &SubscriptionConsumer,
    starts: &[streamgate::proto::PartitionStart],
) -> Result<(), GatewayError> {
    let mut assignment = TopicPartitionList::new();
    for s in starts {
        assignment
            .add_partition_offset(&s.topic, s.partition, Offset::Offset(s.start_offset))
            .map_err(GatewayError::Kafka)?;
    }
    consumer.assign(&assignment).map_err(GatewayError::Kafka)
}

/// Creates the consumer of a group stream: resets the group's offsets first when the plan
/// starts somewhere else than an edge, then subscribes (the assignment comes later, through
/// the consumer's rebalance hook).
pub(super) async fn join_group(
    state: &State,
    plan: &Plan,
    group: &str,
    partitions: &[(String, i32)],
    deadline: Instant,
    stop_at_end: bool,
) -> Result<Arc<SubscriptionConsumer>, GatewayError> {
    let consumer = Arc::new(
        consumer::create(state, Some(group), plan.start, stop_at_end)
            .map_err(GatewayError::Kafka)?,
    );
    state.live_groups.joined(group, &consumer);
    if !plan.start.is_edge() {
        let budget = deadline.saturating_duration_since(Instant::now());
        let starts = plan::resolve_starts(state, partitions, plan.start, deadline).await?;
        plan::reset_group_offsets(&consumer, group, &starts, budget).await?;
    }
    let topic_names: Vec<&str> = plan.topics.iter().map(TopicName::as_str).collect();
    consumer
        .subscribe(&topic_names)
        .map_err(GatewayError::Kafka)?;
    Ok(consumer)
}
