//! Serving a request at the leader: try it on this node; if another node
//! leads, send it there over the peer transport. Writes, read fences and
//! membership changes all go this way.

use std::fmt::{Debug, Display};
use std::future::Future;

use openraft::TryAsRef;
use openraft::error::{ForwardToLeader, RaftError};
use serde::Serialize;

use crate::TypeConfig;
use crate::engine::{CpEngine, CpWriteError, LEADER_POLL};
use crate::network::{Failure, RpcKind, encode};

/// Why this node did not serve a request itself.
pub(crate) enum Redirect {
    /// Another node leads, at this address.
    To { leader: u64, addr: String },
    /// An election is under way.
    NoLeader,
    /// Raft refused the request for another reason.
    Refused(String),
}

impl Redirect {
    /// Reads an openraft error; `context` prefixes a refusal.
    pub(crate) fn from_raft<E>(error: &RaftError<TypeConfig, E>, context: &str) -> Self
    where
        E: Debug + Display + TryAsRef<ForwardToLeader<TypeConfig>>,
    {
        match error.forward_to_leader() {
            Some(ForwardToLeader { leader_id: Some(leader), leader_node: Some(node), .. }) => {
                Self::To { leader: *leader, addr: node.addr.clone() }
            }
            Some(_) => Self::NoLeader,
            None => Self::Refused(format!("{context}: {error}")),
        }
    }
}

/// Who served a request.
pub(crate) enum Served<T> {
    /// This node, with this result.
    Here(T),
    /// The leader, with this encoded reply.
    AtLeader(Vec<u8>),
}

impl CpEngine {
    /// Runs `here` on this node; when another node leads, sends `message` as
    /// a `kind` message to it instead (encoded only then). While no leader is known, or the message
    /// certainly never left this node (the leader it knew is gone), it waits
    /// and tries again: the caller bounds the whole with its deadline.
    pub(crate) async fn at_leader<T, M, Here, Fut>(
        &self,
        kind: RpcKind,
        message: &M,
        deadline: tokio::time::Instant,
        mut here: Here,
    ) -> Result<Served<T>, CpWriteError>
    where
        M: Serialize,
        Here: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Redirect>>,
    {
        loop {
            match here().await {
                Ok(result) => return Ok(Served::Here(result)),
                Err(Redirect::To { leader, addr }) => {
                    let body = encode(message)
                        .map_err(|e| CpWriteError::Malformed(format!("cannot encode a {kind} message: {e}")))?;
                    let timeout = deadline.saturating_duration_since(tokio::time::Instant::now());
                    let called = self.transport().call(leader, addr, kind.route(), body, timeout).await;
                    match called.map_err(Failure::from) {
                        Ok(reply) => return Ok(Served::AtLeader(reply)),
                        // Certainly not acted on: wait for (news of) the leader and try again.
                        Err(Failure::Resend(_)) => tokio::time::sleep(LEADER_POLL).await,
                        Err(Failure::Refused(error)) => {
                            return Err(CpWriteError::Refused(format!(
                                "the Raft leader did not take a {kind} message: {error}"
                            )));
                        }
                        Err(Failure::Lost(error)) => return Err(CpWriteError::Unreachable { kind, error }),
                    }
                }
                Err(Redirect::NoLeader) => tokio::time::sleep(LEADER_POLL).await,
                Err(Redirect::Refused(reason)) => return Err(CpWriteError::Refused(reason)),
            }
        }
    }
}
