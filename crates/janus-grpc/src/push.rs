//! Which connections subscribe to which service, and the dispatcher that
//! turns registry changes into pushes (`docs/grpc-design.md` §4.5).
//!
//! The dispatcher reads the registry's change feed: every write on this node,
//! whatever front end or engine made it (HTTP, DNS-visible updates, records
//! from peers, Raft applies), passes through it. For a change of a service it
//! only marks that service to push on each subscribed connection; each
//! connection's writer then pushes the service's current state when it sends
//! (`stream.rs`): at once on the first change after a quiet spell, then at
//! most once per coalescing window; the body is encoded once per service
//! revision for every subscriber. So a burst of changes costs one push per connection, no
//! queue grows with the rate of change, and a missed change (the feed
//! lagged) is repaired by marking every subscription.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use janus_core::name::ServiceKey;
use parking_lot::RwLock;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::conn::Conn;
use crate::server::Shared;

/// Service → the connections subscribed to it.
#[derive(Default)]
pub(crate) struct Subscribers {
    by_service: RwLock<HashMap<ServiceKey, HashMap<u64, Weak<Conn>>>>,
}

impl Subscribers {
    pub(crate) fn add(&self, service: &ServiceKey, conn: &Arc<Conn>) {
        self.by_service.write().entry(service.clone()).or_default().insert(conn.id, Arc::downgrade(conn));
    }

    pub(crate) fn remove(&self, service: &ServiceKey, conn: u64) {
        let mut by_service = self.by_service.write();
        if let Some(conns) = by_service.get_mut(service) {
            conns.remove(&conn);
            if conns.is_empty() {
                by_service.remove(service);
            }
        }
    }

    /// The subscriptions to `service`, as operators see them.
    pub(crate) fn describe(&self, service: &ServiceKey) -> Vec<janus_core::status::Subscriber> {
        let conns: Vec<Arc<Conn>> = self
            .by_service
            .read()
            .get(service)
            .map(|c| c.values().filter_map(Weak::upgrade).collect())
            .unwrap_or_default();
        let mut found: Vec<_> = conns
            .iter()
            .filter_map(|conn| {
                let subscription = conn.subscriptions.lock().get(service).cloned()?;
                let setup = conn.setup_info().cloned().unwrap_or_default();
                Some(janus_core::status::Subscriber {
                    connection: conn.label.clone(),
                    remote: conn.remote.to_string(),
                    client_version: setup.client_version,
                    app: setup.app,
                    clusters: subscription.clusters_text,
                    acked_revision: subscription.acked_revision,
                })
            })
            .collect();
        found.sort_by(|a, b| a.connection.cmp(&b.connection));
        found
    }

    /// Marks `service` to push on every subscribed connection.
    fn changed(&self, service: &ServiceKey) {
        let Some(conns) = self.by_service.read().get(service).map(|c| c.values().cloned().collect::<Vec<_>>()) else {
            return;
        };
        for conn in conns.iter().filter_map(Weak::upgrade) {
            conn.mark_dirty(service);
        }
    }
}

/// The registry's change feed, read only while some connection subscribes:
/// a node with no gRPC subscriptions pays nothing per write.
#[derive(Default)]
pub(crate) struct Feed {
    /// The receiver for the dispatcher to take, and whether one is live.
    slot: parking_lot::Mutex<(Option<janus_core::watch::ChangeReceiver>, bool)>,
    opened: tokio::sync::Notify,
}

impl Feed {
    /// Opens the feed if it is closed. Called by a subscription after it is
    /// counted and before it reads the service, so no change in between is
    /// missed.
    pub(crate) fn ensure_open(&self, shared: &Shared) {
        let mut slot = self.slot.lock();
        if !slot.1 {
            *slot = (Some(shared.nacos.registry.subscribe()), true);
            self.opened.notify_one();
        }
    }

    /// Closes the feed if no subscription is left (checked under the lock
    /// `ensure_open` takes); returns whether it did.
    fn close_if_unused(&self, shared: &Shared) -> bool {
        let mut slot = self.slot.lock();
        if shared.stats.subscriptions.load(std::sync::atomic::Ordering::Acquire) > 0 {
            return false;
        }
        *slot = (None, false);
        true
    }
}

/// Runs until `stop`: marks the subscriptions of every changed service.
pub(crate) async fn dispatch(shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        let taken = shared.feed.slot.lock().0.take();
        let Some(changes) = taken else {
            tokio::select! {
                () = shared.feed.opened.notified() => continue,
                () = stop.cancelled() => return,
            }
        };
        if !follow(&shared, changes, &stop).await {
            return;
        }
    }
}

/// Marks the subscriptions of every change on `changes` until no
/// subscription is left (`true`) or the node stops (`false`).
async fn follow(shared: &Shared, mut changes: janus_core::watch::ChangeReceiver, stop: &CancellationToken) -> bool {
    loop {
        let change = tokio::select! {
            change = changes.recv() => change,
            () = stop.cancelled() => return false,
        };
        if shared.feed.close_if_unused(shared) {
            return true;
        }
        match change {
            Ok(change) => {
                if let Some(service) = &change.service {
                    shared.subscribers.changed(service);
                }
            }
            Err(RecvError::Lagged(missed)) => {
                debug!(missed, "gRPC push dispatcher missed changes; every subscription will be pushed");
                for conn in shared.conns.all() {
                    conn.mark_all_dirty();
                }
            }
            Err(RecvError::Closed) => return false,
        }
    }
}
