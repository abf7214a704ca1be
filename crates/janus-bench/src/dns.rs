//! The `dns-visibility` scenario: how soon after an HTTP write returns does
//! the same node's DNS answer reflect it?
//!
//! Each write registers one instance in a service of its own (so every answer
//! fits a UDP packet), then deregisters it; after each write returns, the
//! scenario asks DNS for the service's A records until the answer matches,
//! and records the time from the write's return to that answer. Writes that
//! the first answer after their return did not reflect are counted (reported
//! as "not visible on the first query").
//!
//! The writes go through `janus-client`; the questions through one UDP
//! socket of `janus_client::dns`, reused for every question.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use janus_client::dns::UdpClient;
use janus_client::dns::proto::rr::{RData, RecordType};
use janus_client::{Client, Options, ServiceRef, registration};

use crate::RunArgs;
use crate::stats::{BenchResult, histogram, record};

/// Gives up on one write after this long.
const PATIENCE: Duration = Duration::from_secs(2);

pub(crate) async fn visibility(args: &RunArgs) -> anyhow::Result<BenchResult> {
    let http = Client::new([args.first_target()], Options::default())?;
    let mut dns = UdpClient::connect(args.dns, PATIENCE).await?;
    let mut hist = histogram();
    let started = Instant::now();
    let mut late = 0;
    for n in 0..args.writes {
        let service = ServiceRef::new("public", format!("{}-vis-{n}", args.prefix));
        let name = format!("{}.svc.janus.", service.name);
        let octets = u32::try_from(n).unwrap_or(0).to_be_bytes();
        let ip = Ipv4Addr::new(10, 251, octets[2], octets[3]);
        for present in [true, false] {
            let written = if present {
                http.register_instance(&service, &registration(ip.to_string(), 80)).await.map(drop)
            } else {
                http.deregister_instance(&service, &ip.to_string(), 80, None).await.map(drop)
            };
            written
                .with_context(|| format!("{}: {}", service.name, if present { "register" } else { "deregister" }))?;
            let returned = Instant::now();
            let mut first = true;
            loop {
                let seen = shows(&mut dns, &name, IpAddr::V4(ip)).await?;
                if seen == present {
                    record(&mut hist, returned.elapsed());
                    break;
                }
                if first {
                    late += 1;
                    first = false;
                }
                if returned.elapsed() > PATIENCE {
                    bail!("{service}: DNS did not reflect the write within {PATIENCE:?}");
                }
            }
        }
    }
    Ok(BenchResult::from_histogram(args, &hist, late, started.elapsed(), None))
}

/// Asks for the A records of `name`; true when `ip` is among them.
async fn shows(dns: &mut UdpClient, name: &str, ip: IpAddr) -> anyhow::Result<bool> {
    let answer = dns.query(name, RecordType::A).await?;
    Ok(answer.answers.iter().any(|r| matches!(&r.data, RData::A(a) if IpAddr::V4(a.0) == ip)))
}
