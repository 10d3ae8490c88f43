//! End-to-end tests of the `streamgate-bench` binary against an in-process server started
//! through the same `run` as `streamgate-server`, on port 0: on the embedded broker and, when
//! `STREAMGATE_TEST_BROKERS` is set, on that real broker too.

mod bench;
mod filters;
mod protocols;
mod support;
