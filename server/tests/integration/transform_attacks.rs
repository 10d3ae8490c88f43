//! The transform under attack: records it cannot process go to its dead-letter topic
//! `error.<input>.<group>` with where they came from and why, and the records after them
//! are transformed; a panic in the stage is caught and the stage comes back and transforms
//! again.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use streamgate::page_event::PageEvent;
use streamgate::proto::{self, publish_request, start_position};
use streamgate::topic::TopicName;
use streamgate_server::testing::{
    Producer, ProducerSettings, Transform, TransformSettings, dead_letter_topic,
};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::stages::transforming;
use crate::support::{
    TestServer, collect_all, eventually, on_each_broker, on_each_broker_with, random_name,
    subscribe_request, within,
};

/// Publishes a raw value with a key; returns where it landed.
async fn publish_raw(
    server: &TestServer,
    topic: &str,
    key: &str,
    value: Vec<u8>,
) -> proto::PublishResponse {
    within(
        Duration::from_secs(30),
        "publish",
        server.client().await.publish(proto::PublishRequest {
            topic: topic.to_owned(),
            key: Some(Bytes::from(key.to_owned())),
            payload: Some(publish_request::Payload::Value(Bytes::from(value))),
            ..Default::default()
        }),
    )
    .await
    .expect("publish")
    .into_inner()
}

fn event(name: &str, duration: i64) -> Vec<u8> {
    PageEvent {
        name: name.to_owned().into(),
        user: "U2".into(),
        date_ms: 1_662_925_267_331,
        duration_ms: duration,
    }
    .to_json()
}

/// Reads the first `count` records of `topic`, from the earliest offset.
async fn read(server: &TestServer, topic: &str, count: u64) -> Vec<proto::Record> {
    let mut request =
        subscribe_request(topic, None, Some(start_position::Position::Earliest(true)));
    request.max_records = Some(count);
    let stream = server
        .client()
        .await
        .subscribe(request)
        .await
        .expect("subscribe")
        .into_inner();
    within(Duration::from_secs(90), "the records", collect_all(stream))
        .await
        .1
}

fn header(record: &proto::Record, key: &str) -> String {
    let header = record
        .headers
        .iter()
        .find(|h| h.key == key)
        .unwrap_or_else(|| panic!("header {key} on {:?}", record.headers));
    String::from_utf8(header.value.to_vec()).expect("text header")
}

fn durations(records: &[proto::Record]) -> Vec<i64> {
    let mut durations: Vec<i64> = records
        .iter()
        .map(|r| {
            PageEvent::decode(r.value.as_deref().expect("value"))
                .expect("output is a PageEvent")
                .duration_ms
        })
        .collect();
    durations.sort_unstable();
    durations
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_it_cannot_process_are_dead_lettered_and_the_rest_transformed() {
    let (input, output, group) = (
        random_name("ta-in"),
        random_name("ta-out"),
        random_name("ta-g"),
    );
    let dead_letters = format!("error.{input}.{group}");
    on_each_broker_with(transforming(&input, &output, &group), |server| {
        let (input, output, dead_letters) = (input.clone(), output.clone(), dead_letters.clone());
        async move {
            // One key, so one partition: the order of the input is the order of its effects.
            let first = publish_raw(&server, &input, "k", event("P1", 1)).await;
            let long_name = "n".repeat(600 * 1024);
            let long = publish_raw(&server, &input, "k", event(&long_name, 2)).await;
            let bad = publish_raw(&server, &input, "k", b"not json {".to_vec()).await;
            let after = publish_raw(&server, &input, "k", event("P3", 3)).await;
            assert!(
                first.offset < long.offset && long.offset < bad.offset && bad.offset < after.offset
            );

            let outputs = read(&server, &output, 2).await;
            assert_eq!(
                durations(&outputs),
                [1, 3],
                "the good records are transformed"
            );

            let letters = read(&server, &dead_letters, 2).await;
            assert_eq!(letters.len(), 2);
            let by_offset = |offset: i64| {
                letters
                    .iter()
                    .find(|r| header(r, "x-original-offset") == offset.to_string())
                    .unwrap_or_else(|| panic!("a dead letter for offset {offset}"))
            };
            for (published, value, reason) in [
                (&long, event(&long_name, 2), "page name"),
                (&bad, b"not json {".to_vec(), "not a PageEvent"),
            ] {
                let letter = by_offset(published.offset);
                assert_eq!(header(letter, "x-original-topic"), input);
                assert_eq!(
                    header(letter, "x-original-partition"),
                    published.partition.to_string()
                );
                let timestamp =
                    streamgate::time::to_millis(published.timestamp.as_ref().expect("a timestamp"))
                        .expect("valid");
                assert_eq!(
                    header(letter, "x-original-timestamp"),
                    timestamp.to_string()
                );
                let message = header(letter, "x-exception-message");
                assert!(message.contains(reason), "{message}");
                assert_eq!(
                    letter.value.as_deref(),
                    Some(&value[..]),
                    "the original value"
                );
                assert_eq!(letter.key.as_deref(), Some(&b"k"[..]), "the original key");
            }
            server.stop().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_transform_is_caught_and_it_transforms_again() {
    on_each_broker(|server| async move {
        let (input, output) = (server.topic(1).await, server.topic(1).await);
        let group = random_name("tp-g");
        let input_name = TopicName::new(input.clone()).expect("topic");
        let dead_letters = dead_letter_topic(&input_name, &group).expect("topic");
        server
            .kafka
            .ensure_topics(&[dead_letters.as_str()], 1, 1, Duration::from_secs(30))
            .await
            .expect("dead-letter topic");
        let producer = Producer::create(
            &server.kafka,
            &ProducerSettings {
                max_message_bytes: 1024 * 1024,
                linger: Duration::from_millis(5),
                queue_kbytes: 16 * 1024,
                auto_create_topics: false,
            },
        )
        .expect("producer");
        let (tasks, shutdown) = (TaskTracker::new(), CancellationToken::new());
        let transform = Transform::spawn(
            &server.kafka,
            producer,
            TransformSettings {
                input: input_name,
                output: TopicName::new(output.clone()).expect("topic"),
                group,
                send_timeout: Duration::from_secs(20),
                max_page_name_bytes: 256,
                dead_letters,
            },
            &tasks,
            shutdown.clone(),
        )
        .expect("transform starts");
        let counters = transform.counters();
        let transformed = async |n: u64| {
            eventually(
                Duration::from_secs(90),
                &format!("{n} record(s) transformed"),
                async || {
                    let done = counters.transformed.load(Ordering::Relaxed);
                    if done >= n { Ok(()) } else { Err(done) }
                },
            )
            .await;
        };

        publish_raw(&server, &input, "k", event("P1", 1)).await;
        transformed(1).await;
        // The next record makes the stage panic; a fresh run reads it again.
        transform.inject_panic();
        publish_raw(&server, &input, "k", event("P2", 2)).await;
        eventually(
            Duration::from_secs(30),
            "the transform is restarted",
            async || transform.restarts() >= 1,
        )
        .await;
        transformed(2).await;
        publish_raw(&server, &input, "k", event("P3", 3)).await;
        // At-least-once: a run that ended in a panic may leave an output to be repeated.
        eventually(
            Duration::from_secs(90),
            "every record transformed after the panic",
            async || {
                let written = counters.transformed.load(Ordering::Relaxed);
                let mut seen = durations(&read(&server, &output, written).await);
                seen.dedup();
                if seen == [1, 2, 3] { Ok(()) } else { Err(seen) }
            },
        )
        .await;

        shutdown.cancel();
        within(
            Duration::from_secs(30),
            "the transform stops",
            transform.stopped(),
        )
        .await;
        server.stop().await;
    })
    .await;
}
