//! Plain clients: one HTTP/1.1 request per connection, and DNS SRV queries,
//! each with a deadline, so a frozen or cut-off node costs a timeout, never a hang.

use std::time::Duration;

use anyhow::{Context as _, anyhow};
use bytes::Bytes;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use http_body_util::{BodyExt as _, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::{TcpStream, UdpSocket};

/// An answer: status and body.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: String,
}

impl Answer {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_default()
    }
}

/// One request to `addr` (host:port) with `timeout`.
pub(crate) async fn http(
    addr: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    timeout: Duration,
) -> anyhow::Result<Answer> {
    let exchange = async {
        let stream = TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // Ends with the request; an error shows up on the send.
            let _ = connection.await;
        });
        let mut request =
            Request::builder().method(method).uri(path).header("host", addr).header("connection", "close");
        let payload = match body {
            Some(json) => {
                request = request.header("content-type", "application/json");
                Full::new(Bytes::from(json.to_string()))
            }
            None => Full::new(Bytes::new()),
        };
        let response = sender.send_request(request.body(payload)?).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok::<_, anyhow::Error>(Answer { status, body: String::from_utf8_lossy(&bytes).into_owned() })
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| anyhow!("{addr}: no answer within {timeout:?}"))?
}

/// An SRV query for `name` to `server` (ip:port); the number of answers.
pub(crate) async fn srv(server: &str, name: &str, id: u16, timeout: Duration) -> anyhow::Result<usize> {
    let exchange = async {
        let socket = UdpSocket::bind("0.0.0.0:0").await?;
        socket.connect(server).await?;
        let mut query = Message::new(id, MessageType::Query, OpCode::Query);
        query.add_query(Query::query(Name::from_ascii(name)?, RecordType::SRV));
        socket.send(&query.to_vec()?).await?;
        let mut buffer = vec![0; 8192];
        loop {
            let n = socket.recv(&mut buffer).await?;
            let answer = Message::from_vec(&buffer[..n])?;
            if answer.metadata.id == id {
                return Ok::<_, anyhow::Error>(answer.answers.len());
            }
        }
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| anyhow!("{server}: no DNS answer within {timeout:?}"))?
}
