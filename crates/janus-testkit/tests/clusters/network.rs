//! The in-memory network: it passes the transport conformance suite (on
//! real and on paused time), and its faults do what the fixtures rely on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use janus_core::NodeId;
use janus_core::transport::{CallError, Channel, PeerHandler, PeerTransport, RefusalKind, Route};
use janus_testkit::net::Network;
use janus_testkit::transport_conformance::{self, Harness, ScriptedPeer};
use tokio::time::Instant;

/// The suite's view of a [`Network`]: it calls from node 0.
struct InMemory {
    net: Arc<Network>,
}

impl Harness for InMemory {
    fn transport(&self) -> Arc<dyn PeerTransport> {
        Arc::new(self.net.link(0))
    }

    fn max_body(&self) -> usize {
        256 << 10
    }

    async fn serve(&mut self, id: NodeId, handlers: Vec<(Channel, Arc<dyn PeerHandler>)>) -> String {
        for (channel, handler) in handlers {
            self.net.attach(id, channel, handler);
        }
        format!("node-{id}")
    }

    async fn unreachable(&mut self, id: NodeId) -> String {
        format!("node-{id}")
    }
}

fn in_memory() -> InMemory {
    InMemory { net: Arc::new(Network::with_max_body(256 << 10)) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_network_conforms() {
    transport_conformance::run(&mut in_memory()).await;
}

#[tokio::test(start_paused = true)]
async fn the_network_conforms_on_paused_time() {
    transport_conformance::run(&mut in_memory()).await;
}

/// Nodes 1, 2 and 3 on a network, each an echoing [`ScriptedPeer`] on both channels.
fn three() -> Arc<Network> {
    let net = Arc::new(Network::default());
    for id in 1..=3 {
        for channel in Channel::ALL {
            net.attach(id, channel, Arc::new(ScriptedPeer { channel }));
        }
    }
    net
}

const ECHO: Route = Route::distro("echo");
const TIMEOUT: Duration = Duration::from_secs(2);

async fn call(net: &Arc<Network>, from: NodeId, to: NodeId, route: Route) -> Result<Vec<u8>, CallError> {
    net.link(from).call(to, format!("node-{to}"), route, b"hi".to_vec(), TIMEOUT).await
}

#[tokio::test(start_paused = true)]
async fn a_partition_and_an_isolation_cut_calls_until_healed() {
    let net = three();
    net.partition(&[&[1, 2], &[3]]);
    assert_eq!(call(&net, 1, 2, ECHO).await, Ok(b"hi".to_vec()));
    assert!(matches!(call(&net, 1, 3, ECHO).await, Err(CallError::NotSent { target: 3, .. })));
    assert!(matches!(call(&net, 3, 2, ECHO).await, Err(CallError::NotSent { target: 2, .. })));
    net.heal();
    assert_eq!(call(&net, 1, 3, ECHO).await, Ok(b"hi".to_vec()));

    net.isolate(2);
    assert!(matches!(call(&net, 1, 2, ECHO).await, Err(CallError::NotSent { .. })));
    assert!(matches!(call(&net, 2, 3, ECHO).await, Err(CallError::NotSent { .. })));
    assert_eq!(call(&net, 1, 3, ECHO).await, Ok(b"hi".to_vec()));
    net.heal();
    assert_eq!(call(&net, 2, 3, ECHO).await, Ok(b"hi".to_vec()));
}

#[tokio::test(start_paused = true)]
async fn a_blackholed_node_makes_callers_wait_out_their_timeout() {
    let net = three();
    net.blackhole(3, true);
    let started = Instant::now();
    assert!(matches!(call(&net, 1, 3, ECHO).await, Err(CallError::NoReply { target: 3, .. })));
    assert_eq!(started.elapsed(), TIMEOUT);
    assert!(matches!(call(&net, 3, 2, ECHO).await, Err(CallError::NoReply { target: 2, .. })));
    assert_eq!(call(&net, 1, 2, ECHO).await, Ok(b"hi".to_vec()), "others still talk");
    net.blackhole(3, false);
    assert_eq!(call(&net, 1, 3, ECHO).await, Ok(b"hi".to_vec()));
}

#[tokio::test(start_paused = true)]
async fn a_slow_node_delays_both_ways_and_a_cut_meanwhile_loses_the_reply() {
    let net = three();
    net.slow(2, Duration::from_millis(150));
    let started = Instant::now();
    assert_eq!(call(&net, 1, 2, ECHO).await, Ok(b"hi".to_vec()));
    assert_eq!(started.elapsed(), Duration::from_millis(300));

    // Cut while the message is on its way: the peer acted, the reply is lost.
    let pending = tokio::spawn({
        let net = net.clone();
        async move { call(&net, 1, 2, ECHO).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    net.partition(&[&[1], &[2, 3]]);
    assert!(matches!(pending.await.unwrap(), Err(CallError::NoReply { target: 2, .. })));
    net.heal();

    net.slow(2, Duration::ZERO);
    let started = Instant::now();
    assert_eq!(call(&net, 1, 2, ECHO).await, Ok(b"hi".to_vec()));
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_detached_node_refuses_connections_and_a_missing_channel_is_refused() {
    let net = three();
    net.detach(3);
    assert!(matches!(call(&net, 1, 3, ECHO).await, Err(CallError::NotSent { target: 3, .. })));
    net.attach(3, Channel::Raft, Arc::new(ScriptedPeer { channel: Channel::Raft }));
    let refused = call(&net, 1, 3, ECHO).await;
    assert!(
        matches!(&refused, Err(CallError::Refused { target: 3, refusal }) if refusal.kind == RefusalKind::Malformed),
        "{refused:?}"
    );
    assert_eq!(call(&net, 1, 3, Route::raft("echo")).await, Ok(b"hi".to_vec()));
}

#[tokio::test(start_paused = true)]
async fn replies_are_counted_by_sender_receiver_and_route() {
    let net = three();
    let sync = Route::distro("echo");
    let append = Route::raft("echo");
    for _ in 0..3 {
        call(&net, 1, 2, sync).await.unwrap();
    }
    call(&net, 3, 2, sync).await.unwrap();
    call(&net, 1, 2, append).await.unwrap();
    // Refused and lost calls deliver nothing.
    call(&net, 1, 2, Route::distro("refuse")).await.unwrap_err();
    net.isolate(3);
    call(&net, 3, 2, sync).await.unwrap_err();

    assert_eq!(net.delivered(1, 2, sync), 3);
    assert_eq!(net.delivered(3, 2, sync), 1);
    assert_eq!(net.delivered(2, 1, sync), 0);
    assert_eq!(net.delivered(1, 2, append), 1);
    assert_eq!(net.delivered_all(sync), 4);
    assert_eq!(net.delivered(1, 2, Route::distro("refuse")), 0);
}
