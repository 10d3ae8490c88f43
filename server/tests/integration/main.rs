//! Integration tests of streamgate-server: one binary (librdkafka links once), one module
//! per area. Broker-facing tests run on the embedded broker and, when
//! `STREAMGATE_TEST_BROKERS` is set, again on that real broker.

mod analytics;
mod analytics_attacks;
mod errors;
mod interop;
mod outage;
mod process;
mod publish;
mod shutdown;
mod stages;
mod subscribe;
mod supplier;
mod support;
mod transports;
