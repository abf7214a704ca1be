//! Binding and running the DNS server (UDP and TCP on one port).
//!
//! TCP is served by hickory's `Server`. UDP runs our own receive loop: it
//! parses with hickory (`Request::from_bytes`), answers through the same
//! [`RequestHandler`] and encodes with hickory's `MessageResponse`, but replies
//! inline instead of spawning a task and hopping through a channel per
//! datagram, which roughly doubles the queries a core answers. The UDP loop
//! also applies response rate limiting ([`crate::rrl`]); TCP is not limited,
//! since its source addresses cannot be forged.
//!
//! hickory's `Server` logs every TCP query it answers at INFO (target
//! `hickory_server::server`); the log filter decides whether that is shown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_server::Server;
use hickory_server::net::NetError;
use hickory_server::net::runtime::{Time, TokioTime};
use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::Edns;
use hickory_server::proto::op::{Header, HeaderCounts, Message, MessageType, OpCode, ResponseCode};
use hickory_server::proto::rr::Record;
use hickory_server::proto::serialize::binary::{BinDecodable as _, BinDecoder, BinEncoder};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, debug, info, warn};

use crate::RegistryHandler;
use crate::handler::MIN_UDP_PAYLOAD;
use crate::rrl::{RateLimiter, RrlConfig, RrlCounters, RrlStats, Verdict};

/// A running DNS server.
pub struct DnsHandle {
    /// Where it listens (UDP and TCP).
    pub addr: SocketAddr,
    task: JoinHandle<()>,
    rrl: Arc<RrlCounters>,
}

impl DnsHandle {
    /// The counters of response rate limiting (all zero while it is off).
    #[must_use]
    pub fn rrl_stats(&self) -> RrlStats {
        self.rrl.snapshot()
    }

    /// Waits until the server has stopped.
    pub async fn wait(self) {
        if self.task.await.is_err() {
            warn!("DNS server task panicked");
        }
    }
}

/// Binds UDP and TCP on `addr` (port 0 picks one free port for both) and
/// serves until `shutdown` is cancelled, limiting UDP responses per source
/// prefix as `rrl` says.
///
/// # Errors
/// A socket cannot be bound.
pub async fn start(
    handler: RegistryHandler,
    addr: SocketAddr,
    tcp_timeout: Duration,
    rrl: RrlConfig,
    shutdown: CancellationToken,
) -> std::io::Result<DnsHandle> {
    let (udp, tcp) = bind_pair(addr).await?;
    let addr = udp.local_addr()?;
    let handler_max_payload = handler.max_udp_payload();
    let handler = Arc::new(handler);
    let mut server = Server::new(SharedHandler(handler.clone()));
    server.register_listener(tcp, tcp_timeout, 64 * 1024);
    let counters = Arc::new(RrlCounters::default());
    let limiter = RateLimiter::new(&rrl, counters.clone());
    // The tasks log under the caller's span (the node's, with its id).
    let udp_task = tokio::spawn(serve_udp(Arc::new(udp), handler, limiter, shutdown.clone()).in_current_span());
    let task = tokio::spawn(
        async move {
            shutdown.cancelled().await;
            if let Err(error) = server.shutdown_gracefully().await {
                warn!(%error, "DNS server stopped with an error");
            }
            if udp_task.await.is_err() {
                warn!("UDP loop panicked");
            }
        }
        .in_current_span(),
    );
    let rrl_rate = rrl.responses_per_second;
    info!(%addr, max_udp_payload = handler_max_payload, rrl_responses_per_second = rrl_rate, "dns serving");
    Ok(DnsHandle { addr, task, rrl: counters })
}

/// The handler shared by the TCP server and the UDP loop.
struct SharedHandler(Arc<RegistryHandler>);

#[async_trait::async_trait]
impl RequestHandler for SharedHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(&self, request: &Request, response_handle: R) -> ResponseInfo {
        self.0.handle_request::<R, T>(request, response_handle).await
    }
}

/// Largest UDP request read; longer datagrams are cut and answered FORMERR.
const MAX_UDP_REQUEST: usize = 4096;

async fn serve_udp(
    socket: Arc<UdpSocket>,
    handler: Arc<RegistryHandler>,
    mut limiter: Option<RateLimiter>,
    shutdown: CancellationToken,
) {
    let mut buffer = vec![0; MAX_UDP_REQUEST];
    loop {
        let received = tokio::select! {
            received = socket.recv_from(&mut buffer) => received,
            () = shutdown.cancelled() => return,
        };
        let (len, src) = match received {
            Ok(received) => received,
            Err(error) => {
                // ICMP errors surface here on Linux; the socket stays usable.
                debug!(%error, "UDP receive error");
                continue;
            }
        };
        if src.port() == 0 || src.ip().is_unspecified() {
            continue;
        }
        let raw = &buffer[..len];
        let request = match Request::from_bytes(raw.to_vec(), src, Protocol::Udp) {
            Ok(request) if request.metadata.message_type == MessageType::Query => Ok(request),
            // Responses are not for us.
            Ok(_) => continue,
            Err(_) => match format_error(raw) {
                Some(bytes) => Err(bytes),
                None => continue,
            },
        };
        // Every response is charged to its source's prefix, FORMERR included.
        let verdict = limiter.as_mut().map_or(Verdict::Answer, |rrl| rrl.check(src.ip(), Instant::now()));
        let reply = UdpReply { socket: socket.clone(), dst: src };
        match (request, verdict) {
            (_, Verdict::Drop) => {}
            (Ok(request), Verdict::Answer) => {
                handler.handle_request::<_, TokioTime>(&request, reply).await;
            }
            (Ok(request), Verdict::Slip) => {
                if let Err(error) = handler.send_truncated(&request, reply).await {
                    debug!(%error, "cannot send DNS response");
                }
            }
            // A FORMERR is no larger than a slipped answer.
            (Err(bytes), Verdict::Answer | Verdict::Slip) => {
                let _ = socket.send_to(&bytes, src).await;
            }
        }
    }
}

/// FORMERR for a datagram whose header parses but whose body does not; `None`
/// (silence) otherwise.
fn format_error(raw: &[u8]) -> Option<Vec<u8>> {
    let header = Header::read(&mut BinDecoder::new(raw)).ok()?;
    if header.metadata.message_type != MessageType::Query {
        return None;
    }
    Message::error_msg(header.metadata.id, header.metadata.op_code, ResponseCode::FormErr).to_vec().ok()
}

/// Sends one answer on the shared UDP socket, encoded by [`encode_udp`].
#[derive(Clone)]
struct UdpReply {
    socket: Arc<UdpSocket>,
    dst: SocketAddr,
}

#[async_trait::async_trait]
impl ResponseHandler for UdpReply {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let (info, bytes) = encode_udp(response)?;
        self.socket.send_to(&bytes, self.dst).await.map_err(|e| NetError::from(e.to_string()))?;
        Ok(info)
    }
}

/// Encodes `response` for UDP within its EDNS payload size (512 bytes without
/// EDNS; the handler has capped it already). The handler only builds answers
/// whose records fit, but should the encoder still cut records, the answer
/// goes out with TC set and no records rather than with some of them.
fn encode_udp<'a, A, N, S, D>(
    response: MessageResponse<'_, 'a, A, N, S, D>,
) -> Result<(ResponseInfo, Vec<u8>), NetError>
where
    A: Iterator<Item = &'a Record> + Send + 'a,
    N: Iterator<Item = &'a Record> + Send + 'a,
    S: Iterator<Item = &'a Record> + Send + 'a,
    D: Iterator<Item = &'a Record> + Send + 'a,
{
    let edns = response.edns().cloned();
    let max = edns.as_ref().map_or(MIN_UDP_PAYLOAD, |edns| edns.max_payload().max(MIN_UDP_PAYLOAD));
    let id = response.metadata().id;
    let mut bytes = Vec::with_capacity(512);
    let mut encoder = BinEncoder::new(&mut bytes);
    encoder.set_max_size(max);
    match response.destructive_emit(&mut encoder) {
        Ok(info) => {
            let counts = info.counts();
            let records =
                counts.answers > 0 || counts.authorities > 0 || counts.additionals > u16::from(edns.is_some());
            if info.truncation && records {
                debug!(id, max, "records did not fit the UDP payload; answering with TC and no records");
                return truncated_without_records(&bytes, edns);
            }
            Ok((info, bytes))
        }
        Err(error) => {
            debug!(%error, "cannot encode DNS answer");
            let failed = Message::error_msg(id, OpCode::Query, ResponseCode::ServFail);
            let bytes = failed.to_vec().map_err(|e| NetError::from(e.to_string()))?;
            Ok((ResponseInfo::from(Header { metadata: failed.metadata, counts: HeaderCounts::default() }), bytes))
        }
    }
}

/// `encoded` (a whole message) with its records removed and TC set, keeping
/// the question and the OPT record.
fn truncated_without_records(encoded: &[u8], edns: Option<Edns>) -> Result<(ResponseInfo, Vec<u8>), NetError> {
    let message = Message::from_vec(encoded).map_err(|e| NetError::from(e.to_string()))?;
    let mut empty = message.truncate();
    empty.edns = edns;
    let bytes = empty.to_vec().map_err(|e| NetError::from(e.to_string()))?;
    let header = Header::read(&mut BinDecoder::new(&bytes)).map_err(|e| NetError::from(e.to_string()))?;
    Ok((ResponseInfo::from(header), bytes))
}

/// Binds a UDP socket and a TCP listener on the same port.
async fn bind_pair(addr: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    if addr.port() != 0 {
        return Ok((UdpSocket::bind(addr).await?, TcpListener::bind(addr).await?));
    }
    // An ephemeral UDP port may be taken for TCP; try a few.
    let mut last = None;
    for _ in 0..16 {
        let udp = UdpSocket::bind(addr).await?;
        match TcpListener::bind(udp.local_addr()?).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(error) => last = Some(error),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port pair")))
}

#[cfg(test)]
mod tests {
    use hickory_server::proto::op::{Metadata, Query};
    use hickory_server::proto::rr::rdata::TXT;
    use hickory_server::proto::rr::{Name, RData, RecordType};
    use hickory_server::zone_handler::MessageResponseBuilder;

    use super::*;

    #[test]
    fn records_the_encoder_cuts_are_never_sent_in_part() {
        let qname = Name::from_ascii("web.svc.janus.").unwrap();
        let mut ask = Message::new(9, MessageType::Query, OpCode::Query);
        ask.add_query(Query::query(qname.clone(), RecordType::TXT));
        ask.set_edns(Edns::new());
        let request = Request::from_bytes(ask.to_vec().unwrap(), ([127, 0, 0, 1], 5300).into(), Protocol::Udp).unwrap();
        let records: Vec<Record> = (0..40)
            .map(|i| Record::from_rdata(qname.clone(), 0, RData::TXT(TXT::new(vec![format!("n={i}")]))))
            .collect();
        for payload in [512, 1232] {
            let mut edns = Edns::new();
            edns.set_max_payload(payload);
            let mut metadata = Metadata::response_from_request(&request.metadata);
            metadata.authoritative = true;
            let response = MessageResponseBuilder::new(&request.queries, Some(&edns)).build(
                metadata,
                records.iter(),
                [].iter(),
                [].iter(),
                [].iter(),
            );
            let (info, bytes) = encode_udp(response).unwrap();
            let sent = Message::from_vec(&bytes).unwrap();
            if payload == 512 {
                assert!(info.truncation && sent.metadata.truncation);
                assert_eq!((info.counts().answers, sent.answers.len()), (0, 0), "TC and no records");
                assert_eq!(sent.queries.len(), 1);
                assert_eq!(sent.edns.as_ref().map(Edns::max_payload), Some(512), "the OPT record stays");
                assert!(sent.metadata.authoritative);
            } else {
                assert!(!sent.metadata.truncation);
                assert_eq!(sent.answers.len(), 40, "what fits is sent whole");
            }
        }
    }
}
