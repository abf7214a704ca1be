//! [`DistroConfig`]: the protocol's timing constants and bounds, with their
//! defaults. `docs/ap-protocol.md` explains each choice.

/// Timing and bounds of the AP protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
        }
    }
}
