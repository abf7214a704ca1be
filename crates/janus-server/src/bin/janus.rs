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
#[command(version, about)]
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
    /// Log filter (overrides `log.filter`).
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
    let overrides: Vec<(&str, String)> = [
        ("http.addr", args.http_addr),
        ("dns.addr", args.dns_addr),
        ("node.data_dir", args.data_dir),
        ("log.filter", args.log),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.map(|v| (key, v)))
    .collect();
    let config = match ServerConfig::load(args.config.as_deref(), std::env::vars(), &overrides) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("janus: bad configuration: {err}");
            return ExitCode::from(EX_USAGE);
        }
    };
    if let Err(err) = janus_server::telemetry::init(&config.log.filter) {
        eprintln!("janus: bad log filter: {err}");
        return ExitCode::from(EX_USAGE);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
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
    let server = janus_server::start(config, shutdown.clone()).await?;
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        shutdown.cancel();
    });
    server.wait().await
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
