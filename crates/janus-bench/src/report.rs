//! `janus-bench report`: result files to markdown tables.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::Scenario;
use crate::stats::BenchResult;

pub(crate) fn write(
    out: &Path,
    preamble: Option<&Path>,
    appendix: Option<&Path>,
    files: &[PathBuf],
) -> anyhow::Result<()> {
    let mut results = Vec::new();
    for file in files {
        let result: BenchResult = serde_json::from_slice(&std::fs::read(file)?)?;
        results.push(result);
    }
    let mut text = match preamble {
        Some(path) => std::fs::read_to_string(path)?,
        None => String::from("# Benchmarks\n"),
    };
    // Compared scenarios: janus against every other label, same scenario, API and size.
    let mut groups: BTreeMap<(String, usize), Vec<&BenchResult>> = BTreeMap::new();
    for r in &results {
        if !matches!(r.scenario, Scenario::Watch | Scenario::Capacity | Scenario::DnsVisibility) {
            groups.entry((format!("{:?}", r.scenario).to_lowercase(), r.instances)).or_default().push(r);
        }
    }
    text.push_str("\n## Janus against rnacos 0.8.8 (Nacos v1 API, same load generator)\n\n");
    text.push_str("| scenario | conns | janus req/s | rnacos req/s | janus / rnacos | janus p50 / p99 ms | rnacos p50 / p99 ms | errors janus / rnacos |\n");
    text.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for ((scenario, instances), runs) in &groups {
        let janus = runs.iter().find(|r| r.label == "janus");
        let other = runs.iter().find(|r| r.label != "janus");
        let name = match scenario.as_str() {
            "list" | "mixed" => format!("{scenario} ({instances} instances)"),
            "heartbeat" => format!("heartbeat ({instances} instances)"),
            _ => scenario.clone(),
        };
        let cell = |r: Option<&&BenchResult>| r.map_or("–".to_owned(), |r| format!("{:.0}", r.throughput));
        let lat =
            |r: Option<&&BenchResult>| r.map_or("–".to_owned(), |r| format!("{:.2} / {:.2}", r.p50_ms, r.p99_ms));
        let ratio = match (janus, other) {
            (Some(j), Some(o)) if o.throughput > 0.0 => format!("**{:.2}×**", j.throughput / o.throughput),
            _ => "–".to_owned(),
        };
        let errors = format!("{} / {}", janus.map_or(0, |r| r.errors), other.map_or(0, |r| r.errors));
        let conns = janus.or(other).map_or(0, |r| r.connections);
        let _ = writeln!(
            text,
            "| {name} | {conns} | {} | {} | {ratio} | {} | {} | {errors} |",
            cell(janus),
            cell(other),
            lat(janus),
            lat(other)
        );
    }
    let janus_only: Vec<_> = results
        .iter()
        .filter(|r| matches!(r.scenario, Scenario::Watch | Scenario::Capacity | Scenario::DnsVisibility))
        .collect();
    if !janus_only.is_empty() {
        text.push_str("\n## Janus only\n\n| scenario | measured |\n|---|---|\n");
        for r in janus_only {
            let measured = match r.scenario {
                Scenario::DnsVisibility => format!(
                    "{} writes (register, then deregister): HTTP write returned → the node's DNS answer shows it: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms (one DNS round trip included); writes not visible on the first query after they returned: {}",
                    r.requests, r.p50_ms, r.p90_ms, r.p99_ms, r.max_ms, r.errors
                ),
                Scenario::Watch => format!(
                    "{} wake samples (blocked watchers × writes): write-to-wake latency p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms; {} wakes missed",
                    r.requests, r.p50_ms, r.p90_ms, r.p99_ms, r.max_ms, r.errors
                ),
                _ => {
                    #[allow(clippy::cast_precision_loss)]
                    let (mib, per) = r
                        .rss_bytes
                        .map_or((0.0, 0.0), |b| (b as f64 / 1048576.0, b as f64 / r.instances.max(1) as f64));
                    format!(
                        "{} instances registered at {:.0}/s; server RSS {mib:.0} MiB ({per:.0} bytes per instance)",
                        r.instances, r.throughput
                    )
                }
            };
            let _ = writeln!(text, "| {:?} | {measured} |", r.scenario);
        }
    }
    if let Some(appendix) = appendix {
        text.push('\n');
        text.push_str(&std::fs::read_to_string(appendix)?);
    }
    std::fs::write(out, text)?;
    Ok(())
}
