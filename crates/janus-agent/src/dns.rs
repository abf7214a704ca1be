//! The agent's local DNS: the registry's own names (`docs/dns.md`) answered
//! over UDP from the watched copies the proxy uses, so an app that resolves
//! `orders.svc.janus.` through the agent gets the instances the proxy would
//! choose from: healthy, enabled, not ejected, in the caller's zone first.
//!
//! - `<service>.svc[.<value>.<key>]*.<domain>` and
//!   `_<service>._<proto>[.<value>.<key>]*.<domain>` (keys `ns`, `group`,
//!   `cluster`): A, AAAA, ANY and SRV (targets `<hex>.addr.<domain>`, their
//!   addresses in the additional section);
//! - `<hex>.addr.<domain>`: the address it encodes;
//! - TTL 0: the agent's copy is always current, caching it would not be.
//!
//! Names outside the domain are REFUSED, names in it that mean nothing are
//! NXDOMAIN, a message that does not parse is FORMERR. Over UDP answers are
//! capped at 512 bytes without EDNS and at 1232 bytes with it (DNS Flag Day
//! 2020): a larger answer is sent truncated (TC) without records, and the
//! client asks again over TCP on the same address (length-prefixed messages,
//! at most 64 connections, closed after 10 s without a query).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable as _, BinDecoder};
use janus_api::native::Instance;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::serve::Accepting;
use crate::services::{Services, TooMany};

/// The largest UDP answer with EDNS, whatever the client offers.
const MAX_UDP_ANSWER: u16 = 1232;
/// The largest UDP answer without EDNS (RFC 1035).
const CLASSIC_UDP_ANSWER: usize = 512;
/// Queries answered at once; more are dropped (the client asks again).
const MAX_IN_FLIGHT: usize = 256;
/// TCP connections served at once; more wait in the backlog.
const MAX_TCP_CONNECTIONS: usize = 64;
/// How long a TCP connection may stay without a whole query.
const TCP_IDLE: std::time::Duration = std::time::Duration::from_secs(10);

/// How a query came, which bounds its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// One datagram: capped, truncated above the cap.
    Udp,
    /// Length-prefixed over TCP: up to 65,535 bytes.
    Tcp,
}

/// What a query name means.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// A service, with an optional cluster filter.
    Service { service: String, namespace: Option<String>, group: Option<String>, cluster: Option<String> },
    /// `<hex>.addr.<domain>`.
    Address(IpAddr),
    /// In the domain but meaning nothing.
    Nothing,
    /// Outside the domain.
    Elsewhere,
}

/// The local DNS server.
pub(crate) struct LocalDns {
    services: Arc<Services>,
    domain: Name,
}

impl LocalDns {
    /// Answers for names under `domain` (e.g. `janus`).
    pub(crate) fn new(services: Arc<Services>, domain: &str) -> Result<Self, String> {
        let mut domain = Name::from_ascii(domain).map_err(|e| format!("`dns.domain` `{domain}`: {e}"))?;
        domain.set_fqdn(true);
        Ok(Self { services, domain })
    }

    /// Serves `socket` until `shutdown`.
    pub(crate) async fn serve(self: Arc<Self>, socket: UdpSocket, shutdown: CancellationToken) {
        let socket = Arc::new(socket);
        let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let mut buffer = vec![0u8; 4096];
        loop {
            let (length, source) = tokio::select! {
                () = shutdown.cancelled() => return,
                received = socket.recv_from(&mut buffer) => match received {
                    Ok(received) => received,
                    // An ICMP error of an earlier answer, on some systems: go on.
                    Err(_) => continue,
                },
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else { continue };
            let query = buffer[..length].to_vec();
            let (dns, socket) = (self.clone(), socket.clone());
            tokio::spawn(async move {
                let _permit = permit;
                if let Some(answer) = dns.answer(&query, Transport::Udp).await {
                    let _ = socket.send_to(&answer, source).await;
                }
            });
        }
    }

    /// Serves DNS over TCP on `listener` until `shutdown`.
    pub(crate) async fn serve_tcp(self: Arc<Self>, listener: TcpListener, shutdown: CancellationToken) {
        let mut accepting = Accepting::new(listener, MAX_TCP_CONNECTIONS);
        while let Some((stream, permit)) = accepting.next(&shutdown).await {
            let (dns, shutdown) = (self.clone(), shutdown.clone());
            tokio::spawn(async move {
                let _permit = permit;
                tokio::select! {
                    () = dns.serve_connection(stream) => {}
                    () = shutdown.cancelled() => {}
                }
            });
        }
    }

    /// Answers length-prefixed queries until the client closes, stays idle
    /// for [`TCP_IDLE`], or sends what is not a query.
    async fn serve_connection(&self, mut stream: TcpStream) {
        let mut query = Vec::new();
        loop {
            let mut length = [0u8; 2];
            let read = async {
                stream.read_exact(&mut length).await?;
                query.resize(usize::from(u16::from_be_bytes(length)), 0);
                stream.read_exact(&mut query).await
            };
            if !matches!(tokio::time::timeout(TCP_IDLE, read).await, Ok(Ok(_))) {
                return;
            }
            let Some(answer) = self.answer(&query, Transport::Tcp).await else { return };
            let Ok(prefix) = u16::try_from(answer.len()) else { return };
            if stream.write_all(&prefix.to_be_bytes()).await.is_err() || stream.write_all(&answer).await.is_err() {
                return;
            }
        }
    }

    /// The encoded answer to an encoded query (`None`: not a query, no answer).
    pub(crate) async fn answer(&self, query: &[u8], transport: Transport) -> Option<Vec<u8>> {
        let Ok(request) = Message::from_vec(query) else {
            // FORMERR when at least the header is a query's.
            let header = Header::read(&mut BinDecoder::new(query)).ok()?;
            if header.metadata.message_type != MessageType::Query {
                return None;
            }
            return Message::error_msg(header.metadata.id, header.metadata.op_code, ResponseCode::FormErr)
                .to_vec()
                .ok();
        };
        if request.metadata.message_type != MessageType::Query {
            return None;
        }
        let mut response = Message::response(request.metadata.id, request.metadata.op_code);
        response.metadata.recursion_desired = request.metadata.recursion_desired;
        response.queries.clone_from(&request.queries);
        let mut limit = match &request.edns {
            Some(edns) => {
                let mut ours = Edns::new();
                ours.set_max_payload(MAX_UDP_ANSWER);
                response.set_edns(ours);
                usize::from(edns.max_payload().clamp(512, MAX_UDP_ANSWER))
            }
            None => CLASSIC_UDP_ANSWER,
        };
        if transport == Transport::Tcp {
            limit = usize::from(u16::MAX);
        }
        if request.metadata.op_code != OpCode::Query {
            response.metadata.response_code = ResponseCode::NotImp;
        } else if request.queries.len() != 1 {
            response.metadata.response_code = ResponseCode::FormErr;
        } else {
            self.fill(&mut response).await;
        }
        let encoded = response.to_vec().ok()?;
        if encoded.len() <= limit {
            return Some(encoded);
        }
        response.truncate().to_vec().ok()
    }

    /// Answers the one question of `response`.
    async fn fill(&self, response: &mut Message) {
        let question = response.queries[0].clone();
        let (qname, qtype) = (question.name().clone(), question.query_type());
        match self.target(&qname) {
            Target::Elsewhere => response.metadata.response_code = ResponseCode::Refused,
            Target::Nothing => {
                response.metadata.authoritative = true;
                response.metadata.response_code = ResponseCode::NXDomain;
            }
            Target::Address(ip) => {
                response.metadata.authoritative = true;
                response.answers.extend(address(ip, qtype).map(|rdata| Record::from_rdata(qname.clone(), 0, rdata)));
            }
            Target::Service { service, namespace, group, cluster } => {
                let Some(service) = self.services.service_ref(&service, namespace.as_deref(), group.as_deref()) else {
                    response.metadata.authoritative = true;
                    response.metadata.response_code = ResponseCode::NXDomain;
                    return;
                };
                let watched = match self.services.watched(&service).await {
                    Ok(watched) => watched,
                    Err(TooMany(_)) => {
                        response.metadata.response_code = ResponseCode::ServFail;
                        return;
                    }
                };
                response.metadata.authoritative = true;
                let instances: Vec<Instance> = watched
                    .balancer()
                    .eligible_instances()
                    .into_iter()
                    .filter(|i| cluster.as_deref().is_none_or(|c| i.cluster == c))
                    .collect();
                self.records(response, &qname, qtype, &instances);
            }
        }
    }

    fn records(&self, response: &mut Message, qname: &Name, qtype: RecordType, instances: &[Instance]) {
        for instance in instances {
            let Ok(ip) = instance.ip.parse::<IpAddr>() else { continue };
            if qtype == RecordType::SRV {
                let Ok(target) = Name::from_ascii(hex(ip)).and_then(|label| label.append_domain(&self.domain)) else {
                    continue;
                };
                // Weights are whole numbers 0-10000 in SRV, as the registry's DNS rounds them.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let weight = instance.weight.round().clamp(0.0, 10_000.0) as u16;
                let srv = RData::SRV(SRV::new(1, weight, instance.port, target.clone()));
                response.answers.push(Record::from_rdata(qname.clone(), 0, srv));
                if let Some(glue) = address(ip, RecordType::ANY) {
                    response.additionals.push(Record::from_rdata(target, 0, glue));
                }
            } else if let Some(rdata) = address(ip, qtype) {
                response.answers.push(Record::from_rdata(qname.clone(), 0, rdata));
            }
        }
    }

    /// What `name` means (see the module docs).
    fn target(&self, name: &Name) -> Target {
        if !self.domain.zone_of(name) {
            return Target::Elsewhere;
        }
        let depth = usize::from(name.num_labels()) - usize::from(self.domain.num_labels());
        let labels: Vec<String> = name.iter().take(depth).map(|l| String::from_utf8_lossy(l).into_owned()).collect();
        let lower = |i: usize| labels.get(i).map(|l| l.to_ascii_lowercase());
        match (labels.len(), lower(1).as_deref()) {
            (2, Some("addr")) => return unhex(&labels[0]).map_or(Target::Nothing, Target::Address),
            (n, Some(_)) if n >= 2 => {}
            _ => return Target::Nothing,
        }
        let service = if lower(1).as_deref() == Some("svc") {
            labels[0].clone()
        } else if let (Some(service), true) = (labels[0].strip_prefix('_'), labels[1].starts_with('_')) {
            service.to_owned()
        } else {
            return Target::Nothing;
        };
        let (mut namespace, mut group, mut cluster) = (None, None, None);
        let pairs = &labels[2..];
        if !pairs.len().is_multiple_of(2) {
            return Target::Nothing;
        }
        for pair in pairs.chunks(2) {
            let slot = match pair[1].to_ascii_lowercase().as_str() {
                "ns" => &mut namespace,
                "group" => &mut group,
                "cluster" => &mut cluster,
                _ => return Target::Nothing,
            };
            if slot.replace(pair[0].clone()).is_some() {
                return Target::Nothing;
            }
        }
        Target::Service { service, namespace, group, cluster }
    }
}

/// The record of `ip` a query of `qtype` asks for.
fn address(ip: IpAddr, qtype: RecordType) -> Option<RData> {
    match (ip, qtype) {
        (IpAddr::V4(v4), RecordType::A | RecordType::ANY) => Some(RData::A(A(v4))),
        (IpAddr::V6(v6), RecordType::AAAA | RecordType::ANY) => Some(RData::AAAA(AAAA(v6))),
        _ => None,
    }
}

/// `0a000001.addr` for 10.0.0.1 (32 hex digits for IPv6).
fn hex(ip: IpAddr) -> String {
    let digits: String = match ip {
        IpAddr::V4(v4) => v4.octets().iter().map(|b| format!("{b:02x}")).collect(),
        IpAddr::V6(v6) => v6.octets().iter().map(|b| format!("{b:02x}")).collect(),
    };
    format!("{digits}.addr")
}

fn unhex(label: &str) -> Option<IpAddr> {
    let byte = |i: usize| u8::from_str_radix(label.get(i * 2..i * 2 + 2)?, 16).ok();
    match label.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::new(byte(0)?, byte(1)?, byte(2)?, byte(3)?))),
        32 => {
            let mut octets = [0u8; 16];
            for (i, octet) in octets.iter_mut().enumerate() {
                *octet = byte(i)?;
            }
            Some(IpAddr::V6(Ipv6Addr::from(octets)))
        }
        _ => None,
    }
}

/// Binds the local DNS socket and, on the same address (its port, when
/// the UDP port was chosen by the system), the TCP listener. A port the
/// system chose for UDP may be taken for TCP: then another pair is tried,
/// a few times.
pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let attempts = if addr.port() == 0 { 16 } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        let udp = UdpSocket::bind(addr).await?;
        match TcpListener::bind(udp.local_addr()?).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(error) => last = Some(error),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port for both UDP and TCP")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProxyConfig;

    fn dns() -> LocalDns {
        let client = janus_client::Client::new(["127.0.0.1:1"], janus_client::Options::default()).unwrap();
        let services = Arc::new(Services::new(client, "public".to_owned(), &ProxyConfig::default()));
        LocalDns::new(services, "janus").unwrap()
    }

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    #[test]
    fn names_follow_the_registrys_scheme() {
        let dns = dns();
        let service = |s: &str, ns: Option<&str>, group: Option<&str>, cluster: Option<&str>| Target::Service {
            service: s.to_owned(),
            namespace: ns.map(str::to_owned),
            group: group.map(str::to_owned),
            cluster: cluster.map(str::to_owned),
        };
        assert_eq!(dns.target(&name("orders.svc.janus.")), service("orders", None, None, None));
        assert_eq!(dns.target(&name("_orders._tcp.janus.")), service("orders", None, None, None));
        assert_eq!(
            dns.target(&name("orders.svc.blue.cluster.backend.group.payments.ns.janus.")),
            service("orders", Some("payments"), Some("backend"), Some("blue"))
        );
        assert_eq!(dns.target(&name("0a000001.addr.janus.")), Target::Address(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))));
        assert_eq!(dns.target(&name("orders.svc.x.ns.y.ns.janus.")), Target::Nothing, "a key twice");
        assert_eq!(dns.target(&name("orders.svc.x.color.janus.")), Target::Nothing, "an unknown key");
        assert_eq!(dns.target(&name("orders.janus.")), Target::Nothing);
        assert_eq!(dns.target(&name("zz.addr.janus.")), Target::Nothing);
        assert_eq!(dns.target(&name("example.com.")), Target::Elsewhere);
        assert_eq!(unhex(&hex(IpAddr::V6(Ipv6Addr::LOCALHOST))[..32]), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    }

    #[tokio::test]
    async fn bad_messages_get_formerr_and_other_zones_refused() {
        let dns = dns();
        // A header that is a query's, then garbage.
        let mut garbage = vec![0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00];
        garbage.extend_from_slice(&[0xff; 7]);
        let answer = Message::from_vec(&dns.answer(&garbage, Transport::Udp).await.unwrap()).unwrap();
        assert_eq!((answer.metadata.id, answer.metadata.response_code), (0x1234, ResponseCode::FormErr));
        assert_eq!(dns.answer(&[1, 2, 3], Transport::Udp).await, None, "not even a header: no answer");

        let mut ask = Message::new(7, MessageType::Query, OpCode::Query);
        ask.add_query(hickory_proto::op::Query::query(name("example.com."), RecordType::A));
        let answer = Message::from_vec(&dns.answer(&ask.to_vec().unwrap(), Transport::Udp).await.unwrap()).unwrap();
        assert_eq!(answer.metadata.response_code, ResponseCode::Refused);
        let mut ask = Message::new(8, MessageType::Query, OpCode::Query);
        ask.add_query(hickory_proto::op::Query::query(name("0a000001.addr.janus."), RecordType::A));
        let answer = Message::from_vec(&dns.answer(&ask.to_vec().unwrap(), Transport::Udp).await.unwrap()).unwrap();
        assert_eq!(answer.answers.len(), 1);
        assert_eq!(answer.answers[0].data, RData::A(A(Ipv4Addr::new(10, 0, 0, 1))));
    }
}
