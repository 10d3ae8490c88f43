//! `streamgate groups list|describe|reset|delete`: consumer groups as kafka-consumer-groups
//! prints them. What the broker could not answer (the embedded broker lists and describes
//! no groups) is a `%` note on standard error, so that standard output stays the table.

use std::io::Write;

use streamgate::proto::reset_group_offsets_request::Target;
use streamgate::proto::{
    DeleteGroupRequest, DescribeGroupRequest, GroupDescription, ListGroupsRequest,
    ListGroupsResponse, ResetGroupOffsetsRequest, ResetGroupOffsetsResponse,
};

use super::Admin;
use super::args::{GroupsArgs, GroupsCommand, ResetArgs};
use crate::Failure;
use crate::proto_json;
use crate::table::{Align, Table, or_dash, text_or_dash};

/// Runs `streamgate groups SUBCOMMAND`.
pub async fn run(mut admin: Admin, args: GroupsArgs) -> Result<(), Failure> {
    let json = args.json;
    match args.action {
        GroupsCommand::List => {
            let listed = admin.list_groups(ListGroupsRequest {}).await?.into_inner();
            let out = &mut std::io::stdout().lock();
            if json {
                return proto_json::write(out, &listed, "ListGroupsResponse");
            }
            write_list(out, &listed).map_err(Failure::io)?;
            note(&listed.groups_unavailable);
            Ok(())
        }
        GroupsCommand::Describe(args) => {
            let request = DescribeGroupRequest { group: args.group };
            let described = admin.describe_group(request).await?.into_inner();
            let out = &mut std::io::stdout().lock();
            if json {
                return proto_json::write(out, &described, "DescribeGroupResponse");
            }
            let group = described
                .group
                .ok_or_else(|| Failure::refused("the server answered without the group"))?;
            write_group(out, &group).map_err(Failure::io)?;
            note(&group.members_unavailable);
            Ok(())
        }
        GroupsCommand::Reset(args) => {
            let group = args.group.clone();
            let plan = admin.reset_group_offsets(reset_request(args)).await?;
            let plan = plan.into_inner();
            let out = &mut std::io::stdout().lock();
            if json {
                return proto_json::write(out, &plan, "ResetGroupOffsetsResponse");
            }
            write_plan(out, &group, &plan).map_err(Failure::io)
        }
        GroupsCommand::Delete(args) => {
            let request = DeleteGroupRequest {
                group: args.group.clone(),
            };
            let deleted = admin.delete_group(request).await?.into_inner();
            let out = &mut std::io::stdout().lock();
            if json {
                return proto_json::write(out, &deleted, "DeleteGroupResponse");
            }
            writeln!(out, "deleted group {}", args.group).map_err(Failure::io)
        }
    }
}

/// A note of the server's about what it could not show, on standard error.
fn note(text: &str) {
    if !text.is_empty() {
        eprintln!("% {text}");
    }
}

fn reset_request(args: ResetArgs) -> ResetGroupOffsetsRequest {
    // clap lets exactly one of the targets through.
    let target = if args.to_earliest {
        Target::ToEarliest(true)
    } else if args.to_latest {
        Target::ToLatest(true)
    } else if let Some(offset) = args.to_offset {
        Target::ToOffset(offset)
    } else if let Some(time) = args.to_datetime {
        Target::ToDatetime(time)
    } else {
        Target::ShiftBy(args.shift_by.unwrap_or(0))
    };
    ResetGroupOffsetsRequest {
        group: args.group,
        topics: args.topics,
        target: Some(target),
        execute: args.execute,
    }
}

/// `GROUP STATE PROTOCOL-TYPE`.
fn write_list(out: &mut impl Write, listed: &ListGroupsResponse) -> std::io::Result<()> {
    let mut table = Table::new(&[
        ("GROUP", Align::Left),
        ("STATE", Align::Left),
        ("PROTOCOL-TYPE", Align::Left),
    ]);
    for g in &listed.groups {
        table.row([
            g.group.clone(),
            text_or_dash(&g.state),
            text_or_dash(&g.protocol_type),
        ]);
    }
    table.write(out)
}

/// kafka-consumer-groups --describe: a row per partition (and per member without one), then
/// the total lag and the state.
fn write_group(out: &mut impl Write, group: &GroupDescription) -> std::io::Result<()> {
    let mut table = Table::new(&[
        ("GROUP", Align::Left),
        ("TOPIC", Align::Left),
        ("PARTITION", Align::Right),
        ("CURRENT-OFFSET", Align::Right),
        ("LOG-END-OFFSET", Align::Right),
        ("LAG", Align::Right),
        ("CONSUMER-ID", Align::Left),
        ("HOST", Align::Left),
        ("CLIENT-ID", Align::Left),
    ]);
    for p in &group.partitions {
        table.row([
            group.group.clone(),
            p.topic.clone(),
            p.partition.to_string(),
            or_dash(p.committed_offset),
            p.log_end_offset.to_string(),
            p.lag.to_string(),
            text_or_dash(&p.member_id),
            text_or_dash(&p.host),
            text_or_dash(&p.client_id),
        ]);
    }
    // Members with nothing assigned show too, as kafka-consumer-groups shows them.
    let idle = group
        .members
        .iter()
        .filter(|m| !group.partitions.iter().any(|p| p.member_id == m.member_id));
    for m in idle {
        let dash = || "-".to_owned();
        table.row([
            group.group.clone(),
            dash(),
            dash(),
            dash(),
            dash(),
            dash(),
            text_or_dash(&m.member_id),
            text_or_dash(&m.host),
            text_or_dash(&m.client_id),
        ]);
    }
    table.write(out)?;
    writeln!(out)?;
    writeln!(
        out,
        "Total lag: {}  State: {}",
        group.total_lag,
        text_or_dash(&group.state)
    )
}

/// `GROUP TOPIC PARTITION CURRENT-OFFSET NEW-OFFSET`, and for a dry run what to add.
fn write_plan(
    out: &mut impl Write,
    group: &str,
    plan: &ResetGroupOffsetsResponse,
) -> std::io::Result<()> {
    let mut table = Table::new(&[
        ("GROUP", Align::Left),
        ("TOPIC", Align::Left),
        ("PARTITION", Align::Right),
        ("CURRENT-OFFSET", Align::Right),
        ("NEW-OFFSET", Align::Right),
    ]);
    for m in &plan.moves {
        table.row([
            group.to_owned(),
            m.topic.clone(),
            m.partition.to_string(),
            or_dash(m.current_offset),
            m.new_offset.to_string(),
        ]);
    }
    table.write(out)?;
    if !plan.executed {
        writeln!(out)?;
        writeln!(
            out,
            "Dry run: nothing was committed. Add --execute to move the offsets of group {group}."
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use streamgate::proto::{GroupMember, GroupPartition, OffsetMove};

    use super::*;

    fn text(write: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
        let mut out = Vec::new();
        write(&mut out).expect("write");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn a_group_reads_as_kafka_consumer_groups_describe() {
        let group = GroupDescription {
            group: "billing".into(),
            state: "Stable".into(),
            members: vec![
                GroupMember {
                    member_id: "m-1".into(),
                    client_id: "c1".into(),
                    host: "/10.0.0.1".into(),
                    assignment: Vec::new(),
                },
                GroupMember {
                    member_id: "m-2".into(),
                    client_id: "c2".into(),
                    host: "/10.0.0.2".into(),
                    assignment: Vec::new(),
                },
            ],
            partitions: vec![
                GroupPartition {
                    topic: "orders".into(),
                    partition: 0,
                    committed_offset: Some(3),
                    log_end_offset: 7,
                    lag: 4,
                    member_id: "m-1".into(),
                    client_id: "c1".into(),
                    host: "/10.0.0.1".into(),
                },
                GroupPartition {
                    topic: "orders".into(),
                    partition: 1,
                    committed_offset: None,
                    log_end_offset: 6,
                    lag: 6,
                    ..Default::default()
                },
            ],
            total_lag: 10,
            ..Default::default()
        };
        assert_eq!(
            text(|out| write_group(out, &group)),
            "GROUP    TOPIC   PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  CONSUMER-ID  HOST       CLIENT-ID\n\
             billing  orders          0               3               7    4  m-1          /10.0.0.1  c1\n\
             billing  orders          1               -               6    6  -            -          -\n\
             billing  -               -               -               -    -  m-2          /10.0.0.2  c2\n\
             \n\
             Total lag: 10  State: Stable\n"
        );
    }

    #[test]
    fn a_dry_run_says_how_to_execute_it() {
        let mut plan = ResetGroupOffsetsResponse {
            moves: vec![OffsetMove {
                topic: "orders".into(),
                partition: 0,
                current_offset: Some(3),
                new_offset: 0,
            }],
            executed: false,
        };
        let dry = text(|out| write_plan(out, "billing", &plan));
        assert_eq!(
            dry,
            "GROUP    TOPIC   PARTITION  CURRENT-OFFSET  NEW-OFFSET\n\
             billing  orders          0               3           0\n\
             \n\
             Dry run: nothing was committed. Add --execute to move the offsets of group billing.\n"
        );
        plan.executed = true;
        let done = text(|out| write_plan(out, "billing", &plan));
        assert!(!done.contains("Dry run"), "{done}");
    }
}
