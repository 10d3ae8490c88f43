//! Publish and PublishStream: what goes in comes out of Kafka, with key, headers, timestamp,
//! and PageEvents in the seed's JSON.

use std::time::Duration;

use bytes::Bytes;
use streamgate::proto::{self, publish_request, publish_result, start_position};
use streamgate_server::Settings;

use crate::support::{
    BrokerKind, collect_all, on_each_broker, on_each_broker_with, read_all, subscribe_request,
    within,
};

fn is_seed_date(text: &str) -> bool {
    // 2022-09-11T19:41:07.331+00:00
    let b = text.as_bytes();
    b.len() == 29 && text.ends_with("+00:00") && b[4] == b'-' && b[10] == b'T' && b[19] == b'.'
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_then_subscribe_round_trips_page_events_and_raw_records() {
    on_each_broker(|server| async move {
        let topic = server.topic(3).await;
        let mut client = server.client().await;

        let event_ack = client
            .publish(proto::PublishRequest {
                topic: topic.clone(),
                headers: vec![proto::Header {
                    key: "trace".into(),
                    value: Bytes::from_static(b"abc"),
                }],
                payload: Some(publish_request::Payload::PageEvent(proto::PageEvent {
                    name: "P1".into(),
                    ..Default::default()
                })),
                ..Default::default()
            })
            .await
            .expect("publish page event")
            .into_inner();
        assert_eq!(event_ack.topic, topic);

        let raw_ack = client
            .publish(proto::PublishRequest {
                topic: topic.clone(),
                key: Some(Bytes::from_static(b"k\x00ey")),
                headers: vec![
                    proto::Header {
                        key: "h".into(),
                        value: Bytes::from_static(b"1"),
                    },
                    proto::Header {
                        key: "h".into(),
                        value: Bytes::from_static(b"2"),
                    },
                ],
                payload: Some(publish_request::Payload::Value(Bytes::from_static(
                    b"\xffnot json",
                ))),
                ..Default::default()
            })
            .await
            .expect("publish raw")
            .into_inner();

        let millis_json = br#"{"name":"P9","user":"U1","date":1662925267331,"duration":5}"#;
        client
            .publish(proto::PublishRequest {
                topic: topic.clone(),
                payload: Some(publish_request::Payload::Value(Bytes::from_static(
                    millis_json,
                ))),
                ..Default::default()
            })
            .await
            .expect("publish epoch-millis event");

        let mut request =
            subscribe_request(&topic, None, Some(start_position::Position::Earliest(true)));
        request.stop_at_end = true;
        let stream = client
            .subscribe(request)
            .await
            .expect("subscribe")
            .into_inner();
        let (assignments, records) = collect_all(stream).await;

        assert_eq!(assignments.len(), 1, "exactly one assignment, first");
        let mut partitions: Vec<i32> = assignments[0]
            .partitions
            .iter()
            .map(|p| p.partition)
            .collect();
        partitions.sort();
        assert_eq!(partitions, vec![0, 1, 2]);
        assert!(
            assignments[0]
                .partitions
                .iter()
                .all(|p| p.start_offset == p.low_watermark)
        );
        assert_eq!(records.len(), 3, "{records:#?}");

        let event = records
            .iter()
            .find(|r| r.partition == event_ack.partition && r.offset == event_ack.offset)
            .expect("the page event is read back where Publish said");
        assert_eq!(event.key.as_deref(), Some(&b"P1"[..]), "keyed by page name");
        let headers: Vec<(&str, &[u8])> = event
            .headers
            .iter()
            .map(|h| (h.key.as_str(), h.value.as_ref()))
            .collect();
        assert!(headers.contains(&("trace", &b"abc"[..])));
        assert!(headers.contains(&("content-type", &b"application/json"[..])));
        let decoded = event.page_event.as_ref().expect("decoded as PageEvent");
        assert_eq!(decoded.name, "P1");
        assert!(
            matches!(decoded.user.as_deref(), Some("U1" | "U2")),
            "{:?}",
            decoded.user
        );
        assert!((0..9000).contains(&decoded.duration_ms.unwrap_or(-1)));
        let json: serde_json::Value =
            serde_json::from_slice(event.value.as_deref().expect("value")).expect("JSON value");
        let keys: Vec<&str> = json
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 4);
        for key in ["name", "user", "date", "duration"] {
            assert!(keys.contains(&key), "{json}");
        }
        assert!(
            is_seed_date(json["date"].as_str().expect("date string")),
            "{json}"
        );
        if server.kind == BrokerKind::Embedded {
            assert_eq!(
                event.timestamp, event_ack.timestamp,
                "record timestamp is the acknowledged one"
            );
        }

        let raw = records
            .iter()
            .find(|r| r.partition == raw_ack.partition && r.offset == raw_ack.offset)
            .expect("the raw record is read back where Publish said");
        assert_eq!(raw.key.as_deref(), Some(&b"k\x00ey"[..]));
        assert_eq!(raw.value.as_deref(), Some(&b"\xffnot json"[..]));
        assert!(raw.page_event.is_none());
        let raw_headers: Vec<(&str, &[u8])> = raw
            .headers
            .iter()
            .map(|h| (h.key.as_str(), h.value.as_ref()))
            .collect();
        assert_eq!(
            raw_headers,
            vec![("h", &b"1"[..]), ("h", &b"2"[..])],
            "repeated headers keep their order"
        );

        let millis = records
            .iter()
            .find(|r| r.value.as_deref() == Some(&millis_json[..]))
            .expect("millis record");
        let decoded = millis
            .page_event
            .as_ref()
            .expect("epoch-millis date decodes");
        assert_eq!(
            decoded.date,
            Some(prost_types::Timestamp {
                seconds: 1_662_925_267,
                nanos: 331_000_000
            })
        );
        assert_eq!(decoded.duration_ms, Some(5));
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_honours_explicit_partition_and_timestamp() {
    on_each_broker(|server| async move {
        let topic = server.topic(3).await;
        let mut client = server.client().await;
        let timestamp = prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 123_000_000,
        };
        let ack = client
            .publish(proto::PublishRequest {
                topic: topic.clone(),
                partition: Some(2),
                timestamp: Some(timestamp),
                payload: Some(publish_request::Payload::Value(Bytes::from_static(b"x"))),
                ..Default::default()
            })
            .await
            .expect("publish")
            .into_inner();
        assert_eq!(ack.partition, 2);
        let records = crate::support::read_all(&server, &topic, 1).await;
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].partition, 2);
        assert_eq!(records[0].timestamp, Some(timestamp));
        assert_eq!(
            records[0].timestamp_type,
            proto::TimestampType::CreateTime as i32
        );
        server.stop().await;
    })
    .await;
}

/// A message the server cannot decode (here: over `--max-message-bytes` plus the request
/// overhead), sent right behind records the server is admitting, ends the stream with an
/// error: never with a clean end the client would take for success, and never with a
/// result for the message itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_stream_message_over_the_request_limit_ends_the_stream_with_an_error() {
    let limit = |s: &mut Settings| s.limits.max_message_bytes = 1000;
    on_each_broker_with(limit, |server| async move {
        let topic = server.topic(1).await;
        let mut client = server.client().await;
        let record = |value: Vec<u8>| proto::PublishRequest {
            topic: topic.clone(),
            payload: Some(publish_request::Payload::Value(Bytes::from(value))),
            ..Default::default()
        };
        let mut requests: Vec<_> = (0..20)
            .map(|i| record(format!("r{i}").into_bytes()))
            .collect();
        requests.push(record(vec![b'x'; 200 * 1024]));
        let mut results = client
            .publish_stream(tokio_stream::iter(requests))
            .await
            .expect("publish stream")
            .into_inner();
        let mut answered = 0;
        let ending = loop {
            match within(
                Duration::from_secs(60),
                "the stream's next item",
                results.message(),
            )
            .await
            {
                Ok(Some(result)) => {
                    assert_eq!(result.sequence, answered, "results come in request order");
                    answered += 1;
                }
                other => break other,
            }
        };
        let status = ending.expect_err("the stream must end with the decoding error, not OK");
        assert!(
            matches!(
                status.code(),
                tonic::Code::OutOfRange | tonic::Code::ResourceExhausted | tonic::Code::Internal
            ),
            "{status:?}"
        );
        assert!(answered <= 20, "no result for the undecodable message");
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_stream_acknowledges_every_record_in_order() {
    let limit = |s: &mut Settings| s.limits.max_message_bytes = 1000;
    on_each_broker_with(limit, |server| async move {
        let topic = server.topic(3).await;
        let mut client = server.client().await;
        const COUNT: usize = 300;
        let requests: Vec<proto::PublishRequest> = (0..COUNT)
            .map(|i| {
                let value = match i {
                    150 => vec![b'x'; 5000],
                    _ => format!("record-{i}").into_bytes(),
                };
                proto::PublishRequest {
                    topic: if i == 100 {
                        "bad topic!".into()
                    } else {
                        topic.clone()
                    },
                    key: Some(Bytes::from(format!("key-{}", i % 7))),
                    payload: Some(publish_request::Payload::Value(Bytes::from(value))),
                    ..Default::default()
                }
            })
            .collect();
        let mut results = client
            .publish_stream(tokio_stream::iter(requests))
            .await
            .expect("publish stream")
            .into_inner();
        let mut acks = Vec::new();
        while let Some(result) = within(
            Duration::from_secs(60),
            "the next publish result",
            results.message(),
        )
        .await
        .expect("stream ok")
        {
            acks.push(result);
        }
        assert_eq!(acks.len(), COUNT, "one result per record");
        let mut last_offset = std::collections::HashMap::new();
        for (i, result) in acks.iter().enumerate() {
            assert_eq!(result.sequence, i as u64, "results come in request order");
            match (&result.outcome, i) {
                (Some(publish_result::Outcome::Error(e)), 100) => {
                    assert_eq!(e.code, tonic::Code::InvalidArgument as i32, "{e:?}");
                }
                (Some(publish_result::Outcome::Error(e)), 150) => {
                    assert_eq!(e.code, tonic::Code::ResourceExhausted as i32, "{e:?}");
                    assert!(e.message.contains("1000"), "{e:?}");
                }
                (Some(publish_result::Outcome::Ack(ack)), _) => {
                    let previous = last_offset.insert(ack.partition, ack.offset);
                    assert!(
                        previous.is_none_or(|p| p < ack.offset),
                        "offsets grow within a partition"
                    );
                }
                other => panic!("unexpected result {other:?}"),
            }
        }
        let records = read_all(&server, &topic, (COUNT - 2) as u64).await;
        let mut values: Vec<String> = records
            .iter()
            .map(|r| {
                String::from_utf8(r.value.as_deref().unwrap_or_default().to_vec()).expect("utf8")
            })
            .collect();
        values.sort();
        let mut expected: Vec<String> = (0..COUNT)
            .filter(|i| *i != 100 && *i != 150)
            .map(|i| format!("record-{i}"))
            .collect();
        expected.sort();
        assert_eq!(
            values, expected,
            "exactly the acknowledged records are in Kafka"
        );
        server.stop().await;
    })
    .await;
}

/// Backpressure through flow control: with acknowledgements slowed by a 500 ms linger, a
/// client streams 20 000 records of 10 bytes, each in a DATA frame of its own (it yields
/// between records, as grpcio and most clients do). The server stops reading while its
/// in-flight records wait; the client must be held back by the HTTP/2 window, not cut off
/// (h2 closes a connection with ENHANCE_YOUR_CALM when too many small frames wait in its
/// buffers), and every record is acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_stream_of_small_frames_is_held_back_not_cut_off() {
    let slow = |s: &mut Settings| s.linger = Duration::from_millis(500);
    on_each_broker_with(slow, |server| async move {
        let topic = server.topic(1).await;
        let mut client = server.client().await;
        const COUNT: usize = 20_000;
        let records = futures::stream::unfold(0usize, move |i| {
            let topic = topic.clone();
            async move {
                if i == COUNT {
                    return None;
                }
                // A pending poll between records: each one goes out in its own frame.
                tokio::task::yield_now().await;
                let request = proto::PublishRequest {
                    topic,
                    payload: Some(publish_request::Payload::Value(Bytes::from(format!(
                        "r{i:09}"
                    )))),
                    ..Default::default()
                };
                Some((request, i + 1))
            }
        });
        let mut results = client
            .publish_stream(records)
            .await
            .expect("publish stream")
            .into_inner();
        let mut acked = 0;
        while let Some(result) = within(
            Duration::from_secs(60),
            "the next publish result",
            results.message(),
        )
        .await
        .expect("the stream and its connection survive")
        {
            assert!(
                matches!(result.outcome, Some(publish_result::Outcome::Ack(_))),
                "{result:?}"
            );
            acked += 1;
        }
        assert_eq!(acked, COUNT);
    })
    .await;
}
