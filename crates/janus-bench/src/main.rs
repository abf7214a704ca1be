//! `janus-bench`: drives a registry over HTTP and reports throughput and
//! latency percentiles.
//!
//! ```text
//! janus-bench run --target http://127.0.0.1:8848 --api nacos --scenario register --connections 64 --duration 10s
//! janus-bench report --out docs/benchmarks.md bench/results/*.json
//! janus-bench failover --janus target/release/janus --trials 5
//! janus-bench join --janus target/release/janus --instances 1000000
//! janus-bench watchers --addr 127.0.0.1:8848 --pid $(pgrep -x janus) --count 16384
//! janus-bench proxy --serve 127.0.0.1:18081 --direct http://127.0.0.1:18081/echo \
//!     --proxied http://127.0.0.1:15001/bench-echo/echo --rate 1000
//! ```
//!
//! Scenarios: `register`, `heartbeat`, `list` (one service of `--instances`
//! instances), `mixed` (1 register : 1 heartbeat : 8 lists), `watch` (time from
//! a write to a blocked watcher waking; native API), `capacity` (hold
//! `--instances` instances, then read the server's RSS from `--pid`),
//! `dns-visibility` (time from an HTTP write returning to the node's DNS
//! answer reflecting it), and over Nacos gRPC (`--api nacos-grpc`, any server
//! speaking it) `register`, `list`, `push` (write-to-push latency at
//! `--watchers` subscribers) and `capacity` (connection-bound instances). With several `--target`s the load spreads over
//! them (a cluster's nodes); `watch` then writes through the first and
//! blocks its watchers on the others (cross-node watch latency).

mod client;
mod dns;
mod failover;
mod grpc_scenarios;
mod hello;
mod join;
mod local_cluster;
mod nacos_grpc;
mod proxy;
mod report;
mod scenario;
mod stats;
mod watchers;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one scenario against a server.
    Run(Box<RunArgs>),
    /// Kill the Raft leader of a local 3-node cluster and time until cp writes succeed again.
    Failover(failover::FailoverArgs),
    /// Restart a node of a local 3-node cluster holding many instances and time until it is ready.
    Join(join::JoinArgs),
    /// Hold many blocking queries and report what they cost the server in RSS.
    Watchers(watchers::WatchersArgs),
    /// What `janus agent`'s proxy adds to a call: a fixed-rate load, direct and proxied in turn.
    Proxy(proxy::ProxyArgs),
    /// Serve `200 ok` to every request: this machine's HTTP ceiling on hyper.
    Hello(hello::HelloArgs),
    /// Turn result files into the markdown tables of docs/benchmarks.md.
    Report {
        /// Markdown file to write.
        #[arg(long)]
        out: PathBuf,
        /// Text placed above the tables (e.g. the machine and the commands).
        #[arg(long)]
        preamble: Option<PathBuf>,
        /// Markdown appended after the tables (e.g. the DNS comparison).
        #[arg(long)]
        appendix: Option<PathBuf>,
        /// Result files written by `run --json`.
        results: Vec<PathBuf>,
    },
}

/// Which HTTP API to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Api {
    /// The Nacos v1 open API (works against any Nacos-compatible server).
    Nacos,
    /// The Janus native API under /v1/.
    Native,
    /// etcd v3 over gRPC (KV.Put), to compare the cp write path with etcd.
    Etcd,
    /// The Nacos 2.x gRPC protocol on the HTTP port + 1000.
    #[value(name = "nacos-grpc")]
    #[serde(rename = "nacos-grpc")]
    NacosGrpc,
}

/// What load to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Scenario {
    /// Every request registers a new instance.
    Register,
    /// Beats a pre-registered population round-robin.
    Heartbeat,
    /// Lists one service of `--instances` instances.
    List,
    /// 1 register : 1 heartbeat : 8 lists.
    Mixed,
    /// Write-to-wake latency of blocked watchers.
    Watch,
    /// Holds `--instances` instances and reports the server's RSS.
    Capacity,
    /// Time from an HTTP write returning to the node's DNS answer showing it.
    DnsVisibility,
    /// Time from a write to the Nacos gRPC push that shows it (`--api nacos-grpc`).
    Push,
}

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RunArgs {
    /// Base URL of the server; several, comma-separated, spread the workers
    /// round-robin over the nodes of a cluster.
    #[arg(long, default_value = "http://127.0.0.1:8848")]
    pub(crate) target: String,
    /// Namespace of the native API's calls.
    #[arg(long, default_value = "public")]
    pub(crate) namespace: String,
    /// Create `--namespace` with this mode (ap or cp) before the run.
    #[arg(long)]
    pub(crate) create_namespace: Option<String>,
    /// API to speak.
    #[arg(long, value_enum, default_value = "nacos")]
    pub(crate) api: Api,
    /// Scenario.
    #[arg(long, value_enum)]
    pub(crate) scenario: Scenario,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 64)]
    pub(crate) connections: usize,
    /// How long to apply load (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(crate) duration: Duration,
    /// Warm-up before measuring (same load, not recorded).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub(crate) warmup: Duration,
    /// Instances in the listed service (list, mixed), beaten population (heartbeat), or held (capacity).
    #[arg(long, default_value_t = 100)]
    pub(crate) instances: usize,
    /// Blocked watchers (watch scenario), or subscribers (push scenario).
    #[arg(long, default_value_t = 16)]
    pub(crate) watchers: usize,
    /// The node's DNS address (dns-visibility scenario).
    #[arg(long, default_value = "127.0.0.1:8600")]
    pub(crate) dns: std::net::SocketAddr,
    /// Writes to time (watch, push and dns-visibility scenarios).
    #[arg(long, default_value_t = 500)]
    pub(crate) writes: usize,
    /// Server process id, to read its RSS (capacity scenario).
    #[arg(long)]
    pub(crate) pid: Option<u32>,
    /// Name of the server in reports (e.g. janus, rnacos).
    #[arg(long, default_value = "server")]
    pub(crate) label: String,
    /// The report section (its heading) the run is compared in.
    #[arg(long, default_value = "Janus against rnacos 0.8.8 (Nacos v1 API, same load generator)")]
    pub(crate) section: String,
    /// Write the result as JSON here.
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
    /// Prefix of the service names used, so runs do not collide.
    #[arg(long, default_value = "bench")]
    pub(crate) prefix: String,
    /// An API token for a server with auth on: sent as `accessToken` on
    /// Nacos routes (as Nacos SDKs send it) and as `Authorization: Bearer`
    /// elsewhere, setup calls included.
    #[arg(long)]
    pub(crate) token: Option<String>,
}

impl RunArgs {
    /// Every target, in order.
    pub(crate) fn targets(&self) -> Vec<String> {
        self.target.split(',').map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect()
    }

    /// The first target: setup and single-connection scenarios talk to it.
    pub(crate) fn first_target(&self) -> String {
        self.targets().into_iter().next().unwrap_or_default()
    }
}

pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let (digits, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let value: u64 = digits.parse().map_err(|_| format!("bad duration {text:?}"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(value)),
        "s" | "" => Ok(Duration::from_secs(value)),
        "m" => Ok(Duration::from_secs(value * 60)),
        _ => Err(format!("bad duration unit in {text:?}")),
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => {
            if let Some(token) = &args.token {
                client::present_token(token);
            }
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let result = runtime.block_on(scenario::run(&args))?;
            println!("{}", result.summary_line());
            if let Some(path) = &args.json {
                std::fs::write(path, serde_json::to_vec_pretty(&result)?)?;
            }
            Ok(())
        }
        Command::Failover(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let recoveries = runtime.block_on(failover::run(&args))?;
            println!("{}", failover::summary(&recoveries));
            Ok(())
        }
        Command::Proxy(args) => {
            // One thread: 1,000 requests/s need no more, and a second worker
            // only adds wake-ups between threads to both paths' latency.
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            println!("{}", runtime.block_on(proxy::run(&args))?);
            Ok(())
        }
        Command::Hello(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(hello::run(&args))
        }
        Command::Join(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let joined = runtime.block_on(join::run(&args))?;
            println!("{}", join::summary(&joined));
            Ok(())
        }
        Command::Watchers(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let result = runtime.block_on(watchers::run(&args))?;
            println!("{}", result.summary());
            Ok(())
        }
        Command::Report { out, preamble, appendix, results } => {
            report::write(&out, preamble.as_deref(), appendix.as_deref(), &results)
        }
    }
}
