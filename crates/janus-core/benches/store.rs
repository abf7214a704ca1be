//! How the store's writes scale with writer threads (issue 18): 1 and 2
//! threads, each writing to services of its own, through the store as the
//! AP engine writes (and the change feed it publishes to). No load
//! generator competes for the cores.
//!
//! - `heartbeat`: a beat of an instance that is alive and healthy (changes
//!   nothing visible): `renew_quietly` under the shared lock;
//! - `register+deregister`: a new instance registered and removed again (two
//!   visible changes, each published): `write_shared`, under the shared lock
//!   and the service's own.
//!
//! ```sh
//! cargo bench -p janus-core --bench store
//! ```
//! Criterion reports operations per second over all threads; 2 threads at
//! 2× the 1-thread figure would be perfect scaling.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use janus_core::model::InstanceSpec;
use janus_core::{
    ClusterName, GroupName, InstanceKey, NamespaceId, RegistryConfig, RegistryStore, ServiceKey, ServiceName,
};

/// Instances per service in the heartbeat scenario.
const POPULATION: u16 = 1_000;

fn service(thread: usize) -> ServiceKey {
    let name = ServiceName::new(&format!("bench-{thread}")).unwrap();
    ServiceKey::new(NamespaceId::public(), GroupName::default_group(), name)
}

fn instance(port: u16) -> InstanceKey {
    InstanceKey::new(ClusterName::default_cluster(), "10.0.0.1".parse().unwrap(), port)
}

/// A store where each of `threads` services holds `POPULATION` instances.
fn populated(threads: usize) -> Arc<RegistryStore> {
    let store = Arc::new(RegistryStore::new(RegistryConfig::default(), 1024));
    for thread in 0..threads {
        let key = service(thread);
        store.write(|registry, now| {
            for port in 1..=POPULATION {
                registry.register_instance(&key, InstanceSpec::new(instance(port)), now).unwrap();
            }
        });
    }
    store
}

/// Pins the calling thread to `cpu` (modulo the CPUs there are), so that
/// the writers run on cores of their own wherever the scheduler would have
/// put them: unpinned, two writers sometimes shared one core for a whole
/// run and the 2-thread figure swung between 1× and 1.8× of one thread.
#[allow(unsafe_code)]
fn pin_to(cpu: usize) {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    // SAFETY: `cpu_set_t` is plain data, valid zeroed; `CPU_SET` writes a bit
    // inside it (the index is below the CPU count); `sched_setaffinity` only
    // reads the set, for the calling thread (pid 0).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu % cpus, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &raw const set);
    }
}

/// Runs `op(thread, i)` `iters` times on each of `threads` threads at once,
/// thread `t` pinned to CPU `t`; the wall time from a common start to the
/// last thread's end.
fn on_threads(threads: usize, iters: u64, op: impl Fn(usize, u64) + Send + Sync + 'static) -> Duration {
    let op = Arc::new(op);
    let start = Arc::new(Barrier::new(threads + 1));
    let workers: Vec<_> = (0..threads)
        .map(|thread| {
            let (op, start) = (op.clone(), start.clone());
            std::thread::spawn(move || {
                pin_to(thread);
                start.wait();
                for i in 0..iters {
                    op(thread, i);
                }
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    for worker in workers {
        worker.join().unwrap();
    }
    began.elapsed()
}

fn writes(c: &mut Criterion) {
    let mut group = c.benchmark_group("store writes");
    group.measurement_time(Duration::from_secs(5));
    for threads in [1usize, 2] {
        group.throughput(Throughput::Elements(threads as u64));
        group.bench_with_input(BenchmarkId::new("heartbeat", threads), &threads, |b, &threads| {
            let store = populated(threads);
            b.iter_custom(|iters| {
                let store = store.clone();
                on_threads(threads, iters, move |thread, i| {
                    let key = service(thread);
                    // POPULATION fits in u16.
                    #[allow(clippy::cast_possible_truncation)]
                    let port = (i % u64::from(POPULATION)) as u16 + 1;
                    let instance = instance(port);
                    // As the AP engine beats: the shared lock when nothing changes.
                    if store.renew_quietly(&key, &instance).is_none() {
                        store.write(|registry, now| registry.heartbeat(&key, &instance, now).unwrap());
                    }
                })
            });
        });
        group.bench_with_input(BenchmarkId::new("register+deregister", threads), &threads, |b, &threads| {
            let store = populated(threads);
            b.iter_custom(|iters| {
                let store = store.clone();
                on_threads(threads, iters, move |thread, _| {
                    let key = service(thread);
                    let fresh = instance(POPULATION + 1);
                    store
                        .write_shared(
                            InstanceSpec::new(fresh.clone()),
                            |registry, now, spec, publish| registry.register_instance_shared(&key, spec, now, publish),
                            |registry, now, spec| registry.register_instance(&key, spec, now),
                        )
                        .unwrap();
                    store
                        .write_shared(
                            (),
                            |registry, now, (), publish| {
                                registry.deregister_instance_shared(&key, &fresh, now, publish).ok_or(())
                            },
                            |registry, now, ()| registry.deregister_instance(&key, &fresh, now),
                        )
                        .unwrap();
                })
            });
        });
    }
    group.finish();
}

criterion_group!(benches, writes);
criterion_main!(benches);
