//! Integration tests of streamgate-server: one binary (librdkafka links once), one module
//! per area. Broker-facing tests run on the embedded broker and, when
//! `STREAMGATE_TEST_BROKERS` is set, again on that real broker.

mod admin_api;
mod admission;
mod analytics;
mod analytics_attacks;
mod auth;
mod connect;
mod connections;
mod consume;
mod errors;
mod event_sessions;
mod http_guard;
mod interop;
mod kafka_security;
mod malformed_messages;
mod metrics;
mod outage;
mod process;
mod publish;
mod quotas;
mod request_attacks;
mod restore_cost;
mod shutdown;
mod soak;
mod sse;
mod stages;
mod stats_attacks;
mod subscribe;
mod supplier;
mod support;
mod tls;
mod transform_attacks;
mod transports;
mod typed_values;
