//! The admin API on each broker: topics created, described and deleted; a group's lag after
//! it read, an offset reset (dry run, then executed, refused while the group reads) and the
//! next read starting where the reset put it; the embedded broker's missing Kafka APIs as
//! UNIMPLEMENTED naming them; permissions that name what is missing.

use std::time::Duration;

use streamgate::auth::BearerToken;
use streamgate::proto::admin_service_client::AdminServiceClient;
use streamgate::proto::{
    self, AlterTopicConfigsRequest, ConfigChange, CreateTopicRequest, DeleteGroupRequest,
    DeleteTopicRequest, DescribeGroupRequest, DescribeTopicRequest, GroupDescription,
    ListGroupsRequest, ResetGroupOffsetsRequest, config_change, reset_group_offsets_request,
    start_position,
};
use streamgate_server::Settings;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::support::{
    BrokerKind, TestServer, next_message, on_each_broker, on_each_broker_with, publish_values,
    random_name, records_of, subscribe_request, within,
};

type Admin = AdminServiceClient<Channel>;

async fn admin(server: &TestServer) -> Admin {
    AdminServiceClient::new(server.channel().await)
}

async fn describe_topic(
    admin: &mut Admin,
    topic: &str,
) -> Result<proto::TopicDescription, tonic::Status> {
    let call = admin.describe_topic(DescribeTopicRequest {
        topic: topic.into(),
    });
    within(Duration::from_secs(30), "DescribeTopic", call)
        .await
        .map(|r| r.into_inner().topic.expect("a topic"))
}

async fn describe_group(admin: &mut Admin, group: &str) -> Result<GroupDescription, tonic::Status> {
    let call = admin.describe_group(DescribeGroupRequest {
        group: group.into(),
    });
    within(Duration::from_secs(30), "DescribeGroup", call)
        .await
        .map(|r| r.into_inner().group.expect("a group"))
}

fn reset(group: &str, topic: &str, execute: bool) -> ResetGroupOffsetsRequest {
    ResetGroupOffsetsRequest {
        group: group.into(),
        topics: vec![topic.into()],
        target: Some(reset_group_offsets_request::Target::ToEarliest(true)),
        execute,
    }
}

/// CreateTopic makes a topic DescribeTopic shows with its partitions; a second create is
/// ALREADY_EXISTS, a bad name or config INVALID_ARGUMENT naming it. Deleting works where
/// the broker has DeleteTopics (Tansu) and is UNIMPLEMENTED naming it where not (the
/// embedded broker); changing configs needs AlterConfigs, which neither test broker offers
/// librdkafka, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_created_described_and_deleted() {
    on_each_broker(async |server| {
        let mut admin = admin(&server).await;
        let topic = random_name("orders");
        let created = admin
            .create_topic(CreateTopicRequest {
                topic: topic.clone(),
                partitions: 6,
                ..Default::default()
            })
            .await
            .expect("created")
            .into_inner()
            .topic
            .expect("the topic");
        assert_eq!(created.partitions.len(), 6);
        let described = describe_topic(&mut admin, &topic).await.expect("described");
        let ids: Vec<i32> = described.partitions.iter().map(|p| p.partition).collect();
        assert_eq!(ids, [0, 1, 2, 3, 4, 5]);
        for p in &described.partitions {
            assert!(
                p.leader >= 0 && !p.replicas.is_empty() && !p.in_sync_replicas.is_empty(),
                "{p:?}"
            );
        }
        let again = admin
            .create_topic(CreateTopicRequest {
                topic: topic.clone(),
                partitions: 6,
                ..Default::default()
            })
            .await
            .expect_err("exists");
        assert_eq!(again.code(), Code::AlreadyExists, "{again:?}");
        for (request, names) in [
            (
                CreateTopicRequest {
                    topic: "bad name!".into(),
                    ..Default::default()
                },
                "bad name!",
            ),
            (
                CreateTopicRequest {
                    topic: random_name("t"),
                    configs: [("retention.mss".to_owned(), "1".to_owned())].into(),
                    ..Default::default()
                },
                "retention.mss",
            ),
            (
                CreateTopicRequest {
                    topic: random_name("t"),
                    partitions: -3,
                    ..Default::default()
                },
                "partitions",
            ),
        ] {
            let refused = admin.create_topic(request).await.expect_err("invalid");
            assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
            assert!(refused.message().contains(names), "{refused:?}");
        }
        let change = ConfigChange {
            name: "retention.ms".into(),
            operation: Some(config_change::Operation::Set("3600000".into())),
        };
        let alter = admin
            .alter_topic_configs(AlterTopicConfigsRequest {
                topic: topic.clone(),
                changes: vec![change],
                validate_only: false,
            })
            .await
            .expect_err("neither test broker offers AlterConfigs to librdkafka");
        assert_eq!(alter.code(), Code::Unimplemented, "{alter:?}");
        assert!(alter.message().contains("AlterConfigs"), "{alter:?}");

        let deleted = admin
            .delete_topic(DeleteTopicRequest {
                topic: topic.clone(),
            })
            .await;
        match server.kind {
            BrokerKind::Embedded => {
                let refused = deleted.expect_err("no DeleteTopics");
                assert_eq!(refused.code(), Code::Unimplemented, "{refused:?}");
                assert!(refused.message().contains("DeleteTopics"), "{refused:?}");
                let described = describe_topic(&mut admin, &topic)
                    .await
                    .expect("still there");
                assert!(
                    described.configs_unavailable.contains("DescribeConfigs"),
                    "{described:?}"
                );
            }
            BrokerKind::Real => {
                deleted.expect("deleted");
                crate::support::eventually(
                    Duration::from_secs(30),
                    "the topic is gone",
                    async || {
                        describe_topic(&mut admin, &topic)
                            .await
                            .err()
                            .map(|e| e.code())
                            == Some(Code::NotFound)
                    },
                )
                .await;
                let gone = admin
                    .delete_topic(DeleteTopicRequest { topic })
                    .await
                    .expect_err("gone");
                assert_eq!(gone.code(), Code::NotFound, "{gone:?}");
            }
        }
        server.stop().await;
    })
    .await;
}

/// The walk-through: a group reads 10 records of a 3-partition topic, more records
/// come, DescribeGroup shows each partition's lag and the total; a dry-run reset to
/// earliest changes nothing, the executed one makes the next read of the group start at
/// offset 0 of every partition; a reset while the group reads is FAILED_PRECONDITION;
/// deleting the group works where the broker has DeleteGroups.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_s_lag_its_reset_and_the_next_read() {
    on_each_broker(async |server| {
        let mut admin = admin(&server).await;
        let mut client = server.client().await;
        let topic = server.topic(3).await;
        let group = random_name("billing");
        let values =
            |from: usize, to: usize| (from..to).map(|i| format!("v{i}")).collect::<Vec<_>>();
        publish_values(&mut client, &topic, values(0, 12)).await;
        let read = read_in_group(&server, &topic, &group, 10).await;
        assert_eq!(read.len(), 10);
        publish_values(&mut client, &topic, values(12, 20)).await;

        let described = describe_group(&mut admin, &group).await.expect("described");
        let committed: i64 = described
            .partitions
            .iter()
            .filter_map(|p| p.committed_offset)
            .sum();
        let end: i64 = described.partitions.iter().map(|p| p.log_end_offset).sum();
        assert_eq!((committed, end), (10, 20), "{described:?}");
        assert_eq!(described.total_lag, 10, "{described:?}");
        for p in &described.partitions {
            assert_eq!(
                p.lag,
                p.log_end_offset - p.committed_offset.unwrap_or(0),
                "{p:?}"
            );
        }

        let plan = admin
            .reset_group_offsets(reset(&group, &topic, false))
            .await
            .expect("a plan")
            .into_inner();
        assert!(!plan.executed);
        assert_eq!(plan.moves.len(), 3);
        assert!(plan.moves.iter().all(|m| m.new_offset == 0), "{plan:?}");
        assert_eq!(
            plan.moves
                .iter()
                .filter_map(|m| m.current_offset)
                .sum::<i64>(),
            10
        );
        let unchanged = describe_group(&mut admin, &group).await.expect("described");
        assert_eq!(unchanged.total_lag, 10, "a dry run moves nothing");

        // While a stream of the group reads, the reset is refused.
        let mut reading = client
            .subscribe(subscribe_request(&topic, Some(&group), None))
            .await
            .expect("subscribed")
            .into_inner();
        next_message(&mut reading, Duration::from_secs(30)).await;
        let busy = admin
            .reset_group_offsets(reset(&group, &topic, true))
            .await
            .expect_err("busy");
        assert_eq!(busy.code(), Code::FailedPrecondition, "{busy:?}");
        assert!(busy.message().contains("active member"), "{busy:?}");
        drop(reading);

        let done = crate::support::eventually(
            Duration::from_secs(60),
            "the reset once the stream left",
            async || {
                admin
                    .reset_group_offsets(reset(&group, &topic, true))
                    .await
                    .ok()
            },
        )
        .await
        .into_inner();
        assert!(done.executed);
        let after = describe_group(&mut admin, &group).await.expect("described");
        assert!(
            after
                .partitions
                .iter()
                .all(|p| p.committed_offset == Some(0)),
            "{after:?}"
        );
        assert_eq!(after.total_lag, 20);
        // By time: before every record, the oldest offsets; after them, the ends.
        for (seconds, want) in [(1_600_000_000, 0), (4_000_000_000, 20)] {
            let mut by_time = reset(&group, &topic, false);
            by_time.target = Some(reset_group_offsets_request::Target::ToDatetime(
                prost_types::Timestamp { seconds, nanos: 0 },
            ));
            let plan = admin
                .reset_group_offsets(by_time)
                .await
                .expect("a plan")
                .into_inner();
            let moved: i64 = plan.moves.iter().map(|m| m.new_offset).sum();
            assert_eq!(moved, want, "to {seconds}: {plan:?}");
        }
        let again = read_in_group(&server, &topic, &group, 20).await;
        let mut firsts: Vec<(i32, i64)> = Vec::new();
        for r in &again {
            if !firsts.iter().any(|(p, _)| *p == r.partition) {
                firsts.push((r.partition, r.offset));
            }
        }
        assert!(
            firsts.iter().all(|(_, offset)| *offset == 0),
            "each partition from 0: {firsts:?}"
        );

        let deleted = admin
            .delete_group(DeleteGroupRequest {
                group: group.clone(),
            })
            .await;
        match server.kind {
            BrokerKind::Embedded => {
                let refused = deleted.expect_err("no DeleteGroups");
                assert_eq!(refused.code(), Code::Unimplemented, "{refused:?}");
                assert!(refused.message().contains("DeleteGroups"), "{refused:?}");
            }
            BrokerKind::Real => {
                crate::support::eventually(
                    Duration::from_secs(60),
                    "the group deleted once its stream left",
                    async || {
                        admin
                            .delete_group(DeleteGroupRequest {
                                group: group.clone(),
                            })
                            .await
                            .ok()
                    },
                )
                .await;
                let gone = describe_group(&mut admin, &group).await.expect_err("gone");
                assert_eq!(gone.code(), Code::NotFound, "{gone:?}");
            }
        }
        server.stop().await;
    })
    .await;
}

/// Reads `count` records of `topic` in `group` from its committed offsets (the earliest
/// where it has none), committing exactly those.
async fn read_in_group(
    server: &TestServer,
    topic: &str,
    group: &str,
    count: u64,
) -> Vec<proto::Record> {
    let mut request = subscribe_request(
        topic,
        Some(group),
        Some(start_position::Position::Earliest(true)),
    );
    request.max_records = Some(count);
    let mut client = server.client().await;
    let mut stream = client
        .subscribe(request)
        .await
        .expect("subscribed")
        .into_inner();
    let mut records = Vec::new();
    while let Some(message) = within(
        Duration::from_secs(60),
        "group records",
        futures::StreamExt::next(&mut stream),
    )
    .await
    {
        records.extend(records_of(message.expect("a message").message));
    }
    records
}

/// Without `admin`, a principal manages only what its globs name, and each refusal names
/// the permission missing: another topic, the server's own topics and groups, another
/// group. ListGroups shows only the groups it may see.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_name_what_is_missing() {
    let file = streamgate_testkit::AuthFile::new(&[(
        "ops",
        "ops-token",
        &[
            "topics",
            "topics:manage:team-*",
            "group:team-*",
            "groups:manage:team-*",
            "subscribe:*",
            "publish:*",
        ],
    )]);
    let auth = |s: &mut Settings| file.apply(s);
    on_each_broker_with(auth, |server| async move {
        let token = BearerToken::optional(Some("ops-token")).expect("ascii");
        let mut ops: AdminServiceClient<InterceptedService<Channel, BearerToken>> =
            AdminServiceClient::with_interceptor(server.channel().await, token);
        let team = format!("team-{}", random_name("t"));
        ops.create_topic(CreateTopicRequest {
            topic: team.clone(),
            partitions: 1,
            ..Default::default()
        })
        .await
        .expect("its own topic");
        for (topic, missing) in [("other", "topics:manage:other"), ("R2", "admin")] {
            let refused = ops
                .create_topic(CreateTopicRequest {
                    topic: topic.into(),
                    ..Default::default()
                })
                .await
                .expect_err("refused");
            assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
            assert!(
                refused
                    .message()
                    .contains(&format!("missing permission {missing}")),
                "{refused:?}"
            );
        }
        let analytics = ops
            .describe_group(DescribeGroupRequest {
                group: "streamgate-analytics".into(),
            })
            .await
            .expect_err("the server's group");
        assert_eq!(analytics.code(), Code::PermissionDenied, "{analytics:?}");
        let other = ops
            .reset_group_offsets(reset("other", &team, false))
            .await
            .expect_err("not its group");
        assert!(
            other
                .message()
                .contains("missing permission groups:manage:other"),
            "{other:?}"
        );
        let listed = ops
            .list_groups(ListGroupsRequest {})
            .await
            .expect("listed")
            .into_inner();
        assert!(
            listed.groups.iter().all(|g| g.group.starts_with("team-")),
            "{listed:?}"
        );
        let anonymous = admin(&server)
            .await
            .list_groups(ListGroupsRequest {})
            .await
            .expect_err("no token");
        assert_eq!(anonymous.code(), Code::Unauthenticated);
        server.stop().await;
    })
    .await;
}
