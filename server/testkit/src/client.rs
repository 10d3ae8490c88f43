//! A client binary (the `streamgate` CLI, `streamgate-bench`) run against a test server:
//! `--server URL` first, none of the caller's `STREAMGATE_*` connection variables (a
//! developer's shell must not point a test elsewhere), output captured, bounded in time.

use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::within;

/// How long a client command may take before the test fails.
const FINISHES_WITHIN: Duration = Duration::from_secs(90);

/// The variables a client reads its connection from.
const CONNECTION_VARIABLES: [&str; 5] = [
    "STREAMGATE_SERVER",
    "STREAMGATE_TOKEN",
    "STREAMGATE_TLS_CA",
    "STREAMGATE_TLS_CERT",
    "STREAMGATE_TLS_KEY",
];

/// Runs `binary --server url ARGS` with `env` set, feeding it `stdin` (none: an empty
/// input), and returns its output once it exits.
pub async fn run_client(
    binary: &str,
    url: &str,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, &str)],
) -> Output {
    let mut command = tokio::process::Command::new(binary);
    command.arg("--server").arg(url).args(args);
    for variable in CONNECTION_VARIABLES {
        command.env_remove(variable);
    }
    command
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("spawn the client binary");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.expect("write stdin");
    }
    drop(input);
    let what = format!("{binary} {args:?} finishes");
    within(FINISHES_WITHIN, &what, child.wait_with_output())
        .await
        .expect("wait for the client")
}

/// Standard output as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
