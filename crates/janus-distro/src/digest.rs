//! Verify (anti-entropy) digests: what an owner holds, as one checksum per
//! bucket, and which buckets of its replicas a peer last found current.
//!
//! An instance falls in bucket `hash % BUCKETS`; a bucket's checksum is the
//! wrapping sum of a hash of (instance hash, version) over the instances in
//! it, so it does not depend on the order instances are visited in, and two
//! nodes holding the same instances at the same versions agree on it.
//! Comparing two digests names the buckets that differ; only those are
//! repaired.

use std::collections::HashMap;

use janus_core::{Millis, NodeId, Version};

/// Buckets per digest: 1,024 checksums (8 KiB) per verify message; with a
/// million instances over three owners, a repaired bucket holds ~325.
pub const BUCKETS: usize = 1024;

/// The bucket of an instance.
#[must_use]
pub fn bucket(hash: u64) -> usize {
    // Below BUCKETS, so it fits.
    usize::try_from(hash % BUCKETS as u64).unwrap_or(0)
}

/// What one instance adds to its bucket's checksum.
#[must_use]
pub fn contribution(hash: u64, version: Version) -> u64 {
    let mut bytes = [0u8; 24];
    bytes[..8].copy_from_slice(&hash.to_le_bytes());
    bytes[8..16].copy_from_slice(&version.counter.to_le_bytes());
    bytes[16..].copy_from_slice(&version.node.to_le_bytes());
    xxhash_rust::xxh3::xxh3_64(&bytes)
}

/// Checksums by bucket, for each owner, built in one pass over the registry.
#[derive(Debug, Clone, Default)]
pub struct Digests {
    by_owner: HashMap<NodeId, Vec<u64>>,
}

impl Digests {
    /// Adds an instance owned by `owner`.
    pub fn add(&mut self, owner: NodeId, hash: u64, version: Version) {
        let sums = self.by_owner.entry(owner).or_insert_with(|| vec![0; BUCKETS]);
        let slot = &mut sums[bucket(hash)];
        *slot = slot.wrapping_add(contribution(hash, version));
    }

    /// The checksums of what `owner` owns (all zero if nothing).
    #[must_use]
    pub fn of(&self, owner: NodeId) -> Vec<u64> {
        self.by_owner.get(&owner).cloned().unwrap_or_else(|| vec![0; BUCKETS])
    }
}

/// The buckets whose checksums differ (a digest of the wrong length differs everywhere).
#[must_use]
pub fn mismatched(mine: &[u64], theirs: &[u64]) -> Vec<u16> {
    if mine.len() != theirs.len() {
        return (0..BUCKETS).filter_map(|b| u16::try_from(b).ok()).collect();
    }
    mine.iter()
        .zip(theirs)
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .filter_map(|(bucket, _)| u16::try_from(bucket).ok())
        .collect()
}

/// When each owner's buckets were last found current here. A replica is
/// vouched for as of the later of its own vouch time (set when its record
/// arrives or a repair lists it) and its bucket's.
#[derive(Debug, Clone, Default)]
pub struct VouchTable {
    matched: HashMap<NodeId, Vec<Millis>>,
}

impl VouchTable {
    /// Every bucket of `owner` except `mismatched` matched at `now`.
    pub fn matched(&mut self, owner: NodeId, mismatched: &[u16], now: Millis) {
        let times = self.matched.entry(owner).or_insert_with(|| vec![Millis::default(); BUCKETS]);
        let mut skip = vec![false; BUCKETS];
        for bucket in mismatched {
            if let Some(s) = skip.get_mut(usize::from(*bucket)) {
                *s = true;
            }
        }
        for (time, skipped) in times.iter_mut().zip(skip) {
            if !skipped {
                *time = now;
            }
        }
    }

    /// When `owner` last vouched for the bucket of `hash` as a whole.
    #[must_use]
    pub fn bucket_vouched(&self, owner: NodeId, hash: u64) -> Millis {
        self.matched.get(&owner).map_or_else(Millis::default, |times| times[bucket(hash)])
    }

    /// Whether a replica owned by `owner` went unvouched for longer than `grace`.
    #[must_use]
    pub fn expired(&self, owner: NodeId, hash: u64, record_vouched: Millis, now: Millis, grace_ms: u64) -> bool {
        let vouched = record_vouched.max(self.bucket_vouched(owner, hash));
        now.since(vouched) > grace_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(counter: u64) -> Version {
        Version { counter, node: 1 }
    }

    #[test]
    fn equal_sets_give_equal_digests_in_any_order_and_a_difference_names_its_bucket() {
        let mut a = Digests::default();
        let mut b = Digests::default();
        for hash in 0..5000u64 {
            a.add(1, hash * 7919, v(hash));
        }
        for hash in (0..5000u64).rev() {
            b.add(1, hash * 7919, v(hash));
        }
        assert!(mismatched(&a.of(1), &b.of(1)).is_empty());
        b.add(1, 123_456, v(1));
        assert_eq!(mismatched(&a.of(1), &b.of(1)), [u16::try_from(bucket(123_456)).unwrap()]);
        let mut c = Digests::default();
        for hash in 0..5000u64 {
            c.add(1, hash * 7919, v(if hash == 42 { 1000 } else { hash }));
        }
        assert_eq!(mismatched(&a.of(1), &c.of(1)).len(), 1, "a newer version of one instance differs in one bucket");
        assert_eq!(mismatched(&a.of(1), &[0; 3]).len(), BUCKETS);
        assert_eq!(a.of(9), vec![0; BUCKETS]);
    }

    #[test]
    fn replicas_expire_when_neither_they_nor_their_bucket_were_vouched_for() {
        let mut table = VouchTable::default();
        assert!(table.expired(2, 5, Millis(0), Millis(20_000), 15_000));
        assert!(!table.expired(2, 5, Millis(10_000), Millis(20_000), 15_000), "the record itself was vouched for");
        table.matched(2, &[u16::try_from(bucket(6)).unwrap()], Millis(19_000));
        assert!(!table.expired(2, 5, Millis(0), Millis(20_000), 15_000), "its bucket matched");
        assert!(table.expired(2, 6, Millis(0), Millis(20_000), 15_000), "its bucket did not");
    }
}
