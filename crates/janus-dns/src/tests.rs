//! The DNS server over real loopback sockets, on a registry without engines:
//! the UDP payload cap, truncation and response rate limiting.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_server::proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_server::proto::rr::{Name, RData, RecordType};
use janus_core::error::RegistryError;
use janus_core::lease::LeaseTiming;
use janus_core::model::{
    ClusterSettings, InstancePatch, InstanceSpec, NamespaceInfo, NamespaceSpec, ServiceInfo, ServicePatch,
    ServiceSettings,
};
use janus_core::name::{ClusterName, GroupName, InstanceKey, NamespaceId, ServiceKey, ServiceName};
use janus_core::service::{NodeHealth, WriteOutcome};
use janus_core::{RegistryConfig, RegistryService, RegistryStore};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

use crate::{DnsHandle, RegistryHandler, RrlConfig, start};

/// A registry read by the DNS front end; writes go straight to the store.
pub(crate) struct Registry {
    store: RegistryStore,
}

fn not_here<T>() -> Result<T, RegistryError> {
    Err(RegistryError::Invalid { field: "write".to_owned(), rule: "not through this test registry".to_owned() })
}

#[async_trait::async_trait]
impl RegistryService for Registry {
    fn view(&self) -> janus_core::StoreView<'_> {
        janus_core::StoreView::new(&self.store)
    }
    async fn create_namespace(&self, _: NamespaceSpec) -> Result<NamespaceInfo, RegistryError> {
        not_here()
    }
    async fn update_namespace(
        &self,
        _: NamespaceId,
        _: Option<String>,
        _: Option<String>,
    ) -> Result<NamespaceInfo, RegistryError> {
        not_here()
    }
    async fn delete_namespace(&self, _: NamespaceId) -> Result<(), RegistryError> {
        not_here()
    }
    async fn create_service(&self, _: ServiceKey, _: ServiceSettings) -> Result<ServiceInfo, RegistryError> {
        not_here()
    }
    async fn update_service(&self, _: ServiceKey, _: ServicePatch) -> Result<ServiceInfo, RegistryError> {
        not_here()
    }
    async fn delete_service(&self, _: ServiceKey) -> Result<(), RegistryError> {
        not_here()
    }
    async fn set_cluster(
        &self,
        _: ServiceKey,
        _: ClusterName,
        _: ClusterSettings,
    ) -> Result<ServiceInfo, RegistryError> {
        not_here()
    }
    async fn register_instance(&self, _: ServiceKey, _: InstanceSpec) -> Result<WriteOutcome, RegistryError> {
        not_here()
    }
    async fn update_instance(&self, _: ServiceKey, _: InstanceSpec) -> Result<WriteOutcome, RegistryError> {
        not_here()
    }
    async fn patch_instance(
        &self,
        _: ServiceKey,
        _: InstanceKey,
        _: InstancePatch,
    ) -> Result<WriteOutcome, RegistryError> {
        not_here()
    }
    async fn deregister_instance(&self, _: ServiceKey, _: InstanceKey) -> Result<WriteOutcome, RegistryError> {
        not_here()
    }
    async fn heartbeat(&self, _: ServiceKey, _: InstanceKey) -> Result<LeaseTiming, RegistryError> {
        not_here()
    }
    fn health(&self) -> NodeHealth {
        NodeHealth { ready: true, stats: self.store.read(|r| r.stats(self.store.now())) }
    }
}

impl Registry {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self { store: RegistryStore::new(RegistryConfig::default(), 16) })
    }

    /// Registers `ip:8080` in service `service` of `public`, with `metadata`.
    pub(crate) fn register(&self, service: &str, ip: IpAddr, metadata: &[(&str, &str)]) {
        let key =
            ServiceKey::new(NamespaceId::public(), GroupName::default_group(), ServiceName::new(service).unwrap());
        let mut spec = InstanceSpec::new(InstanceKey::new(ClusterName::default_cluster(), ip, 8080));
        spec.metadata = metadata.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        self.store.write(|r, now| r.register_instance(&key, spec, now)).unwrap();
    }
}

pub(crate) fn v4(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
}

pub(crate) fn v6(i: u32) -> IpAddr {
    format!("2001:db8::{i:x}").parse().unwrap()
}

/// A server on a free loopback port; stopped on drop.
struct Server {
    dns: Option<DnsHandle>,
    addr: SocketAddr,
    shutdown: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn serve(registry: Arc<Registry>, max_udp_payload: Option<u16>, rrl: RrlConfig) -> Server {
    let mut handler = RegistryHandler::new(registry, "janus.", 0, Default::default(), 1000).unwrap();
    if let Some(bytes) = max_udp_payload {
        handler = handler.with_max_udp_payload(bytes);
    }
    let shutdown = CancellationToken::new();
    let dns = start(handler, ([127, 0, 0, 1], 0).into(), Duration::from_secs(5), rrl, shutdown.clone()).await.unwrap();
    Server { addr: dns.addr, dns: Some(dns), shutdown }
}

fn query(name: &str, rtype: RecordType, edns: Option<u16>) -> Message {
    let mut message = Message::new(rand::random(), MessageType::Query, OpCode::Query);
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    if let Some(size) = edns {
        let mut opt = Edns::new();
        opt.set_max_payload(size);
        message.set_edns(opt);
    }
    message
}

/// The raw UDP answer to `message` from `socket`, or `None` within `wait`.
async fn udp_on(socket: &UdpSocket, server: SocketAddr, message: &Message, wait: Duration) -> Option<Vec<u8>> {
    socket.send_to(&message.to_vec().unwrap(), server).await.unwrap();
    let mut buffer = vec![0; 65_535];
    loop {
        let (n, _) = tokio::time::timeout(wait, socket.recv_from(&mut buffer)).await.ok()?.unwrap();
        if Message::from_vec(&buffer[..n]).unwrap().metadata.id == message.metadata.id {
            return Some(buffer[..n].to_vec());
        }
    }
}

async fn udp(server: SocketAddr, message: &Message) -> Vec<u8> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp_on(&socket, server, message, Duration::from_secs(2)).await.expect("a UDP answer")
}

async fn tcp(server: SocketAddr, message: &Message) -> Message {
    let bytes = message.to_vec().unwrap();
    let mut stream = TcpStream::connect(server).await.unwrap();
    stream.write_all(&u16::try_from(bytes.len()).unwrap().to_be_bytes()).await.unwrap();
    stream.write_all(&bytes).await.unwrap();
    let mut len = [0; 2];
    stream.read_exact(&mut len).await.unwrap();
    let mut answer = vec![0; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut answer).await.unwrap();
    Message::from_vec(&answer).unwrap()
}

/// A truncated answer carries the question and nothing else but the OPT record.
fn assert_truncated_and_empty(answer: &Message, what: &str) {
    assert!(answer.metadata.truncation, "{what}: TC");
    assert!(
        answer.answers.is_empty() && answer.authorities.is_empty() && answer.additionals.is_empty(),
        "{what}: records with TC: {} answers, {} authorities, {} additionals",
        answer.answers.len(),
        answer.authorities.len(),
        answer.additionals.len(),
    );
    assert_eq!(answer.queries.len(), 1, "{what}: the question is echoed");
}

#[tokio::test]
async fn udp_answers_are_capped_whatever_edns_asks() {
    let registry = Registry::new();
    for i in 0..200 {
        registry.register("big", v4(i), &[("zone", "eu-west-1a"), ("version", "1.2.3")]);
    }
    registry.register("small", v4(1), &[]);
    let server = serve(registry.clone(), None, RrlConfig::default()).await;
    for (edns, cap) in
        [(Some(65_535), 1232), (Some(4096), 1232), (Some(1232), 1232), (Some(700), 700), (Some(100), 512), (None, 512)]
    {
        for (name, rtype) in [
            ("big.svc.janus.", RecordType::TXT),
            ("_big._tcp.janus.", RecordType::SRV),
            ("big.svc.janus.", RecordType::A),
        ] {
            let what = format!("{rtype} with EDNS {edns:?}");
            let raw = udp(server.addr, &query(name, rtype, edns)).await;
            assert!(raw.len() <= cap, "{what}: {} bytes", raw.len());
            let answer = Message::from_vec(&raw).unwrap();
            assert_truncated_and_empty(&answer, &what);
            let advertised = answer.edns.as_ref().map(Edns::max_payload);
            assert_eq!(advertised, edns.map(|_| u16::try_from(cap).unwrap()), "{what}: the OPT record says the cap");
        }
    }
    // What fits is answered, and the OPT record says the payload used.
    let small =
        Message::from_vec(&udp(server.addr, &query("small.svc.janus.", RecordType::TXT, Some(65_535))).await).unwrap();
    assert!(!small.metadata.truncation);
    assert_eq!(small.answers.len(), 1);
    assert_eq!(small.edns.as_ref().map(Edns::max_payload), Some(1232));
    // Over TCP, everything.
    for (name, rtype) in [("big.svc.janus.", RecordType::TXT), ("_big._tcp.janus.", RecordType::SRV)] {
        let all = tcp(server.addr, &query(name, rtype, Some(65_535))).await;
        assert!(!all.metadata.truncation);
        assert_eq!(all.answers.len(), 200, "{rtype} over TCP");
    }
    drop(server);

    // A larger cap is honoured up to what the client asks.
    let server = serve(registry, Some(8192), RrlConfig::default()).await;
    let raw = udp(server.addr, &query("big.svc.janus.", RecordType::A, Some(65_535))).await;
    let answer = Message::from_vec(&raw).unwrap();
    assert!(raw.len() <= 8192 && raw.len() > 1232, "{} bytes", raw.len());
    assert_eq!((answer.metadata.truncation, answer.answers.len()), (false, 200));
    assert_eq!(answer.edns.as_ref().map(Edns::max_payload), Some(8192));
}

/// For every size of service, every UDP answer is complete (without TC) or
/// has TC and no records; SRV glue is all there or left out.
#[tokio::test]
async fn udp_answers_are_complete_or_truncated_and_empty() {
    let registry = Registry::new();
    let server = serve(registry.clone(), None, RrlConfig::default()).await;
    let long = "x".repeat(40);
    let (mut complete, mut truncated, mut glueless) = (0, 0, 0);
    for n in 0..48 {
        // Instances with metadata: a TXT record of about 90 bytes each.
        registry.register("meta", v4(n), &[("zone", "eu-west-1a"), ("note", &long)]);
        registry.register("mixed", if n % 2 == 0 { v4(n) } else { v6(n) }, &[]);
        let count = usize::try_from(n + 1).unwrap();
        for edns in [None, Some(1232)] {
            for (name, rtype) in [
                ("meta.svc.janus.", RecordType::TXT),
                ("_meta._tcp.janus.", RecordType::SRV),
                ("mixed.svc.janus.", RecordType::SRV),
                ("mixed.svc.janus.", RecordType::ANY),
                ("mixed.svc.janus.", RecordType::AAAA),
            ] {
                let what = format!("{rtype} of {name} with {count} instances, EDNS {edns:?}");
                let raw = udp(server.addr, &query(name, rtype, edns)).await;
                assert!(raw.len() <= usize::from(edns.unwrap_or(512)), "{what}: {} bytes", raw.len());
                let answer = Message::from_vec(&raw).unwrap();
                if answer.metadata.truncation {
                    assert_truncated_and_empty(&answer, &what);
                    truncated += 1;
                    continue;
                }
                complete += 1;
                let expected = match rtype {
                    RecordType::AAAA => count / 2,
                    _ => count,
                };
                assert_eq!(answer.answers.len(), expected, "{what}");
                if rtype == RecordType::SRV {
                    let glue = answer.additionals.iter().filter(|r| matches!(r.data, RData::A(_) | RData::AAAA(_)));
                    match glue.count() {
                        0 => glueless += 1,
                        g => assert_eq!(g, count, "{what}: all the glue or none"),
                    }
                }
            }
        }
    }
    assert!(
        complete > 100 && truncated > 100 && glueless > 0,
        "{complete} complete, {truncated} truncated, {glueless} without glue"
    );
}

#[tokio::test]
async fn txt_and_srv_answers_that_do_not_fit_carry_no_records() {
    // 20 TXT records of about 70 bytes: over 512 bytes, yet few enough that a
    // count of records per minimal record size let them through before.
    let registry = Registry::new();
    for i in 0..20 {
        registry.register("web", v4(i), &[("zone", "eu-west-1a"), ("version", "1.2.3")]);
    }
    let server = serve(registry, None, RrlConfig::default()).await;
    let txt = Message::from_vec(&udp(server.addr, &query("web.svc.janus.", RecordType::TXT, None)).await).unwrap();
    assert_truncated_and_empty(&txt, "TXT");
    let srv = Message::from_vec(&udp(server.addr, &query("_web._tcp.janus.", RecordType::SRV, None)).await).unwrap();
    assert_truncated_and_empty(&srv, "SRV");
    let tcp_txt = tcp(server.addr, &query("web.svc.janus.", RecordType::TXT, None)).await;
    assert_eq!((tcp_txt.metadata.truncation, tcp_txt.answers.len()), (false, 20));
}

#[tokio::test]
async fn rate_limiting_drops_and_slips_udp_answers_but_never_tcp() {
    let registry = Registry::new();
    registry.register("orders", v4(1), &[]);
    let rrl = RrlConfig { responses_per_second: 2, slip: 2, ..RrlConfig::default() };
    let server = serve(registry, None, rrl).await;
    // Six queries at once, well within a second; then whatever comes back.
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let asked: Vec<Message> = (0..6).map(|_| query("orders.svc.janus.", RecordType::A, Some(1232))).collect();
    for ask in &asked {
        socket.send_to(&ask.to_vec().unwrap(), server.addr).await.unwrap();
    }
    let mut answers = Vec::new();
    let mut buffer = vec![0; 65_535];
    while let Ok(received) = tokio::time::timeout(Duration::from_millis(500), socket.recv_from(&mut buffer)).await {
        answers.push(Message::from_vec(&buffer[..received.unwrap().0]).unwrap());
    }
    let seen: Vec<Option<&Message>> =
        asked.iter().map(|ask| answers.iter().find(|a| a.metadata.id == ask.metadata.id)).collect();
    // Two tokens, then drop, slip, drop, slip.
    for (i, answer) in seen.iter().enumerate() {
        match i {
            0 | 1 => {
                let answer = answer.expect("answered within the rate");
                assert_eq!((answer.metadata.truncation, answer.answers.len()), (false, 1), "answer {i}");
            }
            2 | 4 => assert!(answer.is_none(), "answer {i} is dropped"),
            _ => {
                let answer = answer.expect("a slipped answer");
                assert_truncated_and_empty(answer, "slip");
                assert_eq!(answer.edns.as_ref().map(Edns::max_payload), Some(1232));
            }
        }
    }
    // TCP is not limited.
    for _ in 0..5 {
        assert_eq!(tcp(server.addr, &query("orders.svc.janus.", RecordType::A, None)).await.answers.len(), 1);
    }
    let stats = server.dns.as_ref().unwrap().rrl_stats();
    assert_eq!((stats.limited, stats.dropped, stats.slipped, stats.prefixes), (4, 2, 2, 1));
}

#[tokio::test]
async fn without_rate_limiting_nothing_is_limited() {
    let registry = Registry::new();
    registry.register("orders", v4(1), &[]);
    let server = serve(registry, None, RrlConfig::default()).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for _ in 0..50 {
        let ask = query("orders.svc.janus.", RecordType::A, None);
        assert!(udp_on(&socket, server.addr, &ask, Duration::from_secs(2)).await.is_some());
    }
    assert_eq!(server.dns.as_ref().unwrap().rrl_stats(), crate::RrlStats::default());
}

/// The DNS access rule: a namespace closed to DNS answers REFUSED for any
/// name in it (an existing service or not, any case), others are untouched,
/// and opening it again answers at once.
#[tokio::test]
async fn a_namespace_closed_to_dns_is_refused_and_others_answer() {
    let registry = Registry::new();
    registry.register("web", v4(1), &[]);
    let team = NamespaceId::new("team").unwrap();
    let key = ServiceKey::new(team.clone(), GroupName::default_group(), ServiceName::new("api").unwrap());
    registry.store.write(|r, now| {
        let spec = janus_core::model::NamespaceSpec::new(team.clone(), None, None, janus_core::Mode::Ap).unwrap();
        r.create_namespace(spec).unwrap();
        let spec = InstanceSpec::new(InstanceKey::new(ClusterName::default_cluster(), v4(2), 8080));
        r.register_instance(&key, spec, now).unwrap();
    });
    let server = serve(registry.clone(), None, RrlConfig::default()).await;
    let code = |answer: &Message| answer.metadata.response_code;

    let open = tcp(server.addr, &query("_api._tcp.team.ns.janus.", RecordType::SRV, None)).await;
    assert_eq!((code(&open), open.answers.len()), (ResponseCode::NoError, 1));

    registry.store.write(|r, _| r.set_namespace_dns(&team, false)).unwrap();
    for name in [
        "_api._tcp.team.ns.janus.",
        "api.svc.team.ns.janus.",
        "nothing.svc.team.ns.janus.",
        "API.svc.TEAM.ns.janus.",
        "nothing.svc.TEAM.ns.janus.",
    ] {
        let answer = Message::from_vec(&udp(server.addr, &query(name, RecordType::SRV, None)).await).unwrap();
        assert_eq!(code(&answer), ResponseCode::Refused, "{name}");
        assert!(answer.answers.is_empty(), "{name}: no records");
    }
    let public = tcp(server.addr, &query("web.svc.janus.", RecordType::A, None)).await;
    assert_eq!((code(&public), public.answers.len()), (ResponseCode::NoError, 1), "public still answers");

    registry.store.write(|r, _| r.set_namespace_dns(&team, true)).unwrap();
    let reopened = tcp(server.addr, &query("api.svc.team.ns.janus.", RecordType::A, None)).await;
    assert_eq!((code(&reopened), reopened.answers.len()), (ResponseCode::NoError, 1));
}
