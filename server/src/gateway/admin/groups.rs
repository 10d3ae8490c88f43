//! ListGroups, DescribeGroup, ResetGroupOffsets, DeleteGroup.

use streamgate::proto::{
    self, DeleteGroupRequest, DeleteGroupResponse, DescribeGroupRequest, DescribeGroupResponse,
    GroupDescription, ListGroupsRequest, ListGroupsResponse, ResetGroupOffsetsRequest,
    ResetGroupOffsetsResponse, reset_group_offsets_request::Target,
};
use streamgate::topic::TopicName;
use tonic::{Request, Status};

use super::status;
use crate::gateway::error::GatewayError;
use crate::gateway::subscribe::plan;
use crate::gateway::{State, deadline, principal_of};
use crate::kafka::manage::{GroupInfo, Listed, ResetTo};

/// Most topics one reset may name.
const MAX_RESET_TOPICS: usize = 100;

pub async fn list(
    state: &State,
    request: Request<ListGroupsRequest>,
) -> Result<ListGroupsResponse, Status> {
    let principal = principal_of(&request)?;
    let (_, budget) = deadline::of(request.metadata(), state.request_timeout);
    let (groups, groups_unavailable) = match state
        .manager
        .list_groups(budget)
        .await
        .map_err(status)?
    {
        Listed::Groups(groups) => (
            groups
                .into_iter()
                .map(|g| proto::GroupSummary {
                    group: g.name,
                    state: g.state,
                    protocol_type: g.protocol_type,
                })
                .collect(),
            String::new(),
        ),
        Listed::Unsupported(why) => (
            known_here(state),
            format!(
                "{why}: listed are the server's own groups and those its streams used since it started, state Unknown"
            ),
        ),
    };
    let groups = groups
        .into_iter()
        .filter(|g: &proto::GroupSummary| state.access.may_see_group(&principal, &g.group))
        .collect();
    Ok(ListGroupsResponse {
        groups,
        groups_unavailable,
    })
}

/// The groups this server knows of without the broker's list.
fn known_here(state: &State) -> Vec<proto::GroupSummary> {
    let mut names = state.live_groups.names();
    names.extend(state.access.server_groups().iter().cloned());
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|group| proto::GroupSummary {
            group,
            state: "Unknown".into(),
            protocol_type: "consumer".into(),
        })
        .collect()
}

pub async fn describe(
    state: &State,
    request: Request<DescribeGroupRequest>,
) -> Result<DescribeGroupResponse, Status> {
    let principal = principal_of(&request)?;
    let (_, budget) = deadline::of(request.metadata(), state.request_timeout);
    let group = group_name(request.into_inner().group)?;
    state
        .access
        .describe_group(&principal, &group)
        .map_err(GatewayError::from)?;
    let mut info = state
        .manager
        .describe_group(&group, budget)
        .await
        .map_err(status)?;
    let here = state.live_groups.members(&group);
    if info.is_unknown() && here == 0 {
        return Err(Status::not_found(format!(
            "group {group:?} has no members and no committed offsets"
        )));
    }
    if let Some(why) = &mut info.members_unavailable {
        why.push_str(&format!(
            "; {here} stream(s) of this server are in the group now"
        ));
    }
    Ok(DescribeGroupResponse {
        group: Some(to_proto(info)),
    })
}

pub async fn reset(
    state: &State,
    request: Request<ResetGroupOffsetsRequest>,
) -> Result<ResetGroupOffsetsResponse, Status> {
    let principal = principal_of(&request)?;
    let (_, budget) = deadline::of(request.metadata(), state.request_timeout);
    let request = request.into_inner();
    let group = group_name(request.group)?;
    state
        .access
        .manage_group(&principal, "ResetGroupOffsets", &group)
        .map_err(GatewayError::from)?;
    let topics = reset_topics(request.topics)?;
    for topic in &topics {
        state
            .access
            .describe_topic(&principal, topic)
            .map_err(GatewayError::from)?;
    }
    let to = target(request.target)?;
    let info = state
        .manager
        .describe_group(&group, budget)
        .await
        .map_err(status)?;
    let here = state.live_groups.members(&group);
    if !info.members.is_empty() || here > 0 {
        let members = info.members.len().max(here);
        return Err(Status::failed_precondition(format!(
            "group {group:?} has {members} active member(s) (state {}): stop them before resetting its offsets, as kafka-consumer-groups --reset-offsets requires",
            info.state
        )));
    }
    let moves = state
        .manager
        .plan_reset(&group, &topics, to, budget)
        .await
        .map_err(status)?;
    if request.execute {
        state
            .manager
            .commit_reset(&group, &moves, budget)
            .await
            .map_err(status)?;
    }
    Ok(ResetGroupOffsetsResponse {
        moves: moves
            .into_iter()
            .map(|m| proto::OffsetMove {
                topic: m.topic,
                partition: m.partition,
                current_offset: m.current,
                new_offset: m.new,
            })
            .collect(),
        executed: request.execute,
    })
}

pub async fn delete(
    state: &State,
    request: Request<DeleteGroupRequest>,
) -> Result<DeleteGroupResponse, Status> {
    let principal = principal_of(&request)?;
    let (_, budget) = deadline::of(request.metadata(), state.request_timeout);
    let group = group_name(request.into_inner().group)?;
    state
        .access
        .manage_group(&principal, "DeleteGroup", &group)
        .map_err(GatewayError::from)?;
    state
        .manager
        .delete_group(&group, budget)
        .await
        .map_err(status)?;
    Ok(DeleteGroupResponse {})
}

fn group_name(group: String) -> Result<String, Status> {
    match plan::group(Some(group)) {
        Ok(Some(group)) => Ok(group),
        Ok(None) => Err(Status::invalid_argument("group is required")),
        Err(e) => Err(e.into()),
    }
}

fn reset_topics(topics: Vec<String>) -> Result<Vec<String>, Status> {
    if topics.is_empty() || topics.len() > MAX_RESET_TOPICS {
        return Err(Status::invalid_argument(format!(
            "topics must name 1 to {MAX_RESET_TOPICS} topics, not {}",
            topics.len()
        )));
    }
    let mut names = Vec::with_capacity(topics.len());
    for topic in topics {
        let name = TopicName::new(topic).map_err(GatewayError::InvalidTopic)?;
        names.push(name.as_str().to_owned());
    }
    names.sort();
    names.dedup();
    Ok(names)
}

fn target(target: Option<Target>) -> Result<ResetTo, Status> {
    Ok(match target {
        Some(Target::ToEarliest(true)) => ResetTo::Earliest,
        Some(Target::ToLatest(true)) => ResetTo::Latest,
        Some(Target::ToOffset(offset)) if offset >= 0 => ResetTo::Offset(offset),
        Some(Target::ToOffset(offset)) => {
            return Err(Status::invalid_argument(format!(
                "to_offset must not be negative, not {offset}"
            )));
        }
        Some(Target::ToDatetime(at)) => {
            let ms = at
                .seconds
                .saturating_mul(1000)
                .saturating_add(i64::from(at.nanos) / 1_000_000);
            if ms < 0 {
                return Err(Status::invalid_argument(
                    "to_datetime must not be before 1970",
                ));
            }
            ResetTo::Timestamp(ms)
        }
        Some(Target::ShiftBy(by)) => ResetTo::Shift(by),
        _ => {
            return Err(Status::invalid_argument(
                "say where to: to_earliest, to_latest, to_offset, to_datetime or shift_by",
            ));
        }
    })
}

fn to_proto(info: GroupInfo) -> GroupDescription {
    let total_lag = info.partitions.iter().map(|p| p.lag).sum();
    let partitions = info
        .partitions
        .iter()
        .map(|p| {
            let member = p.member.and_then(|i| info.members.get(i));
            proto::GroupPartition {
                topic: p.topic.clone(),
                partition: p.partition,
                committed_offset: p.committed,
                log_end_offset: p.end,
                lag: p.lag,
                member_id: member.map(|m| m.id.clone()).unwrap_or_default(),
                client_id: member.map(|m| m.client_id.clone()).unwrap_or_default(),
                host: member.map(|m| m.host.clone()).unwrap_or_default(),
            }
        })
        .collect();
    GroupDescription {
        group: info.name,
        state: info.state,
        protocol_type: info.protocol_type,
        protocol: info.protocol,
        members: info
            .members
            .into_iter()
            .map(|m| proto::GroupMember {
                member_id: m.id,
                client_id: m.client_id,
                host: m.host,
                assignment: m
                    .assignment
                    .into_iter()
                    .map(|(topic, partitions)| proto::TopicPartitions { topic, partitions })
                    .collect(),
            })
            .collect(),
        partitions,
        total_lag,
        members_unavailable: info.members_unavailable.unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_names_its_topics_and_one_target_or_is_refused() {
        assert_eq!(
            reset_topics(Vec::new()).map_err(|s| s.code()),
            Err(tonic::Code::InvalidArgument)
        );
        let many: Vec<String> = (0..=MAX_RESET_TOPICS).map(|i| format!("t{i}")).collect();
        let refused = reset_topics(many).expect_err("too many");
        assert!(refused.message().contains("1 to 100 topics"), "{refused:?}");
        let bad = reset_topics(vec!["a b".into()]).expect_err("bad name");
        assert_eq!(bad.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            reset_topics(vec!["b".into(), "a".into(), "b".into()]).expect("ok"),
            ["a", "b"]
        );

        for refused in [
            None,
            Some(Target::ToEarliest(false)),
            Some(Target::ToOffset(-1)),
            Some(Target::ToDatetime(prost_types::Timestamp {
                seconds: -1,
                nanos: 0,
            })),
            Some(Target::ToDatetime(prost_types::Timestamp {
                seconds: i64::MIN,
                nanos: 0,
            })),
        ] {
            let status = target(refused).expect_err("refused");
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{refused:?}");
        }
        let far = Some(Target::ToDatetime(prost_types::Timestamp {
            seconds: i64::MAX,
            nanos: 999_999_999,
        }));
        assert_eq!(
            target(far).expect("saturates"),
            ResetTo::Timestamp(i64::MAX)
        );
        assert_eq!(
            target(Some(Target::ShiftBy(i64::MIN))).expect("ok"),
            ResetTo::Shift(i64::MIN)
        );
    }

    #[test]
    fn group_ids_are_checked_like_subscribe_s() {
        assert_eq!(
            group_name(String::new()).map_err(|s| s.code()),
            Err(tonic::Code::InvalidArgument)
        );
        assert_eq!(
            group_name("a\nb".into()).map_err(|s| s.code()),
            Err(tonic::Code::InvalidArgument)
        );
        assert_eq!(group_name("billing".into()).expect("ok"), "billing");
    }
}
