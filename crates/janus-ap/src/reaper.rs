//! The lease reaper: one task per node that sleeps until the registry's next
//! lease deadline (or until a write makes an earlier one), then lets the
//! registry expire what is due. It never scans all instances. Every few
//! seconds it also removes the implied services that have stayed empty for
//! their grace period.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::cluster::Cluster;
use crate::engine::Shared;

/// Runs until `shutdown` is cancelled.
pub(crate) async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut rng = StdRng::from_os_rng();
    let mut earliest_next_sweep = Instant::now();
    let mut preserving = false;
    // Implied services left empty go after their grace period (see `janus_core::registry::lifecycle`).
    let mut empty_services =
        tokio::time::interval(Duration::from_millis(janus_core::registry::lifecycle::EMPTY_SERVICE_SWEEP_MS));
    empty_services.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let next = shared.store.read(janus_core::Registry::next_deadline);
        shared.planned_wake.store(next.map_or(u64::MAX, |at| at.0), Ordering::Release);
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(shared.store.clock().instant(at).max(earliest_next_sweep)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => {}
            () = shared.wake.notified() => continue,
            _ = empty_services.tick() => {
                let removed = shared.store.write(|registry, now| registry.sweep_empty_services(now));
                if removed > 0 {
                    info!(removed, "removed services left without instances for the grace period");
                }
                continue;
            }
            () = shutdown.cancelled() => return,
        }
        let (report, dirty, now) = shared.store.write(|registry, now| {
            let report = match &shared.cluster {
                // Only the owner expires an instance (see `Registry::expire_owned`).
                Some(cluster) => {
                    let (ring, me) = (cluster.ring(), cluster.me);
                    registry.expire_owned(now, &mut rng, &|hash| Cluster::owns_in(&ring, me, hash))
                }
                None => registry.expire(now, &mut rng),
            };
            (report, registry.take_dirty(), now)
        });
        if let Some(cluster) = &shared.cluster {
            cluster.queue(&dirty, now);
        }
        earliest_next_sweep = Instant::now() + shared.config.sweep_min_gap;
        // Expiries at info, one line per sweep; deletions only held back or
        // leases handed back (both retried or routine) at debug.
        if report.marked_unhealthy + report.deleted > 0 {
            info!(
                unhealthy = report.marked_unhealthy,
                deleted = report.deleted,
                deferred = report.deferred,
                released = report.released,
                "leases expired (no heartbeat): instances marked unhealthy or deleted"
            );
        } else if report.deferred + report.released > 0 {
            debug!(deferred = report.deferred, released = report.released, "lease sweep");
        }
        if report.preservation_active != preserving {
            preserving = report.preservation_active;
            if preserving {
                warn!(
                    deferred = report.deferred,
                    "self-preservation engaged: renewals fell below the threshold, expired instances are kept"
                );
            } else {
                info!("self-preservation ended: renewals recovered");
            }
        }
    }
}
