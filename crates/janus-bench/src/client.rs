//! One keep-alive connection per worker, on hyper's low-level client:
//! HTTP/1.1 for the registries, HTTP/2 for gRPC (etcd's own protocol, so
//! etcd is measured through its native client path, not a JSON gateway).

use anyhow::{Context as _, anyhow};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

/// How a connection talks to its target.
enum Sender {
    Http1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    Http2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

/// A connection to the target.
pub(crate) struct Conn {
    sender: Sender,
    authority: String,
}

/// The API token of this run (`--token`), set once at its start: every
/// connection of the run presents it, as a Nacos client does on Nacos routes
/// (`accessToken` query parameter) and as a native client does elsewhere
/// (`Authorization: Bearer`).
static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Makes every call of this run present `token` (see [`TOKEN`]).
pub(crate) fn present_token(token: &str) {
    let _ = TOKEN.set(token.to_owned());
}

/// Which wire a call travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    /// HTTP/1.1 with a text body.
    Http1,
    /// A unary gRPC call over HTTP/2 (body already in gRPC framing).
    Grpc,
}

/// A request to send: method, path with query, optional body and content type.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) body: Option<(&'static str, Bytes)>,
}

impl Call {
    pub(crate) fn get(path: String) -> Self {
        Self { method: Method::GET, path, body: None }
    }
}

/// What came back. A gRPC call that failed (non-zero `grpc-status`) reads as
/// 502 with the gRPC message as body, so callers check one status.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
    /// The `X-Janus-Index` header, if any.
    pub(crate) index: Option<u64>,
}

impl Conn {
    /// Connects to `http://host:port`.
    pub(crate) async fn open(base: &str, wire: Wire) -> anyhow::Result<Self> {
        let authority = base.strip_prefix("http://").ok_or_else(|| anyhow!("target must be http://host:port"))?;
        let authority = authority.trim_end_matches('/').to_owned();
        let stream = TcpStream::connect(&authority).await.with_context(|| format!("connecting to {authority}"))?;
        stream.set_nodelay(true)?;
        let sender = match wire {
            Wire::Http1 => {
                let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                tokio::spawn(async move {
                    // The connection ends with the worker; its error, if any, shows up on the next send.
                    let _ = connection.await;
                });
                Sender::Http1(sender)
            }
            Wire::Grpc => {
                let (sender, connection) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
                tokio::spawn(async move {
                    // As above.
                    let _ = connection.await;
                });
                Sender::Http2(sender)
            }
        };
        Ok(Self { sender, authority })
    }

    /// Sends a call and reads the whole answer.
    pub(crate) async fn send(&mut self, call: &Call) -> anyhow::Result<Reply> {
        let mut builder = Request::builder().method(call.method.clone());
        let body = match &call.body {
            Some((content_type, body)) => {
                builder = builder.header("content-type", *content_type);
                Full::from(body.clone())
            }
            None => Full::default(),
        };
        let mut path = std::borrow::Cow::Borrowed(call.path.as_str());
        if let Some(token) = TOKEN.get() {
            if call.path.starts_with("/nacos/") {
                let joint = if call.path.contains('?') { '&' } else { '?' };
                path = std::borrow::Cow::Owned(format!("{}{joint}accessToken={token}", call.path));
            } else {
                builder = builder.header("authorization", format!("Bearer {token}"));
            }
        }
        let response = match &mut self.sender {
            Sender::Http1(sender) => {
                sender.ready().await?;
                let request = builder.uri(path.as_ref()).header("host", &self.authority).body(body)?;
                sender.send_request(request).await?
            }
            Sender::Http2(sender) => {
                sender.ready().await?;
                let uri = format!("http://{}{}", self.authority, path);
                let request = builder.uri(uri).header("te", "trailers").body(body)?;
                sender.send_request(request).await?
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        let index = headers.get("x-janus-index").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        let collected = response.into_body().collect().await?;
        let trailers = collected.trailers().cloned();
        let body = collected.to_bytes();
        if matches!(self.sender, Sender::Http2(_)) {
            // A unary gRPC reply carries its status in the trailers (or, with
            // no message, in the headers).
            let grpc = trailers.as_ref().and_then(|t| t.get("grpc-status")).or_else(|| headers.get("grpc-status"));
            let code = grpc.and_then(|v| v.to_str().ok()).unwrap_or("missing");
            if status.is_success() && code != "0" {
                let message = trailers
                    .as_ref()
                    .and_then(|t| t.get("grpc-message"))
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                return Ok(Reply {
                    status: StatusCode::BAD_GATEWAY,
                    body: Bytes::from(format!("grpc-status {code}: {message}")),
                    index,
                });
            }
        }
        Ok(Reply { status, body, index })
    }
}

/// A unary gRPC request body: the uncompressed-message flag, the length, the message.
pub(crate) fn grpc_frame(message: &[u8]) -> Bytes {
    let mut framed = Vec::with_capacity(message.len() + 5);
    framed.push(0);
    framed.extend_from_slice(&u32::try_from(message.len()).unwrap_or(u32::MAX).to_be_bytes());
    framed.extend_from_slice(message);
    Bytes::from(framed)
}

/// Appends a protobuf length-delimited field (wire type 2).
pub(crate) fn protobuf_bytes_field(out: &mut Vec<u8>, field: u8, value: &[u8]) {
    out.push((field << 3) | 2);
    let mut length = value.len();
    loop {
        let byte = u8::try_from(length & 0x7f).unwrap_or(0);
        length >>= 7;
        if length == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_fields_use_varint_lengths() {
        let mut out = Vec::new();
        protobuf_bytes_field(&mut out, 1, b"key");
        assert_eq!(out, [0x0a, 3, b'k', b'e', b'y']);
        let mut long = Vec::new();
        protobuf_bytes_field(&mut long, 2, &[7; 300]);
        assert_eq!(&long[..3], &[0x12, 0xac, 0x02], "300 = 0b10_0101100");
        assert_eq!(long.len(), 3 + 300);
    }

    #[test]
    fn grpc_frames_carry_a_flag_and_a_big_endian_length() {
        assert_eq!(&grpc_frame(b"abc")[..], &[0, 0, 0, 0, 3, b'a', b'b', b'c']);
    }
}
