//! Binding and running the DNS server (UDP and TCP on one port).

use std::net::SocketAddr;
use std::time::Duration;

use hickory_server::Server;
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

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
    let mut server = Server::new(handler);
    server.register_socket(udp);
    server.register_listener(tcp, tcp_timeout, 64 * 1024);
    let task = tokio::spawn(async move {
        shutdown.cancelled().await;
        if let Err(error) = server.shutdown_gracefully().await {
            warn!(%error, "DNS server stopped with an error");
        }
    });
    info!(%addr, "dns serving");
    Ok(DnsHandle { addr, task })
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
