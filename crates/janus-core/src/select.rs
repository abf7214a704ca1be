//! Instance selection for lists, with Nacos's protect threshold.
//!
//! Exactly Nacos's `selectInstancesWithHealthyProtection`: instances are first
//! filtered by cluster and by `enabled` (disabled instances are never listed).
//! If `healthy / total <= threshold` (a negative threshold counts as 0, the
//! arithmetic is 32-bit float as in Java, and an empty set never fires), the
//! answer holds *all* of them, unhealthy ones shown as healthy, and says
//! `reach_protection_threshold` — even when only healthy instances were asked
//! for. Otherwise `healthy_only` drops the unhealthy ones.

use std::sync::Arc;

use crate::lease::LeaseTiming;
use crate::model::Instance;
use crate::name::ClusterName;
use crate::registry::ServiceSnapshot;

/// One instance of a [`Selection`].
#[derive(Debug, Clone)]
pub struct Selected {
    /// The stored instance.
    pub instance: Arc<Instance>,
    /// Its lease timings.
    pub timing: LeaseTiming,
    /// Health as shown to the reader (true when the threshold fired).
    pub healthy: bool,
}

/// What a list returns.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// The chosen instances.
    pub instances: Vec<Selected>,
    /// Whether the protect threshold fired.
    pub reached_protect_threshold: bool,
}

/// Selects from a service snapshot; `clusters` empty means all clusters.
#[must_use]
pub fn select(snapshot: &ServiceSnapshot, clusters: &[ClusterName], healthy_only: bool) -> Selection {
    let candidates: Vec<_> = snapshot
        .instances
        .iter()
        .filter(|i| i.instance.enabled && (clusters.is_empty() || clusters.contains(&i.instance.key.cluster)))
        .collect();
    let healthy = candidates.iter().filter(|i| i.instance.healthy).count();
    let reached = protection_reached(healthy, candidates.len(), snapshot.protect_threshold);
    let instances = candidates
        .into_iter()
        .filter(|i| reached || !healthy_only || i.instance.healthy)
        .map(|i| Selected { instance: i.instance.clone(), timing: i.timing, healthy: reached || i.instance.healthy })
        .collect();
    Selection { instances, reached_protect_threshold: reached }
}

/// Whether the protect threshold fires for `healthy` of `total` enabled
/// instances: `healthy / total <= threshold`, in 32-bit float as Java computes
/// `(float) healthyCount / allInstances.size()`; never for an empty set.
#[must_use]
pub fn protection_reached(healthy: usize, total: usize, threshold: f64) -> bool {
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    let (healthy, total, threshold) = (healthy as f32, total as f32, (threshold as f32).max(0.0));
    // An empty set: 0 / 0 is NaN, which compares false.
    healthy / total <= threshold
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::{LeaseDefaults, LeaseTiming};
    use crate::model::{Metadata, Mode};
    use crate::name::{GroupName, InstanceKey, NamespaceId, ServiceKey, ServiceName};
    use crate::registry::SnapshotInstance;

    fn snapshot(threshold: f64, flags: &[(bool, bool, &str)]) -> ServiceSnapshot {
        let timing = LeaseTiming::resolve(LeaseDefaults::default(), crate::model::LeaseOverrides::default());
        let instances = flags
            .iter()
            .enumerate()
            .map(|(i, (healthy, enabled, cluster))| SnapshotInstance {
                instance: Arc::new(Instance {
                    key: InstanceKey::new(
                        ClusterName::new(cluster).unwrap(),
                        "10.0.0.1".parse().unwrap(),
                        u16::try_from(i + 1).unwrap(),
                    ),
                    weight: 1.0,
                    healthy: *healthy,
                    enabled: *enabled,
                    ephemeral: true,
                    metadata: Metadata::new(),
                    custom_id: None,
                }),
                timing,
                lease: None,
            })
            .collect();
        ServiceSnapshot {
            key: ServiceKey::new(NamespaceId::public(), GroupName::default_group(), ServiceName::new("s").unwrap()),
            mode: Mode::Ap,
            exists: true,
            revision: 1,
            protect_threshold: threshold,
            instances,
        }
    }

    #[test]
    fn default_threshold_fires_only_when_none_is_healthy() {
        let s = snapshot(0.0, &[(false, true, "DEFAULT"), (false, true, "DEFAULT")]);
        let sel = select(&s, &[], true);
        assert!(sel.reached_protect_threshold);
        assert_eq!(sel.instances.len(), 2);
        assert!(sel.instances.iter().all(|i| i.healthy), "unhealthy instances are shown healthy");
        assert!(sel.instances.iter().all(|i| !i.instance.healthy), "the stored flag is untouched");

        let s = snapshot(0.0, &[(true, true, "DEFAULT"), (false, true, "DEFAULT")]);
        let sel = select(&s, &[], true);
        assert!(!sel.reached_protect_threshold);
        assert_eq!(sel.instances.len(), 1);
        let sel = select(&s, &[], false);
        assert_eq!(sel.instances.len(), 2);
        assert!(!sel.instances[1].healthy || !sel.instances[0].healthy);
    }

    #[test]
    fn threshold_is_inclusive_and_counts_after_filters() {
        // 1 healthy of 4 enabled in DEFAULT (the disabled one and cluster B don't count): 0.25 <= 0.25.
        let s = snapshot(
            0.25,
            &[
                (true, true, "DEFAULT"),
                (false, true, "DEFAULT"),
                (false, true, "DEFAULT"),
                (false, true, "DEFAULT"),
                (true, false, "DEFAULT"),
                (true, true, "B"),
            ],
        );
        let default = [ClusterName::default_cluster()];
        let sel = select(&s, &default, true);
        assert!(sel.reached_protect_threshold);
        assert_eq!(sel.instances.len(), 4, "disabled instances are never returned");
        // All clusters: 2 healthy of 5 = 0.4 > 0.25.
        let sel = select(&s, &[], true);
        assert!(!sel.reached_protect_threshold);
        assert_eq!(sel.instances.len(), 2);
    }

    #[test]
    fn empty_and_negative() {
        let s = snapshot(0.5, &[]);
        assert!(!select(&s, &[], true).reached_protect_threshold, "0/0 never fires");
        let s = snapshot(-1.0, &[(false, true, "DEFAULT")]);
        assert!(select(&s, &[], true).reached_protect_threshold, "negative counts as 0");
    }
}
