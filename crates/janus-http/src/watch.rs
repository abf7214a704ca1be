//! Watches: blocking-query parameters (`?index=N&wait=30s`) and the
//! Server-Sent Events stream of changes.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use janus_api::native::ChangeEvent;
use janus_core::name::{GroupName, NamespaceId, ServiceKey, ServiceName};
use janus_core::{Change, RegistryError, RegistryService};
use rand::Rng;
use serde::Deserialize;
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::convert;
use crate::error::ApiError;
use crate::extract::{Path, Query};

/// Parses a Consul-style duration: `250ms`, `30s`, `5m`, `1h`, or bare seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, ApiError> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let bad = || {
        ApiError::invalid(format!(
            "invalid wait: must look like 250ms, 30s, 5m or 1h, or be a bare number of seconds such as 30, got {text:?}"
        ))
    };
    let value: u64 = digits.parse().map_err(|_| bad())?;
    let millis = match unit {
        "ms" => value,
        "" | "s" => value.saturating_mul(1000),
        "m" => value.saturating_mul(60_000),
        "h" => value.saturating_mul(3_600_000),
        _ => return Err(bad()),
    };
    Ok(Duration::from_millis(millis))
}

/// The wait of a blocking query: as asked (or the default), plus up to 1/16 of
/// jitter so that synchronized clients spread out, capped at the maximum.
pub(crate) fn wait_for(requested: Option<&str>, default: Duration, max: Duration) -> Result<Duration, ApiError> {
    let wait = match requested {
        Some(text) => parse_duration(text)?,
        None => default,
    };
    let wait = wait.min(max);
    let jitter_ms = u64::try_from(wait.as_millis() / 16).unwrap_or(0);
    let jitter = if jitter_ms > 0 { rand::rng().random_range(0..=jitter_ms) } else { 0 };
    Ok((wait + Duration::from_millis(jitter)).min(max))
}

/// Blocks on a service if the query asked for it.
pub(crate) async fn block_on_service<E>(
    registry: &dyn RegistryService,
    key: &ServiceKey,
    index: Option<u64>,
    wait: Option<&str>,
    state: &AppState,
) -> Result<(), E>
where
    E: From<ApiError> + From<RegistryError>,
{
    if let Some(index) = index {
        let wait = wait_for(wait, state.config.default_wait, state.config.max_wait)?;
        registry.namespace(&key.namespace)?;
        tokio::select! {
            _ = registry.wait_service(key, index, wait) => {}
            () = state.shutdown.cancelled() => {}
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
pub(crate) struct EventQuery {
    group: Option<String>,
    service: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ServiceEventQuery {
    group: Option<String>,
}

/// Which changes a stream forwards.
struct Filter {
    namespace: NamespaceId,
    group: Option<GroupName>,
    service: Option<ServiceName>,
}

impl Filter {
    fn matches(&self, change: &Change) -> bool {
        if change.namespace != self.namespace {
            return false;
        }
        let Some(key) = &change.service else {
            return self.group.is_none() && self.service.is_none();
        };
        self.group.as_ref().is_none_or(|g| *g == key.group) && self.service.as_ref().is_none_or(|s| *s == key.service)
    }
}

/// `GET /v1/namespaces/{ns}/events[?group=&service=]`.
pub(crate) async fn namespace_events(
    State(state): State<AppState>,
    Path(ns): Path<String>,
    Query(query): Query<EventQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let filter = Filter {
        namespace: NamespaceId::new(&ns)?,
        group: query.group.as_deref().map(GroupName::new).transpose()?,
        service: query.service.as_deref().map(ServiceName::new).transpose()?,
    };
    open_stream(&state, filter)
}

/// `GET /v1/namespaces/{ns}/services/{service}/events[?group=]`.
pub(crate) async fn service_events(
    State(state): State<AppState>,
    Path((ns, service)): Path<(String, String)>,
    Query(query): Query<ServiceEventQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let key = convert::service_key(&ns, query.group.as_deref(), &service)?;
    open_stream(&state, Filter { namespace: key.namespace, group: Some(key.group), service: Some(key.service) })
}

fn open_stream(
    state: &AppState,
    filter: Filter,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>> + use<>>, ApiError> {
    let info = state.registry.namespace(&filter.namespace)?;
    let Ok(permit) = state.watchers.clone().try_acquire_owned() else {
        state.metrics.shed.inc();
        return Err(ApiError::overloaded("too many open watches; retry shortly"));
    };
    let receiver = state.registry.subscribe();
    let hello = serde_json::json!({
        "namespace": info.spec.id.as_str(),
        "mode": info.spec.mode.as_str(),
        "revision": info.revision,
    });
    let hello = Event::default().event("ready").data(hello.to_string());
    let stream = EventStream {
        receiver,
        filter: Arc::new(filter),
        _permit: permit,
        hello: Some(hello),
        shutdown: state.shutdown.clone(),
    };
    Ok(Sse::new(futures_util::stream::unfold(stream, EventStream::next)).keep_alive(KeepAlive::default()))
}

/// The state of one event stream; dropping it frees its watcher permit.
struct EventStream {
    receiver: janus_core::watch::ChangeReceiver,
    filter: Arc<Filter>,
    _permit: OwnedSemaphorePermit,
    hello: Option<Event>,
    shutdown: CancellationToken,
}

impl EventStream {
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        if let Some(hello) = self.hello.take() {
            return Some((Ok(hello), self));
        }
        loop {
            let received = tokio::select! {
                received = self.receiver.recv() => received,
                () = self.shutdown.cancelled() => return None,
            };
            match received {
                Ok(change) if self.filter.matches(&change) => {
                    let event = to_wire(&change);
                    let data = serde_json::to_string(&event).unwrap_or_default();
                    let sse = Event::default().event("change").id(change.revision.to_string()).data(data);
                    return Some((Ok(sse), self));
                }
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => {
                    // The subscriber fell behind the bounded buffer: say so and go on from the newest change.
                    let sse = Event::default().event("lagged").data(format!("{{\"missed\":{missed}}}"));
                    return Some((Ok(sse), self));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

fn to_wire(change: &Change) -> ChangeEvent {
    ChangeEvent {
        revision: change.revision,
        namespace: change.namespace.to_string(),
        group: change.service.as_ref().map(|k| k.group.to_string()),
        service: change.service.as_ref().map(|k| k.service.to_string()),
        kind: change.kind.as_str().to_owned(),
        instance: change.instance.as_ref().map(|i| std::net::SocketAddr::new(i.ip, i.port).to_string()),
        cluster: change.instance.as_ref().map(|i| i.cluster.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 days").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn waits_are_capped_and_jittered_within_a_sixteenth() {
        let max = Duration::from_secs(600);
        assert_eq!(wait_for(Some("1h"), Duration::from_secs(300), max).unwrap(), max);
        for _ in 0..50 {
            let w = wait_for(Some("16s"), Duration::from_secs(300), max).unwrap();
            assert!(w >= Duration::from_secs(16) && w <= Duration::from_secs(17), "{w:?}");
        }
    }
}
