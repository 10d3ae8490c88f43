//! A connection the transport serves: its place at the gate, and its activity.
//!
//! The server pings idle HTTP/2 connections (keepalive), so bytes flow on a connection
//! nobody uses: "idle" here means no open stream. Each request holds an [`OpenStream`] of
//! its connection's [`Activity`] until its response is done (the `http` layer that counts
//! them finds the activity in the request's [`Connection`] info); when a connection has had
//! none for `--idle-timeout`, its next read ends it as if the client had closed it.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tonic::transport::server::{Connected, TlsConnectInfo};

use super::Admitted;

/// Open streams on one connection, and since when it has had none.
#[derive(Debug)]
pub struct Activity {
    open: AtomicUsize,
    idle_since: Mutex<Instant>,
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            open: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
        })
    }

    /// A request began on the connection; it counts until the guard drops.
    pub fn stream_opened(self: &Arc<Self>) -> OpenStream {
        self.open.fetch_add(1, Ordering::SeqCst);
        OpenStream(self.clone())
    }

    /// When the connection becomes idle for `timeout`, if it has no open stream now.
    fn idle_deadline(&self, timeout: std::time::Duration) -> Option<Instant> {
        let since = *self.idle_since.lock().unwrap_or_else(|e| e.into_inner());
        (self.open.load(Ordering::SeqCst) == 0).then_some(since + timeout)
    }
}

/// One open stream of a connection; dropping it (with the response) closes it.
#[derive(Debug)]
pub struct OpenStream(Arc<Activity>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        // The idle time starts before the count says idle: never a stale start.
        *self.0.idle_since.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a request knows of its connection (in its extensions, for plain connections, or
/// inside `TlsConnectInfo` for TLS ones).
#[derive(Debug, Clone)]
pub struct Connection {
    /// The client's address.
    pub remote_addr: Option<SocketAddr>,
    /// Its open streams.
    pub activity: Arc<Activity>,
}

impl Connection {
    /// The connection a request came on.
    pub fn of(extensions: &http::Extensions) -> Option<&Connection> {
        extensions.get::<Connection>().or_else(|| {
            extensions
                .get::<TlsConnectInfo<Connection>>()
                .map(TlsConnectInfo::get_ref)
        })
    }
}

/// A TCP connection holding its place at the gate, closed when idle too long.
#[derive(Debug)]
pub struct Tracked {
    tcp: TcpStream,
    admitted: Admitted,
    activity: Arc<Activity>,
    timer: Pin<Box<Sleep>>,
}

impl Tracked {
    /// `tcp`, counted by `admitted` until dropped.
    pub fn new(tcp: TcpStream, admitted: Admitted) -> Self {
        let idle = admitted.gate.caps().idle;
        Self {
            tcp,
            admitted,
            activity: Activity::new(),
            timer: Box::pin(tokio::time::sleep(idle)),
        }
    }

    /// Whether the connection has been without a stream for the idle timeout; otherwise
    /// sets the timer for the next moment it could be.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> bool {
        let timeout = self.admitted.gate.caps().idle;
        while self.timer.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            match self.activity.idle_deadline(timeout) {
                Some(deadline) if deadline <= now => return true,
                Some(deadline) => self.timer.as_mut().reset(deadline),
                None => self.timer.as_mut().reset(now + timeout),
            }
        }
        false
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.poll_idle(cx) {
            self.admitted
                .gate
                .counters
                .idle_closed
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(peer = ?self.tcp.peer_addr().ok(), "closed an idle connection");
            // End of stream: the transport closes the connection as if the client had.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

impl Connected for Tracked {
    type ConnectInfo = Connection;

    fn connect_info(&self) -> Connection {
        Connection {
            remote_addr: self.tcp.peer_addr().ok(),
            activity: self.activity.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Idle is counted from the end of the last stream, and not while one is open.
    #[tokio::test(start_paused = true)]
    async fn a_connection_is_idle_only_without_open_streams() {
        let timeout = std::time::Duration::from_secs(10);
        let activity = Activity::new();
        let start = Instant::now();
        assert_eq!(activity.idle_deadline(timeout), Some(start + timeout));
        let stream = activity.stream_opened();
        assert_eq!(activity.idle_deadline(timeout), None);
        tokio::time::advance(std::time::Duration::from_secs(30)).await;
        drop(stream);
        let ended = Instant::now();
        assert_eq!(activity.idle_deadline(timeout), Some(ended + timeout));
    }
}
