//! The test harness shared by the server's, the CLI's and the load generator's integration
//! tests and the benchmarks. It builds servers through the public surface only (typed
//! [`Settings`](streamgate_server::Settings), `run`); the server's `test-hooks` feature is the
//! business of the tests that need it (server/tests).
//!
//! - [`TestServer`]: a server started through the same `run` as the binary, on port 0;
//! - [`on_each_broker`] / [`on_each_broker_with`]: a scenario on the embedded broker, then
//!   on the real broker named by `STREAMGATE_TEST_BROKERS` when it is set ([`BrokerKind`],
//!   [`real_brokers`]);
//! - [`eventually`], [`poll_for`], [`settled`] and [`within`]: waiting for a condition, or
//!   for any future, under a timeout that fails the test saying what did not happen;
//! - [`AuthFile`]: principals with known tokens for a server with `--auth-file`;
//! - [`tls`]: test CAs and certificates made at run time, and clients that trust them;
//!   [`TestServer::start_tls`] and [`on_each_broker_tls`] serve TLS with them;
//! - [`random_name`], [`topic_name`], [`unchanged`] and [`init_logs`].

mod auth;
mod broker;
mod client;
mod server;
pub mod tls;
mod wait;

use rand::Rng;
use rand::distr::Alphanumeric;
use streamgate::topic::TopicName;
use streamgate_server::Settings;

pub use auth::{ADMIN_TOKEN, AuthFile, TestPrincipal, authenticator};
pub use broker::{
    BrokerKind, on_each_broker, on_each_broker_tls, on_each_broker_with, real_brokers,
};
pub use client::{run_client, stderr, stdout};
pub use server::{TestServer, settings};
pub use wait::{Condition, POLL_EVERY, eventually, poll_for, settled, within};

/// With `STREAMGATE_TEST_LOG` set (a tracing filter, e.g. `info`), the servers' logs go to
/// the test output.
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

/// A random name with a prefix, so that tests never share topics or groups.
pub fn random_name(prefix: &str) -> String {
    let suffix: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(10)
        .map(char::from)
        .collect();
    format!("{prefix}-{suffix}")
}

/// `name` as a topic setting (`s.topics.stats = topic_name(&stats)`); a test's own names are
/// always valid.
pub fn topic_name(name: &str) -> TopicName {
    TopicName::new(name).unwrap_or_else(|e| panic!("test topic {name:?}: {e}"))
}

/// The `configure` of a scenario that keeps a test server's settings as they are
/// (`on_each_broker_tls(TestTls::new, unchanged, scenario)`).
pub fn unchanged(_: &mut Settings) {}
