//! Conversion between a [`Payload`] and typed messages.
//!
//! Inbound: [`Inbound::decode`] checks the envelope (metadata, `type`, body)
//! and keeps the body as bytes; the handler picks the JSON type and calls
//! [`Inbound::parse`]. Headers are looked up case-insensitively, as Java's
//! `TreeMap`. Outbound: [`encode`] writes a [`WireMessage`] with an empty
//! `type_url` and no headers.

use std::collections::HashMap;

use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::json::WireMessage;
use super::proto::{Any, Metadata, Payload};

/// The header that carries the auth token.
pub const HEADER_ACCESS_TOKEN: &str = "accessToken";
/// The header that names the client application (the Rust SDK sets it).
pub const HEADER_APP: &str = "app";

/// Why an envelope could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// The payload has no `metadata`.
    #[error("payload has no metadata")]
    NoMetadata,
    /// `Metadata.type` is empty.
    #[error("payload has an empty type")]
    EmptyType,
    /// The payload has no `body`.
    #[error("payload of type {kind} has no body")]
    NoBody {
        /// The message type.
        kind: String,
    },
    /// The body is not JSON of the expected shape.
    #[error("body of {kind} is not valid JSON of that type: {source}")]
    BodyNotJson {
        /// The message type.
        kind: String,
        /// serde's message.
        source: serde_json::Error,
    },
    /// An outbound message could not be serialized.
    #[error("cannot serialize {kind}: {source}")]
    Encode {
        /// The message type.
        kind: &'static str,
        /// serde's message.
        source: serde_json::Error,
    },
}

/// A decoded inbound message.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    kind: String,
    client_ip: String,
    headers: HashMap<String, String>,
    body: Bytes,
}

impl Inbound {
    /// Checks the envelope of `payload`; the body is parsed later by [`Self::parse`].
    pub fn decode(payload: Payload) -> Result<Self, EnvelopeError> {
        let Metadata { r#type: kind, client_ip, headers } = payload.metadata.ok_or(EnvelopeError::NoMetadata)?;
        if kind.is_empty() {
            return Err(EnvelopeError::EmptyType);
        }
        let Some(body) = payload.body else {
            return Err(EnvelopeError::NoBody { kind });
        };
        Ok(Self { kind, client_ip, headers, body: body.value })
    }

    /// The message type (`Metadata.type`).
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The client's own idea of its IP (display only).
    pub fn client_ip(&self) -> &str {
        &self.client_ip
    }

    /// The raw JSON body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The header `name`, compared case-insensitively (ASCII).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The `accessToken` header.
    pub fn access_token(&self) -> Option<&str> {
        self.header(HEADER_ACCESS_TOKEN)
    }

    /// The `app` header.
    pub fn app(&self) -> Option<&str> {
        self.header(HEADER_APP)
    }

    /// Parses the body as `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, EnvelopeError> {
        serde_json::from_slice(&self.body)
            .map_err(|source| EnvelopeError::BodyNotJson { kind: self.kind.clone(), source })
    }
}

/// Writes `message` as a [`Payload`]: its `type`, no headers, an empty
/// `type_url` and the JSON body.
pub fn encode<M: WireMessage>(message: &M) -> Result<Payload, EnvelopeError> {
    let kind = message.wire_type();
    let value = serde_json::to_vec(message).map_err(|source| EnvelopeError::Encode { kind, source })?;
    Ok(Payload {
        metadata: Some(Metadata { r#type: kind.to_owned(), client_ip: String::new(), headers: HashMap::new() }),
        body: Some(Any { type_url: String::new(), value: Bytes::from(value) }),
    })
}

/// A [`Payload`] of type `kind` around an already encoded JSON `body` (a
/// push body shared by many connections).
pub fn with_body(kind: &str, body: Bytes) -> Payload {
    Payload {
        metadata: Some(Metadata { r#type: kind.to_owned(), client_ip: String::new(), headers: HashMap::new() }),
        body: Some(Any { type_url: String::new(), value: body }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::wire::json::{BareResponse, InstanceRequest, ResponseHeader};
    use crate::wire::types;

    fn payload(kind: &str, headers: &[(&str, &str)], body: Option<&'static [u8]>) -> Payload {
        Payload {
            metadata: Some(Metadata {
                r#type: kind.to_owned(),
                client_ip: "10.1.1.1".to_owned(),
                headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            }),
            body: body.map(|b| Any { type_url: "ignored".to_owned(), value: Bytes::from_static(b) }),
        }
    }

    #[test]
    fn decodes_type_headers_and_body() {
        let p = payload(
            types::INSTANCE_REQUEST,
            &[("AccessToken", "tok"), ("APP", "demo")],
            Some(br#"{"type":"registerInstance","requestId":null}"#),
        );
        let inbound = Inbound::decode(p).unwrap();
        assert_eq!(inbound.kind(), "InstanceRequest");
        assert_eq!(inbound.client_ip(), "10.1.1.1");
        assert_eq!(inbound.access_token(), Some("tok"));
        assert_eq!(inbound.app(), Some("demo"));
        assert_eq!(inbound.header("missing"), None);
        let req: InstanceRequest = inbound.parse().unwrap();
        assert_eq!(req.r#type.as_deref(), Some(types::REGISTER_INSTANCE));
    }

    #[test]
    fn no_metadata() {
        let p = Payload { metadata: None, body: None };
        assert!(matches!(Inbound::decode(p), Err(EnvelopeError::NoMetadata)));
    }

    #[test]
    fn empty_type() {
        let p = payload("", &[], Some(b"{}"));
        assert!(matches!(Inbound::decode(p), Err(EnvelopeError::EmptyType)));
    }

    #[test]
    fn no_body() {
        let p = payload(types::HEALTH_CHECK_REQUEST, &[], None);
        let err = Inbound::decode(p).unwrap_err();
        assert!(matches!(&err, EnvelopeError::NoBody { kind } if kind == "HealthCheckRequest"));
    }

    #[test]
    fn body_not_json() {
        let inbound = Inbound::decode(payload(types::INSTANCE_REQUEST, &[], Some(b"{not json"))).unwrap();
        let err = inbound.parse::<InstanceRequest>().unwrap_err();
        assert!(matches!(&err, EnvelopeError::BodyNotJson { kind, .. } if kind == "InstanceRequest"));
    }

    #[test]
    fn body_of_wrong_shape() {
        let inbound = Inbound::decode(payload(types::INSTANCE_REQUEST, &[], Some(br#"{"instance":5}"#))).unwrap();
        assert!(matches!(inbound.parse::<InstanceRequest>(), Err(EnvelopeError::BodyNotJson { .. })));
    }

    #[test]
    fn encodes_response() {
        let p = encode(&BareResponse::health_check(ResponseHeader::ok(Some("9")))).unwrap();
        let meta = p.metadata.unwrap();
        assert_eq!(meta.r#type, "HealthCheckResponse");
        assert!(meta.headers.is_empty());
        assert!(meta.client_ip.is_empty());
        let body = p.body.unwrap();
        assert!(body.type_url.is_empty());
        let json: serde_json::Value = serde_json::from_slice(&body.value).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"resultCode":200,"errorCode":0,"message":"","requestId":"9","success":true})
        );
    }
}
