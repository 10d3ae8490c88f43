//! A server per scenario (the shared harness, `streamgate-testkit`) and a way to run the
//! bench binary against it.

use std::process::{Output, Stdio};
use std::time::Duration;

use streamgate_testkit::within;
pub use streamgate_testkit::{TestServer, on_each_broker, on_each_broker_with};

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
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_streamgate-bench"));
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
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().expect("spawn streamgate-bench");
    within(
        Duration::from_secs(90),
        &format!("streamgate-bench {args:?} finishes"),
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
