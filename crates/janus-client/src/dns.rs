//! DNS queries over UDP or TCP, built and parsed with hickory-proto: ask
//! Janus's DNS front end (`orders.svc.janus.`, `_orders._tcp.janus.` …) as
//! any stub resolver would.
//!
//! - [`query`]: one question, one answer (the hickory [`Message`]).
//! - [`UdpClient`]: one UDP socket for many questions to one server (a load
//!   generator's loop), skipping answers to earlier questions.
//! - [`message`] and [`exchange`]: build a question, or send raw bytes and
//!   get raw bytes back, for tests that craft or inspect the wire format.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

/// hickory-proto, whose [`Message`] the queries return.
pub use hickory_proto as proto;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpStream, UdpSocket};

/// The largest DNS message over UDP or TCP.
const MAX_MESSAGE: usize = 65_535;

/// How to ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueryOptions {
    /// Over TCP (length-prefixed) instead of UDP.
    pub tcp: bool,
    /// Advertise this EDNS payload size; no EDNS when `None`.
    pub edns: Option<u16>,
    /// How long to wait for the answer. Default 2 s.
    pub timeout: Duration,
}

impl Default for QueryOptions {
    fn default() -> Self {
        Self { tcp: false, edns: None, timeout: Duration::from_secs(2) }
    }
}

impl QueryOptions {
    /// Over UDP, without EDNS, waiting 2 s.
    #[must_use]
    pub fn udp() -> Self {
        Self::default()
    }

    /// Over TCP, without EDNS, waiting 2 s.
    #[must_use]
    pub fn tcp() -> Self {
        Self { tcp: true, ..Self::default() }
    }

    /// Advertising an EDNS payload of `size` bytes.
    #[must_use]
    pub fn edns(mut self, size: u16) -> Self {
        self.edns = Some(size);
        self
    }

    /// Waiting `timeout` for the answer.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Why a query got no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// The name is not a DNS name.
    #[error("{name:?} is not a DNS name: {reason}")]
    BadName {
        /// The name given.
        name: String,
        /// Why not.
        reason: String,
    },
    /// The question could not be encoded.
    #[error("the question cannot be encoded: {0}")]
    Encode(String),
    /// Sending or receiving failed (refused, unreachable, closed).
    #[error("{server}: {source}")]
    Io {
        /// The server asked.
        server: SocketAddr,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// No answer within the timeout.
    #[error("no answer from {server} within {} ms", after.as_millis())]
    Timeout {
        /// The server asked.
        server: SocketAddr,
        /// The timeout.
        after: Duration,
    },
    /// The answer is not a DNS message.
    #[error("the answer from {server} is not a DNS message: {reason}")]
    Malformed {
        /// The server asked.
        server: SocketAddr,
        /// Why not.
        reason: String,
    },
}

/// Message ids of this process's questions.
static NEXT_ID: AtomicU16 = AtomicU16::new(1);

/// A question for `name` (absolute, ending in `.`, or not) and `rtype`
/// with a fresh id, recursion desired, and EDNS when `edns` is given.
///
/// # Errors
/// [`DnsError::BadName`] when `name` is not a DNS name.
pub fn message(name: &str, rtype: RecordType, edns: Option<u16>) -> Result<Message, DnsError> {
    let parsed =
        Name::from_ascii(name).map_err(|e| DnsError::BadName { name: name.to_owned(), reason: e.to_string() })?;
    let mut message = Message::new(NEXT_ID.fetch_add(1, Ordering::Relaxed), MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(parsed, rtype));
    if let Some(size) = edns {
        let mut opt = Edns::new();
        opt.set_max_payload(size);
        message.set_edns(opt);
    }
    Ok(message)
}

/// Asks `server` for `name`/`rtype` and returns its answer (over UDP, the
/// answer with the question's id).
///
/// # Errors
/// A bad name, no answer within the timeout, a socket error, or an answer
/// that is not a DNS message.
pub async fn query(
    server: SocketAddr,
    name: &str,
    rtype: RecordType,
    options: QueryOptions,
) -> Result<Message, DnsError> {
    let question = message(name, rtype, options.edns)?;
    if options.tcp {
        let bytes = encode(&question)?;
        let answer = exchange_tcp(server, &bytes, options.timeout).await?;
        parse(server, &answer)
    } else {
        UdpClient::connect(server, options.timeout).await?.ask(&question).await
    }
}

/// Sends the raw `bytes` to `server` and returns the raw answer: over UDP
/// the first datagram that comes back, over TCP the first length-prefixed
/// message.
///
/// # Errors
/// No answer within the timeout, or a socket error.
pub async fn exchange(server: SocketAddr, bytes: &[u8], options: QueryOptions) -> Result<Vec<u8>, DnsError> {
    if options.tcp {
        exchange_tcp(server, bytes, options.timeout).await
    } else {
        let mut client = UdpClient::connect(server, options.timeout).await?;
        client.send_raw(bytes).await?;
        let n = client.receive().await?;
        Ok(client.buffer[..n].to_vec())
    }
}

/// One UDP socket connected to one server, for many questions in turn.
#[derive(Debug)]
pub struct UdpClient {
    socket: UdpSocket,
    server: SocketAddr,
    timeout: Duration,
    buffer: Vec<u8>,
}

impl UdpClient {
    /// A socket on an ephemeral port, connected to `server` (so only its
    /// datagrams arrive), waiting `timeout` for each answer.
    ///
    /// # Errors
    /// [`DnsError::Io`] if the socket cannot be opened or connected.
    pub async fn connect(server: SocketAddr, timeout: Duration) -> Result<Self, DnsError> {
        let io = |source| DnsError::Io { server, source };
        let local: SocketAddr =
            if server.is_ipv4() { (Ipv4Addr::UNSPECIFIED, 0).into() } else { (Ipv6Addr::UNSPECIFIED, 0).into() };
        let socket = UdpSocket::bind(local).await.map_err(io)?;
        socket.connect(server).await.map_err(io)?;
        Ok(Self { socket, server, timeout, buffer: vec![0; MAX_MESSAGE] })
    }

    /// Asks for `name`/`rtype` (without EDNS).
    ///
    /// # Errors
    /// As [`query`].
    pub async fn query(&mut self, name: &str, rtype: RecordType) -> Result<Message, DnsError> {
        let question = message(name, rtype, None)?;
        self.ask(&question).await
    }

    /// Sends `question` and returns the answer with its id; answers with
    /// other ids (to questions that timed out before) are skipped.
    ///
    /// # Errors
    /// As [`query`].
    pub async fn ask(&mut self, question: &Message) -> Result<Message, DnsError> {
        self.send_raw(&encode(question)?).await?;
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let n = tokio::time::timeout_at(deadline, self.receive_once())
                .await
                .map_err(|_| DnsError::Timeout { server: self.server, after: self.timeout })??;
            let answer = parse(self.server, &self.buffer[..n])?;
            if answer.metadata.id == question.metadata.id {
                return Ok(answer);
            }
        }
    }

    async fn send_raw(&self, bytes: &[u8]) -> Result<(), DnsError> {
        self.socket.send(bytes).await.map(drop).map_err(|source| DnsError::Io { server: self.server, source })
    }

    /// The next datagram, within the timeout; its length in the buffer.
    async fn receive(&mut self) -> Result<usize, DnsError> {
        let (server, after) = (self.server, self.timeout);
        tokio::time::timeout(after, self.receive_once()).await.map_err(|_| DnsError::Timeout { server, after })?
    }

    async fn receive_once(&mut self) -> Result<usize, DnsError> {
        self.socket.recv(&mut self.buffer).await.map_err(|source| DnsError::Io { server: self.server, source })
    }
}

/// One length-prefixed exchange on a new TCP connection.
async fn exchange_tcp(server: SocketAddr, bytes: &[u8], timeout: Duration) -> Result<Vec<u8>, DnsError> {
    let length = u16::try_from(bytes.len()).map_err(|_| DnsError::Encode("longer than 65535 bytes".to_owned()))?;
    let exchange = async {
        let mut stream = TcpStream::connect(server).await?;
        stream.write_all(&length.to_be_bytes()).await?;
        stream.write_all(bytes).await?;
        let mut prefix = [0; 2];
        stream.read_exact(&mut prefix).await?;
        let mut answer = vec![0; usize::from(u16::from_be_bytes(prefix))];
        stream.read_exact(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| DnsError::Timeout { server, after: timeout })?
        .map_err(|source| DnsError::Io { server, source })
}

fn encode(message: &Message) -> Result<Vec<u8>, DnsError> {
    message.to_vec().map_err(|e| DnsError::Encode(e.to_string()))
}

fn parse(server: SocketAddr, bytes: &[u8]) -> Result<Message, DnsError> {
    Message::from_vec(bytes).map_err(|e| DnsError::Malformed { server, reason: e.to_string() })
}

#[cfg(test)]
mod tests;
