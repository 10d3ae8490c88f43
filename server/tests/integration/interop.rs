//! Interoperability with Kafka clients we did not write: kcat on the embedded broker, and
//! kafka-python (pure Python) on the real one, whose ApiVersions reply kcat's bundled
//! librdkafka 2.0.2 cannot parse.

use std::process::Command;
use std::time::Duration;

use streamgate::proto::{self, publish_request};

use crate::support::{BrokerKind, TestServer, eventually, on_each_broker};

fn tool(env: &str, name: &str) -> String {
    std::env::var(env).unwrap_or_else(|_| name.to_owned())
}

fn run(mut command: Command, stdin: Option<&str>) -> String {
    use std::io::Write;
    let program = format!("{command:?}");
    command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap_or_else(|e| {
        panic!(
            "cannot run {program}: {e} — install it, or run the README's test command, which does"
        )
    });
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    let output = child.wait_with_output().expect("wait");
    assert!(
        output.status.success(),
        "{program} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf8 output")
}

/// Writes two records with an outside client: a PageEvent keyed P2 with a header, and a raw one.
fn produce_outside(server: &TestServer, topic: &str) {
    let bootstrap = server.kafka.bootstrap_servers();
    let event = r#"{"name":"P2","user":"U1","date":"2022-09-11T19:41:07.331+00:00","duration":96}"#;
    match server.kind {
        BrokerKind::Embedded => {
            let mut kcat = Command::new(tool("STREAMGATE_TEST_KCAT", "kcat"));
            kcat.args([
                "-b",
                bootstrap,
                "-P",
                "-t",
                topic,
                "-K",
                "|",
                "-H",
                "origin=kcat",
                "-p",
                "0",
            ]);
            run(kcat, Some(&format!("P2|{event}\n|plain text\n")));
        }
        BrokerKind::Real => {
            let script = format!(
                "from kafka import KafkaProducer\n\
                 p = KafkaProducer(bootstrap_servers='{bootstrap}', api_version=(2, 5, 0))\n\
                 p.send('{topic}', key=b'P2', value={event:?}.encode(), headers=[('origin', b'kafka-python')], partition=0).get(30)\n\
                 p.send('{topic}', value=b'plain text', partition=0).get(30)\n\
                 p.flush(30)\n"
            );
            let mut python = Command::new(tool("STREAMGATE_TEST_PYTHON", "python3"));
            python.args(["-c", &script]);
            run(python, None);
        }
    }
}

/// Reads every record of `topic` with an outside client, as (key, value) strings.
fn consume_outside(server: &TestServer, topic: &str) -> Vec<(String, String)> {
    let bootstrap = server.kafka.bootstrap_servers();
    let output = match server.kind {
        BrokerKind::Embedded => {
            let mut kcat = Command::new(tool("STREAMGATE_TEST_KCAT", "kcat"));
            kcat.args([
                "-b", bootstrap, "-C", "-t", topic, "-e", "-q", "-f", "%k\t%s\n",
            ]);
            run(kcat, None)
        }
        BrokerKind::Real => {
            let script = format!(
                "from kafka import KafkaConsumer\n\
                 c = KafkaConsumer('{topic}', bootstrap_servers='{bootstrap}', auto_offset_reset='earliest', consumer_timeout_ms=8000, api_version=(2, 5, 0))\n\
                 for m in c:\n    print(m.key.decode() + '\\t' + m.value.decode())\n"
            );
            let mut python = Command::new(tool("STREAMGATE_TEST_PYTHON", "python3"));
            python.args(["-c", &script]);
            run(python, None)
        }
    };
    output
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_from_an_outside_producer_arrive_through_subscribe() {
    on_each_broker(|server| async move {
        let topic = server.topic(1).await;
        produce_outside(&server, &topic);
        let records = crate::support::read_all(&server, &topic, 2).await;
        assert_eq!(records.len(), 2, "{records:#?}");
        let event = &records[0];
        assert_eq!(event.key.as_deref(), Some(&b"P2"[..]));
        assert_eq!(
            event.headers.first().map(|h| h.key.as_str()),
            Some("origin")
        );
        let decoded = event
            .page_event
            .as_ref()
            .expect("the outside PageEvent decodes");
        assert_eq!(
            (
                decoded.name.as_str(),
                decoded.user.as_deref(),
                decoded.duration_ms
            ),
            ("P2", Some("U1"), Some(96))
        );
        assert_eq!(records[1].value.as_deref(), Some(&b"plain text"[..]));
        assert!(records[1].page_event.is_none());
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_from_publish_are_read_by_an_outside_consumer_as_seed_json() {
    on_each_broker(|server| async move {
        let topic = server.topic(1).await;
        let mut client = server.client().await;
        client
            .publish(proto::PublishRequest {
                topic: topic.clone(),
                payload: Some(publish_request::Payload::PageEvent(proto::PageEvent {
                    name: "P1".into(),
                    user: Some("U2".into()),
                    date: Some(prost_types::Timestamp {
                        seconds: 1_662_925_267,
                        nanos: 331_000_000,
                    }),
                    duration_ms: Some(96),
                })),
                ..Default::default()
            })
            .await
            .expect("publish");
        // A fresh real broker may need a moment before a new consumer sees the record: read
        // again until it does (each read ends by itself: kcat at the end of the topic,
        // kafka-python after 8 s without records).
        let records = eventually(
            Duration::from_secs(60),
            "the outside consumer sees the published record",
            async || {
                let records = consume_outside(&server, &topic);
                (!records.is_empty()).then_some(records)
            },
        )
        .await;
        assert_eq!(
            records,
            vec![(
                "P1".to_owned(),
                r#"{"name":"P1","user":"U2","date":"2022-09-11T19:41:07.331+00:00","duration":96}"#
                    .to_owned()
            )]
        );
        server.stop().await;
    })
    .await;
}
