//! The commands a user types, checked by their output and exit codes.

use serde_json::Value;

use crate::support::{Cli, cli_at, on_each_broker, stderr, stdout};

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?} is not JSON: {e}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_a_page_event_then_subscribe_prints_it() {
    on_each_broker(|server| async move {
        let topic = server.topic(3).await;
        let published = server
            .cli(
                &[
                    "publish",
                    &topic,
                    "--name",
                    "P1",
                    "--user",
                    "U2",
                    "--duration",
                    "77",
                ],
                None,
            )
            .await;
        assert!(published.status.success(), "{}", stderr(&published));
        assert!(
            stdout(&published).starts_with(&format!("published to {topic} partition ")),
            "{}",
            stdout(&published)
        );

        let read = server
            .cli(
                &["subscribe", &topic, "--from", "earliest", "--count", "1"],
                None,
            )
            .await;
        assert!(read.status.success(), "{}", stderr(&read));
        let line = stdout(&read);
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(line.contains("key=P1"), "{line}");
        assert!(
            line.contains(r#"{"name":"P1","user":"U2","date":""#)
                && line.contains(r#"","duration":77}"#),
            "{line}"
        );
        assert!(
            stderr(&read).contains(&format!("% reading {topic} [")),
            "{}",
            stderr(&read)
        );

        let read = server
            .cli(
                &[
                    "subscribe",
                    &topic,
                    "--from",
                    "earliest",
                    "--exit-at-end",
                    "--json",
                ],
                None,
            )
            .await;
        assert!(read.status.success(), "{}", stderr(&read));
        let records = json_lines(&stdout(&read));
        assert_eq!(records.len(), 1);
        assert_eq!(records[0]["key"], "P1");
        assert_eq!(records[0]["page_event"]["name"], "P1");
        assert_eq!(records[0]["page_event"]["user"], "U2");
        assert_eq!(records[0]["page_event"]["duration"], 77);
        assert_eq!(records[0]["headers"][0]["value"], "application/json");
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_from_stdin_one_record_per_line_with_keys_and_headers() {
    on_each_broker(|server| async move {
        let topic = server.topic(3).await;
        let published = server
            .cli(
                &["publish", &topic, "-K", ":", "-H", "source=cli"],
                Some("a:one\nb:two\nthree\n"),
            )
            .await;
        assert!(published.status.success(), "{}", stderr(&published));
        assert!(
            stderr(&published).contains("published 3 record(s)"),
            "{}",
            stderr(&published)
        );

        let read = server
            .cli(
                &[
                    "subscribe",
                    &topic,
                    "--from",
                    "earliest",
                    "--count",
                    "3",
                    "--json",
                ],
                None,
            )
            .await;
        assert!(read.status.success(), "{}", stderr(&read));
        let mut pairs: Vec<(Value, Value)> = json_lines(&stdout(&read))
            .into_iter()
            .map(|r| (r["key"].clone(), r["value"].clone()))
            .collect();
        pairs.sort_by_key(|(_, v)| v.to_string());
        assert_eq!(
            pairs,
            vec![
                ("a".into(), "one".into()),
                (Value::Null, "three".into()),
                ("b".into(), "two".into()),
            ]
        );
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_continues_where_the_previous_command_stopped() {
    on_each_broker(|server| async move {
        let topic = server.topic(3).await;
        let lines: String = (0..6).map(|i| format!("v{i}\n")).collect();
        assert!(
            server
                .cli(&["publish", &topic], Some(&lines))
                .await
                .status
                .success()
        );
        let group = format!("{topic}-group");
        let mut seen = Vec::new();
        for _ in 0..3 {
            let read = server
                .cli(
                    &[
                        "subscribe",
                        &topic,
                        "-g",
                        &group,
                        "--from",
                        "earliest",
                        "-c",
                        "2",
                        "--json",
                    ],
                    None,
                )
                .await;
            assert!(read.status.success(), "{}", stderr(&read));
            seen.extend(
                json_lines(&stdout(&read))
                    .into_iter()
                    .map(|r| r["value"].as_str().unwrap_or_default().to_owned()),
            );
        }
        seen.sort();
        assert_eq!(
            seen,
            (0..6).map(|i| format!("v{i}")).collect::<Vec<_>>(),
            "each record once, none skipped"
        );
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_lists_the_server_topics() {
    on_each_broker(|server| async move {
        let topic = server.topic(3).await;
        assert!(
            server
                .cli(&["publish", &topic, "--value", "x"], None)
                .await
                .status
                .success()
        );
        let listed = server.cli(&["topics"], None).await;
        assert!(listed.status.success(), "{}", stderr(&listed));
        let text = stdout(&listed);
        for name in ["R1", "R2", "R3", "R4"] {
            assert!(
                text.lines().any(|l| l.starts_with(&format!("{name} "))),
                "{text}"
            );
        }
        let row = text
            .lines()
            .find(|l| l.starts_with(&topic))
            .expect("the new topic is listed");
        let columns: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(columns, vec![topic.as_str(), "3", "1"]);
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_print_the_server_message_and_exit_with_meaningful_codes() {
    on_each_broker(|server| async move {
        let bad = server
            .cli(&["publish", "bad topic", "--value", "x"], None)
            .await;
        assert_eq!(bad.status.code(), Some(1));
        assert!(
            stderr(&bad).contains("INVALID_ARGUMENT") && stderr(&bad).contains("[a-zA-Z0-9._-]"),
            "{}",
            stderr(&bad)
        );
        assert!(
            !stderr(&bad).contains("Status {"),
            "no debug dump: {}",
            stderr(&bad)
        );

        let missing = server
            .cli(&["subscribe", "no-such-topic", "-e"], None)
            .await;
        assert_eq!(missing.status.code(), Some(1));
        assert!(
            stderr(&missing).contains("NOT_FOUND"),
            "{}",
            stderr(&missing)
        );

        let usage = server
            .cli(&["subscribe", "R1", "--from", "yesterday"], None)
            .await;
        assert_eq!(usage.status.code(), Some(2), "{}", stderr(&usage));
        server.stop().await;
    })
    .await;
    let unreachable = cli_at("http://127.0.0.1:1", &["topics"], None).await;
    assert_eq!(unreachable.status.code(), Some(3));
    assert!(
        stderr(&unreachable).contains("cannot reach the streamgate server"),
        "{}",
        stderr(&unreachable)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_exits_0_only_when_serving() {
    on_each_broker(|server| async move {
        for service in ["", "streamgate.v1.EventGateway"] {
            let serving = server.cli(&["health", "--service", service], None).await;
            assert_eq!(serving.status.code(), Some(0), "{}", stderr(&serving));
            assert_eq!(stdout(&serving).trim(), "SERVING");
        }
        let unknown = server.cli(&["health", "--service", "no.Such"], None).await;
        assert_eq!(unknown.status.code(), Some(1), "{}", stderr(&unknown));
        assert!(
            stderr(&unknown).contains("NOT_FOUND"),
            "{}",
            stderr(&unknown)
        );
        server.stop().await;
    })
    .await;
    let unreachable = cli_at("http://127.0.0.1:1", &["health"], None).await;
    assert_eq!(
        unreachable.status.code(),
        Some(3),
        "{}",
        stderr(&unreachable)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supplier_status_set_stop_and_start() {
    on_each_broker(|server| async move {
        let status = server.cli(&["supplier", "status", "--json"], None).await;
        assert!(status.status.success(), "{}", stderr(&status));
        let status: Value = serde_json::from_str(stdout(&status).trim()).expect("JSON status");
        assert_eq!(status["running"], true);
        assert_eq!(status["topic"], "R2");

        let set = server
            .cli(
                &[
                    "supplier",
                    "set",
                    "--rate",
                    "50/s",
                    "--pages",
                    "P1,P2,P3",
                    "--duration",
                    "10..20",
                    "--json",
                ],
                None,
            )
            .await;
        assert!(set.status.success(), "{}", stderr(&set));
        let set: Value = serde_json::from_str(stdout(&set).trim()).expect("JSON status");
        assert_eq!(set["rate_per_second"], 50.0);
        assert_eq!(set["pages"], serde_json::json!(["P1", "P2", "P3"]));
        assert_eq!(
            (
                set["min_duration_ms"].as_i64(),
                set["max_duration_ms"].as_i64()
            ),
            (Some(10), Some(20))
        );

        let refused = server
            .cli(&["supplier", "set", "--duration", "30..20"], None)
            .await;
        assert_eq!(refused.status.code(), Some(1));
        assert!(
            stderr(&refused).contains("INVALID_ARGUMENT"),
            "{}",
            stderr(&refused)
        );

        let stopped = server.cli(&["supplier", "stop"], None).await;
        assert!(
            stdout(&stopped).contains("supplier  : stopped"),
            "{}",
            stdout(&stopped)
        );
        let started = server.cli(&["supplier", "start"], None).await;
        assert!(
            stdout(&started).contains("supplier  : running"),
            "{}",
            stdout(&started)
        );
        assert!(
            stdout(&started).contains("pages     : P1,P2,P3"),
            "{}",
            stdout(&started)
        );
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_lists_the_commands_and_exit_codes_and_no_load_generator() {
    // Parsing only: no server is asked, so none runs here.
    let help = cli_at("http://127.0.0.1:9", &["--help"], None).await;
    assert!(help.status.success(), "{}", stderr(&help));
    let text = stdout(&help);
    for command in [
        "publish",
        "subscribe",
        "consume",
        "topics",
        "groups",
        "stats",
        "health",
    ] {
        assert!(text.contains(command), "{command}: {text}");
    }
    assert!(
        text.contains("Exit codes: 0 ok, 1 request refused by the server, 2 bad command line, 3 server or Kafka unreachable, 130 interrupted."),
        "{text}"
    );
    // The load generator is its own program (streamgate-bench): the CLI does not link Kafka.
    assert!(!text.contains("bench"), "{text}");
    let bench = cli_at("http://127.0.0.1:9", &["bench", "publish"], None).await;
    assert_eq!(bench.status.code(), Some(2), "{}", stderr(&bench));
}
