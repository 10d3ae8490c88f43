//! Typed topics and filters from the command line, as the issue's walk-through: a Protobuf
//! `orders` topic published to as JSON, described with its schema, and read back with
//! `--filter 'value.amount > 1000' --decode`; the supplier's PageEvents filtered on their
//! decoded duration; a bad filter refused with its position.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use streamgate::topic::TopicName;
use streamgate_server::Settings;
use streamgate_testkit::{eventually, random_name};

use crate::support::{Cli, TestServer, on_each_broker_with, stderr, stdout};

/// `orders-*` typed by the test fixture's `shop.v1.Order`; the supplier on a topic of its own
/// (with the built-in PageEvent schema), not the real broker's shared R2.
fn typed(settings: &mut Settings) {
    let fixtures =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../server/tests/fixtures/schemas");
    let dir = tempfile::tempdir().expect("a temporary directory").keep();
    let file = dir.join("schemas.toml");
    std::fs::write(
        &file,
        format!(
            "[[topic]]\nname = \"orders-*\"\nprotobuf = {{ descriptor_set = {:?}, message = \"shop.v1.Order\" }}\n",
            fixtures.join("orders.binpb")
        ),
    )
    .expect("schema file written");
    settings.supplier.settings.topic =
        TopicName::new(random_name("pages")).expect("a valid topic name");
    settings
        .use_schemas(Some(file))
        .expect("the schema file loads");
}

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

/// The issue's walk-through: JSON orders stored as Protobuf, a bad one refused naming its
/// field, the schema shown by `topics describe`, and only the large orders printed, decoded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_published_as_json_and_read_filtered_and_decoded() {
    on_each_broker_with(typed, async |server| {
        let orders = server.topic_named("orders", 1).await;
        for (id, amount) in [("o-1", 500), ("o-2", 1500), ("o-3", 2500), ("o-4", 900)] {
            let value = format!(r#"{{"id": "{id}", "amount": "{amount}", "currency": "EUR"}}"#);
            ok(
                &server,
                &[
                    "publish",
                    &orders,
                    "-k",
                    id,
                    "--value-json",
                    "--value",
                    &value,
                ],
            )
            .await;
        }
        let bad = server
            .cli(
                &[
                    "publish",
                    &orders,
                    "--value-json",
                    "--value",
                    r#"{"id": "x", "colour": "red"}"#,
                ],
                None,
            )
            .await;
        assert_eq!(bad.status.code(), Some(1), "{}", stderr(&bad));
        assert!(
            stderr(&bad).contains("INVALID_ARGUMENT") && stderr(&bad).contains("colour"),
            "{}",
            stderr(&bad)
        );

        let described = ok(&server, &["topics", "describe", &orders]).await;
        assert!(
            described.contains("Schema: Protobuf shop.v1.Order (declared for orders-*"),
            "{described}"
        );
        assert!(described.contains("int64 amount = 2;"), "{described}");

        let large = ok(
            &server,
            &[
                "subscribe",
                &orders,
                "--from",
                "earliest",
                "--count",
                "2",
                "--filter",
                "value.amount > 1000",
                "--decode",
            ],
        )
        .await;
        let lines: Vec<&str> = large.lines().collect();
        assert_eq!(lines.len(), 2, "{large}");
        for (line, (id, amount)) in lines.iter().zip([("o-2", "1500"), ("o-3", "2500")]) {
            let json = &line[line.find('{').expect("decoded JSON on the line")..];
            let decoded: Value = serde_json::from_str(json).expect("JSON");
            assert_eq!(decoded["id"], id, "{line}");
            assert_eq!(decoded["amount"], amount, "{line}");
        }

        let as_json = ok(
            &server,
            &[
                "subscribe",
                &orders,
                "--from",
                "earliest",
                "--count",
                "1",
                "--json",
                "--filter",
                "key == 'o-3'",
                "--decode",
            ],
        )
        .await;
        let record: Value = serde_json::from_str(as_json.trim()).expect("one JSON object");
        assert_eq!(record["decoded"]["amount"], "2500", "{record}");

        let refused = server
            .cli(&["subscribe", &orders, "--filter", "value.amount >"], None)
            .await;
        assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
        assert!(
            stderr(&refused).contains("filter: syntax error at 1:"),
            "{}",
            stderr(&refused)
        );
    })
    .await;
}

/// The supplier's PageEvents are typed out of the box: a filter on their decoded duration
/// prints only long visits — about one in nine, durations being uniform in 0..9000 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supplier_events_are_filtered_on_their_duration() {
    on_each_broker_with(typed, async |server| {
        let status: Value =
            serde_json::from_str(ok(&server, &["supplier", "status", "--json"]).await.trim())
                .expect("JSON status");
        let pages = status["topic"].as_str().expect("a topic").to_owned();
        let described = ok(&server, &["topics", "describe", &pages]).await;
        assert!(
            described.contains("Schema: JSON Schema (declared for")
                && described.contains("built-in"),
            "{described}"
        );
        ok(&server, &["supplier", "set", "--rate", "1000"]).await;
        eventually(Duration::from_secs(60), "900 PageEvents", async || {
            let described = ok(&server, &["topics", "describe", &pages, "--json"]).await;
            let topic: Value = serde_json::from_str(described.trim()).map_err(|e| e.to_string())?;
            let records: i64 = topic["topic"]["records"]
                .as_str()
                .unwrap_or("0")
                .parse()
                .unwrap_or(0);
            if records >= 900 {
                Ok(())
            } else {
                Err(format!("{records} records: {described}"))
            }
        })
        .await;
        ok(&server, &["supplier", "stop"]).await;
        // Everything written, then only the long visits, read to the end of the topic.
        let all = ok(
            &server,
            &["subscribe", &pages, "--from", "earliest", "-e", "--json"],
        )
        .await;
        let long = ok(
            &server,
            &[
                "subscribe",
                &pages,
                "--from",
                "earliest",
                "-e",
                "--json",
                "--filter",
                "value.duration > 8000",
            ],
        )
        .await;
        let duration = |line: &str| -> i64 {
            let record: Value = serde_json::from_str(line).expect("JSON");
            record["page_event"]["duration"]
                .as_i64()
                .expect("a PageEvent")
        };
        let expected: Vec<i64> = all.lines().map(duration).filter(|d| *d > 8000).collect();
        let printed: Vec<i64> = long.lines().map(duration).collect();
        assert_eq!(printed, expected, "exactly the long visits, in order");
        let share = printed.len() as f64 / all.lines().count() as f64;
        assert!(
            (0.05..0.2).contains(&share),
            "{} of {}",
            printed.len(),
            all.lines().count()
        );
    })
    .await;
}
