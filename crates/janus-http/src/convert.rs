//! Conversions between core types and wire types, and parsing of shared
//! parameters (service keys, built by `janus_nacos::input`).

use janus_api::native;
use janus_core::RegistryError;
use janus_core::model::{Mode, NamespaceInfo, ServiceInfo};
use janus_core::name::ServiceKey;
use janus_core::select::Selected;

pub(crate) fn mode(mode: Mode) -> native::Mode {
    match mode {
        Mode::Ap => native::Mode::Ap,
        Mode::Cp => native::Mode::Cp,
    }
}

pub(crate) fn core_mode(mode: native::Mode) -> Mode {
    match mode {
        native::Mode::Ap => Mode::Ap,
        native::Mode::Cp => Mode::Cp,
    }
}

/// A namespace as the API shows it, with the number of instances its
/// services hold (`instance_count`, counted by the caller).
pub(crate) fn namespace(info: NamespaceInfo, instance_count: u64) -> native::Namespace {
    native::Namespace {
        id: info.spec.id.to_string(),
        name: info.spec.name,
        description: info.spec.description,
        mode: mode(info.spec.mode),
        dns: info.dns,
        service_count: info.service_count,
        instance_count,
        revision: info.revision,
    }
}

pub(crate) fn service(info: ServiceInfo) -> native::Service {
    native::Service {
        namespace: info.key.namespace.to_string(),
        mode: mode(info.mode),
        group: info.key.group.to_string(),
        name: info.key.service.to_string(),
        protect_threshold: info.settings.protect_threshold,
        metadata: info.settings.metadata,
        instance_count: info.instance_count,
        healthy_count: info.healthy_count,
        reach_protection_threshold: info.reach_protection_threshold,
        revision: info.revision,
        clusters: info
            .settings
            .clusters
            .into_iter()
            .map(|(name, settings)| {
                let cluster = native::Cluster {
                    health_check: health_check_out(settings.health_check),
                    metadata: settings.metadata,
                };
                (name.to_string(), cluster)
            })
            .collect(),
    }
}

/// A cluster's health check as the API shows it.
pub(crate) fn health_check_out(check: janus_core::model::HealthCheck) -> native::HealthCheck {
    match check {
        janus_core::model::HealthCheck::Tcp { port } => native::HealthCheck::Tcp { port },
        janus_core::model::HealthCheck::Http { path, port } => native::HealthCheck::Http { path, port },
        janus_core::model::HealthCheck::None => native::HealthCheck::None,
    }
}

/// A cluster's health check as the API takes it.
pub(crate) fn health_check_in(check: native::HealthCheck) -> janus_core::model::HealthCheck {
    match check {
        native::HealthCheck::Tcp { port } => janus_core::model::HealthCheck::Tcp { port },
        native::HealthCheck::Http { path, port } => janus_core::model::HealthCheck::Http { path, port },
        native::HealthCheck::None => janus_core::model::HealthCheck::None,
    }
}

pub(crate) fn instance(selected: &Selected, key: &ServiceKey) -> native::Instance {
    let inst = &selected.instance;
    native::Instance {
        instance_id: inst.instance_id(key),
        ip: inst.key.ip.to_string(),
        port: inst.key.port,
        cluster: inst.key.cluster.to_string(),
        weight: inst.weight,
        healthy: selected.healthy,
        enabled: inst.enabled,
        ephemeral: inst.ephemeral,
        metadata: inst.metadata.clone(),
        last_renew_ms: None,
        owner: None,
        connected_to: None,
    }
}

/// A service key from a namespace, an optional group (default `DEFAULT_GROUP`) and a name.
pub(crate) fn service_key(namespace: &str, group: Option<&str>, service: &str) -> Result<ServiceKey, RegistryError> {
    janus_nacos::input::service_key(Some(namespace), group, service)
}
