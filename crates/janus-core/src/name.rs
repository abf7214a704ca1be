//! Validated names and the keys built from them.
//!
//! Every name is checked once, when it enters the registry, and is then carried
//! as a cheap-to-clone `Arc<str>`. Keys order and hash by their parts.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use crate::error::RegistryError;
use crate::validate;

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $field:literal, $rule:expr) => {
        $(#[$doc])*
        ///
        /// Serialized as a plain string. Deserializing (the Raft log, snapshots,
        /// peers) checks the length and characters again but not the reserved
        /// names `.` and `..`, so data stored before they were reserved still
        /// loads; every name a client sends goes through [`Self::new`].
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(Arc<str>);

        impl TryFrom<String> for $name {
            type Error = RegistryError;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                validate::check_name($field, &value, &$rule)?;
                Ok(Self(Arc::from(value)))
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0.to_string()
            }
        }

        impl $name {
            /// Validates `value` against this name's rule; `.` and `..` are reserved.
            ///
            /// # Errors
            /// [`RegistryError::Invalid`] naming the field and the rule.
            pub fn new(value: &str) -> Result<Self, RegistryError> {
                validate::check_not_reserved($field, value)?;
                validate::check_name($field, value, &$rule)?;
                Ok(Self(Arc::from(value)))
            }

            /// The name as text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }
    };
}

name_type!(
    /// A namespace id such as `public`.
    NamespaceId, "namespace", validate::NAMESPACE_ID
);
name_type!(
    /// A group name such as `DEFAULT_GROUP`.
    GroupName, "group", validate::GROUP_NAME
);
name_type!(
    /// A service name (without the group).
    ServiceName, "service", validate::SERVICE_NAME
);
name_type!(
    /// A cluster name such as `DEFAULT`.
    ClusterName, "cluster", validate::CLUSTER_NAME
);

/// The namespace every registry starts with; its mode is `ap`.
pub const PUBLIC_NAMESPACE: &str = "public";
/// The group used when a request names none.
pub const DEFAULT_GROUP: &str = "DEFAULT_GROUP";
/// The cluster used when a request names none.
pub const DEFAULT_CLUSTER: &str = "DEFAULT";

// The constants above satisfy their own rules; a unit test checks it.
impl NamespaceId {
    /// `public`.
    #[must_use]
    pub fn public() -> Self {
        Self(Arc::from(PUBLIC_NAMESPACE))
    }
}

impl GroupName {
    /// `DEFAULT_GROUP`.
    #[must_use]
    pub fn default_group() -> Self {
        Self(Arc::from(DEFAULT_GROUP))
    }
}

impl ClusterName {
    /// `DEFAULT`.
    #[must_use]
    pub fn default_cluster() -> Self {
        Self(Arc::from(DEFAULT_CLUSTER))
    }
}

/// Identifies a service: namespace, group and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct ServiceKey {
    /// Namespace id.
    pub namespace: NamespaceId,
    /// Group name.
    pub group: GroupName,
    /// Service name.
    pub service: ServiceName,
}

impl ServiceKey {
    /// Builds a key from its parts.
    #[must_use]
    pub fn new(namespace: NamespaceId, group: GroupName, service: ServiceName) -> Self {
        Self { namespace, group, service }
    }

    /// Nacos's grouped form, `group@@service`.
    #[must_use]
    pub fn grouped_name(&self) -> String {
        format!("{}@@{}", self.group, self.service)
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}@@{}", self.namespace, self.group, self.service)
    }
}

/// Identifies an instance within its service: cluster, address and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct InstanceKey {
    /// Cluster name.
    pub cluster: ClusterName,
    /// Address.
    pub ip: IpAddr,
    /// Port, never 0.
    pub port: u16,
}

impl InstanceKey {
    /// Builds a key from its parts.
    #[must_use]
    pub fn new(cluster: ClusterName, ip: IpAddr, port: u16) -> Self {
        Self { cluster, ip, port }
    }

    /// Nacos's default instance id, `ip#port#cluster#group@@service`.
    #[must_use]
    pub fn default_instance_id(&self, service: &ServiceKey) -> String {
        format!("{}#{}#{}#{}@@{}", self.ip, self.port, self.cluster, service.group, service.service)
    }
}

impl fmt::Display for InstanceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            IpAddr::V4(ip) => write!(f, "{}/{}:{}", self.cluster, ip, self.port),
            IpAddr::V6(ip) => write!(f, "{}/[{}]:{}", self.cluster, ip, self.port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_names_pass_their_own_rules() {
        assert_eq!(NamespaceId::new(PUBLIC_NAMESPACE).unwrap(), NamespaceId::public());
        assert_eq!(GroupName::new(DEFAULT_GROUP).unwrap(), GroupName::default_group());
        assert_eq!(ClusterName::new(DEFAULT_CLUSTER).unwrap(), ClusterName::default_cluster());
    }

    #[test]
    fn default_instance_id_matches_nacos() {
        let key = ServiceKey::new(
            NamespaceId::public(),
            GroupName::default_group(),
            ServiceName::new("nacos.test.1").unwrap(),
        );
        let inst = InstanceKey::new(ClusterName::default_cluster(), "10.10.10.10".parse().unwrap(), 8888);
        assert_eq!(inst.default_instance_id(&key), "10.10.10.10#8888#DEFAULT#DEFAULT_GROUP@@nacos.test.1");
    }

    #[test]
    fn bad_names_are_refused_with_the_field_named() {
        let err = ServiceName::new("a@@b").unwrap_err();
        assert!(err.to_string().contains("service"), "{err}");
        assert!(GroupName::new("").is_err());
        assert!(ClusterName::new("has space").is_err());
        assert!(NamespaceId::new(&"x".repeat(129)).is_err());
    }

    #[test]
    fn dot_names_are_reserved_for_clients_but_load_from_storage() {
        for name in [".", ".."] {
            assert_eq!(NamespaceId::new(name).unwrap_err().to_string(), "invalid namespace: '.' and '..' are reserved");
            assert_eq!(GroupName::new(name).unwrap_err().to_string(), "invalid group: '.' and '..' are reserved");
            assert_eq!(ServiceName::new(name).unwrap_err().to_string(), "invalid service: '.' and '..' are reserved");
            assert_eq!(ClusterName::new(name).unwrap_err().to_string(), "invalid cluster: '.' and '..' are reserved");
            // Stored before the rule: still decodes.
            let stored: ServiceName = serde_json::from_str(&format!("{name:?}")).unwrap();
            assert_eq!(stored.as_str(), name);
        }
        assert!(ServiceName::new("a.b").is_ok());
        assert!(ServiceName::new("...").is_ok());
        let too_long: Result<ServiceName, _> = serde_json::from_str(&format!("{:?}", "x".repeat(256)));
        assert!(too_long.is_err(), "deserializing still checks the character and length rules");
    }
}
