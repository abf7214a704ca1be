//! The console's namespaces: look them up, list, create, update and delete.
//!
//! Differences from Nacos: namespaces are `ap` unless created with the extra
//! `namespaceMode=cp`, a namespace's mode never changes (asking for another
//! is refused, 409), and a namespace that still holds services is not
//! deleted (409).

use janus_api::nacos::{ConsoleNamespace, ConsoleResult};
use janus_core::model::{Mode, NamespaceInfo, NamespaceSpec};
use janus_core::name::{NamespaceId, PUBLIC_NAMESPACE};
use serde::Serialize;

use crate::AppState;
use crate::convert;
use crate::error::NacosError;

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
pub(crate) fn list(state: &AppState) -> Vec<ConsoleNamespace> {
    state.registry.namespaces().into_iter().map(console).collect()
}

/// What the console's namespace lookup asks.
pub(crate) enum NamespaceQuery {
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
pub(crate) enum NamespaceLookup {
    Exists(bool),
    One(ConsoleNamespace),
    All(ConsoleResult<Vec<ConsoleNamespace>>),
}

/// Answers a [`NamespaceQuery`].
pub(crate) fn lookup(state: &AppState, query: NamespaceQuery) -> Result<NamespaceLookup, NacosError> {
    Ok(match query {
        NamespaceQuery::Exists(id) => {
            NamespaceLookup::Exists(NamespaceId::new(&id).is_ok_and(|id| state.registry.namespace(&id).is_ok()))
        }
        NamespaceQuery::One(id) => NamespaceLookup::One(console(state.registry.namespace(&id)?)),
        NamespaceQuery::All => NamespaceLookup::All(ConsoleResult { code: 200, message: None, data: list(state) }),
    })
}

/// Creates a namespace; answers `true`, as the console does.
pub(crate) async fn create(state: &AppState, spec: NamespaceSpec) -> Result<bool, NacosError> {
    state.registry.create_namespace(spec).await?;
    Ok(true)
}

/// A change of a namespace's name or description.
pub(crate) struct NamespaceUpdate {
    pub(crate) id: NamespaceId,
    /// The mode the client says the namespace has: refused unless it has it.
    pub(crate) mode: Option<Mode>,
    pub(crate) name: Option<String>,
    pub(crate) description: Option<String>,
}

/// Renames or redescribes a namespace; answers `true`, as the console does.
pub(crate) async fn update(state: &AppState, update: NamespaceUpdate) -> Result<bool, NacosError> {
    let NamespaceUpdate { id, mode, name, description } = update;
    if let Some(mode) = mode {
        convert::check_mode_unchanged(&*state.registry, &id, mode)?;
    }
    state.registry.update_namespace(id, name, description).await?;
    Ok(true)
}

/// Deletes an empty namespace; answers `true`, as the console does.
pub(crate) async fn delete(state: &AppState, id: NamespaceId) -> Result<bool, NacosError> {
    state.registry.delete_namespace(id).await?;
    Ok(true)
}
