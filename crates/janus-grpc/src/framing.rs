//! gRPC message framing, without tonic's codec: each message is a
//! compression flag, a big-endian `u32` length and a protobuf `Payload`.
//!
//! Both methods are hot paths (registration and query on the unary one,
//! pushes and their acknowledgements on the bi-stream), so they are framed
//! here directly instead of through tonic's streaming codec (which is built
//! for typed message streams: per-call buffers, a stream encoder, a trailers
//! future). The rules are gRPC's and the same as that codec's:
//! - a message over `max_message_bytes` is refused with `OUT_OF_RANGE` as soon
//!   as its length prefix is read, before its body is buffered;
//! - a compressed message (the flag byte set) gets `UNIMPLEMENTED` (Nacos
//!   SDKs never compress);
//! - an unreadable message gets `INTERNAL`; a request that ends before its
//!   message is complete gets `INTERNAL` too.
//!
//! The unary method reads one message ([`read_request`]) and answers one
//! ([`respond`]), failures trailers-only as tonic does; the bi-stream reads
//! its messages with [`MessageReader`] and sends messages framed by
//! [`framed`].

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use prost::Message as _;
use tonic::Status;

use crate::wire::proto::Payload;

/// The length prefix: a compression flag and a big-endian `u32` length.
const PREFIX: usize = 5;

/// Reads the one request message of a unary call.
pub(crate) async fn read_request(mut body: Incoming, limit: usize) -> Result<Payload, Status> {
    let mut buffer = BytesMut::new();
    loop {
        if let Some(length) = message_length(&buffer, limit)?
            && buffer.len() >= PREFIX + length
        {
            let message = buffer.split_to(PREFIX + length).freeze().slice(PREFIX..);
            return decode(message);
        }
        match http_body_util::BodyExt::frame(&mut body).await {
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else { continue };
                // The common case: the whole message in one frame, used without a copy.
                if buffer.is_empty()
                    && let Some(length) = message_length(&data, limit)?
                    && data.len() >= PREFIX + length
                {
                    return decode(data.slice(PREFIX..PREFIX + length));
                }
                buffer.extend_from_slice(&data);
            }
            Some(Err(error)) => return Err(Status::cancelled(format!("the request could not be read: {error}"))),
            None => return Err(Status::internal("the request ended before its message was complete")),
        }
    }
}

/// The length of the message `buffer` starts with, once its prefix is in.
fn message_length(buffer: &[u8], limit: usize) -> Result<Option<usize>, Status> {
    let Some(prefix) = buffer.get(..PREFIX) else { return Ok(None) };
    if prefix[0] != 0 {
        return Err(Status::unimplemented("compressed messages are not supported: send them uncompressed"));
    }
    let length =
        usize::try_from(u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]])).unwrap_or(usize::MAX);
    if length > limit {
        return Err(Status::out_of_range(format!(
            "the message is too large: {length} bytes where at most {limit} are accepted"
        )));
    }
    Ok(Some(length))
}

fn decode(message: Bytes) -> Result<Payload, Status> {
    Payload::decode(message).map_err(|error| Status::internal(format!("the message could not be decoded: {error}")))
}

/// The response of a unary call answered with `payload`.
pub(crate) fn respond(payload: &Payload, limit: usize) -> http::Response<tonic::body::Body> {
    let length = payload.encoded_len();
    if length > limit {
        return Status::out_of_range(format!("the answer is too large: {length} bytes where at most {limit} are sent"))
            .into_http();
    }
    grpc_response(tonic::body::Body::new(Answer { message: Some(framed(payload)), done: false }))
}

/// A gRPC response (status 200, `application/grpc`) with `body`.
pub(crate) fn grpc_response(body: tonic::body::Body) -> http::Response<tonic::body::Body> {
    let mut response = http::Response::new(body);
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    response
}

/// `payload` as one framed message.
pub(crate) fn framed(payload: &Payload) -> Bytes {
    let length = payload.encoded_len();
    let mut framed = BytesMut::with_capacity(PREFIX + length);
    framed.put_u8(0);
    // Callers keep messages under their limit, far below the prefix's u32.
    framed.put_u32(u32::try_from(length).unwrap_or(u32::MAX));
    payload.encode_raw(&mut framed);
    framed.freeze()
}

/// The trailers of a call that succeeded.
pub(crate) fn ok_trailers() -> HeaderMap {
    let mut trailers = HeaderMap::with_capacity(1);
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    trailers
}

/// The messages of a request stream (the bi-stream's client side), cut at
/// their length prefixes as they arrive.
pub(crate) struct MessageReader {
    body: Incoming,
    buffer: BytesMut,
    limit: usize,
}

impl MessageReader {
    pub(crate) fn new(body: Incoming, limit: usize) -> Self {
        Self { body, buffer: BytesMut::new(), limit }
    }

    /// The next message; `None` when the stream ended between messages.
    ///
    /// # Errors
    /// As the module docs say; the stream is unusable after an error.
    pub(crate) async fn next(&mut self) -> Result<Option<Payload>, Status> {
        loop {
            if let Some(length) = message_length(&self.buffer, self.limit)?
                && self.buffer.len() >= PREFIX + length
            {
                let message = self.buffer.split_to(PREFIX + length).freeze().slice(PREFIX..);
                return decode(message).map(Some);
            }
            match http_body_util::BodyExt::frame(&mut self.body).await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
                Some(Err(error)) => return Err(Status::cancelled(format!("the stream could not be read: {error}"))),
                None if self.buffer.is_empty() => return Ok(None),
                None => return Err(Status::internal("the stream ended inside a message")),
            }
        }
    }
}

/// One message, then the success trailers.
struct Answer {
    message: Option<Bytes>,
    done: bool,
}

impl Body for Answer {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(message) = self.message.take() {
            return Poll::Ready(Some(Ok(Frame::data(message))));
        }
        if self.done {
            return Poll::Ready(None);
        }
        self.done = true;
        Poll::Ready(Some(Ok(Frame::trailers(ok_trailers()))))
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        self.message.as_ref().map_or_else(|| SizeHint::with_exact(0), |m| SizeHint::with_exact(m.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_length_prefix_is_read_only_once_complete_and_checked_against_the_limit() {
        assert_eq!(message_length(&[0, 0, 0], 10).ok(), Some(None));
        assert_eq!(message_length(&[0, 0, 0, 0, 10], 10).ok(), Some(Some(10)));
        let over = message_length(&[0, 0, 0, 0, 11], 10).expect_err("over the limit");
        assert_eq!(over.code(), tonic::Code::OutOfRange);
        assert!(over.message().contains("too large"), "{over}");
        let compressed = message_length(&[1, 0, 0, 0, 1], 10).expect_err("compressed");
        assert_eq!(compressed.code(), tonic::Code::Unimplemented);
    }

    #[test]
    fn an_answer_is_one_framed_message_then_the_success_trailers() {
        let payload = Payload { body: None, metadata: None };
        let response = respond(&payload, 1024);
        assert_eq!(response.headers()["content-type"], "application/grpc");
        let mut answer = Answer { message: Some(Bytes::from_static(&[0, 0, 0, 0, 0])), done: false };
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let Poll::Ready(Some(Ok(first))) = Pin::new(&mut answer).poll_frame(&mut cx) else { panic!("a data frame") };
        assert_eq!(first.into_data().ok(), Some(Bytes::from_static(&[0, 0, 0, 0, 0])));
        let Poll::Ready(Some(Ok(second))) = Pin::new(&mut answer).poll_frame(&mut cx) else { panic!("trailers") };
        assert_eq!(second.into_trailers().ok().map(|t| t["grpc-status"].clone()), Some(HeaderValue::from_static("0")));
        assert!(answer.is_end_stream());
        assert!(matches!(Pin::new(&mut answer).poll_frame(&mut cx), Poll::Ready(None)));
    }
}
