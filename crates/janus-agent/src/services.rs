//! The services the agent reaches, shared by the proxy and the local DNS:
//! one watched copy of each (the SDK's [`Discovery`]), at most
//! `proxy.max_services` of them, in the proxy's namespace and group unless a
//! name says otherwise.

use std::sync::Arc;

use janus_client::ServiceRef;
use janus_client::balance::BalancerConfig;
use janus_client::discovery::{Discovery, DiscoveryConfig, WatchedService};

use crate::config::ProxyConfig;

/// The watched services.
pub(crate) struct Services {
    discovery: Discovery,
    namespace: String,
    group: Option<String>,
    max: usize,
}

/// `proxy.max_services` services are watched already.
#[derive(Debug)]
pub(crate) struct TooMany(pub(crate) usize);

/// Letters, digits and `_ . : -`: the registry's rule for names.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

impl Services {
    pub(crate) fn new(registry: janus_client::Client, namespace: String, config: &ProxyConfig) -> Self {
        let balancer =
            BalancerConfig { strategy: config.strategy.into(), zone: config.zone.clone(), ..BalancerConfig::default() };
        let discovery = Discovery::new(
            registry,
            DiscoveryConfig { balancer, failover_dir: config.failover_dir.clone(), ..DiscoveryConfig::default() },
        );
        Self { discovery, namespace, group: config.group.clone(), max: config.max_services }
    }

    /// `service` in `namespace` and `group` (the defaults when `None`);
    /// `None` when a name breaks the registry's rule.
    pub(crate) fn service_ref(
        &self,
        service: &str,
        namespace: Option<&str>,
        group: Option<&str>,
    ) -> Option<ServiceRef> {
        let namespace = namespace.unwrap_or(&self.namespace);
        let group = group.map(str::to_owned).or_else(|| self.group.clone());
        if !valid_name(service) || !valid_name(namespace) || group.as_deref().is_some_and(|g| !valid_name(g)) {
            return None;
        }
        Some(ServiceRef::new(namespace, service).in_group(group))
    }

    /// The watched copy of `service`, watched from now on if there is room.
    pub(crate) async fn watched(&self, service: &ServiceRef) -> Result<Arc<WatchedService>, TooMany> {
        if !self.discovery.is_watched(service) && self.discovery.watched_count() >= self.max {
            return Err(TooMany(self.max));
        }
        Ok(self.discovery.service(service).await)
    }
}
