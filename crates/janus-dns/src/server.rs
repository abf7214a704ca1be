//! Binding and running the DNS server (UDP and TCP on one port).
//!
//! TCP is served by hickory's `Server`. UDP runs our own receive loop: it
//! parses with hickory (`Request::from_bytes`), answers through the same
//! [`RequestHandler`] and encodes with hickory's `MessageResponse`, but replies
//! inline instead of spawning a task and hopping through a channel per
//! datagram, which roughly doubles the queries a core answers.

use std::net::SocketAddr;
use std::time::Duration;

use std::sync::Arc;

use hickory_server::Server;
use hickory_server::net::NetError;
use hickory_server::net::runtime::{Time, TokioTime};
use hickory_server::net::xfer::Protocol;
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

/// A running DNS server.
pub struct DnsHandle {
    /// Where it listens (UDP and TCP).
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl DnsHandle {
    /// Waits until the server has stopped.
    pub async fn wait(self) {
        if self.task.await.is_err() {
            warn!("DNS server task panicked");
        }
    }
}

/// Binds UDP and TCP on `addr` (port 0 picks one free port for both) and
/// serves until `shutdown` is cancelled.
///
/// # Errors
/// A socket cannot be bound.
pub async fn start(
    handler: RegistryHandler,
    addr: SocketAddr,
    tcp_timeout: Duration,
    shutdown: CancellationToken,
) -> std::io::Result<DnsHandle> {
    let (udp, tcp) = bind_pair(addr).await?;
    let addr = udp.local_addr()?;
    let handler = Arc::new(handler);
    let mut server = Server::new(SharedHandler(handler.clone()));
    server.register_listener(tcp, tcp_timeout, 64 * 1024);
    // The tasks log under the caller's span (the node's, with its id).
    let udp_task = tokio::spawn(serve_udp(Arc::new(udp), handler, shutdown.clone()).in_current_span());
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
    info!(%addr, "dns serving");
    Ok(DnsHandle { addr, task })
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

async fn serve_udp(socket: Arc<UdpSocket>, handler: Arc<RegistryHandler>, shutdown: CancellationToken) {
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
        match Request::from_bytes(raw.to_vec(), src, Protocol::Udp) {
            Ok(request) if request.metadata.message_type == MessageType::Query => {
                let reply = UdpReply { socket: socket.clone(), dst: src };
                handler.handle_request::<_, TokioTime>(&request, reply).await;
            }
            // Responses are not for us.
            Ok(_) => {}
            Err(_) => send_format_error(&socket, raw, src).await,
        }
    }
}

/// FORMERR for a datagram whose header parses but whose body does not; silence otherwise.
async fn send_format_error(socket: &UdpSocket, raw: &[u8], src: SocketAddr) {
    let Ok(header) = Header::read(&mut BinDecoder::new(raw)) else { return };
    if header.metadata.message_type != MessageType::Query {
        return;
    }
    let answer = Message::error_msg(header.metadata.id, header.metadata.op_code, ResponseCode::FormErr);
    if let Ok(bytes) = answer.to_vec() {
        let _ = socket.send_to(&bytes, src).await;
    }
}

/// Sends one answer on the shared UDP socket, cut to the client's EDNS payload
/// (512 bytes without EDNS) with TC set when records did not fit.
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
        let max = response.edns().map_or(512, |edns| edns.max_payload().max(512));
        let id = response.metadata().id;
        let mut bytes = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut bytes);
        encoder.set_max_size(max);
        let info = match response.destructive_emit(&mut encoder) {
            Ok(info) => info,
            Err(error) => {
                debug!(%error, "cannot encode DNS answer");
                let failed = Message::error_msg(id, OpCode::Query, ResponseCode::ServFail);
                bytes = failed.to_vec().map_err(|e| NetError::from(e.to_string()))?;
                ResponseInfo::from(Header { metadata: failed.metadata, counts: HeaderCounts::default() })
            }
        };
        self.socket.send_to(&bytes, self.dst).await.map_err(|e| NetError::from(e.to_string()))?;
        Ok(info)
    }
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
