//! Dead letters of Consume streams: a record that used up its delivery attempts goes to
//! `dlq.<length of topic>.<topic>.<group>` (see [`dead_letter::consume_topic`]), a name no
//! other topic and group share. The topic must exist before the stream starts: an existing
//! one is used; a missing one is created only for a caller that may publish to it, and
//! only while the server has created fewer than `--max-dead-letter-topics` — so a principal
//! with a group permission alone cannot make the server create topics.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use rdkafka::producer::FutureRecord;
use streamgate::topic::TopicName;
use tokio::time::Instant;

use super::ledger::DeadLetterTicket;
use crate::auth::Principal;
use crate::gateway::State;
use crate::gateway::error::GatewayError;
use crate::kafka::TopicCreator;
use crate::kafka::dead_letter::{self, DeadLetter};

/// A dead letter being written, and whether it was.
pub type Writing = BoxFuture<'static, (DeadLetterTicket, Result<(), String>)>;

/// Starts writing `ticket`'s record to its dead-letter topic.
pub fn write(state: Arc<State>, group: String, ticket: DeadLetterTicket) -> Writing {
    Box::pin(async move {
        let result = send(&state, &group, &ticket).await;
        (ticket, result)
    })
}

async fn send(state: &State, group: &str, ticket: &DeadLetterTicket) -> Result<(), String> {
    let record = &ticket.record;
    let input = TopicName::new(record.topic.clone()).map_err(|e| e.to_string())?;
    let topic = dead_letter::consume_topic(&input, group).map_err(|e| e.to_string())?;
    let reason = format!(
        "not acknowledged after {} delivery attempts (Consume, group {group})",
        ticket.attempts
    );
    let letter = DeadLetter::of_record(record, &reason);
    let mut out = FutureRecord::<[u8], [u8]>::to(topic.as_str()).headers(letter.headers);
    if let Some(key) = letter.key {
        out = out.key(key);
    }
    if let Some(value) = letter.value {
        out = out.payload(value);
    }
    if let Some(ts) = letter.timestamp_ms {
        out = out.timestamp(ts);
    }
    state
        .producer
        .send(out, Instant::now() + state.request_timeout)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Makes sure the dead-letter topic of every topic of a stream exists before it starts
/// (creating what `principal` may have created), so that no dead letter fails later for
/// want of its topic.
pub async fn prepare(
    state: &State,
    principal: &Principal,
    topics: &[TopicName],
    group: &str,
    deadline: Instant,
) -> Result<(), GatewayError> {
    for input in topics {
        let topic = dead_letter::consume_topic(input, group)?;
        let budget = deadline.saturating_duration_since(Instant::now());
        match state
            .known_topics
            .check(&state.admin, topic.as_str(), budget)
            .await
        {
            Ok(()) => continue,
            Err(GatewayError::UnknownTopic(_)) => {}
            Err(other) => return Err(other),
        }
        state
            .access
            .create_dead_letters(principal, topic.as_str())?;
        state
            .dead_letter_topics
            .create(topic.as_str(), budget)
            .await?;
    }
    Ok(())
}

/// Creates the dead-letter topics of Consume streams, at most `limit` of them in the
/// server's life.
pub struct DeadLetterTopics {
    creator: TopicCreator,
    partitions: i32,
    replication_factor: i32,
    limit: usize,
    created: Mutex<HashSet<String>>,
}

impl DeadLetterTopics {
    /// Topics made by `creator` with the server's partitions and replication factor; at
    /// most `limit` (`--max-dead-letter-topics`).
    pub fn new(
        creator: TopicCreator,
        partitions: i32,
        replication_factor: i32,
        limit: usize,
    ) -> Self {
        Self {
            creator,
            partitions,
            replication_factor,
            limit,
            created: Mutex::new(HashSet::new()),
        }
    }

    /// Creates `topic`, unless that would pass the limit. The name is counted before the
    /// request goes out, so streams starting at once cannot pass the limit together.
    async fn create(&self, topic: &str, timeout: Duration) -> Result<(), GatewayError> {
        {
            let mut created = self.created.lock().unwrap_or_else(|e| e.into_inner());
            if !created.contains(topic) && created.len() >= self.limit {
                return Err(GatewayError::OverLimit {
                    what: "dead-letter topics created by this server",
                    count: created.len() + 1,
                    limit: self.limit,
                    flag: "--max-dead-letter-topics; or create the topic first",
                });
            }
            created.insert(topic.to_owned());
        }
        let made = self
            .creator
            .create_missing(&[topic], self.partitions, self.replication_factor, timeout)
            .await;
        if made.is_err() {
            let mut created = self.created.lock().unwrap_or_else(|e| e.into_inner());
            created.remove(topic);
        }
        Ok(made?)
    }
}
