//! The DNS interface over real UDP and TCP sockets, asked with
//! `janus_client::dns`.

use std::net::IpAddr;
use std::time::Duration;

use janus_client::dns::proto::op::{Edns, Message, OpCode, Query, ResponseCode};
use janus_client::dns::proto::rr::{DNSClass, Name, RData, RecordType};
use janus_client::dns::{self, QueryOptions};
use janus_client::{Method, StatusCode};
use janus_e2e::Node;
use proptest::prelude::*;
use proptest::strategy::ValueTree as _;

struct Fixture {
    node: Node,
}

/// Over UDP with the EDNS payload `edns` (none when `None`).
fn udp(edns: Option<u16>) -> QueryOptions {
    let mut options = QueryOptions::udp();
    options.edns = edns;
    options
}

/// Over TCP with the EDNS payload `edns` (none when `None`).
fn tcp(edns: Option<u16>) -> QueryOptions {
    let mut options = udp(edns);
    options.tcp = true;
    options
}

/// The raw answer to `question` over UDP.
async fn exchange(server: std::net::SocketAddr, question: &Message) -> Vec<u8> {
    dns::exchange(server, &question.to_vec().unwrap(), QueryOptions::udp()).await.unwrap()
}

impl Fixture {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    async fn start_with(tweak: impl FnOnce(&mut janus_server::ServerConfig)) -> Self {
        let node = Node::start(|c| {
            c.dns.namespace_ttl_secs.insert("cached".to_owned(), 30);
            tweak(c);
        })
        .await;
        Self { node }
    }

    async fn register(&self, namespace: &str, service: &str, body: serde_json::Value) {
        let path = format!("/v1/namespaces/{namespace}/services/{service}/instances");
        assert_eq!(self.node.call(Method::POST, &path, Some(body)).await.status, StatusCode::CREATED);
    }

    async fn call(&self, method: Method, path: &str, json: Option<serde_json::Value>) -> StatusCode {
        self.node.call(method, path, json).await.status
    }

    async fn ask(&self, name: &str, rtype: RecordType) -> Message {
        self.ask_with(name, rtype, QueryOptions::udp()).await
    }

    async fn ask_with(&self, name: &str, rtype: RecordType, how: QueryOptions) -> Message {
        dns::query(self.node.server.dns_addr.unwrap(), name, rtype, how).await.unwrap()
    }
}

fn ips(message: &Message) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect();
    ips.sort();
    ips
}

#[tokio::test]
async fn a_and_aaaa_list_healthy_enabled_instances() {
    let f = Fixture::start().await;
    f.register("public", "orders", serde_json::json!({"ip": "10.0.0.1", "port": 8080})).await;
    f.register("public", "orders", serde_json::json!({"ip": "10.0.0.2", "port": 8080})).await;
    f.register("public", "orders", serde_json::json!({"ip": "2001:db8::7", "port": 8080})).await;
    f.register("public", "orders", serde_json::json!({"ip": "10.0.0.3", "port": 8080, "enabled": false})).await;
    let sick = "/v1/namespaces/public/services/orders/instances/10.0.0.2/8080";
    assert_eq!(f.call(Method::PATCH, sick, Some(serde_json::json!({"healthy": false}))).await, StatusCode::OK);

    let a = f.ask("orders.svc.janus.", RecordType::A).await;
    assert_eq!(a.metadata.response_code, ResponseCode::NoError);
    assert!(a.metadata.authoritative);
    assert_eq!(ips(&a), ["10.0.0.1".parse::<IpAddr>().unwrap()], "unhealthy and disabled instances are left out");
    assert!(a.answers.iter().all(|r| r.ttl == 0), "default TTL is 0");
    let aaaa = f.ask("orders.svc.janus.", RecordType::AAAA).await;
    assert_eq!(ips(&aaaa), ["2001:db8::7".parse::<IpAddr>().unwrap()]);
    // Case is folded when the exact name does not exist.
    assert_eq!(ips(&f.ask("ORDERS.svc.Janus.", RecordType::A).await).len(), 1);
    // The full form names the namespace and group.
    assert_eq!(ips(&f.ask("orders.svc.DEFAULT_GROUP.group.public.ns.janus.", RecordType::A).await).len(), 1);
}

#[tokio::test]
async fn srv_answers_carry_port_weight_and_glue() {
    let f = Fixture::start().await;
    f.register("public", "orders", serde_json::json!({"ip": "10.0.0.1", "port": 8080, "weight": 5})).await;
    f.register("public", "orders", serde_json::json!({"ip": "::1", "port": 9090})).await;
    let srv = f.ask_with("_orders._tcp.janus.", RecordType::SRV, udp(Some(1232))).await;
    assert_eq!(srv.answers.len(), 2);
    let mut seen = Vec::new();
    for record in &srv.answers {
        let RData::SRV(srv_data) = &record.data else { panic!("not SRV: {record:?}") };
        let target = srv_data.target.to_ascii();
        let glue = srv.additionals.iter().find(|r| r.name.to_ascii() == target).expect("glue for every target");
        seen.push((srv_data.port, srv_data.weight, target.clone(), glue.data.clone()));
        let direct = f.ask(&target, if target.starts_with("0a") { RecordType::A } else { RecordType::AAAA }).await;
        assert_eq!(direct.answers.len(), 1, "the target resolves by itself: {target}");
    }
    seen.sort_by_key(|s| s.0);
    assert_eq!((seen[0].0, seen[0].1, seen[0].2.as_str()), (8080, 5, "0a000001.addr.janus."));
    assert_eq!((seen[1].0, seen[1].1), (9090, 1));
    assert!(seen[1].2.ends_with(".addr.janus.") && seen[1].2.len() == 32 + ".addr.janus.".len());
    // SRV on the standard name works too, scoped by cluster.
    let none = f.ask("orders.svc.blue.cluster.janus.", RecordType::SRV).await;
    assert_eq!((none.metadata.response_code, none.answers.len()), (ResponseCode::NoError, 0));
}

#[tokio::test]
async fn txt_carries_metadata_and_ttl_follows_settings() {
    let f = Fixture::start().await;
    let create = serde_json::json!({"id": "cached", "mode": "ap"});
    assert_eq!(f.call(Method::POST, "/v1/namespaces", Some(create)).await, StatusCode::CREATED);
    f.register("cached", "web", serde_json::json!({"ip": "10.0.0.9", "port": 80, "metadata": {"zone": "a"}})).await;
    let txt = f.ask("web.svc.cached.ns.janus.", RecordType::TXT).await;
    let RData::TXT(data) = &txt.answers[0].data else { panic!() };
    let strings: Vec<String> = data.txt_data.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect();
    assert!(strings.contains(&"instance=10.0.0.9:80".to_owned()), "{strings:?}");
    assert!(strings.contains(&"zone=a".to_owned()), "{strings:?}");
    assert_eq!(txt.answers[0].ttl, 30, "namespace TTL");
    let body = serde_json::json!({"metadata": {"janus.dns.ttl": "7"}});
    assert_eq!(f.call(Method::PUT, "/v1/namespaces/cached/services/web", Some(body)).await, StatusCode::OK);
    assert_eq!(f.ask("web.svc.cached.ns.janus.", RecordType::A).await.answers[0].ttl, 7, "service metadata TTL");
}

#[tokio::test]
async fn response_codes() {
    let f = Fixture::start().await;
    f.register("public", "orders", serde_json::json!({"ip": "10.0.0.1", "port": 80})).await;
    let unknown = f.ask("nobody.svc.janus.", RecordType::A).await;
    assert_eq!(unknown.metadata.response_code, ResponseCode::NXDomain);
    assert!(
        matches!(unknown.authorities.first().map(|r| &r.data), Some(RData::SOA(_))),
        "negative answers carry the SOA"
    );
    assert_eq!(f.ask("orders.svc.ghost.ns.janus.", RecordType::A).await.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(f.ask("what.is.this.janus.", RecordType::A).await.metadata.response_code, ResponseCode::NXDomain);
    let nodata = f.ask("orders.svc.janus.", RecordType::AAAA).await;
    assert_eq!((nodata.metadata.response_code, nodata.answers.len()), (ResponseCode::NoError, 0));
    let mx = f.ask("orders.svc.janus.", RecordType::MX).await;
    assert_eq!((mx.metadata.response_code, mx.answers.len()), (ResponseCode::NoError, 0));
    let outside = f.ask("example.com.", RecordType::A).await;
    assert_eq!(outside.metadata.response_code, ResponseCode::Refused, "never a recursive resolver");
    let soa = f.ask("janus.", RecordType::SOA).await;
    assert!(matches!(soa.answers[0].data, RData::SOA(_)));
    // Two questions in one message: FORMERR.
    let mut two = dns::message("orders.svc.janus.", RecordType::A, None).unwrap();
    two.add_query(Query::query(Name::from_ascii("x.svc.janus.").unwrap(), RecordType::A));
    let answer = exchange(f.node.server.dns_addr.unwrap(), &two).await;
    assert_eq!(Message::from_vec(&answer).unwrap().metadata.response_code, ResponseCode::FormErr);
}

#[tokio::test]
async fn protect_threshold_applies_as_on_http() {
    let f = Fixture::start().await;
    f.register("public", "orders", serde_json::json!({"ip": "10.0.0.1", "port": 80})).await;
    let sick = "/v1/namespaces/public/services/orders/instances/10.0.0.1/80";
    f.call(Method::PATCH, sick, Some(serde_json::json!({"healthy": false}))).await;
    // No instance healthy, default threshold 0: everything is returned (Nacos).
    assert_eq!(ips(&f.ask("orders.svc.janus.", RecordType::A).await).len(), 1);
}

#[tokio::test]
async fn large_answers_truncate_over_udp_and_are_complete_over_tcp() {
    // A UDP cap above the default, so that 4096-byte answers are possible.
    let f = Fixture::start_with(|c| c.dns.max_udp_payload = 4096).await;
    for i in 0..100 {
        f.register("public", "big", serde_json::json!({"ip": format!("10.1.0.{i}"), "port": 80})).await;
    }
    for edns in [None, Some(1232)] {
        let udp = f.ask_with("_big._tcp.janus.", RecordType::SRV, udp(edns)).await;
        assert!(udp.metadata.truncation, "100 SRV records do not fit in {edns:?}");
        assert!(udp.answers.is_empty(), "a truncated answer carries no records; the client asks over TCP");
    }
    // 4096 bytes (asked for, and allowed by dns.max_udp_payload) hold the 100
    // SRV records but not their glue: the glue is left out (it is optional)
    // and the answer is complete, without TC.
    let big = f.ask_with("_big._tcp.janus.", RecordType::SRV, udp(Some(4096))).await;
    assert!(!big.metadata.truncation);
    assert_eq!((big.answers.len(), big.additionals.len()), (100, 0));
    let tcp = f.ask_with("_big._tcp.janus.", RecordType::SRV, tcp(None)).await;
    assert!(!tcp.metadata.truncation);
    assert_eq!(tcp.answers.len(), 100);
    assert_eq!(tcp.additionals.len(), 100);
    // 30 A records need a larger EDNS payload than 512 bytes, and then fit over UDP.
    for i in 0..30 {
        f.register("public", "wide", serde_json::json!({"ip": format!("10.3.0.{i}"), "port": 80})).await;
    }
    let plain = f.ask("wide.svc.janus.", RecordType::A).await;
    assert!(plain.metadata.truncation && plain.answers.is_empty());
    let edns = f.ask_with("wide.svc.janus.", RecordType::A, udp(Some(1232))).await;
    assert!(!edns.metadata.truncation);
    assert_eq!(edns.answers.len(), 30);
}

#[tokio::test]
async fn udp_answers_are_capped_whatever_edns_asks_and_truncate_without_records() {
    let f = Fixture::start().await;
    for i in 0..200 {
        let body = serde_json::json!({"ip": format!("10.4.0.{i}"), "port": 80, "metadata": {"zone": "eu-west-1a"}});
        f.register("public", "huge", body).await;
    }
    let addr = f.node.server.dns_addr.unwrap();
    for (name, rtype) in [("huge.svc.janus.", RecordType::TXT), ("_huge._tcp.janus.", RecordType::SRV)] {
        let ask = dns::message(name, rtype, Some(65_535)).unwrap();
        let raw = exchange(addr, &ask).await;
        assert!(raw.len() <= 1232, "{rtype} over UDP with EDNS 65535: {} bytes", raw.len());
        let udp = Message::from_vec(&raw).unwrap();
        assert!(udp.metadata.truncation, "{rtype}: TC");
        assert!(
            udp.answers.is_empty() && udp.authorities.is_empty() && udp.additionals.is_empty(),
            "{rtype}: a truncated answer carries no records"
        );
        assert_eq!(udp.edns.as_ref().map(Edns::max_payload), Some(1232), "{rtype}: the cap is advertised");
        let tcp = f.ask_with(name, rtype, tcp(Some(65_535))).await;
        assert!(!tcp.metadata.truncation);
        assert_eq!(tcp.answers.len(), 200, "{rtype} over TCP");
    }
}

#[tokio::test]
async fn rate_limiting_limits_udp_per_source_and_never_tcp() {
    let f = Fixture::start_with(|c| {
        c.dns.rrl_responses_per_second = 5;
        c.dns.rrl_slip = 2;
    })
    .await;
    f.register("public", "orders", serde_json::json!({"ip": "10.0.0.1", "port": 80})).await;
    let addr = f.node.server.dns_addr.unwrap();
    // 20 queries at once, well within a second: 5 answered, then every 2nd
    // limited one truncated and empty, the others dropped.
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for _ in 0..20 {
        let ask = dns::message("orders.svc.janus.", RecordType::A, None).unwrap();
        socket.send_to(&ask.to_vec().unwrap(), addr).await.unwrap();
    }
    let (mut answered, mut slipped, mut other) = (0, 0, 0);
    let mut buffer = vec![0; 65_535];
    while let Ok(received) = tokio::time::timeout(Duration::from_millis(500), socket.recv_from(&mut buffer)).await {
        let answer = Message::from_vec(&buffer[..received.unwrap().0]).unwrap();
        match (answer.metadata.truncation, answer.answers.len()) {
            (false, 1) => answered += 1,
            (true, 0) => slipped += 1,
            _ => other += 1,
        }
    }
    assert!((5..=6).contains(&answered), "{answered} answered");
    assert!((6..=8).contains(&slipped), "{slipped} slipped");
    assert_eq!(other, 0);
    // TCP is never limited.
    for _ in 0..10 {
        assert_eq!(f.ask_with("orders.svc.janus.", RecordType::A, tcp(None)).await.answers.len(), 1);
    }
}

#[tokio::test]
async fn a_registry_change_is_visible_on_the_next_query() {
    let f = Fixture::start().await;
    f.register("public", "orders", serde_json::json!({"ip": "10.0.0.1", "port": 80})).await;
    assert_eq!(ips(&f.ask("orders.svc.janus.", RecordType::A).await).len(), 1);
    f.register("public", "orders", serde_json::json!({"ip": "10.0.0.2", "port": 80})).await;
    assert_eq!(ips(&f.ask("orders.svc.janus.", RecordType::A).await).len(), 2, "no stale cache after a registration");
    let gone = "/v1/namespaces/public/services/orders/instances/10.0.0.1/80";
    assert_eq!(f.call(Method::DELETE, gone, None).await, StatusCode::OK);
    assert_eq!(ips(&f.ask("orders.svc.janus.", RecordType::A).await), ["10.0.0.2".parse::<IpAddr>().unwrap()]);
}

#[tokio::test]
async fn random_bytes_never_break_the_server() {
    let f = Fixture::start().await;
    f.register("public", "orders", serde_json::json!({"ip": "10.0.0.1", "port": 80})).await;
    let addr = f.node.server.dns_addr.unwrap();
    let mut runner =
        proptest::test_runner::TestRunner::new(proptest::test_runner::Config { cases: 300, ..Default::default() });
    let strategy = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600),
        // A valid query with some bytes flipped.
        (any::<usize>(), any::<u8>(), any::<u16>()).prop_map(|(at, byte, rtype)| {
            let mut bytes =
                dns::message("orders.svc.janus.", RecordType::from(rtype), Some(1232)).unwrap().to_vec().unwrap();
            let at = at % bytes.len();
            bytes[at] ^= byte;
            bytes
        }),
    ];
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut buffer = vec![0; 65_535];
    for _ in 0..300 {
        let bytes = strategy.new_tree(&mut runner).unwrap().current();
        socket.send_to(&bytes, addr).await.unwrap();
        // Then a probe: every answer before the probe's must be a parsable DNS message.
        let probe = dns::message("orders.svc.janus.", RecordType::A, None).unwrap();
        socket.send_to(&probe.to_vec().unwrap(), addr).await.unwrap();
        loop {
            let (n, _) = tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buffer))
                .await
                .expect("the server still answers after random input")
                .unwrap();
            let Ok(answer) = Message::from_vec(&buffer[..n]) else {
                panic!("unparsable answer to {bytes:02x?}");
            };
            if answer.metadata.id == probe.metadata.id && answer.answers.len() == 1 {
                break;
            }
            assert_ne!(answer.metadata.response_code, ResponseCode::ServFail, "input {bytes:02x?}");
        }
    }
}

#[tokio::test]
async fn a_cut_answer_always_says_so() {
    // 40 IPv4 and 40 IPv6 instances: an A answer over plain UDP cannot hold
    // all 40 addresses, so it must be marked truncated; AAAA likewise.
    let f = Fixture::start().await;
    for i in 0..40 {
        f.register("public", "mixed", serde_json::json!({"ip": format!("10.2.0.{i}"), "port": 80})).await;
        f.register("public", "mixed", serde_json::json!({"ip": format!("2001:db8::{i:x}"), "port": 80})).await;
    }
    for rtype in [RecordType::A, RecordType::AAAA] {
        let udp = f.ask("mixed.svc.janus.", rtype).await;
        let tcp = f.ask_with("mixed.svc.janus.", rtype, tcp(None)).await;
        assert_eq!(tcp.answers.len(), 40, "{rtype}");
        assert!(
            udp.answers.len() == 40 || udp.metadata.truncation,
            "{rtype}: {} answers without TC",
            udp.answers.len()
        );
    }
}

#[tokio::test]
async fn other_opcodes_and_edns_versions_are_refused_properly() {
    let f = Fixture::start().await;
    let addr = f.node.server.dns_addr.unwrap();
    let mut notify = dns::message("orders.svc.janus.", RecordType::SOA, None).unwrap();
    notify.metadata.op_code = OpCode::Notify;
    let answer = Message::from_vec(&exchange(addr, &notify).await).unwrap();
    assert_eq!(answer.metadata.response_code, ResponseCode::NotImp);

    let mut future = dns::message("orders.svc.janus.", RecordType::A, Some(1232)).unwrap();
    future.edns.as_mut().unwrap().set_version(1);
    let answer = Message::from_vec(&exchange(addr, &future).await).unwrap();
    // BADVERS and BADSIG share the value 16 (RFC 6891 / RFC 8945); the parser names it BADSIG.
    assert_eq!(u16::from(answer.metadata.response_code), u16::from(ResponseCode::BADVERS));
    assert!(answer.edns.is_some(), "BADVERS travels in the OPT record");

    let mut chaos = dns::message("orders.svc.janus.", RecordType::A, None).unwrap();
    chaos.queries[0].set_query_class(DNSClass::CH);
    let answer = Message::from_vec(&exchange(addr, &chaos).await).unwrap();
    assert_eq!(answer.metadata.response_code, ResponseCode::Refused);
}
