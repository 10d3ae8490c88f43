//! Which topics exist, for Publish: with topic auto-creation off, librdkafka holds a record
//! for a missing topic until its metadata timeout and then fails it as a timeout. Asking
//! the metadata first answers NOT_FOUND at once; the answer is remembered for a while so
//! that the common case costs one map lookup.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use tokio::time::Instant;

use crate::gateway::error::GatewayError;
use crate::kafka::Admin;

/// How long a topic seen in the metadata is taken to exist without asking again.
const FRESH_FOR: Duration = Duration::from_secs(60);

/// Topics remembered at most; a client naming many topics cannot grow this map without
/// bound (when full it starts over, costing one metadata request per topic).
const MAX_TOPICS: usize = 10_000;

/// Topics recently seen in the cluster's metadata.
#[derive(Debug, Default)]
pub struct KnownTopics {
    seen: RwLock<HashMap<String, Instant>>,
}

impl KnownTopics {
    /// Ok if `topic` exists; NOT_FOUND if the metadata says it does not.
    pub async fn check(
        &self,
        admin: &Admin,
        topic: &str,
        budget: Duration,
    ) -> Result<(), GatewayError> {
        if self.is_fresh(topic) {
            return Ok(());
        }
        match admin.describe(topic, false, budget).await? {
            Some(_) => {
                self.remember(topic);
                Ok(())
            }
            None => Err(GatewayError::UnknownTopic(topic.to_owned())),
        }
    }

    /// Forgets `topic` (it was just deleted), so that the next Publish asks again.
    pub fn forget(&self, topic: &str) {
        let mut seen = self.seen.write().unwrap_or_else(|e| e.into_inner());
        seen.remove(topic);
    }

    fn is_fresh(&self, topic: &str) -> bool {
        let seen = self.seen.read().unwrap_or_else(|e| e.into_inner());
        seen.get(topic).is_some_and(|at| at.elapsed() < FRESH_FOR)
    }

    fn remember(&self, topic: &str) {
        let mut seen = self.seen.write().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_TOPICS {
            seen.clear();
        }
        seen.insert(topic.to_owned(), Instant::now());
    }
}
