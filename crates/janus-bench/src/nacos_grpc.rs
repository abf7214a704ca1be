//! The Nacos 2.x gRPC protocol as a lean client, for any server that speaks
//! it (Janus, rnacos, Nacos), on hyper's HTTP/2 client with no gRPC library
//! in between, so the load generator costs little per request: one HTTP/2
//! connection per [`GrpcConn`], set up as the SDKs do (server check, the
//! bi-stream with `ConnectionSetupRequest`, a health check once the setup is
//! through), then unary requests. The server's requests on the bi-stream are
//! answered at once; pushes (`NotifySubscriberRequest`) are handed on with
//! the moment they arrived.
//!
//! The gRPC port is the HTTP port of `--target` + 1000, where Nacos SDKs
//! look for it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::{Buf, Bytes, BytesMut};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use janus_grpc::wire::proto::{Any, Metadata, Payload};
use janus_grpc::{BI_STREAM_PATH, UNARY_PATH};
use prost::Message as _;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::client::grpc_frame;

/// A push as it arrived: when, and its JSON body.
pub(crate) type Push = (Instant, Bytes);

type Body = BoxBody<Bytes, Infallible>;

/// One set-up connection.
pub(crate) struct GrpcConn {
    send: hyper::client::conn::http2::SendRequest<Body>,
    authority: String,
    /// Kept so the bi-stream stays open (the reader answers through a clone).
    _to_server: mpsc::Sender<Result<Frame<Bytes>, Infallible>>,
    pushes: Option<mpsc::UnboundedReceiver<Push>>,
    next_id: u64,
}

/// The gRPC address of a server whose HTTP base URL is `target`.
pub(crate) fn grpc_addr(target: &str) -> anyhow::Result<String> {
    let authority = target.trim_start_matches("http://").trim_end_matches('/');
    let (host, port) = authority.rsplit_once(':').with_context(|| format!("no port in target {target}"))?;
    let port: u16 = port.parse().with_context(|| format!("bad port in target {target}"))?;
    let grpc = port.checked_add(1000).with_context(|| format!("no room for the gRPC port of {target}"))?;
    Ok(format!("{host}:{grpc}"))
}

/// A message of `kind` with a JSON body, in gRPC framing.
fn frame(kind: &str, body: impl Into<Bytes>) -> Bytes {
    let payload = Payload {
        metadata: Some(Metadata {
            r#type: kind.to_owned(),
            client_ip: "127.0.0.1".to_owned(),
            headers: HashMap::new(),
        }),
        body: Some(Any { type_url: String::new(), value: body.into() }),
    };
    grpc_frame(&payload.encode_to_vec())
}

/// The `type` and body of an encoded payload.
fn open(message: &[u8]) -> anyhow::Result<(String, Bytes)> {
    let payload = Payload::decode(message).context("an undecodable payload")?;
    let kind = payload.metadata.map(|m| m.r#type).unwrap_or_default();
    Ok((kind, payload.body.map(|b| b.value).unwrap_or_default()))
}

/// Takes the complete gRPC messages off the front of `buffer`.
fn messages(buffer: &mut BytesMut) -> Vec<Bytes> {
    let mut out = Vec::new();
    while buffer.len() >= 5 {
        let length = u32::from_be_bytes([buffer[1], buffer[2], buffer[3], buffer[4]]) as usize;
        if buffer.len() < 5 + length {
            break;
        }
        buffer.advance(5);
        out.push(buffer.split_to(length).freeze());
    }
    out
}

/// `"requestId":"…"` of a server request, found by a byte scan.
fn request_id(body: &[u8]) -> Option<&str> {
    const KEY: &[u8] = b"\"requestId\":\"";
    let at = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let end = body[at..].iter().position(|b| *b == b'"')?;
    std::str::from_utf8(&body[at..at + end]).ok()
}

fn request(authority: &str, path: &str, body: Body) -> anyhow::Result<http::Request<Body>> {
    Ok(http::Request::builder()
        .method("POST")
        .uri(format!("http://{authority}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(body)?)
}

impl GrpcConn {
    /// Connects to the gRPC port of `target` and sets the connection up.
    pub(crate) async fn open(target: &str) -> anyhow::Result<Self> {
        let authority = grpc_addr(target)?;
        let stream = TcpStream::connect(&authority)
            .await
            .with_context(|| format!("connecting to the Nacos gRPC port {authority}"))?;
        stream.set_nodelay(true)?;
        let (mut send, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // The connection ends with its user; an error shows on the next request.
            let _ = connection.await;
        });
        let (to_server, outbound) = mpsc::channel(64);
        let body = StreamBody::new(ReceiverStream::new(outbound)).boxed();
        send.ready().await?;
        let response = send.send_request(request(&authority, BI_STREAM_PATH, body)?).await?;
        let setup = r#"{"clientVersion":"janus-bench","labels":{"module":"naming","source":"sdk"},"tenant":""}"#;
        to_server.send(Ok(Frame::data(frame("ConnectionSetupRequest", setup)))).await?;
        let (push_tx, pushes) = mpsc::unbounded_channel();
        let answers = to_server.clone();
        let mut inbound = response.into_body();
        tokio::spawn(async move {
            let mut buffer = BytesMut::new();
            while let Some(Ok(piece)) = inbound.frame().await {
                let Ok(data) = piece.into_data() else { continue };
                let arrived = Instant::now();
                buffer.extend_from_slice(&data);
                for message in messages(&mut buffer) {
                    let Ok((kind, body)) = open(&message) else { continue };
                    let Some(answer) = kind.strip_suffix("Request").map(|k| format!("{k}Response")) else {
                        continue;
                    };
                    let id = request_id(&body).unwrap_or_default();
                    let reply =
                        format!(r#"{{"requestId":"{id}","resultCode":200,"errorCode":0,"message":"","success":true}}"#);
                    if answers.send(Ok(Frame::data(frame(&answer, reply)))).await.is_err() {
                        return;
                    }
                    if kind == "NotifySubscriberRequest" {
                        let _ = push_tx.send((arrived, body));
                    }
                }
            }
        });
        let mut conn = Self { send, authority, _to_server: to_server, pushes: Some(pushes), next_id: 1 };
        // Servers answer 301 until the setup has gone through.
        let started = Instant::now();
        loop {
            match conn.request("HealthCheckRequest", r#"{"headers":{}}"#.to_owned()).await {
                Ok(_) => break,
                Err(_) if started.elapsed() < Duration::from_secs(5) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(error) => return Err(error.context("the connection was never set up")),
            }
        }
        Ok(conn)
    }

    /// Sends a request of `kind`; the answer's body if it says success.
    /// `body` is the JSON object without its `requestId`, which is added.
    pub(crate) async fn request(&mut self, kind: &str, body: String) -> anyhow::Result<Bytes> {
        let id = self.next_id;
        self.next_id += 1;
        let body = match body.strip_prefix('{') {
            Some(rest) if rest.trim_start().starts_with('}') => format!(r#"{{"requestId":"{id}"}}"#),
            Some(rest) => format!(r#"{{"requestId":"{id}",{rest}"#),
            None => bail!("a request body must be a JSON object"),
        };
        self.send.ready().await?;
        let body = Full::new(frame(kind, body)).boxed();
        let response = self.send.send_request(request(&self.authority, UNARY_PATH, body)?).await?;
        let headers = response.headers().clone();
        let collected = response.into_body().collect().await?;
        let status = collected
            .trailers()
            .and_then(|t| t.get("grpc-status"))
            .or_else(|| headers.get("grpc-status"))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("missing")
            .to_owned();
        let mut data = BytesMut::from(collected.to_bytes());
        let Some(message) = messages(&mut data).into_iter().next() else {
            bail!("{kind}: no answer (grpc-status {status})");
        };
        let (answered, body) = open(&message)?;
        const SUCCESS: &[u8] = b"\"resultCode\":200";
        if !body.windows(SUCCESS.len()).any(|w| w == SUCCESS) {
            bail!("{kind} answered {answered}: {}", String::from_utf8_lossy(&body));
        }
        Ok(body)
    }

    /// The pushes this connection receives (once).
    pub(crate) fn take_pushes(&mut self) -> Option<mpsc::UnboundedReceiver<Push>> {
        self.pushes.take()
    }
}

/// A register of one ephemeral instance.
pub(crate) fn register(service: &str, ip: &str, port: u64) -> String {
    format!(
        r#"{{"namespace":"public","serviceName":"{service}","groupName":"DEFAULT_GROUP","type":"registerInstance","instance":{{"ip":"{ip}","port":{port},"weight":1.0,"healthy":true,"enabled":true,"ephemeral":true,"clusterName":"DEFAULT","metadata":{{}}}}}}"#
    )
}

/// A batch register of `instances` (ip, port) in `service`.
pub(crate) fn batch_register(service: &str, instances: &[(String, u64)]) -> String {
    let list: Vec<String> = instances
        .iter()
        .map(|(ip, port)| {
            format!(
                r#"{{"ip":"{ip}","port":{port},"weight":1.0,"healthy":true,"enabled":true,"ephemeral":true,"clusterName":"DEFAULT","metadata":{{}}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"namespace":"public","serviceName":"{service}","groupName":"DEFAULT_GROUP","type":"batchRegisterInstance","instances":[{}]}}"#,
        list.join(",")
    )
}

/// A query of a service's instances.
pub(crate) fn query(service: &str) -> String {
    format!(
        r#"{{"namespace":"public","serviceName":"{service}","groupName":"DEFAULT_GROUP","cluster":"","healthyOnly":false,"udpPort":0}}"#
    )
}

/// A subscription to a service.
pub(crate) fn subscribe(service: &str) -> String {
    format!(
        r#"{{"namespace":"public","serviceName":"{service}","groupName":"DEFAULT_GROUP","clusters":"","subscribe":true}}"#
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_grpc_port_is_the_http_port_plus_1000() {
        assert_eq!(grpc_addr("http://127.0.0.1:8848").unwrap(), "127.0.0.1:9848");
        assert_eq!(grpc_addr("127.0.0.1:18848/").unwrap(), "127.0.0.1:19848");
        assert!(grpc_addr("http://127.0.0.1:65000").is_err());
    }

    #[test]
    fn messages_are_cut_at_their_length_prefix() {
        let mut buffer = BytesMut::new();
        buffer.extend_from_slice(&grpc_frame(b"abc"));
        buffer.extend_from_slice(&grpc_frame(b"de")[..4]);
        assert_eq!(messages(&mut buffer), vec![Bytes::from_static(b"abc")]);
        buffer.extend_from_slice(&grpc_frame(b"de")[4..]);
        assert_eq!(messages(&mut buffer), vec![Bytes::from_static(b"de")]);
        assert!(buffer.is_empty());
    }

    #[test]
    fn request_ids_are_found_in_server_requests() {
        assert_eq!(request_id(br#"{"headers":{},"requestId":"17","module":"naming"}"#), Some("17"));
        assert_eq!(request_id(b"{}"), None);
    }

    #[test]
    fn request_bodies_are_json() {
        for body in [
            register("s", "10.0.0.1", 80),
            batch_register("s", &[("10.0.0.1".to_owned(), 80)]),
            query("s"),
            subscribe("s"),
        ] {
            serde_json::from_str::<serde_json::Value>(&body).unwrap();
        }
    }
}
