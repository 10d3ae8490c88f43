//! Shared test helpers: a server started through the same `run` as the binary, on port 0,
//! over the embedded broker or the real one named by `STREAMGATE_TEST_BROKERS`; random
//! topic and group names; small stream readers.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use futures::StreamExt;
use rand::Rng;
use rand::distr::Alphanumeric;
use streamgate::proto::event_gateway_client::EventGatewayClient;
use streamgate::proto::{self, SubscribeResponse, subscribe_response};
use streamgate_server::{Config, Kafka};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// Which broker a scenario runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// librdkafka's in-process mock cluster.
    Embedded,
    /// A real Kafka-compatible broker (Tansu in CI).
    Real,
}

/// A running server and the cluster behind it.
pub struct TestServer {
    pub addr: SocketAddr,
    pub kafka: Arc<Kafka>,
    pub kind: BrokerKind,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server over `kafka` with extra flags.
    pub async fn start(kafka: Arc<Kafka>, kind: BrokerKind, extra_args: &[&str]) -> Self {
        init_logs();
        let mut args = vec![
            "streamgate-server",
            "--listen",
            "127.0.0.1:0",
            "--request-timeout",
            "20s",
            // The background stages have tests of their own, on topics and groups of their
            // own; elsewhere they would only add load on the shared real broker.
            "--transform",
            "false",
            "--log-consumer",
            "false",
            "--analytics",
            "false",
        ];
        args.extend_from_slice(extra_args);
        let config = Config::try_parse_from(args).expect("test config parses");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        let (token, cluster) = (shutdown.clone(), kafka.clone());
        let task = tokio::spawn(async move {
            streamgate_server::run(listener, config, &cluster, token)
                .await
                .expect("server runs");
        });
        Self {
            addr,
            kafka,
            kind,
            shutdown,
            task: Some(task),
        }
    }

    /// The gRPC URL of the server.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A connected client.
    pub async fn client(&self) -> EventGatewayClient<Channel> {
        EventGatewayClient::connect(self.url())
            .await
            .expect("client connects")
    }

    /// Creates a fresh topic with a random name.
    pub async fn topic(&self, partitions: i32) -> String {
        let name = random_name("t");
        self.kafka
            .ensure_topics(&[&name], partitions, 1, Duration::from_secs(30))
            .await
            .expect("create test topic");
        // A real broker's metadata may lag the creation a little.
        if self.kind == BrokerKind::Real {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        name
    }

    /// Stops the server and waits until `run` returned (bounded).
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("server stops in time")
                .expect("server task");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// With `STREAMGATE_TEST_LOG` set (e.g. `info`), the servers' logs go to stderr.
pub fn init_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if let Ok(filter) = std::env::var("STREAMGATE_TEST_LOG") {
        ONCE.call_once(|| {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        });
    }
}

/// A random name with a prefix, so tests never share topics or groups.
pub fn random_name(prefix: &str) -> String {
    let suffix: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(10)
        .map(char::from)
        .collect();
    format!("{prefix}-{suffix}")
}

/// The real broker's address, if the test run has one.
pub fn real_brokers() -> Option<String> {
    std::env::var("STREAMGATE_TEST_BROKERS")
        .ok()
        .filter(|b| !b.trim().is_empty())
}

/// Runs `scenario` against a fresh server on the embedded broker, then on the real broker
/// when `STREAMGATE_TEST_BROKERS` is set.
pub async fn on_each_broker<F, Fut>(scenario: F)
where
    F: Fn(TestServer) -> Fut,
    Fut: Future<Output = ()>,
{
    on_each_broker_with(&[], scenario).await;
}

/// [`on_each_broker`] with extra server flags.
pub async fn on_each_broker_with<F, Fut>(extra_args: &[&str], scenario: F)
where
    F: Fn(TestServer) -> Fut,
    Fut: Future<Output = ()>,
{
    let embedded = Arc::new(Kafka::embedded().expect("embedded broker starts"));
    eprintln!(
        "--- scenario on the embedded broker ({})",
        embedded.bootstrap_servers()
    );
    scenario(TestServer::start(embedded, BrokerKind::Embedded, extra_args).await).await;
    if let Some(brokers) = real_brokers() {
        eprintln!("--- scenario on the real broker ({brokers})");
        let real = Arc::new(Kafka::external(brokers, Vec::new()));
        scenario(TestServer::start(real, BrokerKind::Real, extra_args).await).await;
    }
}

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

/// Collects the records of a stream until it ends; returns the assignments and records.
pub async fn collect_all(
    mut stream: tonic::Streaming<SubscribeResponse>,
) -> (Vec<proto::Assignment>, Vec<proto::Record>) {
    let (mut assignments, mut records) = (Vec::new(), Vec::new());
    while let Some(message) = next_message(&mut stream, Duration::from_secs(60)).await {
        match message {
            subscribe_response::Message::Assignment(a) => assignments.push(a),
            subscribe_response::Message::Record(r) => records.push(r),
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
        acks.push(client.publish(request).await.expect("publish").into_inner());
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
    }
}

/// Reads `topic` from the earliest offset until the end, as a batch of records.
///
/// On the real test broker (Tansu) the high watermark grows by one per produced *batch*
/// rather than per record (DESIGN.md), so after batched produces `stop_at_end` would end
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
