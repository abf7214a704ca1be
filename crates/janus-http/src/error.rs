//! The one place registry errors become HTTP responses.
//!
//! Native routes answer `{code, message}` JSON ([`ApiError`]); Nacos routes
//! answer plain text as Nacos v1 does ([`NacosHttpError`]), or Nacos v2's
//! envelope with the code [`NacosError::v2_code`] chooses. All share the
//! status map, which `janus-nacos` keeps next to the Nacos codes
//! ([`janus_nacos::error::http_status`]).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use janus_api::ErrorBody;
use janus_core::RegistryError;

use crate::extract::json_response;

pub use janus_nacos::NacosError;

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
        let (status, code) = janus_nacos::error::http_status(&err);
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

/// A native error on a Nacos route: the same status, code and message, and
/// no registry error behind it.
impl From<ApiError> for NacosError {
    fn from(err: ApiError) -> Self {
        Self::new(err.status, err.code, err.message)
    }
}

/// A [`NacosError`] as a response: Nacos v1's answer, the status and the
/// message as plain text (a newtype, since `NacosError` is another crate's).
#[derive(Debug, Clone, PartialEq)]
pub struct NacosHttpError(pub NacosError);

impl From<NacosError> for NacosHttpError {
    fn from(err: NacosError) -> Self {
        Self(err)
    }
}

impl IntoResponse for NacosHttpError {
    fn into_response(self) -> Response {
        (self.0.http_status(), format!("caused: {};", self.0.message())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use janus_core::{Mode, RegistryError};

    use super::{ApiError, NacosError, NacosHttpError};

    /// A registry error of each status (the codes per variant are tested in
    /// `janus-nacos`, where they are chosen).
    fn errors() -> Vec<RegistryError> {
        vec![
            RegistryError::invalid("port", "must be between 1 and 65535"),
            RegistryError::NamespaceNotFound("pay".to_owned()),
            RegistryError::ModeMismatch { namespace: "pay".to_owned(), mode: Mode::Ap, detail: "d".to_owned() },
            RegistryError::Unavailable { namespace: "pay".to_owned(), mode: Mode::Cp, reason: "no quorum".to_owned() },
            RegistryError::Forbidden("built in".to_owned()),
            RegistryError::Internal("a bug".to_owned()),
        ]
    }

    #[test]
    fn each_variant_answers_its_native_status_and_code() {
        for error in errors() {
            let (status, code) = janus_nacos::error::http_status(&error);
            let api = ApiError::from(error.clone());
            assert_eq!((api.status, api.code), (status, code), "{error:?}");
            assert_eq!(api.message, error.to_string());
            assert_eq!(api.into_response().status(), status, "{error:?}");
        }
    }

    #[test]
    fn each_variant_answers_nacos_v1_with_the_same_status_as_text() {
        for error in errors() {
            let status = ApiError::from(error.clone()).status;
            let response = NacosHttpError(NacosError::from(error.clone())).into_response();
            assert_eq!(response.status(), status, "{error:?}");
            let content_type = response.headers().get(axum::http::header::CONTENT_TYPE);
            assert_eq!(content_type.and_then(|v| v.to_str().ok()), Some("text/plain; charset=utf-8"));
        }
    }

    #[test]
    fn a_native_error_on_a_nacos_route_keeps_its_status_code_and_message() {
        let nacos = NacosError::from(ApiError::overloaded("busy"));
        assert_eq!(
            (nacos.http_status(), nacos.code(), nacos.message()),
            (StatusCode::SERVICE_UNAVAILABLE, "overloaded", "busy")
        );
        assert_eq!(nacos.cause(), None);
        assert_eq!(nacos.v2_code(), 30000);
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
        assert_eq!(NacosHttpError(nacos).into_response().status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
