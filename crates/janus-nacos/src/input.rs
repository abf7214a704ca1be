//! The typed-input builders every front end shares: a service key from
//! namespace, group and name; a cluster and a cluster filter; an instance
//! address; an instance spec with Nacos's defaults. Each front end reads its
//! own fields (HTTP parameters, gRPC JSON) and builds its inputs here, so
//! defaults and checks are the same everywhere.

use std::collections::BTreeMap;

use janus_core::model::InstanceSpec;
use janus_core::name::{ClusterName, GroupName, InstanceKey, NamespaceId, PUBLIC_NAMESPACE, ServiceKey, ServiceName};
use janus_core::{RegistryError, validate};

/// A service key from a namespace (default `public`), a group (default
/// `DEFAULT_GROUP`) and a name.
///
/// # Errors
/// An invalid namespace, group or service name.
pub fn service_key(namespace: Option<&str>, group: Option<&str>, service: &str) -> Result<ServiceKey, RegistryError> {
    let group = match group {
        Some(group) => GroupName::new(group)?,
        None => GroupName::default_group(),
    };
    let namespace = NamespaceId::new(namespace.unwrap_or(PUBLIC_NAMESPACE))?;
    Ok(ServiceKey::new(namespace, group, ServiceName::new(service)?))
}

/// A cluster name, default `DEFAULT` (also for an empty one).
///
/// # Errors
/// An invalid cluster name.
pub fn cluster(name: Option<&str>) -> Result<ClusterName, RegistryError> {
    match name {
        Some(name) if !name.is_empty() => Ok(ClusterName::new(name)?),
        _ => Ok(ClusterName::default_cluster()),
    }
}

/// A comma-separated cluster filter; empty means every cluster.
///
/// # Errors
/// An invalid cluster name in the list.
pub fn cluster_filter(list: Option<&str>) -> Result<Vec<ClusterName>, RegistryError> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    list.split(',').map(str::trim).filter(|c| !c.is_empty()).map(ClusterName::new).collect()
}

/// An instance's address: its cluster (default `DEFAULT`), IP and port.
///
/// # Errors
/// An invalid cluster name, IP address or port.
pub fn instance_key(ip: &str, port: i64, cluster_name: Option<&str>) -> Result<InstanceKey, RegistryError> {
    Ok(InstanceKey::new(cluster(cluster_name)?, validate::parse_ip(ip)?, validate::check_port(port)?))
}

/// What a registration says about an instance besides its address; absent
/// fields take Nacos's defaults ([`Default`]: weight 1, healthy, enabled).
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceFields {
    /// Weight; `None` is 1.
    pub weight: Option<f64>,
    /// Initial health.
    pub healthy: bool,
    /// Whether the instance takes traffic.
    pub enabled: bool,
    /// What the client asked for; `None`: whatever the namespace mode is.
    pub ephemeral: Option<bool>,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
    /// A custom instance id; `None`: the Nacos default id.
    pub custom_id: Option<String>,
}

impl Default for InstanceFields {
    fn default() -> Self {
        Self { weight: None, healthy: true, enabled: true, ephemeral: None, metadata: BTreeMap::new(), custom_id: None }
    }
}

/// What a registration of `instance` asks for; the address must be one
/// clients can connect to ([`validate::check_instance_ip`]). The registry
/// validates the rest when it applies the spec.
///
/// # Errors
/// An address clients cannot connect to (unspecified, multicast, …).
pub fn instance_spec(instance: InstanceKey, fields: InstanceFields) -> Result<InstanceSpec, RegistryError> {
    validate::check_instance_ip("ip", instance.ip)?;
    let InstanceFields { weight, healthy, enabled, ephemeral, metadata, custom_id } = fields;
    Ok(InstanceSpec { key: instance, weight: weight.unwrap_or(1.0), healthy, enabled, ephemeral, metadata, custom_id })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::{InstanceFields, cluster, cluster_filter, instance_key, instance_spec, service_key};

    #[test]
    fn absent_names_take_nacos_defaults() {
        let key = service_key(None, None, "pay").unwrap();
        assert_eq!(
            (key.namespace.as_str(), key.group.as_str(), key.service.as_str()),
            ("public", "DEFAULT_GROUP", "pay")
        );
        assert_eq!(cluster(Some("")).unwrap().as_str(), "DEFAULT");
        assert!(cluster_filter(Some(" , ")).unwrap().is_empty());
        assert_eq!(cluster_filter(Some("a, b")).unwrap().len(), 2);
    }

    #[test]
    fn a_spec_has_nacos_defaults_and_refuses_an_unreachable_address() {
        let spec = instance_spec(instance_key("10.0.0.1", 80, None).unwrap(), InstanceFields::default()).unwrap();
        assert_eq!((spec.weight, spec.healthy, spec.enabled, spec.ephemeral), (1.0, true, true, None));
        assert!(instance_spec(instance_key("0.0.0.0", 80, None).unwrap(), InstanceFields::default()).is_err());
        assert!(instance_key("10.0.0.1", 0, None).is_err());
    }
}
