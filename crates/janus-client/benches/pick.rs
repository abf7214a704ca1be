//! The SDK's pick-an-instance path (issue 17: at most 1 µs): one pick and
//! its report, for each strategy, over services of 10 and 1,000 instances.
//!
//! ```sh
//! cargo bench -p janus-client --bench pick
//! ```

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use janus_client::api::native::Instance;
use janus_client::balance::{Balancer, BalancerConfig, Strategy};

fn instances(count: u16) -> Vec<Instance> {
    (0..count)
        .map(|n| Instance {
            instance_id: format!("10.0.0.1#{n}"),
            ip: format!("10.0.{}.{}", n / 250, n % 250 + 1),
            port: 8080,
            cluster: "DEFAULT".to_owned(),
            weight: f64::from(n % 5 + 1),
            healthy: true,
            enabled: true,
            ephemeral: true,
            metadata: BTreeMap::new(),
            last_renew_ms: None,
            owner: None,
            connected_to: None,
        })
        .collect()
}

fn pick(c: &mut Criterion) {
    for strategy in [Strategy::WeightedRandom, Strategy::RoundRobin, Strategy::LeastOutstanding] {
        for count in [10, 1000] {
            let balancer = Balancer::new(BalancerConfig { strategy, ..BalancerConfig::default() });
            balancer.update(&instances(count));
            c.bench_function(&format!("pick and finish, {strategy:?}, {count} instances"), |b| {
                b.iter(|| {
                    let pick = balancer.pick().expect("an instance");
                    black_box(pick.instance().port);
                    pick.finish(true);
                });
            });
        }
    }
}

criterion_group!(benches, pick);
criterion_main!(benches);
