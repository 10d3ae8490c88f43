//! SIGINT / SIGTERM: the first starts the drain (the root token is cancelled); a second one
//! exits at once with code 130, for an operator who will not wait for the drain — as vector
//! and most servers do.

use tokio_util::sync::CancellationToken;

/// The exit code of a second signal (128 + SIGINT, what shells report for Ctrl-C).
pub const FORCED_EXIT_CODE: i32 = 130;

/// Cancels `token` on the first SIGINT or SIGTERM; exits the process on the second.
pub fn cancel_on_signal(token: CancellationToken) {
    // Registered before the task runs, so no signal slips between the first and the second.
    let mut signals = Signals::register();
    tokio::spawn(async move {
        signals.next().await;
        tracing::info!("shutdown signal received; draining (a second signal exits at once)");
        token.cancel();
        signals.next().await;
        tracing::warn!("second shutdown signal; exiting without finishing the drain");
        std::process::exit(FORCED_EXIT_CODE);
    });
}

/// The signals that stop the server.
struct Signals {
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    #[cfg(unix)]
    fn register() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        Self {
            terminate: signal(SignalKind::terminate()).ok(),
            interrupt: signal(SignalKind::interrupt()).ok(),
        }
    }

    #[cfg(not(unix))]
    fn register() -> Self {
        Self {}
    }

    /// Resolves at the next SIGINT or SIGTERM.
    #[cfg(unix)]
    async fn next(&mut self) {
        async fn on(signal: &mut Option<tokio::signal::unix::Signal>) {
            match signal {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            _ = on(&mut self.terminate) => {}
            _ = on(&mut self.interrupt) => {}
        }
    }

    #[cfg(not(unix))]
    async fn next(&mut self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}
