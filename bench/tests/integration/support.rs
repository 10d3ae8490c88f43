//! A server per scenario (the shared harness, `streamgate-testkit`) and a way to run the
//! bench binary against it.

use std::process::Output;

pub use streamgate_testkit::{TestServer, on_each_broker, on_each_broker_with, stderr, stdout};

/// The bench run against a test server.
pub trait Bench {
    /// Runs `streamgate-bench ARGS` against this server.
    async fn bench(&self, args: &[&str]) -> Output;
}

impl Bench for TestServer {
    async fn bench(&self, args: &[&str]) -> Output {
        bench_at(&self.url(), args).await
    }
}

/// Runs the bench binary with `--server url`, bounded.
pub async fn bench_at(url: &str, args: &[&str]) -> Output {
    bench_with_env(url, args, &[]).await
}

/// [`bench_at`] with environment variables set (and none of the caller's STREAMGATE_*).
pub async fn bench_with_env(url: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let bench = env!("CARGO_BIN_EXE_streamgate-bench");
    streamgate_testkit::run_client(bench, url, args, None, env).await
}
