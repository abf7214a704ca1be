//! [`RegistryError`]: everything a registry operation can refuse, typed so each
//! front end maps it to its own protocol once (HTTP status, DNS rcode).

use crate::model::Mode;

/// Why a registry operation did not happen.
#[derive(Debug, Clone, PartialEq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum RegistryError {
    /// A field failed validation; `field` names it and `rule` says what is allowed.
    #[error("invalid {field}: {rule}")]
    Invalid {
        /// The field at fault, as the client spelled it.
        field: String,
        /// The rule it broke, e.g. "must be between 1 and 65535".
        rule: String,
    },
    /// The namespace does not exist.
    #[error("namespace '{0}' does not exist")]
    NamespaceNotFound(String),
    /// The service does not exist.
    #[error("service '{service}' does not exist in group '{group}' of namespace '{namespace}'")]
    ServiceNotFound {
        /// Namespace id.
        namespace: String,
        /// Group name.
        group: String,
        /// Service name.
        service: String,
    },
    /// The instance does not exist.
    #[error("instance {instance} does not exist in service '{service}' of namespace '{namespace}'")]
    InstanceNotFound {
        /// Namespace id.
        namespace: String,
        /// Service name, grouped (`group@@service`).
        service: String,
        /// `cluster/ip:port`.
        instance: String,
    },
    /// Creating something that already exists.
    #[error("{what} '{name}' already exists")]
    AlreadyExists {
        /// `namespace` or `service`.
        what: String,
        /// Its name.
        name: String,
    },
    /// Deleting something that still holds children.
    #[error("{what} '{name}' is not empty: {detail}")]
    NotEmpty {
        /// `namespace` or `service`.
        what: String,
        /// Its name.
        name: String,
        /// What it still holds.
        detail: String,
    },
    /// The write does not fit the namespace's mode.
    #[error("namespace '{namespace}' is {mode}: {detail}")]
    ModeMismatch {
        /// Namespace id.
        namespace: String,
        /// Its mode.
        mode: Mode,
        /// What was attempted and what would fit.
        detail: String,
    },
    /// The engine that owns this namespace's writes cannot take them now.
    #[error("namespace '{namespace}' ({mode}) cannot take writes: {reason}")]
    Unavailable {
        /// Namespace id.
        namespace: String,
        /// Its mode.
        mode: Mode,
        /// Why, e.g. no Raft quorum.
        reason: String,
    },
    /// A built-in object that cannot be changed or removed.
    #[error("{0}")]
    Forbidden(String),
    /// Authentication or authorization refused the request, or a change of
    /// users, tokens or grants was refused or could not be made
    /// ([`janus_auth::AuthError`] says which).
    #[error("{0}")]
    Auth(janus_auth::AuthError),
    /// A fault inside the server (a bug or a broken invariant), not the
    /// client's doing: the string says what went wrong and where. The code
    /// that creates one logs it at error level.
    #[error("internal error: {0}")]
    Internal(String),
}

impl RegistryError {
    /// Shorthand for [`RegistryError::Invalid`].
    pub fn invalid(field: &str, rule: impl Into<String>) -> Self {
        Self::Invalid { field: field.to_owned(), rule: rule.into() }
    }

    /// True for the three not-found variants.
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NamespaceNotFound(_) | Self::ServiceNotFound { .. } | Self::InstanceNotFound { .. })
    }
}
