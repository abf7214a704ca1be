//! Server-side health checks of persistent instances (the instances of `cp`
//! namespaces), with Nacos's semantics:
//!
//! - each cluster of a service says how its instances are checked: a TCP
//!   connect (the default), an HTTP GET that must answer 200, or `none`
//!   (health is then set by hand);
//! - every instance is probed on a randomized interval with a short timeout;
//! - its health flips only after `rise` (resp. `fall`) consecutive results
//!   against its current state;
//! - each instance is checked by exactly one node: the caller says which
//!   instances are this node's (in a cluster, the AP engine's owner of the
//!   instance's hash);
//! - flips are batched into one write a short while apart, handed to a
//!   [`HealthSink`] (the server writes them through Raft);
//! - only addresses the [`ProbePolicy`] allows are probed (by default all but
//!   link-local and cloud metadata addresses); an instance at a refused
//!   address is reported unhealthy at once and counted in [`HealthStats`].
//!
//! # Layout
//! - [`HealthChecker`] (`checker`): the task that schedules probes and batches verdicts.
//! - [`Prober`] (`probe`): the TCP and HTTP probes ([`NetProber`]).
//! - [`ProbePolicy`] (`policy`): which addresses may be probed.
//! - [`Streak`]: the consecutive-results rule, without I/O.

mod checker;
mod policy;
mod probe;
mod streak;

use std::time::Duration;

use futures_util::future::BoxFuture;
use janus_core::registry::HealthReport;

pub use checker::{HealthChecker, HealthStats, MAX_REFUSED_LISTED};
pub use policy::{DEFAULT_PROBE_ALLOW, DEFAULT_PROBE_DENY, PolicyList, ProbePolicy, ProbePolicyError, ProbeRule};
pub use probe::{NetProber, Prober};
pub use streak::Streak;

/// Settings of the checker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthConfig {
    /// Whether this node checks anything.
    pub enabled: bool,
    /// Mean time between two probes of one instance (each is drawn from ±25 %).
    pub interval: Duration,
    /// A probe not answered within this fails.
    pub timeout: Duration,
    /// Successes in a row that make an unhealthy instance healthy.
    pub rise: u32,
    /// Failures in a row that make a healthy instance unhealthy.
    pub fall: u32,
    /// Probes running at once, at most.
    pub max_in_flight: usize,
    /// Flips found within this window go out as one write.
    pub report_delay: Duration,
    /// How often the list of instances to check is read again.
    pub rescan: Duration,
    /// Which addresses may be probed; instances elsewhere are reported
    /// unhealthy without a probe.
    pub probe_policy: ProbePolicy,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Duration::from_secs(5),
            timeout: Duration::from_millis(500),
            rise: 3,
            fall: 3,
            max_in_flight: 256,
            report_delay: Duration::from_millis(500),
            rescan: Duration::from_secs(2),
            probe_policy: ProbePolicy::default(),
        }
    }
}

/// Where verdicts go (the server writes them through Raft as one command).
pub trait HealthSink: Send + Sync + 'static {
    /// Records a batch of verdicts.
    ///
    /// # Errors
    /// The batch was not recorded; the checker logs it and finds the
    /// verdicts again at the next probes.
    fn report(&self, reports: Vec<HealthReport>) -> BoxFuture<'static, Result<(), SinkError>>;
}

/// Why a [`HealthSink`] did not record a batch of verdicts.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SinkError {
    /// The registry refused the batch (the command's own outcome).
    #[error(transparent)]
    Refused(#[from] janus_core::RegistryError),
    /// The batch was not written at all, e.g. the Raft write found no
    /// quorum; the string says why.
    #[error("{0}")]
    NotWritten(String),
}

/// Which instances this node checks, by their stable hash.
pub type Responsibility = std::sync::Arc<dyn Fn(u64) -> bool + Send + Sync>;
