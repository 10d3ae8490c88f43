//! Planning a Subscribe stream before it reads anything: validating the request (topics,
//! group name, start position, `max_records`), listing the partitions of its topics,
//! resolving the start offset of every partition (including the timestamp search), and
//! resetting a group's offsets to an explicit start.
//!
//! Everything here runs inside the Subscribe call, so its errors become the call's status.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use streamgate::proto::{self, SubscribeRequest, start_position};
use streamgate::time::to_millis;
use streamgate::topic::TopicName;
use tokio::time::Instant;

use super::consumer::SubscriptionConsumer;
use super::mask::RecordMask;
use super::start::Start;
use crate::gateway::State;
use crate::gateway::error::GatewayError;
use crate::gateway::select::Selection;
use crate::gateway::select::decoded::DecodedPaths;
use crate::kafka::TimestampSearch;

/// Longest consumer group id accepted (Kafka has no hard limit; this keeps logs sane).
const MAX_GROUP_LEN: usize = 255;

/// A validated Subscribe request.
#[derive(Debug)]
pub struct Plan {
    /// The topics to read, without duplicates, in the order the request named them.
    pub topics: Vec<TopicName>,
    /// The consumer group, if any.
    pub group: Option<String>,
    /// Where to start.
    pub start: Start,
    /// End once every partition reached the end offset it had at the start.
    pub stop_at_end: bool,
    /// End after this many records.
    pub max_records: Option<u64>,
    /// The fields of each record to send.
    pub mask: RecordMask,
    /// Per-partition offsets that override `start` (no group only).
    pub resume: HashMap<(String, i32), i64>,
    /// The stream's filter and decoding.
    pub selection: Selection,
}

impl Plan {
    /// Validates a request; at most `max_topics` topics, checked before anything else.
    pub fn from_request(
        request: SubscribeRequest,
        max_topics: usize,
        filter_limits: &crate::filter::Limits,
    ) -> Result<Self, GatewayError> {
        if request.topics.len() > max_topics {
            return Err(GatewayError::OverLimit {
                what: "topics in one Subscribe",
                count: request.topics.len(),
                limit: max_topics,
                flag: "--max-subscribe-topics",
            });
        }
        let topics = topics(request.topics)?;
        let group = group(request.group)?;
        let start = start(request.start.and_then(|s| s.position))?;
        if request.max_records == Some(0) {
            return Err(GatewayError::InvalidArgument(
                "max_records must be 1 or more when set".into(),
            ));
        }
        let mask = RecordMask::from_request(request.read_mask.clone())?;
        let decoded_paths =
            DecodedPaths::new(&RecordMask::decoded_paths(request.read_mask.as_ref()))
                .map_err(GatewayError::InvalidArgument)?;
        // A mask that leaves both decoded fields out leaves nothing to decode for.
        let decode = request.decode && (mask.decoded || mask.decode_error);
        let selection = Selection::new(&request.filter, decode, decoded_paths, filter_limits)?;
        let resume = resume(request.resume, &topics, group.is_some())?;
        Ok(Self {
            topics,
            group,
            start,
            stop_at_end: request.stop_at_end,
            max_records: request.max_records,
            mask,
            resume,
            selection,
        })
    }

    /// Every partition of the plan's topics, as (topic, partition).
    pub async fn partitions(
        &self,
        state: &State,
        budget: Duration,
    ) -> Result<Vec<(String, i32)>, GatewayError> {
        let mut partitions = Vec::new();
        for topic in &self.topics {
            let description = state
                .admin
                .describe(topic.as_str(), false, budget)
                .await?
                .ok_or_else(|| GatewayError::UnknownTopic(topic.to_string()))?;
            partitions.extend(
                description
                    .partitions
                    .iter()
                    .map(|p| (topic.as_str().to_owned(), p.partition)),
            );
        }
        Ok(partitions)
    }
}

/// Validates the topic names and drops repeated ones, keeping the first occurrence.
fn topics(names: Vec<String>) -> Result<Vec<TopicName>, GatewayError> {
    if names.is_empty() {
        return Err(GatewayError::InvalidArgument(
            "topics is empty: name at least one topic".into(),
        ));
    }
    let mut seen = HashSet::with_capacity(names.len());
    let mut topics = Vec::with_capacity(names.len());
    for name in names {
        let topic = TopicName::new(name)?;
        if seen.insert(topic.clone()) {
            topics.push(topic);
        }
    }
    Ok(topics)
}

/// The per-partition resume offsets, checked: no group, topics of the subscription,
/// partitions and offsets of 0 or more.
fn resume(
    offsets: Vec<proto::PartitionOffset>,
    topics: &[TopicName],
    grouped: bool,
) -> Result<HashMap<(String, i32), i64>, GatewayError> {
    let invalid = |message: String| Err(GatewayError::InvalidArgument(message));
    if offsets.is_empty() {
        return Ok(HashMap::new());
    }
    if grouped {
        return invalid(
            "resume is for streams without a group: a group resumes from its commits".into(),
        );
    }
    let mut resume = HashMap::with_capacity(offsets.len());
    for p in offsets {
        if !topics.iter().any(|t| t.as_str() == p.topic) {
            return invalid(format!(
                "resume names topic {:?}, which is not in topics",
                p.topic
            ));
        }
        if p.partition < 0 || p.offset < 0 {
            return invalid(format!(
                "resume: partition {} and offset {} must be 0 or more",
                p.partition, p.offset
            ));
        }
        resume.insert((p.topic, p.partition), p.offset);
    }
    Ok(resume)
}

pub(crate) fn group(group: Option<String>) -> Result<Option<String>, GatewayError> {
    match group {
        Some(g) if g.is_empty() || g.len() > MAX_GROUP_LEN || g.chars().any(char::is_control) => {
            Err(GatewayError::InvalidArgument(format!(
                "group must be 1 to {MAX_GROUP_LEN} bytes without control characters"
            )))
        }
        other => Ok(other),
    }
}

fn start(position: Option<start_position::Position>) -> Result<Start, GatewayError> {
    use start_position::Position;
    Ok(match position {
        None | Some(Position::Latest(_)) => Start::Latest,
        Some(Position::Earliest(_)) => Start::Earliest,
        Some(Position::Offset(n)) if n >= 0 => Start::Offset(n),
        Some(Position::FromEnd(n)) if n >= 0 => Start::FromEnd(n),
        Some(Position::Offset(n) | Position::FromEnd(n)) => {
            return Err(GatewayError::InvalidArgument(format!(
                "start offset must be 0 or more, got {n}"
            )));
        }
        Some(Position::Timestamp(ts)) => match to_millis(&ts) {
            // Kafka's timestamps are milliseconds since 1970; a negative one is not a time to
            // a broker (-1 and -2 even mean "latest" and "earliest" in ListOffsets).
            Some(millis) if millis >= 0 => Start::Timestamp(millis),
            Some(_) => {
                return Err(GatewayError::InvalidArgument(
                    "start timestamp is before 1970-01-01T00:00:00Z: Kafka record timestamps start there"
                        .into(),
                ));
            }
            None => {
                return Err(GatewayError::InvalidArgument(
                    "start timestamp is not a valid instant".into(),
                ));
            }
        },
    })
}

/// Resolves the start offset of every partition.
pub async fn resolve_starts(
    state: &State,
    partitions: &[(String, i32)],
    start: Start,
    deadline: Instant,
) -> Result<Vec<proto::PartitionStart>, GatewayError> {
    let budget = deadline.saturating_duration_since(Instant::now());
    let mut starts = Vec::with_capacity(partitions.len());
    for (topic, partition) in partitions {
        let (low, high) = state.admin.watermarks(topic, *partition, budget).await?;
        starts.push(proto::PartitionStart {
            topic: topic.clone(),
            partition: *partition,
            start_offset: start.resolve_simple(low, high).unwrap_or(high),
            low_watermark: low,
            high_watermark: high,
        });
    }
    if let Start::Timestamp(target) = start {
        starts = search_timestamps(state, starts, target, deadline, budget).await?;
    }
    Ok(starts)
}

/// Starts each partition `resume` lists at its offset, clamped into what the partition
/// holds (records below the low watermark are gone: the stream starts at the oldest left).
pub fn apply_resume(starts: &mut [proto::PartitionStart], resume: &HashMap<(String, i32), i64>) {
    if resume.is_empty() {
        return;
    }
    for start in starts {
        if let Some(&offset) = resume.get(&(start.topic.clone(), start.partition)) {
            start.start_offset = offset.clamp(start.low_watermark, start.high_watermark);
        }
    }
}

/// Sets every start offset to the first record at or after `target` (epoch ms).
async fn search_timestamps(
    state: &State,
    mut starts: Vec<proto::PartitionStart>,
    target: i64,
    deadline: Instant,
    budget: Duration,
) -> Result<Vec<proto::PartitionStart>, GatewayError> {
    let settings = state.client_settings.clone();
    let bootstrap = state.bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let search = TimestampSearch::new(&settings, deadline)?;
        for s in &mut starts {
            s.start_offset = search.offset_for(
                &s.topic,
                s.partition,
                target,
                s.low_watermark,
                s.high_watermark,
            )?;
        }
        Ok::<_, KafkaError>(starts)
    })
    .await
    .map_err(|e| GatewayError::FailedPrecondition(format!("timestamp search failed: {e}")))?
    .map_err(|e| GatewayError::Unavailable {
        bootstrap,
        timeout: budget,
        detail: format!("timestamp search: {e}"),
    })
}

/// Sets a group's committed offsets, as `kafka-consumer-groups --reset-offsets` does.
pub async fn reset_group_offsets(
    consumer: &Arc<SubscriptionConsumer>,
    group: &str,
    starts: &[proto::PartitionStart],
    budget: Duration,
) -> Result<(), GatewayError> {
    let mut offsets = TopicPartitionList::new();
    for s in starts {
        offsets
            .add_partition_offset(&s.topic, s.partition, Offset::Offset(s.start_offset))
            .map_err(GatewayError::Kafka)?;
    }
    let consumer = consumer.clone();
    let commit = tokio::task::spawn_blocking(move || consumer.commit(&offsets, CommitMode::Sync));
    match tokio::time::timeout(budget, commit).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(GatewayError::FailedPrecondition(format!(
            "could not reset the offsets of group {group:?} ({e}); a group's offsets can only be reset while it has no active member"
        ))),
        Ok(Err(e)) => Err(GatewayError::FailedPrecondition(format!(
            "offset reset failed: {e}"
        ))),
        Err(_) => Err(GatewayError::Unavailable {
            bootstrap: String::new(),
            timeout: budget,
            detail: format!("no answer to the offset reset of group {group:?}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use streamgate::proto::{StartPosition, SubscribeRequest, start_position::Position};

    use super::Plan;
    use crate::gateway::error::GatewayError;
    use crate::gateway::subscribe::start::Start;

    fn request(topics: &[&str]) -> SubscribeRequest {
        SubscribeRequest {
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            ..Default::default()
        }
    }

    fn invalid(request: SubscribeRequest) -> bool {
        matches!(
            Plan::from_request(request, 100, &crate::filter::Limits::DEFAULT),
            Err(GatewayError::InvalidArgument(_))
        )
    }

    #[test]
    fn resume_offsets_override_the_start_of_their_partitions_only() {
        use streamgate::proto::{PartitionOffset, PartitionStart};
        let at = |topic: &str, partition, offset| PartitionOffset {
            topic: topic.into(),
            partition,
            offset,
        };
        let plan = Plan::from_request(
            SubscribeRequest {
                resume: vec![at("a", 0, 7), at("a", 2, 1)],
                ..request(&["a"])
            },
            100,
            &crate::filter::Limits::DEFAULT,
        )
        .expect("valid");
        let start = |partition, low, high| PartitionStart {
            topic: "a".into(),
            partition,
            start_offset: high,
            low_watermark: low,
            high_watermark: high,
        };
        let mut starts = vec![start(0, 0, 10), start(1, 0, 10), start(2, 5, 10)];
        super::apply_resume(&mut starts, &plan.resume);
        let offsets: Vec<i64> = starts.iter().map(|s| s.start_offset).collect();
        assert_eq!(
            offsets,
            [7, 10, 5],
            "listed ones resumed, clamped to what is left"
        );

        assert!(invalid(SubscribeRequest {
            resume: vec![at("b", 0, 1)],
            ..request(&["a"])
        }));
        assert!(invalid(SubscribeRequest {
            resume: vec![at("a", 0, -1)],
            ..request(&["a"])
        }));
        assert!(invalid(SubscribeRequest {
            resume: vec![at("a", 0, 1)],
            group: Some("g".into()),
            ..request(&["a"])
        }));
    }

    #[test]
    fn too_many_topics_are_refused_before_anything_else() {
        // 200 000 names, all invalid: the count is what is refused, and at once.
        let names: Vec<String> = (0..200_000).map(|i| format!("bad name {i}")).collect();
        let refused = Plan::from_request(
            SubscribeRequest {
                topics: names,
                ..Default::default()
            },
            100,
            &crate::filter::Limits::DEFAULT,
        );
        match refused {
            Err(GatewayError::OverLimit {
                count, limit, flag, ..
            }) => {
                assert_eq!(
                    (count, limit, flag),
                    (200_000, 100, "--max-subscribe-topics")
                );
            }
            other => panic!("expected the topic limit, got {other:?}"),
        }
        let hundred: Vec<String> = (0..100).map(|i| format!("t{i}")).collect();
        let hundred: Vec<&str> = hundred.iter().map(String::as_str).collect();
        assert!(
            Plan::from_request(request(&hundred), 100, &crate::filter::Limits::DEFAULT).is_ok()
        );
    }

    #[test]
    fn repeated_topics_are_dropped_in_order() {
        let plan = Plan::from_request(
            request(&["b", "a", "b", "c", "a"]),
            100,
            &crate::filter::Limits::DEFAULT,
        )
        .expect("a valid request");
        let names: Vec<&str> = plan.topics.iter().map(|t| t.as_str()).collect();
        assert_eq!(names, ["b", "a", "c"]);
        assert_eq!(plan.start, Start::Latest);
        assert_eq!(plan.group, None);
    }

    #[test]
    fn rejects_what_cannot_be_served() {
        assert!(invalid(request(&[])));
        let mut r = request(&["t"]);
        r.group = Some(String::new());
        assert!(invalid(r));
        let mut r = request(&["t"]);
        r.group = Some("a\nb".into());
        assert!(invalid(r));
        let mut r = request(&["t"]);
        r.group = Some("g".repeat(256));
        assert!(invalid(r));
        let mut r = request(&["t"]);
        r.max_records = Some(0);
        assert!(invalid(r));
        let before_1970 = Position::Timestamp(prost_types::Timestamp {
            seconds: -86_400,
            nanos: 0,
        });
        let last_milli_of_1969 = Position::Timestamp(prost_types::Timestamp {
            seconds: -1,
            nanos: 999_000_000,
        });
        for position in [
            Position::Offset(-1),
            Position::FromEnd(-1),
            before_1970,
            last_milli_of_1969,
        ] {
            let mut r = request(&["t"]);
            r.start = Some(StartPosition {
                position: Some(position),
            });
            assert!(invalid(r));
        }
    }

    #[test]
    fn start_positions() {
        let cases = [
            (Position::Earliest(true), Start::Earliest),
            (Position::Latest(true), Start::Latest),
            (Position::Offset(4), Start::Offset(4)),
            (Position::FromEnd(2), Start::FromEnd(2)),
            (
                Position::Timestamp(prost_types::Timestamp {
                    seconds: 1,
                    nanos: 5_000_000,
                }),
                Start::Timestamp(1_005),
            ),
        ];
        for (position, expected) in cases {
            let mut r = request(&["t"]);
            r.start = Some(StartPosition {
                position: Some(position),
            });
            assert_eq!(
                Plan::from_request(r, 100, &crate::filter::Limits::DEFAULT)
                    .expect("a valid start")
                    .start,
                expected
            );
        }
    }
}
