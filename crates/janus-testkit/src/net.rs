//! The in-memory network every fixture's nodes talk through: the Raft
//! clusters of [`crate::cluster`] and the AP clusters of
//! [`crate::ap_cluster`] alike.
//!
//! A node [`attach`](Network::attach)es a [`PeerHandler`] per channel (its
//! engine) and sends through its [`Link`], a [`PeerTransport`]. Calls go
//! straight to the target's handler, under faults the test injects:
//!
//! - [`partition`](Network::partition) into groups, or [`isolate`](Network::isolate)
//!   one node: calls across the cut are not sent ([`CallError::NotSent`]),
//!   and a reply on its way back when the cut comes is lost ([`CallError::NoReply`]);
//! - [`blackhole`](Network::blackhole) a node: its messages vanish, so
//!   callers wait out their timeout;
//! - [`slow`](Network::slow) a node's links by a delay each way;
//! - a node that is not attached (crashed, stopped) refuses connections.
//!
//! [`delivered`](Network::delivered) counts replies by sender, receiver and
//! [`Route`]. Like the HTTP transport, the network has a size limit: a
//! larger message is refused as malformed, a larger reply is lost. Works on
//! real and on paused tokio time; it passes the same
//! [`crate::transport_conformance`] suite as the HTTP transport.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use janus_core::NodeId;
use janus_core::transport::{CallError, CallFuture, Channel, PeerHandler, PeerTransport, Refusal, RefusalKind, Route};

/// The network between a fixture's nodes.
pub struct Network {
    /// Each node's handler per channel.
    handlers: Mutex<HashMap<(NodeId, Channel), Arc<dyn PeerHandler>>>,
    faults: Mutex<Faults>,
    /// Replies delivered, by (sender, receiver, route).
    delivered: Mutex<HashMap<(NodeId, NodeId, Route), usize>>,
    /// The largest message or reply carried.
    max_body: usize,
}

/// What the test has done to the network.
#[derive(Default)]
struct Faults {
    /// Partition: node → group; nodes in different groups cannot talk.
    groups: Option<HashMap<NodeId, usize>>,
    /// Nodes cut off from every other node.
    isolated: HashSet<NodeId>,
    /// Nodes whose messages (both ways) vanish.
    blackholed: HashSet<NodeId>,
    /// Extra delay each way of messages to or from a node.
    slow: HashMap<NodeId, Duration>,
}

impl Faults {
    fn cut(&self, from: NodeId, to: NodeId) -> bool {
        self.isolated.contains(&from)
            || self.isolated.contains(&to)
            || self.groups.as_ref().is_some_and(|groups| groups.get(&from) != groups.get(&to))
    }

    fn blackholed(&self, from: NodeId, to: NodeId) -> bool {
        self.blackholed.contains(&from) || self.blackholed.contains(&to)
    }

    fn delay(&self, from: NodeId, to: NodeId) -> Duration {
        self.slow.get(&from).copied().unwrap_or_default() + self.slow.get(&to).copied().unwrap_or_default()
    }
}

impl Default for Network {
    fn default() -> Self {
        Self::with_max_body(usize::MAX)
    }
}

/// Locks `mutex`; a poisoned lock only means another test thread panicked,
/// and the state it guards is still whole (every update is one statement).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Network {
    /// A network carrying messages and replies of at most `max_body` bytes.
    #[must_use]
    pub fn with_max_body(max_body: usize) -> Self {
        Self { handlers: Mutex::default(), faults: Mutex::default(), delivered: Mutex::default(), max_body }
    }

    /// Node `from`'s end of the network.
    #[must_use]
    pub fn link(self: &Arc<Self>, from: NodeId) -> Link {
        Link { net: self.clone(), from }
    }

    /// Hands `channel`'s messages to node `node` to `handler` (replacing any before).
    pub fn attach(&self, node: NodeId, channel: Channel, handler: Arc<dyn PeerHandler>) {
        lock(&self.handlers).insert((node, channel), handler);
    }

    /// Takes node `node` off the network, as a crash would: it answers nothing.
    pub fn detach(&self, node: NodeId) {
        lock(&self.handlers).retain(|(id, _), _| *id != node);
    }

    /// Splits the nodes into groups that cannot talk to each other (nodes
    /// in no group form one more).
    pub fn partition(&self, groups: &[&[NodeId]]) {
        let map = groups.iter().enumerate().flat_map(|(g, ids)| ids.iter().map(move |id| (*id, g))).collect();
        lock(&self.faults).groups = Some(map);
    }

    /// Cuts node `node` off from every other node.
    pub fn isolate(&self, node: NodeId) {
        lock(&self.faults).isolated.insert(node);
    }

    /// Ends every partition and isolation (not blackholes or slow links).
    pub fn heal(&self) {
        let mut faults = lock(&self.faults);
        faults.groups = None;
        faults.isolated.clear();
    }

    /// Makes every message to or from `node` vanish (or not).
    pub fn blackhole(&self, node: NodeId, on: bool) {
        let mut faults = lock(&self.faults);
        if on {
            faults.blackholed.insert(node);
        } else {
            faults.blackholed.remove(&node);
        }
    }

    /// Adds `delay` each way to every message to or from `node`; zero ends it.
    pub fn slow(&self, node: NodeId, delay: Duration) {
        let mut faults = lock(&self.faults);
        if delay.is_zero() {
            faults.slow.remove(&node);
        } else {
            faults.slow.insert(node, delay);
        }
    }

    /// Replies to `route` messages delivered from `from` to `to` so far.
    #[must_use]
    pub fn delivered(&self, from: NodeId, to: NodeId, route: Route) -> usize {
        lock(&self.delivered).get(&(from, to, route)).copied().unwrap_or(0)
    }

    /// Replies to `route` messages delivered between any two nodes so far.
    #[must_use]
    pub fn delivered_all(&self, route: Route) -> usize {
        lock(&self.delivered).iter().filter(|((_, _, r), _)| *r == route).map(|(_, count)| count).sum()
    }

    /// One call from `from`; see the module docs for what faults do to it.
    async fn call(
        &self,
        from: NodeId,
        target: NodeId,
        addr: String,
        route: Route,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        let not_sent = |reason: &str| CallError::NotSent { target, addr: addr.clone(), reason: reason.to_owned() };
        let no_reply = |reason: String| CallError::NoReply { target, addr: addr.clone(), reason };
        let (cut, blackholed, delay) = {
            let faults = lock(&self.faults);
            (faults.cut(from, target), faults.blackholed(from, target), faults.delay(from, target))
        };
        if cut {
            return Err(not_sent("partitioned"));
        }
        if blackholed {
            tokio::time::sleep(timeout).await;
            return Err(no_reply(format!("no reply within {} ms", timeout.as_millis())));
        }
        let handler = {
            let handlers = lock(&self.handlers);
            match handlers.get(&(target, route.channel)) {
                Some(handler) => handler.clone(),
                None if handlers.keys().any(|(id, _)| *id == target) => {
                    let reason = format!("node {target} takes no {} messages", route.channel);
                    return Err(CallError::Refused { target, refusal: Refusal::new(RefusalKind::Malformed, reason) });
                }
                None => return Err(not_sent("connection refused")),
            }
        };
        if body.len() > self.max_body {
            let reason = format!("a message of {} bytes is above the limit of {} bytes", body.len(), self.max_body);
            return Err(CallError::Refused { target, refusal: Refusal::new(RefusalKind::Malformed, reason) });
        }
        let exchange = async {
            tokio::time::sleep(delay).await;
            let reply = handler.handle(route.kind, &body).await;
            tokio::time::sleep(delay).await;
            reply
        };
        let reply = match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(refusal)) => return Err(CallError::Refused { target, refusal }),
            Err(_) => return Err(no_reply(format!("no reply within {} ms", timeout.as_millis()))),
        };
        // A cut or blackhole that came while the call ran loses the reply.
        let lost = {
            let faults = lock(&self.faults);
            faults.cut(from, target) || faults.blackholed(from, target)
        };
        if lost {
            return Err(no_reply("the reply was lost: partitioned".to_owned()));
        }
        if reply.len() > self.max_body {
            return Err(no_reply(format!("a reply of {} bytes is above the limit", reply.len())));
        }
        *lock(&self.delivered).entry((from, target, route)).or_default() += 1;
        Ok(reply)
    }
}

/// One node's end of a [`Network`].
pub struct Link {
    net: Arc<Network>,
    from: NodeId,
}

impl PeerTransport for Link {
    fn call(&self, target: NodeId, addr: String, route: Route, body: Vec<u8>, timeout: Duration) -> CallFuture {
        let (net, from) = (self.net.clone(), self.from);
        Box::pin(async move { net.call(from, target, addr, route, body, timeout).await })
    }
}
