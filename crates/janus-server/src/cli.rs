//! The operator's subcommands of the `janus` binary: talk to a running node
//! over its HTTP API (or, for membership, its cluster address with the
//! cluster secret) and print the answers. Each returns the process exit code.
//!
//! - `janus health`: exit 0 when the node is ready (for container health checks);
//! - `janus status`: members, ownership ring, replication queues, Raft
//!   leader/term/indexes/lag and health-check counters;
//! - `janus namespaces list|create`;
//! - `janus instances list|register|deregister`;
//! - `janus members list|add|promote|remove` (the Raft admin API).

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::Subcommand;
use http_body_util::{BodyExt as _, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

/// A subcommand; without one, `janus` runs a node.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Exit 0 if the node answers `/ready` with 200 (a container health check).
    Health(Target),
    /// Show the cluster as the node sees it.
    Status(Target),
    /// Namespaces.
    #[command(subcommand)]
    Namespaces(NamespaceCommand),
    /// Instances of a service.
    #[command(subcommand)]
    Instances(InstanceCommand),
    /// Raft members (through the cluster address, with the cluster secret).
    #[command(subcommand)]
    Members(MemberCommand),
}

/// Which node to ask.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// The node's HTTP address.
    #[arg(long, env = "JANUS_ADDR", default_value = "127.0.0.1:8848")]
    pub addr: String,
}

/// `janus namespaces …`.
#[derive(Debug, Subcommand)]
pub enum NamespaceCommand {
    /// List namespaces with their mode.
    List(Target),
    /// Create a namespace.
    Create {
        #[command(flatten)]
        target: Target,
        /// Namespace id.
        id: String,
        /// `ap` or `cp`, fixed for ever.
        #[arg(long)]
        mode: String,
        /// Free text.
        #[arg(long)]
        description: Option<String>,
    },
}

/// `janus instances …`.
#[derive(Debug, Subcommand)]
pub enum InstanceCommand {
    /// List a service's instances.
    List {
        #[command(flatten)]
        target: Target,
        /// Namespace id.
        namespace: String,
        /// Service name.
        service: String,
    },
    /// Register an instance (ephemeral in `ap` namespaces, persistent in `cp` ones).
    Register {
        #[command(flatten)]
        target: Target,
        /// Namespace id.
        namespace: String,
        /// Service name.
        service: String,
        /// Address.
        ip: String,
        /// Port.
        port: u16,
        /// Cluster.
        #[arg(long)]
        cluster: Option<String>,
    },
    /// Remove an instance.
    Deregister {
        #[command(flatten)]
        target: Target,
        /// Namespace id.
        namespace: String,
        /// Service name.
        service: String,
        /// Address.
        ip: String,
        /// Port.
        port: u16,
    },
}

/// Where the Raft admin API is, and the secret it needs.
#[derive(Debug, Clone, clap::Args)]
pub struct Admin {
    /// The node's cluster address.
    #[arg(long, env = "JANUS_CLUSTER_ADDR", default_value = "127.0.0.1:7848")]
    pub cluster_addr: String,
    /// The cluster secret.
    #[arg(long, env = "JANUS_CLUSTER__SECRET", hide_env_values = true)]
    pub secret: String,
}

/// `janus members …`.
#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// The Raft group as the node sees it.
    List(Admin),
    /// Add a node as a learner (returns once it has caught up).
    Add {
        #[command(flatten)]
        admin: Admin,
        /// The new node's id (never used before).
        id: u64,
        /// Its cluster address.
        addr: String,
    },
    /// Make a learner a voter.
    Promote {
        #[command(flatten)]
        admin: Admin,
        /// The learner.
        id: u64,
    },
    /// Take a member out of the group.
    Remove {
        #[command(flatten)]
        admin: Admin,
        /// The member.
        id: u64,
    },
}

/// Runs a subcommand to completion.
#[must_use]
pub fn run(command: Command) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("janus: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(command)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("janus: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command) -> Result<ExitCode, String> {
    match command {
        Command::Health(target) => {
            let (status, body) = call(&target.addr, Method::GET, "/ready", None, None).await?;
            print!("{body}");
            Ok(if status == StatusCode::OK { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Status(target) => {
            let status = expect_json(call(&target.addr, Method::GET, "/v1/cluster", None, None).await?)?;
            print!("{}", render_status(&status));
            Ok(ExitCode::SUCCESS)
        }
        Command::Namespaces(NamespaceCommand::List(target)) => {
            let list = expect_json(call(&target.addr, Method::GET, "/v1/namespaces", None, None).await?)?;
            for ns in list["namespaces"].as_array().into_iter().flatten() {
                println!(
                    "{:<24} {:<3} {:>5} services  {}",
                    text(&ns["id"]),
                    text(&ns["mode"]),
                    ns["service_count"],
                    text(&ns["description"])
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Namespaces(NamespaceCommand::Create { target, id, mode, description }) => {
            let body = json!({"id": id, "mode": mode, "description": description});
            let created = expect_json(call(&target.addr, Method::POST, "/v1/namespaces", Some(body), None).await?)?;
            println!("created namespace {} ({})", text(&created["id"]), text(&created["mode"]));
            Ok(ExitCode::SUCCESS)
        }
        Command::Instances(InstanceCommand::List { target, namespace, service }) => {
            let path = format!("/v1/namespaces/{namespace}/services/{service}/instances");
            let list = expect_json(call(&target.addr, Method::GET, &path, None, None).await?)?;
            println!("{} ({}), revision {}", service, text(&list["mode"]), list["revision"]);
            for i in list["instances"].as_array().into_iter().flatten() {
                let health = if i["healthy"] == true { "healthy" } else { "unhealthy" };
                println!(
                    "  {}:{} cluster={} weight={} {health}",
                    text(&i["ip"]),
                    i["port"],
                    text(&i["cluster"]),
                    i["weight"]
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Instances(InstanceCommand::Register { target, namespace, service, ip, port, cluster }) => {
            let path = format!("/v1/namespaces/{namespace}/services/{service}/instances");
            let body = json!({"ip": ip, "port": port, "cluster": cluster});
            let done = expect_json(call(&target.addr, Method::POST, &path, Some(body), None).await?)?;
            println!(
                "registered {ip}:{port} in {namespace}/{service} ({}), revision {}",
                text(&done["mode"]),
                done["revision"]
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Instances(InstanceCommand::Deregister { target, namespace, service, ip, port }) => {
            let path = format!("/v1/namespaces/{namespace}/services/{service}/instances/{ip}/{port}");
            expect_json(call(&target.addr, Method::DELETE, &path, None, None).await?)?;
            println!("deregistered {ip}:{port} from {namespace}/{service}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Members(command) => members(command).await,
    }
}

async fn members(command: MemberCommand) -> Result<ExitCode, String> {
    let (admin, method, path, body) = match command {
        MemberCommand::List(admin) => (admin, Method::GET, "/internal/admin/members".to_owned(), None),
        MemberCommand::Add { admin, id, addr } => {
            (admin, Method::POST, "/internal/admin/members".to_owned(), Some(json!({"id": id, "addr": addr})))
        }
        MemberCommand::Promote { admin, id } => {
            (admin, Method::POST, format!("/internal/admin/members/{id}/promote"), None)
        }
        MemberCommand::Remove { admin, id } => (admin, Method::DELETE, format!("/internal/admin/members/{id}"), None),
    };
    let members = expect_json(call(&admin.cluster_addr, method, &path, body, Some(&admin.secret)).await?)?;
    println!("leader: {}", members["leader"]);
    for (kind, key) in [("voter", "voters"), ("learner", "learners")] {
        for (id, addr) in members[key].as_object().into_iter().flatten() {
            println!("  {kind:<7} {id:>4} {}", text(addr));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A JSON string without quotes, anything else as JSON.
fn text(value: &Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_owned)
}

fn expect_json((status, body): (StatusCode, String)) -> Result<Value, String> {
    if !status.is_success() {
        return Err(format!("{status}: {}", body.trim()));
    }
    serde_json::from_str(&body).map_err(|e| format!("the node answered something that is not JSON: {e}"))
}

/// The `/v1/cluster` answer as a few tables.
fn render_status(status: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "node {}", status["node"]);
    let ap = &status["ap"];
    if ap.is_object() {
        let _ = writeln!(out, "\nAP (Distro): ready={} ring={}", ap["ready"], ap["ring"]);
        let _ = writeln!(
            out,
            "  {:>4}  {:<22} {:<8} {:<6} {:>8} {:>14}",
            "id", "address", "state", "ready", "in ring", "last seen (ms)"
        );
        for m in ap["members"].as_array().into_iter().flatten() {
            let seen = if m["this_node"] == true { "this node".to_owned() } else { text(&m["last_seen_ms_ago"]) };
            let _ = writeln!(
                out,
                "  {:>4}  {:<22} {:<8} {:<6} {:>8} {:>14}",
                m["id"],
                text(&m["addr"]),
                text(&m["state"]),
                m["ready"],
                m["in_ring"],
                seen
            );
        }
        for q in ap["queues"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "  queue to {}: {} queued, {} overflows", q["peer"], q["queued"], q["overflows"]);
        }
        for (name, value) in ap["counters"].as_object().into_iter().flatten() {
            let _ = writeln!(out, "  {name}: {value}");
        }
    } else {
        let _ = writeln!(out, "\nAP: a lone node (no replication)");
    }
    let raft = &status["raft"];
    if raft.is_object() {
        let _ = writeln!(
            out,
            "\nRaft: {} term={} leader={} last_log={} commit={} applied={}",
            text(&raft["state"]),
            raft["term"],
            raft["leader"],
            raft["last_log_index"],
            raft["commit_index"],
            raft["applied_index"]
        );
        let _ = writeln!(out, "  voters: {}  learners: {}", raft["voters"], raft["learners"]);
        for (peer, lag) in raft["lag"].as_object().into_iter().flatten() {
            let _ = writeln!(out, "  replication lag of {peer}: {lag} entries");
        }
    }
    let health = &status["health"];
    if health.is_object() {
        let _ = writeln!(
            out,
            "\nHealth checks: {} instances checked here, {} probes ({} failed), {} flips, {} refused by the probe policy",
            health["checked"],
            health["probes"],
            health["probe_failures"],
            health["flips"],
            health["refused"].as_u64().unwrap_or(0)
        );
        for refused in health["refused_targets"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "  not probed: {} {} {}:{} ({})",
                text(&refused["service"]),
                text(&refused["cluster"]),
                text(&refused["ip"]),
                refused["port"],
                text(&refused["rule"])
            );
        }
    }
    out
}

/// One HTTP/1.1 request on a fresh connection, with a 10 s deadline.
async fn call(
    addr: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    secret: Option<&str>,
) -> Result<(StatusCode, String), String> {
    let exchange = async {
        let stream = TcpStream::connect(addr).await.map_err(|e| format!("cannot reach {addr}: {e}"))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            // Ends with the request; an error shows up on the send.
            let _ = connection.await;
        });
        let mut request = Request::builder().method(method).uri(path).header("host", addr);
        if let Some(secret) = secret {
            request = request.header("authorization", format!("Bearer {secret}"));
        }
        let payload = match body {
            Some(json) => {
                request = request.header("content-type", "application/json");
                Full::new(Bytes::from(json.to_string()))
            }
            None => Full::new(Bytes::new()),
        };
        let request = request.body(payload).map_err(|e| e.to_string())?;
        let response = sender.send_request(request).await.map_err(|e| format!("{addr}: {e}"))?;
        let status = response.status();
        let bytes = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| format!("{addr} did not answer in 10 s"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_renders_every_part() {
        let status = json!({
            "node": 2,
            "ap": {"ready": true, "ring": [1, 2], "members": [
                {"id": 2, "addr": "10.0.0.2:7848", "state": "up", "ready": true, "in_ring": true, "this_node": true, "last_seen_ms_ago": null},
                {"id": 1, "addr": "10.0.0.1:7848", "state": "down", "ready": false, "in_ring": false, "this_node": false, "last_seen_ms_ago": 4000}
            ], "queues": [{"peer": 1, "queued": 12, "overflows": 0}], "counters": {"verify_failures": 3}},
            "raft": {"state": "leader", "term": 4, "leader": 2, "last_log_index": 10, "commit_index": 10, "applied_index": 10,
                     "voters": {"1": "a", "2": "b"}, "learners": {}, "lag": {"1": 7}},
            "health": {"checked": 5, "probes": 40, "probe_failures": 3, "flips": 1, "refused": 1, "refused_targets": [
                {"service": "pay/DEFAULT_GROUP@@db", "cluster": "DEFAULT", "ip": "169.254.169.254", "port": 80,
                 "rule": "deny-list network 169.254.0.0/16"}
            ]}
        });
        let text = render_status(&status);
        for wanted in [
            "node 2",
            "ring=[1,2]",
            "down",
            "12 queued",
            "verify_failures: 3",
            "term=4",
            "lag of 1: 7 entries",
            "5 instances checked",
            "1 refused by the probe policy",
            "not probed: pay/DEFAULT_GROUP@@db DEFAULT 169.254.169.254:80 (deny-list network 169.254.0.0/16)",
        ] {
            assert!(text.contains(wanted), "{wanted:?} missing from\n{text}");
        }
    }
}
