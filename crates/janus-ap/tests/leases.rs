//! The reaper on paused tokio time: lease timings end to end through the engine.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use janus_ap::{ApConfig, ApEngine};
use janus_core::model::{BEAT_TIMEOUT_KEY, DELETE_TIMEOUT_KEY, InstanceSpec, Metadata};
use janus_core::preservation::PreservationConfig;
use janus_core::{
    ClusterName, GroupName, InstanceKey, NamespaceId, RegistryConfig, RegistryStore, ServiceKey, ServiceName,
};
use tokio_util::sync::CancellationToken;

fn key() -> ServiceKey {
    ServiceKey::new(NamespaceId::public(), GroupName::default_group(), ServiceName::new("orders").unwrap())
}

fn inst(port: u16) -> InstanceKey {
    InstanceKey::new(ClusterName::default_cluster(), "10.1.2.3".parse().unwrap(), port)
}

fn start(preservation: bool) -> (Arc<RegistryStore>, ApEngine, CancellationToken) {
    let config = RegistryConfig {
        preservation: PreservationConfig { enabled: preservation, ..PreservationConfig::default() },
        ..RegistryConfig::default()
    };
    let store = Arc::new(RegistryStore::new(config, 64));
    let shutdown = CancellationToken::new();
    let (engine, _task) = ApEngine::spawn(store.clone(), ApConfig::default(), shutdown.clone());
    (store, engine, shutdown)
}

fn health(store: &RegistryStore, port: u16) -> Option<bool> {
    store.read(|r| r.instance(&key(), &inst(port)).ok().map(|i| i.instance.healthy))
}

async fn advance_to(store: &RegistryStore, ms: u64) {
    let now = store.now().0;
    assert!(ms >= now, "time runs forward");
    tokio::time::sleep(Duration::from_millis(ms - now)).await;
    // Let the reaper run what came due.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn silent_instance_turns_unhealthy_at_15s_and_goes_at_30s() {
    let (store, engine, shutdown) = start(false);
    engine.register(&key(), InstanceSpec::new(inst(1))).await.unwrap();
    advance_to(&store, 14_500).await;
    assert_eq!(health(&store, 1), Some(true));
    advance_to(&store, 15_300).await;
    assert_eq!(health(&store, 1), Some(false));
    advance_to(&store, 29_500).await;
    assert_eq!(health(&store, 1), Some(false));
    advance_to(&store, 30_300).await;
    assert_eq!(health(&store, 1), None);
    shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn beating_instance_stays_and_overrides_apply_to_a_late_registration() {
    let (store, engine, shutdown) = start(false);
    engine.register(&key(), InstanceSpec::new(inst(1))).await.unwrap();
    // The reaper now sleeps towards 15 s; a shorter lease registered later must wake it.
    advance_to(&store, 1_000).await;
    let mut quick = InstanceSpec::new(inst(2));
    quick.metadata = Metadata::from([
        (BEAT_TIMEOUT_KEY.to_owned(), "2000".to_owned()),
        (DELETE_TIMEOUT_KEY.to_owned(), "4000".to_owned()),
    ]);
    engine.register(&key(), quick).await.unwrap();
    advance_to(&store, 3_300).await;
    assert_eq!(health(&store, 2), Some(false), "unhealthy 2 s after registering at 1 s");
    advance_to(&store, 5_300).await;
    assert_eq!(health(&store, 2), None, "deleted 4 s after registering");
    for t in (10_000..=60_000).step_by(5_000) {
        advance_to(&store, t).await;
        engine.heartbeat(&key(), &inst(1)).await.unwrap();
    }
    assert_eq!(health(&store, 1), Some(true));
    shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn self_preservation_keeps_silent_instances_through_the_engine() {
    let (store, engine, shutdown) = start(true);
    for port in 1..=40 {
        engine.register(&key(), InstanceSpec::new(inst(port))).await.unwrap();
    }
    for t in (5_000..=120_000).step_by(5_000) {
        advance_to(&store, t).await;
        for port in 1..=40 {
            engine.heartbeat(&key(), &inst(port)).await.unwrap();
        }
    }
    // Half stop beating for two minutes.
    for t in (125_000..=240_000).step_by(5_000) {
        advance_to(&store, t).await;
        for port in 1..=20 {
            engine.heartbeat(&key(), &inst(port)).await.unwrap();
        }
    }
    let stats = store.read(|r| r.stats(store.now()));
    assert!(stats.self_preservation);
    assert_eq!(stats.instances, 40, "nothing deleted while preserving");
    assert_eq!(health(&store, 40), Some(false));
    shutdown.cancel();
}
