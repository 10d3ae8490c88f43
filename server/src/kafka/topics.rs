//! How topics are created: the ONE path that creates them, on either kind of cluster. The
//! embedded broker has no CreateTopics (topics are made through the mock cluster's own
//! call); an external cluster gets CreateTopics through the admin client.

use std::time::Duration;

use super::embedded::EmbeddedHandle;
use super::{Admin, Kafka, KafkaSetupError};

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
