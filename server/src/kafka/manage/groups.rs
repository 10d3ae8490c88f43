//! Consumer groups: list, describe (state, members and their assignments, committed offset
//! and lag per partition), plan and commit offset resets, delete.
//!
//! Committed offsets are read with OffsetFetch through a consumer of the group that never
//! joins it (no subscription), and a reset commits through the same kind of consumer — as
//! kafka-consumer-groups.sh does — which a broker refuses while the group has members.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::Offset;
use rdkafka::TopicPartitionList;
use rdkafka::admin::AdminOptions;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::groups::GroupInfo as KafkaGroup;

use super::{AdminError, Manager, assignment};
use crate::kafka::TimestampSearch;

/// Most partitions a group description or reset reads the committed offsets of.
pub const MAX_PARTITIONS: usize = 10_000;

/// A group as ListGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    /// Its id.
    pub name: String,
    /// Its state.
    pub state: String,
    /// Its protocol type.
    pub protocol_type: String,
}

/// What ListGroups could say.
#[derive(Debug, Clone)]
pub enum Listed {
    /// The broker's list.
    Groups(Vec<GroupSummary>),
    /// The broker cannot list groups, and why.
    Unsupported(String),
}

/// A member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its member id.
    pub id: String,
    /// Its client id.
    pub client_id: String,
    /// Its host.
    pub host: String,
    /// Its partitions, by topic.
    pub assignment: Vec<(String, Vec<i32>)>,
}

/// Where a group is in one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPartition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The committed offset, if any.
    pub committed: Option<i64>,
    /// The high watermark.
    pub end: i64,
    /// Records behind: from the committed offset, or from the oldest record without one.
    pub lag: i64,
    /// The index in `members` of the member it is assigned to.
    pub member: Option<usize>,
}

/// A group described.
#[derive(Debug, Clone)]
pub struct GroupInfo {
    /// Its id.
    pub name: String,
    /// Its state (`Unknown` when the broker cannot say).
    pub state: String,
    /// Its protocol type.
    pub protocol_type: String,
    /// Its assignor.
    pub protocol: String,
    /// Its members.
    pub members: Vec<Member>,
    /// Partitions with a committed offset or a member, by topic and partition.
    pub partitions: Vec<GroupPartition>,
    /// Why the state and members are unknown, when they are.
    pub members_unavailable: Option<String>,
}

impl GroupInfo {
    /// Whether the broker knows nothing of it: no member, no committed offset.
    pub fn is_unknown(&self) -> bool {
        self.members.is_empty()
            && self.partitions.iter().all(|p| p.committed.is_none())
            && matches!(self.state.as_str(), "Dead" | "Unknown" | "")
    }
}

/// Where a reset moves each partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTo {
    /// The oldest offset.
    Earliest,
    /// The high watermark.
    Latest,
    /// This offset, clamped.
    Offset(i64),
    /// The first offset at or after this time (ms since the epoch).
    Timestamp(i64),
    /// The committed offset (or the oldest, without one) shifted by this, clamped.
    Shift(i64),
}

/// One partition's planned move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetMove {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The committed offset before, if any.
    pub current: Option<i64>,
    /// The offset after.
    pub new: i64,
}

impl Manager {
    /// The cluster's groups, or why it cannot list them.
    pub async fn list_groups(&self, timeout: Duration) -> Result<Listed, AdminError> {
        if self.embedded.is_some() {
            return Ok(Listed::Unsupported(
                "the embedded broker has no ListGroups".into(),
            ));
        }
        let manager = self.clone();
        self.blocking(timeout, move || {
            let list = manager
                .admin
                .client
                .inner()
                .fetch_group_list(None, timeout)
                .map_err(|e| manager.failed("ListGroups", timeout, &e))?;
            let mut groups: Vec<GroupSummary> = list
                .groups()
                .iter()
                .map(|g| GroupSummary {
                    name: g.name().to_owned(),
                    state: g.state().to_owned(),
                    protocol_type: g.protocol_type().to_owned(),
                })
                .collect();
            groups.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(Listed::Groups(groups))
        })
        .await
    }

    /// A group's state, members, committed offsets and lag.
    pub async fn describe_group(
        &self,
        group: &str,
        timeout: Duration,
    ) -> Result<GroupInfo, AdminError> {
        let (manager, group) = (self.clone(), group.to_owned());
        self.blocking(timeout, move || {
            let mut info = manager.group_members(&group, timeout)?;
            let consumer = manager.group_consumer(&group)?;
            let every = manager.every_partition(&consumer, timeout)?;
            let committed = committed(&manager, &consumer, &every, timeout)?;
            let assigned: BTreeMap<(String, i32), usize> = info
                .members
                .iter()
                .enumerate()
                .flat_map(|(i, m)| {
                    m.assignment
                        .iter()
                        .flat_map(move |(t, ps)| ps.iter().map(move |p| ((t.clone(), *p), i)))
                })
                .collect();
            let mut keys: Vec<(String, i32)> = committed.keys().cloned().collect();
            keys.extend(assigned.keys().cloned());
            keys.sort();
            keys.dedup();
            for (topic, partition) in keys {
                let (low, end) = consumer
                    .fetch_watermarks(&topic, partition, timeout)
                    .map_err(|e| manager.unreachable(timeout, &e))?;
                let position = committed.get(&(topic.clone(), partition)).copied();
                info.partitions.push(GroupPartition {
                    lag: (end - position.unwrap_or(low)).max(0),
                    member: assigned.get(&(topic.clone(), partition)).copied(),
                    topic,
                    partition,
                    committed: position,
                    end,
                });
            }
            Ok(info)
        })
        .await
    }

    /// Where a reset of `group` on `topics` would move each partition.
    pub async fn plan_reset(
        &self,
        group: &str,
        topics: &[String],
        to: ResetTo,
        timeout: Duration,
    ) -> Result<Vec<OffsetMove>, AdminError> {
        let mut partitions = Vec::new();
        for topic in topics {
            let found = self.partitions(topic, timeout).await?;
            let found = found
                .ok_or_else(|| AdminError::NotFound(format!("topic {topic:?} does not exist")))?;
            partitions.extend(found.into_iter().map(|p| (topic.clone(), p.partition)));
        }
        if partitions.len() > MAX_PARTITIONS {
            return Err(AdminError::Invalid(format!(
                "{} partitions to reset, over the {MAX_PARTITIONS} one reset may move",
                partitions.len()
            )));
        }
        let (manager, group) = (self.clone(), group.to_owned());
        self.blocking(timeout, move || {
            let consumer = manager.group_consumer(&group)?;
            let committed = committed(&manager, &consumer, &partitions, timeout)?;
            // Brokers answer ListOffsets by time wrongly (the embedded broker: "the end";
            // Tansu: 0), so the time is searched in the records, as Subscribe does.
            let search = match to {
                ResetTo::Timestamp(_) => Some(
                    TimestampSearch::new(&manager.settings, std::time::Instant::now() + timeout)
                        .map_err(|e| manager.unreachable(timeout, &e))?,
                ),
                _ => None,
            };
            let mut moves = Vec::with_capacity(partitions.len());
            for (topic, partition) in partitions {
                let (low, high) = consumer
                    .fetch_watermarks(&topic, partition, timeout)
                    .map_err(|e| manager.unreachable(timeout, &e))?;
                let current = committed.get(&(topic.clone(), partition)).copied();
                let target = match to {
                    ResetTo::Earliest => low,
                    ResetTo::Latest => high,
                    ResetTo::Offset(offset) => offset,
                    ResetTo::Timestamp(ms) => match &search {
                        Some(search) => search
                            .offset_for(&topic, partition, ms, low, high)
                            .map_err(|e| manager.unreachable(timeout, &e))?,
                        None => high,
                    },
                    ResetTo::Shift(by) => current.unwrap_or(low).saturating_add(by),
                };
                moves.push(OffsetMove {
                    topic,
                    partition,
                    current,
                    new: target.clamp(low, high.max(low)),
                });
            }
            Ok(moves)
        })
        .await
    }

    /// Commits `moves` as `group`'s offsets. The broker refuses while the group has members.
    pub async fn commit_reset(
        &self,
        group: &str,
        moves: &[OffsetMove],
        timeout: Duration,
    ) -> Result<(), AdminError> {
        let mut offsets = TopicPartitionList::new();
        for m in moves {
            offsets
                .add_partition_offset(&m.topic, m.partition, Offset::Offset(m.new))
                .map_err(|e| AdminError::Invalid(e.to_string()))?;
        }
        let topics: Vec<String> = {
            let mut topics: Vec<String> = moves.iter().map(|m| m.topic.clone()).collect();
            topics.dedup();
            topics
        };
        let (manager, group) = (self.clone(), group.to_owned());
        self.blocking(timeout, move || {
            let consumer = manager.group_consumer(&group)?;
            if manager.embedded.is_some() {
                join(&consumer, &topics, timeout)?;
            }
            consumer.commit(&offsets, CommitMode::Sync).map_err(|e| {
                AdminError::FailedPrecondition(format!(
                    "Kafka refused the new offsets of group {group:?} ({e}); a group's offsets can be reset only while it has no active member"
                ))
            })
        })
        .await
    }

    /// Deletes a group and its offsets.
    pub async fn delete_group(&self, group: &str, timeout: Duration) -> Result<(), AdminError> {
        self.lacks("DeleteGroups", "delete consumer groups")?;
        let options = AdminOptions::new()
            .operation_timeout(Some(timeout))
            .request_timeout(Some(timeout));
        let results =
            tokio::time::timeout(timeout, self.admin.client.delete_groups(&[group], &options))
                .await
                .map_err(|_| {
                    self.unreachable(
                        timeout,
                        &rdkafka::error::KafkaError::AdminOpCreation(
                            "no answer to DeleteGroups".into(),
                        ),
                    )
                })?
                .map_err(|e| self.failed("DeleteGroups", timeout, &e))?;
        match results.into_iter().next() {
            Some(Ok(_)) | None => Ok(()),
            Some(Err((_, RDKafkaErrorCode::GroupIdNotFound))) => Err(AdminError::NotFound(
                format!("group {group:?} does not exist"),
            )),
            Some(Err((_, RDKafkaErrorCode::NonEmptyGroup))) => Err(AdminError::FailedPrecondition(
                format!("group {group:?} has active members: stop them before deleting it"),
            )),
            Some(Err((_, code))) => Err(self.refused(&format!("delete group {group}"), code)),
        }
    }

    /// The group's state and members from DescribeGroups; on the embedded broker, which has
    /// none, an Unknown state and why.
    fn group_members(&self, group: &str, timeout: Duration) -> Result<GroupInfo, AdminError> {
        let mut info = GroupInfo {
            name: group.to_owned(),
            state: "Unknown".into(),
            protocol_type: String::new(),
            protocol: String::new(),
            members: Vec::new(),
            partitions: Vec::new(),
            members_unavailable: None,
        };
        if self.embedded.is_some() {
            info.members_unavailable = Some("the embedded broker has no DescribeGroups".into());
            return Ok(info);
        }
        let list = self
            .admin
            .client
            .inner()
            .fetch_group_list(Some(group), timeout)
            .map_err(|e| self.failed("DescribeGroups", timeout, &e))?;
        if let Some(found) = list.groups().iter().find(|g| g.name() == group) {
            fill(&mut info, found);
        }
        Ok(info)
    }

    /// A consumer of `group` that never joins it: for OffsetFetch and OffsetCommit.
    fn group_consumer(&self, group: &str) -> Result<BaseConsumer, AdminError> {
        self.settings
            .config(|c| {
                c.set("group.id", group)
                    .set("enable.auto.commit", "false")
                    .set("enable.auto.offset.store", "false")
                    // Should it ever join (see `join`) and not get to leave, the group
                    // waits for it no longer than the streams' own consumers.
                    .set("session.timeout.ms", "6000")
                    .set("heartbeat.interval.ms", "1000");
            })
            .create()
            .map_err(|e| AdminError::Invalid(format!("a consumer of group {group:?}: {e}")))
    }

    /// Every partition of every topic but Kafka's internal ones.
    fn every_partition(
        &self,
        consumer: &BaseConsumer,
        timeout: Duration,
    ) -> Result<Vec<(String, i32)>, AdminError> {
        let metadata = consumer
            .fetch_metadata(None, timeout)
            .map_err(|e| self.unreachable(timeout, &e))?;
        let partitions: Vec<(String, i32)> = metadata
            .topics()
            .iter()
            .filter(|t| !t.name().starts_with("__") && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| (t.name().to_owned(), p.id())))
            .collect();
        if partitions.len() > MAX_PARTITIONS {
            return Err(AdminError::FailedPrecondition(format!(
                "the cluster has {} partitions, over the {MAX_PARTITIONS} a group description reads",
                partitions.len()
            )));
        }
        Ok(partitions)
    }
}

fn fill(info: &mut GroupInfo, found: &KafkaGroup) {
    info.state = found.state().to_owned();
    info.protocol_type = found.protocol_type().to_owned();
    info.protocol = found.protocol().to_owned();
    info.members = found
        .members()
        .iter()
        .map(|m| Member {
            id: m.id().to_owned(),
            client_id: m.client_id().to_owned(),
            host: m.client_host().to_owned(),
            assignment: m
                .assignment()
                .and_then(assignment::parse)
                .unwrap_or_default(),
        })
        .collect();
}

/// Joins the group with `consumer` and waits for its assignment. The embedded broker takes
/// offset commits only from a member once a group exists, where Kafka takes them from a
/// client outside the group while the group is empty; the caller has checked that no other
/// member is there, so this one gets every partition, commits, and leaves when dropped.
fn join(consumer: &BaseConsumer, topics: &[String], timeout: Duration) -> Result<(), AdminError> {
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&names)
        .map_err(|e| AdminError::FailedPrecondition(format!("joining the group to commit: {e}")))?;
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        // Polling drives the join; a record fetched meanwhile is dropped uncommitted.
        let _ = consumer.poll(Duration::from_millis(50));
        if consumer.assignment().is_ok_and(|a| a.count() > 0) {
            return Ok(());
        }
    }
    Err(AdminError::FailedPrecondition(
        "the group did not take this client in time to commit the new offsets: is another member joining?".into(),
    ))
}

/// The committed offsets of `partitions`, for those that have one.
fn committed(
    manager: &Manager,
    consumer: &BaseConsumer,
    partitions: &[(String, i32)],
    timeout: Duration,
) -> Result<BTreeMap<(String, i32), i64>, AdminError> {
    let mut list = TopicPartitionList::new();
    for (topic, partition) in partitions {
        list.add_partition(topic, *partition);
    }
    let answered = consumer
        .committed_offsets(list, timeout)
        .map_err(|e| manager.unreachable(timeout, &e))?;
    Ok(answered
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(offset) => Some(((e.topic().to_owned(), e.partition()), offset)),
            _ => None,
        })
        .collect())
}
