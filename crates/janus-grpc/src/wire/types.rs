//! The `Metadata.type` strings of the naming and connection messages
//! (`docs/grpc-design.md` §1.3), in one place.
//!
//! A `type` is the Java simple class name of the message.

/// Client → server, unary: the first call of a client, before the bi-stream.
pub const SERVER_CHECK_REQUEST: &str = "ServerCheckRequest";
/// Answer to [`SERVER_CHECK_REQUEST`].
pub const SERVER_CHECK_RESPONSE: &str = "ServerCheckResponse";
/// Client → server on the bi-stream; it has no answer.
pub const CONNECTION_SETUP_REQUEST: &str = "ConnectionSetupRequest";
/// Client → server, unary: keep-alive of a set-up connection.
pub const HEALTH_CHECK_REQUEST: &str = "HealthCheckRequest";
/// Answer to [`HEALTH_CHECK_REQUEST`].
pub const HEALTH_CHECK_RESPONSE: &str = "HealthCheckResponse";
/// Client → server, unary: register or deregister one ephemeral instance.
pub const INSTANCE_REQUEST: &str = "InstanceRequest";
/// Answer to [`INSTANCE_REQUEST`] and [`PERSISTENT_INSTANCE_REQUEST`].
pub const INSTANCE_RESPONSE: &str = "InstanceResponse";
/// Client → server, unary: register several instances at once.
pub const BATCH_INSTANCE_REQUEST: &str = "BatchInstanceRequest";
/// Answer to [`BATCH_INSTANCE_REQUEST`].
pub const BATCH_INSTANCE_RESPONSE: &str = "BatchInstanceResponse";
/// Client → server, unary: register or deregister one persistent instance.
pub const PERSISTENT_INSTANCE_REQUEST: &str = "PersistentInstanceRequest";
/// Client → server, unary: the instances of a service.
pub const SERVICE_QUERY_REQUEST: &str = "ServiceQueryRequest";
/// Answer to [`SERVICE_QUERY_REQUEST`].
pub const QUERY_SERVICE_RESPONSE: &str = "QueryServiceResponse";
/// Client → server, unary: subscribe to (or unsubscribe from) a service.
pub const SUBSCRIBE_SERVICE_REQUEST: &str = "SubscribeServiceRequest";
/// Answer to [`SUBSCRIBE_SERVICE_REQUEST`].
pub const SUBSCRIBE_SERVICE_RESPONSE: &str = "SubscribeServiceResponse";
/// Client → server, unary: a page of service names of a group.
pub const SERVICE_LIST_REQUEST: &str = "ServiceListRequest";
/// Answer to [`SERVICE_LIST_REQUEST`].
pub const SERVICE_LIST_RESPONSE: &str = "ServiceListResponse";
/// Server → client on the bi-stream: the new state of a subscribed service.
pub const NOTIFY_SUBSCRIBER_REQUEST: &str = "NotifySubscriberRequest";
/// The client's answer to [`NOTIFY_SUBSCRIBER_REQUEST`].
pub const NOTIFY_SUBSCRIBER_RESPONSE: &str = "NotifySubscriberResponse";
/// Server → client on the bi-stream: is the client still there?
pub const CLIENT_DETECTION_REQUEST: &str = "ClientDetectionRequest";
/// The client's answer to [`CLIENT_DETECTION_REQUEST`].
pub const CLIENT_DETECTION_RESPONSE: &str = "ClientDetectionResponse";
/// Server → client on the bi-stream: move to another server.
pub const CONNECT_RESET_REQUEST: &str = "ConnectResetRequest";
/// The client's answer to [`CONNECT_RESET_REQUEST`] (Java only).
pub const CONNECT_RESET_RESPONSE: &str = "ConnectResetResponse";
/// Server → client on the bi-stream: the server's ability table.
pub const SETUP_ACK_REQUEST: &str = "SetupAckRequest";
/// The client's answer to [`SETUP_ACK_REQUEST`].
pub const SETUP_ACK_RESPONSE: &str = "SetupAckResponse";
/// The generic failure answer (`docs/grpc-design.md` §1.6).
pub const ERROR_RESPONSE: &str = "ErrorResponse";

/// `InstanceRequest.type` (and `PersistentInstanceRequest.type`): register.
pub const REGISTER_INSTANCE: &str = "registerInstance";
/// `InstanceRequest.type`: deregister.
pub const DEREGISTER_INSTANCE: &str = "deregisterInstance";
/// `BatchInstanceRequest.type`: batch register.
pub const BATCH_REGISTER_INSTANCE: &str = "batchRegisterInstance";

/// The `module` of server → client naming requests.
pub const MODULE_NAMING: &str = "naming";
/// The `module` of server → client connection requests.
pub const MODULE_INTERNAL: &str = "internal";
