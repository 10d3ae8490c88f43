//! The TLS side of the port: TCP connections in, finished TLS streams out, for tonic's
//! `serve_with_incoming_shutdown`.
//!
//! Each handshake runs in a task of its own, so a slow or silent client holds only its own
//! task, never the accept loop. Each has [`HANDSHAKE_TIMEOUT`]; at most [`MAX_HANDSHAKES`] run
//! at once, and at most [`READY_QUEUE`] finished ones wait for tonic: memory stays bounded
//! whatever clients do. At the bound the loop stops accepting until a handshake ends (new
//! clients wait in the kernel's listen backlog), rather than accepting connections it cannot
//! serve.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::logs::LogThrottle;

/// Longest a client may take to finish its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in flight at once; each holds a socket and a rustls connection (tens of KiB).
pub const MAX_HANDSHAKES: usize = 256;

/// Finished handshakes waiting for tonic to take them; tonic takes each at once, so this only
/// absorbs a burst.
const READY_QUEUE: usize = 64;

/// The pause after a failed `accept` (out of file descriptors, say): the error repeats at
/// once otherwise, and the loop would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How often a failed handshake may reach the log at warn; the others go to debug only, so a
/// port scanner or a plain-text client in a loop cannot flood the log.
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(30);

/// What the server is given: TLS streams over TCP, which tonic turns into
/// `TlsConnectInfo<TcpConnectInfo>` in every request's extensions.
pub type Incoming = ReceiverStream<std::io::Result<TlsStream<TcpStream>>>;

/// Accepts on `listener` until `shutdown` (or until the server stops reading), handshaking
/// each connection with the config `configs` holds at the moment it is accepted.
pub fn incoming(
    listener: TcpListener,
    configs: watch::Receiver<Arc<ServerConfig>>,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> Incoming {
    let (ready, stream) = mpsc::channel(READY_QUEUE);
    let acceptor = Acceptor {
        listener,
        handshake: Handshake {
            ready,
            shutdown: shutdown.clone(),
            failures: Arc::new(Mutex::new(LogThrottle::new(FAILURE_LOG_EVERY))),
        },
        configs,
        slots: Arc::new(Semaphore::new(MAX_HANDSHAKES)),
        tasks: tasks.clone(),
    };
    tasks.spawn(acceptor.run());
    ReceiverStream::new(stream)
}

struct Acceptor {
    listener: TcpListener,
    handshake: Handshake,
    configs: watch::Receiver<Arc<ServerConfig>>,
    slots: Arc<Semaphore>,
    tasks: TaskTracker,
}

impl Acceptor {
    async fn run(self) {
        let (shutdown, ready) = (&self.handshake.shutdown, &self.handshake.ready);
        loop {
            // A slot before the accept: at the bound, connections wait in the backlog.
            let slot = tokio::select! {
                () = shutdown.cancelled() => return,
                () = ready.closed() => return,
                slot = self.slots.clone().acquire_owned() => match slot {
                    Ok(slot) => slot,
                    Err(_) => return,
                },
            };
            let accepted = tokio::select! {
                () = shutdown.cancelled() => return,
                () = ready.closed() => return,
                accepted = self.listener.accept() => accepted,
            };
            match accepted {
                Ok((tcp, peer)) => self.start(tcp, peer, slot),
                Err(e) => {
                    self.handshake.failed(None, &format!("accept: {e}"));
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }

    fn start(&self, tcp: TcpStream, peer: SocketAddr, slot: OwnedSemaphorePermit) {
        // gRPC's small messages must not wait for Nagle (tonic's own listener does the same).
        let _ = tcp.set_nodelay(true);
        // The config of this moment: a reload changes the next connections, not this one.
        let acceptor = TlsAcceptor::from(self.configs.borrow().clone());
        let handshake = self.handshake.clone();
        self.tasks
            .spawn(async move { handshake.run(acceptor, tcp, peer, slot).await });
    }
}

/// One connection's handshake, with what it needs to hand the stream over or say why not.
#[derive(Clone)]
struct Handshake {
    ready: mpsc::Sender<std::io::Result<TlsStream<TcpStream>>>,
    shutdown: CancellationToken,
    failures: Arc<Mutex<LogThrottle>>,
}

impl Handshake {
    /// Holds `slot` until the stream is handed over (or dropped), so that finished handshakes
    /// waiting for the queue count against the bound too.
    async fn run(
        self,
        acceptor: TlsAcceptor,
        tcp: TcpStream,
        peer: SocketAddr,
        slot: OwnedSemaphorePermit,
    ) {
        let outcome = tokio::select! {
            () = self.shutdown.cancelled() => return,
            outcome = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)) => outcome,
        };
        match outcome {
            Ok(Ok(stream)) => {
                tokio::select! {
                    () = self.shutdown.cancelled() => {}
                    _ = self.ready.send(Ok(stream)) => {}
                }
            }
            Ok(Err(e)) => self.failed(Some(peer), &e.to_string()),
            Err(_) => self.failed(
                Some(peer),
                &format!("no handshake within {HANDSHAKE_TIMEOUT:?}"),
            ),
        }
        drop(slot);
    }

    /// Every failure at debug; at most one per [`FAILURE_LOG_EVERY`] at warn, with a count.
    fn failed(&self, peer: Option<SocketAddr>, error: &str) {
        tracing::debug!(?peer, error, "TLS connection failed");
        let logged = match self.failures.lock() {
            Ok(mut throttle) => throttle.hit(),
            Err(_) => None,
        };
        if let Some(count) = logged {
            tracing::warn!(
                ?peer,
                error,
                failures = count,
                "TLS connection failed (one line per {FAILURE_LOG_EVERY:?}, the rest at debug)"
            );
        }
    }
}
