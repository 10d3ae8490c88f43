//! `streamgate topics create|describe|alter-config|delete` and `streamgate groups`: the
//! issue's walk-through with the real binary — a topic created and described, a group's
//! lag after it read, a reset planned then executed, the next read starting over — and
//! each broker's refusals as the server words them.

use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use streamgate_testkit::{BrokerKind, random_name};
use tokio::time::Instant;

use crate::support::{Cli, TestServer, cli_at, on_each_broker, stderr, stdout};

/// How long a broker may take to let a group go, or to forget a deleted topic or group.
const SETTLES_WITHIN: Duration = Duration::from_secs(60);

/// Runs `streamgate ARGS` every half second until `done` holds of its output, and returns
/// that output; fails the test with the last one after [`SETTLES_WITHIN`].
async fn until(server: &TestServer, args: &[&str], done: impl Fn(&Output) -> bool) -> Output {
    let deadline = Instant::now() + SETTLES_WITHIN;
    loop {
        let output = server.cli(args, None).await;
        if done(&output) {
            return output;
        }
        assert!(
            Instant::now() < deadline,
            "{args:?}: not within {SETTLES_WITHIN:?}; last exit {:?}: {}{}",
            output.status.code(),
            stdout(&output),
            stderr(&output)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Runs `streamgate ARGS`, which must succeed, and returns its standard output.
async fn ok(server: &TestServer, args: &[&str]) -> String {
    let output = server.cli(args, None).await;
    assert!(
        output.status.success(),
        "{args:?}: exit {:?}: {}",
        output.status.code(),
        stderr(&output)
    );
    stdout(&output)
}

/// Runs `streamgate ARGS`, which the server must refuse with `code` (exit code 1) in a
/// message containing `words`.
async fn refused(server: &TestServer, args: &[&str], code: &str, words: &str) {
    let output = server.cli(args, None).await;
    assert_eq!(
        output.status.code(),
        Some(1),
        "{args:?}: {}",
        stderr(&output)
    );
    let message = stderr(&output);
    assert!(
        message.starts_with(&format!("streamgate: {code}: ")) && message.contains(words),
        "{args:?}: {message}"
    );
}

fn json(text: &str) -> Value {
    assert_eq!(text.lines().count(), 1, "one line of JSON: {text}");
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{text:?} is not JSON: {e}"))
}

/// A canonical-JSON int64 (a string) as a number.
fn int64(value: &Value) -> i64 {
    value
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{value} is not an int64 in canonical JSON"))
}

/// The rows of a table that start with `first` (a group, a partition id), split at blanks.
fn rows<'a>(text: &'a str, first: &str) -> Vec<Vec<&'a str>> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|cells| cells.first() == Some(&first))
        .collect()
}

/// The sum of column `column` over rows.
fn sum(rows: &[Vec<&str>], column: usize) -> i64 {
    rows.iter()
        .map(|r| {
            r[column]
                .parse::<i64>()
                .unwrap_or_else(|e| panic!("{r:?}: {e}"))
        })
        .sum()
}

/// Whether a reset was refused because the group still has a member: the stream of the
/// previous command leaves the group a moment after it ended.
fn busy(output: &Output) -> bool {
    !output.status.success() && stderr(output).contains("active member")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_created_described_and_deleted() {
    on_each_broker(|server| async move {
        let topic = random_name("orders");
        let created = ok(&server, &["topics", "create", &topic, "--partitions", "6"]).await;
        assert!(
            created.starts_with(&format!("Topic: {topic}  Partitions: 6  Records: 0\n")),
            "{created}"
        );

        let described = ok(&server, &["topics", "describe", &topic]).await;
        let header = "PARTITION  LEADER  REPLICAS  ISR  LOW  HIGH";
        assert!(described.lines().any(|l| l.trim() == header), "{described}");
        let partitions: Vec<&str> = described
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|first| first.parse::<i32>().is_ok())
            .collect();
        assert_eq!(partitions, ["0", "1", "2", "3", "4", "5"], "{described}");
        match server.kind {
            BrokerKind::Embedded => assert!(
                described.contains("\nConfigs unavailable: ")
                    && described.contains("DescribeConfigs"),
                "{described}"
            ),
            BrokerKind::Real => assert!(
                described.contains("\nNAME ") || described.contains("\nConfigs unavailable: "),
                "{described}"
            ),
        }
        let as_json = json(&ok(&server, &["topics", "describe", &topic, "--json"]).await);
        assert_eq!(as_json["topic"]["name"], topic.as_str());
        assert_eq!(
            as_json["topic"]["partitions"].as_array().map(Vec::len),
            Some(6)
        );
        assert_eq!(as_json["topic"]["partitions"][5]["partition"], 5);
        assert_eq!(int64(&as_json["topic"]["records"]), 0);

        refused(
            &server,
            &["topics", "create", &topic, "--partitions", "6"],
            "ALREADY_EXISTS",
            &topic,
        )
        .await;
        refused(
            &server,
            &["topics", "create", "bad name!"],
            "INVALID_ARGUMENT",
            "bad name!",
        )
        .await;
        refused(
            &server,
            &[
                "topics",
                "create",
                &random_name("t"),
                "--config",
                "retention.mss=1",
            ],
            "INVALID_ARGUMENT",
            "retention.mss",
        )
        .await;
        // --validate-only: answered as a create, and nothing created.
        let checked = random_name("t");
        let validated = ok(
            &server,
            &[
                "topics",
                "create",
                &checked,
                "--partitions",
                "2",
                "--validate-only",
            ],
        )
        .await;
        assert!(
            validated.starts_with(&format!("Topic: {checked}  Partitions: 2  "))
                && validated.ends_with("; nothing was created\n"),
            "{validated}"
        );
        if server.kind == BrokerKind::Embedded {
            // Tansu ignores CreateTopics' validate_only and creates the topic.
            refused(
                &server,
                &["topics", "describe", &checked],
                "NOT_FOUND",
                &checked,
            )
            .await;
        }
        // Neither test broker offers AlterConfigs to librdkafka: the server says so.
        refused(
            &server,
            &[
                "topics",
                "alter-config",
                &topic,
                "--set",
                "retention.ms=3600000",
                "--delete",
                "cleanup.policy",
            ],
            "UNIMPLEMENTED",
            "AlterConfigs",
        )
        .await;

        match server.kind {
            BrokerKind::Embedded => {
                refused(
                    &server,
                    &["topics", "delete", &topic],
                    "UNIMPLEMENTED",
                    "DeleteTopics",
                )
                .await;
                ok(&server, &["topics", "describe", &topic]).await;
            }
            BrokerKind::Real => {
                let deleted = ok(&server, &["topics", "delete", &topic]).await;
                assert_eq!(deleted, format!("deleted topic {topic}\n"));
                until(&server, &["topics", "describe", &topic], |o| {
                    stderr(o).contains("NOT_FOUND")
                })
                .await;
                refused(&server, &["topics", "delete", &topic], "NOT_FOUND", &topic).await;
            }
        }
        server.stop().await;
    })
    .await;
}

/// The walk-through: 20 records over 6 partitions, a group that read 10, its lag
/// per partition; a reset to earliest planned (nothing moves), executed, and the next read
/// of the group from offset 0 of every partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_s_lag_its_reset_and_the_next_read() {
    on_each_broker(|server| async move {
        let topic = random_name("orders");
        ok(&server, &["topics", "create", &topic, "--partitions", "6"]).await;
        // One record per call: Tansu's high watermark grows by one per batch, so a batch
        // from standard input would show a wrong lag there (docs/testing.md).
        for i in 0..20 {
            let (partition, value) = ((i % 6).to_string(), format!("v{i}"));
            ok(&server, &["publish", &topic, "-p", &partition, "--value", &value]).await;
        }
        let group = random_name("billing");
        let read = ok(
            &server,
            &[
                "subscribe",
                &topic,
                "--group",
                &group,
                "--from",
                "earliest",
                "--count",
                "10",
            ],
        )
        .await;
        assert_eq!(read.lines().count(), 10, "{read}");

        // GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID
        let described = ok(&server, &["groups", "describe", &group]).await;
        let header = "GROUP  TOPIC  PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  CONSUMER-ID  HOST  CLIENT-ID";
        assert_eq!(
            described
                .lines()
                .next()
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join("  ")),
            Some(header.to_owned()),
            "{described}"
        );
        let partitions = rows(&described, &group);
        assert!(
            partitions.iter().all(|r| r.len() == 9 && r[1] == topic),
            "{described}"
        );
        assert_eq!((sum(&partitions, 4), sum(&partitions, 5)), (20, 10), "{described}");
        assert!(described.contains("\nTotal lag: 10  State: "), "{described}");
        let as_json = json(&ok(&server, &["groups", "describe", &group, "--json"]).await);
        assert_eq!(as_json["group"]["group"], group.as_str());
        assert_eq!(int64(&as_json["group"]["totalLag"]), 10, "{as_json}");

        let listed = server.cli(&["groups", "list"], None).await;
        assert!(listed.status.success(), "{}", stderr(&listed));
        assert!(
            stdout(&listed).starts_with("GROUP  ") && !rows(&stdout(&listed), &group).is_empty(),
            "{}",
            stdout(&listed)
        );
        if server.kind == BrokerKind::Embedded {
            assert!(
                stderr(&listed).starts_with("% ") && stderr(&listed).contains("ListGroups"),
                "the broker cannot list groups, and the CLI says so: {}",
                stderr(&listed)
            );
        }
        let listed = json(&ok(&server, &["groups", "list", "--json"]).await);
        assert!(
            listed["groups"]
                .as_array()
                .is_some_and(|g| g.iter().any(|g| g["group"] == group.as_str())),
            "{listed}"
        );

        // A dry run: the plan, and nothing moves.
        let reset = [
            "groups",
            "reset",
            &group,
            "--topic",
            &topic,
            "--to-earliest",
        ];
        let plan = stdout(&until(&server, &reset, |o| !busy(o)).await);
        assert!(
            plan.starts_with("GROUP  ")
                && plan
                    .lines()
                    .next()
                    .is_some_and(|l| l.split_whitespace().collect::<Vec<_>>()
                        == ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"]),
            "{plan}"
        );
        let moves = rows(&plan, &group);
        assert_eq!(moves.len(), 6, "every partition of the topic: {plan}");
        assert!(moves.iter().all(|m| m[4] == "0"), "{plan}");
        assert!(
            plan.contains("\nDry run: nothing was committed. Add --execute"),
            "{plan}"
        );
        let unchanged = ok(&server, &["groups", "describe", &group]).await;
        assert!(unchanged.contains("\nTotal lag: 10  State: "), "{unchanged}");

        let by_time = json(&ok(
            &server,
            &[
                "groups",
                "reset",
                &group,
                "--topic",
                &topic,
                "--to-datetime",
                "2020-01-01T00:00:00Z",
                "--json",
            ],
        )
        .await);
        assert_eq!(by_time["executed"], false, "{by_time}");
        let new_offsets: Vec<i64> = by_time["moves"]
            .as_array()
            .map(|m| m.iter().map(|m| int64(&m["newOffset"])).collect())
            .unwrap_or_default();
        assert_eq!(new_offsets, [0; 6], "{by_time}");

        let executed = [&reset[..], &["--execute"]].concat();
        let done = stdout(&until(&server, &executed, |o| !busy(o)).await);
        assert_eq!(rows(&done, &group).len(), 6, "{done}");
        assert!(!done.contains("Dry run"), "{done}");
        let after = ok(&server, &["groups", "describe", &group]).await;
        let partitions = rows(&after, &group);
        assert!(partitions.iter().all(|r| r[3] == "0"), "{after}");
        assert!(after.contains("\nTotal lag: 20  State: "), "{after}");

        // The next read of the group starts at offset 0 of each partition.
        let again = until(
            &server,
            &["subscribe", &topic, "--group", &group, "--count", "20", "--json"],
            |o| o.status.success(),
        )
        .await;
        let starts = stderr(&again);
        for partition in 0..6 {
            assert!(
                starts.contains(&format!("% reading {topic} [{partition}] from offset 0 ")),
                "{starts}"
            );
        }
        let offsets: Vec<(i64, i64)> = stdout(&again)
            .lines()
            .map(json)
            .map(|r| (r["partition"].as_i64().unwrap_or(-1), r["offset"].as_i64().unwrap_or(-1)))
            .collect();
        assert_eq!(offsets.len(), 20);
        for partition in 0..6 {
            let first = offsets.iter().find(|(p, _)| *p == partition);
            assert!(
                first.is_none_or(|(_, offset)| *offset == 0),
                "partition {partition} from 0: {offsets:?}"
            );
        }

        match server.kind {
            BrokerKind::Embedded => {
                refused(
                    &server,
                    &["groups", "delete", &group],
                    "UNIMPLEMENTED",
                    "DeleteGroups",
                )
                .await;
            }
            BrokerKind::Real => {
                let deleted = until(&server, &["groups", "delete", &group], |o| !busy(o)).await;
                assert_eq!(
                    stdout(&deleted),
                    format!("deleted group {group}\n"),
                    "{}",
                    stderr(&deleted)
                );
                refused(&server, &["groups", "describe", &group], "NOT_FOUND", &group).await;
            }
        }
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_exit_with_the_usual_codes() {
    on_each_broker(|server| async move {
        refused(
            &server,
            &["groups", "describe", &random_name("nobody")],
            "NOT_FOUND",
            "nobody",
        )
        .await;
        // Bad command lines are refused before any call.
        for args in [
            &["groups", "reset", "g", "--topic", "t"][..],
            &[
                "groups",
                "reset",
                "g",
                "--topic",
                "t",
                "--to-earliest",
                "--to-latest",
            ],
            &[
                "groups",
                "reset",
                "g",
                "--topic",
                "t",
                "--to-datetime",
                "yesterday",
            ],
            &["topics", "create", "t", "--partitions", "0"],
            &["topics", "alter-config", "t"],
            &["topics", "--internal", "describe", "t"],
        ] {
            let usage = server.cli(args, None).await;
            assert_eq!(usage.status.code(), Some(2), "{args:?}: {}", stderr(&usage));
        }
        server.stop().await;
    })
    .await;
    let unreachable = cli_at("http://127.0.0.1:1", &["groups", "list"], None).await;
    assert_eq!(
        unreachable.status.code(),
        Some(3),
        "{}",
        stderr(&unreachable)
    );
}
