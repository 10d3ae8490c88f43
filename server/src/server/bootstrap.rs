//! The server's own topics (R1-R4 and the stages' dead letters) put in place at start-up,
//! and the service's health while they are not.
//!
//! The embedded broker answers at once, so its topics exist before the banner. An external
//! cluster may be slow or down: the server serves at once (calls answer UNAVAILABLE
//! meanwhile), creates its topics in a tracked background task retried every few seconds,
//! and reports the gateway NOT_SERVING on `grpc.health.v1` until they exist.

use std::time::Duration;

use streamgate::proto::event_gateway_server::SERVICE_NAME;
use streamgate::topic::TopicName;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::kafka::{Kafka, TopicCreator};
use crate::settings::{InvalidSetting, Settings};

/// Pause between two attempts at creating the server's topics on an external cluster.
const RETRY: Duration = Duration::from_secs(5);

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

impl ServerTopics {
    /// The topics `settings` make the server own.
    pub fn of(settings: &Settings) -> Result<Self, InvalidSetting> {
        Ok(Self {
            names: settings.topics_to_create()?,
            partitions: settings.topics.partitions,
            replication_factor: settings.topics.replication_factor,
            timeout: settings.timeouts.request,
        })
    }
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
            return report(health, ServingStatus::NotServing).await;
        }
    };
    if kafka.embedded_broker().is_some() {
        // It fails now or never: there is no later for an in-process broker.
        let status = match attempt(&creator, &topics).await {
            true => ServingStatus::Serving,
            false => ServingStatus::NotServing,
        };
        return report(health, status).await;
    }
    report(health, ServingStatus::NotServing).await;
    let (health, shutdown) = (health.clone(), shutdown.clone());
    tasks.spawn(async move {
        while !attempt(&creator, &topics).await {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(RETRY) => {}
            }
        }
        report(&health, ServingStatus::Serving).await;
    });
}

/// The gateway's health, by the service's name (`streamgate.v1.EventGateway`).
async fn report(health: &HealthReporter, status: ServingStatus) {
    health.set_service_status(SERVICE_NAME, status).await;
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
