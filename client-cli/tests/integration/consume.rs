//! `streamgate consume`: records are acknowledged once printed (or once `--exec` succeeded),
//! so the group gets back exactly what a stopped command did not finish.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use streamgate_testkit::within;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{Cli, TestServer, on_each_broker, stderr, stdout};

fn values(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .map(|r| r["value"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn publish(server: &TestServer, topic: &str, values: &[&str]) {
    let lines: String = values.iter().map(|v| format!("{v}\n")).collect();
    let published = server.cli(&["publish", topic], Some(&lines)).await;
    assert!(published.status.success(), "{}", stderr(&published));
}

/// `consume -g GROUP -c N --json` from the group's commits (earliest without one).
async fn consume(server: &TestServer, topic: &str, group: &str, count: &str) -> Vec<Value> {
    let read = server
        .cli(
            &[
                "consume", topic, "-g", group, "--from", "earliest", "-c", count, "--json",
            ],
            None,
        )
        .await;
    assert!(read.status.success(), "{}", stderr(&read));
    stdout(&read)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_command_continues_after_what_the_previous_one_acknowledged() {
    on_each_broker(|server| async move {
        let topic = server.topic(1).await;
        let group = format!("{topic}-group");
        publish(&server, &topic, &["v0", "v1", "v2", "v3", "v4"]).await;

        let first = consume(&server, &topic, &group, "2").await;
        assert_eq!(
            first.iter().map(|r| r["value"].clone()).collect::<Vec<_>>(),
            ["v0", "v1"]
        );
        assert_eq!(first[0]["delivery_attempt"], 1);
        // The server delivered more than two (a batch of what was ready); only the two printed
        // were acknowledged, so the next command starts at v2.
        let second = consume(&server, &topic, &group, "3").await;
        assert_eq!(
            second
                .iter()
                .map(|r| r["value"].clone())
                .collect::<Vec<_>>(),
            ["v2", "v3", "v4"]
        );
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_acks_on_success_and_nacks_on_failure() {
    on_each_broker(|server| async move {
        let topic = server.topic(1).await;
        let group = format!("{topic}-group");
        publish(&server, &topic, &["ok1", "bad", "ok2"]).await;
        let log = tempfile::NamedTempFile::new().expect("temp file");
        // "bad" fails on its first delivery only.
        let command = format!(
            r#"v=$(cat); echo "$v $STREAMGATE_OFFSET $STREAMGATE_DELIVERY_ATTEMPT" >> {log}; [ "$v" != bad ] || [ "$STREAMGATE_DELIVERY_ATTEMPT" -ge 2 ]"#,
            log = log.path().display()
        );
        let run = server
            .cli(
                &[
                    "consume",
                    &topic,
                    "-g",
                    &group,
                    "--from",
                    "earliest",
                    "--exec",
                    &command,
                    "--nack-delay",
                    "0s",
                    "-c",
                    "4",
                ],
                None,
            )
            .await;
        assert!(run.status.success(), "{}", stderr(&run));
        let handled = std::fs::read_to_string(log.path()).expect("read log");
        let mut handled: Vec<&str> = handled.lines().collect();
        handled.sort_unstable();
        assert_eq!(
            handled,
            ["bad 1 1", "bad 1 2", "ok1 0 1", "ok2 2 1"],
            "the failed record comes back with delivery attempt 2"
        );

        // Every record was acknowledged in the end: the group continues with the next one.
        publish(&server, &topic, &["next"]).await;
        let after = consume(&server, &topic, &group, "1").await;
        assert_eq!(after[0]["value"], "next");
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_commits_what_was_printed_and_nothing_else() {
    on_each_broker(|server| async move {
        let topic = server.topic(1).await;
        let group = format!("{topic}-group");
        publish(&server, &topic, &["a", "b", "c"]).await;

        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_streamgate-under-test"))
            .args(["--server", &server.url(), "consume", &topic, "-g", &group])
            .args(["--from", "earliest", "--json"])
            .env_remove("STREAMGATE_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn streamgate");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut printed = Vec::new();
        within(Duration::from_secs(60), "three records printed", async {
            while printed.len() < 3 {
                let line = lines.next_line().await.expect("read").expect("a line");
                printed.push(line);
            }
        })
        .await;
        assert_eq!(values(&printed.join("\n")), ["a", "b", "c"]);

        let pid = child.id().expect("pid").to_string();
        let kill = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill");
        assert!(kill.success());
        let status = within(Duration::from_secs(30), "consume exits", child.wait())
            .await
            .expect("wait");
        assert_eq!(status.code(), Some(130), "interrupted");

        // What was printed was acknowledged and committed before the command exited.
        publish(&server, &topic, &["d"]).await;
        let after = consume(&server, &topic, &group, "1").await;
        assert_eq!(after[0]["value"], "d");
        server.stop().await;
    })
    .await;
}
