//! [`RegistryStore`]: one node's registry behind a lock, its clock and its watches.
//!
//! Engines write through [`RegistryStore::write`], which publishes the changes a
//! write made in revision order. Registering and deregistering an instance of
//! a service that exists take only the shared lock and that service's own
//! ([`RegistryStore::write_shared`]), so writes to different services run at
//! once; a heartbeat that changes nothing visible takes only the shared lock
//! ([`RegistryStore::renew_quietly`]). Readers take a short read lock and copy
//! what they need (instances are `Arc`s, so a copy is cheap), then encode
//! outside the lock.
//!
//! The lock is sharded by reader thread ([`ShardedLock`]): a shared
//! acquisition touches only its thread's shard, so writers and readers on
//! different cores do not pass one lock word back and forth on every
//! request; the exclusive lock takes every shard.

use std::sync::PoisonError;
use std::time::Duration;

use crossbeam_utils::sync::{ShardedLock, ShardedLockReadGuard, ShardedLockWriteGuard};
use tokio::sync::watch;

use crate::change::Change;
use crate::lease::LeaseTiming;
use crate::name::{InstanceKey, NamespaceId, ServiceKey};
use crate::registry::{Registry, RegistryConfig};
use crate::time::{Clock, Millis};
use crate::watch::{ChangeReceiver, WatchHub};

/// Default capacity of the change broadcast.
pub const DEFAULT_EVENT_BUFFER: usize = 4096;

/// A registry shared by the engines and front ends of one node.
#[derive(Debug)]
pub struct RegistryStore {
    registry: ShardedLock<Registry>,
    hub: WatchHub,
    clock: Clock,
}

impl RegistryStore {
    /// A store with a fresh registry, a clock starting now and an event buffer of `event_buffer`.
    #[must_use]
    pub fn new(config: RegistryConfig, event_buffer: usize) -> Self {
        Self {
            registry: ShardedLock::new(Registry::new(config)),
            hub: WatchHub::new(event_buffer),
            clock: Clock::new(),
        }
    }

    /// The store's clock.
    #[must_use]
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Current time on the store's clock.
    #[must_use]
    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    /// The shared lock. A write that panicked leaves the registry as it
    /// was left (as a lock without poisoning would): the panic is the bug
    /// to report, refusing every later request would not help.
    fn shared(&self) -> ShardedLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The exclusive lock (see [`Self::shared`] on poisoning).
    fn exclusive(&self) -> ShardedLockWriteGuard<'_, Registry> {
        self.registry.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads under a shared lock. Keep `f` short: copy, don't encode.
    pub fn read<R>(&self, f: impl FnOnce(&Registry) -> R) -> R {
        f(&self.shared())
    }

    /// Writes under the exclusive lock with the current time and publishes the
    /// changes before releasing it, so subscribers see them in revision order.
    /// Publishing only sends on bounded channels; it never waits.
    pub fn write<R>(&self, f: impl FnOnce(&mut Registry, Millis) -> R) -> R {
        let mut registry = self.exclusive();
        let now = self.clock.now();
        let result = f(&mut registry, now);
        let changes = registry.take_changes();
        self.hub.publish(&changes);
        result
    }

    /// A write that may run under the shared lock: `shared` gets the
    /// registry, the current time, its input and the publisher of its
    /// changes, which it must call while it holds the written service's lock
    /// (as [`Registry::register_instance_shared`] and
    /// [`Registry::deregister_instance_shared`] do). If `shared` hands its
    /// input back, `exclusive` runs with it under the exclusive lock, as in
    /// [`Self::write`].
    pub fn write_shared<I, R>(
        &self,
        input: I,
        shared: impl FnOnce(&Registry, Millis, I, &dyn Fn(&[Change])) -> Result<R, I>,
        exclusive: impl FnOnce(&mut Registry, Millis, I) -> R,
    ) -> R {
        let declined = {
            let registry = self.shared();
            match shared(&registry, self.clock.now(), input, &|changes| self.hub.publish(changes)) {
                Ok(result) => return result,
                Err(input) => input,
            }
        };
        self.write(|registry, now| exclusive(registry, now, declined))
    }

    /// A heartbeat that changes nothing visible, under the shared lock (see
    /// [`Registry::renew_quietly`]): beats of different instances do not
    /// wait for each other. `None`: the beat needs [`Self::write`] with
    /// [`Registry::heartbeat`].
    #[must_use]
    pub fn renew_quietly(&self, key: &ServiceKey, instance: &InstanceKey) -> Option<LeaseTiming> {
        let registry = self.shared();
        registry.renew_quietly(key, instance, self.clock.now())
    }

    /// Waits until the service's revision differs from `after` (it passed it, or
    /// the service went away), or `timeout` elapses; returns the revision then.
    pub async fn wait_service(&self, key: &ServiceKey, after: u64, timeout: Duration) -> u64 {
        let mut rx = self.hub.subscribe_service(key);
        let revision = self.wait(&mut rx, || self.read(|r| r.service_revision(key)), after, timeout).await;
        drop(rx);
        self.hub.release_service(key);
        revision
    }

    /// Like [`Self::wait_service`] for the node-wide revision (any change).
    pub async fn wait_any(&self, after: u64, timeout: Duration) -> u64 {
        let mut waiter = self.hub.subscribe_all();
        self.wait(&mut waiter.receiver, || self.read(Registry::revision), after, timeout).await
    }

    /// Like [`Self::wait_service`] for a namespace's revision.
    pub async fn wait_namespace(&self, id: &NamespaceId, after: u64, timeout: Duration) -> u64 {
        let mut rx = self.hub.subscribe_namespace(id);
        let revision = self.wait(&mut rx, || self.read(|r| r.namespace_revision(id)), after, timeout).await;
        drop(rx);
        self.hub.release_namespace(id);
        revision
    }

    async fn wait(
        &self,
        rx: &mut watch::Receiver<u64>,
        current: impl Fn() -> u64,
        after: u64,
        timeout: Duration,
    ) -> u64 {
        let waited = tokio::time::timeout(timeout, async {
            loop {
                // Read after subscribing: a change in between is seen here or wakes `changed`.
                let revision = current();
                if revision != after {
                    return revision;
                }
                if rx.changed().await.is_err() {
                    return current();
                }
            }
        })
        .await;
        waited.unwrap_or_else(|_| current())
    }

    /// Subscribes to every change from now on.
    #[must_use]
    pub fn events(&self) -> ChangeReceiver {
        self.hub.events()
    }

    /// The watch hub (for diagnostics).
    #[must_use]
    pub fn hub(&self) -> &WatchHub {
        &self.hub
    }
}

/// What front ends may do with a node's store: read snapshots under the
/// shared lock, wait on watches, subscribe to changes and read the clock.
/// There is no `write`: front ends change the registry only through
/// [`crate::RegistryService`], which routes every write to the engine that
/// owns it.
#[derive(Debug, Clone, Copy)]
pub struct StoreView<'a>(&'a RegistryStore);

impl<'a> StoreView<'a> {
    /// A read-only view of `store`.
    #[must_use]
    pub fn new(store: &'a RegistryStore) -> Self {
        Self(store)
    }

    /// Reads under the shared lock (see [`RegistryStore::read`]).
    pub fn read<R>(self, f: impl FnOnce(&Registry) -> R) -> R {
        self.0.read(f)
    }

    /// Current time on the store's clock.
    #[must_use]
    pub fn now(self) -> Millis {
        self.0.now()
    }

    /// See [`RegistryStore::wait_service`].
    pub async fn wait_service(self, key: &ServiceKey, after: u64, timeout: Duration) -> u64 {
        self.0.wait_service(key, after, timeout).await
    }

    /// See [`RegistryStore::wait_namespace`].
    pub async fn wait_namespace(self, id: &NamespaceId, after: u64, timeout: Duration) -> u64 {
        self.0.wait_namespace(id, after, timeout).await
    }

    /// See [`RegistryStore::wait_any`].
    pub async fn wait_any(self, after: u64, timeout: Duration) -> u64 {
        self.0.wait_any(after, timeout).await
    }

    /// Every change from now on.
    #[must_use]
    pub fn events(self) -> ChangeReceiver {
        self.0.events()
    }

    /// Services and namespaces with blocked watchers (for metrics).
    #[must_use]
    pub fn waited_keys(self) -> (usize, usize) {
        self.0.hub().waited_keys()
    }
}
