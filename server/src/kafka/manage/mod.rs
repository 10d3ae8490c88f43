//! Administering the cluster for the admin API: topics (create, delete, describe with
//! replicas and configs, alter configs) and consumer groups (list, describe with committed
//! offsets and lag, reset offsets, delete). librdkafka's metadata and group calls block, so
//! they run on tokio's blocking pool, each within the call's budget.
//!
//! The embedded broker (librdkafka's mock cluster) lacks most admin APIs: there, creating a
//! topic goes through the mock's own call, describing one shows no configs and says why,
//! and what cannot be done is [`AdminError::Unimplemented`] naming the missing Kafka API.

mod assignment;
mod configs;
mod groups;
mod topics;

use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::embedded::EmbeddedHandle;
use super::{Admin, ClientSettings, Kafka, KafkaSetupError};

pub use configs::ConfigSource;
pub use groups::{GroupInfo, Listed, ResetTo};
pub use topics::{NewTopicSpec, PartitionInfo, TopicInfo};

/// Why an admin call failed; the text goes to the client.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The topic or group does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The topic exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// A name, count or config is wrong.
    #[error("{0}")]
    Invalid(String),
    /// The broker lacks the Kafka API this needs.
    #[error("{0}")]
    Unimplemented(String),
    /// Not now: the group has active members, say.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The cluster did not answer, or refused.
    #[error(transparent)]
    Kafka(#[from] KafkaSetupError),
}

/// Administers one cluster; cheap to clone.
#[derive(Clone)]
pub struct Manager {
    admin: Admin,
    embedded: Option<EmbeddedHandle>,
    settings: ClientSettings,
}

impl Manager {
    /// The manager of `kafka`'s cluster.
    pub fn new(kafka: &Kafka) -> Result<Self, KafkaSetupError> {
        let settings = kafka.client_settings();
        let admin = Admin::connect(&settings).map_err(|e| KafkaSetupError::Refused {
            action: "create an admin client".into(),
            detail: e.to_string(),
        })?;
        let embedded = match kafka.embedded_broker() {
            Some(broker) => Some(broker.handle()?),
            None => None,
        };
        Ok(Self {
            admin,
            embedded,
            settings,
        })
    }

    /// The answer for a Kafka API the embedded broker lacks.
    fn lacks(&self, api: &str, doing: &str) -> Result<(), AdminError> {
        match self.embedded {
            Some(_) => Err(AdminError::Unimplemented(format!(
                "the embedded broker has no {api}, so it cannot {doing}: run against a Kafka cluster (--brokers)"
            ))),
            None => Ok(()),
        }
    }

    /// A failed admin request: the broker lacks the API (librdkafka knows from ApiVersions),
    /// or it did not answer.
    fn failed(&self, api: &str, timeout: Duration, error: &KafkaError) -> AdminError {
        let code = match error {
            KafkaError::AdminOp(code) => Some(*code),
            other => other.rdkafka_error_code(),
        };
        match code {
            Some(RDKafkaErrorCode::UnsupportedFeature | RDKafkaErrorCode::UnsupportedVersion) => {
                AdminError::Unimplemented(format!(
                    "the broker does not offer {api} in a version librdkafka speaks ({error})"
                ))
            }
            _ => self.unreachable(timeout, error),
        }
    }

    fn unreachable(&self, timeout: Duration, error: &KafkaError) -> AdminError {
        AdminError::Kafka(KafkaSetupError::Unreachable {
            bootstrap: self.settings.bootstrap().to_owned(),
            timeout,
            detail: error.to_string(),
        })
    }

    /// A broker's refusal of `action` as the error that fits its code.
    fn refused(&self, action: &str, code: RDKafkaErrorCode) -> AdminError {
        let detail = format!("{action}: {code}");
        match code {
            RDKafkaErrorCode::UnsupportedVersion | RDKafkaErrorCode::UnsupportedFeature => {
                AdminError::Unimplemented(format!("the broker cannot {detail}"))
            }
            RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::GroupAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed => {
                AdminError::Kafka(KafkaSetupError::Refused {
                    action: action.to_owned(),
                    detail: format!("{code} (the server's own Kafka credentials lack the ACL)"),
                })
            }
            _ => AdminError::Kafka(KafkaSetupError::Refused {
                action: action.to_owned(),
                detail: code.to_string(),
            }),
        }
    }

    /// Runs blocking librdkafka work within `timeout`.
    async fn blocking<T: Send + 'static>(
        &self,
        timeout: Duration,
        work: impl FnOnce() -> Result<T, AdminError> + Send + 'static,
    ) -> Result<T, AdminError> {
        match tokio::time::timeout(timeout, tokio::task::spawn_blocking(work)).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(AdminError::Kafka(KafkaSetupError::Refused {
                action: "answer an admin request".into(),
                detail: join.to_string(),
            })),
            Err(_) => Err(AdminError::Kafka(KafkaSetupError::Unreachable {
                bootstrap: self.settings.bootstrap().to_owned(),
                timeout,
                detail: "no answer to an admin request".into(),
            })),
        }
    }
}
