//! [`ServerConfig`]: every setting of a node, with its default.
//!
//! Sources, later ones winning: the built-in defaults, a TOML file
//! (`--config`), environment variables `JANUS_<SECTION>__<KEY>` (for example
//! `JANUS_HTTP__ADDR=0.0.0.0:8848`), then command-line flags. Unknown keys are
//! errors, so a typo never silently falls back to a default: a `JANUS_`
//! variable that matches no setting is refused too, naming the closest
//! setting, and every refused value names the file, variable or flag it
//! came from (see `sources`).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use janus_ap::{ApCluster, ApConfig, DistroConfig};
use janus_core::RegistryConfig;
use janus_core::lease::LeaseDefaults;
use janus_core::preservation::PreservationConfig;
use janus_core::replica::ReplicationConfig;
use janus_health::{DEFAULT_PROBE_ALLOW, DEFAULT_PROBE_DENY, HealthConfig, PolicyList, ProbePolicy};
use janus_http::HttpConfig;
use serde::{Deserialize, Serialize};

mod secret_file;
mod sources;

use sources::Set;
pub use sources::{ConfigSources, Origin, environment_problems};

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or parsed, or a key is unknown or mistyped.
    #[error("{0}")]
    Load(#[from] config::ConfigError),
    /// A value is out of range.
    #[error("invalid setting {key}: {rule}")]
    Invalid {
        /// The setting, e.g. `lease.delete_after_ms`.
        key: &'static str,
        /// What is allowed.
        rule: String,
    },
    /// A `JANUS_` environment variable or a key of the file that matches no
    /// setting, or a file that cannot be read (the sentence names which).
    #[error("{0}")]
    Unknown(String),
    /// `error`, with the sources of the setting it is about.
    #[error("{error} (from {})", sources::describe(.origins))]
    Sourced {
        /// The file, variables or flags that set the setting (the defaults if none did).
        origins: Vec<Origin>,
        /// The error.
        error: Box<ConfigError>,
    },
}

/// All settings of a node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Identity and storage.
    pub node: NodeSection,
    /// The HTTP front end.
    pub http: HttpSection,
    /// The DNS front end.
    pub dns: DnsSection,
    /// The Nacos gRPC front end.
    pub grpc: GrpcSection,
    /// Heartbeat leases of ephemeral instances.
    pub lease: LeaseSection,
    /// Eureka-style self-preservation.
    pub self_preservation: PreservationSection,
    /// The CP engine (Raft).
    pub raft: RaftSection,
    /// The nodes of a cluster and how they reach each other.
    pub cluster: ClusterSection,
    /// AP replication between the nodes of a cluster (Distro); see `docs/ap-protocol.md`.
    pub distro: DistroConfig,
    /// Server-side health checks of persistent instances.
    pub health: HealthSection,
    /// The Eureka REST API.
    pub eureka: EurekaSection,
    /// Authentication and authorization.
    pub auth: AuthSection,
    /// Logging.
    pub log: LogSection,
}

/// `[raft]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftSection {
    /// Leader heartbeat interval.
    pub heartbeat_ms: u64,
    /// Shortest election timeout.
    pub election_timeout_min_ms: u64,
    /// Longest election timeout; a write without quorum fails after this plus a second.
    pub election_timeout_max_ms: u64,
    /// Take a snapshot (and compact the log) after this many entries.
    pub snapshot_after_logs: u64,
    /// Entries kept after a snapshot covers them; a follower further behind is sent the snapshot.
    pub logs_kept_after_snapshot: u64,
}

impl Default for RaftSection {
    fn default() -> Self {
        Self {
            heartbeat_ms: 100,
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
            snapshot_after_logs: 10_000,
            logs_kept_after_snapshot: 1000,
        }
    }
}

/// `[cluster]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSection {
    /// The Raft group, `"<node id>@<host:port>"` each, the same list on every
    /// node; the address is the member's `cluster.addr` as its peers reach
    /// it. Empty: this node alone, with no cluster listener.
    pub members: Vec<String>,
    /// Where this node listens for cluster (Raft) traffic.
    pub addr: SocketAddr,
    /// The shared secret every cluster call carries (at least 16 visible
    /// ASCII characters); required when `members` is set, unless
    /// `secret_file` is. When `addr` is not loopback, none of the samples in
    /// Janus's own files is taken.
    pub secret: String,
    /// Used when `secret` is empty: the file holding the secret, created
    /// with a random one (readable by its owner only) by the first node to
    /// start if it does not exist; nodes sharing the file (a volume, in
    /// `docker-compose.yml`) share the secret.
    pub secret_file: Option<PathBuf>,
    /// Largest Raft message (a whole snapshot travels in one).
    pub max_message_bytes: usize,
    /// Start empty and wait to be added to a running group through its admin
    /// API (Raft then ignores `members`; the node is not ready until added).
    pub join: bool,
    /// Threads of the runtime cluster traffic runs on (Raft, Distro and the
    /// cluster address), apart from the threads serving clients, so a flood
    /// on the public ports cannot delay heartbeats.
    pub runtime_threads: usize,
}

impl Default for ClusterSection {
    fn default() -> Self {
        Self {
            members: Vec::new(),
            addr: SocketAddr::from(([127, 0, 0, 1], 7848)),
            secret: String::new(),
            secret_file: None,
            max_message_bytes: 256 << 20,
            join: false,
            runtime_threads: 2,
        }
    }
}

impl ClusterSection {
    /// Whether this node takes part in a cluster (and so listens on `addr`).
    #[must_use]
    pub fn is_clustered(&self) -> bool {
        !self.members.is_empty() || self.join
    }

    /// Checks a cluster secret given as `key`: long enough, and, when the
    /// cluster address is not loopback, none of [`SAMPLE_SECRETS`].
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `key`.
    pub fn check_secret(&self, key: &'static str, secret: &str) -> Result<janus_peer::ClusterSecret, ConfigError> {
        let checked = janus_peer::ClusterSecret::new(secret)
            .map_err(|error| ConfigError::Invalid { key, rule: format!("{error} (the shared cluster secret)") })?;
        if !self.addr.ip().is_loopback() && is_sample_secret(secret) {
            return Err(ConfigError::Invalid {
                key,
                rule: format!(
                    "is a sample secret from Janus's own files, and cluster.addr {} is not loopback: set one of your \
                     own (for example the output of `openssl rand -hex 24`) on every node",
                    self.addr
                ),
            });
        }
        Ok(checked)
    }

    /// The cluster secret: `secret`, or else the one in `secret_file`,
    /// which the first node to start creates with a random secret.
    ///
    /// # Errors
    /// Neither is set, the file cannot be read or created, or the secret is
    /// refused by [`check_secret`](Self::check_secret).
    pub fn load_secret(&self) -> Result<janus_peer::ClusterSecret, ConfigError> {
        if !self.secret.is_empty() {
            return self.check_secret("cluster.secret", &self.secret);
        }
        let Some(file) = &self.secret_file else {
            return Err(ConfigError::Invalid {
                key: "cluster.secret",
                rule: "is required with cluster.members or cluster.join (or cluster.secret_file)".to_owned(),
            });
        };
        let unusable = |error: std::io::Error| ConfigError::Invalid {
            key: "cluster.secret_file",
            rule: format!("{}: {error}", file.display()),
        };
        let (text, created) = secret_file::read_or_create(file).map_err(unusable)?;
        if created {
            tracing::warn!(file = %file.display(), "cluster.secret is empty: wrote a new random cluster secret to this \
                file; every node of the cluster must read the same file (a shared volume) or be given that secret");
        }
        self.check_secret("cluster.secret_file", text.trim())
    }

    /// The members by node id.
    ///
    /// # Errors
    /// An entry is not `<id>@<host:port>`, or an id repeats.
    pub fn member_map(&self) -> Result<BTreeMap<u64, String>, ConfigError> {
        let invalid = |rule: String| ConfigError::Invalid { key: "cluster.members", rule };
        let mut members = BTreeMap::new();
        for entry in &self.members {
            let (id, addr) = entry
                .split_once('@')
                .and_then(|(id, addr)| Some((id.trim().parse::<u64>().ok()?, addr.trim())))
                .filter(|(_, addr)| {
                    addr.rsplit_once(':')
                        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0))
                })
                .ok_or_else(|| invalid(format!("{entry:?} is not <node id>@<host:port>")))?;
            if members.insert(id, addr.to_owned()).is_some() {
                return Err(invalid(format!("node id {id} appears twice")));
            }
        }
        Ok(members)
    }
}

/// `[health]`: server-side checks of the persistent instances of `cp`
/// namespaces (each cluster says how: TCP, HTTP or none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthSection {
    /// Whether this node runs checks at all.
    pub enabled: bool,
    /// Mean time between two probes of one instance (each drawn from ±25 %).
    pub interval_ms: u64,
    /// A probe not answered within this fails.
    pub timeout_ms: u64,
    /// Successes in a row that make an unhealthy instance healthy.
    pub rise: u32,
    /// Failures in a row that make a healthy instance unhealthy.
    pub fall: u32,
    /// Probes running at once, at most.
    pub max_in_flight: usize,
    /// Flips found within this window go out as one Raft write.
    pub report_delay_ms: u64,
    /// Networks (CIDR, or single addresses) whose addresses may be probed.
    pub probe_allow: Vec<String>,
    /// Networks never probed, even if allowed; by default link-local and cloud
    /// metadata addresses. An instance at a refused address is shown unhealthy.
    pub probe_deny: Vec<String>,
}

impl Default for HealthSection {
    fn default() -> Self {
        let h = HealthConfig::default();
        Self {
            enabled: h.enabled,
            interval_ms: duration_ms(h.interval),
            timeout_ms: duration_ms(h.timeout),
            rise: h.rise,
            fall: h.fall,
            max_in_flight: h.max_in_flight,
            report_delay_ms: duration_ms(h.report_delay),
            probe_allow: DEFAULT_PROBE_ALLOW.iter().map(|net| (*net).to_owned()).collect(),
            probe_deny: DEFAULT_PROBE_DENY.iter().map(|net| (*net).to_owned()).collect(),
        }
    }
}

/// `[eureka]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EurekaSection {
    /// The `ap` namespace whose services are the Eureka applications.
    pub namespace: String,
    /// The group whose services are the Eureka applications.
    pub group: String,
}

impl Default for EurekaSection {
    fn default() -> Self {
        let http = HttpConfig::default();
        Self { namespace: http.eureka_namespace, group: http.eureka_group }
    }
}

/// `[auth]`: who may do what (`docs/auth.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// Whether every request of the HTTP and gRPC front ends is checked
    /// against the users, tokens and grants. Logins and the access API under
    /// `/v1/auth/` work either way. Unset: on when a listener binds an address
    /// other than loopback or a cluster is configured, off otherwise (see
    /// [`ServerConfig::auth_enabled`]); `false` there logs a warning at every start.
    pub enabled: Option<bool>,
    /// Whether `/metrics` is served without a token while auth is on.
    pub metrics_open: bool,
    /// Lifetime of a token issued by a login (Nacos's `tokenTtl`).
    pub login_token_ttl_ms: u64,
    /// Where a node that creates the bootstrap admin writes its token;
    /// unset: `<node.data_dir>/bootstrap-token`.
    pub bootstrap_token_file: Option<PathBuf>,
}

impl Default for AuthSection {
    fn default() -> Self {
        let http = HttpConfig::default();
        Self {
            enabled: None,
            metrics_open: http.metrics_open,
            login_token_ttl_ms: u64::try_from(http.login_token_ttl.as_millis()).unwrap_or(u64::MAX),
            bootstrap_token_file: None,
        }
    }
}

/// `[node]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeSection {
    /// Node id, shown on every log line of this node.
    pub id: u64,
    /// Where durable state lives (used by the Raft engine).
    pub data_dir: PathBuf,
}

impl Default for NodeSection {
    fn default() -> Self {
        Self { id: 1, data_dir: PathBuf::from("./janus-data") }
    }
}

/// `[http]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// Listen address.
    pub addr: SocketAddr,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Deadline of an ordinary request.
    pub request_timeout_ms: u64,
    /// Reads (GET, HEAD) in flight before new ones are shed with 503.
    pub max_concurrent_reads: usize,
    /// Writes (other methods) in flight before new ones are shed with 503.
    pub max_concurrent_writes: usize,
    /// Blocking queries and event streams open at once.
    pub max_watchers: usize,
    /// Connections held at once; beyond it the oldest idle one is closed.
    pub max_connections: usize,
    /// Time a connection has to send a complete request header, from when it
    /// opens and from the end of its previous response.
    pub header_timeout_ms: u64,
    /// Wait of a blocking query that names none.
    pub default_wait_ms: u64,
    /// Longest wait a blocking query may ask for.
    pub max_wait_ms: u64,
    /// Changes buffered per event-stream subscriber before it is told it lagged.
    pub event_buffer: usize,
    /// Largest page of a service list.
    pub max_page_size: u64,
    /// Bytes of serialized list answers kept for reuse.
    pub list_cache_bytes: u64,
}

impl Default for HttpSection {
    fn default() -> Self {
        let http = HttpConfig::default();
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], janus_api_port())),
            max_body_bytes: http.max_body_bytes,
            request_timeout_ms: duration_ms(http.request_timeout),
            max_concurrent_reads: http.max_concurrent_reads,
            max_concurrent_writes: http.max_concurrent_writes,
            max_watchers: http.max_watchers,
            max_connections: http.max_connections,
            header_timeout_ms: duration_ms(http.header_timeout),
            default_wait_ms: duration_ms(http.default_wait),
            max_wait_ms: duration_ms(http.max_wait),
            event_buffer: janus_core::store::DEFAULT_EVENT_BUFFER,
            max_page_size: http.max_page_size,
            list_cache_bytes: http.list_cache_bytes,
        }
    }
}

const fn janus_api_port() -> u16 {
    8848
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `[dns]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsSection {
    /// Whether to serve DNS at all.
    pub enabled: bool,
    /// Listen address (UDP and TCP on the same port).
    pub addr: SocketAddr,
    /// The domain answered for; names outside it are refused.
    pub domain: String,
    /// TTL of answers, in seconds (0, as Consul: resolvers do not cache).
    pub default_ttl_secs: u32,
    /// TTL per namespace id; a service's `janus.dns.ttl` metadata beats both.
    pub namespace_ttl_secs: BTreeMap<String, u32>,
    /// TCP connections idle longer than this are closed.
    pub tcp_timeout_ms: u64,
    /// (Service, cluster) answer sets kept for reuse; always checked against the service revision.
    pub cache_entries: u64,
    /// Largest UDP answer in bytes, whatever EDNS payload size a client offers
    /// (512..=65535; default 1232, the DNS Flag Day 2020 value).
    pub max_udp_payload: u32,
    /// UDP answers per second to one source prefix (/24 IPv4, /56 IPv6); 0
    /// (the default) turns response rate limiting off.
    pub rrl_responses_per_second: u32,
    /// Every `rrl_slip`-th rate-limited answer is sent truncated and empty
    /// (TC=1), the others dropped; 0 drops all (0..=100, default 2).
    pub rrl_slip: u32,
}

impl Default for DnsSection {
    fn default() -> Self {
        Self {
            enabled: true,
            addr: SocketAddr::from(([127, 0, 0, 1], 8600)),
            domain: "janus.".to_owned(),
            default_ttl_secs: 0,
            namespace_ttl_secs: BTreeMap::new(),
            tcp_timeout_ms: 5000,
            cache_entries: 100_000,
            max_udp_payload: u32::from(janus_dns::DEFAULT_MAX_UDP_PAYLOAD),
            rrl_responses_per_second: 0,
            rrl_slip: 2,
        }
    }
}

impl DnsSection {
    /// `max_udp_payload` as the DNS front end takes it (`validate` keeps it
    /// within 512..=65535).
    #[must_use]
    pub fn max_udp_payload_bytes(&self) -> u16 {
        u16::try_from(self.max_udp_payload).unwrap_or(u16::MAX)
    }

    /// Response rate limiting of UDP answers, as the DNS front end takes it.
    #[must_use]
    pub fn rrl(&self) -> janus_dns::RrlConfig {
        janus_dns::RrlConfig {
            responses_per_second: self.rrl_responses_per_second,
            slip: self.rrl_slip,
            ..janus_dns::RrlConfig::default()
        }
    }
}

/// `[grpc]`: the Nacos 2.x/3.x gRPC front end (`docs/grpc-design.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcSection {
    /// Whether to serve gRPC at all.
    pub enabled: bool,
    /// Listen address; empty (the default): the HTTP address with port + 1000,
    /// where Nacos SDKs look (`127.0.0.1:9848` beside `127.0.0.1:8848`; port
    /// 0 stays 0).
    pub addr: String,
    /// Connections held at once; past it a new connection is closed at once.
    pub max_connections: usize,
    /// Largest message in either direction.
    pub max_message_bytes: usize,
    /// How long a request waits for its connection's setup once the bi-stream is open.
    pub setup_wait_ms: u64,
    /// A connection silent this long is sent a client detection...
    pub detect_idle_ms: u64,
    /// ...and is closed, its instances removed, if it does not answer within this time.
    pub detect_timeout_ms: u64,
    /// Changes within this window go to a subscriber as one push.
    pub push_coalesce_ms: u64,
    /// A push not acknowledged within this time is sent again.
    pub push_ack_timeout_ms: u64,
    /// Consecutive unacknowledged pushes after which a client is reset.
    pub max_push_timeouts: u32,
    /// Pushes in flight per connection.
    pub max_in_flight: usize,
    /// Messages queued towards one connection.
    pub outbound_queue: usize,
    /// A client that leaves its queue full this long is reset.
    pub slow_client_ms: u64,
    /// How long shutdown waits after asking clients to reconnect elsewhere.
    pub reset_grace_ms: u64,
    /// Services one connection may subscribe to.
    pub max_subscriptions_per_connection: usize,
    /// Instances in one batch register.
    pub max_batch: usize,
    /// Instance writes in progress at once; past it, writes are refused (503) at once.
    pub max_concurrent_writes: usize,
    /// A request not answered within this time gets an error.
    pub request_timeout_ms: u64,
}

impl Default for GrpcSection {
    fn default() -> Self {
        let d = janus_grpc::GrpcConfig::default();
        Self {
            enabled: true,
            addr: String::new(),
            max_connections: d.max_connections,
            max_message_bytes: d.max_message_bytes,
            setup_wait_ms: duration_ms(d.setup_wait),
            detect_idle_ms: duration_ms(d.detect_idle),
            detect_timeout_ms: duration_ms(d.detect_timeout),
            push_coalesce_ms: duration_ms(d.push_coalesce),
            push_ack_timeout_ms: duration_ms(d.push_ack_timeout),
            max_push_timeouts: d.max_push_timeouts,
            max_in_flight: d.max_in_flight,
            outbound_queue: d.outbound_queue,
            slow_client_ms: duration_ms(d.slow_client),
            reset_grace_ms: duration_ms(d.reset_grace),
            max_subscriptions_per_connection: d.max_subscriptions_per_connection,
            max_batch: d.max_batch,
            max_concurrent_writes: d.max_concurrent_writes,
            request_timeout_ms: duration_ms(d.request_timeout),
        }
    }
}

impl GrpcSection {
    /// Where to listen: `addr`, or the HTTP address `http` with port + 1000.
    ///
    /// # Errors
    /// `addr` is not an address, or the HTTP port leaves no room for + 1000.
    pub fn listen_addr(&self, http: SocketAddr) -> Result<SocketAddr, ConfigError> {
        if !self.addr.is_empty() {
            return self.addr.parse().map_err(|_| ConfigError::Invalid {
                key: "grpc.addr",
                rule: format!("'{}' is not an address such as 127.0.0.1:9848", self.addr),
            });
        }
        let port = match http.port() {
            0 => 0,
            port => port.checked_add(1000).ok_or_else(|| ConfigError::Invalid {
                key: "grpc.addr",
                rule: format!(
                    "the HTTP port {port} leaves no room for the default gRPC port (HTTP port + 1000); set grpc.addr"
                ),
            })?,
        };
        Ok(SocketAddr::new(http.ip(), port))
    }

    /// The front end's settings.
    #[must_use]
    pub fn config(&self) -> janus_grpc::GrpcConfig {
        janus_grpc::GrpcConfig {
            max_connections: self.max_connections,
            max_message_bytes: self.max_message_bytes,
            setup_wait: Duration::from_millis(self.setup_wait_ms),
            detect_idle: Duration::from_millis(self.detect_idle_ms),
            detect_timeout: Duration::from_millis(self.detect_timeout_ms),
            push_coalesce: Duration::from_millis(self.push_coalesce_ms),
            push_ack_timeout: Duration::from_millis(self.push_ack_timeout_ms),
            max_push_timeouts: self.max_push_timeouts,
            max_in_flight: self.max_in_flight,
            outbound_queue: self.outbound_queue,
            slow_client: Duration::from_millis(self.slow_client_ms),
            reset_grace: Duration::from_millis(self.reset_grace_ms),
            max_subscriptions_per_connection: self.max_subscriptions_per_connection,
            max_batch: self.max_batch,
            max_concurrent_writes: self.max_concurrent_writes,
            request_timeout: Duration::from_millis(self.request_timeout_ms),
        }
    }
}

/// `[lease]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeaseSection {
    /// Beat interval clients are told to use.
    pub beat_interval_ms: u64,
    /// Unhealthy after this long without a beat.
    pub unhealthy_after_ms: u64,
    /// Deleted after this long without a beat.
    pub delete_after_ms: u64,
    /// Shortest gap between two expiry sweeps.
    pub sweep_min_gap_ms: u64,
    /// How long a service that exists only through its ephemeral instances
    /// stays after its last instance went.
    pub empty_service_after_ms: u64,
}

impl Default for LeaseSection {
    fn default() -> Self {
        let lease = LeaseDefaults::default();
        Self {
            beat_interval_ms: lease.interval_ms,
            unhealthy_after_ms: lease.unhealthy_after_ms,
            delete_after_ms: lease.delete_after_ms,
            sweep_min_gap_ms: duration_ms(ApConfig::default().sweep_min_gap),
            empty_service_after_ms: janus_core::registry::DEFAULT_EMPTY_SERVICE_GRACE_MS,
        }
    }
}

/// `[self_preservation]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PreservationSection {
    /// Whether it may engage.
    pub enabled: bool,
    /// Engage below this fraction of expected renewals.
    pub renewal_threshold: f64,
    /// Never engage while fewer renewals than this are expected per minute.
    pub min_expected_renewals_per_min: u64,
    /// Fraction of leases that may be deleted within one eviction window (not
    /// applied while fewer than `min_expected_renewals_per_min` are expected).
    pub max_evict_fraction: f64,
    /// Length of the eviction window the cap counts deletions over, in milliseconds.
    pub eviction_window_ms: u64,
}

impl Default for PreservationSection {
    fn default() -> Self {
        let p = PreservationConfig::default();
        Self {
            enabled: p.enabled,
            renewal_threshold: p.renewal_threshold,
            min_expected_renewals_per_min: p.min_expected_per_min,
            max_evict_fraction: p.max_evict_fraction,
            eviction_window_ms: p.eviction_window_ms,
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// A `tracing` filter such as `info` or `janus_ap=debug,info`.
    pub filter: String,
}

impl Default for LogSection {
    fn default() -> Self {
        Self { filter: "info,openraft=warn".to_owned() }
    }
}

fn hickory_name_ok(domain: &str) -> Result<(), ()> {
    let labels: Vec<&str> = domain.trim_end_matches('.').split('.').collect();
    let valid = !domain.is_empty()
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    if valid { Ok(()) } else { Err(()) }
}

/// Cluster secrets that appear in Janus's own files (the compose file and
/// sample configurations, the docs, the benchmark and test harnesses): a
/// node whose cluster address is not loopback refuses them. A test keeps
/// this list and the files in step.
pub const SAMPLE_SECRETS: &[&str] = &[
    "compose-demo-secret-change-me",
    "compose-demo-secret",
    "change-me-to-a-long-random-secret",
    "janus-bench-cluster-secret",
    "process-cluster-secret-0123456789",
    "a-very-secret-cluster-secret",
    "never-logged-compose-secret",
    "correct-horse-battery",
    "0123456789abcdef",
];

/// Whether `secret` is one of [`SAMPLE_SECRETS`], or says it is a
/// placeholder.
#[must_use]
pub fn is_sample_secret(secret: &str) -> bool {
    let lower = secret.to_ascii_lowercase();
    SAMPLE_SECRETS.contains(&secret) || ["change-me", "changeme", "change_me"].iter().any(|p| lower.contains(p))
}

impl ServerConfig {
    /// Loads from an optional TOML file, the given environment (pass
    /// `std::env::vars()` in a binary, a map in tests) and `key = value`
    /// overrides (dotted keys, e.g. `http.addr`), then validates.
    ///
    /// # Errors
    /// Unreadable file, unknown key or `JANUS_` variable, wrong type, or a
    /// value out of range; each names where the setting came from.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &[(&str, String)],
    ) -> Result<Self, ConfigError> {
        let set: Vec<Set<'_>> =
            overrides.iter().map(|(key, value)| Set { flag: None, key, value: value.as_str() }).collect();
        Self::load_from(file, env, &set).map(|(config, _)| config)
    }

    /// [`Self::load`] with the command line's settings as `(flag, dotted key,
    /// value)`, e.g. `("--http-addr", "http.addr", "0.0.0.0:8848")`, so errors
    /// name the flag; also says which sources were used (for the start-up log).
    ///
    /// # Errors
    /// As [`Self::load`].
    pub fn load_with_flags(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &[(&str, &str, String)],
    ) -> Result<(Self, ConfigSources), ConfigError> {
        let set: Vec<Set<'_>> =
            flags.iter().map(|(flag, key, value)| Set { flag: Some(flag), key, value: value.as_str() }).collect();
        Self::load_from(file, env, &set)
    }

    fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        set: &[Set<'_>],
    ) -> Result<(Self, ConfigSources), ConfigError> {
        let settings = sources::Settings::of_server();
        let env = sources::check_env(env, &settings)?;
        let mut origins = sources::Origins::default();
        let mut builder = config::Config::builder();
        if let Some(file) = file {
            for key in sources::check_file(file, &settings)? {
                origins.set(&key, Origin::File(file.to_owned()));
            }
            builder = builder.add_source(config::File::from(file).format(config::FileFormat::Toml).required(true));
        }
        for (name, key) in &env.keys {
            origins.set(key, Origin::Env(name.clone()));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("JANUS")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("cluster.members")
                .with_list_parse_key("health.probe_allow")
                .with_list_parse_key("health.probe_deny")
                .source(Some(env.settings.into_iter().collect::<HashMap<_, _>>())),
        );
        for one in set {
            let origin = one.flag.map_or_else(|| Origin::Override(one.key.to_owned()), |f| Origin::Flag(f.to_owned()));
            origins.set(one.key, origin.clone());
            builder = builder
                .set_override(one.key, one.value.to_owned())
                .map_err(|error| ConfigError::Sourced { origins: vec![origin], error: Box::new(error.into()) })?;
        }
        let config: Self = builder
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(|error| origins.name_source(error.into()))?;
        config.validate().map_err(|error| origins.name_source(error))?;
        let used = ConfigSources {
            file: file.map(Path::to_owned),
            env: env.read,
            flags: set.iter().filter_map(|one| one.flag.map(str::to_owned)).collect(),
            warnings: env.warnings,
        };
        Ok((config, used))
    }

    /// Why auth is on when `auth.enabled` is unset, if it is: the first
    /// listener bound to an address other than loopback, or the cluster.
    #[must_use]
    pub fn exposure(&self) -> Option<String> {
        let exposed = |what: &str, addr: SocketAddr| {
            (!addr.ip().is_loopback()).then(|| format!("{what} {addr} is not a loopback address"))
        };
        exposed("http.addr", self.http.addr)
            .or_else(|| match self.grpc.enabled {
                true => self.grpc.listen_addr(self.http.addr).ok().and_then(|addr| exposed("the gRPC address", addr)),
                false => None,
            })
            .or_else(|| if self.dns.enabled { exposed("dns.addr", self.dns.addr) } else { None })
            .or_else(|| self.cluster.is_clustered().then(|| "a cluster is configured".to_owned()))
    }

    /// Whether requests are checked against users, tokens and grants:
    /// `auth.enabled` if set, else whether [`exposure`](Self::exposure) finds
    /// a reason.
    #[must_use]
    pub fn auth_enabled(&self) -> bool {
        self.auth.enabled.unwrap_or_else(|| self.exposure().is_some())
    }

    /// Where the bootstrap admin's token goes: `auth.bootstrap_token_file`,
    /// or `bootstrap-token` in the data directory.
    #[must_use]
    pub fn bootstrap_token_file(&self) -> PathBuf {
        self.auth
            .bootstrap_token_file
            .clone()
            .unwrap_or_else(|| self.node.data_dir.join(crate::access::BOOTSTRAP_TOKEN_FILE))
    }

    /// Checks ranges the types cannot express.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, rule: &str| Err(ConfigError::Invalid { key, rule: rule.to_owned() });
        let lease = &self.lease;
        if lease.beat_interval_ms == 0 {
            return invalid("lease.beat_interval_ms", "must be positive");
        }
        if lease.unhealthy_after_ms < lease.beat_interval_ms {
            return invalid("lease.unhealthy_after_ms", "must be at least lease.beat_interval_ms");
        }
        if lease.delete_after_ms < lease.unhealthy_after_ms {
            return invalid("lease.delete_after_ms", "must be at least lease.unhealthy_after_ms");
        }
        let p = &self.self_preservation;
        if !(p.renewal_threshold > 0.0 && p.renewal_threshold <= 1.0) {
            return invalid("self_preservation.renewal_threshold", "must be in (0, 1]");
        }
        if !(p.max_evict_fraction > 0.0 && p.max_evict_fraction <= 1.0) {
            return invalid("self_preservation.max_evict_fraction", "must be in (0, 1]");
        }
        if p.eviction_window_ms == 0 {
            return invalid("self_preservation.eviction_window_ms", "must be positive");
        }
        if !(1000..=90 * 24 * 3_600_000).contains(&self.auth.login_token_ttl_ms) {
            return invalid("auth.login_token_ttl_ms", "must be between 1000 (1 s) and 7776000000 (90 days)");
        }
        if self.grpc.enabled {
            self.grpc.listen_addr(self.http.addr)?;
        }
        let g = &self.grpc;
        let positive = [
            ("grpc.max_connections", g.max_connections == 0),
            ("grpc.detect_idle_ms", g.detect_idle_ms == 0),
            ("grpc.detect_timeout_ms", g.detect_timeout_ms == 0),
            ("grpc.push_ack_timeout_ms", g.push_ack_timeout_ms == 0),
            ("grpc.max_push_timeouts", g.max_push_timeouts == 0),
            ("grpc.max_in_flight", g.max_in_flight == 0),
            ("grpc.outbound_queue", g.outbound_queue == 0),
            ("grpc.slow_client_ms", g.slow_client_ms == 0),
            ("grpc.max_subscriptions_per_connection", g.max_subscriptions_per_connection == 0),
            ("grpc.max_batch", g.max_batch == 0),
            ("grpc.max_concurrent_writes", g.max_concurrent_writes == 0),
            ("grpc.request_timeout_ms", g.request_timeout_ms == 0),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, zero)| *zero) {
            return invalid(key, "must be positive");
        }
        if g.max_message_bytes < 64 * 1024 {
            return invalid("grpc.max_message_bytes", "must be at least 65536 bytes");
        }
        if let Err(error) = tracing_subscriber::EnvFilter::try_new(&self.log.filter) {
            return Err(ConfigError::Invalid { key: "log.filter", rule: format!("is not a tracing filter: {error}") });
        }
        let http = &self.http;
        if http.max_concurrent_reads == 0
            || http.max_concurrent_writes == 0
            || http.max_watchers == 0
            || http.max_connections == 0
            || http.header_timeout_ms == 0
            || http.event_buffer == 0
        {
            return invalid(
                "http",
                "max_concurrent_reads, max_concurrent_writes, max_watchers, max_connections, header_timeout_ms and \
                 event_buffer must be positive",
            );
        }
        if http.max_body_bytes < 1024 {
            return invalid("http.max_body_bytes", "must be at least 1024");
        }
        if http.default_wait_ms > http.max_wait_ms {
            return invalid("http.default_wait_ms", "must not exceed http.max_wait_ms");
        }
        let raft = &self.raft;
        if raft.heartbeat_ms == 0 || raft.election_timeout_min_ms < 3 * raft.heartbeat_ms {
            return invalid(
                "raft.election_timeout_min_ms",
                "must be at least 3 x raft.heartbeat_ms (and the heartbeat positive)",
            );
        }
        if raft.election_timeout_max_ms <= raft.election_timeout_min_ms {
            return invalid("raft.election_timeout_max_ms", "must exceed raft.election_timeout_min_ms");
        }
        if raft.snapshot_after_logs == 0 {
            return invalid("raft.snapshot_after_logs", "must be positive");
        }
        if http.max_page_size == 0 {
            return invalid("http.max_page_size", "must be positive");
        }
        let members = self.cluster.member_map()?;
        if !members.is_empty() && !self.cluster.join && !members.contains_key(&self.node.id) {
            return invalid("cluster.members", "must include this node (node.id)");
        }
        if self.cluster.is_clustered() {
            if !self.cluster.secret.is_empty() {
                self.cluster.check_secret("cluster.secret", &self.cluster.secret)?;
            } else if self.cluster.secret_file.is_none() {
                return invalid(
                    "cluster.secret",
                    "is required with cluster.members or cluster.join (or cluster.secret_file): at least 16 visible \
                     ASCII characters",
                );
            }
        }
        if self.cluster.runtime_threads == 0 || self.cluster.runtime_threads > 64 {
            return invalid("cluster.runtime_threads", "must be between 1 and 64");
        }
        if self.cluster.max_message_bytes < 1 << 20 {
            return invalid("cluster.max_message_bytes", "must be at least 1 MiB");
        }
        if let Err((field, rule)) = self.distro.validate() {
            return Err(ConfigError::Invalid { key: "distro", rule: format!("{field} {rule}") });
        }
        let health = &self.health;
        if health.interval_ms == 0
            || health.timeout_ms == 0
            || health.max_in_flight == 0
            || health.rise == 0
            || health.fall == 0
        {
            return invalid("health", "interval_ms, timeout_ms, max_in_flight, rise and fall must be positive");
        }
        if let Err(error) = ProbePolicy::parse(&health.probe_allow, &health.probe_deny) {
            let key = match error.list {
                PolicyList::Allow => "health.probe_allow",
                PolicyList::Deny => "health.probe_deny",
            };
            return Err(ConfigError::Invalid {
                key,
                rule: format!("{:?} is not a network such as 10.0.0.0/8 or fd00::/8, nor an address", error.value),
            });
        }
        if hickory_name_ok(&self.dns.domain).is_err() {
            return invalid("dns.domain", "must be a DNS name such as janus. or registry.example.");
        }
        if !(512..=65_535).contains(&self.dns.max_udp_payload) {
            return invalid("dns.max_udp_payload", "must be between 512 and 65535 bytes");
        }
        if self.dns.rrl_slip > 100 {
            return invalid("dns.rrl_slip", "must be between 0 and 100");
        }
        Ok(())
    }

    /// Settings of the registry state machine.
    #[must_use]
    pub fn registry_config(&self) -> RegistryConfig {
        RegistryConfig {
            lease: LeaseDefaults {
                interval_ms: self.lease.beat_interval_ms,
                unhealthy_after_ms: self.lease.unhealthy_after_ms,
                delete_after_ms: self.lease.delete_after_ms,
            },
            preservation: PreservationConfig {
                enabled: self.self_preservation.enabled,
                renewal_threshold: self.self_preservation.renewal_threshold,
                min_expected_per_min: self.self_preservation.min_expected_renewals_per_min,
                max_evict_fraction: self.self_preservation.max_evict_fraction,
                eviction_window_ms: self.self_preservation.eviction_window_ms,
            },
            replication: self
                .cluster
                .is_clustered()
                .then_some(ReplicationConfig { node: self.node.id, tombstone_ttl_ms: self.distro.tombstone_ttl_ms }),
            empty_service_grace_ms: self.lease.empty_service_after_ms,
        }
    }

    /// Where the AP engine finds its peers, in a cluster: the members of
    /// `cluster.members` (also with `cluster.join`, where Raft ignores them).
    ///
    /// # Errors
    /// `cluster.members` does not parse.
    pub fn ap_cluster(&self) -> Result<Option<ApCluster>, ConfigError> {
        if !self.cluster.is_clustered() {
            return Ok(None);
        }
        let mut members = self.cluster.member_map()?;
        members.entry(self.node.id).or_insert_with(|| self.cluster.addr.to_string());
        Ok(Some(ApCluster { node: self.node.id, members, distro: self.distro, wait_for_group: self.cluster.join }))
    }

    /// Settings of the CP engine: its data lives in `<node.data_dir>/raft`.
    ///
    /// # Errors
    /// `cluster.members` does not parse.
    pub fn cp_config(&self) -> Result<janus_raft::CpConfig, ConfigError> {
        Ok(janus_raft::CpConfig {
            node_id: self.node.id,
            dir: self.node.data_dir.join("raft"),
            heartbeat: Duration::from_millis(self.raft.heartbeat_ms),
            election_timeout: (
                Duration::from_millis(self.raft.election_timeout_min_ms),
                Duration::from_millis(self.raft.election_timeout_max_ms),
            ),
            snapshot_after_logs: self.raft.snapshot_after_logs,
            logs_kept_after_snapshot: self.raft.logs_kept_after_snapshot,
            members: self.cluster.member_map()?,
            join: self.cluster.join,
        })
    }

    /// Settings of the health checker.
    #[must_use]
    pub fn health_config(&self) -> HealthConfig {
        HealthConfig {
            enabled: self.health.enabled,
            interval: Duration::from_millis(self.health.interval_ms),
            timeout: Duration::from_millis(self.health.timeout_ms),
            rise: self.health.rise,
            fall: self.health.fall,
            max_in_flight: self.health.max_in_flight,
            report_delay: Duration::from_millis(self.health.report_delay_ms),
            // `validate` refuses bad lists at load; a config built by hand with
            // one probes nothing rather than more than it says.
            probe_policy: ProbePolicy::parse(&self.health.probe_allow, &self.health.probe_deny)
                .unwrap_or_else(|_| ProbePolicy::refuse_all()),
            ..HealthConfig::default()
        }
    }

    /// Settings of the AP engine.
    #[must_use]
    pub fn ap_config(&self) -> ApConfig {
        ApConfig { sweep_min_gap: Duration::from_millis(self.lease.sweep_min_gap_ms) }
    }

    /// Settings of the HTTP front end.
    #[must_use]
    pub fn http_config(&self) -> HttpConfig {
        HttpConfig {
            max_body_bytes: self.http.max_body_bytes,
            request_timeout: Duration::from_millis(self.http.request_timeout_ms),
            max_concurrent_reads: self.http.max_concurrent_reads,
            max_concurrent_writes: self.http.max_concurrent_writes,
            max_watchers: self.http.max_watchers,
            max_connections: self.http.max_connections,
            header_timeout: Duration::from_millis(self.http.header_timeout_ms),
            default_wait: Duration::from_millis(self.http.default_wait_ms),
            max_wait: Duration::from_millis(self.http.max_wait_ms),
            max_page_size: self.http.max_page_size,
            list_cache_bytes: self.http.list_cache_bytes,
            eureka_namespace: self.eureka.namespace.clone(),
            eureka_group: self.eureka.group.clone(),
            auth_enabled: self.auth_enabled(),
            metrics_open: self.auth.metrics_open,
            login_token_ttl: Duration::from_millis(self.auth.login_token_ttl_ms),
        }
    }
}
