//! The protobuf messages of `nacos_grpc_service.proto`, written by hand with
//! prost derives (no `protoc`, no `prost-types`).
//!
//! The proto has no `package`, so the method paths are `/Request/request` and
//! `/BiRequestStream/requestBiStream`. [`Any`] has the tags of
//! `google.protobuf.Any`; its `type_url` varies by client and is ignored.

use std::collections::HashMap;

/// `message Metadata { string type = 3; string clientIp = 8; map<string,string> headers = 7; }`
#[derive(Clone, PartialEq, prost::Message)]
pub struct Metadata {
    /// The message type: the Java simple class name (see [`super::types`]).
    #[prost(string, tag = "3")]
    pub r#type: String,
    /// The client's own idea of its IP; for display only.
    #[prost(string, tag = "8")]
    pub client_ip: String,
    /// Request headers (`accessToken`, `app`, …); keys compare case-insensitively.
    #[prost(map = "string, string", tag = "7")]
    pub headers: HashMap<String, String>,
}

/// `google.protobuf.Any { string type_url = 1; bytes value = 2; }`
#[derive(Clone, PartialEq, prost::Message)]
pub struct Any {
    /// Empty from Java and Python, the type name from the Rust SDK; ignored.
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// The JSON body.
    #[prost(bytes = "bytes", tag = "2")]
    pub value: bytes::Bytes,
}

/// `message Payload { Metadata metadata = 2; google.protobuf.Any body = 3; }`
#[derive(Clone, PartialEq, prost::Message)]
pub struct Payload {
    /// The type and headers.
    #[prost(message, optional, tag = "2")]
    pub metadata: Option<Metadata>,
    /// The JSON body.
    #[prost(message, optional, tag = "3")]
    pub body: Option<Any>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use prost::Message;

    fn payload(kind: &str, client_ip: &str, headers: &[(&str, &str)], body: &'static [u8]) -> Payload {
        Payload {
            metadata: Some(Metadata {
                r#type: kind.to_owned(),
                client_ip: client_ip.to_owned(),
                headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            }),
            body: Some(Any { type_url: String::new(), value: bytes::Bytes::from_static(body) }),
        }
    }

    /// Hand-computed from the proto: field key = (tag << 3) | 2 for every
    /// length-delimited field, so 2 → 0x12, 3 → 0x1a, 7 → 0x3a, 8 → 0x42.
    fn fixture() -> Vec<u8> {
        let mut meta = vec![0x1a, 0x12];
        meta.extend_from_slice(b"HealthCheckRequest");
        // headers entry {"app": "x"}: key = field 1 (0x0a), value = field 2 (0x12)
        meta.extend_from_slice(&[0x3a, 0x08, 0x0a, 0x03, b'a', b'p', b'p', 0x12, 0x01, b'x']);
        meta.extend_from_slice(&[0x42, 0x07]);
        meta.extend_from_slice(b"1.2.3.4");
        let mut out = vec![0x12, u8::try_from(meta.len()).unwrap()];
        out.extend_from_slice(&meta);
        // body Any: value = field 2, "{}"
        out.extend_from_slice(&[0x1a, 0x04, 0x12, 0x02, 0x7b, 0x7d]);
        out
    }

    #[test]
    fn design_fixture_without_headers() {
        let bytes = payload("HealthCheckRequest", "", &[], b"{}").encode_to_vec();
        let mut expected = vec![0x12, 0x14, 0x1a, 0x12];
        expected.extend_from_slice(b"HealthCheckRequest");
        expected.extend_from_slice(&[0x1a, 0x04, 0x12, 0x02, 0x7b, 0x7d]);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn encode_pins_every_tag() {
        let bytes = payload("HealthCheckRequest", "1.2.3.4", &[("app", "x")], b"{}").encode_to_vec();
        assert_eq!(bytes, fixture());
    }

    #[test]
    fn decode_fixture_and_round_trip() {
        let decoded = Payload::decode(fixture().as_slice()).unwrap();
        assert_eq!(decoded, payload("HealthCheckRequest", "1.2.3.4", &[("app", "x")], b"{}"));
        let again = Payload::decode(decoded.encode_to_vec().as_slice()).unwrap();
        assert_eq!(again, decoded);
    }

    #[test]
    fn type_url_is_read_but_does_not_matter() {
        let mut p = payload("HealthCheckRequest", "", &[], b"{}");
        if let Some(body) = p.body.as_mut() {
            body.type_url = "HealthCheckRequest".to_owned();
        }
        let decoded = Payload::decode(p.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded.body.unwrap().value.as_ref(), b"{}");
    }
}
