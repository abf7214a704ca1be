//! A small DNS client over UDP and TCP, built on hickory-proto messages.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpStream, UdpSocket};

static NEXT_ID: AtomicU16 = AtomicU16::new(1);

/// How to ask.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ask {
    /// Over TCP instead of UDP.
    pub tcp: bool,
    /// Advertise this EDNS payload size (no EDNS when `None`).
    pub edns: Option<u16>,
}

/// Builds a query message.
///
/// # Panics
/// If `name` is not a DNS name (a test bug).
#[must_use]
pub fn query(name: &str, rtype: RecordType, edns: Option<u16>) -> Message {
    let mut message = Message::new(NEXT_ID.fetch_add(1, Ordering::Relaxed), MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    let name = Name::from_ascii(name).unwrap_or_else(|e| panic!("bad name {name}: {e}"));
    message.add_query(Query::query(name, rtype));
    if let Some(size) = edns {
        let mut opt = Edns::new();
        opt.set_max_payload(size);
        message.set_edns(opt);
    }
    message
}

/// Asks `server` for `name`/`rtype` and returns the parsed answer.
///
/// # Errors
/// No answer within 2 s, or an unparsable one.
pub async fn ask(server: SocketAddr, name: &str, rtype: RecordType, how: Ask) -> Result<Message, String> {
    let message = query(name, rtype, how.edns);
    let bytes = message.to_vec().map_err(|e| e.to_string())?;
    let answer = if how.tcp { exchange_tcp(server, &bytes).await? } else { exchange_udp(server, &bytes).await? };
    Message::from_vec(&answer).map_err(|e| e.to_string())
}

/// Sends raw bytes over UDP and returns the raw answer.
///
/// # Errors
/// No answer within 2 s.
pub async fn exchange_udp(server: SocketAddr, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    socket.send_to(bytes, server).await.map_err(|e| e.to_string())?;
    let mut buffer = vec![0; 65_535];
    let (n, _) = tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buffer))
        .await
        .map_err(|_| "no UDP answer within 2 s".to_owned())?
        .map_err(|e| e.to_string())?;
    buffer.truncate(n);
    Ok(buffer)
}

/// Sends raw bytes over TCP (with the 2-byte length prefix) and returns the raw answer.
///
/// # Errors
/// No answer within 2 s.
pub async fn exchange_tcp(server: SocketAddr, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let exchange = async {
        let mut stream = TcpStream::connect(server).await?;
        let len = u16::try_from(bytes.len()).map_err(std::io::Error::other)?;
        stream.write_all(&len.to_be_bytes()).await?;
        stream.write_all(bytes).await?;
        let mut len = [0; 2];
        stream.read_exact(&mut len).await?;
        let mut answer = vec![0; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .map_err(|_| "no TCP answer within 2 s".to_owned())?
        .map_err(|e| e.to_string())
}
