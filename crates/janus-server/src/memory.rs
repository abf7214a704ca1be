//! Giving memory back to the operating system after a burst of connections
//! (held blocking queries released at once, a flood that ended): the
//! allocator keeps the freed pages of each thread until that thread does
//! page-level work again, which a light load may never cause. A watcher of
//! the listeners' open connection counts (HTTP and gRPC) asks for a release
//! when many closed; each runtime thread performs it the next time it goes
//! idle.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

static EPOCH: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static SEEN: Cell<u64> = const { Cell::new(0) };
}

/// For a runtime's `on_thread_park`: when a release was asked for since this
/// thread last looked, hands its allocator's free pages back. Otherwise one
/// atomic load.
pub fn on_thread_park() {
    let epoch = EPOCH.load(Ordering::Relaxed);
    if SEEN.with(|seen| seen.replace(epoch)) != epoch {
        collect();
    }
}

#[allow(unsafe_code)]
fn collect() {
    // SAFETY: mi_collect has no preconditions: it frees the calling
    // thread's empty pages (and abandoned ones) and returns them to the OS.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// Turns transparent huge pages off for this process (Linux
/// `PR_SET_THP_DISABLE`), unless `MIMALLOC_ALLOW_THP` is set, in which case
/// the allocator does as that says. Memory already mapped is covered too:
/// the setting applies to every later page fault of the process.
pub fn disable_transparent_huge_pages() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
        return;
    }
    set_thp_disabled();
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn set_thp_disabled() {
    // SAFETY: prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) takes integers only and
    // touches no memory of ours; on failure (a kernel without it) the
    // process keeps the system's setting, which is only a cost in memory.
    let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}

#[cfg(not(target_os = "linux"))]
fn set_thp_disabled() {}

/// Connections that must have closed since the last peak before a release.
const RELEASE_AFTER_CLOSED: u64 = 1024;
/// Releases, one a second, after a burst.
const RELEASE_ROUNDS: u32 = 15;

/// A listener's connections, as the release watcher reads them.
pub trait HeldConnections: Send + Sync {
    /// The connections held now, and the most held at once since the last
    /// call (which starts the next period at the count held now).
    fn held_and_peak(&self) -> (u64, u64);
}

impl HeldConnections for janus_http::ServeStats {
    fn held_and_peak(&self) -> (u64, u64) {
        let now = self.open.load(Ordering::Relaxed);
        (now, self.peak_open.swap(now, Ordering::Relaxed).max(now))
    }
}

impl HeldConnections for janus_grpc::GrpcStats {
    fn held_and_peak(&self) -> (u64, u64) {
        let now = self.connections.load(Ordering::Relaxed);
        (now, self.peak_connections.swap(now, Ordering::Relaxed).max(now))
    }
}

/// Watches the listeners' connections once a second and asks every thread
/// for a release when at least 1,024 closed since the peak, then once a
/// second for 15 s (a burst's connections close over seconds). The peak
/// includes bursts opened and closed between two looks.
pub async fn release_after_bursts(listeners: Vec<Arc<dyn HeldConnections>>, stop: CancellationToken) {
    let (mut peak, mut rounds_left) = (0, 0u32);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let (now, seen) = listeners
            .iter()
            .map(|listener| listener.held_and_peak())
            .fold((0, 0), |(now, seen), (held, most)| (now + held, seen + most));
        peak = peak.max(seen);
        if peak - now >= RELEASE_AFTER_CLOSED {
            peak = now;
            rounds_left = RELEASE_ROUNDS;
        }
        // A burst's connections close (and free) over seconds: release once
        // a second for a while after it.
        if rounds_left > 0 {
            rounds_left -= 1;
            EPOCH.fetch_add(1, Ordering::Relaxed);
            // The thread running this may not park soon under load.
            collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    #[allow(unsafe_code)]
    fn transparent_huge_pages_are_turned_off_unless_asked_for() {
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
            return;
        }
        disable_transparent_huge_pages();
        // SAFETY: PR_GET_THP_DISABLE reads a flag of the process.
        let disabled = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(disabled, 1);
    }

    /// A burst of closes asks for releases for a while, then stops; a few
    /// closes ask for none.
    #[tokio::test(start_paused = true)]
    async fn a_burst_of_closed_connections_asks_for_releases_for_a_while() {
        let stats = Arc::new(janus_http::ServeStats::default());
        let grpc = Arc::new(janus_grpc::GrpcStats::default());
        let stop = CancellationToken::new();
        let watcher = tokio::spawn(release_after_bursts(vec![stats.clone(), grpc.clone()], stop.clone()));
        let second = || tokio::time::sleep(Duration::from_millis(1000));
        stats.open.store(2000, Ordering::Relaxed);
        second().await;
        stats.open.store(1500, Ordering::Relaxed);
        second().await;
        second().await;
        let before = EPOCH.load(Ordering::Relaxed);
        second().await;
        assert_eq!(EPOCH.load(Ordering::Relaxed), before, "500 closed: no release");
        stats.open.store(100, Ordering::Relaxed);
        for _ in 0..RELEASE_ROUNDS + 3 {
            second().await;
        }
        let released = EPOCH.load(Ordering::Relaxed) - before;
        assert_eq!(released, u64::from(RELEASE_ROUNDS), "one release a second for a while");
        second().await;
        assert_eq!(EPOCH.load(Ordering::Relaxed) - before, released, "then none");
        // A thread that parks after a release performs it once.
        SEEN.with(|seen| seen.set(0));
        on_thread_park();
        assert_eq!(SEEN.with(Cell::get), EPOCH.load(Ordering::Relaxed));
        // A burst opened and closed between two looks at the count (a
        // script opening 1,100 connections and closing them) counts too.
        let before = EPOCH.load(Ordering::Relaxed);
        stats.peak_open.fetch_max(1200, Ordering::Relaxed);
        second().await;
        second().await;
        assert!(EPOCH.load(Ordering::Relaxed) > before, "a burst seen only as a peak asks for releases");
        // And one on the gRPC listener, once the HTTP one's releases are over.
        for _ in 0..RELEASE_ROUNDS + 1 {
            second().await;
        }
        let before = EPOCH.load(Ordering::Relaxed);
        second().await;
        assert_eq!(EPOCH.load(Ordering::Relaxed), before, "no release while nothing closes");
        grpc.peak_connections.fetch_max(1500, Ordering::Relaxed);
        second().await;
        second().await;
        assert!(EPOCH.load(Ordering::Relaxed) > before, "a gRPC burst asks for releases too");
        stop.cancel();
        watcher.await.unwrap();
    }
}
