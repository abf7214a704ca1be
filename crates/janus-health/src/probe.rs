//! The probes: a TCP connect, or an HTTP GET that must answer 200 (Nacos
//! v2 compares the status to 200). Each is bounded by the timeout.
//!
//! [`Prober`] is what the checker calls; [`NetProber`] is the real one, and
//! tests hand the checker a fake that never connects.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http_body_util::Empty;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use janus_core::model::HealthCheck;
use tokio::net::TcpStream;

/// Runs one probe. The checker only hands it addresses its
/// [`ProbePolicy`](crate::ProbePolicy) allows, and also gives up on a probe
/// after `timeout` itself.
pub trait Prober: Send + Sync + 'static {
    /// Probes `addr` as `check` says; resolves to true if it passed within
    /// `timeout`.
    fn probe(&self, check: &HealthCheck, addr: SocketAddr, timeout: Duration) -> BoxFuture<'static, bool>;
}

/// The real prober: a TCP connect, or an HTTP/1.1 GET that must answer 200.
#[derive(Debug, Clone, Copy, Default)]
pub struct NetProber;

impl Prober for NetProber {
    fn probe(&self, check: &HealthCheck, addr: SocketAddr, timeout: Duration) -> BoxFuture<'static, bool> {
        let check = check.clone();
        Box::pin(async move { probe(&check, addr, timeout).await })
    }
}

/// Probes `addr` as `check` says; true if it passed within `timeout`.
async fn probe(check: &HealthCheck, addr: SocketAddr, timeout: Duration) -> bool {
    let attempt = async {
        match check {
            HealthCheck::None => true,
            HealthCheck::Tcp { .. } => TcpStream::connect(addr).await.is_ok(),
            HealthCheck::Http { path, .. } => http_get(addr, path).await.is_some_and(|status| status == StatusCode::OK),
        }
    };
    tokio::time::timeout(timeout, attempt).await.unwrap_or(false)
}

async fn http_get(addr: SocketAddr, path: &str) -> Option<StatusCode> {
    let stream = TcpStream::connect(addr).await.ok()?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.ok()?;
    tokio::spawn(async move {
        // Ends with the request; an error shows up on the send.
        let _ = connection.await;
    });
    let host = match addr.ip() {
        IpAddr::V4(ip) => format!("{ip}:{}", addr.port()),
        IpAddr::V6(ip) => format!("[{ip}]:{}", addr.port()),
    };
    let request = Request::get(path)
        .header("host", host)
        .header("user-agent", "janus-health-check")
        .header("connection", "close")
        .body(Empty::<Bytes>::new())
        .ok()?;
    sender.send_request(request).await.ok().map(|response| response.status())
}
