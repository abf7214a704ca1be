//! The DNS helper against small scripted DNS servers on loopback.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, UdpSocket};

use super::*;

/// The answer a scripted server gives: the question back, one A record
/// of 10.0.0.n where n is the question's EDNS payload size (0 without EDNS).
fn answer_to(question: &Message) -> Message {
    let mut answer = Message::new(question.metadata.id, MessageType::Response, question.metadata.op_code);
    answer.add_query(question.queries[0].clone());
    let n = question.edns.as_ref().map_or(0, |e| u8::try_from(e.max_payload() % 256).unwrap_or(0));
    answer.add_answer(Record::from_rdata(
        question.queries[0].name.clone(),
        30,
        RData::A(A(Ipv4Addr::new(10, 0, 0, n))),
    ));
    answer
}

/// A UDP server that first sends a stray answer with another id, then the real one.
async fn udp_server() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buffer = vec![0; 4096];
        while let Ok((n, from)) = socket.recv_from(&mut buffer).await {
            let question = Message::from_vec(&buffer[..n]).unwrap();
            let mut stray = answer_to(&question);
            stray.metadata.id = question.metadata.id.wrapping_add(1000);
            socket.send_to(&stray.to_vec().unwrap(), from).await.unwrap();
            socket.send_to(&answer_to(&question).to_vec().unwrap(), from).await.unwrap();
        }
    });
    addr
}

async fn tcp_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut prefix = [0; 2];
            stream.read_exact(&mut prefix).await.unwrap();
            let mut question = vec![0; usize::from(u16::from_be_bytes(prefix))];
            stream.read_exact(&mut question).await.unwrap();
            let answer = answer_to(&Message::from_vec(&question).unwrap()).to_vec().unwrap();
            stream.write_all(&u16::try_from(answer.len()).unwrap().to_be_bytes()).await.unwrap();
            stream.write_all(&answer).await.unwrap();
        }
    });
    addr
}

fn address(message: &Message) -> Option<Ipv4Addr> {
    message.answers.iter().find_map(|r| match &r.data {
        RData::A(a) => Some(a.0),
        _ => None,
    })
}

#[test]
fn a_question_has_a_fresh_id_recursion_and_edns_when_asked() {
    let first = message("orders.svc.janus.", RecordType::SRV, None).unwrap();
    let second = message("orders.svc.janus.", RecordType::A, Some(1232)).unwrap();
    assert_ne!(first.metadata.id, second.metadata.id);
    assert!(first.metadata.recursion_desired);
    assert_eq!(first.queries[0].query_type(), RecordType::SRV);
    assert!(first.edns.is_none());
    assert_eq!(second.edns.as_ref().map(Edns::max_payload), Some(1232));
    assert!(matches!(message("bad..name", RecordType::A, None), Err(DnsError::BadName { .. })));
}

#[tokio::test]
async fn udp_answers_to_other_questions_are_skipped() {
    let server = udp_server().await;
    let answer = query(server, "web.svc.janus.", RecordType::A, QueryOptions::udp().edns(1232)).await.unwrap();
    assert_eq!(answer.metadata.message_type, MessageType::Response);
    assert_eq!(address(&answer), Some(Ipv4Addr::new(10, 0, 0, (1232 % 256) as u8)), "the EDNS size went out");

    let mut client = UdpClient::connect(server, Duration::from_secs(2)).await.unwrap();
    for _ in 0..3 {
        let answer = client.query("web.svc.janus.", RecordType::A).await.unwrap();
        assert_eq!(address(&answer), Some(Ipv4Addr::new(10, 0, 0, 0)));
    }
}

#[tokio::test]
async fn tcp_questions_are_length_prefixed() {
    let server = tcp_server().await;
    let answer = query(server, "web.svc.janus.", RecordType::A, QueryOptions::tcp()).await.unwrap();
    assert_eq!(address(&answer), Some(Ipv4Addr::new(10, 0, 0, 0)));
    let question = message("web.svc.janus.", RecordType::A, Some(1028)).unwrap();
    let raw = exchange(server, &question.to_vec().unwrap(), QueryOptions::tcp()).await.unwrap();
    assert_eq!(address(&Message::from_vec(&raw).unwrap()), Some(Ipv4Addr::new(10, 0, 0, 4)));
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let server = silent.local_addr().unwrap();
    let started = Instant::now();
    let options = QueryOptions::udp().timeout(Duration::from_millis(200));
    let error = query(server, "web.svc.janus.", RecordType::A, options).await.unwrap_err();
    assert!(matches!(error, DnsError::Timeout { .. }), "{error:?}");
    assert!(started.elapsed() >= Duration::from_millis(200));
    let error = exchange(server, b"\0\0", options).await.unwrap_err();
    assert!(matches!(error, DnsError::Timeout { .. }), "{error:?}");
    drop(silent);
}
