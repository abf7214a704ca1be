//! Extractors whose rejections are our JSON errors instead of axum's text,
//! and the one place JSON answers are rendered ([`json_body`], used by
//! [`Json`] as a response and by every handler that builds its body itself).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Renders a JSON answer: the encoding, then a newline, as every JSON body
/// of this front end ends.
///
/// # Errors
/// Only from a failing `Serialize` impl (a map with non-string keys); our
/// wire types have none.
pub(crate) fn json_body<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut body = Vec::with_capacity(256);
    serde_json::to_writer(&mut body, value)?;
    body.push(b'\n');
    Ok(body)
}

/// Encodes a wire value as a whole JSON answer ([`json_body`]). Our wire
/// types have string keys and derived serializers only, so encoding cannot
/// fail.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    #[allow(clippy::expect_used)]
    json_body(value).expect("wire types always encode")
}

/// A JSON answer with `status`, rendered by [`json_body`]; a value that
/// fails to encode becomes a 500.
pub(crate) fn json_response<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response {
    match json_body(value) {
        Ok(body) => {
            (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
        }
        Err(err) => ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: format!("the answer failed to encode: {err}"),
        }
        .into_response(),
    }
}

/// A 200 JSON answer already encoded in `parts` (the encoding of one value,
/// split where a part is shared with a cache), ending with a newline like
/// every JSON answer. The parts are written as they are, not joined: a
/// cached part is not copied into each answer.
pub(crate) fn json_parts_response(parts: impl IntoIterator<Item = Bytes>) -> Response {
    let body = BufferList::new(parts.into_iter().chain([Bytes::from_static(b"\n")]));
    let content_type = [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))];
    (StatusCode::OK, content_type, Body::new(body)).into_response()
}

/// A body of buffers known in advance, one frame each, with its exact length
/// (so the answer has a `Content-Length`, and hyper writes the buffers with
/// one vectored write).
struct BufferList {
    buffers: VecDeque<Bytes>,
    remaining: u64,
}

impl BufferList {
    fn new(buffers: impl IntoIterator<Item = Bytes>) -> Self {
        let buffers: VecDeque<Bytes> = buffers.into_iter().filter(|b| !b.is_empty()).collect();
        let remaining = buffers.iter().map(|b| b.len() as u64).sum();
        Self { buffers, remaining }
    }
}

impl HttpBody for BufferList {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        let next = self.buffers.pop_front();
        if let Some(buffer) = &next {
            self.remaining -= buffer.len() as u64;
        }
        Poll::Ready(next.map(|buffer| Ok(hyper::body::Frame::data(buffer))))
    }

    fn is_end_stream(&self) -> bool {
        self.buffers.is_empty()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.remaining)
    }
}

/// A JSON request body (malformed, oversized or mistyped bodies become 4xx
/// JSON errors), and a JSON answer (200, rendered by [`json_body`]).
pub(crate) struct Json<T>(pub(crate) T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        json_response(StatusCode::OK, &self.0)
    }
}

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "body_too_large",
            message: "request body is larger than the server accepts".to_owned(),
        },
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "unsupported_media_type",
            message: "send a JSON body with content-type application/json".to_owned(),
        },
        _ => ApiError::invalid(format!("malformed JSON body: {}", rejection.body_text())),
    }
}

/// Query parameters; unparsable ones become a 400 naming the problem.
pub(crate) struct Query<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(query_rejection(&rejection)),
        }
    }
}

fn query_rejection(rejection: &QueryRejection) -> ApiError {
    ApiError::invalid(format!("bad query string: {}", rejection.body_text()))
}

/// Path parameters; undecodable ones become a 400.
pub(crate) struct Path<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(path_rejection(&rejection)),
        }
    }
}

fn path_rejection(rejection: &PathRejection) -> ApiError {
    ApiError::invalid(format!("bad path: {}", rejection.body_text()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use http_body_util::BodyExt as _;

    use super::*;

    /// An answer in parts is the parts and a newline, with its exact length.
    #[tokio::test]
    async fn an_answer_in_parts_is_sent_whole_with_its_length() {
        let parts = [Bytes::from_static(b"{\"a\":"), Bytes::new(), Bytes::from_static(b"[1,2]}")];
        let response = json_parts_response(parts);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body = response.into_body();
        assert_eq!(body.size_hint().exact(), Some(12));
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"{\"a\":[1,2]}\n");
    }
}
