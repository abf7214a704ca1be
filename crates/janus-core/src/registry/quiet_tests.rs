//! Quiet heartbeats ([`Registry::renew_quietly`]): a beat taken under the
//! shared lock has exactly the effect of [`Registry::heartbeat`] — on
//! expiry, on reads, on self-preservation — and leaves to the exclusive
//! path every beat that would change something.

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::tests::{inst, key, no_preservation};
use super::*;
use crate::model::InstanceSpec;

fn expire(reg: &mut Registry, at: u64) -> ExpiryReport {
    reg.expire(Millis(at), &mut StdRng::seed_from_u64(7))
}

#[test]
fn a_quiet_beat_keeps_the_instance_alive_and_shows_in_reads() {
    let mut reg = Registry::new(no_preservation());
    reg.register_instance(&key("orders"), InstanceSpec::new(inst(1)), Millis(1_000)).unwrap();
    reg.take_changes();
    let timing = reg.renew_quietly(&key("orders"), &inst(1), Millis(10_000)).expect("a healthy leased instance");
    assert_eq!(timing.interval_ms, 5_000);
    assert!(reg.take_changes().is_empty(), "a quiet beat changes nothing visible");
    let read = reg.instance(&key("orders"), &inst(1)).unwrap();
    assert_eq!(read.lease, Some(LeaseTimes { started: Millis(1_000), last_renew: Millis(10_000) }));
    // Without the beat it would turn unhealthy at 16 s: it does at 25 s.
    let report = expire(&mut reg, 24_999);
    assert_eq!(report.marked_unhealthy, 0);
    assert!(reg.instance(&key("orders"), &inst(1)).unwrap().instance.healthy);
    assert_eq!(expire(&mut reg, 25_000).marked_unhealthy, 1);
    assert_eq!(expire(&mut reg, 39_999).deleted, 0);
    assert_eq!(expire(&mut reg, 40_000).deleted, 1);
}

#[test]
fn beats_that_would_change_something_take_the_exclusive_path() {
    let mut reg = Registry::new(no_preservation());
    let orders = key("orders");
    assert!(reg.renew_quietly(&orders, &inst(1), Millis(0)).is_none(), "no such instance");
    reg.register_instance(&orders, InstanceSpec::new(inst(1)), Millis(0)).unwrap();
    expire(&mut reg, 15_000);
    assert!(reg.renew_quietly(&orders, &inst(1), Millis(15_100)).is_none(), "unhealthy: the beat heals it");
    reg.heartbeat(&orders, &inst(1), Millis(15_100)).unwrap();
    assert!(reg.renew_quietly(&orders, &inst(1), Millis(15_200)).is_some());

    let binding = Binding { node: 1, conn: 7 };
    reg.publish_bound(&key("bound"), vec![InstanceSpec::new(inst(2))], binding, Millis(0)).unwrap();
    assert!(reg.renew_quietly(&key("bound"), &inst(2), Millis(1)).is_none(), "bound: nothing to renew");

    let pay = NamespaceId::new("pay").unwrap();
    reg.create_namespace(NamespaceSpec::new(pay.clone(), None, None, Mode::Cp).unwrap()).unwrap();
    let ledger = ServiceKey::new(pay, GroupName::default_group(), ServiceName::new("ledger").unwrap());
    reg.register_instance(&ledger, InstanceSpec::new(inst(3)), Millis(0)).unwrap();
    assert!(reg.renew_quietly(&ledger, &inst(3), Millis(1)).is_none(), "cp: the exclusive path refuses it");
}

#[test]
fn quiet_beats_count_for_self_preservation() {
    let mut reg = Registry::new(RegistryConfig::default());
    reg.register_instance(&key("orders"), InstanceSpec::new(inst(1)), Millis(0)).unwrap();
    let before = reg.stats(Millis(2_000)).renewals_last_min;
    for t in [2_000, 2_500, 3_000] {
        reg.renew_quietly(&key("orders"), &inst(1), Millis(t)).unwrap();
    }
    assert_eq!(reg.stats(Millis(3_000)).renewals_last_min, before + 3);
}

/// One step of the comparison: a beat of one of four instances, or an expiry pass.
#[derive(Debug, Clone, Copy)]
enum Step {
    Beat { port: u16 },
    Expire,
}

fn steps() -> impl Strategy<Value = Vec<(Step, u64)>> {
    let step = prop_oneof![3 => (1..=4u16).prop_map(|port| Step::Beat { port }), 1 => Just(Step::Expire)];
    prop::collection::vec((step, 0..9_000u64), 1..80)
}

/// What a registry shows of the four instances: health, lease times, and
/// the renewals counted.
fn view(reg: &Registry, now: Millis) -> (Vec<(u16, bool, Option<LeaseTimes>)>, RegistryStats) {
    let snapshot = reg.snapshot(&key("orders")).unwrap();
    let mut instances: Vec<_> =
        snapshot.instances.iter().map(|i| (i.instance.key.port, i.instance.healthy, i.lease)).collect();
    instances.sort_by_key(|(port, ..)| *port);
    (instances, reg.stats(now))
}

proptest! {
    /// Beats taken quietly where they can be, and beats taken exclusively,
    /// leave the same registry behind: the same instances, health, lease
    /// times, changes and counters.
    #[test]
    fn quiet_beats_have_the_effect_of_exclusive_ones(steps in steps()) {
        let mut exclusive = Registry::new(RegistryConfig::default());
        let mut quiet = Registry::new(RegistryConfig::default());
        for reg in [&mut exclusive, &mut quiet] {
            for port in 1..=4 {
                reg.register_instance(&key("orders"), InstanceSpec::new(inst(port)), Millis(0)).unwrap();
            }
        }
        let mut now = 0;
        for (step, gap) in steps {
            now += gap;
            match step {
                Step::Beat { port } => {
                    let expected = exclusive.heartbeat(&key("orders"), &inst(port), Millis(now)).ok();
                    let got = match quiet.renew_quietly(&key("orders"), &inst(port), Millis(now)) {
                        Some(timing) => Some(timing),
                        None => quiet.heartbeat(&key("orders"), &inst(port), Millis(now)).ok(),
                    };
                    prop_assert_eq!(got, expected);
                }
                Step::Expire => {
                    prop_assert_eq!(expire(&mut quiet, now), expire(&mut exclusive, now));
                }
            }
            let changes = |reg: &mut Registry| reg.take_changes().into_iter().map(|c| (c.revision, c.kind, c.instance)).collect::<Vec<_>>();
            prop_assert_eq!(changes(&mut quiet), changes(&mut exclusive));
            prop_assert_eq!(view(&quiet, Millis(now)), view(&exclusive, Millis(now)));
        }
    }
}
