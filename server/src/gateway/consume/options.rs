//! Validating the `start` request of a Consume stream: what it reads (checked as a
//! Subscribe with a group would be) and how it is paced.

use std::time::Duration;

use streamgate::proto::{ConsumeStart, SubscribeRequest};
use streamgate::topic::TopicName;

use crate::gateway::error::GatewayError;
use crate::gateway::subscribe::plan::Plan;
use crate::kafka::dead_letter;
use crate::settings::Limits;

/// `max_outstanding_records` when the client leaves it at 0.
pub const DEFAULT_MAX_OUTSTANDING: usize = 1000;
/// `ack_deadline` when the client sends none.
pub const DEFAULT_ACK_DEADLINE: Duration = Duration::from_secs(30);
/// Shortest `ack_deadline`: below it a busy client would see everything twice.
pub const MIN_ACK_DEADLINE: Duration = Duration::from_secs(1);
/// Longest `ack_deadline`, and longest nack delay.
pub const MAX_DELAY: Duration = Duration::from_secs(3600);

/// How a Consume stream is paced.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// Most records delivered and not acknowledged.
    pub max_outstanding: usize,
    /// Most bytes those records may hold.
    pub max_outstanding_bytes: usize,
    /// How long a delivery may stay unacknowledged.
    pub ack_deadline: Duration,
    /// Deliveries before dead-lettering; 0: unlimited.
    pub max_attempts: u32,
}

/// Validates `start`: a group is required; limits are those of the server's flags.
pub fn validate(start: ConsumeStart, limits: &Limits) -> Result<(Plan, Pacing), GatewayError> {
    if start.group.is_empty() {
        return Err(GatewayError::InvalidArgument(
            "Consume needs a consumer group (start.group): acknowledgements commit the group's offsets".into(),
        ));
    }
    if start.max_delivery_attempts > 0 {
        // Dead letters go to dlq.<n>.<topic>.<group>: refuse now a group that cannot name one,
        // rather than fail each dead letter later and hold the partition's commit back.
        for topic in &start.topics {
            let Ok(topic) = TopicName::new(topic.clone()) else {
                continue; // The plan refuses it below, naming the rule.
            };
            dead_letter::consume_topic(&topic, &start.group).map_err(|e| {
                GatewayError::InvalidArgument(format!(
                    "with max_delivery_attempts, dead letters go to dlq.<topic length>.<topic>.<group>, and group {:?} cannot name one: {e}",
                    start.group
                ))
            })?;
        }
    }
    let plan = Plan::from_request(
        SubscribeRequest {
            topics: start.topics,
            group: Some(start.group),
            start: start.start,
            stop_at_end: false,
            max_records: None,
            // Consume sends whole records.
            read_mask: None,
            resume: Vec::new(),
            filter: start.filter,
            decode: start.decode,
        },
        limits.max_subscribe_topics,
        &limits.filter,
    )?;
    let max_outstanding = match start.max_outstanding_records as usize {
        0 => DEFAULT_MAX_OUTSTANDING.min(limits.consume_max_outstanding),
        asked if asked > limits.consume_max_outstanding => {
            return Err(GatewayError::OverLimit {
                what: "max_outstanding_records asked for",
                count: asked,
                limit: limits.consume_max_outstanding,
                flag: "--consume-max-outstanding",
            });
        }
        asked => asked,
    };
    let ack_deadline = match start.ack_deadline {
        None => DEFAULT_ACK_DEADLINE,
        Some(d) => duration("ack_deadline", &d, MIN_ACK_DEADLINE)?,
    };
    Ok((
        plan,
        Pacing {
            max_outstanding,
            max_outstanding_bytes: limits.consume_max_outstanding_bytes,
            ack_deadline,
            max_attempts: start.max_delivery_attempts,
        },
    ))
}

/// A nack's delay: absent is at once; at most [`MAX_DELAY`].
pub fn nack_delay(delay: Option<&prost_types::Duration>) -> Result<Duration, GatewayError> {
    delay.map_or(Ok(Duration::ZERO), |d| {
        duration("nack delay", d, Duration::ZERO)
    })
}

fn duration(
    what: &str,
    value: &prost_types::Duration,
    min: Duration,
) -> Result<Duration, GatewayError> {
    let valid = Duration::try_from(*value)
        .ok()
        .filter(|d| *d >= min && *d <= MAX_DELAY);
    valid.ok_or_else(|| {
        GatewayError::InvalidArgument(format!(
            "{what} must be between {min:?} and {MAX_DELAY:?}, got {}s {}ns",
            value.seconds, value.nanos
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_message_bytes: 1 << 20,
            max_subscriptions: 8,
            subscribe_buffer: 256,
            max_headers: 16,
            max_timestamp_ahead: Duration::from_secs(3600),
            max_publish_streams: 8,
            max_watchers: 8,
            max_subscribe_topics: 4,
            subscribe_buffer_bytes: 1 << 20,
            max_page_name_bytes: 256,
            consume_max_outstanding: 5000,
            consume_max_outstanding_bytes: 1 << 24,
            max_dead_letter_topics: 4,
            filter: crate::filter::Limits::DEFAULT,
            decode: crate::schema::DecodeLimits::default(),
            principal_max_subscriptions: 8,
            principal_max_publish_streams: 8,
            principal_max_watchers: 8,
            admin_reserved_slots: 1,
            quotas: crate::settings::QuotaSettings {
                publish_records: 0.0,
                publish_bytes: 0.0,
                read_records: 0.0,
                read_bytes: 0.0,
                burst: Duration::from_secs(1),
            },
        }
    }

    fn start() -> ConsumeStart {
        ConsumeStart {
            group: "g".into(),
            topics: vec!["t".into()],
            ..Default::default()
        }
    }

    #[test]
    fn fills_in_the_defaults() {
        let (plan, pacing) = validate(start(), &limits()).expect("valid");
        assert_eq!(plan.group.as_deref(), Some("g"));
        assert_eq!(pacing.max_outstanding, DEFAULT_MAX_OUTSTANDING);
        assert_eq!(pacing.ack_deadline, DEFAULT_ACK_DEADLINE);
        assert_eq!(pacing.max_attempts, 0);
    }

    #[test]
    fn refuses_what_it_cannot_honour_naming_the_field() {
        let no_group = ConsumeStart {
            group: String::new(),
            ..start()
        };
        let error = validate(no_group, &limits()).expect_err("a group is required");
        assert!(error.to_string().contains("start.group"), "{error}");
        // A group that cannot name a dead-letter topic, when dead letters are on.
        let bad_group = |max_delivery_attempts| ConsumeStart {
            group: "team billing:1".into(),
            topics: vec!["t".into()],
            max_delivery_attempts,
            ..Default::default()
        };
        let error = validate(bad_group(3), &limits()).expect_err("no dead-letter topic");
        assert!(matches!(error, GatewayError::InvalidArgument(_)), "{error}");
        assert!(
            error
                .to_string()
                .contains("dlq.<topic length>.<topic>.<group>"),
            "{error}"
        );
        assert!(
            validate(bad_group(0), &limits()).is_ok(),
            "no dead letters, any group"
        );

        let greedy = ConsumeStart {
            max_outstanding_records: 5001,
            ..start()
        };
        let error = validate(greedy, &limits()).expect_err("over the flag");
        assert!(
            error.to_string().contains("--consume-max-outstanding"),
            "{error}"
        );

        for (seconds, nanos) in [(0, 500_000_000), (3601, 0), (-1, 0), (0, -1)] {
            let odd = ConsumeStart {
                ack_deadline: Some(prost_types::Duration { seconds, nanos }),
                ..start()
            };
            let error = validate(odd, &limits()).expect_err("out of range");
            assert!(error.to_string().contains("ack_deadline"), "{error}");
        }
        assert!(
            nack_delay(Some(&prost_types::Duration {
                seconds: 7200,
                nanos: 0
            }))
            .is_err()
        );
        assert_eq!(nack_delay(None).expect("at once"), Duration::ZERO);
    }
}
