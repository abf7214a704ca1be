//! `janus-bench proxy`: what `janus agent`'s proxy adds to a call. An
//! open-loop load at a fixed rate (latency counted from each request's
//! dispatch, which never waits for earlier answers, so a stall is not hidden
//! by the requests it delays)
//! alternates, round by round, between a direct URL and the same backend
//! through the proxy; the report gives both latency distributions and the
//! difference of their percentiles.
//!
//! With `--serve` the tool runs the backend itself (a minimal HTTP/1.1
//! server answering `200 ok`), so the backend's own cost is the same tiny
//! constant on both paths.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use hdrhistogram::Histogram;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use crate::client::{Call, Conn, Wire};
use crate::stats::{histogram, record};

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ProxyArgs {
    /// Run the backend here (a server answering `200 ok` to everything).
    #[arg(long)]
    serve: Option<SocketAddr>,
    /// The backend called directly, e.g. http://127.0.0.1:18081/echo.
    #[arg(long)]
    direct: String,
    /// The same backend through the agent, e.g. http://127.0.0.1:15001/bench-echo/echo.
    #[arg(long)]
    proxied: String,
    /// Requests per second (open loop).
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Length of one round.
    #[arg(long, default_value = "10s", value_parser = crate::parse_duration)]
    duration: Duration,
    /// Rounds per path, alternated (direct, proxied, direct, …).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Keep-alive connections per path.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// How long to wait for the proxied URL to answer 200 before starting.
    #[arg(long, default_value = "30s", value_parser = crate::parse_duration)]
    wait_ready: Duration,
    /// Write the result as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

/// The latency distribution of one path, over all its rounds.
#[derive(Debug, serde::Serialize)]
struct PathResult {
    requests: u64,
    errors: u64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
}

#[derive(Debug, serde::Serialize)]
struct ProxyResult {
    rate: u32,
    rounds: usize,
    round_s: f64,
    direct: PathResult,
    proxied: PathResult,
    /// proxied − direct, per percentile.
    added_p50_ms: f64,
    added_p99_ms: f64,
    added_p999_ms: f64,
}

/// `http://host:port/path` → (`http://host:port`, `/path`).
fn split(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url.strip_prefix("http://").context("URLs must be http://host:port/path")?;
    let at = rest.find('/').unwrap_or(rest.len());
    let path = if at == rest.len() { "/".to_owned() } else { rest[at..].to_owned() };
    Ok((format!("http://{}", &rest[..at]), path))
}

pub(crate) async fn run(args: &ProxyArgs) -> anyhow::Result<String> {
    if let Some(addr) = args.serve {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
        tokio::spawn(crate::hello::serve(listener));
    }
    wait_ready(&args.proxied, args.wait_ready).await?;
    let (mut direct, mut proxied) = (histogram(), histogram());
    let (mut direct_errors, mut proxied_errors) = (0, 0);
    // Warm both paths (connections, the proxy's watch and pools) without recording.
    let mut scratch = histogram();
    round(&args.direct, args.rate, Duration::from_secs(1), args.connections, &mut scratch).await?;
    round(&args.proxied, args.rate, Duration::from_secs(1), args.connections, &mut scratch).await?;
    for number in 0..args.rounds {
        direct_errors += round(&args.direct, args.rate, args.duration, args.connections, &mut direct).await?;
        proxied_errors += round(&args.proxied, args.rate, args.duration, args.connections, &mut proxied).await?;
        eprintln!(
            "round {}: direct p99 {:.3} ms, proxied p99 {:.3} ms",
            number + 1,
            ms(direct.value_at_quantile(0.99)),
            ms(proxied.value_at_quantile(0.99))
        );
    }
    let result = ProxyResult {
        rate: args.rate,
        rounds: args.rounds,
        round_s: args.duration.as_secs_f64(),
        added_p50_ms: ms(proxied.value_at_quantile(0.5)) - ms(direct.value_at_quantile(0.5)),
        added_p99_ms: ms(proxied.value_at_quantile(0.99)) - ms(direct.value_at_quantile(0.99)),
        added_p999_ms: ms(proxied.value_at_quantile(0.999)) - ms(direct.value_at_quantile(0.999)),
        direct: path_result(&direct, direct_errors),
        proxied: path_result(&proxied, proxied_errors),
    };
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&result)?)?;
    }
    Ok(format!(
        "{} req/s, {} rounds of {:.0} s per path\n\n\
         | path | requests | errors | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n{}\n{}\n\n\
         added by the proxy: p50 {:+.3} ms, p99 {:+.3} ms, p99.9 {:+.3} ms",
        result.rate,
        result.rounds,
        result.round_s,
        row("direct", &result.direct),
        row("through the agent", &result.proxied),
        result.added_p50_ms,
        result.added_p99_ms,
        result.added_p999_ms,
    ))
}

fn row(name: &str, path: &PathResult) -> String {
    format!(
        "| {name} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
        path.requests, path.errors, path.p50_ms, path.p90_ms, path.p99_ms, path.p999_ms, path.max_ms
    )
}

#[allow(clippy::cast_precision_loss)]
fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

fn path_result(histogram: &Histogram<u64>, errors: u64) -> PathResult {
    PathResult {
        requests: histogram.len(),
        errors,
        p50_ms: ms(histogram.value_at_quantile(0.5)),
        p90_ms: ms(histogram.value_at_quantile(0.9)),
        p99_ms: ms(histogram.value_at_quantile(0.99)),
        p999_ms: ms(histogram.value_at_quantile(0.999)),
        max_ms: ms(histogram.max()),
    }
}

async fn wait_ready(url: &str, within: Duration) -> anyhow::Result<()> {
    let (base, path) = split(url)?;
    let deadline = Instant::now() + within;
    let mut last = String::from("no answer yet");
    while Instant::now() < deadline {
        match Conn::open(&base, Wire::Http1).await {
            Ok(mut conn) => match conn.send(&Call::get(path.clone())).await {
                Ok(reply) if reply.status.is_success() => return Ok(()),
                Ok(reply) => last = format!("{} {}", reply.status, String::from_utf8_lossy(&reply.body)),
                Err(error) => last = error.to_string(),
            },
            Err(error) => last = error.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("{url} did not answer 200 within {within:?}: {last}")
}

/// One round at `rate` for `duration`; returns the errors. Each request is
/// dispatched on a tick and taken by the first free connection; its latency
/// runs from the dispatch.
async fn round(
    url: &str,
    rate: u32,
    duration: Duration,
    connections: usize,
    latencies: &mut Histogram<u64>,
) -> anyhow::Result<u64> {
    let (base, path) = split(url)?;
    let (mut jobs, queue) = async_channel(connections * 64);
    let (done, mut results) = mpsc::unbounded_channel::<Result<Duration, String>>();
    let mut workers = Vec::new();
    for _ in 0..connections {
        let mut conn = Conn::open(&base, Wire::Http1).await?;
        let (queue, done, call) = (queue.clone(), done.clone(), Call::get(path.clone()));
        workers.push(tokio::spawn(async move {
            while let Ok(scheduled) = queue.recv().await {
                let outcome = match conn.send(&call).await {
                    Ok(reply) if reply.status.is_success() => Ok(scheduled.elapsed()),
                    Ok(reply) => Err(format!("answered {}", reply.status)),
                    Err(error) => Err(error.to_string()),
                };
                if done.send(outcome).is_err() {
                    return;
                }
            }
        }));
    }
    drop(done);
    let interval = Duration::from_secs(1) / rate.max(1);
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let end = Instant::now() + duration;
    let mut errors = 0;
    while Instant::now() < end {
        ticks.tick().await;
        // Timed from the dispatch, not the tick's deadline: tokio's timer
        // fires up to a millisecond late, which is the generator's error, not
        // the server's. The dispatcher never waits for an answer, so a stall
        // still shows in full in the requests queued behind it.
        if jobs.try_send(Instant::now()).is_err() {
            // Every connection is busy and the queue is full: the request is lost.
            errors += 1;
        }
    }
    jobs.close();
    drop(queue);
    let mut first_error = None;
    while let Some(outcome) = results.recv().await {
        match outcome {
            Ok(latency) => record(latencies, latency),
            Err(error) => {
                errors += 1;
                first_error.get_or_insert(error);
            }
        }
    }
    for worker in workers {
        let _ = worker.await;
    }
    if let Some(error) = first_error {
        eprintln!("{url}: {errors} errors, the first: {error}");
    }
    Ok(errors)
}

/// A bounded multi-consumer queue of scheduled times.
fn async_channel(capacity: usize) -> (Jobs, Queue) {
    let (sender, receiver) = mpsc::channel(capacity);
    (Jobs(Some(sender)), Queue(std::sync::Arc::new(tokio::sync::Mutex::new(receiver))))
}

struct Jobs(Option<mpsc::Sender<Instant>>);

impl Jobs {
    fn try_send(&self, at: Instant) -> Result<(), ()> {
        self.0.as_ref().ok_or(())?.try_send(at).map_err(|_| ())
    }

    fn close(&mut self) {
        self.0 = None;
    }
}

#[derive(Clone)]
struct Queue(std::sync::Arc<tokio::sync::Mutex<mpsc::Receiver<Instant>>>);

impl Queue {
    async fn recv(&self) -> Result<Instant, ()> {
        self.0.lock().await.recv().await.ok_or(())
    }
}
