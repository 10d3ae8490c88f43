//! Throughput of the publish paths against their budgets, on the embedded broker:
//!
//! - direct produce: rdkafka's FutureProducer straight to the broker (the baseline:
//!   idempotent, `acks=all`, 1024 in flight);
//! - PublishStream: the same records through gRPC (budget: ≥ 0.85 × direct produce);
//! - unary Publish: concurrent calls per second (budget: ≥ 20 000 calls/s with 64 calls in
//!   flight).
//!
//! The server is the test harness's (`streamgate-testkit`), on port 0, with the background
//! stages on as in the binary's defaults.
//!
//! Run: `cargo bench -p streamgate-server --bench gateway` (add `-- RECORDS` to change the
//! record count). Numbers depend on the machine; nothing here asserts them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use rdkafka::producer::{FutureProducer, FutureRecord};
use streamgate::proto::event_gateway_client::EventGatewayClient;
use streamgate::proto::{PublishRequest, publish_request};
use streamgate_server::Kafka;
use streamgate_testkit::{BrokerKind, TestServer};

const TOPIC: &str = "bench";
const VALUE: &[u8] =
    br#"{"name":"P1","user":"U2","date":"2022-09-11T19:41:07.331+00:00","duration":96}"#;

#[tokio::main]
async fn main() {
    let records: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200_000);
    let kafka = Arc::new(Kafka::embedded(Vec::new()).expect("embedded broker"));
    kafka
        .ensure_topics(&[TOPIC], 3, 1, Duration::from_secs(10))
        .await
        .expect("topic");

    let direct = direct_produce(&kafka, records).await;
    println!(
        "direct produce      : {records} records in {direct:.2?} = {:>9.0} records/s",
        rate(records, direct)
    );

    // The harness turns the background stages off for tests; the benchmark measures the
    // server as it runs by default, stages and request deadline included.
    let server = TestServer::start(kafka.clone(), BrokerKind::Embedded, |s| {
        s.transform.run = true;
        s.log_consumer = true;
        s.analytics.worker = true;
        s.timeouts.request = Duration::from_secs(10);
    })
    .await;
    let url = server.url();

    let streamed = publish_stream(&url, records).await;
    println!(
        "PublishStream       : {records} records in {streamed:.2?} = {:>9.0} records/s ({:.2} x direct; budget 0.85)",
        rate(records, streamed),
        direct.as_secs_f64() / streamed.as_secs_f64()
    );

    let calls = records / 4;
    for concurrency in [16, 64, 256] {
        let unary = unary_publish(&url, calls, concurrency).await;
        // The budget is set at 64 calls in flight; the other levels show the trend.
        let budget = if concurrency == 64 {
            " (budget 20000)"
        } else {
            ""
        };
        println!(
            "unary Publish x{concurrency:<3} : {calls} calls in {unary:.2?} = {:>9.0} calls/s{budget}",
            rate(calls, unary)
        );
    }
    server.stop().await;
}

fn rate(count: usize, took: Duration) -> f64 {
    count as f64 / took.as_secs_f64()
}

async fn direct_produce(kafka: &Kafka, records: usize) -> Duration {
    let producer: FutureProducer = kafka
        .client_config()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let producer = Arc::new(producer);
    let start = Instant::now();
    let sends = futures::stream::iter(0..records)
        .map(|i| {
            let producer = producer.clone();
            async move {
                let key = format!("P{}", i % 2);
                let record = FutureRecord::to(TOPIC).key(key.as_bytes()).payload(VALUE);
                producer
                    .send(record, Duration::from_secs(30))
                    .await
                    .expect("delivered");
            }
        })
        .buffer_unordered(1024);
    sends.collect::<Vec<()>>().await;
    start.elapsed()
}

fn request(i: usize) -> PublishRequest {
    PublishRequest {
        topic: TOPIC.into(),
        key: Some(Bytes::from(format!("P{}", i % 2))),
        payload: Some(publish_request::Payload::Value(Bytes::from_static(VALUE))),
        ..Default::default()
    }
}

async fn publish_stream(url: &str, records: usize) -> Duration {
    let mut client = EventGatewayClient::connect(url.to_owned())
        .await
        .expect("connect");
    let start = Instant::now();
    let mut results = client
        .publish_stream(futures::stream::iter((0..records).map(request)))
        .await
        .expect("stream")
        .into_inner();
    let mut acked = 0;
    while let Some(result) = results.message().await.expect("results") {
        assert!(matches!(
            result.outcome,
            Some(streamgate::proto::publish_result::Outcome::Ack(_))
        ));
        acked += 1;
    }
    assert_eq!(acked, records);
    start.elapsed()
}

async fn unary_publish(url: &str, calls: usize, concurrency: usize) -> Duration {
    // A few connections, each multiplexing many concurrent calls, as a real client fleet would.
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(
            EventGatewayClient::connect(url.to_owned())
                .await
                .expect("connect"),
        );
    }
    let start = Instant::now();
    futures::stream::iter(0..calls)
        .map(|i| {
            let mut client = clients[i % clients.len()].clone();
            async move {
                client.publish(request(i)).await.expect("publish");
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<()>>()
        .await;
    start.elapsed()
}
