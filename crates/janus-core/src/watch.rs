//! Watches: per-key revision channels for blocking queries, and a bounded
//! broadcast of every change for event streams.
//!
//! A blocking query subscribes to its service (or namespace) key, then re-reads
//! the revision, so a change between the read and the subscription is never
//! missed. Keys exist only while someone waits on them. The broadcast has a fixed
//! capacity: a subscriber that falls behind is told how much it missed and
//! continues from the newest change, so no subscriber can grow memory.

use std::collections::HashMap;

use parking_lot::Mutex;
use tokio::sync::{broadcast, watch};

use crate::change::Change;
use crate::name::{NamespaceId, ServiceKey};

/// Fan-out of registry changes to waiters and subscribers.
#[derive(Debug)]
pub struct WatchHub {
    /// The node-wide revision: every change moves it.
    all: watch::Sender<u64>,
    services: Mutex<HashMap<ServiceKey, watch::Sender<u64>>>,
    namespaces: Mutex<HashMap<NamespaceId, watch::Sender<u64>>>,
    events: broadcast::Sender<Change>,
}

impl WatchHub {
    /// A hub whose event broadcast keeps at most `capacity` changes per subscriber.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        let (events, _) = broadcast::channel(capacity.max(1));
        Self {
            all: watch::channel(0).0,
            services: Mutex::new(HashMap::new()),
            namespaces: Mutex::new(HashMap::new()),
            events,
        }
    }

    /// Delivers changes (called after the registry lock is released).
    pub fn publish(&self, changes: &[Change]) {
        let Some(last) = changes.last() else { return };
        self.all.send_replace(last.revision);
        if self.events.receiver_count() > 0 {
            for change in changes {
                // An error only means every subscriber left meanwhile.
                let _ = self.events.send(change.clone());
            }
        }
        {
            let services = self.services.lock();
            if !services.is_empty() {
                for change in changes {
                    if let Some(tx) = change.service.as_ref().and_then(|key| services.get(&**key)) {
                        tx.send_replace(change.revision);
                    }
                }
            }
        }
        let namespaces = self.namespaces.lock();
        if !namespaces.is_empty() {
            for change in changes {
                if let Some(tx) = namespaces.get(&change.namespace) {
                    tx.send_replace(change.revision);
                }
            }
        }
    }

    /// Starts waiting on the node-wide revision.
    pub fn subscribe_all(&self) -> watch::Receiver<u64> {
        self.all.subscribe()
    }

    /// Starts waiting on a service; pair with [`Self::release_service`].
    pub fn subscribe_service(&self, key: &ServiceKey) -> watch::Receiver<u64> {
        self.services.lock().entry(key.clone()).or_insert_with(|| watch::channel(0).0).subscribe()
    }

    /// Forgets a service key once nobody waits on it (drop the receiver first).
    pub fn release_service(&self, key: &ServiceKey) {
        let mut services = self.services.lock();
        if services.get(key).is_some_and(|tx| tx.receiver_count() == 0) {
            services.remove(key);
        }
    }

    /// Starts waiting on a namespace; pair with [`Self::release_namespace`].
    pub fn subscribe_namespace(&self, id: &NamespaceId) -> watch::Receiver<u64> {
        self.namespaces.lock().entry(id.clone()).or_insert_with(|| watch::channel(0).0).subscribe()
    }

    /// Forgets a namespace key once nobody waits on it.
    pub fn release_namespace(&self, id: &NamespaceId) {
        let mut namespaces = self.namespaces.lock();
        if namespaces.get(id).is_some_and(|tx| tx.receiver_count() == 0) {
            namespaces.remove(id);
        }
    }

    /// A subscription to every change from now on.
    #[must_use]
    pub fn events(&self) -> broadcast::Receiver<Change> {
        self.events.subscribe()
    }

    /// Keys currently waited on (services, namespaces).
    #[must_use]
    pub fn waited_keys(&self) -> (usize, usize) {
        (self.services.lock().len(), self.namespaces.lock().len())
    }
}
