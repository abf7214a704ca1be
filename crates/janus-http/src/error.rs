//! The one place registry errors become HTTP responses.
//!
//! Native routes answer `{code, message}` JSON ([`ApiError`]); Nacos routes
//! answer plain text as Nacos does ([`NacosError`]). Both share the status map.

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

/// A Nacos route error: the same status, the message as plain text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NacosError(pub ApiError);

impl<E: Into<ApiError>> From<E> for NacosError {
    fn from(err: E) -> Self {
        Self(err.into())
    }
}

impl IntoResponse for NacosError {
    fn into_response(self) -> Response {
        let mut response = (self.0.status, format!("caused: {};", self.0.message)).into_response();
        // Kept for wrappers that answer in another shape (the Nacos v2 envelope).
        response.extensions_mut().insert(self.0);
        response
    }
}

impl ApiError {
    /// The Nacos v2 error code for this error (open-api §0.2).
    #[must_use]
    pub fn nacos_v2_code(&self) -> u32 {
        let message = self.message.as_str();
        match self.code {
            "invalid_argument" if message.starts_with("invalid weight") => 21001,
            "invalid_argument" if message.starts_with("invalid service") => 21000,
            "invalid_argument" | "mode_mismatch" | "unsupported_media_type" | "body_too_large" => 10000,
            "not_found" if message.starts_with("namespace") => 22001,
            "not_found" if message.starts_with("instance") => 21003,
            "not_found" if message.starts_with("service") => 21008,
            // Nacos v2 has no code of its own for a method a route does not take.
            "not_found" | "method_not_allowed" => 20004,
            "already_exists" if message.starts_with("service") => 21007,
            "already_exists" => 10000,
            "not_empty" if message.starts_with("service") => 21009,
            "not_empty" | "forbidden" => 10000,
            _ => 30000,
        }
    }
}
