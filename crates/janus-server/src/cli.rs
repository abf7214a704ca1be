//! The operator's subcommands of the `janus` binary: talk to a running node
//! over its HTTP API (or, for membership, its cluster address with the
//! cluster secret) and print the answers. Each returns the process exit code.
//!
//! - `janus health`: exit 0 when the node is ready (for container health checks);
//! - `janus status`: members, ownership ring, replication queues, Raft
//!   leader/term/indexes/lag and health-check counters;
//! - `janus namespaces list|create|dns`;
//! - `janus instances list|register|deregister`;
//! - `janus members list|add|promote|remove` (the Raft admin API);
//! - `janus auth whoami|users|grants|tokens` (the access API, [`access`]);
//! - `janus agent`: the sidecar ([`agent`], `docs/agent.md`).
//!
//! The node's addresses and the secret are read as the server reads them:
//! `--addr` or `JANUS_HTTP__ADDR` (`http.addr`), `--cluster-addr` or
//! `JANUS_CLUSTER__ADDR` (`cluster.addr`), `--secret` or
//! `JANUS_CLUSTER__SECRET` (`cluster.secret`); an unspecified listen address
//! such as `0.0.0.0` stands for this host. The old `JANUS_ADDR` and
//! `JANUS_CLUSTER_ADDR` still work, with a warning. Every error is a
//! sentence: a refusal shows the `message` of the node's `{code, message}`.
//!
//! Every call goes through `janus-client`, one address at a time, with a
//! 10 s deadline.

pub mod access;
pub mod agent;

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use janus_client::api::native::{CreateNamespace, Mode, UpdateNamespace};
use janus_client::{Body, Client, ListOptions, Method, Options, Request, ServiceRef, StatusCode, registration};
use serde_json::{Value, json};

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
    /// Users, grants and API tokens (a global admin's token; docs/auth.md).
    #[command(subcommand)]
    Auth(access::AuthCommand),
    /// Run the sidecar next to an app: keep it registered while its health
    /// check passes, and proxy its calls to other services (docs/agent.md).
    Agent(Box<agent::AgentArgs>),
}

/// Exit code for a bad configuration (BSD `EX_USAGE`).
pub const EX_USAGE: u8 = 64;

/// The node's HTTP address when none is given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8848";
/// The node's cluster address when none is given.
pub const DEFAULT_CLUSTER_ADDR: &str = "127.0.0.1:7848";

/// Which node to ask.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// The node's HTTP address, as in its `http.addr` (0.0.0.0 means this
    /// host) [default: 127.0.0.1:8848]
    #[arg(long, env = "JANUS_HTTP__ADDR")]
    pub addr: Option<String>,
    /// An API token, sent as `Authorization: Bearer …`, for a node with
    /// auth on (docs/auth.md)
    #[arg(long, env = "JANUS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl Target {
    /// The address to connect to: `--addr`, else `JANUS_HTTP__ADDR` (the
    /// server's variable for `http.addr`), else the deprecated `JANUS_ADDR`
    /// (with a warning on stderr), else [`DEFAULT_ADDR`].
    #[must_use]
    pub fn resolve(&self) -> String {
        resolve(self.addr.as_deref(), "JANUS_ADDR", "JANUS_HTTP__ADDR", DEFAULT_ADDR)
    }
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
        #[arg(long, value_parser = ["ap", "cp"])]
        mode: String,
        /// Free text.
        #[arg(long)]
        description: Option<String>,
        /// Keep the namespace out of DNS (the DNS access rule; docs/dns.md).
        #[arg(long)]
        no_dns: bool,
    },
    /// Whether DNS answers for a namespace's services (the DNS access rule).
    Dns {
        #[command(flatten)]
        target: Target,
        /// Namespace id.
        id: String,
        /// `on`: answered (the default); `off`: every query for it is refused.
        #[arg(value_parser = ["on", "off"])]
        state: String,
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
        /// The service's group [default: DEFAULT_GROUP]
        #[arg(long)]
        group: Option<String>,
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
        /// The service's group [default: DEFAULT_GROUP]
        #[arg(long)]
        group: Option<String>,
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
        /// The service's group [default: DEFAULT_GROUP]
        #[arg(long)]
        group: Option<String>,
    },
}

/// Where the Raft admin API is, and the secret it needs.
#[derive(Debug, Clone, clap::Args)]
pub struct Admin {
    /// The node's HTTP address (asked whether the node is clustered at all).
    #[command(flatten)]
    pub target: Target,
    /// The node's cluster address, as in its `cluster.addr` (0.0.0.0 means
    /// this host) [default: 127.0.0.1:7848]
    #[arg(long, env = "JANUS_CLUSTER__ADDR")]
    pub cluster_addr: Option<String>,
    /// The cluster secret, as in the node's `cluster.secret`.
    #[arg(long, env = "JANUS_CLUSTER__SECRET", hide_env_values = true)]
    pub secret: Option<String>,
}

impl Admin {
    /// The cluster address to connect to: `--cluster-addr`, else
    /// `JANUS_CLUSTER__ADDR`, else the deprecated `JANUS_CLUSTER_ADDR` (with
    /// a warning), else [`DEFAULT_CLUSTER_ADDR`].
    #[must_use]
    pub fn resolve_cluster_addr(&self) -> String {
        resolve(self.cluster_addr.as_deref(), "JANUS_CLUSTER_ADDR", "JANUS_CLUSTER__ADDR", DEFAULT_CLUSTER_ADDR)
    }
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
        /// Its cluster address (its `cluster.addr` as the members reach it).
        #[arg(value_name = "CLUSTER_ADDR")]
        member_addr: String,
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

/// An address given on the command line or by the server's variable, else
/// by the CLI's old variable (warning that it is deprecated), else the
/// default; an unspecified IP (a listen address such as `0.0.0.0:8848`)
/// becomes loopback.
fn resolve(given: Option<&str>, old: &str, new: &str, default: &str) -> String {
    let chosen = match given {
        Some(addr) => addr.to_owned(),
        None => match std::env::var(old) {
            Ok(addr) if !addr.is_empty() => {
                eprintln!("janus: {old} is deprecated and will go away; set {new} instead (the server's name for it)");
                addr
            }
            _ => default.to_owned(),
        },
    };
    dialable(&chosen)
}

/// `0.0.0.0:p` and `[::]:p` as the loopback address of their family.
fn dialable(addr: &str) -> String {
    match addr.parse::<SocketAddr>() {
        Ok(mut parsed) if parsed.ip().is_unspecified() => {
            parsed.set_ip(match parsed.ip() {
                IpAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                IpAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
            });
            parsed.to_string()
        }
        _ => addr.to_owned(),
    }
}

/// Runs a subcommand to completion.
#[must_use]
pub fn run(command: Command) -> ExitCode {
    if let Command::Agent(args) = &command {
        return agent::run(args);
    }
    // The CLI reads only its addresses and the secret, but a `JANUS_`
    // variable that matches no setting is most likely a typo of one of them.
    for problem in crate::config::environment_problems(std::env::vars()) {
        eprintln!("janus: warning: {problem}");
    }
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

/// Why a command failed: each says what to do about it.
#[derive(Debug, thiserror::Error)]
enum CliError {
    /// The node's HTTP address did not answer.
    #[error(
        "{error}: is janus running there? Give its HTTP address with --addr or JANUS_HTTP__ADDR (default {DEFAULT_ADDR})"
    )]
    NodeUnreachable {
        /// The failed call.
        error: janus_client::Error,
    },
    /// The node's cluster address did not answer.
    #[error(
        "{error}, the node's cluster address: give it (the node's cluster.addr) with --cluster-addr or \
         JANUS_CLUSTER__ADDR (default {DEFAULT_CLUSTER_ADDR})"
    )]
    ClusterUnreachable {
        /// The failed call.
        error: janus_client::Error,
    },
    /// A call broke off or timed out.
    #[error("{0}")]
    Call(janus_client::Error),
    /// A members command without the cluster secret.
    #[error(
        "the members admin API needs the cluster secret: pass the node's cluster.secret with --secret or \
         JANUS_CLUSTER__SECRET"
    )]
    NoSecret,
    /// The node refused the cluster secret.
    #[error(
        "the node refused the cluster secret (HTTP 401): pass its cluster.secret with --secret or \
         JANUS_CLUSTER__SECRET"
    )]
    SecretRefused,
    /// A members command to a node that is not clustered.
    #[error("the node at {addr} {NOT_CLUSTERED}")]
    NotClustered {
        /// The node's HTTP address.
        addr: String,
    },
    /// The node refused the request; the sentence is [`described`]'s.
    #[error("{0}")]
    Refused(String),
    /// The node answered something that is not the JSON asked for.
    #[error("the node answered something that is not JSON: {0}")]
    NotJson(String),
}

impl CliError {
    /// A failed call to the node's HTTP address: an unreachable node is
    /// explained, and so is a node that wants a token.
    fn from_node(error: janus_client::Error) -> Self {
        match error {
            janus_client::Error::Unreachable { .. } => Self::NodeUnreachable { error },
            janus_client::Error::Refused { status, .. } if status == StatusCode::UNAUTHORIZED => {
                Self::Refused(format!(
                    "{}; this node checks tokens: give one with --token or JANUS_TOKEN (docs/auth.md)",
                    described(&error)
                ))
            }
            error => Self::answered(error),
        }
    }

    /// A refusal as the sentence [`described`] makes of it, an answer that
    /// is not JSON, or a call that broke off.
    fn answered(error: janus_client::Error) -> Self {
        match error {
            janus_client::Error::Refused { .. } => Self::Refused(described(&error)),
            janus_client::Error::Malformed { reason, .. } => Self::NotJson(reason),
            error => Self::Call(error),
        }
    }
}

/// The CLI's deadline of a call.
const DEADLINE: Duration = Duration::from_secs(10);

/// A client of one address with the CLI's deadline; `secret` (the cluster
/// secret for the membership API, an API token for the node's API) is sent
/// as a bearer token.
fn client(addr: &str, secret: Option<&str>) -> Result<Client, CliError> {
    // The connect shares the request's deadline, so a silent address is
    // reported as not answering within it, as a fresh TCP connect was.
    let mut options = Options::default().request_timeout(DEADLINE).connect_timeout(DEADLINE + Duration::from_secs(1));
    if let Some(secret) = secret {
        options = options.bearer(secret);
    }
    Client::new([addr], options).map_err(CliError::Call)
}

/// A client of the node's HTTP address.
fn node_client(target: &Target) -> Result<Client, CliError> {
    client(&target.resolve(), target.token.as_deref())
}

/// `ap` or `cp`.
fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Ap => "ap",
        Mode::Cp => "cp",
    }
}

async fn execute(command: Command) -> Result<ExitCode, CliError> {
    match command {
        Command::Health(target) => {
            let answer =
                node_client(&target)?.request(Method::GET, "/ready", Body::Empty).await.map_err(CliError::from_node)?;
            print!("{}", answer.text());
            Ok(if answer.status == StatusCode::OK { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Status(target) => {
            let status = node_client(&target)?.cluster_status().await.map_err(CliError::from_node)?;
            print!("{}", render_status(&status));
            Ok(ExitCode::SUCCESS)
        }
        Command::Namespaces(NamespaceCommand::List(target)) => {
            let list = node_client(&target)?.list_namespaces().await.map_err(CliError::from_node)?;
            for ns in &list.namespaces {
                let dns = if ns.dns { "" } else { "  (no DNS)" };
                println!(
                    "{:<24} {:<3} {} services  {}{dns}",
                    ns.id,
                    mode_name(ns.mode),
                    ns.service_count,
                    ns.description
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Namespaces(NamespaceCommand::Create { target, id, mode, description, no_dns }) => {
            let mode = if mode == "cp" { Mode::Cp } else { Mode::Ap };
            let namespace = CreateNamespace { id, name: None, description, mode, dns: no_dns.then_some(false) };
            let created = node_client(&target)?.create_namespace(&namespace).await.map_err(CliError::from_node)?;
            let dns = if created.dns { "" } else { ", not answered over DNS" };
            println!("created namespace {} ({}{dns})", created.id, mode_name(created.mode));
            Ok(ExitCode::SUCCESS)
        }
        Command::Namespaces(NamespaceCommand::Dns { target, id, state }) => {
            let update = UpdateNamespace { dns: Some(state == "on"), ..UpdateNamespace::default() };
            let updated = node_client(&target)?.update_namespace(&id, &update).await.map_err(CliError::from_node)?;
            let answered =
                if updated.dns { "answered over DNS" } else { "not answered over DNS (queries are refused)" };
            println!("namespace {}: {answered}", updated.id);
            Ok(ExitCode::SUCCESS)
        }
        Command::Instances(InstanceCommand::List { target, namespace, service, group }) => {
            let of = ServiceRef::new(namespace, service.as_str()).in_group(group);
            let client = node_client(&target)?;
            let list = client.list_instances(&of, &ListOptions::default()).await.map_err(CliError::from_node)?;
            println!("{}@@{} ({}), revision {}", list.group, service, mode_name(list.mode), list.revision);
            for i in &list.instances {
                let health = if i.healthy { "healthy" } else { "unhealthy" };
                // As JSON, the way the node wrote it (`1.0`, not `1`).
                let weight = Value::from(i.weight);
                println!("  {}:{} cluster={} weight={weight} {health}", i.ip, i.port, i.cluster);
            }
            if list.reach_protection_threshold {
                println!("  (protect threshold reached: unhealthy instances are listed as healthy)");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Instances(InstanceCommand::Register { target, namespace, service, ip, port, group, cluster }) => {
            let of = ServiceRef::new(namespace.as_str(), service.as_str()).in_group(group);
            let mut instance = registration(ip.as_str(), port);
            instance.cluster = cluster;
            let done = node_client(&target)?.register_instance(&of, &instance).await.map_err(CliError::from_node)?;
            println!(
                "registered {ip}:{port} in {namespace}/{service} ({}), revision {}",
                mode_name(done.mode),
                done.revision
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Instances(InstanceCommand::Deregister { target, namespace, service, ip, port, group }) => {
            let of = ServiceRef::new(namespace.as_str(), service.as_str()).in_group(group);
            let client = node_client(&target)?;
            client.deregister_instance(&of, &ip, port, None).await.map_err(CliError::from_node)?;
            println!("deregistered {ip}:{port} from {namespace}/{service}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Members(command) => members(command).await,
        Command::Auth(command) => access::execute(command).await,
        // Run by `run` before any runtime exists.
        Command::Agent(_) => Ok(ExitCode::SUCCESS),
    }
}

async fn members(command: MemberCommand) -> Result<ExitCode, CliError> {
    let (admin, request) = match command {
        MemberCommand::List(admin) => (admin, Request::new(Method::GET, "/internal/admin/members")),
        MemberCommand::Add { admin, id, member_addr } => {
            let body = Body::from(json!({"id": id, "addr": member_addr}));
            (admin, Request::new(Method::POST, "/internal/admin/members").body(body))
        }
        MemberCommand::Promote { admin, id } => {
            (admin, Request::new(Method::POST, format!("/internal/admin/members/{id}/promote")))
        }
        MemberCommand::Remove { admin, id } => {
            (admin, Request::new(Method::DELETE, format!("/internal/admin/members/{id}")))
        }
    };
    let Some(secret) = admin.secret.as_deref().filter(|s| !s.is_empty()) else {
        require_cluster(&admin.target).await?;
        return Err(CliError::NoSecret);
    };
    let answer = match client(&admin.resolve_cluster_addr(), Some(secret))?.send(request).await {
        Ok(answer) => answer,
        Err(error @ janus_client::Error::Unreachable { .. }) => {
            require_cluster(&admin.target).await?;
            return Err(CliError::ClusterUnreachable { error });
        }
        Err(error) => return Err(CliError::Call(error)),
    };
    if answer.status == StatusCode::UNAUTHORIZED {
        return Err(CliError::SecretRefused);
    }
    let members: Value = answer.error_for_status().and_then(|a| a.json()).map_err(CliError::answered)?;
    println!("leader: {}", members["leader"]);
    for (kind, key) in [("voter", "voters"), ("learner", "learners")] {
        for (id, addr) in members[key].as_object().into_iter().flatten() {
            println!("  {kind:<7} {id:>4} {}", text(addr));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What a node that is not clustered has to say to a members command.
pub const NOT_CLUSTERED: &str = "is not clustered, so it has no cluster address and no Raft members to list or \
                                 change. A node forms or joins a cluster with cluster.members (or cluster.join), \
                                 cluster.addr and cluster.secret in its configuration (JANUS_CLUSTER__MEMBERS, \
                                 JANUS_CLUSTER__ADDR, JANUS_CLUSTER__SECRET); see docs/consistency.md";

/// Asks the node's HTTP address whether it is clustered: an error saying
/// so when it is not. A node that cannot be asked passes (the caller's own
/// error says what went wrong).
async fn require_cluster(target: &Target) -> Result<(), CliError> {
    let addr = target.resolve();
    match client(&addr, None)?.cluster_status().await {
        Ok(cluster) if cluster.get("ap").is_some_and(Value::is_null) => Err(CliError::NotClustered { addr }),
        _ => Ok(()),
    }
}

/// A JSON string without quotes, anything else as JSON.
fn text(value: &Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_owned)
}

/// A refused request as a sentence: the `message` of the server's
/// `{code, message}` body, else its text, with the HTTP status.
#[cfg(test)]
fn refusal(status: StatusCode, body: &str) -> String {
    described(&janus_client::Error::refused("the node", status, body.as_bytes()))
}

/// A failed call as a sentence; a refusal that gave no reason says the
/// status.
fn described(error: &janus_client::Error) -> String {
    match error {
        janus_client::Error::Refused { status, message, .. } if message.is_empty() => {
            format!("the node answered {status} and no reason")
        }
        error => error.to_string(),
    }
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
        let _ =
            writeln!(out, "\nNot clustered: a single node (no cluster.members), no replication, no cluster address");
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
    let grpc = &status["grpc"];
    if grpc.is_object() {
        let _ = writeln!(
            out,
            "\nNacos gRPC: {} connections, {} subscriptions; {} pushes sent, {} acknowledged, {} timed out; \
             {} connections closed by detection, {} slow clients reset, {} instances released with their connection",
            grpc["connections"],
            grpc["subscriptions"],
            grpc["pushes_sent"],
            grpc["pushes_acked"],
            grpc["push_timeouts"],
            grpc["undetected"],
            grpc["slow_resets"],
            grpc["released"]
        );
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

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, Parser as _};

    use super::*;

    #[derive(Debug, clap::Parser)]
    #[command(name = "janus")]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[test]
    fn every_command_is_well_formed() {
        Cli::command().debug_assert();
        let parsed = Cli::try_parse_from(["janus", "members", "add", "4", "10.0.0.4:7848", "--secret", "s"]);
        assert!(
            matches!(parsed, Ok(Cli { command: Command::Members(MemberCommand::Add { id: 4, .. }) })),
            "{parsed:?}"
        );
        let parsed = Cli::try_parse_from(["janus", "instances", "list", "public", "web", "--group", "g1"]);
        assert!(
            matches!(&parsed, Ok(Cli { command: Command::Instances(InstanceCommand::List { group: Some(g), .. }) }) if g == "g1"),
            "{parsed:?}"
        );
        assert!(Cli::try_parse_from(["janus", "namespaces", "create", "x", "--mode", "xx"]).is_err());
    }

    #[test]
    fn a_listen_address_is_dialled_on_loopback() {
        assert_eq!(dialable("0.0.0.0:8848"), "127.0.0.1:8848");
        assert_eq!(dialable("[::]:8848"), "[::1]:8848");
        assert_eq!(dialable("10.0.0.1:8848"), "10.0.0.1:8848");
        assert_eq!(dialable("janus-1:8848"), "janus-1:8848");
    }

    #[test]
    fn a_refusal_is_its_message() {
        let body = r#"{"code":"conflict","message":"namespace 'team' already exists"}"#;
        assert_eq!(refusal(StatusCode::CONFLICT, body), "namespace 'team' already exists (HTTP 409)");
        assert_eq!(refusal(StatusCode::UNAUTHORIZED, "needs the secret\n"), "needs the secret (HTTP 401)");
        assert_eq!(refusal(StatusCode::BAD_GATEWAY, ""), "the node answered 502 Bad Gateway and no reason");
    }

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

    #[test]
    fn cli_errors_read_as_before() {
        assert_eq!(
            CliError::NoSecret.to_string(),
            "the members admin API needs the cluster secret: pass the node's cluster.secret with --secret or \
             JANUS_CLUSTER__SECRET"
        );
        let tried = vec![janus_client::Unreached { addr: "127.0.0.1:1".to_owned(), reason: "refused".to_owned() }];
        let unreachable = janus_client::Error::Unreachable { tried };
        let text = CliError::NodeUnreachable { error: unreachable }.to_string();
        assert!(text.ends_with(&format!("JANUS_HTTP__ADDR (default {DEFAULT_ADDR})")), "{text}");
        assert!(!text.contains("  "), "{text}");
        let text = CliError::NotClustered { addr: "127.0.0.1:8848".to_owned() }.to_string();
        assert!(text.starts_with("the node at 127.0.0.1:8848 is not clustered"), "{text}");
        let text = CliError::Refused(refusal(StatusCode::CONFLICT, "taken")).to_string();
        assert_eq!(text, "taken (HTTP 409)");
    }
}
