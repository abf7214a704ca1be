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
    // Compared scenarios, per section in the order the files came: janus
    // against the other label of the same scenario, size and concurrency.
    type Key = (String, usize, usize);
    let mut sections: Vec<(String, BTreeMap<Key, Vec<&BenchResult>>)> = Vec::new();
    for r in &results {
        if matches!(r.scenario, Scenario::Watch | Scenario::Capacity | Scenario::DnsVisibility | Scenario::Push) {
            continue;
        }
        let index = match sections.iter().position(|(name, _)| *name == r.section) {
            Some(index) => index,
            None => {
                sections.push((r.section.clone(), BTreeMap::new()));
                sections.len() - 1
            }
        };
        let key = (format!("{:?}", r.scenario).to_lowercase(), r.instances, r.connections);
        sections[index].1.entry(key).or_default().push(r);
    }
    for (section, groups) in &sections {
        let other_label = groups
            .values()
            .flatten()
            .find(|r| r.label != "janus")
            .map_or_else(|| "other".to_owned(), |r| r.label.clone());
        let _ = write!(
            text,
            "\n## {section}\n\n| scenario | conns | janus req/s | {other_label} req/s | janus / {other_label} | \
             janus p50 / p99 ms | {other_label} p50 / p99 ms | errors janus / {other_label} |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|\n"
        );
        for ((scenario, instances, conns), runs) in groups {
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
            let _ = writeln!(
                text,
                "| {name} | {conns} | {} | {} | {ratio} | {} | {} | {errors} |",
                cell(janus),
                cell(other),
                lat(janus),
                lat(other)
            );
        }
    }
    let janus_only: Vec<_> = results
        .iter()
        .filter(|r| {
            matches!(r.scenario, Scenario::Watch | Scenario::Capacity | Scenario::DnsVisibility | Scenario::Push)
        })
        .collect();
    if !janus_only.is_empty() {
        text.push_str("\n## Latency and memory\n\n| scenario | measured |\n|---|---|\n");
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
                Scenario::Push => format!(
                    "{} push samples (subscribers × writes): write-to-push latency p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms; {} never pushed",
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
            let mut name = match r.scenario {
                Scenario::Watch if r.target.contains(',') => {
                    "Watch, across nodes (3-node cluster; written through the first target, watched on the others)"
                        .to_owned()
                }
                Scenario::Watch => "Watch, same node".to_owned(),
                Scenario::Push if r.target.contains(',') => format!(
                    "Nacos gRPC push, across nodes ({} subscribers on the other nodes of a 3-node cluster)",
                    r.connections
                ),
                Scenario::Push => format!("Nacos gRPC push, same node ({} subscribers)", r.connections),
                Scenario::Capacity if r.api == crate::Api::NacosGrpc => {
                    format!("Capacity over Nacos gRPC (connection-bound, {} connections)", r.connections)
                }
                other => format!("{other:?}"),
            };
            if r.label != "janus" {
                name = format!("{name}: {}", r.label);
            }
            let _ = writeln!(text, "| {name} | {measured} |");
        }
    }
    if let Some(appendix) = appendix {
        text.push('\n');
        text.push_str(&std::fs::read_to_string(appendix)?);
    }
    std::fs::write(out, text)?;
    Ok(())
}
