//! [`Registry::check_command`]: what the node taking a request checks before
//! it proposes a [`Command`] to Raft.
//!
//! Applying a command may depend only on the replicated state (namespaces,
//! definitions, persistent instances), so that every node and every replay of
//! the log decides alike. Whatever else should refuse a write, such as the
//! ephemeral instances a namespace or service still holds, is checked here,
//! against this node's whole state, and a refused command is never proposed.

use super::Registry;
use crate::error::RegistryError;
use crate::model::Mode;
use crate::name::{NamespaceId, ServiceKey};
use crate::registry::cp::Command;
use crate::validate;

impl Registry {
    /// Whether `command` should be proposed, judged on this node's whole
    /// state (replicated and local). `Ok` does not promise the command will
    /// succeed when applied (the replicated state may change in between);
    /// `Err` is the refusal to answer without proposing.
    ///
    /// # Errors
    /// The refusal, as the command's own apply would word it, plus the
    /// refusals that depend on ephemeral data: a namespace that still holds
    /// services, a service that still holds instances.
    pub fn check_command(&self, command: &Command) -> Result<(), RegistryError> {
        match command {
            Command::CreateNamespace(spec) => {
                if self.namespaces.contains_key(&spec.id) {
                    return Err(RegistryError::AlreadyExists {
                        what: "namespace".to_owned(),
                        name: spec.id.to_string(),
                    });
                }
                Ok(())
            }
            Command::UpdateNamespace { id, name, description } => {
                if let Some(name) = name {
                    validate::check_text("name", name, validate::MAX_DISPLAY_NAME)?;
                }
                if let Some(description) = description {
                    validate::check_text("description", description, validate::MAX_DESCRIPTION)?;
                }
                self.mode_of(id).map(drop)
            }
            Command::DeleteNamespace { id } => self.check_namespace_deletion(id),
            Command::CreateService { key, .. } => {
                self.mode_of(&key.namespace)?;
                if self.services.contains_key(key) {
                    return Err(RegistryError::AlreadyExists { what: "service".to_owned(), name: key.to_string() });
                }
                Ok(())
            }
            Command::UpdateService { key, patch } => {
                if let Some(threshold) = patch.protect_threshold {
                    validate::check_protect_threshold(threshold)?;
                }
                if let Some(metadata) = &patch.metadata {
                    validate::check_metadata(metadata)?;
                }
                self.check_service_known(key)
            }
            Command::SetCluster { key, settings, .. } => {
                settings.health_check.validate()?;
                validate::check_metadata(&settings.metadata)?;
                self.check_service_known(key)
            }
            Command::DeleteService { key } => {
                self.check_service_known(key)?;
                let held = self.services.get(key).map_or(0, |e| e.read_recursive().instances.len());
                if held > 0 {
                    return Err(RegistryError::NotEmpty {
                        what: "service".to_owned(),
                        name: key.to_string(),
                        detail: format!("it holds {held} instance(s); deregister them first"),
                    });
                }
                Ok(())
            }
            Command::RegisterInstance { key, spec } => {
                spec.validate()?;
                self.check_mode(&key.namespace, spec)?;
                self.require_cp(&key.namespace)
            }
            Command::UpdateInstance { key, spec } => {
                spec.validate()?;
                self.check_mode(&key.namespace, spec)?;
                self.require_cp(&key.namespace)?;
                self.instance(key, &spec.key).map(drop)
            }
            Command::PatchInstance { key, instance, .. } | Command::DeregisterInstance { key, instance } => {
                self.require_cp(&key.namespace)?;
                self.instance(key, instance).map(drop)
            }
            Command::ReportHealth(_) => Ok(()),
            // Checked against the auth state by the node taking the request.
            Command::Auth(_) => Ok(()),
            Command::SetNamespaceDns { id, .. } => self.mode_of(id).map(drop),
        }
    }

    fn check_namespace_deletion(&self, id: &NamespaceId) -> Result<(), RegistryError> {
        if *id == NamespaceId::public() {
            return Err(RegistryError::Forbidden("namespace 'public' is built in and cannot be deleted".to_owned()));
        }
        let entry = self.namespaces.get(id).ok_or_else(|| RegistryError::NamespaceNotFound(id.to_string()))?;
        if !entry.services.is_empty() {
            return Err(RegistryError::NotEmpty {
                what: "namespace".to_owned(),
                name: id.to_string(),
                detail: format!("it holds {} service(s); delete them first", entry.services.len()),
            });
        }
        Ok(())
    }

    /// The service exists on this node, defined or implied.
    fn check_service_known(&self, key: &ServiceKey) -> Result<(), RegistryError> {
        self.mode_of(&key.namespace)?;
        if self.services.contains_key(key) { Ok(()) } else { Err(Self::service_not_found(key)) }
    }

    /// Instance writes through Raft are for `cp` namespaces only (the
    /// ephemeral instances of `ap` namespaces never travel through the log).
    pub(super) fn require_cp(&self, namespace: &NamespaceId) -> Result<(), RegistryError> {
        let mode = self.mode_of(namespace)?;
        if mode != Mode::Cp {
            return Err(RegistryError::ModeMismatch {
                namespace: namespace.to_string(),
                mode,
                detail: "its instances are ephemeral and are not written through Raft; register them as ephemeral"
                    .to_owned(),
            });
        }
        Ok(())
    }
}
