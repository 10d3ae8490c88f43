//! Writing a Consume record that used up its delivery attempts to the group's dead-letter
//! topic, `error.<topic>.<group>` (the naming of the server's own stages), creating that
//! topic first if it is missing. The permission to use the group covers it: the topic is
//! named after the group, so a client can only ever fill its own groups' dead letters.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use rdkafka::producer::FutureRecord;
use streamgate::topic::TopicName;
use tokio::time::Instant;

use super::ledger::DeadLetterTicket;
use crate::gateway::State;
use crate::kafka::KafkaSetupError;
use crate::kafka::TopicCreator;
use crate::kafka::dead_letter::{self, DeadLetter};

/// A dead letter being written, and whether it was.
pub type Writing = BoxFuture<'static, (DeadLetterTicket, Result<(), String>)>;

/// Starts writing `ticket`'s record to `error.<topic>.<group>`.
pub fn write(state: Arc<State>, group: String, ticket: DeadLetterTicket) -> Writing {
    Box::pin(async move {
        let result = send(&state, &group, &ticket).await;
        (ticket, result)
    })
}

async fn send(state: &State, group: &str, ticket: &DeadLetterTicket) -> Result<(), String> {
    let record = &ticket.record;
    let input = TopicName::new(record.topic.clone()).map_err(|e| e.to_string())?;
    let topic = dead_letter::topic(&input, group).map_err(|e| e.to_string())?;
    state
        .dead_letter_topics
        .ensure(topic.as_str(), state.request_timeout)
        .await
        .map_err(|e| e.to_string())?;
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

/// Creates the dead-letter topics of Consume streams when they are first needed, and
/// remembers (a bounded number of) those it made, so a stream dead-lettering many records
/// asks the cluster once.
pub struct DeadLetterTopics {
    creator: TopicCreator,
    partitions: i32,
    replication_factor: i32,
    known: Mutex<HashSet<String>>,
}

/// Topic names remembered as existing; past it the memory starts over.
const MAX_KNOWN: usize = 1024;

impl DeadLetterTopics {
    /// Topics made by `creator` with the server's partitions and replication factor.
    pub fn new(creator: TopicCreator, partitions: i32, replication_factor: i32) -> Self {
        Self {
            creator,
            partitions,
            replication_factor,
            known: Mutex::new(HashSet::new()),
        }
    }

    /// Makes sure `topic` exists.
    pub async fn ensure(&self, topic: &str, timeout: Duration) -> Result<(), KafkaSetupError> {
        if self.known.lock().expect("not poisoned").contains(topic) {
            return Ok(());
        }
        self.creator
            .create_missing(&[topic], self.partitions, self.replication_factor, timeout)
            .await?;
        let mut known = self.known.lock().expect("not poisoned");
        if known.len() >= MAX_KNOWN {
            known.clear();
        }
        known.insert(topic.to_owned());
        Ok(())
    }
}
