//! The `streamgate-server` binary: parse the flags and resolve them into settings once,
//! start tracing, connect to Kafka (or start the embedded broker), bind, print the banner,
//! build the server and serve it until a signal; then decide how the process exits.
//!
//! The process exits as soon as serving returns: blocking Kafka calls still stuck after the
//! bounded drain (a flush to an unreachable broker, say) must not keep it alive.

use std::future::Future;
use std::io::{IsTerminal, Write};

use anyhow::Context;
use clap::Parser;
use streamgate_server::signals::{FORCED_EXIT_CODE, Signals};
use streamgate_server::{Config, Kafka, Server, Settings};
use tracing_subscriber::EnvFilter;

fn main() {
    let config = Config::parse();
    init_tracing();
    let code = match Settings::resolve(&config)
        .context("invalid configuration")
        .and_then(serve)
    {
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

fn serve(settings: Settings) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let served = runtime.block_on(async {
        let kafka = match &settings.kafka.brokers {
            Some(brokers) => Kafka::external(brokers.clone(), settings.kafka.options.clone()),
            None => Kafka::embedded(settings.kafka.options.clone())
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
        let listen = listener.local_addr()?;
        print!(
            "{}",
            streamgate_server::banner(listen, &kafka, settings.tls.as_ref(), &settings.schemas)
        );
        let server = Server::build(settings, &kafka, listen).await?;
        server.serve(listener, first_signal()).await?;
        tracing::info!("stopped");
        anyhow::Ok(())
    });
    // The drain already waited, within its bound, for everything tracked; what is left is
    // blocking work stuck on Kafka, which must not hold the process.
    runtime.shutdown_background();
    served
}

/// Resolves at the first SIGINT or SIGTERM, which starts the drain; a second one exits the
/// process at once, for an operator who will not wait for the drain (as vector and most
/// servers do).
fn first_signal() -> impl Future<Output = ()> + Send + 'static {
    // Registered now, before serving: no signal slips between the first and the second.
    let mut signals = Signals::register();
    async move {
        signals.next().await;
        tracing::info!("shutdown signal received; draining (a second signal exits at once)");
        tokio::spawn(async move {
            signals.next().await;
            tracing::warn!("second shutdown signal; exiting without finishing the drain");
            std::process::exit(FORCED_EXIT_CODE);
        });
    }
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
