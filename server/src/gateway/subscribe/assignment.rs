//! What a group stream announces after each rebalance: for every partition it was given,
//! where it starts (see [`group_start`](super::group_start) for the rules) and the
//! partition's watermarks. Shared by Subscribe and Consume.

use std::sync::Arc;

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use streamgate::proto;

use super::consumer::SubscriptionConsumer;
use super::group_start::{self, Fallback, Watermarks};
use super::start::Start;
use crate::gateway::State;

/// Looks up where a group stream starts in each partition it holds now, stores the starts
/// of partitions without a commit, and returns them sorted; `None` if the group's
/// committed offsets could not be read (the caller announces nothing then).
pub async fn group_starts(
    state: &State,
    consumer: &Arc<SubscriptionConsumer>,
    start: Start,
) -> Option<Vec<proto::PartitionStart>> {
    let committed = committed_offsets(state, consumer).await?;
    let timeout = state.request_timeout;
    let fallback = Fallback::of(start);
    let mut starts = Vec::with_capacity(committed.len());
    let mut positions = TopicPartitionList::new();
    for (topic, partition, committed_offset) in committed {
        let watermarks = match state.admin.watermarks(&topic, partition, timeout).await {
            Ok((low, high)) => Some(Watermarks { low, high }),
            Err(e) => {
                tracing::warn!(error = %e, topic, partition, "could not read watermarks");
                None
            }
        };
        let decided = group_start::decide(committed_offset, watermarks, fallback);
        if let Some(offset) = decided.store {
            let _ = positions.add_partition_offset(&topic, partition, Offset::Offset(offset));
        }
        starts.push(proto::PartitionStart {
            topic,
            partition,
            start_offset: decided.start_offset,
            low_watermark: decided.low_watermark,
            high_watermark: decided.high_watermark,
        });
    }
    starts.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    if let Err(e) = consumer.store_offsets(&positions) {
        tracing::debug!(error = %e, "could not store start offsets (partitions revoked meanwhile)");
    }
    Some(starts)
}

/// The group's committed offset in every assigned partition; `None` if unreadable.
async fn committed_offsets(
    state: &State,
    consumer: &Arc<SubscriptionConsumer>,
) -> Option<Vec<(String, i32, Offset)>> {
    let assigned = consumer.assignment().ok()?;
    let consumer = consumer.clone();
    let timeout = state.request_timeout;
    let committed =
        tokio::task::spawn_blocking(move || consumer.committed_offsets(assigned, timeout))
            .await
            .ok()?;
    let committed = match committed {
        Ok(list) => list,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the group's committed offsets");
            return None;
        }
    };
    // TopicPartitionList elements are not Send: copy out what we need before awaiting.
    Some(
        committed
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition(), e.offset()))
            .collect(),
    )
}
