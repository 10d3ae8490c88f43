//! The server suite's helpers: the shared harness (`streamgate-testkit`: a server on port 0
//! over each test broker, random names, polling) and the small Subscribe and Publish readers
//! and writers these tests share.

use std::time::Duration;

use futures::StreamExt;
use streamgate::proto::event_gateway_client::EventGatewayClient;
use streamgate::proto::{self, SubscribeResponse, subscribe_response};
use tonic::transport::Channel;

pub use streamgate_testkit::{
    BrokerKind, TestServer, eventually, init_logs, on_each_broker, on_each_broker_with, poll_for,
    random_name, real_brokers, settled, topic_name, within,
};

/// Reads the next message of a Subscribe stream, failing the test after `timeout`.
pub async fn next_message(
    stream: &mut tonic::Streaming<SubscribeResponse>,
    timeout: Duration,
) -> Option<subscribe_response::Message> {
    match tokio::time::timeout(timeout, stream.next()).await {
        Ok(Some(Ok(response))) => response.message,
        Ok(Some(Err(status))) => panic!("stream failed: {status:?}"),
        Ok(None) => None,
        Err(_) => panic!("no message within {timeout:?}"),
    }
}

/// The records a Subscribe message carries: a batch's, a single record's, none for an
/// Assignment.
pub fn records_of(message: Option<subscribe_response::Message>) -> Vec<proto::Record> {
    match message {
        Some(subscribe_response::Message::Records(batch)) => batch.records,
        Some(subscribe_response::Message::Record(record)) => vec![record],
        _ => Vec::new(),
    }
}

/// Collects the records of a stream until it ends; returns the assignments and records.
pub async fn collect_all(
    mut stream: tonic::Streaming<SubscribeResponse>,
) -> (Vec<proto::Assignment>, Vec<proto::Record>) {
    let (mut assignments, mut records) = (Vec::new(), Vec::new());
    while let Some(message) = next_message(&mut stream, Duration::from_secs(60)).await {
        match message {
            subscribe_response::Message::Assignment(a) => assignments.push(a),
            subscribe_response::Message::Record(r) => records.push(r),
            subscribe_response::Message::Records(batch) => records.extend(batch.records),
        }
    }
    (assignments, records)
}

/// Publishes raw values and returns their acknowledgements.
pub async fn publish_values(
    client: &mut EventGatewayClient<Channel>,
    topic: &str,
    values: impl IntoIterator<Item = String>,
) -> Vec<proto::PublishResponse> {
    let mut acks = Vec::new();
    for value in values {
        let request = proto::PublishRequest {
            topic: topic.to_owned(),
            key: Some(bytes::Bytes::from(value.clone())),
            payload: Some(proto::publish_request::Payload::Value(bytes::Bytes::from(
                value,
            ))),
            ..Default::default()
        };
        acks.push(
            within(Duration::from_secs(30), "publish", client.publish(request))
                .await
                .expect("publish")
                .into_inner(),
        );
    }
    acks
}

/// A Subscribe request.
pub fn subscribe_request(
    topic: &str,
    group: Option<&str>,
    position: Option<proto::start_position::Position>,
) -> proto::SubscribeRequest {
    proto::SubscribeRequest {
        topics: vec![topic.to_owned()],
        group: group.map(str::to_owned),
        start: position.map(|p| proto::StartPosition { position: Some(p) }),
        stop_at_end: false,
        max_records: None,
        read_mask: None,
        resume: Vec::new(),
        filter: String::new(),
        decode: false,
    }
}

/// Reads `topic` from the earliest offset until the end, as a batch of records.
///
/// On the real test broker (Tansu) the high watermark grows by one per produced *batch*
/// rather than per record (a known gap of that broker, listed in docs/testing.md), so after batched produces `stop_at_end` would end
/// early there; on that broker the stream reads exactly `expected` records instead. Either
/// way the caller asserts the same set of records.
pub async fn read_all(server: &TestServer, topic: &str, expected: u64) -> Vec<proto::Record> {
    let mut client = server.client().await;
    let mut request = subscribe_request(
        topic,
        None,
        Some(proto::start_position::Position::Earliest(true)),
    );
    match server.kind {
        BrokerKind::Embedded => request.stop_at_end = true,
        BrokerKind::Real => request.max_records = Some(expected),
    }
    collect_all(
        client
            .subscribe(request)
            .await
            .expect("subscribe")
            .into_inner(),
    )
    .await
    .1
}

/// Runs the server binary with `args`, without the environment variables `unset`, and
/// expects it to refuse to start (exit status 1) within a minute; returns what it printed
/// on stderr.
pub async fn refused_start(args: &[&str], unset: &[&str]) -> String {
    let mut command =
        tokio::process::Command::new(env!("CARGO_BIN_EXE_streamgate-server-with-hooks"));
    command.args(args).kill_on_drop(true);
    for name in unset {
        command.env_remove(name);
    }
    let output = within(
        Duration::from_secs(60),
        "the server refuses and exits",
        command.output(),
    )
    .await
    .expect("runs");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}
