//! `janus`: start a registry node, or talk to a running one (`janus status`,
//! `janus health`, …; see `janus_server::cli`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use janus_server::ServerConfig;
use tokio_util::sync::CancellationToken;

/// Janus, a service registry with per-namespace AP or CP consistency.
/// Without a subcommand it runs a node.
#[derive(Debug, Parser)]
#[command(name = "janus", version)]
struct Args {
    /// Talk to a running node instead of running one.
    #[command(subcommand)]
    command: Option<janus_server::cli::Command>,
    /// TOML configuration file.
    #[arg(long, env = "JANUS_CONFIG")]
    config: Option<PathBuf>,
    /// HTTP listen address (overrides `http.addr`).
    #[arg(long)]
    http_addr: Option<String>,
    /// DNS listen address (overrides `dns.addr`).
    #[arg(long)]
    dns_addr: Option<String>,
    /// Data directory (overrides `node.data_dir`).
    #[arg(long)]
    data_dir: Option<String>,
    /// Log filter, e.g. `debug` (overrides `log.filter`; openraft and
    /// hickory_server stay at `warn` unless the filter names them).
    #[arg(long)]
    log: Option<String>,
}

/// mimalloc instead of the system allocator: answering a query allocates
/// dozens of small buffers (many inside hickory's encoder), and glibc malloc
/// took about a sixth of a DNS profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for a bad configuration (BSD `EX_USAGE`).
const EX_USAGE: u8 = 64;

fn main() -> ExitCode {
    let mut args = Args::parse();
    if let Some(command) = args.command.take() {
        return janus_server::cli::run(command);
    }
    // Before the node allocates much: see the function's docs.
    janus_server::memory::disable_transparent_huge_pages();
    let flags: Vec<(&str, &str, String)> = [
        ("--http-addr", "http.addr", args.http_addr),
        ("--dns-addr", "dns.addr", args.dns_addr),
        ("--data-dir", "node.data_dir", args.data_dir),
        ("--log", "log.filter", args.log),
    ]
    .into_iter()
    .filter_map(|(flag, key, value)| value.map(|v| (flag, key, v)))
    .collect();
    let (config, sources) = match ServerConfig::load_with_flags(args.config.as_deref(), std::env::vars(), &flags) {
        Ok(loaded) => loaded,
        Err(err) => {
            eprintln!("janus: bad configuration: {err}");
            return ExitCode::from(EX_USAGE);
        }
    };
    let rust_log = std::env::var("RUST_LOG").ok().filter(|filter| !filter.is_empty());
    if let Err(err) = janus_server::telemetry::init(&config.log.filter) {
        // log.filter was checked with the configuration: RUST_LOG is at fault.
        eprintln!("janus: bad log filter in RUST_LOG: {err}");
        return ExitCode::from(EX_USAGE);
    }
    let filter = rust_log.clone().unwrap_or_else(|| janus_server::telemetry::with_quiet_crates(&config.log.filter));
    janus_server::startup::log_sources(&sources, &filter, rust_log.is_some());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(janus_server::memory::on_thread_park)
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("janus: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("janus: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: ServerConfig) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    // Installed before anything listens: a signal sent as soon as the node
    // says where it serves must shut it down cleanly, not kill it.
    let signals = janus_server::signals::ShutdownSignals::install()?;
    let server = janus_server::start(config, shutdown.clone()).await?;
    tokio::spawn(async move {
        signals.recv().await;
        tracing::info!("shutting down");
        shutdown.cancel();
    });
    server.wait().await
}
