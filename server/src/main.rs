//! The `streamgate-server` binary: parse flags, start tracing, connect to Kafka (or start
//! the embedded broker), bind, print the banner, and hand over to `streamgate_server::run`.

use std::io::IsTerminal;

use anyhow::Context;
use clap::Parser;
use streamgate_server::{Config, Kafka};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,librdkafka=warn,rdkafka=warn")),
        )
        // Colours only on a terminal: logs piped to a file or a collector stay plain text.
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_writer(std::io::stderr)
        .init();
    if let Err(message) = config.validate() {
        anyhow::bail!("invalid configuration: {message}");
    }

    let kafka = match &config.brokers {
        Some(brokers) => Kafka::external(brokers.clone(), config.kafka_options.clone()),
        None => Kafka::embedded().context("starting the embedded broker")?,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (--listen / STREAMGATE_LISTEN)",
                config.listen
            )
        })?;
    print!(
        "{}",
        streamgate_server::banner(listener.local_addr()?, &kafka)
    );

    let shutdown = CancellationToken::new();
    streamgate_server::signals::cancel_on_signal(shutdown.clone());
    streamgate_server::run(listener, config, &kafka, shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}
