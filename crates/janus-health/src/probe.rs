//! The probes: a TCP connect, or an HTTP GET that must answer 200 (Nacos
//! v2 compares the status to 200). Each is bounded by the timeout.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use janus_core::model::HealthCheck;
use tokio::net::TcpStream;

/// Probes `ip:port` as `check` says; true if it passed within `timeout`.
pub(crate) async fn probe(check: &HealthCheck, ip: IpAddr, port: u16, timeout: Duration) -> bool {
    let addr = SocketAddr::new(ip, port);
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
