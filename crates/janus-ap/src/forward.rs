//! Client writes on their way to the instances' owners.
//!
//! One bounded queue and one task per peer (started with the peer's link,
//! see `ApEngine::start_peer`). The task takes every write
//! queued for that peer (up to the batch size) and sends them as one message,
//! with up to [`IN_FLIGHT`] messages outstanding, so under load many writes
//! share one round trip. The receiver applies them itself and never forwards
//! again (no loops). A write whose owner does not answer within the forward
//! timeout, or whose queue is full, is handed back and applied locally.
//!
//! A caller either waits for the owner's answer ([`forward`]) or hands the
//! write over with what to do with the answer ([`relay`]: a heartbeat of a
//! healthy replica, answered to the client at once).

use std::sync::Arc;
use std::time::Duration;

use janus_core::{NodeId, RegistryError};
use janus_distro::MessageKind;
use janus_distro::message::{Forward, ForwardOp, ForwardOutcome, ForwardReply, decode, encode};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, debug};

use crate::cluster::{Cluster, Counters};
use crate::transport::route;

/// Messages outstanding to one peer at once.
const IN_FLIGHT: usize = 4;

/// Writes waiting per peer before new ones are applied locally instead.
const QUEUE: usize = 4096;

/// The owner's result, or `None` when it did not answer (apply locally then).
pub(crate) type Answer = Option<Result<ForwardOutcome, RegistryError>>;

/// What happens with the owner's answer to a write.
type OnAnswer = Box<dyn FnOnce(Answer) + Send>;

/// A write queued for its owner, and where its result goes.
pub(crate) struct Pending {
    op: ForwardOp,
    reply: OnAnswer,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").field("op", &self.op).finish_non_exhaustive()
    }
}

/// Starts the forwarder of `peer` (under `span`), which stops with `stop`;
/// returns its queue.
pub(crate) fn start(
    cluster: &Arc<Cluster>,
    peer: NodeId,
    stop: CancellationToken,
    span: tracing::Span,
) -> mpsc::Sender<Pending> {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(run(cluster.clone(), peer, rx, stop).instrument(span));
    tx
}

/// Sends `op` to `owner` and waits for its result; `None` if the owner did
/// not answer in time, its queue is full or it is not a peer: apply it
/// locally then.
pub(crate) async fn forward(cluster: &Cluster, owner: NodeId, op: ForwardOp, timeout_ms: u64) -> Answer {
    let (reply, answer) = oneshot::channel();
    let on_answer: OnAnswer = Box::new(move |answer| {
        // The writer may have given up (timed out) already.
        let _ = reply.send(answer);
    });
    relay(cluster, owner, op, on_answer).ok()?;
    match tokio::time::timeout(Duration::from_millis(timeout_ms), answer).await {
        Ok(Ok(answer)) => answer,
        _ => None,
    }
}

/// Queues `op` for `owner` without waiting: `on_answer` gets the owner's
/// answer, or `None` if the owner did not answer within the forward
/// timeout. Hands `op` back if `owner` is not a peer or its queue is full.
pub(crate) fn relay(
    cluster: &Cluster,
    owner: NodeId,
    op: ForwardOp,
    on_answer: impl FnOnce(Answer) + Send + 'static,
) -> Result<(), Box<ForwardOp>> {
    let Some(queue) = cluster.links.read().get(&owner).map(|link| link.forward.clone()) else {
        return Err(Box::new(op));
    };
    queue.try_send(Pending { op, reply: Box::new(on_answer) }).map_err(|error| Box::new(error.into_inner().op))
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
    let (ops, replies): (Vec<ForwardOp>, Vec<OnAnswer>) = batch.into_iter().map(|p| (p.op, p.reply)).unzip();
    let count = ops.len();
    let results = call(cluster, peer, ops).await;
    match results {
        Some(results) if results.len() == count => {
            Counters::add(&cluster.counters.forwarded, count as u64);
            for (reply, result) in replies.into_iter().zip(results) {
                reply(Some(result));
            }
        }
        _ => {
            for reply in replies {
                reply(None);
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
    match cluster.transport.call(peer, addr, route(MessageKind::Forward), body, timeout).await {
        Ok(reply) => decode::<ForwardReply>(&reply).ok().map(|r| r.results),
        Err(error) => {
            debug!(peer, %error, "forwarding to the owner failed; the writes are applied here");
            None
        }
    }
}
