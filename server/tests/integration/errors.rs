//! Every error case answers with the status code that says what to fix — never a hang, never
//! a panic.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use streamgate::proto::{self, publish_request, start_position};
use streamgate_server::{Kafka, Settings};
use tonic::Code;

use crate::support::{
    BrokerKind, TestServer, on_each_broker, on_each_broker_with, subscribe_request,
};

fn value(topic: &str, bytes: Vec<u8>) -> proto::PublishRequest {
    proto::PublishRequest {
        topic: topic.to_owned(),
        payload: Some(publish_request::Payload::Value(Bytes::from(bytes))),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_topic_names_are_invalid_argument_naming_the_rule() {
    on_each_broker(|server| async move {
        let mut client = server.client().await;
        for bad in ["", ".", "..", "has space", "slash/topic", &"x".repeat(250)] {
            let status = client
                .publish(value(bad, b"v".to_vec()))
                .await
                .expect_err("publish refused");
            assert_eq!(status.code(), Code::InvalidArgument, "{bad:?}: {status:?}");
            assert!(status.message().contains("[a-zA-Z0-9._-]"), "{status:?}");
            let status = client
                .subscribe(subscribe_request(bad, None, None))
                .await
                .expect_err("subscribe refused");
            assert_eq!(status.code(), Code::InvalidArgument, "{bad:?}: {status:?}");
        }
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_values_are_resource_exhausted_naming_the_limit() {
    let limit = |s: &mut Settings| s.limits.max_message_bytes = 2048;
    on_each_broker_with(limit, |server| async move {
        let topic = server.topic(1).await;
        let mut client = server.client().await;
        // Just over our limit: our own check answers.
        let status = client
            .publish(value(&topic, vec![b'a'; 3000]))
            .await
            .expect_err("too large");
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(
            status.message().contains("2048"),
            "names the limit: {status:?}"
        );
        // Far over it: the transport's decoding limit answers, with the same code.
        let status = client
            .publish(value(&topic, vec![b'a'; 400_000]))
            .await
            .expect_err("far too large");
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        // At the limit is fine.
        client
            .publish(value(&topic, vec![b'a'; 2048]))
            .await
            .expect("at the limit");
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_rejected_with_their_reason() {
    on_each_broker(|server| async move {
        let topic = server.topic(1).await;
        let mut client = server.client().await;
        let cases: Vec<(proto::PublishRequest, &str)> = vec![
            (
                proto::PublishRequest {
                    topic: topic.clone(),
                    ..Default::default()
                },
                "payload",
            ),
            (
                proto::PublishRequest {
                    topic: topic.clone(),
                    payload: Some(publish_request::Payload::PageEvent(
                        proto::PageEvent::default(),
                    )),
                    ..Default::default()
                },
                "name",
            ),
            (
                proto::PublishRequest {
                    topic: topic.clone(),
                    payload: Some(publish_request::Payload::PageEvent(proto::PageEvent {
                        name: "P1".into(),
                        duration_ms: Some(-5),
                        ..Default::default()
                    })),
                    ..Default::default()
                },
                "duration",
            ),
            (
                proto::PublishRequest {
                    partition: Some(-1),
                    ..value(&topic, b"v".to_vec())
                },
                "partition",
            ),
            (
                proto::PublishRequest {
                    timestamp: Some(prost_types::Timestamp {
                        seconds: 0,
                        nanos: -3,
                    }),
                    ..value(&topic, b"v".to_vec())
                },
                "timestamp",
            ),
        ];
        for (request, word) in cases {
            let status = client.publish(request).await.expect_err("refused");
            assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
            assert!(status.message().contains(word), "{word}: {status:?}");
        }

        let mut empty = subscribe_request(&topic, None, None);
        empty.topics.clear();
        assert_eq!(
            client.subscribe(empty).await.expect_err("no topics").code(),
            Code::InvalidArgument
        );
        let negative = subscribe_request(&topic, None, Some(start_position::Position::Offset(-2)));
        assert_eq!(
            client
                .subscribe(negative)
                .await
                .expect_err("negative")
                .code(),
            Code::InvalidArgument
        );
        let empty_group = subscribe_request(&topic, Some(""), None);
        assert_eq!(
            client
                .subscribe(empty_group)
                .await
                .expect_err("empty group")
                .code(),
            Code::InvalidArgument
        );
        let mut zero = subscribe_request(&topic, None, None);
        zero.max_records = Some(0);
        assert_eq!(
            client
                .subscribe(zero)
                .await
                .expect_err("zero records")
                .code(),
            Code::InvalidArgument
        );

        let missing = subscribe_request("no-such-topic-anywhere", None, None);
        let status = client.subscribe(missing).await.expect_err("unknown topic");
        assert_eq!(status.code(), Code::NotFound, "{status:?}");

        // A partition the topic does not have.
        let status = client
            .publish(proto::PublishRequest {
                partition: Some(7),
                ..value(&topic, b"v".to_vec())
            })
            .await
            .expect_err("no such partition");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        server.stop().await;
    })
    .await;
}

/// With nothing listening at the broker address, every Kafka-facing call answers
/// UNAVAILABLE — before the client's deadline, and also with the server's default deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_broker_is_unavailable_within_the_deadline() {
    let closed_port = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        socket.local_addr().expect("addr").port()
    };
    let kafka = Arc::new(Kafka::external(
        format!("127.0.0.1:{closed_port}"),
        Vec::new(),
    ));
    let server = TestServer::start(kafka, BrokerKind::Real, |s| {
        s.timeouts.request = Duration::from_secs(2);
    })
    .await;
    let mut client = server.client().await;

    let mut publish = tonic::Request::new(value("R1", b"v".to_vec()));
    publish.set_timeout(Duration::from_secs(3));
    let status = client.publish(publish).await.expect_err("no broker");
    assert_eq!(
        status.code(),
        Code::Unavailable,
        "answered by us, not the client's deadline: {status:?}"
    );
    assert!(
        status.message().contains(&closed_port.to_string()),
        "names the broker: {status:?}"
    );

    // No client deadline: the server's --request-timeout applies.
    let status = client
        .subscribe(subscribe_request("R1", None, None))
        .await
        .expect_err("no broker");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let status = client
        .list_topics(proto::ListTopicsRequest::default())
        .await
        .expect_err("no broker");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    server.stop().await;
}
