//! Namespaces, services and instances, and the specs that create and change them.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::RegistryError;
use crate::name::{ClusterName, InstanceKey, NamespaceId, ServiceKey};
use crate::validate;

/// Instance and service metadata.
pub type Metadata = BTreeMap<String, String>;

/// Consistency mode of a namespace, fixed at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Mode {
    /// Ephemeral, heartbeat-leased instances; available under partition.
    Ap,
    /// Persistent instances on Raft; linearizable.
    Cp,
}

impl Mode {
    /// `ap` or `cp`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ap => "ap",
            Self::Cp => "cp",
        }
    }

    /// Whether instances in this mode are ephemeral.
    #[must_use]
    pub fn is_ephemeral(self) -> bool {
        self == Self::Ap
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a namespace is created with.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NamespaceSpec {
    /// Namespace id.
    pub id: NamespaceId,
    /// Display name (defaults to the id).
    pub name: String,
    /// Free text.
    pub description: String,
    /// Mode, fixed for ever.
    pub mode: Mode,
}

impl NamespaceSpec {
    /// Validates the free-text fields.
    ///
    /// # Errors
    /// [`RegistryError::Invalid`] naming `name` or `description`.
    pub fn new(
        id: NamespaceId,
        name: Option<String>,
        description: Option<String>,
        mode: Mode,
    ) -> Result<Self, RegistryError> {
        let name = name.unwrap_or_else(|| id.to_string());
        validate::check_text("name", &name, validate::MAX_DISPLAY_NAME)?;
        let description = description.unwrap_or_default();
        validate::check_text("description", &description, validate::MAX_DESCRIPTION)?;
        Ok(Self { id, name, description, mode })
    }
}

/// A namespace as read from the registry.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NamespaceInfo {
    /// Id, name, description and mode.
    pub spec: NamespaceSpec,
    /// Whether DNS answers for its services (the DNS access rule).
    pub dns: bool,
    /// Number of services.
    pub service_count: u64,
    /// Revision: passes every change to the namespace or its services.
    pub revision: u64,
}

/// Service-level settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ServiceSettings {
    /// Nacos protect threshold in `[0, 1]`.
    pub protect_threshold: f64,
    /// Free-form metadata.
    pub metadata: Metadata,
    /// Settings of the service's clusters; a cluster not listed has the defaults.
    pub clusters: BTreeMap<ClusterName, ClusterSettings>,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self { protect_threshold: 0.0, metadata: Metadata::new(), clusters: BTreeMap::new() }
    }
}

/// How the server checks the persistent instances of a cluster (Nacos's
/// cluster `healthChecker`). Ephemeral instances follow their heartbeats.
// Externally tagged (serde's default): the Raft log's encoding (postcard) cannot
// decode internally tagged enums. The APIs have their own shapes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum HealthCheck {
    /// A TCP connect to the instance (the default, as in Nacos).
    Tcp {
        /// Port to connect to; the instance's own when absent.
        port: Option<u16>,
    },
    /// An HTTP GET that must answer 200.
    Http {
        /// Path, with query.
        path: String,
        /// Port; the instance's own when absent.
        port: Option<u16>,
    },
    /// No checks: health is set by hand (`PUT /nacos/v1/ns/health/instance`).
    None,
}

impl Default for HealthCheck {
    fn default() -> Self {
        Self::Tcp { port: None }
    }
}

impl HealthCheck {
    /// `tcp`, `http` or `none`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Tcp { .. } => "tcp",
            Self::Http { .. } => "http",
            Self::None => "none",
        }
    }

    /// Checks the fields.
    ///
    /// # Errors
    /// [`RegistryError::Invalid`] for port 0 or a path that is not an absolute path.
    pub fn validate(&self) -> Result<(), RegistryError> {
        let (Self::Tcp { port } | Self::Http { port, .. }) = self else { return Ok(()) };
        if *port == Some(0) {
            return Err(RegistryError::invalid("health_check.port", "must be between 1 and 65535"));
        }
        if let Self::Http { path, .. } = self
            && (!path.starts_with('/') || path.len() > 1024 || path.chars().any(char::is_control))
        {
            return Err(RegistryError::invalid(
                "health_check.path",
                "must be an absolute path of at most 1024 characters",
            ));
        }
        Ok(())
    }
}

/// Settings of one cluster of a service.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClusterSettings {
    /// How its persistent instances are checked.
    pub health_check: HealthCheck,
    /// Free-form metadata.
    pub metadata: Metadata,
}

impl ServiceSettings {
    /// Validates the settings.
    ///
    /// # Errors
    /// [`RegistryError::Invalid`] naming `protect_threshold` or `metadata`.
    pub fn new(protect_threshold: Option<f64>, metadata: Metadata) -> Result<Self, RegistryError> {
        let protect_threshold = validate::check_protect_threshold(protect_threshold.unwrap_or(0.0))?;
        validate::check_metadata(&metadata)?;
        Ok(Self { protect_threshold, metadata, clusters: BTreeMap::new() })
    }
}

/// A change to service settings; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ServicePatch {
    /// New protect threshold.
    pub protect_threshold: Option<f64>,
    /// New metadata (replaces the map).
    pub metadata: Option<Metadata>,
}

/// A service as read from the registry.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ServiceInfo {
    /// Which service.
    pub key: ServiceKey,
    /// Mode of its namespace.
    pub mode: Mode,
    /// Settings.
    pub settings: ServiceSettings,
    /// Number of instances.
    pub instance_count: u64,
    /// Enabled instances that are healthy.
    pub healthy_count: u64,
    /// Whether the protect threshold fires for the enabled instances (a list
    /// would show the unhealthy ones as healthy).
    pub reach_protection_threshold: bool,
    /// Revision of the service.
    pub revision: u64,
}

/// An instance as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Instance {
    /// Cluster, address, port.
    pub key: InstanceKey,
    /// Weight in `[0, 10000]`.
    pub weight: f64,
    /// Health: from the lease for ephemeral instances, from checks for persistent ones.
    pub healthy: bool,
    /// Whether it takes traffic.
    pub enabled: bool,
    /// True in `ap` namespaces.
    pub ephemeral: bool,
    /// Metadata.
    pub metadata: Metadata,
    /// Custom id; `None` means the Nacos default id.
    pub custom_id: Option<Box<str>>,
}

impl Instance {
    /// The id clients see: the custom one, or `ip#port#cluster#group@@service`.
    #[must_use]
    pub fn instance_id(&self, service: &ServiceKey) -> String {
        match &self.custom_id {
            Some(id) => id.to_string(),
            None => self.key.default_instance_id(service),
        }
    }
}

/// What a registration or full update carries, validated.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InstanceSpec {
    /// Cluster, address, port.
    pub key: InstanceKey,
    /// Weight in `[0, 10000]`.
    pub weight: f64,
    /// Initial health.
    pub healthy: bool,
    /// Enabled flag.
    pub enabled: bool,
    /// What the client asked for; `None` means "whatever the namespace mode is".
    pub ephemeral: Option<bool>,
    /// Metadata.
    pub metadata: Metadata,
    /// Custom id.
    pub custom_id: Option<String>,
}

impl InstanceSpec {
    /// An instance with Nacos's defaults: weight 1, healthy, enabled, no metadata.
    #[must_use]
    pub fn new(key: InstanceKey) -> Self {
        Self {
            key,
            weight: 1.0,
            healthy: true,
            enabled: true,
            ephemeral: None,
            metadata: Metadata::new(),
            custom_id: None,
        }
    }

    /// The instance this spec describes, stored under `key` (the spec's key,
    /// possibly with an interned cluster name).
    #[must_use]
    pub fn into_instance(self, key: InstanceKey, ephemeral: bool) -> Instance {
        Instance {
            key,
            weight: self.weight,
            healthy: self.healthy,
            enabled: self.enabled,
            ephemeral,
            metadata: self.metadata,
            custom_id: self.custom_id.map(String::into_boxed_str),
        }
    }

    /// Checks weight, metadata (with lease overrides) and custom id.
    ///
    /// # Errors
    /// [`RegistryError::Invalid`] naming the field.
    pub fn validate(&self) -> Result<(), RegistryError> {
        validate::check_weight(self.weight)?;
        validate::check_metadata(&self.metadata)?;
        LeaseOverrides::from_metadata(&self.metadata)?;
        if let Some(id) = &self.custom_id {
            if id.is_empty() {
                return Err(RegistryError::invalid("instance_id", "must not be empty when given"));
            }
            validate::check_text("instance_id", id, validate::MAX_INSTANCE_ID)?;
        }
        Ok(())
    }
}

/// A partial instance update; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InstancePatch {
    /// New weight.
    pub weight: Option<f64>,
    /// New health flag.
    pub healthy: Option<bool>,
    /// New enabled flag.
    pub enabled: Option<bool>,
    /// Entries merged into the metadata.
    pub metadata: Option<Metadata>,
    /// Metadata keys removed (after the merge).
    pub remove_metadata: Vec<String>,
}

/// Metadata key overriding the beat interval (ms).
pub const BEAT_INTERVAL_KEY: &str = "preserved.heart.beat.interval";
/// Metadata key overriding the unhealthy-after timeout (ms).
pub const BEAT_TIMEOUT_KEY: &str = "preserved.heart.beat.timeout";
/// Metadata key overriding the delete-after timeout (ms).
pub const DELETE_TIMEOUT_KEY: &str = "preserved.ip.delete.timeout";

/// Lease timings an instance asked for through its metadata.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeaseOverrides {
    /// `preserved.heart.beat.interval`.
    pub interval_ms: Option<u64>,
    /// `preserved.heart.beat.timeout`.
    pub unhealthy_after_ms: Option<u64>,
    /// `preserved.ip.delete.timeout`.
    pub delete_after_ms: Option<u64>,
}

impl LeaseOverrides {
    /// Reads the three Nacos keys.
    ///
    /// # Errors
    /// [`RegistryError::Invalid`] when a value is not whole milliseconds in range.
    pub fn from_metadata(metadata: &Metadata) -> Result<Self, RegistryError> {
        let read = |key: &str| metadata.get(key).map(|v| validate::parse_lease_ms(key, v)).transpose();
        Ok(Self {
            interval_ms: read(BEAT_INTERVAL_KEY)?,
            unhealthy_after_ms: read(BEAT_TIMEOUT_KEY)?,
            delete_after_ms: read(DELETE_TIMEOUT_KEY)?,
        })
    }
}
