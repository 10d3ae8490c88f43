//! Topic bootstrap: the ONE path that creates topics, and the server's health while its own
//! topics are not in place yet.
//!
//! The embedded broker has no CreateTopics (topics are made through the mock cluster's own
//! call) and answers at once, so its topics exist before the banner. An external cluster may
//! be slow or down: the server serves at once (calls answer UNAVAILABLE meanwhile), creates
//! its topics in a tracked background task retried every few seconds, and reports the
//! gateway NOT_SERVING on `grpc.health.v1` until they exist.

use std::time::Duration;

use streamgate::proto::event_gateway_server::EventGatewayServer;
use streamgate::topic::TopicName;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic_health::server::HealthReporter;

use super::embedded::EmbeddedHandle;
use super::{Admin, Kafka, KafkaSetupError};
use crate::gateway::Gateway;

/// Pause between two attempts at creating the server's topics on an external cluster.
const RETRY: Duration = Duration::from_secs(5);

/// Creates topics on one cluster; cheap to clone and `Send`, so a task can own one.
#[derive(Clone)]
pub struct TopicCreator {
    target: Target,
}

#[derive(Clone)]
enum Target {
    Embedded(EmbeddedHandle),
    External(Admin),
}

impl TopicCreator {
    /// The creator for `kafka`.
    pub fn new(kafka: &Kafka) -> Result<Self, KafkaSetupError> {
        let target = match kafka.embedded_broker() {
            Some(broker) => Target::Embedded(broker.handle()?),
            None => Target::External(Admin::connect(&kafka.client_settings()).map_err(|e| {
                KafkaSetupError::Refused {
                    action: "create an admin client".into(),
                    detail: e.to_string(),
                }
            })?),
        };
        Ok(Self { target })
    }

    /// Creates every topic in `names` that does not exist yet.
    pub async fn create_missing(
        &self,
        names: &[&str],
        partitions: i32,
        replication_factor: i32,
        timeout: Duration,
    ) -> Result<(), KafkaSetupError> {
        match &self.target {
            Target::Embedded(broker) => {
                for name in names {
                    broker.create_topic(name, partitions).await?;
                }
                Ok(())
            }
            Target::External(admin) => {
                admin
                    .create_missing(names, partitions, replication_factor, timeout)
                    .await
            }
        }
    }
}

/// The server's own topics, as [`bootstrap`] creates them.
#[derive(Debug, Clone)]
pub struct ServerTopics {
    /// Topic names.
    pub names: Vec<TopicName>,
    /// Partitions of each.
    pub partitions: i32,
    /// Replication factor of each.
    pub replication_factor: i32,
    /// Bound on one attempt.
    pub timeout: Duration,
}

/// Puts the server's topics in place and reports health accordingly: at once on the
/// embedded broker, in a task tracked by `tasks` on an external cluster.
pub async fn bootstrap(
    kafka: &Kafka,
    topics: ServerTopics,
    health: &HealthReporter,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) {
    let creator = match TopicCreator::new(kafka) {
        Ok(creator) => creator,
        Err(e) => {
            tracing::error!(error = %e, "cannot create the server's topics");
            health
                .set_not_serving::<EventGatewayServer<Gateway>>()
                .await;
            return;
        }
    };
    if kafka.embedded_broker().is_some() {
        // It fails now or never: there is no later for an in-process broker.
        if !attempt(&creator, &topics).await {
            health
                .set_not_serving::<EventGatewayServer<Gateway>>()
                .await;
            return;
        }
        health.set_serving::<EventGatewayServer<Gateway>>().await;
        return;
    }
    health
        .set_not_serving::<EventGatewayServer<Gateway>>()
        .await;
    let (health, shutdown) = (health.clone(), shutdown.clone());
    tasks.spawn(async move {
        while !attempt(&creator, &topics).await {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(RETRY) => {}
            }
        }
        health.set_serving::<EventGatewayServer<Gateway>>().await;
    });
}

/// One attempt at creating every missing topic; logs the outcome.
async fn attempt(creator: &TopicCreator, topics: &ServerTopics) -> bool {
    let names: Vec<&str> = topics.names.iter().map(TopicName::as_str).collect();
    let created = creator
        .create_missing(
            &names,
            topics.partitions,
            topics.replication_factor,
            topics.timeout,
        )
        .await;
    match created {
        Ok(()) => {
            tracing::info!(topics = ?names, "the server's topics are in place");
            true
        }
        Err(e) => {
            tracing::error!(error = %e, retry_in = ?RETRY, "could not create the server's topics");
            false
        }
    }
}
