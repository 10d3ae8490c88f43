//! The background stages: the transform function (R2 -> R3) and the log consumer (R1).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use streamgate::page_event::PageEvent;
use streamgate::proto::{self, publish_request, start_position};
use streamgate_server::Settings;

use crate::process::ServerProcess;
use crate::support::{
    BrokerKind, TestServer, collect_all, eventually, on_each_broker_with, random_name, read_all,
    real_brokers, subscribe_request, topic_name,
};

/// The settings of a server whose transform reads `input` into `output` in `group`, topics
/// and group of its own, with the supplier stopped.
pub(crate) fn transforming(
    input: &str,
    output: &str,
    group: &str,
) -> impl Fn(&mut Settings) + Clone + use<> {
    let (input, output, group) = (topic_name(input), topic_name(output), group.to_owned());
    move |s| {
        s.transform.run = true;
        s.topics.transform_input = Some(input.clone());
        s.topics.transform_output = output.clone();
        s.transform.group = group.clone();
        s.supplier.running = false;
    }
}

/// Publishes a raw value with a key, as any Kafka producer could.
async fn publish_raw(server: &TestServer, topic: &str, key: &str, value: Vec<u8>) {
    server
        .client()
        .await
        .publish(proto::PublishRequest {
            topic: topic.to_owned(),
            key: Some(Bytes::from(key.to_owned())),
            payload: Some(publish_request::Payload::Value(Bytes::from(value))),
            ..Default::default()
        })
        .await
        .expect("publish");
}

/// An input event; `duration` makes it recognisable in the output.
fn event(name: &str, duration: i64) -> PageEvent<'static> {
    PageEvent {
        name: name.to_owned().into(),
        user: "U2".into(),
        date_ms: 1_662_925_267_331 + duration,
        duration_ms: duration,
    }
}

/// Where the transform stage reads, and its consumer group.
struct Stage<'a> {
    input: &'a str,
    group: &'a str,
}

/// Per partition of the stage's input: (partition, the group's committed offset, the end
/// offset). Blocking: run it off the runtime.
fn stage_progress(consumer: &BaseConsumer, input: &str) -> Result<Vec<(i32, i64, i64)>, String> {
    let timeout = Duration::from_secs(5);
    let metadata = consumer
        .fetch_metadata(Some(input), timeout)
        .map_err(|e| e.to_string())?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut list = TopicPartitionList::new();
    for partition in &partitions {
        list.add_partition(input, *partition);
    }
    let committed = consumer
        .committed_offsets(list, timeout)
        .map_err(|e| e.to_string())?;
    partitions
        .iter()
        .map(|partition| {
            let (_, end) = consumer
                .fetch_watermarks(input, *partition, timeout)
                .map_err(|e| e.to_string())?;
            let done = match committed
                .find_partition(input, *partition)
                .map(|e| e.offset())
            {
                Some(Offset::Offset(offset)) => offset,
                _ => 0,
            };
            Ok((*partition, done, end))
        })
        .collect()
}

/// Waits until the transform's group has committed every input up to the end: the stage
/// stores an input's offset only once its output was acknowledged (and skips bad inputs
/// with their offsets stored), so by then every output it will write for these inputs is
/// in the output topic.
async fn stage_caught_up(server: &TestServer, stage: &Stage<'_>) {
    // A client of the group's that never joins it: it only reads the committed offsets.
    let consumer: Arc<BaseConsumer> = Arc::new(
        ClientConfig::new()
            .set("bootstrap.servers", server.kafka.bootstrap_servers())
            .set("group.id", stage.group)
            .set("enable.auto.commit", "false")
            .create()
            .expect("offsets reader"),
    );
    let input = stage.input.to_owned();
    eventually(
        Duration::from_secs(60),
        "the transform commits every input",
        async || {
            let (consumer, input) = (consumer.clone(), input.clone());
            let progress = tokio::task::spawn_blocking(move || stage_progress(&consumer, &input))
                .await
                .expect("progress read")?;
            if !progress.is_empty() && progress.iter().all(|(_, done, end)| done == end) {
                Ok(())
            } else {
                Err(format!("(partition, committed, end): {progress:?}"))
            }
        },
    )
    .await;
}

/// Waits for `count` records on `topic` (the stage writes them in the background), then, on
/// the embedded broker, once the stage has handled every input, reads the topic to its end
/// to check there are no more than that.
async fn read_outputs(
    server: &TestServer,
    stage: &Stage<'_>,
    topic: &str,
    count: u64,
) -> Vec<proto::Record> {
    let mut client = server.client().await;
    let mut request =
        subscribe_request(topic, None, Some(start_position::Position::Earliest(true)));
    request.max_records = Some(count);
    let (_, records) = collect_all(
        client
            .subscribe(request)
            .await
            .expect("subscribe")
            .into_inner(),
    )
    .await;
    if server.kind == BrokerKind::Embedded {
        // Anything extra would be there by now.
        stage_caught_up(server, stage).await;
        assert_eq!(
            read_all(server, topic, count).await.len() as u64,
            count,
            "no extra outputs"
        );
    }
    records
}

/// The output records, decoded, by duration.
fn outputs_by_duration(records: &[proto::Record]) -> BTreeMap<i64, (String, PageEvent<'static>)> {
    let mut outputs = BTreeMap::new();
    for record in records {
        let value = record.value.as_deref().expect("output has a value");
        let output = PageEvent::decode(value)
            .expect("output is a PageEvent")
            .into_owned();
        let key = String::from_utf8(record.key.clone().expect("output has a key").to_vec())
            .expect("utf-8 key");
        assert!(
            record
                .headers
                .iter()
                .any(|h| h.key == "content-type" && h.value.as_ref() == b"application/json"),
            "output carries the content type"
        );
        let previous = outputs.insert(output.duration_ms, (key, output));
        assert!(previous.is_none(), "an input was transformed twice");
    }
    outputs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transform_applies_the_rule_to_every_input_and_dead_letters_bad_records() {
    let (input, output, group) = (random_name("tin"), random_name("tout"), random_name("tg"));
    let stage_group = group.clone();
    let configure = transforming(&input, &output, &group);
    // Names with characters of 1, 2, 3 and 4 UTF-8 bytes, an empty one, a long one.
    let names = [
        "P1",
        "Accueil",
        "é",
        "ページ",
        "😀x",
        "",
        "a-very-long-page-name-with-many-characters",
    ];
    on_each_broker_with(configure.clone(), |server| {
        let (input, output, configure) = (input.clone(), output.clone(), configure.clone());
        let group = stage_group.clone();
        async move {
            let stage = Stage {
                input: &input,
                group: &group,
            };
            // Two bad records among the good ones: the stage must pass them (to its dead letters) and go on.
            for (i, name) in names.iter().enumerate() {
                let value = event(name, i as i64 + 1).to_json();
                publish_raw(&server, &input, name, value).await;
                if i == 2 {
                    publish_raw(&server, &input, "bad", b"not json {".to_vec()).await;
                    publish_raw(&server, &input, "bad", br#"{"page":"P1"}"#.to_vec()).await;
                }
            }
            let records = read_outputs(&server, &stage, &output, names.len() as u64).await;
            let outputs = outputs_by_duration(&records);
            assert_eq!(outputs.len(), names.len(), "one output per good input");
            for (i, name) in names.iter().enumerate() {
                let duration = i as i64 + 1;
                let (key, out) = &outputs[&duration];
                let expected = format!("Page:{}", name.chars().count());
                assert_eq!(out.name, expected, "name of {name:?}");
                assert_eq!(key, &expected, "key of {name:?}");
                assert_eq!(out.user, "User=>1");
                assert_eq!(out.date_ms, 1_662_925_267_331 + duration, "date unchanged");
            }

            // A restart in the same group resumes after what was committed: the next input
            // gives exactly one more output, and nothing is transformed twice.
            let kafka = server.kafka.clone();
            let kind = server.kind;
            server.stop().await;
            let server = TestServer::start(kafka, kind, configure).await;
            publish_raw(&server, &input, "P9", event("P9", 100).to_json()).await;
            let records = read_outputs(&server, &stage, &output, names.len() as u64 + 1).await;
            let outputs = outputs_by_duration(&records);
            assert_eq!(outputs.len(), names.len() + 1);
            assert_eq!(outputs[&100].1.name, "Page:2");
            server.stop().await;
        }
    })
    .await;
}

/// The binary with its defaults: the supplier feeds R2, the transform writes R3, the log
/// consumer logs what is published to R1 (as the README promises), and SIGTERM stops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_binary_logs_r1_and_transforms_r2_into_r3() {
    let mut brokers = vec![None];
    brokers.extend(real_brokers().map(Some));
    for broker in brokers {
        let mut args = Vec::new();
        if let Some(broker) = &broker {
            eprintln!("--- on the real broker {broker}");
            args.extend(["--brokers", broker.as_str()]);
        }
        let server = ServerProcess::start(&args).await;
        let mut client =
            proto::event_gateway_client::EventGatewayClient::connect(server.url.clone())
                .await
                .expect("connect");

        // R3 shows the supplier's events, transformed.
        let mut request =
            subscribe_request("R3", None, Some(start_position::Position::Latest(true)));
        request.max_records = Some(2);
        let (_, records) = collect_all(
            client
                .subscribe(request)
                .await
                .expect("subscribe")
                .into_inner(),
        )
        .await;
        for record in &records {
            let event = record.page_event.as_ref().expect("R3 holds PageEvents");
            assert_eq!(event.name, "Page:2");
            assert_eq!(event.user.as_deref(), Some("User=>1"));
        }

        // A PageEvent published to R1 is logged, escaped; so is a record that is not one.
        // The consumer starts at the end of R1, so publish until a line shows up.
        let page = format!("{}-é\"q", random_name("P"));
        let marker = random_name("raw");
        let mut logged = None;
        for _ in 0..30 {
            client
                .publish(proto::PublishRequest {
                    topic: "R1".into(),
                    payload: Some(publish_request::Payload::PageEvent(proto::PageEvent {
                        name: page.clone(),
                        duration_ms: Some(1234),
                        ..Default::default()
                    })),
                    ..Default::default()
                })
                .await
                .expect("publish to R1");
            let escaped = format!("name={:?}", page);
            logged = server
                .wait_for_line(
                    &["PageEvent", &escaped, "duration_ms=1234"],
                    Duration::from_secs(1),
                )
                .await;
            if logged.is_some() {
                break;
            }
        }
        assert!(logged.is_some(), "the published PageEvent is logged");
        client
            .publish(proto::PublishRequest {
                topic: "R1".into(),
                payload: Some(publish_request::Payload::Value(Bytes::from(format!(
                    "{marker}\nsecond line"
                )))),
                ..Default::default()
            })
            .await
            .expect("publish raw to R1");
        let raw = server
            .wait_for_line(
                &["not a PageEvent", &format!("{marker}\\nsecond line")],
                Duration::from_secs(20),
            )
            .await;
        assert!(
            raw.is_some(),
            "the raw record is logged on one line, escaped"
        );

        let log = server.log.clone();
        let status = server.terminate().await;
        assert!(status.success(), "clean exit after SIGTERM: {status:?}");
        let lines = log.lock().expect("log");
        assert!(lines.iter().any(|l| l.contains("transform stopped")));
        assert!(
            !lines.iter().any(|l| l.contains('\u{1b}')),
            "no colour codes in piped logs"
        );
    }
}
