//! [`GrpcConfig`]: the limits and timings of the gRPC front end
//! (`docs/grpc-design.md` §4.11). The server crate fills it from `[grpc]`.

use std::time::Duration;

/// Limits and timings of the gRPC front end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrpcConfig {
    /// Connections held at once; a new one past the cap is closed at once
    /// (its client tries its next server). Never evicts: a connection holds
    /// its client's instances.
    pub max_connections: usize,
    /// Largest message in either direction (Nacos: 10 MiB).
    pub max_message_bytes: usize,
    /// How long a request waits for its connection's setup when the
    /// bi-stream is open but the setup has not arrived yet.
    pub setup_wait: Duration,
    /// A connection silent this long is sent a `ClientDetectionRequest`.
    pub detect_idle: Duration,
    /// ... and is closed if it does not answer within this time.
    pub detect_timeout: Duration,
    /// A subscribed service is pushed at once on its first change, then at
    /// most once per this window (later changes in it go out together).
    pub push_coalesce: Duration,
    /// A push not acknowledged within this time is sent again.
    pub push_ack_timeout: Duration,
    /// Consecutive unacknowledged pushes after which a client is reset.
    pub max_push_timeouts: u32,
    /// Pushes in flight per connection.
    pub max_in_flight: usize,
    /// Messages queued towards one connection.
    pub outbound_queue: usize,
    /// A connection whose queue stays full this long is reset.
    pub slow_client: Duration,
    /// How long shutdown waits after asking clients to move elsewhere.
    pub reset_grace: Duration,
    /// Services one connection may subscribe to.
    pub max_subscriptions_per_connection: usize,
    /// Instances in one batch register.
    pub max_batch: usize,
    /// Instance writes in progress at once; past it, writes get 503 at once.
    pub max_concurrent_writes: usize,
    /// A request not answered in this time gets an error.
    pub request_timeout: Duration,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        Self {
            max_connections: 20_000,
            max_message_bytes: 10 * 1024 * 1024,
            setup_wait: Duration::from_millis(500),
            detect_idle: Duration::from_secs(20),
            detect_timeout: Duration::from_secs(5),
            push_coalesce: Duration::from_millis(5),
            push_ack_timeout: Duration::from_secs(3),
            max_push_timeouts: 3,
            max_in_flight: 16,
            outbound_queue: 64,
            slow_client: Duration::from_secs(10),
            reset_grace: Duration::from_secs(1),
            max_subscriptions_per_connection: 10_000,
            max_batch: 1_000,
            max_concurrent_writes: 4_096,
            request_timeout: Duration::from_secs(10),
        }
    }
}
