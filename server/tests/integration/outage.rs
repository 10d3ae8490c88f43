//! Broker outages: the supplier keeps running through one, counts what failed, and resumes
//! by itself when the broker is back. On the embedded broker the outage is injected
//! (`EmbeddedBroker::set_up`); on the real one the connections to a private Tansu, started
//! by this test from `STREAMGATE_TEST_TANSU`, are cut and then let through again.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use streamgate::proto::event_gateway_client::EventGatewayClient;
use streamgate::proto::{
    self, ControlSupplierRequest, PublishRequest, SupplierAction, SupplierSettingsUpdate,
    publish_request, publish_result,
};
use streamgate_server::{Kafka, Settings};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use crate::support::{BrokerKind, TestServer, eventually, within};

/// A short send timeout, so that unacknowledged events count as errors within seconds; the
/// supplier stopped until the test starts it.
fn short_timeout(s: &mut Settings) {
    s.timeouts.request = Duration::from_secs(2);
    s.supplier.running = false;
}

async fn status(client: &mut EventGatewayClient<Channel>) -> proto::SupplierStatus {
    client
        .control_supplier(ControlSupplierRequest::default())
        .await
        .expect("status")
        .into_inner()
}

/// Polls the supplier's status until `done` holds, failing after `within`.
async fn wait_for(
    client: &mut EventGatewayClient<Channel>,
    what: &str,
    within: Duration,
    done: impl Fn(&proto::SupplierStatus) -> bool,
) -> proto::SupplierStatus {
    eventually(within, what, async || {
        let status = status(client).await;
        if done(&status) {
            Ok(status)
        } else {
            Err(status)
        }
    })
    .await
}

/// Something that can take the broker away and bring it back.
pub(crate) trait Outage {
    async fn down(&mut self);
    async fn up(&mut self);
}

/// Runs the scenario: supply at 50/s, take the broker down until errors show, bring it back,
/// and see events acknowledged again with the errors still reported.
async fn supplier_survives(server: TestServer, outage: &mut impl Outage) {
    let topic = server.topic(3).await;
    let mut client = server.client().await;
    client
        .control_supplier(ControlSupplierRequest {
            action: SupplierAction::Start as i32,
            settings: Some(SupplierSettingsUpdate {
                rate_per_second: Some(50.0),
                topic: Some(topic.clone()),
                ..Default::default()
            }),
        })
        .await
        .expect("start");
    wait_for(
        &mut client,
        "events before the outage",
        Duration::from_secs(60),
        |s| s.events_sent >= 20,
    )
    .await;

    outage.down().await;
    let during = wait_for(
        &mut client,
        "errors while the broker is down",
        Duration::from_secs(60),
        |s| s.errors > 0,
    )
    .await;
    assert!(
        during.running,
        "the supplier keeps running through the outage"
    );
    assert!(during.last_error.is_some(), "the status says what failed");

    outage.up().await;
    let resumed_from = status(&mut client).await.events_sent;
    let after = wait_for(
        &mut client,
        "events acknowledged after the broker is back",
        Duration::from_secs(90),
        |s| s.events_sent >= resumed_from + 50,
    )
    .await;
    assert!(after.running);
    assert!(after.errors >= during.errors, "the errors stay counted");
    server.stop().await;
}

pub(crate) struct Injected(pub(crate) Arc<Kafka>);

impl Outage for Injected {
    async fn down(&mut self) {
        let broker = self.0.embedded_broker().expect("embedded");
        broker.set_up(false).await.expect("broker down");
    }

    async fn up(&mut self) {
        let broker = self.0.embedded_broker().expect("embedded");
        broker.set_up(true).await.expect("broker up");
    }
}

/// The Tansu binary a test may start a private broker from (`STREAMGATE_TEST_TANSU`).
pub(crate) fn tansu_binary() -> Option<String> {
    std::env::var("STREAMGATE_TEST_TANSU")
        .ok()
        .filter(|b| !b.is_empty())
}

/// A Tansu process of this test's own behind a TCP relay that the test can cut: the server
/// talks to the relay (Tansu advertises the relay's address, so every connection goes
/// through it), and cutting it closes every connection and turns new ones away, which is
/// what a client sees of a broker that crashed or dropped off the network. The broker keeps
/// its state through the outage, as a Kafka broker does.
///
/// Killing Tansu and starting it again, as this test once did, is not that: its storage is
/// memory only, so it came back empty, every topic recreated under a new topic id. That
/// is a different broker under the same address, and librdkafka 2.12.1 can crash on it
/// (see "Limits worth knowing" in docs/limits.md).
pub(crate) struct PrivateTansu {
    _tansu: Child,
    relay: Relay,
}

impl PrivateTansu {
    pub(crate) async fn start(binary: String) -> Self {
        let tansu_port = free_port();
        let relay = Relay::start(format!("127.0.0.1:{tansu_port}")).await;
        let listener = format!("tcp://127.0.0.1:{tansu_port}");
        let advertised = format!("tcp://{}", relay.address);
        let tansu = Command::new(&binary)
            .args(["broker", "--listener-url", &listener])
            .args(["--advertised-listener-url", &advertised])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("tansu starts");
        Self {
            _tansu: tansu,
            relay,
        }
    }

    pub(crate) fn bootstrap(&self) -> String {
        self.relay.address.to_string()
    }
}

impl Outage for PrivateTansu {
    async fn down(&mut self) {
        self.relay.cut.send_replace(true);
    }

    async fn up(&mut self) {
        self.relay.cut.send_replace(false);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A TCP relay that can be cut: while `cut` holds true, open connections are closed and
/// new ones are closed as soon as they are accepted.
struct Relay {
    address: SocketAddr,
    cut: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl Relay {
    /// Listens on a free port and relays every accepted connection to `upstream`.
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("relay binds");
        let address = listener.local_addr().expect("relay address");
        let cut = watch::channel(false).0;
        let accepting = cut.clone();
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if !*accepting.borrow() {
                    tokio::spawn(relay_one(inbound, upstream.clone(), accepting.subscribe()));
                }
            }
        });
        Self {
            address,
            cut,
            accept,
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut.send_replace(true);
        self.accept.abort();
    }
}

/// Copies both ways between `inbound` and `upstream` until either side closes or the relay
/// is cut.
async fn relay_one(mut inbound: TcpStream, upstream: String, mut cut: watch::Receiver<bool>) {
    let Ok(mut outbound) = TcpStream::connect(&upstream).await else {
        return; // Tansu not listening yet: the client sees a closed connection and retries.
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
        _ = cut.wait_for(|cut| *cut) => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supplier_resumes_by_itself_after_a_broker_outage() {
    eprintln!("--- outage injected into the embedded broker");
    let embedded = Arc::new(Kafka::embedded(Vec::new()).expect("embedded broker"));
    let server = TestServer::start(embedded.clone(), BrokerKind::Embedded, short_timeout).await;
    supplier_survives(server, &mut Injected(embedded)).await;

    let Some(binary) = tansu_binary() else {
        eprintln!("STREAMGATE_TEST_TANSU not set: skipping the real broker restart");
        return;
    };
    let mut tansu = PrivateTansu::start(binary).await;
    eprintln!(
        "--- private Tansu behind a relay at {}, cut and restored",
        tansu.bootstrap()
    );
    let kafka = Arc::new(Kafka::external(tansu.bootstrap(), Vec::new()));
    let server = TestServer::start(kafka, BrokerKind::Real, short_timeout).await;
    supplier_survives(server, &mut tansu).await;
}

/// Records of 512 KiB: 128 of them fill the producer's 64 MiB queue.
const BIG: usize = 512 * 1024;
/// More than the queue holds while the broker is away, fewer than a stream keeps in flight.
const THROUGH_OUTAGE: usize = 131;

/// A PublishStream while the broker is away: every record gets its answer, in order — the
/// queued ones UNAVAILABLE at their deadline ("may still be written"), the ones that found
/// the producer's queue full UNAVAILABLE once they waited a whole request timeout for room —
/// and once the broker is back the same stream publishes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_stream_answers_every_record_through_an_outage_and_a_full_queue() {
    let embedded = Arc::new(Kafka::embedded(Vec::new()).expect("embedded broker"));
    let server = TestServer::start(embedded.clone(), BrokerKind::Embedded, short_timeout).await;
    let topic = server.topic(1).await;
    let mut client = server.client().await;
    let (requests, requests_rx) = tokio::sync::mpsc::channel::<PublishRequest>(8);
    let mut results = client
        .publish_stream(tokio_stream::wrappers::ReceiverStream::new(requests_rx))
        .await
        .expect("publish stream")
        .into_inner();
    let record = move |value: Bytes| PublishRequest {
        topic: topic.clone(),
        payload: Some(publish_request::Payload::Value(value)),
        ..Default::default()
    };

    let broker = embedded.embedded_broker().expect("embedded");
    broker.set_up(false).await.expect("broker down");
    let big = Bytes::from(vec![b'x'; BIG]);
    let feeder = tokio::spawn({
        let (requests, big, record) = (requests.clone(), big.clone(), record.clone());
        async move {
            for _ in 0..THROUGH_OUTAGE {
                if requests.send(record(big.clone())).await.is_err() {
                    break;
                }
            }
        }
    });
    let mut queue_full = 0;
    for sequence in 0..THROUGH_OUTAGE as u64 {
        let result = next_result(&mut results, sequence).await;
        let Some(publish_result::Outcome::Error(error)) = result.outcome else {
            panic!("record {sequence} acknowledged while the broker is down: {result:?}");
        };
        assert_eq!(error.code, tonic::Code::Unavailable as i32, "{error:?}");
        queue_full += usize::from(error.message.to_lowercase().contains("queue full"));
    }
    feeder.await.expect("feeder");
    assert!(
        queue_full > 0,
        "{THROUGH_OUTAGE} records of {BIG} bytes exceed the producer's 64 MiB queue, so some \
         must have found it full"
    );

    broker.set_up(true).await.expect("broker up");
    // The records queued during the outage go out first; until they have, a new one may
    // still find the queue full. The stream publishes again within the wait.
    let mut sequence = THROUGH_OUTAGE as u64;
    eventually(
        Duration::from_secs(90),
        "a record acknowledged after the outage",
        async || {
            requests
                .send(record(Bytes::from_static(b"after")))
                .await
                .expect("send");
            let result = next_result(&mut results, sequence).await;
            sequence += 1;
            match result.outcome {
                Some(publish_result::Outcome::Ack(_)) => Ok(()),
                other => Err(other),
            }
        },
    )
    .await;
    drop(requests);
    server.stop().await;
}

/// The stream's next result, which must be the one of record `sequence`.
async fn next_result(
    results: &mut tonic::Streaming<proto::PublishResult>,
    sequence: u64,
) -> proto::PublishResult {
    let result = within(
        Duration::from_secs(120),
        "the next publish result",
        results.message(),
    )
    .await
    .expect("the stream goes on")
    .expect("a result for every record");
    assert_eq!(result.sequence, sequence, "results come in request order");
    result
}
