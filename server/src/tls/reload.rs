//! Certificates are renewed while the server runs (an ACME client, cert-manager, an
//! operator's `cp`): the files are polled for a change of metadata, and SIGHUP forces a
//! re-read. A good set of files becomes the config of every *new* connection — open
//! connections keep the session they negotiated, so no stream is cut. A bad set (a file
//! half-written, a certificate replaced before its key) is logged with the file named and
//! the previous config stays in use; the next change is tried again.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch as latest;
use tokio::time::MissedTickBehavior;
use tokio_rustls::rustls::ServerConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{TlsFiles, TlsSettings, load};
use crate::signals::Hangups;

/// Serves the config `settings` loaded and watches the files until `shutdown`. The receiver
/// always holds the config for the next connection.
pub fn watch(
    settings: &TlsSettings,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> latest::Receiver<Arc<ServerConfig>> {
    tracing::info!(certificate = %settings.loaded.description, "TLS on");
    let (current, receiver) = latest::channel(settings.loaded.config.clone());
    let reloader = Reloader {
        files: settings.files.clone(),
        seen: settings.seen.clone(),
        current,
    };
    let hangups = Hangups::register("TLS files reload on change only");
    tasks.spawn(reloader.run(settings.reload_interval, hangups, shutdown.clone()));
    receiver
}

/// What the file poll compares: per file its modification time, length and (on Unix) inode,
/// read through symlinks — a Kubernetes secret volume swaps a symlink, and an atomic `mv`
/// changes the inode even within one mtime tick. `None` for a file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fingerprint(Vec<Option<(SystemTime, u64, u64)>>);

impl Fingerprint {
    pub(super) fn of(files: &TlsFiles) -> Self {
        Self(files.each().map(|(_, path)| stamp(path)).collect())
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64, u64)> {
    let metadata = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&metadata);
    #[cfg(not(unix))]
    let inode = 0;
    Some((metadata.modified().ok()?, metadata.len(), inode))
}

struct Reloader {
    files: TlsFiles,
    seen: Fingerprint,
    current: latest::Sender<Arc<ServerConfig>>,
}

impl Reloader {
    async fn run(mut self, every: Duration, mut hangups: Hangups, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => self.poll(),
                () = hangups.next() => {
                    self.seen = Fingerprint::of(&self.files);
                    self.reload("SIGHUP");
                }
            }
        }
    }

    /// Reloads if any file's metadata differs from the last attempt's. A failed attempt
    /// counts as seen: the error is logged once, not at every tick, and the next change of
    /// the files (the rest of a half-written file, the matching key) is tried again.
    fn poll(&mut self) {
        let now = Fingerprint::of(&self.files);
        if now != self.seen {
            self.seen = now;
            self.reload("the files changed");
        }
    }

    fn reload(&mut self, reason: &str) {
        // The files are local and bounded in size (`MAX_PEM_BYTES`): read on this task.
        match load(&self.files) {
            Ok(loaded) => {
                self.current.send_replace(loaded.config);
                tracing::info!(
                    reason,
                    certificate = %loaded.description,
                    "TLS reloaded; new connections use the new certificate"
                );
            }
            Err(e) => tracing::error!(
                reason,
                "TLS reload failed; still serving the previous certificate: {e}"
            ),
        }
    }
}
