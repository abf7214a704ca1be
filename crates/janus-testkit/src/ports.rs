//! Loopback ports for tests that must name an address before anything
//! binds it (cluster members list each other's addresses up front).
//!
//! A port found by binding port 0 lies in the kernel's ephemeral range, where
//! any new connection's local port may land between the probe and the real
//! bind; with many tests in one binary (some churning thousands of
//! connections) that race is real. These ports come from below the ephemeral
//! range (Linux's default starts at 32768), from a block chosen by the process
//! id, and each is checked free for TCP and UDP when it is handed out.

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};

/// The first port handed out.
const LOWEST: u32 = 20_000;
/// How many ports the range holds (20000–31999).
const SPAN: u32 = 12_000;

static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);

/// `n` distinct loopback ports that were free (TCP and UDP) a moment ago and
/// that the kernel never hands out as ephemeral ports.
///
/// # Panics
/// If the whole range is taken (a machine problem, not a test result).
#[must_use]
pub fn unused_loopback_ports(n: usize) -> Vec<u16> {
    // A block per process, so two test binaries running at once start apart.
    let start = (std::process::id() % 60) * 200;
    let _ = NEXT.compare_exchange(u32::MAX, start, Ordering::Relaxed, Ordering::Relaxed);
    let mut ports = Vec::with_capacity(n);
    let mut tried = 0;
    while ports.len() < n {
        assert!(tried < SPAN, "no free loopback port in {LOWEST}–{}", LOWEST + SPAN - 1);
        tried += 1;
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % SPAN;
        let Ok(port) = u16::try_from(LOWEST + offset) else { continue };
        let free = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
            && UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok();
        if free {
            ports.push(port);
        }
    }
    ports
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn ports_are_distinct_free_and_below_the_ephemeral_range() {
        let ports = unused_loopback_ports(50);
        let distinct: std::collections::BTreeSet<_> = ports.iter().collect();
        assert_eq!(distinct.len(), 50);
        for &port in &ports {
            assert!((20_000..32_000).contains(&port), "{port}");
            assert!(TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok(), "{port} is free");
        }
        let more = unused_loopback_ports(5);
        for port in more {
            assert!(!distinct.contains(&port), "{port} was handed out twice");
        }
    }
}
