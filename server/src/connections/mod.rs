//! Which TCP connections a port keeps, whatever they send (or do not send):
//!
//! - at most `--max-connections` open at once, and `--max-connections-per-ip` from one
//!   address; a connection over either is closed as soon as it is accepted, with a log line
//!   (throttled) and a count in `/metrics`;
//! - a connection must send its first bytes (the HTTP/2 preface, an HTTP/1.1 request line,
//!   a TLS ClientHello) within `--handshake-timeout`, or it is closed: a silent socket
//!   holds a descriptor for seconds, not forever, and never a handshake slot;
//! - the process's soft descriptor limit is raised to its hard limit at start-up
//!   ([`raise_descriptor_limit`]), so that the caps above, not the kernel, say when to stop.
//!
//! - a connection with no open stream (no call in progress) for `--idle-timeout` is closed,
//!   whatever pings keep it alive at the HTTP/2 level.
//!
//! A [`Tracked`] stream holds its connection's place until it is dropped; it is what the
//! transport (or the TLS handshake) reads and writes, and it tells the request handlers its
//! TCP peer and its [`Activity`] (see [`tracked`]).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::logs::LogThrottle;

mod tracked;

pub use tracked::{Connection, OpenStream, Tracked};

/// Descriptors kept free of connections for everything else (Kafka sockets, files).
pub const DESCRIPTOR_RESERVE: u64 = 256;

/// The caps of one port.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// Connections open at once (`--max-connections`).
    pub total: usize,
    /// Connections open at once from one IP address (`--max-connections-per-ip`).
    pub per_ip: usize,
    /// How long a new connection has to send its first bytes (`--handshake-timeout`);
    /// a TLS handshake has this long again to finish.
    pub first_bytes: Duration,
    /// How long a connection may go without an open stream (`--idle-timeout`).
    pub idle: Duration,
}

/// Why a connection was closed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The port holds `--max-connections`.
    #[error("{0} connections are open, the limit (--max-connections)")]
    Total(usize),
    /// The address holds `--max-connections-per-ip`.
    #[error("{0} connections are open from this address, the limit (--max-connections-per-ip)")]
    PerIp(usize),
}

/// What has been refused or timed out, for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections closed at once over a cap.
    pub refused: AtomicU64,
    /// Connections closed for sending nothing within `--handshake-timeout` (or not
    /// finishing their TLS handshake in time).
    pub timed_out: AtomicU64,
    /// Connections closed after `--idle-timeout` without an open stream.
    pub idle_closed: AtomicU64,
}

/// The open connections of a port, counted in total and by address.
#[derive(Debug)]
pub struct Gate {
    caps: Caps,
    open: Mutex<Open>,
    counters: Arc<Counters>,
    refusals: Mutex<LogThrottle>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

impl Gate {
    /// A gate with `caps`, counting into `counters`.
    pub fn new(caps: Caps, counters: Arc<Counters>) -> Arc<Self> {
        Arc::new(Self {
            caps,
            open: Mutex::default(),
            counters,
            refusals: Mutex::new(LogThrottle::new(Duration::from_secs(1))),
        })
    }

    /// The caps.
    pub fn caps(&self) -> Caps {
        self.caps
    }

    /// Counts a connection from `ip` in, or says which cap it is over (and logs that,
    /// throttled).
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, Refused> {
        let admitted = self.count_in(ip);
        if let Err(refused) = admitted {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            let hit = self
                .refusals
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .hit();
            if let Some(refusals) = hit {
                tracing::warn!(refusals, %ip, reason = %refused, "refused a connection");
            }
        }
        admitted
    }

    fn count_in(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, Refused> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.total >= self.caps.total {
            return Err(Refused::Total(open.total));
        }
        let from_ip = open.by_ip.entry(ip).or_default();
        if *from_ip >= self.caps.per_ip {
            return Err(Refused::PerIp(*from_ip));
        }
        *from_ip += 1;
        open.total += 1;
        Ok(Admitted {
            gate: self.clone(),
            ip,
        })
    }

    /// A connection that sent nothing (or did not finish its handshake) in time.
    pub fn timed_out(&self) {
        self.counters.timed_out.fetch_add(1, Ordering::Relaxed);
    }

    /// Connections open now.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).total
    }
}

/// A connection's place at its gate; dropping it frees the place.
#[derive(Debug)]
pub struct Admitted {
    gate: Arc<Gate>,
    ip: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.gate.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.by_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.by_ip.remove(&self.ip);
            }
        }
    }
}

/// The pause after a failed `accept` (out of file descriptors, say): the error repeats at
/// once otherwise, and the loop would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts on `listener` until `stop` resolves, admitting each connection at `gate` (a
/// refused one is closed at once) and handing the admitted ones to `handle`. The loop
/// never waits on a client: whatever a connection does next happens in `handle`'s task.
pub async fn accept_loop(
    listener: TcpListener,
    gate: Arc<Gate>,
    stop: impl Future<Output = ()>,
    mut handle: impl FnMut(TcpStream, SocketAddr, Admitted),
) {
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            () = &mut stop => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, peer)) => {
                if let Ok(admitted) = gate.admit(peer.ip()) {
                    // gRPC's small messages must not wait for Nagle.
                    let _ = tcp.set_nodelay(true);
                    handle(tcp, peer, admitted);
                }
            }
            Err(e) => {
                let hit = gate
                    .refusals
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .hit();
                if let Some(failures) = hit {
                    tracing::warn!(failures, error = %e, "accept failed");
                }
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// Waits until `tcp` has sent something, within `timeout`: false if it sent nothing (or
/// closed) in time.
pub async fn first_bytes(tcp: &TcpStream, timeout: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(timeout, tcp.peek(&mut byte)).await,
        Ok(Ok(n)) if n > 0
    )
}

/// Raises the soft limit on open descriptors to the hard limit; returns the limit now in
/// force, if it could be read.
pub fn raise_descriptor_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .ok()
                .map(|(soft, _)| soft)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(total: usize, per_ip: usize) -> Arc<Gate> {
        let caps = Caps {
            total,
            per_ip,
            first_bytes: Duration::from_secs(1),
            idle: Duration::from_secs(60),
        };
        Gate::new(caps, Arc::default())
    }

    #[test]
    fn caps_connections_in_total_and_per_address_and_frees_on_drop() {
        let gate = gate(3, 2);
        let (a, b) = (
            "10.0.0.1".parse().expect("an address"),
            "10.0.0.2".parse().expect("an address"),
        );
        let first = gate.admit(a).expect("first");
        let _second = gate.admit(a).expect("second");
        assert_eq!(gate.admit(a).expect_err("third from a"), Refused::PerIp(2));
        let _other = gate.admit(b).expect("b has its own share");
        assert_eq!(gate.admit(b).expect_err("port full"), Refused::Total(3));
        drop(first);
        let _again = gate.admit(a).expect("a place came back");
        assert_eq!(gate.counters.refused.load(Ordering::Relaxed), 2);
        assert_eq!(gate.open(), 3);
    }

    /// A socket that connects and says nothing is let go at the timeout; one that speaks
    /// is served at once.
    #[tokio::test]
    async fn first_bytes_waits_for_a_word_within_the_timeout() {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let _silent = TcpStream::connect(addr).await.expect("connect");
        let (accepted, _) = listener.accept().await.expect("accept");
        assert!(!first_bytes(&accepted, Duration::from_millis(200)).await);
        let mut talker = TcpStream::connect(addr).await.expect("connect");
        talker.write_all(b"PRI * HTTP/2.0").await.expect("write");
        let (accepted, _) = listener.accept().await.expect("accept");
        assert!(first_bytes(&accepted, Duration::from_secs(30)).await);
    }
}
