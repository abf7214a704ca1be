//! The scenarios, their checks, and the report.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use janus_client::api::native::{CreateNamespace, Mode};
use janus_client::{ListOptions, ServiceRef, StatusCode, registration};

use crate::docker::{Compose, Node};
use crate::load::{AP_CLIENTS, Load, Stats, fault_ap};

/// The service of the instances registered on both sides of a partition.
fn sides() -> ServiceRef {
    ServiceRef::new("public", "fault-partition")
}
/// The cp namespace the writer uses.
const CP_NS: &str = "fault-cp";
/// One heartbeat timeout: the longest a live instance may be missing.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(15);
/// Sync window + one verify interval (the AP convergence bound).
const CONVERGENCE: Duration = Duration::from_millis(100 + 5000);
/// Election timeout + 1 s (a minority's cp write must fail within it), plus slack.
const REFUSAL: Duration = Duration::from_millis(600 + 1000 + 1000);
/// The cp recovery bound after a leader kill.
const FAILOVER: Duration = Duration::from_secs(2);

/// What one scenario measured and checked.
struct Outcome {
    name: &'static str,
    fault: String,
    measured: Vec<(String, String)>,
    checks: Vec<(String, bool)>,
}

impl Outcome {
    fn new(name: &'static str, fault: &str) -> Self {
        Self { name, fault: fault.to_owned(), measured: Vec::new(), checks: Vec::new() }
    }

    fn measure(&mut self, what: &str, value: impl std::fmt::Display) {
        println!("  {what}: {value}");
        self.measured.push((what.to_owned(), value.to_string()));
    }

    fn check(&mut self, what: String, ok: bool) {
        println!("  [{}] {what}", if ok { "ok" } else { "FAILED" });
        self.checks.push((what, ok));
    }

    fn passed(&self) -> bool {
        self.checks.iter().all(|(_, ok)| *ok)
    }
}

const ALL: [&str; 5] = ["partition", "leader-kill", "pause", "rolling-restart", "full-restart"];

/// Runs the chosen scenarios (all when `chosen` is empty); true if every check passed.
pub(crate) async fn run_all(
    project: &str,
    files: &[String],
    compose_command: &str,
    chosen: &[String],
    report: Option<&Path>,
) -> anyhow::Result<bool> {
    let mut compose = Compose::new(compose_command, project, files)?;
    let mut outcomes = Vec::new();
    for name in ALL {
        if !chosen.is_empty() && !chosen.iter().any(|c| c == name) {
            continue;
        }
        println!("== {name}");
        let outcome = match name {
            "partition" => partition(&mut compose).await,
            "leader-kill" => leader_kill(&mut compose).await,
            "pause" => pause(&mut compose).await,
            "rolling-restart" => rolling_restart(&mut compose).await,
            _ => full_restart(&mut compose).await,
        };
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(error) => {
                let mut failed = Outcome::new(name, "did not complete");
                failed.check(format!("the scenario ran to the end: {error:#}"), false);
                failed
            }
        };
        outcomes.push(outcome);
    }
    compose.down().await?;
    let passed = outcomes.iter().all(Outcome::passed);
    if let Some(path) = report {
        std::fs::write(path, render(&outcomes)).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(passed)
}

/// A fresh cluster with the cp namespace; returns the time it took to be healthy.
async fn fresh(compose: &mut Compose, outcome: &mut Outcome) -> anyhow::Result<()> {
    let healthy = compose.up_fresh().await?;
    outcome.measure("`compose up -d` to three healthy containers", format!("{:.1} s", healthy.as_secs_f64()));
    outcome.check(
        format!("the cluster was healthy within 20 s ({:.1} s)", healthy.as_secs_f64()),
        healthy <= Duration::from_secs(20),
    );
    let started = Instant::now();
    let namespace = CreateNamespace { id: CP_NS.to_owned(), name: None, description: None, mode: Mode::Cp, dns: None };
    loop {
        match compose.nodes[0].client.create_namespace(&namespace).await {
            Ok(_) => return Ok(()),
            Err(e) if e.status() == Some(StatusCode::CONFLICT) => return Ok(()),
            Err(_) => {}
        }
        if started.elapsed() > Duration::from_secs(20) {
            bail!("the cp namespace could not be created within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The Raft leader, as the first node that names one says.
async fn leader(compose: &Compose, among: &[Node]) -> Option<Node> {
    for node in among {
        if let Ok(status) = node.client.cluster_status().await
            && let Some(id) = status["raft"]["leader"].as_u64()
        {
            return compose.nodes.iter().find(|n| n.id == id).cloned();
        }
    }
    None
}

/// The ap instances a node lists.
async fn ap_list(node: &Node) -> Option<BTreeSet<String>> {
    let list = node.client.list_instances(&fault_ap(), &ListOptions::default()).await.ok()?;
    Some(list.instances.into_iter().map(|i| i.ip).collect())
}

/// How long until every node lists the same ap instances, all of the clients'.
async fn converged(compose: &Compose, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        let mut lists = Vec::new();
        for node in &compose.nodes {
            lists.push(ap_list(node).await);
        }
        if lists.iter().all(|l| l.as_ref().is_some_and(|l| l.len() == usize::from(AP_CLIENTS)))
            && lists.windows(2).all(|w| w[0] == w[1])
        {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Acknowledged cp writes missing from a linearizable read on any node.
async fn lost_writes(compose: &Compose, acked: &BTreeSet<u16>) -> anyhow::Result<usize> {
    let ledger = ServiceRef::new(CP_NS, "ledger");
    let mut lost = 0;
    for node in &compose.nodes {
        let started = Instant::now();
        let listed: BTreeSet<u16> = loop {
            match node.client.list_instances(&ledger, &ListOptions::default().linearizable()).await {
                Ok(list) => break list.instances.iter().map(|i| i.port).collect(),
                _ if started.elapsed() > Duration::from_secs(20) => {
                    bail!("{} gave no linearizable read in 20 s", node.name)
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        lost = lost.max(acked.difference(&listed).count());
    }
    Ok(lost)
}

/// A persistent registration through `node` (with 10 s to answer): its
/// status (none without an answer) and how long it took.
async fn cp_write(node: &Node, port: u16) -> (Option<StatusCode>, Duration) {
    let started = Instant::now();
    let client = node.client.with_request_timeout(Duration::from_secs(10));
    let status =
        match client.register_instance(&ServiceRef::new(CP_NS, "ledger"), &registration("127.0.92.1", port)).await {
            Ok(_) => Some(StatusCode::CREATED),
            Err(error) => error.status(),
        };
    (status, started.elapsed())
}

/// A status code, or that there was no answer.
fn shown(status: Option<StatusCode>) -> String {
    status.map_or_else(|| "no answer".to_owned(), |s| s.as_u16().to_string())
}

fn errors(outcome: &mut Outcome, stats: &Stats) {
    let read = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    outcome.measure(
        "ap requests (register, heartbeat): failed / sent",
        format!("{} / {}", read(&stats.ap_errors), read(&stats.ap_requests)),
    );
    outcome.measure(
        "cp writes: refused 503 / other errors / sent",
        format!("{} / {} / {}", read(&stats.cp_refused), read(&stats.cp_errors), read(&stats.cp_writes)),
    );
    outcome.measure("longest gap between acknowledged cp writes", format!("{} ms", read(&stats.cp_longest_gap_ms)));
    outcome.measure(
        "DNS SRV lookups: failed / sent",
        format!("{} / {}", read(&stats.dns_errors), read(&stats.dns_queries)),
    );
}

/// The checks every scenario ends with.
async fn common_checks(compose: &Compose, outcome: &mut Outcome, load: Load) -> anyhow::Result<()> {
    let converge = converged(compose, Duration::from_secs(30)).await;
    let (stats, acked, absence) = load.stop().await;
    errors(outcome, &stats);
    let lost = lost_writes(compose, &acked).await?;
    outcome.measure("acknowledged cp writes lost", format!("{lost} of {}", acked.len()));
    outcome.check(format!("no acknowledged cp write lost ({lost} of {})", acked.len()), lost == 0);
    outcome.measure(
        "longest a live ap instance was missing from a ready node's list",
        format!("{:.1} s", absence.as_secs_f64()),
    );
    outcome.check(
        format!("no live instance missing for longer than one heartbeat timeout ({:.1} s)", absence.as_secs_f64()),
        absence <= HEARTBEAT_TIMEOUT,
    );
    outcome.check("every node lists the same ap instances at the end".to_owned(), converge.is_some());
    Ok(())
}

async fn partition(compose: &mut Compose) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome::new(
        "partition",
        "node 3 cut off from the other nodes (`docker network disconnect` of the cluster network) for 15 s; clients still reach every node",
    );
    fresh(compose, &mut outcome).await?;
    let load = Load::start(&compose.nodes, CP_NS);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (minority, majority) = (&compose.nodes[2], &compose.nodes[0]);
    let ap_before = load.stats.ap_errors.load(Ordering::Relaxed);
    compose.partition(minority).await?;
    let cut = Instant::now();
    // Give the cut a moment to be noticed by Raft (the first writes may still commit).
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (status, took) = cp_write(minority, 60_001).await;
    outcome.measure("cp write on the minority node", format!("{} after {} ms", shown(status), took.as_millis()));
    outcome.check(
        format!("the minority refuses cp writes with 503 within {} ms ({} ms)", REFUSAL.as_millis(), took.as_millis()),
        status == Some(StatusCode::SERVICE_UNAVAILABLE) && took <= REFUSAL,
    );
    let (status, took) = cp_write(majority, 60_002).await;
    outcome.measure("cp write on the majority", format!("{} after {} ms", shown(status), took.as_millis()));
    outcome.check("the majority takes cp writes".to_owned(), status == Some(StatusCode::CREATED));
    // New instances on both sides of the cut, which the other side cannot see yet.
    let mut side_errors = 0;
    for n in 1..=10u8 {
        for (node, side) in [(minority, 1), (majority, 2)] {
            let answer = node.client.register_instance(&sides(), &registration(format!("10.93.{side}.{n}"), 80)).await;
            side_errors += usize::from(answer.is_err());
        }
    }
    outcome.check(
        format!("registrations on both sides of the partition succeeded ({side_errors} of 20 failed)"),
        side_errors == 0,
    );
    if let Some(remaining) = Duration::from_secs(15).checked_sub(cut.elapsed()) {
        tokio::time::sleep(remaining).await;
    }
    let ap_errors = load.stats.ap_errors.load(Ordering::Relaxed) - ap_before;
    outcome.check(
        format!("every ap request to every node succeeded during the partition ({ap_errors} failed)"),
        ap_errors == 0,
    );
    compose.heal(minority).await?;
    let healed = Instant::now();
    let mut converge = None;
    while healed.elapsed() < Duration::from_secs(30) {
        let mut counts = Vec::new();
        for node in &compose.nodes {
            let answer = node.client.list_instances(&sides(), &ListOptions::default()).await;
            counts.push(answer.map_or(0, |list| list.instances.len()));
        }
        if counts.iter().all(|n| *n == 20) {
            converge = Some(healed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let what = "every node lists the 20 instances registered on both sides, after the heal";
    match converge {
        Some(took) => outcome.measure(what, format!("{} ms", took.as_millis())),
        None => outcome.measure(what, "not within 30 s"),
    }
    outcome.check(
        format!("ap converged within the sync window + one verify interval ({} ms)", CONVERGENCE.as_millis()),
        converge.is_some_and(|t| t <= CONVERGENCE),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    common_checks(compose, &mut outcome, load).await?;
    Ok(outcome)
}

async fn leader_kill(compose: &mut Compose) -> anyhow::Result<Outcome> {
    let mut outcome =
        Outcome::new("leader-kill", "the Raft leader's container killed with SIGKILL, then started again");
    fresh(compose, &mut outcome).await?;
    let load = Load::start(&compose.nodes, CP_NS);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let victim = leader(compose, &compose.nodes).await.context("no node names a leader")?;
    let survivor = compose.nodes.iter().find(|n| n.id != victim.id).cloned().context("no survivor")?;
    load.avoid.lock().map(|mut a| a.insert(victim.id)).ok();
    compose.kill(&victim).await?;
    let killed = Instant::now();
    let mut port = 61_000;
    let recovered = loop {
        port += 1;
        let (status, _) = cp_write(&survivor, port).await;
        if status == Some(StatusCode::CREATED) {
            break Some(killed.elapsed());
        }
        if killed.elapsed() > Duration::from_secs(30) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    match recovered {
        Some(took) => outcome.measure(
            format!("cp writes succeed again after killing leader {}", victim.name).as_str(),
            format!("{} ms", took.as_millis()),
        ),
        None => outcome.measure("cp writes succeed again after killing the leader", "not within 30 s"),
    }
    outcome.check(
        format!("cp writes back within {} s of the leader kill", FAILOVER.as_secs()),
        recovered.is_some_and(|t| t <= FAILOVER),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    compose.start(&victim).await?;
    let back = compose.wait_node_healthy(&victim, Duration::from_secs(30)).await?;
    outcome.measure("the killed node healthy again after its start", format!("{:.1} s", back.as_secs_f64()));
    load.avoid.lock().map(|mut a| a.remove(&victim.id)).ok();
    tokio::time::sleep(Duration::from_secs(5)).await;
    common_checks(compose, &mut outcome, load).await?;
    Ok(outcome)
}

async fn pause(compose: &mut Compose) -> anyhow::Result<Outcome> {
    let mut outcome =
        Outcome::new("pause", "node 2 frozen (`docker pause`) for 10 s, longer than the failure detector (3 s)");
    fresh(compose, &mut outcome).await?;
    let load = Load::start(&compose.nodes, CP_NS);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let frozen = compose.nodes[1].clone();
    load.avoid.lock().map(|mut a| a.insert(frozen.id)).ok();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ap_before = load.stats.ap_errors.load(Ordering::Relaxed);
    compose.pause(&frozen).await?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let ap_errors = load.stats.ap_errors.load(Ordering::Relaxed) - ap_before;
    outcome.measure("ap requests to the other nodes that failed while node 2 was frozen", ap_errors);
    compose.unpause(&frozen).await?;
    let (status, _) = cp_write(&compose.nodes[0], 62_001).await;
    outcome.check("cp writes work with one node frozen and after".to_owned(), status == Some(StatusCode::CREATED));
    load.avoid.lock().map(|mut a| a.remove(&frozen.id)).ok();
    let converge = converged(compose, Duration::from_secs(30)).await;
    if let Some(took) = converge {
        outcome.measure("ap lists identical on every node after the thaw", format!("{} ms", took.as_millis()));
    }
    outcome.check(
        format!("ap converged within {} ms of the thaw", CONVERGENCE.as_millis()),
        converge.is_some_and(|t| t <= CONVERGENCE),
    );
    common_checks(compose, &mut outcome, load).await?;
    Ok(outcome)
}

async fn rolling_restart(compose: &mut Compose) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome::new(
        "rolling-restart",
        "each node in turn restarted (`docker restart`, SIGTERM) under load; the next once it is healthy",
    );
    fresh(compose, &mut outcome).await?;
    let load = Load::start(&compose.nodes, CP_NS);
    tokio::time::sleep(Duration::from_secs(5)).await;
    for node in &compose.nodes {
        let started = Instant::now();
        compose.restart(node).await?;
        let healthy = compose.wait_node_healthy(node, Duration::from_secs(30)).await?;
        outcome.measure(
            &format!("{} restarted and healthy", node.name),
            format!("{:.1} s ({:.1} s after its start)", started.elapsed().as_secs_f64(), healthy.as_secs_f64()),
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    common_checks(compose, &mut outcome, load).await?;
    Ok(outcome)
}

async fn full_restart(compose: &mut Compose) -> anyhow::Result<Outcome> {
    let mut outcome =
        Outcome::new("full-restart", "all three stopped (`compose stop`), then started (`compose start`)");
    fresh(compose, &mut outcome).await?;
    let load = Load::start(&compose.nodes, CP_NS);
    tokio::time::sleep(Duration::from_secs(8)).await;
    compose.stop_all().await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    compose.start_all().await?;
    compose.wait_healthy(Duration::from_secs(60)).await?;
    outcome.measure("start to three healthy containers", format!("{:.1} s", started.elapsed().as_secs_f64()));
    let converge = converged(compose, Duration::from_secs(30)).await;
    match converge {
        Some(took) => outcome.measure(
            "every heartbeating client listed on every node again",
            format!("{:.1} s after healthy", took.as_secs_f64()),
        ),
        None => outcome.measure("every heartbeating client listed on every node again", "not within 30 s"),
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let namespace = compose.nodes[1].client.namespace(CP_NS).await;
    outcome.check(
        "the cp namespace definition is back".to_owned(),
        namespace.is_ok_and(|namespace| namespace.mode == Mode::Cp),
    );
    common_checks(compose, &mut outcome, load).await?;
    Ok(outcome)
}

fn render(outcomes: &[Outcome]) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "## Last run\n");
    let _ = writeln!(
        text,
        "`bash tests/fault.sh` on {} cores; {} heartbeating ap clients (beat every 2 s), one cp writer (~20 writes/s through the nodes in turn), a watcher listing the ap service on every ready node every 250 ms, DNS SRV lookups on every node every 500 ms.\n",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        AP_CLIENTS
    );
    for outcome in outcomes {
        let verdict = if outcome.passed() { "passed" } else { "FAILED" };
        let _ = writeln!(
            text,
            "### {} ({verdict})\n\nFault: {}.\n\n| measured | value |\n|---|---|",
            outcome.name, outcome.fault
        );
        for (what, value) in &outcome.measured {
            let _ = writeln!(text, "| {what} | {value} |");
        }
        let _ = writeln!(text, "\n| check | |\n|---|---|");
        for (what, ok) in &outcome.checks {
            let _ = writeln!(text, "| {what} | {} |", if *ok { "ok" } else { "FAILED" });
        }
        text.push('\n');
    }
    text
}
