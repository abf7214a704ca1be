//! [`ApEngine`]: ephemeral-instance writes on one node.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use janus_core::lease::LeaseTiming;
use janus_core::model::{InstancePatch, InstanceSpec};
use janus_core::{InstanceKey, Millis, Registry, RegistryError, RegistryStore, ServiceKey};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::reaper;

/// AP engine settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApConfig {
    /// Shortest gap between two expiry sweeps; deadlines falling inside it are
    /// handled together (and share one per-sweep deletion cap).
    pub sweep_min_gap: Duration,
}

impl Default for ApConfig {
    fn default() -> Self {
        Self { sweep_min_gap: Duration::from_millis(250) }
    }
}

/// What the engine shares with its reaper.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) store: Arc<RegistryStore>,
    /// Wakes the reaper when a write makes a deadline earlier than it plans for.
    pub(crate) wake: Notify,
    /// The registry time the reaper sleeps until (`u64::MAX`: no deadline).
    pub(crate) planned_wake: AtomicU64,
    pub(crate) config: ApConfig,
}

/// Handle to the AP engine of one node; cheap to clone.
#[derive(Debug, Clone)]
pub struct ApEngine {
    shared: Arc<Shared>,
}

impl ApEngine {
    /// Starts the engine and its reaper on the current tokio runtime; the reaper
    /// stops when `shutdown` is cancelled.
    #[must_use]
    pub fn spawn(store: Arc<RegistryStore>, config: ApConfig, shutdown: CancellationToken) -> (Self, JoinHandle<()>) {
        let shared = Arc::new(Shared { store, wake: Notify::new(), planned_wake: AtomicU64::new(u64::MAX), config });
        // The reaper logs under the caller's span (the node's, with its id).
        let task = tokio::spawn(reaper::run(shared.clone(), shutdown).instrument(tracing::info_span!("ap_reaper")));
        (Self { shared }, task)
    }

    /// Runs a write and wakes the reaper if it made an earlier deadline.
    fn write<R>(&self, f: impl FnOnce(&mut Registry, Millis) -> R) -> R {
        let (result, next) = self.shared.store.write(|registry, now| {
            let result = f(registry, now);
            (result, registry.next_deadline())
        });
        if next.is_some_and(|next| next.0 < self.shared.planned_wake.load(Ordering::Acquire)) {
            self.shared.wake.notify_one();
        }
        result
    }

    /// Registers or re-registers an ephemeral instance.
    ///
    /// # Errors
    /// As [`Registry::register_instance`].
    pub fn register(&self, key: &ServiceKey, spec: InstanceSpec) -> Result<u64, RegistryError> {
        self.write(|r, now| r.register_instance(key, spec, now))
    }

    /// Replaces an existing instance's fields.
    ///
    /// # Errors
    /// As [`Registry::update_instance`].
    pub fn update(&self, key: &ServiceKey, spec: InstanceSpec) -> Result<u64, RegistryError> {
        self.write(|r, now| r.update_instance(key, spec, now))
    }

    /// Changes some fields of an existing instance.
    ///
    /// # Errors
    /// As [`Registry::patch_instance`].
    pub fn patch(&self, key: &ServiceKey, instance: &InstanceKey, patch: InstancePatch) -> Result<u64, RegistryError> {
        self.write(|r, now| r.patch_instance(key, instance, patch, now))
    }

    /// Removes an instance.
    ///
    /// # Errors
    /// As [`Registry::deregister_instance`].
    pub fn deregister(&self, key: &ServiceKey, instance: &InstanceKey) -> Result<u64, RegistryError> {
        self.write(|r, now| r.deregister_instance(key, instance, now))
    }

    /// Renews a lease.
    ///
    /// # Errors
    /// As [`Registry::heartbeat`].
    pub fn heartbeat(&self, key: &ServiceKey, instance: &InstanceKey) -> Result<LeaseTiming, RegistryError> {
        self.write(|r, now| r.heartbeat(key, instance, now))
    }
}
