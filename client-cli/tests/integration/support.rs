//! A server per scenario (the shared harness, `streamgate-testkit`) and a way to run the CLI
//! binary against it.

use std::future::Future;
use std::process::Output;

use streamgate_server::Settings;

pub use streamgate_testkit::{TestServer, stderr, stdout};

/// Runs `scenario` on the embedded broker, then on the real one if configured. The
/// background stages are off: they are tested in the server's suite.
pub async fn on_each_broker<F, Fut>(scenario: F)
where
    F: Fn(TestServer) -> Fut,
    Fut: Future<Output = ()>,
{
    streamgate_testkit::on_each_broker(scenario).await;
}

/// [`on_each_broker`] with each server's settings changed by `configure`.
pub async fn on_each_broker_with<F, Fut>(configure: impl Fn(&mut Settings), scenario: F)
where
    F: Fn(TestServer) -> Fut,
    Fut: Future<Output = ()>,
{
    streamgate_testkit::on_each_broker_with(configure, scenario).await;
}

/// The CLI run against a test server.
pub trait Cli {
    /// Runs `streamgate ARGS` against this server, feeding `stdin`.
    async fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output;
}

impl Cli for TestServer {
    async fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        cli_at(&self.url(), args, stdin).await
    }
}

/// Runs the CLI binary with `--server url`, bounded.
pub async fn cli_at(url: &str, args: &[&str], stdin: Option<&str>) -> Output {
    cli_with_env(url, args, stdin, &[]).await
}

/// [`cli_at`] with environment variables set.
pub async fn cli_with_env(
    url: &str,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, &str)],
) -> Output {
    let cli = env!("CARGO_BIN_EXE_streamgate-under-test");
    streamgate_testkit::run_client(cli, url, args, stdin, env).await
}
