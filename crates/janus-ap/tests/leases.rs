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

/// Eureka's cap over a whole eviction window, through the reaper: 1,000
/// instances registered one every 60 ms over the first minute, the even ports
/// beating every 5 s and the odd ones silent, so 500 delete deadlines fall
/// evenly over 30–90 s and the reaper sweeps as often as every 250 ms. No 60 s
/// may see more than 150 (15 % of 1,000) deleted, and in the end every silent
/// instance is.
#[tokio::test(start_paused = true)]
async fn spread_deadlines_through_the_reaper_never_beat_the_cap() {
    // Preservation off (half the renewals are missing): the cap still holds.
    let config = RegistryConfig {
        preservation: PreservationConfig { enabled: false, ..PreservationConfig::default() },
        ..RegistryConfig::default()
    };
    let store = Arc::new(RegistryStore::new(config, 1 << 16));
    let shutdown = CancellationToken::new();
    let (engine, _task) = ApEngine::spawn(store.clone(), ApConfig::default(), shutdown.clone());
    // When each expiry happened: woken by the reaper's publish, the recorder
    // runs before paused time moves on, so `now` is the sweep's time.
    let expired = Arc::new(std::sync::Mutex::new(Vec::<(u64, u16)>::new()));
    let recorder = {
        let (store, expired) = (store.clone(), expired.clone());
        let mut events = store.events();
        tokio::spawn(async move {
            loop {
                let change = events.recv().await.expect("the recorder keeps up");
                if change.kind == janus_core::ChangeKind::InstanceExpired {
                    let port = change.instance.expect("an expiry names its instance").port;
                    expired.lock().unwrap().push((store.now().0, port));
                }
            }
        })
    };
    let mut registered = 0u16;
    for t in (0..=600_000u64).step_by(20) {
        let register = t % 60 == 0 && registered < 1_000;
        let beat = t % 5_000 == 0;
        if !register && !beat {
            continue;
        }
        advance_to(&store, t).await;
        if register {
            registered += 1;
            engine.register(&key(), InstanceSpec::new(inst(registered))).await.unwrap();
        }
        if beat {
            for port in (2..=registered).step_by(2) {
                engine.heartbeat(&key(), &inst(port)).await.unwrap();
            }
        }
    }
    recorder.abort();
    let expired = expired.lock().unwrap().clone();
    let mut most = 0;
    for &(end, _) in &expired {
        let in_window = expired.iter().filter(|(at, _)| *at + 60_000 > end && *at <= end).count();
        assert!(in_window <= 150, "{in_window} deleted in the 60 s up to {end} ms");
        most = most.max(in_window);
    }
    assert_eq!(most, 150, "the cap is reached, not just respected");
    assert_eq!(expired.len(), 500);
    assert!(expired.iter().all(|(_, port)| port % 2 == 1), "only silent instances are deleted");
    assert!(expired.iter().any(|(at, _)| *at > 150_000), "it took several windows");
    assert_eq!(store.read(|r| r.stats(store.now())).instances, 500);
    shutdown.cancel();
}
