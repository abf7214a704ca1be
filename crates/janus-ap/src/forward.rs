//! [`Forwarders`]: client writes on their way to the instances' owners.
//!
//! One bounded queue and one task per peer. The task takes every write
//! queued for that peer (up to the batch size) and sends them as one message,
//! with up to [`IN_FLIGHT`] messages outstanding, so under load many writes
//! share one round trip. The receiver applies them itself and never forwards
//! again (no loops). A write whose owner does not answer within the forward
//! timeout, or whose queue is full, is handed back and applied locally.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use janus_core::{NodeId, RegistryError};
use janus_distro::MessageKind;
use janus_distro::message::{Forward, ForwardOp, ForwardOutcome, ForwardReply, decode, encode};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, debug};

use crate::cluster::{Cluster, Counters};

/// Messages outstanding to one peer at once.
const IN_FLIGHT: usize = 4;

/// Writes waiting per peer before new ones are applied locally instead.
const QUEUE: usize = 4096;

type Answer = Option<Result<ForwardOutcome, RegistryError>>;

struct Pending {
    op: ForwardOp,
    reply: oneshot::Sender<Answer>,
}

/// The per-peer forwarding queues.
#[derive(Debug, Default)]
pub(crate) struct Forwarders {
    queues: HashMap<NodeId, mpsc::Sender<Pending>>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").field("op", &self.op).finish_non_exhaustive()
    }
}

impl Forwarders {
    /// One queue and task per peer of `cluster`, stopping with `shutdown`.
    pub(crate) fn start(cluster: &Arc<Cluster>, shutdown: &CancellationToken) -> Self {
        let mut queues = HashMap::new();
        for peer in cluster.wake.keys().copied() {
            let (tx, rx) = mpsc::channel(QUEUE);
            queues.insert(peer, tx);
            let span = tracing::info_span!("ap_forward", peer);
            tokio::spawn(run(cluster.clone(), peer, rx, shutdown.clone()).instrument(span));
        }
        Self { queues }
    }

    /// Sends `op` to `owner` and waits for its result; `None` if the owner
    /// did not answer in time (or its queue is full): apply it locally then.
    pub(crate) async fn forward(&self, owner: NodeId, op: ForwardOp, timeout_ms: u64) -> Answer {
        let queue = self.queues.get(&owner)?;
        let (reply, answer) = oneshot::channel();
        queue.try_send(Pending { op, reply }).ok()?;
        match tokio::time::timeout(Duration::from_millis(timeout_ms), answer).await {
            Ok(Ok(answer)) => answer,
            _ => None,
        }
    }
}

async fn run(cluster: Arc<Cluster>, peer: NodeId, mut queue: mpsc::Receiver<Pending>, shutdown: CancellationToken) {
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        let first = tokio::select! {
            pending = queue.recv() => match pending {
                Some(pending) => pending,
                None => return,
            },
            () = shutdown.cancelled() => return,
        };
        let Ok(permit) = permits.clone().acquire_owned().await else { return };
        let mut batch = vec![first];
        while batch.len() < cluster.config.forward_batch {
            match queue.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        let cluster = cluster.clone();
        tokio::spawn(
            async move {
                send(&cluster, peer, batch).await;
                drop(permit);
            }
            .in_current_span(),
        );
    }
}

async fn send(cluster: &Cluster, peer: NodeId, batch: Vec<Pending>) {
    let (ops, replies): (Vec<ForwardOp>, Vec<oneshot::Sender<Answer>>) =
        batch.into_iter().map(|p| (p.op, p.reply)).unzip();
    let count = ops.len();
    let results = call(cluster, peer, ops).await;
    match results {
        Some(results) if results.len() == count => {
            Counters::add(&cluster.counters.forwarded, count as u64);
            for (reply, result) in replies.into_iter().zip(results) {
                // The writer may have given up (timed out) already.
                let _ = reply.send(Some(result));
            }
        }
        _ => {
            for reply in replies {
                let _ = reply.send(None);
            }
        }
    }
}

async fn call(
    cluster: &Cluster,
    peer: NodeId,
    ops: Vec<ForwardOp>,
) -> Option<Vec<Result<ForwardOutcome, RegistryError>>> {
    let addr = cluster.membership.lock().addr(peer)?.to_owned();
    let body = encode(&Forward { from: cluster.me, ops }).ok()?;
    let timeout = Duration::from_millis(cluster.config.forward_timeout_ms);
    match cluster.transport.call(peer, addr, MessageKind::Forward, body, timeout).await {
        Ok(reply) => decode::<ForwardReply>(&reply).ok().map(|r| r.results),
        Err(error) => {
            debug!(peer, %error, "forwarding to the owner failed; the writes are applied here");
            None
        }
    }
}
