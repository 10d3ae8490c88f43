//! The port's connections: counted TCP connections (see [`crate::connections`]), plain or
//! as TLS streams handshaken by [`crate::tls`].

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::connections::{self, Gate, Tracked};
use crate::tls;

/// Connections that spoke, waiting for the transport to take them (it takes each at once).
const READY_QUEUE: usize = 64;

/// What a port serves: plain TCP connections, or TLS streams.
pub(super) enum Connections {
    Plain(ReceiverStream<std::io::Result<Tracked>>),
    Tls(tls::Incoming),
}

/// Turns a listener into a port's connections, admitted at `gate`: TLS (with the
/// certificates `tls` holds, reloaded when their files change) when `--tls-cert` is given,
/// plain TCP otherwise.
pub(super) fn incoming(
    listener: TcpListener,
    what: &str,
    gate: Arc<Gate>,
    tls: Option<tls::Configs>,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> std::io::Result<Connections> {
    let addr = listener.local_addr()?;
    let secure = tls.is_some();
    let connections = match tls {
        Some(configs) => Connections::Tls(tls::incoming(listener, gate, configs, tasks, shutdown)),
        None => Connections::Plain(plain(listener, gate, tasks, shutdown)),
    };
    tracing::info!("serving {what} on {}", url(addr, secure));
    Ok(connections)
}

/// Plain TCP: each admitted connection waits, in a task of its own, for its first bytes
/// within `--handshake-timeout`; a silent one is closed.
fn plain(
    listener: TcpListener,
    gate: Arc<Gate>,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> ReceiverStream<std::io::Result<Tracked>> {
    let (ready, stream) = mpsc::channel(READY_QUEUE);
    let timeout = gate.caps().first_bytes;
    let (spawner, stopping, closed) = (tasks.clone(), shutdown.clone(), ready.clone());
    let stop = async move {
        tokio::select! {
            () = stopping.cancelled() => {}
            () = closed.closed() => {}
        }
    };
    let waiting = gate.clone();
    let shutdown = shutdown.clone();
    tasks.spawn(connections::accept_loop(
        listener,
        gate,
        stop,
        move |tcp, peer, admitted| {
            let (ready, gate, shutdown) = (ready.clone(), waiting.clone(), shutdown.clone());
            spawner.spawn(async move {
            let spoke = tokio::select! {
                () = shutdown.cancelled() => return,
                spoke = connections::first_bytes(&tcp, timeout) => spoke,
            };
            if !spoke {
                gate.timed_out();
                tracing::debug!(%peer, "closed a connection that sent nothing within {timeout:?}");
                return;
            }
            tokio::select! {
                () = shutdown.cancelled() => {}
                _ = ready.send(Ok(Tracked::new(tcp, admitted))) => {}
            }
        });
        },
    ));
    ReceiverStream::new(stream)
}

/// The URL of the port: `https://` with TLS on.
pub fn url(addr: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{addr}")
}
