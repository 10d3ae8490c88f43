//! SIGINT and SIGTERM, as futures: [`Signals::next`] resolves at the next one. What a signal
//! does is the binary's decision (`main`: the first starts the drain, a second exits at
//! once), not this module's.

/// The exit code of a second signal (128 + SIGINT, what shells report for Ctrl-C).
pub const FORCED_EXIT_CODE: i32 = 130;

/// The signals that stop the server, registered once: no signal slips between two waits.
pub struct Signals {
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Starts listening for SIGINT and SIGTERM; call inside the runtime.
    #[cfg(unix)]
    pub fn register() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        Self {
            terminate: signal(SignalKind::terminate()).ok(),
            interrupt: signal(SignalKind::interrupt()).ok(),
        }
    }

    /// Starts listening for Ctrl-C; call inside the runtime.
    #[cfg(not(unix))]
    pub fn register() -> Self {
        Self {}
    }

    /// Resolves at the next SIGINT or SIGTERM.
    #[cfg(unix)]
    pub async fn next(&mut self) {
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

    /// Resolves at the next Ctrl-C.
    #[cfg(not(unix))]
    pub async fn next(&mut self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// SIGHUP, the usual "re-read your files" signal. Registered only by what reloads files on
/// it (it replaces the default action, which ends the process); every registration hears
/// every signal.
pub struct Hangups {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangups {
    /// Starts listening; `otherwise` says in the warning what happens if it cannot.
    pub fn register(otherwise: &'static str) -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signal = signal(SignalKind::hangup())
                .inspect_err(|e| tracing::warn!("cannot handle SIGHUP ({e}); {otherwise}"))
                .ok();
            Self { signal }
        }
        #[cfg(not(unix))]
        {
            let _ = otherwise;
            Self {}
        }
    }

    /// Resolves at the next SIGHUP; never if there is none to wait for.
    pub async fn next(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal {
            if signal.recv().await.is_some() {
                return;
            }
            self.signal = None;
        }
        std::future::pending().await
    }
}
