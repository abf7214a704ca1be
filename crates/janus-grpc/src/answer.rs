//! How a request is answered: success payloads, and failures in the style
//! Nacos uses for each (`docs/grpc-design.md` §1.6). The style and codes of a
//! registry error are chosen once, by [`NacosError::grpc`]; this module only
//! renders them.

use janus_nacos::NacosError;
use janus_nacos::error::GrpcStyle;
use tracing::error;

use crate::wire::envelope::encode;
use crate::wire::json::{BareResponse, RESULT_FAIL, ResponseHeader, TypedFailure, WireMessage};
use crate::wire::proto::Payload;

/// `NacosException.INVALID_SERVER_STATUS`: the node is not ready.
pub(crate) const SERVER_NOT_READY: i32 = 300;
/// `NacosException.UN_REGISTER`: the connection is not set up.
pub(crate) const UNREGISTERED: i32 = 301;
/// `NacosException.NO_HANDLER`: unknown message type.
pub(crate) const NO_HANDLER: i32 = 302;
/// `NacosException.BAD_GATEWAY`: the body could not be parsed.
pub(crate) const BAD_BODY: i32 = 502;
/// `NacosException.SERVER_ERROR`.
pub(crate) const SERVER_ERROR: i32 = 500;
/// `NacosException.OVER_THRESHOLD`: too many writes at once.
pub(crate) const OVERLOADED: i32 = 503;

/// Why a request failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A check of the protocol itself: always an `ErrorResponse` with
    /// `resultCode` 500 and this `errorCode`.
    Protocol { error_code: i32, message: String },
    /// What the registry or the Nacos layer said.
    Nacos(NacosError),
}

impl Failure {
    pub(crate) fn protocol(error_code: i32, message: impl Into<String>) -> Self {
        Self::Protocol { error_code, message: message.into() }
    }
}

impl From<NacosError> for Failure {
    fn from(error: NacosError) -> Self {
        Self::Nacos(error)
    }
}

impl From<janus_core::RegistryError> for Failure {
    fn from(error: janus_core::RegistryError) -> Self {
        Self::Nacos(error.into())
    }
}

/// The response type a request is answered with, for typed failures.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResponseKind {
    pub(crate) kind: &'static str,
    /// The request's `type` value, echoed by instance responses.
    pub(crate) instance_type: Option<&'static str>,
}

/// Encodes a success answer.
pub(crate) fn success<M: WireMessage>(message: &M) -> Payload {
    encode(message).unwrap_or_else(|err| {
        error!(%err, "a gRPC answer could not be encoded");
        internal_error(None)
    })
}

/// Encodes a failure as Nacos answers it.
pub(crate) fn failure(failure: Failure, kind: Option<ResponseKind>, request_id: Option<&str>) -> Payload {
    match failure {
        Failure::Protocol { error_code, message } => {
            success(&BareResponse::error(ResponseHeader::fail(RESULT_FAIL, error_code, message, request_id)))
        }
        Failure::Nacos(error) => {
            let how = error.grpc();
            let result_code = i32::from(how.result_code);
            let error_code = i32::try_from(how.error_code).unwrap_or(SERVER_ERROR);
            let header = ResponseHeader::fail(result_code, error_code, error.message(), request_id);
            match (how.style, kind) {
                (GrpcStyle::Typed, Some(kind)) => success(&TypedFailure {
                    header,
                    instance_type: kind.instance_type.map(str::to_owned),
                    kind: kind.kind,
                }),
                _ => success(&BareResponse::error(header)),
            }
        }
    }
}

fn internal_error(request_id: Option<&str>) -> Payload {
    let header = ResponseHeader::fail(RESULT_FAIL, SERVER_ERROR, "the answer could not be encoded", request_id);
    // An ErrorResponse of fixed fields always serializes; an empty payload is
    // the last resort, which clients read as a broken answer.
    encode(&BareResponse::error(header)).unwrap_or_default()
}
