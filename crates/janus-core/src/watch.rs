//! Watches: per-key revision channels for blocking queries, and a bounded
//! broadcast of every change for event streams.
//!
//! A blocking query subscribes to its service (or namespace) key, then re-reads
//! the revision, so a change between the read and the subscription is never
//! missed. Keys exist only while someone waits on them. The broadcast has a fixed
//! capacity: a subscriber that falls behind is told how much it missed and
//! continues from the newest change, so no subscriber can grow memory.
//!
//! Publishing costs nothing shared while nobody waits: the hub counts its
//! waiters, and a publisher that reads no waiter skips the channels (their
//! locks would otherwise be taken by every write of every service). A
//! waiter counts itself before it re-reads the revision and a publisher
//! reads the count after it changed the revision (both sequentially
//! consistent), so a publisher that skipped had made its change visible to
//! that re-read. The broadcast's subscribers are counted the same way
//! ([`ChangeReceiver`]): asking the channel how many receivers it has takes
//! its lock.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use tokio::sync::{broadcast, watch};

use crate::change::Change;
use crate::name::{NamespaceId, ServiceKey};

/// Fan-out of registry changes to waiters and subscribers.
#[derive(Debug)]
pub struct WatchHub {
    /// The node-wide revision: every change moves it.
    all: watch::Sender<u64>,
    /// Live [`AllWaiter`]s.
    all_waiters: AtomicUsize,
    services: Mutex<HashMap<ServiceKey, watch::Sender<u64>>>,
    /// Keys in `services`.
    service_keys: AtomicUsize,
    namespaces: Mutex<HashMap<NamespaceId, watch::Sender<u64>>>,
    /// Keys in `namespaces`.
    namespace_keys: AtomicUsize,
    events: broadcast::Sender<Change>,
    /// Live [`ChangeReceiver`]s.
    event_receivers: Arc<AtomicUsize>,
}

/// A wait on the node-wide revision ([`WatchHub::subscribe_all`]); the hub
/// counts it until it is dropped.
#[derive(Debug)]
pub struct AllWaiter<'a> {
    /// Wakes when the node-wide revision moves.
    pub receiver: watch::Receiver<u64>,
    count: &'a AtomicUsize,
}

impl Drop for AllWaiter<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A subscription to every change ([`WatchHub::events`]): the broadcast's
/// receiver, counted by the hub until it is dropped.
#[derive(Debug)]
pub struct ChangeReceiver {
    receiver: broadcast::Receiver<Change>,
    count: Arc<AtomicUsize>,
}

impl ChangeReceiver {
    /// The next change; [`broadcast::error::RecvError::Lagged`] tells how
    /// many changes a receiver that fell behind missed.
    pub async fn recv(&mut self) -> Result<Change, broadcast::error::RecvError> {
        self.receiver.recv().await
    }

    /// The next change if one is waiting.
    pub fn try_recv(&mut self) -> Result<Change, broadcast::error::TryRecvError> {
        self.receiver.try_recv()
    }
}

impl Drop for ChangeReceiver {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::SeqCst);
    }
}

impl WatchHub {
    /// A hub whose event broadcast keeps at most `capacity` changes per subscriber.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        let (events, _) = broadcast::channel(capacity.max(1));
        Self {
            all: watch::channel(0).0,
            all_waiters: AtomicUsize::new(0),
            services: Mutex::new(HashMap::new()),
            service_keys: AtomicUsize::new(0),
            namespaces: Mutex::new(HashMap::new()),
            namespace_keys: AtomicUsize::new(0),
            events,
            event_receivers: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Delivers changes. A service's changes come in revision order (they
    /// are published under the registry's exclusive lock or the service's
    /// own); changes of different services may interleave, so each watched
    /// revision only ever moves up.
    pub fn publish(&self, changes: &[Change]) {
        let Some(latest) = changes.iter().map(|c| c.revision).max() else { return };
        if self.all_waiters.load(Ordering::SeqCst) > 0 {
            raise(&self.all, latest);
        }
        if self.event_receivers.load(Ordering::SeqCst) > 0 {
            for change in changes {
                // An error only means every subscriber left meanwhile.
                let _ = self.events.send(change.clone());
            }
        }
        if self.service_keys.load(Ordering::SeqCst) > 0 {
            let services = self.services.lock();
            if !services.is_empty() {
                for change in changes {
                    if let Some(tx) = change.service.as_ref().and_then(|key| services.get(&**key)) {
                        raise(tx, change.revision);
                    }
                }
            }
        }
        if self.namespace_keys.load(Ordering::SeqCst) == 0 {
            return;
        }
        let namespaces = self.namespaces.lock();
        if !namespaces.is_empty() {
            for change in changes {
                if let Some(tx) = namespaces.get(&change.namespace) {
                    raise(tx, change.revision);
                }
            }
        }
    }

    /// Starts waiting on the node-wide revision; re-read it after this.
    pub fn subscribe_all(&self) -> AllWaiter<'_> {
        self.all_waiters.fetch_add(1, Ordering::SeqCst);
        AllWaiter { receiver: self.all.subscribe(), count: &self.all_waiters }
    }

    /// Starts waiting on a service; pair with [`Self::release_service`].
    pub fn subscribe_service(&self, key: &ServiceKey) -> watch::Receiver<u64> {
        let mut services = self.services.lock();
        let rx = services.entry(key.clone()).or_insert_with(|| watch::channel(0).0).subscribe();
        self.service_keys.store(services.len(), Ordering::SeqCst);
        rx
    }

    /// Forgets a service key once nobody waits on it (drop the receiver first).
    pub fn release_service(&self, key: &ServiceKey) {
        let mut services = self.services.lock();
        if services.get(key).is_some_and(|tx| tx.receiver_count() == 0) {
            services.remove(key);
            self.service_keys.store(services.len(), Ordering::SeqCst);
        }
    }

    /// Starts waiting on a namespace; pair with [`Self::release_namespace`].
    pub fn subscribe_namespace(&self, id: &NamespaceId) -> watch::Receiver<u64> {
        let mut namespaces = self.namespaces.lock();
        let rx = namespaces.entry(id.clone()).or_insert_with(|| watch::channel(0).0).subscribe();
        self.namespace_keys.store(namespaces.len(), Ordering::SeqCst);
        rx
    }

    /// Forgets a namespace key once nobody waits on it.
    pub fn release_namespace(&self, id: &NamespaceId) {
        let mut namespaces = self.namespaces.lock();
        if namespaces.get(id).is_some_and(|tx| tx.receiver_count() == 0) {
            namespaces.remove(id);
            self.namespace_keys.store(namespaces.len(), Ordering::SeqCst);
        }
    }

    /// A subscription to every change from now on.
    #[must_use]
    pub fn events(&self) -> ChangeReceiver {
        self.event_receivers.fetch_add(1, Ordering::SeqCst);
        ChangeReceiver { receiver: self.events.subscribe(), count: self.event_receivers.clone() }
    }

    /// Keys currently waited on (services, namespaces).
    #[must_use]
    pub fn waited_keys(&self) -> (usize, usize) {
        (self.services.lock().len(), self.namespaces.lock().len())
    }
}

/// Moves a watched revision up to `revision` (never down), waking its
/// watchers only when it moved.
fn raise(tx: &watch::Sender<u64>, revision: u64) {
    tx.send_if_modified(|current| {
        let moved = revision > *current;
        if moved {
            *current = revision;
        }
        moved
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::change::ChangeKind;

    fn change(revision: u64) -> Change {
        Change {
            revision,
            namespace: NamespaceId::public(),
            service: None,
            instance: None,
            kind: ChangeKind::NamespaceUpdated,
        }
    }

    /// The feed is sent to only while a receiver lives, and every receiver
    /// alive at a publish gets it, including one made after all earlier
    /// ones were dropped.
    #[test]
    fn change_receivers_are_counted_while_they_live() {
        let hub = WatchHub::new(16);
        hub.publish(&[change(1)]);
        let mut first = hub.events();
        let mut second = hub.events();
        assert_eq!(hub.event_receivers.load(Ordering::SeqCst), 2);
        hub.publish(&[change(2)]);
        assert_eq!(first.try_recv().unwrap().revision, 2);
        assert_eq!(second.try_recv().unwrap().revision, 2);
        drop(first);
        drop(second);
        assert_eq!(hub.event_receivers.load(Ordering::SeqCst), 0);
        hub.publish(&[change(3)]);
        let mut third = hub.events();
        hub.publish(&[change(4)]);
        assert_eq!(third.try_recv().unwrap().revision, 4);
        assert!(third.try_recv().is_err());
    }
}
