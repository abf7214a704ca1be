//! Discovery: a local copy of each service a caller uses, kept current by a
//! blocking-query watch, so choosing an instance never waits on the network.
//!
//! [`Discovery::service`] starts watching a service the first time it is
//! asked for and waits for its first list (at most
//! [`DiscoveryConfig::first_list_timeout`]); every later call answers from
//! memory. The watch re-lists with `index`/`wait` (the server holds the
//! query until the service changes), so a change reaches the caller within
//! the watch latency; after an error it tries again with a growing pause
//! (the client fails over between its server addresses on its own).
//!
//! **Failover cache.** With [`DiscoveryConfig::failover_dir`] set, every
//! list is also written to disk (one JSON file per service, replaced
//! atomically). A caller that starts while no registry node answers serves
//! the last list from that file and says so ([`Source::FailoverCache`]);
//! the first answer from a registry replaces it. This is Nacos's failover
//! directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use janus_api::native::{Instance, InstanceList};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::balance::{Balancer, BalancerConfig, Pick};
use crate::{Client, ListOptions, ServiceRef};

/// How services are watched.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// How each service's instances are chosen.
    pub balancer: BalancerConfig,
    /// How long one blocking query may wait (default 60 s).
    pub wait: Duration,
    /// How long [`Discovery::service`] waits for a service's first list.
    pub first_list_timeout: Duration,
    /// The longest pause between attempts after errors (they start at 100 ms).
    pub max_retry_pause: Duration,
    /// Where the last list of each service is kept (`None`: nowhere).
    pub failover_dir: Option<PathBuf>,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        Self {
            balancer: BalancerConfig::default(),
            wait: Duration::from_secs(60),
            first_list_timeout: Duration::from_secs(3),
            max_retry_pause: Duration::from_secs(10),
            failover_dir: None,
        }
    }
}

/// Where a service's instances came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Nothing yet: no registry answered and no failover file.
    Nothing,
    /// A registry node's answer.
    Registry,
    /// The failover directory: no registry node has answered since the start.
    FailoverCache,
}

/// What a watched service looks like now.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceStatus {
    /// Where the instances came from.
    pub source: Source,
    /// The service revision of the list (0 when nothing came).
    pub revision: u64,
    /// The last error of the watch, while it has not recovered.
    pub last_error: Option<String>,
}

/// Watches services and balances calls over their instances.
#[derive(Debug)]
pub struct Discovery {
    client: Client,
    config: Arc<DiscoveryConfig>,
    services: Mutex<HashMap<String, Arc<WatchedService>>>,
}

/// One watched service: its instances in memory and a balancer over them.
#[derive(Debug)]
pub struct WatchedService {
    balancer: Balancer,
    state: RwLock<State>,
    changed: watch::Sender<u64>,
    task: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug)]
struct State {
    instances: Vec<Instance>,
    status: ServiceStatus,
}

impl Discovery {
    /// Discovery over `client`'s registry addresses.
    #[must_use]
    pub fn new(client: Client, config: DiscoveryConfig) -> Self {
        Self { client, config: Arc::new(config), services: Mutex::new(HashMap::new()) }
    }

    /// The watched copy of `service`, watched from now on if it was not: the
    /// first call waits for a first list (from a registry or the failover
    /// file) up to `first_list_timeout`, and answers without one after that
    /// ([`WatchedService::status`] says [`Source::Nothing`]).
    pub async fn service(&self, service: &ServiceRef) -> Arc<WatchedService> {
        let key = file_name(service);
        let (watched, started) = {
            let mut services = self.services.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match services.get(&key) {
                Some(found) => (found.clone(), false),
                None => {
                    let watched = Arc::new(WatchedService::new(self.config.balancer.clone()));
                    services.insert(key, watched.clone());
                    (watched, true)
                }
            }
        };
        if started {
            let task = tokio::spawn(follow(
                self.client.clone(),
                self.config.clone(),
                service.clone(),
                Arc::downgrade(&watched),
            ));
            *watched.task.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(task);
        }
        let mut changed = watched.changed.subscribe();
        let _ = tokio::time::timeout(self.config.first_list_timeout, changed.wait_for(|n| *n > 0)).await;
        watched
    }
}

impl Discovery {
    /// How many services are watched.
    #[must_use]
    pub fn watched_count(&self) -> usize {
        self.services.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }

    /// Whether `service` is watched already.
    #[must_use]
    pub fn is_watched(&self, service: &ServiceRef) -> bool {
        self.services.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains_key(&file_name(service))
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        let services = self.services.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
        for watched in services.values() {
            if let Some(task) = watched.task.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
                task.abort();
            }
        }
    }
}

impl WatchedService {
    fn new(config: BalancerConfig) -> Self {
        let status = ServiceStatus { source: Source::Nothing, revision: 0, last_error: None };
        Self {
            balancer: Balancer::new(config),
            state: RwLock::new(State { instances: Vec::new(), status }),
            changed: watch::channel(0).0,
            task: Mutex::new(None),
        }
    }

    /// Chooses an instance for one call (see [`Balancer::pick`]); never
    /// waits on the network.
    #[must_use]
    pub fn pick(&self) -> Option<Pick<'_>> {
        self.balancer.pick()
    }

    /// Every instance of the last list.
    #[must_use]
    pub fn instances(&self) -> Vec<Instance> {
        self.read().instances.clone()
    }

    /// Where the instances came from and how the watch is doing.
    #[must_use]
    pub fn status(&self) -> ServiceStatus {
        self.read().status.clone()
    }

    /// The balancer (to see which instances are ejected).
    #[must_use]
    pub fn balancer(&self) -> &Balancer {
        &self.balancer
    }

    /// Waits until the list has changed `after` times in all (a test's and a
    /// dashboard's hook); returns the count reached.
    pub async fn changed(&self, after: u64) -> u64 {
        let mut changed = self.changed.subscribe();
        changed.wait_for(|n| *n > after).await.map_or(after, |n| *n)
    }

    fn set(&self, instances: Vec<Instance>, status: ServiceStatus) {
        self.balancer.update(&instances);
        {
            let mut state = self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            state.instances = instances;
            state.status = status;
        }
        self.changed.send_modify(|n| *n += 1);
    }

    fn failed(&self, error: String) {
        self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner).status.last_error = Some(error);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The watch of one service, until its [`WatchedService`] is gone.
async fn follow(
    client: Client,
    config: Arc<DiscoveryConfig>,
    service: ServiceRef,
    watched: std::sync::Weak<WatchedService>,
) {
    let file = config.failover_dir.as_ref().map(|dir| dir.join(format!("{}.json", file_name(&service))));
    let mut index: Option<u64> = None;
    let mut pause = Duration::from_millis(100);
    loop {
        let options = match index {
            Some(index) => ListOptions::default().watch(index, config.wait),
            None => ListOptions::default(),
        };
        let answer = client.list_instances(&service, &options).await;
        let Some(watched) = watched.upgrade() else { return };
        match answer {
            Ok(list) => {
                pause = Duration::from_millis(100);
                let fresh = index != Some(list.revision) || watched.status().source != Source::Registry;
                // A revision lower than the index comes from another node: start over from it.
                index = Some(list.revision);
                if fresh {
                    if let Some(file) = &file {
                        // A cache that cannot be written costs only the failover: the watch goes on.
                        let _ = write_atomically(file, &list);
                    }
                    let status = ServiceStatus { source: Source::Registry, revision: list.revision, last_error: None };
                    watched.set(list.instances, status);
                }
            }
            Err(error) => {
                let error = error.to_string();
                watched.failed(error.clone());
                if watched.status().source == Source::Nothing
                    && let Some(list) = file.as_deref().and_then(read_cache)
                {
                    let status = ServiceStatus {
                        source: Source::FailoverCache,
                        revision: list.revision,
                        last_error: Some(error),
                    };
                    watched.set(list.instances, status);
                }
                index = None;
                drop(watched);
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(config.max_retry_pause);
            }
        }
    }
}

/// `namespace@@group@@service`: names hold only letters, digits and `_ . : -`.
fn file_name(service: &ServiceRef) -> String {
    format!("{}@@{}@@{}", service.namespace, service.group.as_deref().unwrap_or("DEFAULT_GROUP"), service.name)
}

fn write_atomically(file: &Path, list: &InstanceList) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let partial = file.with_extension("json.partial");
    std::fs::write(&partial, serde_json::to_vec(list).map_err(std::io::Error::other)?)?;
    std::fs::rename(partial, file)
}

fn read_cache(file: &Path) -> Option<InstanceList> {
    serde_json::from_slice(&std::fs::read(file).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Options;
    use crate::testing::{FakeServer, Reply, closed_addr};

    fn list(revision: u64, ports: &[u16]) -> String {
        let instances: Vec<String> = ports
            .iter()
            .map(|port| {
                format!(
                    r#"{{"instance_id":"10.0.0.1#{port}","ip":"10.0.0.1","port":{port},"cluster":"DEFAULT","weight":1.0,"healthy":true,"enabled":true,"ephemeral":true,"metadata":{{}}}}"#
                )
            })
            .collect();
        format!(
            r#"{{"namespace":"public","mode":"ap","group":"DEFAULT_GROUP","service":"web","revision":{revision},"reach_protection_threshold":false,"instances":[{}]}}"#,
            instances.join(",")
        )
    }

    fn ports(watched: &WatchedService) -> Vec<u16> {
        watched.instances().iter().map(|i| i.port).collect()
    }

    fn options() -> Options {
        Options { connect_timeout: Duration::from_millis(200), ..Options::default() }
    }

    /// The registry at revision 5 with two instances; a watch from 5 is
    /// answered after 50 ms with one of them deregistered (revision 6), and a
    /// watch from 6 is held.
    async fn registry() -> FakeServer {
        FakeServer::start(|seen| {
            if seen.target.contains("index=6") {
                Reply::Hang
            } else if seen.target.contains("index=5") {
                Reply::json(200, &list(6, &[8002])).with_index(6).after(Duration::from_millis(50))
            } else {
                Reply::json(200, &list(5, &[8001, 8002])).with_index(5)
            }
        })
        .await
    }

    #[tokio::test]
    async fn the_watch_brings_a_deregistration_without_a_lookup_waiting() {
        let server = registry().await;
        let client = Client::new([server.addr.clone()], options()).unwrap();
        let discovery = Discovery::new(client, DiscoveryConfig::default());
        let web = ServiceRef::new("public", "web");
        let watched = discovery.service(&web).await;
        assert_eq!(ports(&watched), [8001, 8002]);
        assert_eq!(watched.status(), ServiceStatus { source: Source::Registry, revision: 5, last_error: None });
        let pick = watched.pick().expect("an instance");
        pick.finish(true);
        let started = tokio::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(2), watched.changed(1)).await.expect("the change arrives");
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(ports(&watched), [8002]);
        assert_eq!(watched.status().revision, 6);
        // The same service again: the same watched copy, no new list.
        let again = discovery.service(&web).await;
        assert!(Arc::ptr_eq(&watched, &again));
        let lists = server.seen().iter().filter(|s| !s.target.contains("index=")).count();
        assert_eq!(lists, 1, "{:?}", server.seen());
    }

    #[tokio::test]
    async fn the_failover_cache_serves_while_no_registry_answers_and_is_replaced_when_one_does() {
        let dir = std::env::temp_dir().join(format!("janus-failover-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = || DiscoveryConfig {
            failover_dir: Some(dir.clone()),
            first_list_timeout: Duration::from_secs(2),
            max_retry_pause: Duration::from_millis(200),
            ..DiscoveryConfig::default()
        };
        let web = ServiceRef::new("public", "web");
        {
            let server = registry().await;
            let discovery = Discovery::new(Client::new([server.addr.clone()], options()).unwrap(), config());
            let watched = discovery.service(&web).await;
            assert_eq!(ports(&watched), [8001, 8002]);
        }
        assert!(dir.join("public@@DEFAULT_GROUP@@web.json").exists());

        // Every registry node down: the cached list serves, and says so.
        let down = closed_addr();
        let discovery = Discovery::new(Client::new([down.clone()], options()).unwrap(), config());
        let watched = discovery.service(&web).await;
        assert_eq!(watched.status().source, Source::FailoverCache);
        assert!(watched.status().last_error.is_some());
        assert!(watched.pick().is_some_and(|p| [8001, 8002].contains(&p.instance().port)));

        // A registry node comes back on that address: its answer replaces the cache.
        let back = FakeServer::start_on(&down, |seen| {
            if seen.target.contains("index=") { Reply::Hang } else { Reply::json(200, &list(9, &[8003])).with_index(9) }
        })
        .await;
        tokio::time::timeout(Duration::from_secs(3), watched.changed(1)).await.expect("the registry answers");
        assert_eq!(ports(&watched), [8003]);
        assert_eq!(watched.status(), ServiceStatus { source: Source::Registry, revision: 9, last_error: None });
        drop(back);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn with_nothing_to_serve_a_lookup_answers_after_the_first_list_timeout() {
        let config = DiscoveryConfig { first_list_timeout: Duration::from_millis(300), ..DiscoveryConfig::default() };
        let discovery = Discovery::new(Client::new([closed_addr()], options()).unwrap(), config);
        let watched = discovery.service(&ServiceRef::new("public", "web")).await;
        assert_eq!(watched.status().source, Source::Nothing);
        assert!(watched.pick().is_none());
        assert!(watched.status().last_error.is_some_and(|e| e.contains("cannot reach")), "{:?}", watched.status());
    }
}
