//! Waiting for the signals that end a process cleanly: Ctrl-C (SIGINT) and
//! SIGTERM (what `docker stop` and systemd send).

/// Ctrl-C (SIGINT) or SIGTERM, installed once and awaited once.
pub struct ShutdownSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    /// Installs the handlers: from now on these signals no longer kill the
    /// process but wake [`ShutdownSignals::recv`]. Install them before
    /// anything listens, so that a signal sent as soon as the process says
    /// where it serves is handled.
    ///
    /// # Errors
    /// When the handlers cannot be installed (no tokio runtime with signals).
    #[cfg(unix)]
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
    }

    /// Installs nothing: Ctrl-C is awaited by [`ShutdownSignals::recv`].
    ///
    /// # Errors
    /// Never.
    #[cfg(not(unix))]
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {})
    }

    /// Waits for one of the signals.
    #[cfg(unix)]
    pub async fn recv(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }

    /// Waits for Ctrl-C.
    #[cfg(not(unix))]
    pub async fn recv(self) {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
