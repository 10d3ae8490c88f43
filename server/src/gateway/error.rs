//! The errors a request can end with, and the one place they become gRPC statuses.
//! Each message says what went wrong and what to change.

use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use streamgate::topic::InvalidTopicName;
use tonic::{Code, Status};

use crate::admission::Full;
use crate::auth::Denied;
use crate::kafka::KafkaSetupError;
use crate::kafka::producer::SendError;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A topic name breaks Kafka's rules.
    #[error(transparent)]
    InvalidTopic(#[from] InvalidTopicName),
    /// Some other field is wrong.
    #[error("{0}")]
    InvalidArgument(String),
    /// A record is larger than the configured limit.
    #[error(
        "record is {size} bytes (key + value + headers), over the limit of {limit} bytes; \
         the server's limit is set by --max-message-bytes / STREAMGATE_MAX_MESSAGE_BYTES"
    )]
    TooLarge {
        /// Size of the record.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A capacity limit of the server is reached.
    #[error("{0}")]
    Capacity(String),
    /// A request or the server is over a counted limit.
    #[error("{count} {what}, over the limit of {limit} ({flag})")]
    OverLimit {
        /// What is counted, e.g. "headers in a record".
        what: &'static str,
        /// How many there are (or would be).
        count: usize,
        /// The limit.
        limit: usize,
        /// The flag that sets it.
        flag: &'static str,
    },
    /// The topic does not exist.
    #[error(
        "topic {0:?} does not exist: create it first (kafka-topics --create); Publish creates topics only on a server started with --auto-create-topics"
    )]
    UnknownTopic(String),
    /// The request cannot be served in the current state.
    #[error("{0}")]
    FailedPrecondition(String),
    /// Kafka did not answer in time.
    #[error("Kafka did not answer within {timeout:?} (bootstrap {bootstrap}): {detail}")]
    Unavailable {
        /// The bootstrap servers.
        bootstrap: String,
        /// How long we waited.
        timeout: Duration,
        /// What we know.
        detail: String,
    },
    /// Kafka answered with an error.
    #[error("Kafka error: {0}")]
    Kafka(KafkaError),
    /// The caller's principal lacks a permission.
    #[error(transparent)]
    PermissionDenied(#[from] Denied),
    /// The principal is over a rate quota.
    #[error(transparent)]
    OverQuota(#[from] crate::quota::OverQuota),
    /// The server is shutting down.
    #[error("the server is shutting down; retry against another instance or after restart")]
    ShuttingDown,
}

impl GatewayError {
    /// Classifies a failed produce.
    pub fn from_send(error: SendError, topic: &str, bootstrap: &str) -> Self {
        match error {
            SendError::Timeout(timeout) => GatewayError::Unavailable {
                bootstrap: bootstrap.to_owned(),
                timeout,
                detail: "the record was not acknowledged in time and may still be written".into(),
            },
            SendError::Kafka(e) => match e.rdkafka_error_code() {
                Some(
                    RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic,
                ) => GatewayError::UnknownTopic(topic.to_owned()),
                Some(RDKafkaErrorCode::UnknownPartition) => {
                    GatewayError::InvalidArgument(format!("topic {topic:?} has no such partition"))
                }
                Some(RDKafkaErrorCode::MessageSizeTooLarge) => GatewayError::Capacity(format!(
                    "the broker refused the record as too large for topic {topic:?} (its message.max.bytes)"
                )),
                Some(RDKafkaErrorCode::MessageTimedOut | RDKafkaErrorCode::QueueFull) => {
                    GatewayError::Unavailable {
                        bootstrap: bootstrap.to_owned(),
                        timeout: Duration::ZERO,
                        detail: e.to_string(),
                    }
                }
                _ => GatewayError::Kafka(e),
            },
        }
    }
}

impl From<Full> for GatewayError {
    fn from(full: Full) -> Self {
        GatewayError::Capacity(full.to_string())
    }
}

impl From<KafkaSetupError> for GatewayError {
    fn from(error: KafkaSetupError) -> Self {
        match error {
            KafkaSetupError::Unreachable {
                bootstrap,
                timeout,
                detail,
            } => GatewayError::Unavailable {
                bootstrap,
                timeout,
                detail,
            },
            other => GatewayError::FailedPrecondition(other.to_string()),
        }
    }
}

impl From<GatewayError> for Status {
    fn from(error: GatewayError) -> Self {
        let message = error.to_string();
        match error {
            GatewayError::InvalidTopic(_) | GatewayError::InvalidArgument(_) => {
                Status::invalid_argument(message)
            }
            GatewayError::TooLarge { .. }
            | GatewayError::Capacity(_)
            | GatewayError::OverLimit { .. } => Status::resource_exhausted(message),
            GatewayError::OverQuota(ref over) => {
                let mut status = Status::resource_exhausted(message);
                // When to retry, for clients that read metadata rather than messages.
                if let Ok(value) = over.retry_after.as_millis().to_string().parse() {
                    status.metadata_mut().insert("retry-after-ms", value);
                }
                status
            }
            GatewayError::UnknownTopic(_) => Status::not_found(message),
            GatewayError::PermissionDenied(_) => Status::permission_denied(message),
            GatewayError::FailedPrecondition(_) => Status::failed_precondition(message),
            GatewayError::Unavailable { .. } | GatewayError::ShuttingDown => {
                Status::unavailable(message)
            }
            GatewayError::Kafka(ref e) => match e.rdkafka_error_code() {
                Some(
                    RDKafkaErrorCode::BrokerTransportFailure
                    | RDKafkaErrorCode::AllBrokersDown
                    | RDKafkaErrorCode::NetworkException
                    | RDKafkaErrorCode::LeaderNotAvailable
                    | RDKafkaErrorCode::NotLeaderForPartition
                    | RDKafkaErrorCode::RequestTimedOut
                    | RDKafkaErrorCode::OperationTimedOut,
                ) => Status::unavailable(message),
                Some(
                    RDKafkaErrorCode::TopicAuthorizationFailed
                    | RDKafkaErrorCode::GroupAuthorizationFailed
                    | RDKafkaErrorCode::ClusterAuthorizationFailed,
                ) => Status::permission_denied(message),
                _ => Status::internal(message),
            },
        }
    }
}

impl From<Denied> for Status {
    fn from(denied: Denied) -> Self {
        GatewayError::from(denied).into()
    }
}

/// A request stream's error as the client should see it: tonic reports a message it cannot
/// decode as INTERNAL and an over-long one as OUT_OF_RANGE; both are the client's doing
/// (INVALID_ARGUMENT, RESOURCE_EXHAUSTED), as `http::as_client_errors` says for unary calls.
pub fn request_error(status: Status) -> Status {
    let message = status.message();
    match status.code() {
        Code::Internal if message.starts_with(crate::http::DECODE_ERROR) => {
            Status::invalid_argument(format!("a request is not a valid message: {message}"))
        }
        Code::OutOfRange if message.contains(crate::http::LENGTH_ERROR) => {
            Status::resource_exhausted(message.to_owned())
        }
        _ => status,
    }
}

/// Whether `status` (after [`request_error`]) says the client sent a bad message, rather
/// than that its stream broke.
pub fn is_bad_request(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::InvalidArgument | Code::ResourceExhausted
    )
}
