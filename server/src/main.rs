//! The `streamgate-server` binary: parse flags, start tracing, connect to Kafka (or start
//! the embedded broker), bind, print the banner, and hand over to `streamgate_server::run`.
//!
//! The process exits as soon as `run` returns: blocking Kafka calls still stuck after the
//! bounded drain (a flush to an unreachable broker, say) must not keep it alive.

use std::io::{IsTerminal, Write};

use anyhow::Context;
use clap::Parser;
use streamgate_server::{Config, Kafka, Settings};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

fn main() {
    let config = Config::parse();
    init_tracing();
    let code = match serve(config) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("streamgate-server: {e:#}");
            1
        }
    };
    let _ = std::io::stdout().flush();
    // Skips destructors on purpose: every client was flushed or abandoned by the drain.
    std::process::exit(code);
}

fn serve(config: Config) -> anyhow::Result<()> {
    let settings = Settings::resolve(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let served = runtime.block_on(async {
        let kafka = match &config.brokers {
            Some(brokers) => Kafka::external(brokers.clone(), config.kafka_options.clone()),
            None => Kafka::embedded(config.kafka_options.clone())
                .context("starting the embedded broker")?,
        };
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} (--listen / STREAMGATE_LISTEN)",
                    settings.listen
                )
            })?;
        print!(
            "{}",
            streamgate_server::banner(listener.local_addr()?, &kafka, settings.tls.as_ref())
        );
        let shutdown = CancellationToken::new();
        streamgate_server::signals::cancel_on_signal(shutdown.clone());
        streamgate_server::run(listener, config, &kafka, shutdown).await?;
        tracing::info!("stopped");
        anyhow::Ok(())
    });
    // The drain already waited, within its bound, for everything tracked; what is left is
    // blocking work stuck on Kafka, which must not hold the process.
    runtime.shutdown_background();
    served
}

fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,librdkafka=warn,rdkafka=warn")),
        )
        // Colours only on a terminal: logs piped to a file or a collector stay plain text.
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_writer(std::io::stderr)
        .init();
}
