//! Client load during a scenario, and what it observed:
//! - heartbeating `ap` clients (register, beat every 2 s, register again when
//!   the beat says the instance is unknown, move to the next node on error);
//! - a `cp` writer registering persistent instances through the nodes in turn,
//!   remembering every acknowledged one;
//! - a watcher listing the `ap` service on every ready node, measuring how
//!   long any live instance was missing;
//! - DNS SRV lookups on every node.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use janus_client::dns::QueryOptions;
use janus_client::dns::proto::rr::RecordType;
use janus_client::{ListOptions, ServiceRef, StatusCode, registration};
use tokio::task::JoinHandle;

use crate::docker::{Node, TIMEOUT};

/// Heartbeating instances.
pub(crate) const AP_CLIENTS: u16 = 24;
/// Their beat interval.
const BEAT: Duration = Duration::from_secs(2);

/// The service the heartbeating clients register in.
pub(crate) fn fault_ap() -> ServiceRef {
    ServiceRef::new("public", "fault-ap")
}

/// Counters of what clients saw.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) ap_requests: AtomicU64,
    pub(crate) ap_errors: AtomicU64,
    pub(crate) cp_writes: AtomicU64,
    pub(crate) cp_refused: AtomicU64,
    pub(crate) cp_errors: AtomicU64,
    pub(crate) dns_queries: AtomicU64,
    pub(crate) dns_errors: AtomicU64,
    /// Longest time between two acknowledged cp writes (ms).
    pub(crate) cp_longest_gap_ms: AtomicU64,
}

/// The load running in the background.
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    pub(crate) stats: Arc<Stats>,
    /// Persistent instances (ports) whose registration was acknowledged.
    pub(crate) acked: Arc<Mutex<BTreeSet<u16>>>,
    /// The longest any live ap instance was missing from a ready node's list.
    pub(crate) longest_absence: Arc<Mutex<Duration>>,
    /// Nodes the load does not send to (paused, killed: clients would time out anyway).
    pub(crate) avoid: Arc<Mutex<BTreeSet<u64>>>,
    tasks: Vec<JoinHandle<()>>,
}

fn pick(nodes: &[Node], avoid: &Mutex<BTreeSet<u64>>, turn: usize) -> Node {
    let avoided = avoid.lock().map(|a| a.clone()).unwrap_or_default();
    let usable: Vec<&Node> = nodes.iter().filter(|n| !avoided.contains(&n.id)).collect();
    let pool: Vec<&Node> = if usable.is_empty() { nodes.iter().collect() } else { usable };
    pool[turn % pool.len()].clone()
}

impl Load {
    /// Starts the load against `nodes`; the `cp` writer uses namespace `cp_ns`.
    pub(crate) fn start(nodes: &[Node], cp_ns: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Stats::default());
        let acked = Arc::new(Mutex::new(BTreeSet::new()));
        let longest_absence = Arc::new(Mutex::new(Duration::ZERO));
        let avoid = Arc::new(Mutex::new(BTreeSet::new()));
        let mut tasks = Vec::new();
        for client in 0..AP_CLIENTS {
            let (nodes, stop, stats, avoid) = (nodes.to_vec(), stop.clone(), stats.clone(), avoid.clone());
            tasks.push(tokio::spawn(async move { ap_client(nodes, client, stop, stats, avoid).await }));
        }
        {
            let (nodes, stop, stats, acked, avoid, ns) =
                (nodes.to_vec(), stop.clone(), stats.clone(), acked.clone(), avoid.clone(), cp_ns.to_owned());
            tasks.push(tokio::spawn(async move { cp_writer(nodes, ns, stop, stats, acked, avoid).await }));
        }
        {
            let (nodes, stop, longest, avoid) = (nodes.to_vec(), stop.clone(), longest_absence.clone(), avoid.clone());
            tasks.push(tokio::spawn(async move { watcher(nodes, stop, longest, avoid).await }));
        }
        {
            let (nodes, stop, stats, avoid) = (nodes.to_vec(), stop.clone(), stats.clone(), avoid.clone());
            tasks.push(tokio::spawn(async move { dns(nodes, stop, stats, avoid).await }));
        }
        Self { stop, stats, acked, longest_absence, avoid, tasks }
    }

    /// Stops the load and waits for its tasks.
    pub(crate) async fn stop(self) -> (Arc<Stats>, BTreeSet<u16>, Duration) {
        self.stop.store(true, Ordering::Release);
        for task in self.tasks {
            let _ = task.await;
        }
        let acked = self.acked.lock().map(|a| a.clone()).unwrap_or_default();
        let absence = self.longest_absence.lock().map(|a| *a).unwrap_or_default();
        (self.stats, acked, absence)
    }
}

async fn ap_client(
    nodes: Vec<Node>,
    client: u16,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
    avoid: Arc<Mutex<BTreeSet<u64>>>,
) {
    let ip = format!("10.90.0.{}", client + 1);
    let service = fault_ap();
    let mut turn = usize::from(client);
    let mut registered = false;
    tokio::time::sleep(Duration::from_millis(u64::from(client) * 50)).await;
    while !stop.load(Ordering::Acquire) {
        let node = pick(&nodes, &avoid, turn);
        stats.ap_requests.fetch_add(1, Ordering::Relaxed);
        let answer = if registered {
            node.client.heartbeat(&service, &ip, 8080, None).await.map(drop)
        } else {
            node.client.register_instance(&service, &registration(ip.as_str(), 8080)).await.map(drop)
        };
        match answer {
            Ok(()) => registered = true,
            Err(e) if e.status() == Some(StatusCode::NOT_FOUND) && registered => {
                // The instance is unknown (a full restart): register again at once.
                registered = false;
                continue;
            }
            _ => {
                stats.ap_errors.fetch_add(1, Ordering::Relaxed);
                turn += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        }
        turn += 1;
        tokio::time::sleep(BEAT).await;
    }
}

async fn cp_writer(
    nodes: Vec<Node>,
    ns: String,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
    acked: Arc<Mutex<BTreeSet<u16>>>,
    avoid: Arc<Mutex<BTreeSet<u64>>>,
) {
    let ledger = ServiceRef::new(ns, "ledger");
    let mut port: u16 = 1;
    let mut last_ack = Instant::now();
    let mut turn = 0;
    while !stop.load(Ordering::Acquire) && port < u16::MAX {
        let node = pick(&nodes, &avoid, turn);
        turn += 1;
        stats.cp_writes.fetch_add(1, Ordering::Relaxed);
        match node.client.register_instance(&ledger, &registration("127.0.91.1", port)).await {
            Ok(_) => {
                if let Ok(mut acked) = acked.lock() {
                    acked.insert(port);
                }
                let gap = u64::try_from(last_ack.elapsed().as_millis()).unwrap_or(u64::MAX);
                stats.cp_longest_gap_ms.fetch_max(gap, Ordering::Relaxed);
                last_ack = Instant::now();
            }
            Err(e) if e.status() == Some(StatusCode::SERVICE_UNAVAILABLE) => {
                stats.cp_refused.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                stats.cp_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        port += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn watcher(
    nodes: Vec<Node>,
    stop: Arc<AtomicBool>,
    longest: Arc<Mutex<Duration>>,
    avoid: Arc<Mutex<BTreeSet<u64>>>,
) {
    // Instances count as live from their first listing on.
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut missing_since: HashMap<(u64, String), Instant> = HashMap::new();
    while !stop.load(Ordering::Acquire) {
        let avoided = avoid.lock().map(|a| a.clone()).unwrap_or_default();
        for node in nodes.iter().filter(|n| !avoided.contains(&n.id)) {
            if !node.client.ready().await.unwrap_or(false) {
                continue;
            }
            let Ok(list) = node.client.list_instances(&fault_ap(), &ListOptions::default()).await else { continue };
            let listed: BTreeSet<String> = list.instances.into_iter().map(|i| i.ip).collect();
            seen.extend(listed.iter().cloned());
            for ip in &seen {
                let key = (node.id, ip.clone());
                if listed.contains(ip) {
                    if let Some(since) = missing_since.remove(&key)
                        && let Ok(mut longest) = longest.lock()
                    {
                        *longest = (*longest).max(since.elapsed());
                    }
                } else {
                    missing_since.entry(key).or_insert_with(Instant::now);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    if let Ok(mut longest) = longest.lock() {
        for since in missing_since.values() {
            *longest = (*longest).max(since.elapsed());
        }
    }
}

async fn dns(nodes: Vec<Node>, stop: Arc<AtomicBool>, stats: Arc<Stats>, avoid: Arc<Mutex<BTreeSet<u64>>>) {
    let options = QueryOptions::udp().timeout(TIMEOUT);
    while !stop.load(Ordering::Acquire) {
        let avoided = avoid.lock().map(|a| a.clone()).unwrap_or_default();
        for node in nodes.iter().filter(|n| !avoided.contains(&n.id)) {
            stats.dns_queries.fetch_add(1, Ordering::Relaxed);
            let Ok(server) = node.dns() else {
                stats.dns_errors.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let answer = janus_client::dns::query(server, "_fault-ap._tcp.janus.", RecordType::SRV, options).await;
            if answer.is_err() {
                stats.dns_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
