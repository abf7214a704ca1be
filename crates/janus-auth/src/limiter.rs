//! Failed logins, counted per key (a user name, a source address): after
//! `max_failures` within `window` a key is locked out, for a time that
//! doubles with each lockout up to `max_lockout`; a successful login clears
//! its user's count. The table is bounded: when full, entries whose window
//! and lockout have passed go first, then the oldest.

use std::collections::HashMap;

use crate::AuthError;

/// The limits of a [`LoginLimiter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failures allowed within `window_ms` before a lockout.
    pub max_failures: u32,
    /// The counting window.
    pub window_ms: u64,
    /// The first lockout; each further one doubles it.
    pub lockout_ms: u64,
    /// The longest lockout.
    pub max_lockout_ms: u64,
    /// Keys tracked at most.
    pub capacity: usize,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self { max_failures: 5, window_ms: 60_000, lockout_ms: 30_000, max_lockout_ms: 15 * 60_000, capacity: 10_000 }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    window_start_ms: u64,
    lockouts: u32,
    locked_until_ms: u64,
}

/// Counts failed logins; times are milliseconds from any fixed epoch.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    limits: LoginLimits,
    entries: HashMap<String, Entry>,
}

impl LoginLimiter {
    /// A limiter with `limits`.
    #[must_use]
    pub fn new(limits: LoginLimits) -> Self {
        Self { limits, entries: HashMap::new() }
    }

    /// Whether a login for these keys may be tried now.
    ///
    /// # Errors
    /// [`AuthError::Throttled`] with the longest wait of the keys.
    pub fn check(&self, keys: &[&str], now_ms: u64) -> Result<(), AuthError> {
        let wait_ms = keys
            .iter()
            .filter_map(|key| self.entries.get(*key))
            .map(|entry| entry.locked_until_ms.saturating_sub(now_ms))
            .max()
            .unwrap_or(0);
        if wait_ms == 0 { Ok(()) } else { Err(AuthError::Throttled { retry_after_secs: wait_ms.div_ceil(1000) }) }
    }

    /// Counts a failed login against every key.
    pub fn failed(&mut self, keys: &[&str], now_ms: u64) {
        for key in keys {
            if !self.entries.contains_key(*key) {
                self.make_room(now_ms);
            }
            let limits = self.limits;
            let entry = self.entries.entry((*key).to_owned()).or_insert(Entry {
                failures: 0,
                window_start_ms: now_ms,
                lockouts: 0,
                locked_until_ms: 0,
            });
            if now_ms.saturating_sub(entry.window_start_ms) >= limits.window_ms {
                entry.failures = 0;
                entry.window_start_ms = now_ms;
            }
            entry.failures += 1;
            if entry.failures >= limits.max_failures {
                let factor = 1u64.checked_shl(entry.lockouts.min(32)).unwrap_or(u64::MAX);
                let lockout = limits.lockout_ms.saturating_mul(factor).min(limits.max_lockout_ms);
                entry.locked_until_ms = now_ms.saturating_add(lockout);
                entry.lockouts += 1;
                entry.failures = 0;
                entry.window_start_ms = now_ms;
            }
        }
    }

    /// Clears `key` (a user who logged in).
    pub fn succeeded(&mut self, key: &str) {
        self.entries.remove(key);
    }

    fn make_room(&mut self, now_ms: u64) {
        if self.entries.len() < self.limits.capacity.max(1) {
            return;
        }
        let window = self.limits.window_ms;
        self.entries.retain(|_, e| e.locked_until_ms > now_ms || now_ms.saturating_sub(e.window_start_ms) < window);
        if self.entries.len() >= self.limits.capacity.max(1)
            && let Some(oldest) = self.entries.iter().min_by_key(|(_, e)| e.window_start_ms).map(|(k, _)| k.clone())
        {
            self.entries.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_failures_lock_a_key_out_for_a_growing_time() {
        let mut limiter = LoginLimiter::new(LoginLimits::default());
        for _ in 0..4 {
            limiter.failed(&["user:alice", "addr:10.0.0.1"], 1_000);
        }
        assert!(limiter.check(&["user:alice"], 1_000).is_ok(), "four failures are allowed");
        limiter.failed(&["user:alice", "addr:10.0.0.1"], 1_000);
        assert_eq!(limiter.check(&["user:alice"], 1_000), Err(AuthError::Throttled { retry_after_secs: 30 }));
        assert!(limiter.check(&["addr:10.0.0.1"], 1_000).is_err(), "the address too");
        assert!(limiter.check(&["user:bob", "addr:10.0.0.2"], 1_000).is_ok(), "others are not");
        assert!(limiter.check(&["user:alice"], 31_000).is_ok(), "the lockout ends");
        for _ in 0..5 {
            limiter.failed(&["user:alice"], 31_000);
        }
        assert_eq!(limiter.check(&["user:alice"], 31_000), Err(AuthError::Throttled { retry_after_secs: 60 }));
        limiter.succeeded("user:alice");
        assert!(limiter.check(&["user:alice"], 31_000).is_ok());
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let mut limiter = LoginLimiter::new(LoginLimits::default());
        for minute in 0..10u64 {
            for _ in 0..4 {
                limiter.failed(&["user:slow"], minute * 60_000);
            }
        }
        assert!(limiter.check(&["user:slow"], 600_000).is_ok());
    }

    #[test]
    fn the_table_is_bounded() {
        let mut limiter = LoginLimiter::new(LoginLimits { capacity: 100, ..LoginLimits::default() });
        for n in 0..1_000u64 {
            limiter.failed(&[&format!("addr:{n}")], n);
        }
        assert!(limiter.entries.len() <= 100);
    }
}
