//! Time as the registry sees it: milliseconds on a monotonic clock.
//!
//! The state machine never reads a clock; callers pass `now`. [`Clock`] turns
//! `tokio::time::Instant` into [`Millis`], so tests with paused time drive leases
//! deterministically.

use std::time::Duration;

/// Milliseconds since an arbitrary, per-process monotonic epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(pub u64);

impl Millis {
    /// `self + ms`, saturating.
    #[must_use]
    pub fn plus(self, ms: u64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    /// Milliseconds from `earlier` to `self`, zero if `earlier` is later.
    #[must_use]
    pub fn since(self, earlier: Self) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// A monotonic clock anchored at its creation, on tokio's (pausable) time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: tokio::time::Instant,
}

impl Clock {
    /// A clock whose zero is now.
    #[must_use]
    pub fn new() -> Self {
        Self { epoch: tokio::time::Instant::now() }
    }

    /// Current time.
    #[must_use]
    pub fn now(&self) -> Millis {
        Millis(u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    /// The tokio instant of a registry time, for sleeping until it.
    #[must_use]
    pub fn instant(&self, at: Millis) -> tokio::time::Instant {
        self.epoch + Duration::from_millis(at.0)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}
