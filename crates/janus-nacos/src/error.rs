//! Nacos errors and their codes: the one file where a [`RegistryError`]
//! variant chooses its HTTP status ([`http_status`], which Janus's native
//! API shares), its Nacos v2 code ([`NacosError::v2_code`]) and how the Nacos
//! gRPC protocol answers it ([`NacosError::grpc`]).
//!
//! Rendering is the front ends' part: `janus-http` answers Nacos v1 with the
//! status and the message as text, and Nacos v2 with its `{code, message,
//! data}` envelope.

use http::StatusCode;
use janus_auth::AuthError;
use janus_core::RegistryError;

/// The HTTP status of a registry error and its stable native code
/// (`invalid_argument`, `not_found`, …), by variant: the status map native
/// and Nacos routes share.
#[must_use]
pub fn http_status(error: &RegistryError) -> (StatusCode, &'static str) {
    match error {
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
        RegistryError::Auth(error) => auth_status(error),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

/// 401 for "who are you?", 403 for "not you", and the admin API's own
/// refusals as their kind.
fn auth_status(error: &AuthError) -> (StatusCode, &'static str) {
    match error {
        AuthError::Missing
        | AuthError::MalformedToken
        | AuthError::UnknownToken
        | AuthError::Expired
        | AuthError::BadCredentials => (StatusCode::UNAUTHORIZED, "unauthenticated"),
        AuthError::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden"),
        AuthError::Throttled { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
        AuthError::Invalid(_) | AuthError::Limit(_) => (StatusCode::BAD_REQUEST, "invalid_argument"),
        AuthError::UserExists(_) => (StatusCode::CONFLICT, "already_exists"),
        AuthError::NoSuchUser(_) | AuthError::NoSuchToken(_) => (StatusCode::NOT_FOUND, "not_found"),
        AuthError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    }
}

/// A Nacos error: its HTTP status, native code and message, and the registry
/// error it came from, if any, so that each Nacos API picks its finer code
/// from the variant ([`Self::v2_code`]) and never from the message text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct NacosError {
    status: StatusCode,
    code: &'static str,
    message: String,
    #[source]
    cause: Option<Box<RegistryError>>,
}

impl From<RegistryError> for NacosError {
    fn from(err: RegistryError) -> Self {
        let (status, code) = http_status(&err);
        Self { status, code, message: err.to_string(), cause: Some(Box::new(err)) }
    }
}

impl NacosError {
    /// An error a front end built itself (not from the registry): its status,
    /// native code (`not_found`, `body_too_large`, …) and message.
    #[must_use]
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), cause: None }
    }

    /// A 400 with code `invalid_argument`: a parameter Janus refuses.
    #[must_use]
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_argument", message)
    }

    /// The HTTP status both Nacos HTTP versions answer with (Nacos v1 has no
    /// other code).
    #[must_use]
    pub const fn http_status(&self) -> StatusCode {
        self.status
    }

    /// The native code (`invalid_argument`, `not_found`, …).
    #[must_use]
    pub const fn code(&self) -> &'static str {
        self.code
    }

    /// The message for the client.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The registry error this error came from, if any.
    #[must_use]
    pub fn cause(&self) -> Option<&RegistryError> {
        self.cause.as_deref()
    }

    /// The Nacos v2 error code (open-api §0.2), the one place it is chosen:
    /// by the variant of the registry error the error came from, else by the
    /// native code of an error a front end built itself; never by message text.
    #[must_use]
    pub fn v2_code(&self) -> u32 {
        match self.cause() {
            Some(cause) => registry_v2_code(cause),
            None => match self.code {
                "invalid_argument" | "mode_mismatch" | "unsupported_media_type" | "body_too_large" => 10000,
                "already_exists" | "not_empty" | "forbidden" => 10000,
                // Nacos v2 has no code of its own for a method a route does not take.
                "not_found" | "method_not_allowed" => 20004,
                _ => 30000,
            },
        }
    }
}

/// How a failure travels in Nacos's gRPC protocol (`docs/grpc-design.md`
/// §1.6); SDKs react to the two styles differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrpcStyle {
    /// An `ErrorResponse` in place of the request's own response type, with
    /// `resultCode` equal to `errorCode`: SDKs retry it (the Rust SDK's redo
    /// every 3 s), so it is for what may pass: bad input aside, a node that
    /// cannot serve now.
    ErrorResponse,
    /// The request's own response type with `resultCode` 500: SDKs report it
    /// and stop retrying, for what a retry cannot mend.
    Typed,
}

/// A failure as the Nacos gRPC protocol answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrpcFailure {
    /// Which response carries it.
    pub style: GrpcStyle,
    /// The response's `resultCode`.
    pub result_code: u16,
    /// The response's `errorCode` (Nacos's codes: 400, 403, 404, 409, 500,
    /// 503, and 22001 for a namespace that does not exist).
    pub error_code: u32,
}

impl NacosError {
    /// How the Nacos gRPC protocol answers this error, the one place it is
    /// chosen: by the native code, which [`http_status`] chose by variant
    /// (or a front end for an error it built itself); never by message text.
    #[must_use]
    pub fn grpc(&self) -> GrpcFailure {
        use GrpcStyle::{ErrorResponse, Typed};
        let (style, result_code, error_code) = match (self.cause(), self.code) {
            (Some(RegistryError::NamespaceNotFound(_)), _) => (Typed, 500, 22001),
            (_, "invalid_argument" | "mode_mismatch" | "unsupported_media_type" | "body_too_large") => {
                (ErrorResponse, 400, 400)
            }
            // Nacos's auth filter answers every refusal with 403.
            (_, "forbidden" | "unauthenticated" | "too_many_requests") => (Typed, 500, 403),
            (_, "not_found") => (Typed, 500, 404),
            (_, "already_exists" | "not_empty") => (Typed, 500, 409),
            (_, "unavailable" | "overloaded" | "timeout") => (ErrorResponse, 503, 503),
            _ => (ErrorResponse, 500, 500),
        };
        GrpcFailure { style, result_code, error_code }
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
        RegistryError::Auth(error) => match auth_status(error).0 {
            StatusCode::UNAUTHORIZED => 401,
            StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS => 403,
            StatusCode::SERVICE_UNAVAILABLE => 30000,
            _ => 10000,
        },
        _ => 30000,
    }
}

#[cfg(test)]
mod tests {
    use http::StatusCode;
    use janus_core::{Mode, RegistryError};

    use super::{AuthError, GrpcFailure, GrpcStyle, NacosError, http_status};

    fn exists(what: &str) -> RegistryError {
        RegistryError::AlreadyExists { what: what.to_owned(), name: "x".to_owned() }
    }

    fn not_empty(what: &str) -> RegistryError {
        RegistryError::NotEmpty { what: what.to_owned(), name: "x".to_owned(), detail: "holds y".to_owned() }
    }

    /// Every variant: (error, HTTP status, native code, Nacos v2 code).
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
            (RegistryError::Auth(AuthError::Missing), StatusCode::UNAUTHORIZED, "unauthenticated", 401),
            (RegistryError::Auth(AuthError::Expired), StatusCode::UNAUTHORIZED, "unauthenticated", 401),
            (
                RegistryError::Auth(AuthError::Forbidden {
                    user: janus_auth::UserName::parse("a").expect("a valid name"),
                    needed: janus_auth::Role::Write,
                    scope: janus_auth::Scope::Global,
                }),
                StatusCode::FORBIDDEN,
                "forbidden",
                403,
            ),
            (
                RegistryError::Auth(AuthError::Throttled { retry_after_secs: 3 }),
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                403,
            ),
            (RegistryError::Auth(AuthError::Invalid("x".into())), StatusCode::BAD_REQUEST, "invalid_argument", 10000),
            (
                RegistryError::Auth(AuthError::Unavailable("no quorum".into())),
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                30000,
            ),
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
    fn each_variant_has_its_status_native_code_and_message_and_keeps_its_cause() {
        for (error, status, code, _) in cases() {
            assert_eq!(http_status(&error), (status, code), "{error:?}");
            let nacos = NacosError::from(error.clone());
            assert_eq!((nacos.http_status(), nacos.code()), (status, code), "{error:?}");
            assert_eq!(nacos.message(), error.to_string());
            assert_eq!(nacos.cause(), Some(&error), "the cause is kept for Nacos v2's code");
        }
    }

    #[test]
    fn each_variant_has_its_nacos_v2_code() {
        for (error, _, _, v2) in cases() {
            assert_eq!(NacosError::from(error.clone()).v2_code(), v2, "{error:?}");
        }
    }

    #[test]
    fn each_variant_has_its_grpc_answer() {
        use GrpcStyle::{ErrorResponse, Typed};
        let expected = |error: &RegistryError| match error {
            RegistryError::Invalid { .. } | RegistryError::ModeMismatch { .. } => (ErrorResponse, 400, 400),
            RegistryError::NamespaceNotFound(_) => (Typed, 500, 22001),
            RegistryError::ServiceNotFound { .. } | RegistryError::InstanceNotFound { .. } => (Typed, 500, 404),
            RegistryError::AlreadyExists { .. } | RegistryError::NotEmpty { .. } => (Typed, 500, 409),
            RegistryError::Forbidden(_) => (Typed, 500, 403),
            RegistryError::Auth(AuthError::Invalid(_)) => (ErrorResponse, 400, 400),
            RegistryError::Auth(AuthError::Unavailable(_)) => (ErrorResponse, 503, 503),
            RegistryError::Auth(_) => (Typed, 500, 403),
            RegistryError::Unavailable { .. } => (ErrorResponse, 503, 503),
            _ => (ErrorResponse, 500, 500),
        };
        for (error, ..) in cases() {
            let (style, result_code, error_code) = expected(&error);
            let failure = NacosError::from(error.clone()).grpc();
            assert_eq!(failure, GrpcFailure { style, result_code, error_code }, "{error:?}");
        }
        // Errors a front end built itself, by their native code.
        let built = |status, code: &'static str| NacosError::new(status, code, "x").grpc();
        assert_eq!(built(StatusCode::SERVICE_UNAVAILABLE, "overloaded").error_code, 503);
        assert_eq!(built(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large").style, ErrorResponse);
        assert_eq!(built(StatusCode::NOT_FOUND, "not_found").style, Typed);
        // A message that reads like another variant's does not change the answer.
        let internal = NacosError::from(RegistryError::Internal("namespace 'x' does not exist".to_owned()));
        assert_eq!(internal.grpc().error_code, 500);
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
    fn built_errors_get_their_nacos_v2_code_from_their_native_code() {
        let built = |status, code: &'static str| NacosError::new(status, code, "service x");
        assert_eq!(NacosError::invalid("invalid weight: x").v2_code(), 10000);
        assert_eq!(built(StatusCode::NOT_FOUND, "not_found").v2_code(), 20004);
        assert_eq!(built(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").v2_code(), 20004);
        assert_eq!(built(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large").v2_code(), 10000);
        assert_eq!(built(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").v2_code(), 10000);
        assert_eq!(built(StatusCode::SERVICE_UNAVAILABLE, "overloaded").v2_code(), 30000);
        assert_eq!(built(StatusCode::INTERNAL_SERVER_ERROR, "internal").v2_code(), 30000);
    }
}
