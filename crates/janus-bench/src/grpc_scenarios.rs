//! The scenarios over the Nacos gRPC protocol (`--api nacos-grpc`), for any
//! server that speaks it:
//! - `register`: each of `--connections` connections registers a new
//!   instance per request (into one of 64 services; Nacos keeps one
//!   instance per connection and service, so each register also replaces the
//!   connection's previous one there, on every server alike);
//! - `list`: `ServiceQueryRequest` of one service of `--instances` instances
//!   (registered over HTTP beforehand);
//! - `push`: `--watchers` connections subscribe to one service; a writer
//!   connection registers an instance with a new port every 100 ms
//!   (`--writes` times; each replaces the writer's previous one, so the
//!   service stays small), and each subscriber records, for every new port,
//!   the time from the write being sent to the `NotifySubscriberRequest` that
//!   first lists it. With several targets the writer uses the first and the
//!   subscribers the others (across nodes);
//! - `capacity`: `--instances` instances batch-registered over
//!   `--connections` connections (100 per service), held while the server's
//!   RSS is read.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::task::JoinSet;

use crate::nacos_grpc::{self, GrpcConn};
use crate::scenario::{Calls, address, capacity_result, listed_ports, populate_list};
use crate::stats::{BenchResult, histogram, record};
use crate::{Api, RunArgs, Scenario};

/// Services the register load spreads over.
const REGISTER_SERVICES: u64 = 64;

pub(crate) async fn run(args: &RunArgs) -> anyhow::Result<BenchResult> {
    match args.scenario {
        Scenario::Register => {
            let prefix = args.prefix.clone();
            load(args, move |n| {
                let (ip, port) = address(n);
                (
                    "InstanceRequest",
                    nacos_grpc::register(&format!("{prefix}-greg-{}", n % REGISTER_SERVICES), &ip, port),
                )
            })
            .await
        }
        Scenario::List => {
            let service = format!("{}-glist-{}", args.prefix, args.instances);
            populate_list(args, &http_calls(args), &service).await?;
            load(args, move |_| ("ServiceQueryRequest", nacos_grpc::query(&service))).await
        }
        Scenario::Push => push(args).await,
        Scenario::Capacity => capacity(args).await,
        other => bail!("over Nacos gRPC the scenarios are register, list, push and capacity, not {other:?}"),
    }
}

/// Calls of the Nacos v1 HTTP API, for setup and the push scenario's writer.
fn http_calls(args: &RunArgs) -> Calls {
    let mut http = args.clone();
    http.api = Api::Nacos;
    Calls::new(&http)
}

/// `--connections` workers, each on its own connection (spread round-robin
/// over the targets), sending what `next(n)` gives for the n-th request.
async fn load(
    args: &RunArgs,
    next: impl Fn(u64) -> (&'static str, String) + Send + Sync + 'static,
) -> anyhow::Result<BenchResult> {
    let next = Arc::new(next);
    let targets = args.targets();
    let workers = args.connections.max(1) as u64;
    let mut conns = Vec::new();
    for worker in 0..workers {
        let target = &targets[usize::try_from(worker).unwrap_or(0) % targets.len()];
        conns.push(GrpcConn::open(target).await?);
    }
    let start = Instant::now();
    let measure_from = start + args.warmup;
    let end = measure_from + args.duration;
    let mut tasks = JoinSet::new();
    for (worker, mut conn) in (0..).zip(conns) {
        let next = next.clone();
        tasks.spawn(async move {
            let (mut hist, mut errors, mut first_error) = (histogram(), 0u64, None::<String>);
            let mut n = (1 << 22) + worker;
            loop {
                let sent = Instant::now();
                if sent >= end {
                    return (hist, errors, first_error);
                }
                let (kind, body) = next(n);
                n += workers;
                let answer = conn.request(kind, body).await;
                if sent < measure_from {
                    continue;
                }
                match answer {
                    Ok(_) => record(&mut hist, sent.elapsed()),
                    Err(error) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| format!("{error:#}"));
                    }
                }
            }
        });
    }
    let (mut merged, mut errors, mut first_error) = (histogram(), 0, None);
    while let Some(done) = tasks.join_next().await {
        let (hist, failed, first) = done?;
        merged.add(&hist)?;
        errors += failed;
        first_error = first_error.or(first);
    }
    Ok(BenchResult::from_histogram(args, &merged, errors, args.duration, first_error))
}

/// Write-to-push latency (see the module docs).
async fn push(args: &RunArgs) -> anyhow::Result<BenchResult> {
    let service = format!("{}-gpush", args.prefix);
    let targets = args.targets();
    let watched: Vec<String> = if targets.len() > 1 { targets[1..].to_vec() } else { targets.clone() };
    let mut writer = GrpcConn::open(&args.first_target()).await?;
    writer.request("InstanceRequest", nacos_grpc::register(&service, "10.201.0.1", 1)).await?;
    // Let the first registration reach every node before the subscriptions.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stamps: Arc<parking_lot::Mutex<HashMap<u64, Instant>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let mut subscribers = JoinSet::new();
    for watcher in 0..args.watchers.max(1) {
        let target = watched[watcher % watched.len()].clone();
        let mut conn = GrpcConn::open(&target).await.with_context(|| format!("subscriber {watcher}"))?;
        let answer = conn.request("SubscribeServiceRequest", nacos_grpc::subscribe(&service)).await?;
        let mut pushes = conn.take_pushes().context("the connection's pushes")?;
        let (stamps, done) = (stamps.clone(), done.clone());
        subscribers.spawn(async move {
            let _held = conn;
            let mut hist = histogram();
            let mut known = listed_ports(&answer);
            while !done.load(Ordering::Acquire) {
                let Ok(Some((arrived, body))) = tokio::time::timeout(Duration::from_millis(200), pushes.recv()).await
                else {
                    continue;
                };
                let listed = listed_ports(&body);
                let stamps = stamps.lock();
                for port in listed.difference(&known) {
                    if let Some(sent) = stamps.get(port) {
                        record(&mut hist, arrived.saturating_duration_since(*sent));
                    }
                }
                drop(stamps);
                known = listed;
            }
            hist
        });
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    for n in 0..args.writes as u64 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let port = 2 + n;
        stamps.lock().insert(port, Instant::now());
        writer.request("InstanceRequest", nacos_grpc::register(&service, "10.201.0.2", port)).await?;
    }
    let elapsed = started.elapsed();
    // Time for the last pushes (rnacos merges changes for 500 ms).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    done.store(true, Ordering::Release);
    let mut merged = histogram();
    while let Some(finished) = subscribers.join_next().await {
        merged.add(&finished?)?;
    }
    let expected = (args.writes * args.watchers.max(1)) as u64;
    let missed = expected.saturating_sub(merged.len());
    let mut result = BenchResult::from_histogram(args, &merged, missed, elapsed, None);
    result.connections = args.watchers.max(1);
    Ok(result)
}

/// Holds `--instances` connection-bound instances (see the module docs).
async fn capacity(args: &RunArgs) -> anyhow::Result<BenchResult> {
    let services = (args.instances as u64).div_ceil(100);
    let conns = args.connections.max(1) as u64;
    let target = args.first_target();
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    // Connections open 64 at a time, as a fleet of clients starting would,
    // not a thousand at once (a burst a server's accept backlog may reset).
    let opening = Arc::new(tokio::sync::Semaphore::new(64));
    for c in 0..conns {
        let (target, prefix, instances) = (target.clone(), args.prefix.clone(), args.instances as u64);
        let opening = opening.clone();
        tasks.spawn(async move {
            let permit = opening.acquire_owned().await?;
            let mut conn = GrpcConn::open(&target).await?;
            for service in (c..services).step_by(usize::try_from(conns).unwrap_or(1)) {
                let members: Vec<(String, u64)> =
                    (service * 100..((service + 1) * 100).min(instances)).map(address).collect();
                let body = nacos_grpc::batch_register(&format!("{prefix}-gcap-{service}"), &members);
                conn.request("BatchInstanceRequest", body).await?;
            }
            drop(permit);
            anyhow::Ok(conn)
        });
    }
    let mut held = Vec::new();
    while let Some(done) = tasks.join_next().await {
        held.push(done??);
    }
    // Held until the RSS is read.
    let result = capacity_result(args, started.elapsed()).await;
    drop(held);
    result
}
