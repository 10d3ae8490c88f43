//! The port's connections: plain TCP, or TLS streams handshaken by [`crate::tls`].

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::server::TcpIncoming;

use crate::tls;

/// What a port serves: plain TCP connections, or TLS streams.
pub(super) enum Connections {
    Plain(TcpIncoming),
    Tls(tls::Incoming),
}

/// Turns a listener into a port's connections: TLS (with the certificates `tls` holds,
/// reloaded when their files change) when `--tls-cert` is given, plain TCP otherwise.
pub(super) fn incoming(
    listener: TcpListener,
    what: &str,
    tls: Option<tls::Configs>,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> std::io::Result<Connections> {
    let addr = listener.local_addr()?;
    let secure = tls.is_some();
    let connections = match tls {
        Some(configs) => Connections::Tls(tls::incoming(listener, configs, tasks, shutdown)),
        // Nagle's algorithm would hold each small HTTP/2 write (a unary response, the tail of
        // a record batch) until the client acknowledges the previous one: on loopback that
        // capped Subscribe at a quarter of kcat's rate with both processes idle.
        None => Connections::Plain(TcpIncoming::from(listener).with_nodelay(Some(true))),
    };
    tracing::info!("serving {what} on {}", url(addr, secure));
    Ok(connections)
}

/// The URL of the port: `https://` with TLS on.
pub fn url(addr: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{addr}")
}
