//! [`DistroConfig`]: the protocol's timing constants and bounds, with their
//! defaults. `docs/ap-protocol.md` explains each choice.

/// Timing and bounds of the AP protocol; the server's `[distro]` settings
/// section (every field optional there, defaults below).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DistroConfig {
    /// How often every peer is probed.
    pub probe_interval_ms: u64,
    /// A probe not answered within this fails.
    pub probe_timeout_ms: u64,
    /// Failed probes in a row before a peer is `Down` (its share moves).
    pub down_after_failures: u32,
    /// Changes to one instance within this window (from its first change) go out as one record.
    pub sync_delay_ms: u64,
    /// A sync not acknowledged within this fails and is retried.
    pub sync_timeout_ms: u64,
    /// Wait after a failed sync before retrying that peer.
    pub sync_retry_ms: u64,
    /// Records per sync message.
    pub sync_batch: usize,
    /// Instances queued per peer before the queue is dropped (the verify round repairs).
    pub max_queued_per_peer: usize,
    /// How often an owner sends its digest to every peer.
    pub verify_interval_ms: u64,
    /// A verify or repair not answered within this fails (the next round retries).
    pub verify_timeout_ms: u64,
    /// A replica whose owner has not vouched for it this long is dropped.
    pub replica_grace_ms: u64,
    /// How long deletions are remembered.
    pub tombstone_ttl_ms: u64,
    /// A write forwarded to its owner that is not answered within this is served here instead.
    pub forward_timeout_ms: u64,
    /// Writes forwarded to one owner in one message, at most.
    pub forward_batch: usize,
    /// Instances per snapshot page.
    pub snapshot_page: u32,
    /// A snapshot page not answered within this fails (the next peer is tried).
    pub snapshot_timeout_ms: u64,
    /// Connection-bound instances (Nacos gRPC) of a node that left the ring
    /// are removed after this long, unless their clients registered them
    /// again elsewhere first.
    pub bound_orphan_grace_ms: u64,
}

impl Default for DistroConfig {
    fn default() -> Self {
        Self {
            probe_interval_ms: 1000,
            probe_timeout_ms: 500,
            down_after_failures: 3,
            sync_delay_ms: 100,
            sync_timeout_ms: 2000,
            sync_retry_ms: 1000,
            sync_batch: 2000,
            max_queued_per_peer: 500_000,
            verify_interval_ms: 5000,
            verify_timeout_ms: 3000,
            replica_grace_ms: 15_000,
            tombstone_ttl_ms: 60_000,
            forward_timeout_ms: 500,
            forward_batch: 256,
            snapshot_page: 20_000,
            snapshot_timeout_ms: 30_000,
            bound_orphan_grace_ms: 30_000,
        }
    }
}

impl DistroConfig {
    /// Checks ranges the types cannot express; the error names the field.
    ///
    /// # Errors
    /// A zero where a positive value is needed, a probe timeout longer than
    /// the probe interval, or a replica grace shorter than a verify interval.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        let positive = [
            ("probe_interval_ms", self.probe_interval_ms),
            ("probe_timeout_ms", self.probe_timeout_ms),
            ("sync_timeout_ms", self.sync_timeout_ms),
            ("verify_interval_ms", self.verify_interval_ms),
            ("verify_timeout_ms", self.verify_timeout_ms),
            ("forward_timeout_ms", self.forward_timeout_ms),
            ("snapshot_timeout_ms", self.snapshot_timeout_ms),
            ("sync_batch", self.sync_batch as u64),
            ("max_queued_per_peer", self.max_queued_per_peer as u64),
            ("forward_batch", self.forward_batch as u64),
            ("snapshot_page", u64::from(self.snapshot_page)),
            ("down_after_failures", u64::from(self.down_after_failures)),
        ];
        if let Some((field, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err((field, "must be positive"));
        }
        if self.probe_timeout_ms > self.probe_interval_ms {
            return Err(("probe_timeout_ms", "must not exceed probe_interval_ms"));
        }
        if self.replica_grace_ms < self.verify_interval_ms {
            return Err(("replica_grace_ms", "must be at least verify_interval_ms"));
        }
        Ok(())
    }
}
