//! The `dns-visibility` scenario: how soon after an HTTP write returns does
//! the same node's DNS answer reflect it?
//!
//! Each write registers one instance in a service of its own (so every answer
//! fits a UDP packet), then deregisters it; after each write returns, the
//! scenario asks DNS for the service's A records until the answer matches,
//! and records the time from the write's return to that answer. Writes that
//! the first answer after their return did not reflect are counted (reported
//! as "not visible on the first query").

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use hyper::Method;
use tokio::net::UdpSocket;

use crate::RunArgs;
use crate::client::{Call, Conn};
use crate::stats::{BenchResult, histogram, record};

/// Gives up on one write after this long.
const PATIENCE: Duration = Duration::from_secs(2);

pub(crate) async fn visibility(args: &RunArgs) -> anyhow::Result<BenchResult> {
    let mut http = Conn::open(&args.first_target(), crate::client::Wire::Http1).await?;
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    socket.connect(args.dns).await?;
    let mut hist = histogram();
    let started = Instant::now();
    let mut id: u16 = 0;
    let mut late = 0;
    for n in 0..args.writes {
        let service = format!("{}-vis-{n}", args.prefix);
        let octets = u32::try_from(n).unwrap_or(0).to_be_bytes();
        let ip = Ipv4Addr::new(10, 251, octets[2], octets[3]);
        let instances = format!("/v1/namespaces/public/services/{service}/instances");
        let register = Call {
            method: Method::POST,
            path: instances.clone(),
            body: Some(("application/json", bytes::Bytes::from(format!("{{\"ip\":\"{ip}\",\"port\":80}}")))),
        };
        let deregister = Call { method: Method::DELETE, path: format!("{instances}/{ip}/80"), body: None };
        for (call, present) in [(register, true), (deregister, false)] {
            let reply = http.send(&call).await?;
            if !reply.status.is_success() {
                bail!("{} answered {}: {}", call.path, reply.status, String::from_utf8_lossy(&reply.body));
            }
            let returned = Instant::now();
            let mut first = true;
            loop {
                id = id.wrapping_add(1);
                let seen = ask(&socket, id, &format!("{service}.svc.janus."), IpAddr::V4(ip)).await?;
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
async fn ask(socket: &UdpSocket, id: u16, name: &str, ip: IpAddr) -> anyhow::Result<bool> {
    let mut query = Message::new(id, MessageType::Query, OpCode::Query);
    query.add_query(Query::query(Name::from_ascii(name)?, RecordType::A));
    socket.send(&query.to_vec()?).await?;
    let mut buffer = vec![0; 4096];
    loop {
        let n = tokio::time::timeout(PATIENCE, socket.recv(&mut buffer)).await.context("no DNS answer")??;
        let answer = Message::from_vec(&buffer[..n])?;
        if answer.metadata.id != id {
            continue;
        }
        return Ok(answer.answers.iter().any(|r| matches!(&r.data, RData::A(a) if IpAddr::V4(a.0) == ip)));
    }
}
