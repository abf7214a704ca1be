//! The HTTP side of a Nacos instance list: the blocking wait (`index`,
//! `wait`) and the read fence (`consistency`), then the hosts every front
//! end answers ([`janus_nacos::instance::hosts`]).

use janus_core::service::ReadFence;
use janus_nacos::NacosError;
use janus_nacos::instance::{self, HostList, HostsQuery};
use serde::{Serialize, Serializer};

use crate::AppState;
use crate::{consistency, watch};

/// What an instance list over HTTP asks for.
pub(crate) struct ListQuery {
    /// The hosts asked for.
    pub(crate) hosts: HostsQuery,
    /// A blocking query: answer once the service's revision is not this one,
    /// or when the wait ends.
    pub(crate) index: Option<u64>,
    /// The wait of a blocking query as written (`30s`; see [`watch::wait_for`]).
    pub(crate) wait: Option<String>,
    /// `local` or `linearizable` as written (see [`consistency::fence`]).
    pub(crate) consistency: Option<String>,
}

/// The hosts and the read's fence. It serializes as the `ServiceInfo`;
/// Nacos v1 tells the rest in headers.
pub(crate) struct FencedHostList {
    pub(crate) hosts: HostList,
    pub(crate) fence: ReadFence,
}

impl Serialize for FencedHostList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.hosts.serialize(serializer)
    }
}

/// The instances of a service (also a blocking query), from the list cache
/// while the service's revision is unchanged.
pub(crate) async fn list(state: &AppState, query: ListQuery) -> Result<FencedHostList, NacosError> {
    let ListQuery { hosts, index, wait, consistency } = query;
    watch::block_on_service::<NacosError>(&*state.registry, &hosts.key, index, wait.as_deref(), state).await?;
    let fence = consistency::fence(state, &hosts.key.namespace, consistency.as_deref()).await?;
    Ok(FencedHostList { hosts: instance::hosts(&state.nacos, hosts)?, fence })
}
