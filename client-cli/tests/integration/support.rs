//! A server per scenario and a way to run the CLI binary against it.

use std::future::Future;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use streamgate_server::{Config, Kafka};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

/// A running server.
pub struct Server {
    pub url: String,
    pub kafka: Arc<Kafka>,
    pub real: bool,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(kafka: Arc<Kafka>, real: bool) -> Self {
        // The background stages are tested in the server's suite.
        let config = Config::try_parse_from([
            "streamgate-server",
            "--listen",
            "127.0.0.1:0",
            "--transform",
            "false",
            "--log-consumer",
            "false",
            "--analytics",
            "false",
        ])
        .expect("config");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let shutdown = CancellationToken::new();
        let (token, cluster) = (shutdown.clone(), kafka.clone());
        let task = tokio::spawn(async move {
            streamgate_server::run(listener, config, &cluster, token)
                .await
                .expect("server runs");
        });
        Self {
            url,
            kafka,
            real,
            shutdown,
            task,
        }
    }

    /// A fresh topic with a random name.
    pub async fn topic(&self) -> String {
        let name = format!("cli-{}", rand_suffix());
        self.kafka
            .ensure_topics(&[&name], 3, 1, Duration::from_secs(30))
            .await
            .expect("create topic");
        if self.real {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        name
    }

    /// Runs `streamgate ARGS` against this server, feeding `stdin`.
    pub async fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        cli_at(&self.url, args, stdin).await
    }

    /// Stops the server, bounded.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("stops in time")
            .expect("task");
    }
}

/// Runs the CLI binary with `--server url`.
pub async fn cli_at(url: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_streamgate"));
    command
        .arg("--server")
        .arg(url)
        .args(args)
        .env_remove("STREAMGATE_SERVER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn streamgate");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.expect("write stdin");
    }
    drop(input);
    tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .expect("the CLI finishes")
        .expect("wait")
}

fn rand_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{nanos:09}-{}", std::process::id())
}

/// Runs `scenario` on the embedded broker, then on the real one if configured.
pub async fn on_each_broker<F, Fut>(scenario: F)
where
    F: Fn(Server) -> Fut,
    Fut: Future<Output = ()>,
{
    let embedded = Arc::new(Kafka::embedded().expect("embedded broker"));
    scenario(Server::start(embedded, false).await).await;
    if let Some(brokers) = std::env::var("STREAMGATE_TEST_BROKERS")
        .ok()
        .filter(|b| !b.is_empty())
    {
        scenario(Server::start(Arc::new(Kafka::external(brokers, Vec::new())), true).await).await;
    }
}

/// Standard output as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
