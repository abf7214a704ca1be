//! The one place registry errors become HTTP responses.
//!
//! Native routes answer `{code, message}` JSON ([`ApiError`]); Nacos routes
//! answer plain text as Nacos v1 does ([`NacosError`]), or Nacos v2's
//! envelope with the code [`NacosError::v2_code`] chooses. All share the
//! status map.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use janus_api::ErrorBody;
use janus_core::RegistryError;

use crate::extract::json_response;

/// A native API error: status, stable code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
}

impl ApiError {
    /// A 400 with code `invalid_argument`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, code: "invalid_argument", message: message.into() }
    }

    /// A 503 with code `overloaded`.
    pub(crate) fn overloaded(message: impl Into<String>) -> Self {
        Self { status: StatusCode::SERVICE_UNAVAILABLE, code: "overloaded", message: message.into() }
    }
}

impl From<RegistryError> for ApiError {
    fn from(err: RegistryError) -> Self {
        let (status, code) = match &err {
            RegistryError::Invalid { .. } => (StatusCode::BAD_REQUEST, "invalid_argument"),
            RegistryError::NamespaceNotFound(_)
            | RegistryError::ServiceNotFound { .. }
            | RegistryError::InstanceNotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
            RegistryError::AlreadyExists { .. } => (StatusCode::CONFLICT, "already_exists"),
            RegistryError::NotEmpty { .. } => (StatusCode::CONFLICT, "not_empty"),
            RegistryError::ModeMismatch { .. } => (StatusCode::CONFLICT, "mode_mismatch"),
            RegistryError::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            RegistryError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            RegistryError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        Self { status, code, message: err.to_string() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry = self.status == StatusCode::SERVICE_UNAVAILABLE;
        // Two strings always encode, so this never takes json_response's 500 path.
        let mut response = json_response(self.status, &ErrorBody { code: self.code.to_owned(), message: self.message });
        if retry {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// A Nacos error: the native error (status and message) and the registry
/// error it came from, if any, so that Nacos v2 can pick its finer code from
/// the variant ([`Self::v2_code`]). As a response it is Nacos v1's answer:
/// the status, and the message as plain text.
#[derive(Debug, Clone, PartialEq)]
pub struct NacosError(pub ApiError, pub Option<Box<RegistryError>>);

impl From<ApiError> for NacosError {
    fn from(err: ApiError) -> Self {
        Self(err, None)
    }
}

impl From<RegistryError> for NacosError {
    fn from(err: RegistryError) -> Self {
        Self(ApiError::from(err.clone()), Some(Box::new(err)))
    }
}

impl IntoResponse for NacosError {
    fn into_response(self) -> Response {
        (self.0.status, format!("caused: {};", self.0.message)).into_response()
    }
}

impl NacosError {
    /// The Nacos v2 error code (open-api §0.2), the one place it is chosen:
    /// by the variant of the registry error the error came from, else by the
    /// native code of an error a route built itself; never by message text.
    #[must_use]
    pub fn v2_code(&self) -> u32 {
        match self.1.as_deref() {
            Some(cause) => registry_v2_code(cause),
            None => match self.0.code {
                "invalid_argument" | "mode_mismatch" | "unsupported_media_type" | "body_too_large" => 10000,
                "already_exists" | "not_empty" | "forbidden" => 10000,
                // Nacos v2 has no code of its own for a method a route does not take.
                "not_found" | "method_not_allowed" => 20004,
                _ => 30000,
            },
        }
    }
}

/// The Nacos v2 code of a registry error, by variant (open-api §0.2).
fn registry_v2_code(error: &RegistryError) -> u32 {
    match error {
        RegistryError::Invalid { field, .. } if field == "weight" => 21001,
        RegistryError::Invalid { field, .. } if field == "service" => 21000,
        RegistryError::NamespaceNotFound(_) => 22001,
        RegistryError::InstanceNotFound { .. } => 21003,
        RegistryError::ServiceNotFound { .. } => 21008,
        RegistryError::AlreadyExists { what, .. } if what == "service" => 21007,
        RegistryError::NotEmpty { what, .. } if what == "service" => 21009,
        RegistryError::Invalid { .. }
        | RegistryError::ModeMismatch { .. }
        | RegistryError::AlreadyExists { .. }
        | RegistryError::NotEmpty { .. }
        | RegistryError::Forbidden(_) => 10000,
        RegistryError::Unavailable { .. } | RegistryError::Internal(_) => 30000,
        _ => 30000,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use janus_core::{Mode, RegistryError};

    use super::{ApiError, NacosError};

    fn exists(what: &str) -> RegistryError {
        RegistryError::AlreadyExists { what: what.to_owned(), name: "x".to_owned() }
    }

    fn not_empty(what: &str) -> RegistryError {
        RegistryError::NotEmpty { what: what.to_owned(), name: "x".to_owned(), detail: "holds y".to_owned() }
    }

    /// Every variant: (error, native status, native code, Nacos v2 code).
    fn cases() -> Vec<(RegistryError, StatusCode, &'static str, u32)> {
        let service_missing = RegistryError::ServiceNotFound {
            namespace: "pay".to_owned(),
            group: "G".to_owned(),
            service: "s".to_owned(),
        };
        let instance_missing = RegistryError::InstanceNotFound {
            namespace: "pay".to_owned(),
            service: "G@@s".to_owned(),
            instance: "DEFAULT/10.0.0.1:80".to_owned(),
        };
        vec![
            (
                RegistryError::invalid("weight", "must be between 0 and 10000"),
                StatusCode::BAD_REQUEST,
                "invalid_argument",
                21001,
            ),
            (
                RegistryError::invalid("service", "must not be empty"),
                StatusCode::BAD_REQUEST,
                "invalid_argument",
                21000,
            ),
            (
                RegistryError::invalid("port", "must be between 1 and 65535"),
                StatusCode::BAD_REQUEST,
                "invalid_argument",
                10000,
            ),
            (RegistryError::NamespaceNotFound("pay".to_owned()), StatusCode::NOT_FOUND, "not_found", 22001),
            (service_missing, StatusCode::NOT_FOUND, "not_found", 21008),
            (instance_missing, StatusCode::NOT_FOUND, "not_found", 21003),
            (exists("service"), StatusCode::CONFLICT, "already_exists", 21007),
            (exists("namespace"), StatusCode::CONFLICT, "already_exists", 10000),
            (not_empty("service"), StatusCode::CONFLICT, "not_empty", 21009),
            (not_empty("namespace"), StatusCode::CONFLICT, "not_empty", 10000),
            (
                RegistryError::ModeMismatch { namespace: "pay".to_owned(), mode: Mode::Ap, detail: "d".to_owned() },
                StatusCode::CONFLICT,
                "mode_mismatch",
                10000,
            ),
            (
                RegistryError::Unavailable {
                    namespace: "pay".to_owned(),
                    mode: Mode::Cp,
                    reason: "no quorum".to_owned(),
                },
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                30000,
            ),
            (RegistryError::Forbidden("built in".to_owned()), StatusCode::FORBIDDEN, "forbidden", 10000),
            (RegistryError::Internal("a bug".to_owned()), StatusCode::INTERNAL_SERVER_ERROR, "internal", 30000),
        ]
    }

    #[test]
    fn each_variant_maps_to_its_native_status_and_code() {
        for (error, status, code, _) in cases() {
            let api = ApiError::from(error.clone());
            assert_eq!((api.status, api.code), (status, code), "{error:?}");
            assert_eq!(api.message, error.to_string());
            assert_eq!(api.clone().into_response().status(), status, "{error:?}");
        }
    }

    #[test]
    fn each_variant_answers_nacos_v1_with_the_same_status_and_keeps_its_cause() {
        for (error, status, _, _) in cases() {
            let nacos = NacosError::from(error.clone());
            assert_eq!(nacos.1.as_deref(), Some(&error), "the cause is kept for Nacos v2's code");
            let response = nacos.into_response();
            assert_eq!(response.status(), status, "{error:?}");
            let content_type = response.headers().get(axum::http::header::CONTENT_TYPE);
            assert_eq!(content_type.and_then(|v| v.to_str().ok()), Some("text/plain; charset=utf-8"));
        }
    }

    #[test]
    fn each_variant_has_its_nacos_v2_code() {
        for (error, _, _, v2) in cases() {
            assert_eq!(NacosError::from(error.clone()).v2_code(), v2, "{error:?}");
        }
    }

    #[test]
    fn the_nacos_v2_code_follows_the_variant_not_the_text() {
        // A message that reads like another variant's does not change the code.
        let error = RegistryError::Internal("service 'x' does not exist".to_owned());
        assert_eq!(NacosError::from(error).v2_code(), 30000);
        let error = RegistryError::invalid("group", "invalid weight-like text");
        assert_eq!(NacosError::from(error).v2_code(), 10000);
    }

    #[test]
    fn route_built_errors_get_their_nacos_v2_code_from_their_native_code() {
        let built =
            |status, code: &'static str| NacosError::from(ApiError { status, code, message: "service x".to_owned() });
        assert_eq!(NacosError::from(ApiError::invalid("invalid weight: x")).v2_code(), 10000);
        assert_eq!(built(StatusCode::NOT_FOUND, "not_found").v2_code(), 20004);
        assert_eq!(built(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").v2_code(), 20004);
        assert_eq!(built(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large").v2_code(), 10000);
        assert_eq!(built(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").v2_code(), 10000);
        assert_eq!(NacosError::from(ApiError::overloaded("busy")).v2_code(), 30000);
        assert_eq!(built(StatusCode::INTERNAL_SERVER_ERROR, "internal").v2_code(), 30000);
    }

    #[test]
    fn an_internal_fault_answers_500_on_every_protocol() {
        let error = RegistryError::Internal("unexpected Raft outcome Done".to_owned());
        let native = ApiError::from(error.clone()).into_response();
        assert_eq!(native.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let nacos = NacosError::from(error);
        assert_eq!(nacos.v2_code(), 30000);
        let v2 = crate::nacos::v2::failure(&nacos);
        assert_eq!(v2.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(nacos.into_response().status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
