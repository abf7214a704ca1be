//! The workloads. Each scenario prepares its data, then runs `--connections`
//! workers for `--warmup` + `--duration`, recording only after the warm-up.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use hyper::{Method, StatusCode};
use janus_client::api::native::{CreateNamespace, Mode};
use janus_client::{Client, Options};
use tokio::task::JoinSet;

use crate::client::{Call, Conn, Wire, grpc_frame, protobuf_bytes_field};
use crate::stats::{BenchResult, histogram, record};
use crate::{Api, RunArgs, Scenario};

/// Services the register load spreads over.
const REGISTER_SERVICES: u64 = 64;

/// A unique address for the n-th instance a run creates.
pub(crate) fn address(n: u64) -> (String, u64) {
    let ip = format!("10.{}.{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
    (ip, 1000 + (n >> 24))
}

/// Builds the calls of one API.
#[derive(Debug, Clone)]
pub(crate) struct Calls {
    api: Api,
    /// The namespace of the native API.
    namespace: String,
}

impl Calls {
    pub(crate) fn new(args: &RunArgs) -> Self {
        Self { api: args.api, namespace: args.namespace.clone() }
    }

    /// The wire the API travels on.
    pub(crate) fn wire(&self) -> Wire {
        if self.api == Api::Etcd { Wire::Grpc } else { Wire::Http1 }
    }

    fn register(&self, service: &str, ip: &str, port: u64) -> Call {
        let native_body = format!("{{\"ip\":\"{ip}\",\"port\":{port}}}");
        match self.api {
            Api::Nacos | Api::NacosGrpc => Call {
                method: Method::POST,
                path: "/nacos/v1/ns/instance".to_owned(),
                body: Some((
                    "application/x-www-form-urlencoded",
                    Bytes::from(format!("serviceName={service}&ip={ip}&port={port}&ephemeral=true")),
                )),
            },
            Api::Native => Call {
                method: Method::POST,
                path: format!("/v1/namespaces/{}/services/{service}/instances", self.namespace),
                body: Some(("application/json", Bytes::from(native_body))),
            },
            Api::Etcd => {
                // etcd's KV.Put: the key names what Janus's path names, the
                // value is the body Janus gets, so both store the same bytes.
                let key = format!("/{}/{service}/{ip}:{port}", self.namespace);
                let mut put = Vec::with_capacity(key.len() + native_body.len() + 8);
                protobuf_bytes_field(&mut put, 1, key.as_bytes());
                protobuf_bytes_field(&mut put, 2, native_body.as_bytes());
                Call {
                    method: Method::POST,
                    path: "/etcdserverpb.KV/Put".to_owned(),
                    body: Some(("application/grpc", grpc_frame(&put))),
                }
            }
        }
    }

    fn beat(&self, service: &str, ip: &str, port: u64) -> Call {
        match self.api {
            Api::Nacos | Api::NacosGrpc => Call {
                method: Method::PUT,
                path: format!("/nacos/v1/ns/instance/beat?serviceName={service}&ip={ip}&port={port}"),
                body: None,
            },
            Api::Native | Api::Etcd => Call {
                method: Method::PUT,
                path: format!("/v1/namespaces/{}/services/{service}/instances/{ip}/{port}/heartbeat", self.namespace),
                body: None,
            },
        }
    }

    fn list(&self, service: &str, index: Option<u64>) -> Call {
        let wait = index.map(|i| format!("&index={i}&wait=10s")).unwrap_or_default();
        match self.api {
            Api::Nacos | Api::NacosGrpc => Call::get(format!("/nacos/v1/ns/instance/list?serviceName={service}{wait}")),
            Api::Native | Api::Etcd => {
                let query = index.map(|i| format!("?index={i}&wait=10s")).unwrap_or_default();
                Call::get(format!("/v1/namespaces/{}/services/{service}/instances{query}", self.namespace))
            }
        }
    }

    /// Whether an answer means success (a Nacos beat must say 10200).
    fn ok(&self, call: &Call, status: StatusCode, body: &Bytes) -> bool {
        status.is_success()
            && (self.api != Api::Nacos || !call.path.contains("/beat") || body.windows(5).any(|w| w == b"10200"))
    }
}

/// What the workers of a scenario send.
struct Workload {
    calls: Calls,
    prefix: String,
    population: u64,
    next_new: AtomicU64,
    list_service: String,
}

impl Workload {
    fn register_new(&self) -> Call {
        let n = self.next_new.fetch_add(1, Ordering::Relaxed);
        let (ip, port) = address(n);
        self.calls.register(&format!("{}-reg-{}", self.prefix, n % REGISTER_SERVICES), &ip, port)
    }

    fn beat(&self, n: u64) -> Call {
        let n = n % self.population.max(1);
        let (ip, port) = address(n);
        self.calls.beat(&format!("{}-hb-{}", self.prefix, n % 16), &ip, port)
    }

    fn next(&self, scenario: Scenario, worker: u64, seq: u64, workers: u64) -> Call {
        match scenario {
            Scenario::Register => self.register_new(),
            Scenario::Heartbeat => self.beat(seq * workers + worker),
            Scenario::Mixed => match seq % 10 {
                0 => self.register_new(),
                1 => self.beat(seq * workers + worker),
                _ => self.calls.list(&self.list_service, None),
            },
            Scenario::List | Scenario::Watch | Scenario::Capacity | Scenario::DnsVisibility | Scenario::Push => {
                self.calls.list(&self.list_service, None)
            }
        }
    }
}

pub(crate) async fn run(args: &RunArgs) -> anyhow::Result<BenchResult> {
    let calls = Calls::new(args);
    if args.targets().is_empty() {
        bail!("--target names no server");
    }
    if args.api == Api::NacosGrpc {
        return crate::grpc_scenarios::run(args).await;
    }
    if args.scenario == Scenario::Push {
        bail!("the push scenario is defined over Nacos gRPC (--api nacos-grpc)");
    }
    if args.api == Api::Etcd && args.scenario != Scenario::Register {
        bail!("against etcd only the register scenario (one put per request) is defined");
    }
    if let Some(mode) = &args.create_namespace {
        create_namespace(args, mode).await?;
    }
    // Registrations of the run start above the populations set up below.
    let workload = Arc::new(Workload {
        calls: calls.clone(),
        prefix: args.prefix.clone(),
        population: args.instances as u64,
        next_new: AtomicU64::new(1 << 22),
        list_service: format!("{}-list-{}", args.prefix, args.instances),
    });
    match args.scenario {
        Scenario::Register => {}
        Scenario::Heartbeat => populate_beaters(args, &calls).await?,
        Scenario::List => populate_list(args, &calls, &workload.list_service).await?,
        Scenario::Mixed => {
            populate_list(args, &calls, &workload.list_service).await?;
            populate_beaters(args, &calls).await?;
        }
        Scenario::Watch => return watch(args, &calls).await,
        Scenario::DnsVisibility => return crate::dns::visibility(args).await,
        Scenario::Capacity => return capacity(args, &calls).await,
        Scenario::Push => bail!("the push scenario is defined over Nacos gRPC (--api nacos-grpc)"),
    }
    load(args, workload).await
}

/// Sends `calls` over `connections` connections, all of which must succeed.
async fn send_all(args: &RunArgs, calls: Vec<Call>, check: Calls) -> anyhow::Result<()> {
    let calls = Arc::new(calls);
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..args.connections.max(1) {
        let (calls, next, check, target) = (calls.clone(), next.clone(), check.clone(), args.first_target());
        workers.spawn(async move {
            let mut conn = Conn::open(&target, check.wire()).await?;
            loop {
                let i = usize::try_from(next.fetch_add(1, Ordering::Relaxed)).unwrap_or(usize::MAX);
                let Some(call) = calls.get(i) else { return anyhow::Ok(()) };
                let reply = conn.send(call).await?;
                if !check.ok(call, reply.status, &reply.body) {
                    bail!(
                        "setup call {} answered {}: {}",
                        call.path,
                        reply.status,
                        String::from_utf8_lossy(&reply.body)
                    );
                }
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done??;
    }
    Ok(())
}

pub(crate) async fn populate_list(args: &RunArgs, calls: &Calls, service: &str) -> anyhow::Result<()> {
    let registrations = (0..args.instances as u64)
        .map(|n| {
            let (ip, port) = address(n);
            calls.register(service, &ip, port)
        })
        .collect();
    send_all(args, registrations, calls.clone()).await.context("registering the listed service")
}

async fn populate_beaters(args: &RunArgs, calls: &Calls) -> anyhow::Result<()> {
    let registrations = (0..args.instances as u64)
        .map(|n| {
            let (ip, port) = address(n);
            calls.register(&format!("{}-hb-{}", args.prefix, n % 16), &ip, port)
        })
        .collect();
    send_all(args, registrations, calls.clone()).await.context("registering the beaten population")
}

struct WorkerOutcome {
    histogram: hdrhistogram::Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
}

async fn load(args: &RunArgs, workload: Arc<Workload>) -> anyhow::Result<BenchResult> {
    let start = Instant::now();
    let measure_from = start + args.warmup;
    let end = measure_from + args.duration;
    let workers = args.connections.max(1) as u64;
    let targets = args.targets();
    let mut tasks = JoinSet::new();
    for worker in 0..workers {
        // Workers spread round-robin over the targets (the nodes of a cluster).
        let target = targets[usize::try_from(worker).unwrap_or(0) % targets.len()].clone();
        let (workload, scenario) = (workload.clone(), args.scenario);
        let wire = workload.calls.wire();
        tasks.spawn(async move {
            let mut outcome = WorkerOutcome { histogram: histogram(), errors: 0, first_error: None };
            let mut conn = Conn::open(&target, wire).await?;
            let mut seq = 0;
            loop {
                let sent = Instant::now();
                if sent >= end {
                    return anyhow::Ok(outcome);
                }
                let call = workload.next(scenario, worker, seq, workers);
                seq += 1;
                let answer = conn.send(&call).await;
                let latency = sent.elapsed();
                let measured = sent >= measure_from;
                match answer {
                    Ok(reply) if workload.calls.ok(&call, reply.status, &reply.body) => {
                        if measured {
                            record(&mut outcome.histogram, latency);
                        }
                    }
                    Ok(reply) => {
                        if measured {
                            outcome.errors += 1;
                            outcome.first_error.get_or_insert_with(|| {
                                format!("{}: {}", reply.status, String::from_utf8_lossy(&reply.body))
                            });
                        }
                    }
                    Err(err) => {
                        if measured {
                            outcome.errors += 1;
                            outcome.first_error.get_or_insert_with(|| err.to_string());
                        }
                        conn = Conn::open(&target, wire).await?;
                    }
                }
            }
        });
    }
    let mut merged = histogram();
    let (mut errors, mut first_error) = (0, None);
    while let Some(done) = tasks.join_next().await {
        let outcome = done??;
        merged.add(&outcome.histogram)?;
        errors += outcome.errors;
        first_error = first_error.or(outcome.first_error);
    }
    Ok(BenchResult::from_histogram(args, &merged, errors, args.duration, first_error))
}

/// Write-to-wake latency: watchers block on a service (on the other targets
/// than the writer's when there are several: cross-node); a writer registers
/// a new instance every 20 ms and stamps the moment it sends each; a watcher
/// that wakes reads which new instances the answer holds and records, for
/// each, how long after its stamp it woke. So writes coalesced into one
/// wake (by replication's sync window) each count with their own latency.
async fn watch(args: &RunArgs, calls: &Calls) -> anyhow::Result<BenchResult> {
    let service = format!("{}-watch", args.prefix);
    let targets = args.targets();
    let watched: Vec<String> = if targets.len() > 1 { targets[1..].to_vec() } else { targets.clone() };
    let mut writer = Conn::open(&args.first_target(), Wire::Http1).await?;
    let reply = writer.send(&calls.register(&service, "10.200.0.1", 1)).await?;
    if !reply.status.is_success() {
        bail!("cannot register the watched service: {} {}", reply.status, String::from_utf8_lossy(&reply.body));
    }
    // Let the first registration reach every node before the watchers read their index.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let base = Instant::now();
    // Port → when the write of that instance was sent (ns after `base`).
    let stamps: Arc<parking_lot::Mutex<std::collections::HashMap<u64, u64>>> = Arc::default();
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for watcher in 0..args.watchers.max(1) {
        let target = watched[watcher % watched.len()].clone();
        let (stamps, done, calls, service) = (stamps.clone(), done.clone(), calls.clone(), service.clone());
        tasks.spawn(async move {
            let mut conn = Conn::open(&target, Wire::Http1).await?;
            let mut hist = histogram();
            let first = conn.send(&calls.list(&service, None)).await?;
            let Some(mut seen) = first.index else {
                bail!("the target does not support blocking queries (no X-Janus-Index)")
            };
            let mut known = listed_ports(&first.body);
            while done.load(Ordering::Acquire) == 0 {
                let reply = conn.send(&calls.list(&service, Some(seen))).await?;
                let woke = u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX);
                let Some(got) = reply.index.filter(|g| reply.status.is_success() && *g != seen) else { continue };
                seen = got;
                let now_listed = listed_ports(&reply.body);
                let stamps = stamps.lock();
                for port in now_listed.difference(&known) {
                    if let Some(sent) = stamps.get(port) {
                        record(&mut hist, Duration::from_nanos(woke.saturating_sub(*sent)));
                    }
                }
                drop(stamps);
                known = now_listed;
            }
            anyhow::Ok(hist)
        });
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    for n in 0..args.writes as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let port = 2 + n;
        stamps.lock().insert(port, u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX));
        let reply = writer.send(&calls.register(&service, "10.200.0.2", port)).await?;
        if !reply.status.is_success() {
            bail!("watch write failed: {}", reply.status);
        }
    }
    let elapsed = started.elapsed();
    // Time for the last writes to arrive everywhere.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    done.store(1, Ordering::Release);
    // Wake the watchers one last time so they see `done`.
    writer.send(&calls.register(&service, "10.200.0.3", 1)).await?;
    let mut merged = histogram();
    while let Some(finished) = tasks.join_next().await {
        merged.add(&finished??)?;
    }
    let expected = (args.writes * args.watchers.max(1)) as u64;
    let missed = expected.saturating_sub(merged.len());
    Ok(BenchResult::from_histogram(args, &merged, missed, elapsed, None))
}

/// The ports of the instances a list answer holds (native or Nacos JSON):
/// every number after a `"port":`, found by a byte scan (a full JSON parse per
/// wake would make the load generator, not the server, the bottleneck).
pub(crate) fn listed_ports(body: &[u8]) -> std::collections::HashSet<u64> {
    const KEY: &[u8] = b"\"port\":";
    let mut ports = std::collections::HashSet::new();
    let mut rest = body;
    while let Some(at) = rest.windows(KEY.len()).position(|w| w == KEY) {
        rest = &rest[at + KEY.len()..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if let Some(port) = std::str::from_utf8(&rest[..digits]).ok().and_then(|d| d.parse().ok()) {
            ports.insert(port);
        }
    }
    ports
}

/// Registers `--instances` instances (100 per service) as fast as possible,
/// then reads the server's resident memory.
async fn capacity(args: &RunArgs, calls: &Calls) -> anyhow::Result<BenchResult> {
    let started = Instant::now();
    let registrations: Vec<Call> = (0..args.instances as u64)
        .map(|n| {
            let (ip, port) = address(n);
            calls.register(&format!("{}-cap-{}", args.prefix, n / 100), &ip, port)
        })
        .collect();
    send_all(args, registrations, calls.clone()).await.context("registering the capacity population")?;
    capacity_result(args, started.elapsed()).await
}

/// What a capacity run reports: `--instances` registered in `elapsed`, and
/// the server's RSS (read after 2 s of rest) when `--pid` names it.
pub(crate) async fn capacity_result(args: &RunArgs, elapsed: Duration) -> anyhow::Result<BenchResult> {
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut result = BenchResult::from_histogram(args, &histogram(), 0, elapsed, None);
    result.requests = args.instances as u64;
    #[allow(clippy::cast_precision_loss)]
    {
        result.throughput = args.instances as f64 / elapsed.as_secs_f64();
    }
    if let Some(pid) = args.pid {
        result.rss_bytes = Some(read_rss(pid)?);
    }
    Ok(result)
}

/// The resident memory of process `pid`, in bytes.
fn read_rss(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading the server's /proc status")?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .context("no VmRSS in /proc status")?;
    Ok(kib * 1024)
}

/// Creates `--namespace` with the given mode through the native API, with
/// `janus-client` (an existing namespace is fine).
async fn create_namespace(args: &RunArgs, mode: &str) -> anyhow::Result<()> {
    let mode = match mode {
        "ap" => Mode::Ap,
        "cp" => Mode::Cp,
        other => bail!("--create-namespace takes ap or cp, not {other:?}"),
    };
    let namespace = CreateNamespace { id: args.namespace.clone(), name: None, description: None, mode, dns: None };
    let options = args.token.as_deref().map_or_else(Options::default, |token| Options::default().bearer(token));
    let client = Client::new([args.first_target()], options)?;
    // A cluster that just started may still be electing its Raft leader (503).
    let started = Instant::now();
    loop {
        let refused = match client.create_namespace(&namespace).await {
            Ok(_) => return Ok(()),
            Err(error) if error.status() == Some(StatusCode::CONFLICT) => return Ok(()),
            Err(error) => error,
        };
        if refused.status() != Some(StatusCode::SERVICE_UNAVAILABLE) || started.elapsed() > Duration::from_secs(15) {
            bail!("cannot create namespace {}: {refused}", args.namespace);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
