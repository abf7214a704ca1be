//! `janus-fault`: the fault-injection suite, run against the 3-node cluster
//! of `docker-compose.yml` (see `tests/fault.sh`, which builds the image and
//! skips when Docker is absent).
//!
//! Each scenario starts a fresh cluster, puts client load on it
//! (`load`), injects a fault through Docker, and checks what the consistency
//! modes promise: `ap` serves on both sides and converges after a heal; `cp`
//! refuses on a minority, serves on the majority and loses no acknowledged
//! write; live instances are never missing from discovery for longer than one
//! heartbeat timeout. The numbers go to a markdown report.

mod docker;
mod load;
mod scenarios;

use std::path::PathBuf;

use clap::Parser;

/// Runs the fault scenarios against the compose cluster.
#[derive(Debug, Parser)]
struct Args {
    /// Compose project name (prefix of the networks).
    #[arg(long, default_value = "janus-fault")]
    project: String,
    /// The compose file; repeat the flag for files that override it, in order
    /// (as compose's own `-f`).
    #[arg(long, default_value = "docker-compose.yml")]
    compose_file: Vec<String>,
    /// The compose command line: `docker-compose` (Compose v1) or `docker compose` (v2).
    #[arg(long, default_value = "docker-compose")]
    compose_command: String,
    /// Scenarios to run (comma-separated); all by default.
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Where to write the markdown report.
    #[arg(long)]
    report: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("janus-fault: cannot start the runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(scenarios::run_all(
        &args.project,
        &args.compose_file,
        &args.compose_command,
        &args.scenarios,
        args.report.as_deref(),
    )) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("janus-fault: some checks failed (see above)");
            std::process::ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("janus-fault: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
