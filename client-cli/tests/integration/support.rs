//! A server per scenario (the shared harness, `streamgate-testkit`) and a way to run the CLI
//! binary against it.

use std::future::Future;
use std::process::{Output, Stdio};
use std::time::Duration;

use streamgate_server::Settings;
use tokio::io::AsyncWriteExt;

pub use streamgate_testkit::TestServer;
use streamgate_testkit::within;

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
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_streamgate"));
    command
        .arg("--server")
        .arg(url)
        .args(args)
        .env_remove("STREAMGATE_SERVER")
        .env_remove("STREAMGATE_TOKEN")
        .env_remove("STREAMGATE_TLS_CA")
        .env_remove("STREAMGATE_TLS_CERT")
        .env_remove("STREAMGATE_TLS_KEY")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("spawn streamgate");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.expect("write stdin");
    }
    drop(input);
    within(
        Duration::from_secs(90),
        &format!("streamgate {args:?} finishes"),
        child.wait_with_output(),
    )
    .await
    .expect("wait")
}

/// Standard output as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
