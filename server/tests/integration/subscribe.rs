//! Subscribe: every start position, group resumption without skips or duplicates, live
//! tailing, and a slow client that does not hold back others.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use streamgate::proto::{self, publish_request, start_position, subscribe_response};
use streamgate_server::Settings;

use crate::support::{
    collect_all, next_message, on_each_broker, on_each_broker_with, publish_values, random_name,
    read_all, subscribe_request, within,
};

const BASE_MS: i64 = 1_750_000_000_000;

/// Ten records on one partition, one second apart in record time.
async fn ten_timed_records(server: &crate::support::TestServer) -> String {
    let topic = server.topic(1).await;
    let mut client = server.client().await;
    for i in 0..10 {
        let millis = BASE_MS + i * 1000;
        client
            .publish(proto::PublishRequest {
                topic: topic.clone(),
                timestamp: Some(prost_types::Timestamp {
                    seconds: millis / 1000,
                    nanos: 0,
                }),
                payload: Some(publish_request::Payload::Value(Bytes::from(format!(
                    "v{i}"
                )))),
                ..Default::default()
            })
            .await
            .expect("publish");
    }
    topic
}

async fn read_from(
    server: &crate::support::TestServer,
    topic: &str,
    position: start_position::Position,
) -> (i64, Vec<i64>) {
    let mut client = server.client().await;
    let mut request = subscribe_request(topic, None, Some(position));
    request.stop_at_end = true;
    let (assignments, records) = collect_all(
        client
            .subscribe(request)
            .await
            .expect("subscribe")
            .into_inner(),
    )
    .await;
    assert_eq!(assignments.len(), 1);
    let start = assignments[0].partitions[0].start_offset;
    (start, records.iter().map(|r| r.offset).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_start_position_resolves_and_is_announced_first() {
    use start_position::Position;
    on_each_broker(|server| async move {
        let topic = ten_timed_records(&server).await;
        let at = |ms: i64| {
            Position::Timestamp(prost_types::Timestamp {
                seconds: ms.div_euclid(1000),
                nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
            })
        };
        let cases = [
            (Position::Earliest(true), 0),
            (Position::Latest(true), 10),
            (Position::Offset(4), 4),
            (Position::Offset(1000), 10),
            (Position::FromEnd(3), 7),
            (Position::FromEnd(50), 0),
            (at(BASE_MS + 5000), 5),
            (at(BASE_MS + 5500), 6),
            (at(BASE_MS - 60_000), 0),
            (at(BASE_MS + 60_000), 10),
        ];
        for (position, expected_start) in cases {
            let (start, offsets) = read_from(&server, &topic, position).await;
            assert_eq!(start, expected_start, "start of {position:?}");
            assert_eq!(
                offsets,
                (expected_start..10).collect::<Vec<_>>(),
                "records of {position:?}"
            );
        }
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_tails_new_records() {
    on_each_broker(|server| async move {
        let topic = server.topic(2).await;
        let mut client = server.client().await;
        publish_values(&mut client, &topic, ["old".to_owned()]).await;
        let mut stream = client
            .subscribe(subscribe_request(&topic, None, None))
            .await
            .expect("subscribe")
            .into_inner();
        let first = next_message(&mut stream, Duration::from_secs(30)).await;
        assert!(
            matches!(first, Some(subscribe_response::Message::Assignment(_))),
            "{first:?}"
        );
        publish_values(&mut client, &topic, ["new".to_owned()]).await;
        let records =
            crate::support::records_of(next_message(&mut stream, Duration::from_secs(30)).await);
        match records.as_slice() {
            [r] => assert_eq!(r.value.as_deref(), Some(&b"new"[..])),
            other => panic!("expected the new record, got {other:?}"),
        }
        server.stop().await;
    })
    .await;
}

/// Reads with a group, `max_records` at a time, and checks that the streams together deliver
/// every record exactly once — the committed offsets move exactly with what was delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_streams_resume_exactly_where_the_last_one_stopped() {
    on_each_broker(|server| async move {
        let topic = server.topic(3).await;
        let group = random_name("g");
        let mut client = server.client().await;
        let values: Vec<String> = (0..30).map(|i| format!("m{i:02}")).collect();
        publish_values(&mut client, &topic, values.clone()).await;

        let mut seen = Vec::new();
        for _ in 0..2 {
            let mut request = subscribe_request(
                &topic,
                Some(&group),
                Some(start_position::Position::Earliest(true)),
            );
            request.max_records = Some(10);
            let (assignments, records) = collect_all(
                client
                    .subscribe(request)
                    .await
                    .expect("subscribe")
                    .into_inner(),
            )
            .await;
            assert!(
                !assignments.is_empty(),
                "a group stream announces its assignment"
            );
            assert_eq!(records.len(), 10);
            seen.extend(records);
        }
        let mut request = subscribe_request(&topic, Some(&group), None);
        request.stop_at_end = true;
        let (third, rest) = collect_all(
            client
                .subscribe(request)
                .await
                .expect("subscribe")
                .into_inner(),
        )
        .await;
        assert!(!third.is_empty());
        seen.extend(rest);

        let delivered: Vec<String> = seen
            .iter()
            .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
            .collect();
        let unique: BTreeSet<&String> = delivered.iter().collect();
        assert_eq!(delivered.len(), 30, "no duplicates: {delivered:?}");
        assert_eq!(unique.len(), 30, "no duplicates: {delivered:?}");
        assert_eq!(
            unique.into_iter().cloned().collect::<Vec<_>>(),
            values,
            "nothing skipped"
        );
        server.stop().await;
    })
    .await;
}

/// An explicit offset with a group resets the group's offsets first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_with_explicit_offset_resets_the_group() {
    on_each_broker(|server| async move {
        let topic = server.topic(1).await;
        let group = random_name("g");
        let mut client = server.client().await;
        publish_values(&mut client, &topic, (0..6).map(|i| format!("r{i}"))).await;
        let mut request = subscribe_request(
            &topic,
            Some(&group),
            Some(start_position::Position::Offset(4)),
        );
        request.stop_at_end = true;
        let (assignments, records) = collect_all(
            client
                .subscribe(request)
                .await
                .expect("subscribe")
                .into_inner(),
        )
        .await;
        assert_eq!(assignments[0].partitions[0].start_offset, 4);
        assert_eq!(
            records.iter().map(|r| r.offset).collect::<Vec<_>>(),
            vec![4, 5]
        );
        server.stop().await;
    })
    .await;
}

/// A client that stops reading fills only its own bounded buffer: another subscriber of the
/// same topic still reads everything, and publishing still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_subscriber_does_not_hold_back_others() {
    let small_buffer = |s: &mut Settings| s.limits.subscribe_buffer = 4;
    on_each_broker_with(small_buffer, |server| async move {
        let topic = server.topic(1).await;
        let mut client = server.client().await;
        // 1.5 MB in all: under the embedded broker's 5 MiB per-partition retention.
        let payload = "x".repeat(500);
        let requests: Vec<proto::PublishRequest> = (0..3000)
            .map(|_| proto::PublishRequest {
                topic: topic.clone(),
                payload: Some(publish_request::Payload::Value(Bytes::from(
                    payload.clone(),
                ))),
                ..Default::default()
            })
            .collect();
        let mut acks = client
            .publish_stream(tokio_stream::iter(requests))
            .await
            .expect("publish")
            .into_inner();
        let mut acknowledged = 0;
        while let Some(result) = within(
            Duration::from_secs(60),
            "the next publish result",
            acks.message(),
        )
        .await
        .expect("acks")
        {
            match result.outcome {
                Some(proto::publish_result::Outcome::Ack(_)) => acknowledged += 1,
                other => panic!("record {} not acknowledged: {other:?}", result.sequence),
            }
        }
        assert_eq!(acknowledged, 3000);

        let mut stalled = client
            .subscribe(subscribe_request(
                &topic,
                None,
                Some(start_position::Position::Earliest(true)),
            ))
            .await
            .expect("subscribe")
            .into_inner();
        let _ = next_message(&mut stalled, Duration::from_secs(30)).await;
        let _ = next_message(&mut stalled, Duration::from_secs(30)).await;
        // `stalled` is now not read any more.

        let records = read_all(&server, &topic, 3000).await;
        assert_eq!(records.len(), 3000);
        assert_eq!(
            records.first().map(|r| r.offset),
            Some(0),
            "all records still stored"
        );
        let mut reader = server.client().await;
        publish_values(&mut reader, &topic, ["still works".to_owned()]).await;
        drop(stalled);
        server.stop().await;
    })
    .await;
}

/// `read_mask` sends exactly the fields it names, the others unset; a path that is not a
/// field of `Record` is refused, naming the mask.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_mask_sends_only_the_fields_it_names() {
    on_each_broker(|server| async move {
        let topic = server.topic(1).await;
        let mut client = server.client().await;
        publish_values(&mut client, &topic, ["first".to_owned()]).await;
        client
            .publish(proto::PublishRequest {
                topic: topic.clone(),
                key: Some(Bytes::from_static(b"k")),
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
            .expect("publish");
        let read = |paths: &[&str]| {
            let mut request =
                subscribe_request(&topic, None, Some(start_position::Position::Earliest(true)));
            request.max_records = Some(2);
            request.read_mask = Some(prost_types::FieldMask {
                paths: paths.iter().map(|p| p.to_string()).collect(),
            });
            let mut client = client.clone();
            async move {
                let stream = client.subscribe(request).await?.into_inner();
                let (_, records) = collect_all(stream).await;
                Ok::<_, tonic::Status>(records.into_iter().nth(1).expect("two records"))
            }
        };

        let whole = read(&[]).await.expect("no mask");
        assert_eq!(whole.topic, topic);
        assert_eq!(whole.offset, 1);
        assert!(whole.timestamp.is_some() && whole.timestamp_type != 0);
        assert_eq!(whole.key.as_deref(), Some(&b"k"[..]));
        assert!(whole.headers.iter().any(|h| h.key == "trace"), "{whole:?}");
        assert!(whole.value.is_some());
        assert_eq!(
            whole.page_event.as_ref().map(|e| e.name.as_str()),
            Some("P1")
        );

        let some = read(&["offset", "value"]).await.expect("offset and value");
        let expected = proto::Record {
            offset: 1,
            value: whole.value.clone(),
            ..Default::default()
        };
        assert_eq!(some, expected, "only offset and value");

        let event = read(&["page_event", "headers"])
            .await
            .expect("event and headers");
        let expected = proto::Record {
            headers: whole.headers.clone(),
            page_event: whole.page_event.clone(),
            ..Default::default()
        };
        assert_eq!(event, expected, "only the PageEvent and the headers");

        let refused = read(&["value", "page_event.name"])
            .await
            .expect_err("a nested path is refused");
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        assert!(
            refused.message().contains("read_mask"),
            "{}",
            refused.message()
        );
        server.stop().await;
    })
    .await;
}
