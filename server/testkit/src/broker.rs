//! Which broker a scenario runs on.

use std::future::Future;
use std::sync::Arc;

use streamgate_server::{Kafka, Settings};

use crate::TestServer;
use crate::tls::TestTls;

/// Which broker a scenario runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// librdkafka's in-process mock cluster.
    Embedded,
    /// A real Kafka-compatible broker (Tansu in CI).
    Real,
}

/// The real broker's address, if the test run has one (`STREAMGATE_TEST_BROKERS`).
pub fn real_brokers() -> Option<String> {
    std::env::var("STREAMGATE_TEST_BROKERS")
        .ok()
        .filter(|b| !b.trim().is_empty())
}

/// Runs `scenario` against a fresh server on a fresh embedded broker, then on the real
/// broker when `STREAMGATE_TEST_BROKERS` is set.
pub async fn on_each_broker<F, Fut>(scenario: F)
where
    F: Fn(TestServer) -> Fut,
    Fut: Future<Output = ()>,
{
    on_each_broker_with(|_| {}, scenario).await;
}

/// [`on_each_broker`] with each server's settings changed by `configure`.
pub async fn on_each_broker_with<F, Fut>(configure: impl Fn(&mut Settings), scenario: F)
where
    F: Fn(TestServer) -> Fut,
    Fut: Future<Output = ()>,
{
    on_each(&configure, None, scenario).await;
}

/// [`on_each_broker_with`], each server serving TLS ([`TestServer::start_tls`]) with fresh
/// files from `make_tls` (e.g. [`TestTls::new`] or [`TestTls::mutual`]): a scenario may
/// replace them on disk without touching the next run's.
pub async fn on_each_broker_tls<F, Fut>(
    make_tls: impl Fn() -> TestTls,
    configure: impl Fn(&mut Settings),
    scenario: F,
) where
    F: Fn(TestServer) -> Fut,
    Fut: Future<Output = ()>,
{
    on_each(&configure, Some(&make_tls), scenario).await;
}

async fn on_each<F, Fut>(
    configure: &dyn Fn(&mut Settings),
    make_tls: Option<&dyn Fn() -> TestTls>,
    scenario: F,
) where
    F: Fn(TestServer) -> Fut,
    Fut: Future<Output = ()>,
{
    let start = async |kafka, kind| match make_tls {
        Some(make_tls) => TestServer::start_tls(kafka, kind, configure, make_tls()).await,
        None => TestServer::start(kafka, kind, configure).await,
    };
    // STREAMGATE_TEST_REAL_ONLY=1 (with STREAMGATE_TEST_BROKERS): the real broker's half
    // alone, to look into a failure there, or to show a test failing there too.
    let real_only = real_brokers().is_some()
        && std::env::var("STREAMGATE_TEST_REAL_ONLY").is_ok_and(|v| v == "1");
    if !real_only {
        let embedded = Arc::new(Kafka::embedded(Vec::new()).expect("embedded broker starts"));
        eprintln!(
            "--- scenario on the embedded broker ({})",
            embedded.bootstrap_servers()
        );
        scenario(start(embedded, BrokerKind::Embedded).await).await;
    }
    if let Some(brokers) = real_brokers() {
        eprintln!("--- scenario on the real broker ({brokers})");
        let real = Arc::new(Kafka::external(brokers, Vec::new()));
        let server = start(real, BrokerKind::Real).await;
        // The server's own topics are created in the background on a cluster: scenarios
        // start once they exist, as a client would after a readiness probe.
        server.wait_serving().await;
        scenario(server).await;
    }
}
