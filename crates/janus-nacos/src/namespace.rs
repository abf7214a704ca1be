//! The console's namespaces: look them up, list, create, update and delete.
//!
//! Differences from Nacos: namespaces are `ap` unless created with the extra
//! `namespaceMode=cp`, a namespace's mode never changes (asking for another
//! is refused, 409), and a namespace that still holds services is not
//! deleted (409).

use janus_api::nacos::{ConsoleNamespace, ConsoleResult};
use janus_core::model::{Mode, NamespaceInfo, NamespaceSpec};
use janus_core::name::{NamespaceId, PUBLIC_NAMESPACE};
use janus_core::{RegistryError, RegistryService};
use serde::Serialize;

use crate::{NacosContext, NacosError};

/// A namespace as the console shows it: `public` with an empty id.
fn console(info: NamespaceInfo) -> ConsoleNamespace {
    let public = info.spec.id.as_str() == PUBLIC_NAMESPACE;
    ConsoleNamespace {
        namespace: if public { String::new() } else { info.spec.id.to_string() },
        namespace_show_name: info.spec.name,
        namespace_desc: info.spec.description,
        quota: 200,
        config_count: 0,
        kind: if public { 0 } else { 2 },
    }
}

/// Every namespace.
pub fn list(ctx: &NacosContext) -> Vec<ConsoleNamespace> {
    ctx.registry.namespaces().into_iter().map(console).collect()
}

/// What the console's namespace lookup asks.
pub enum NamespaceQuery {
    /// Whether the namespace of this id exists (an invalid id does not).
    Exists(String),
    /// One namespace.
    One(NamespaceId),
    /// Every namespace.
    All,
}

/// The answer of a [`NamespaceQuery`], by kind: `true`/`false`, one
/// namespace, or every namespace in the console's `{code: 200, message, data}`.
#[derive(Serialize)]
#[serde(untagged)]
pub enum NamespaceLookup {
    Exists(bool),
    One(ConsoleNamespace),
    All(ConsoleResult<Vec<ConsoleNamespace>>),
}

/// Answers a [`NamespaceQuery`].
pub fn lookup(ctx: &NacosContext, query: NamespaceQuery) -> Result<NamespaceLookup, NacosError> {
    Ok(match query {
        NamespaceQuery::Exists(id) => {
            NamespaceLookup::Exists(NamespaceId::new(&id).is_ok_and(|id| ctx.registry.namespace(&id).is_ok()))
        }
        NamespaceQuery::One(id) => NamespaceLookup::One(console(ctx.registry.namespace(&id)?)),
        NamespaceQuery::All => NamespaceLookup::All(ConsoleResult { code: 200, message: None, data: list(ctx) }),
    })
}

/// Creates a namespace; answers `true`, as the console does.
pub async fn create(ctx: &NacosContext, spec: NamespaceSpec) -> Result<bool, NacosError> {
    ctx.registry.create_namespace(spec).await?;
    Ok(true)
}

/// A change of a namespace's name or description.
pub struct NamespaceUpdate {
    pub id: NamespaceId,
    /// The mode the client says the namespace has: refused unless it has it.
    pub mode: Option<Mode>,
    pub name: Option<String>,
    pub description: Option<String>,
}

/// Renames or redescribes a namespace; answers `true`, as the console does.
pub async fn update(ctx: &NacosContext, update: NamespaceUpdate) -> Result<bool, NacosError> {
    let NamespaceUpdate { id, mode, name, description } = update;
    if let Some(mode) = mode {
        check_mode_unchanged(&*ctx.registry, &id, mode)?;
    }
    ctx.registry.update_namespace(id, name, description).await?;
    Ok(true)
}

/// Deletes an empty namespace; answers `true`, as the console does.
pub async fn delete(ctx: &NacosContext, id: NamespaceId) -> Result<bool, NacosError> {
    ctx.registry.delete_namespace(id).await?;
    Ok(true)
}

/// Refuses a request to give namespace `id` the mode `asked` unless it has it
/// already: the mode is fixed at creation (Janus's native API keeps the same
/// rule).
///
/// # Errors
/// 404 for an unknown namespace; 409 (`ModeMismatch`) naming the namespace,
/// its mode and the one asked for.
pub fn check_mode_unchanged(
    registry: &dyn RegistryService,
    id: &NamespaceId,
    asked: Mode,
) -> Result<(), RegistryError> {
    let mode = registry.namespace(id)?.spec.mode;
    if asked == mode {
        return Ok(());
    }
    Err(RegistryError::ModeMismatch {
        namespace: id.to_string(),
        mode,
        detail: format!("the mode cannot change (asked for {asked}); create another namespace instead"),
    })
}
