//! The TLS side of the port: TCP connections in, finished TLS streams out, for tonic's
//! `serve_with_incoming_shutdown`.
//!
//! The accept loop never waits on a client ([`connections::accept_loop`]): each admitted
//! connection gets a task of its own, which first waits for the client's first bytes (a
//! silent socket is closed at `--handshake-timeout` and never holds a handshake slot), then
//! takes one of [`MAX_HANDSHAKES`] slots — at most [`MAX_HANDSHAKES_PER_IP`] of them for one
//! address, so one source cannot fill the pool — and handshakes within the same timeout. At most
//! [`READY_QUEUE`] finished streams wait for tonic: memory stays bounded whatever clients
//! do, and hundreds of silent sockets delay a real client by nothing.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::connections::{self, Admitted, Gate, Tracked};
use crate::logs::LogThrottle;

/// Handshakes in flight at once; each holds a rustls connection (tens of KiB).
pub const MAX_HANDSHAKES: usize = 256;

/// Handshakes in flight at once from one address: a quarter of the pool, so a source that
/// starts handshakes and stalls them leaves the rest to others.
pub const MAX_HANDSHAKES_PER_IP: usize = MAX_HANDSHAKES / 4;

/// Finished handshakes waiting for tonic to take them; tonic takes each at once, so this only
/// absorbs a burst.
const READY_QUEUE: usize = 64;

/// How often a failed handshake may reach the log at warn; the others go to debug only, so a
/// port scanner or a plain-text client in a loop cannot flood the log.
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(30);

/// What the server is given: TLS streams over counted TCP connections, which tonic turns
/// into `TlsConnectInfo<Connection>` in every request's extensions.
pub type Incoming = ReceiverStream<std::io::Result<TlsStream<Tracked>>>;

/// Accepts on `listener` until `shutdown` (or until the server stops reading), admitting
/// connections at `gate` and handshaking each with the config `configs` holds at the moment
/// it is accepted.
pub fn incoming(
    listener: TcpListener,
    gate: Arc<Gate>,
    configs: watch::Receiver<Arc<ServerConfig>>,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> Incoming {
    let (ready, stream) = mpsc::channel(READY_QUEUE);
    let handshake = Handshake {
        ready: ready.clone(),
        shutdown: shutdown.clone(),
        failures: Arc::new(Mutex::new(LogThrottle::new(FAILURE_LOG_EVERY))),
        slots: Arc::new(Semaphore::new(MAX_HANDSHAKES)),
        by_ip: Arc::default(),
        gate: gate.clone(),
    };
    let spawner = tasks.clone();
    let stop = {
        let shutdown = shutdown.clone();
        async move {
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = ready.closed() => {}
            }
        }
    };
    tasks.spawn(connections::accept_loop(
        listener,
        gate,
        stop,
        move |tcp, peer, admitted| {
            // The config of this moment: a reload changes the next connections, not this one.
            let acceptor = TlsAcceptor::from(configs.borrow().clone());
            let handshake = handshake.clone();
            spawner.spawn(async move { handshake.run(acceptor, tcp, peer, admitted).await });
        },
    ));
    ReceiverStream::new(stream)
}

/// One connection's handshake, with what it needs to hand the stream over or say why not.
#[derive(Clone)]
struct Handshake {
    ready: mpsc::Sender<std::io::Result<TlsStream<Tracked>>>,
    shutdown: CancellationToken,
    failures: Arc<Mutex<LogThrottle>>,
    slots: Arc<Semaphore>,
    /// Handshakes in flight per address.
    by_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
    gate: Arc<Gate>,
}

/// One handshake counted against its address's share of the pool.
struct InFlight {
    by_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl InFlight {
    /// Counts a handshake from `ip` in, unless the address holds its share.
    fn start(by_ip: &Arc<Mutex<HashMap<IpAddr, usize>>>, ip: IpAddr) -> Option<Self> {
        let mut counts = by_ip.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(ip).or_default();
        if *count >= MAX_HANDSHAKES_PER_IP {
            return None;
        }
        *count += 1;
        Some(Self {
            by_ip: by_ip.clone(),
            ip,
        })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut counts = self.by_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

impl Handshake {
    /// Waits for the client's first bytes, then handshakes in a slot; the connection keeps
    /// its place at the gate for as long as the stream lives.
    async fn run(
        self,
        acceptor: TlsAcceptor,
        tcp: TcpStream,
        peer: SocketAddr,
        admitted: Admitted,
    ) {
        let timeout = self.gate.caps().first_bytes;
        let spoke = tokio::select! {
            () = self.shutdown.cancelled() => return,
            spoke = connections::first_bytes(&tcp, timeout) => spoke,
        };
        if !spoke {
            self.gate.timed_out();
            tracing::debug!(%peer, "closed a connection that sent nothing within {timeout:?}");
            return;
        }
        let Some(_in_flight) = InFlight::start(&self.by_ip, peer.ip()) else {
            self.failed(
                Some(peer),
                &format!("{MAX_HANDSHAKES_PER_IP} handshakes from this address are in flight"),
            );
            return;
        };
        let _slot = tokio::select! {
            () = self.shutdown.cancelled() => return,
            slot = self.slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => return,
            },
        };
        let tracked = Tracked::new(tcp, admitted);
        let outcome = tokio::select! {
            () = self.shutdown.cancelled() => return,
            outcome = tokio::time::timeout(timeout, acceptor.accept(tracked)) => outcome,
        };
        match outcome {
            Ok(Ok(stream)) => {
                tokio::select! {
                    () = self.shutdown.cancelled() => {}
                    _ = self.ready.send(Ok(stream)) => {}
                }
            }
            Ok(Err(e)) => self.failed(Some(peer), &e.to_string()),
            Err(_) => {
                self.gate.timed_out();
                self.failed(Some(peer), &format!("no handshake within {timeout:?}"));
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_holds_at_most_its_share_of_the_handshake_pool() {
        let by_ip = Arc::default();
        let (a, b): (IpAddr, IpAddr) = (
            "10.0.0.1".parse().expect("an address"),
            "10.0.0.2".parse().expect("an address"),
        );
        let held: Vec<_> = (0..MAX_HANDSHAKES_PER_IP)
            .map(|_| InFlight::start(&by_ip, a).expect("within the share"))
            .collect();
        assert!(InFlight::start(&by_ip, a).is_none(), "over the share");
        let other = InFlight::start(&by_ip, b).expect("another address has its own");
        drop(held);
        drop(other);
        assert!(
            by_ip.lock().expect("lock").is_empty(),
            "nothing left behind"
        );
        InFlight::start(&by_ip, a).expect("the share is back");
    }
}
