//! [`Ring`]: which live member owns an ephemeral instance, by rendezvous
//! (highest random weight) hashing.
//!
//! Every member scores every instance with a hash of (member id, instance
//! hash) and the highest score owns it. When a member leaves the ring only
//! the instances it owned move (each to the member with the next highest
//! score), about 1/N of them; when it comes back, exactly those move back.

use janus_core::NodeId;

/// The members that own instances now, and the epoch naming this set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ring {
    members: Vec<NodeId>,
    epoch: u64,
}

impl Ring {
    /// A ring of `members` (order and duplicates do not matter).
    #[must_use]
    pub fn new(members: impl IntoIterator<Item = NodeId>) -> Self {
        let mut members: Vec<NodeId> = members.into_iter().collect();
        members.sort_unstable();
        members.dedup();
        let bytes: Vec<u8> = members.iter().flat_map(|m| m.to_le_bytes()).collect();
        let epoch = xxhash_rust::xxh3::xxh3_64(&bytes);
        Self { members, epoch }
    }

    /// The members, in id order.
    #[must_use]
    pub fn members(&self) -> &[NodeId] {
        &self.members
    }

    /// Names this set of members: two nodes with the same epoch agree on every owner.
    #[must_use]
    pub const fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Whether `node` is in the ring.
    #[must_use]
    pub fn contains(&self, node: NodeId) -> bool {
        self.members.binary_search(&node).is_ok()
    }

    /// The owner of the instance with [`janus_core::replica::record_hash`] `hash`;
    /// `None` only for an empty ring.
    #[must_use]
    pub fn owner(&self, hash: u64) -> Option<NodeId> {
        self.members.iter().copied().max_by_key(|member| (score(*member, hash), *member))
    }
}

/// The weight of `member` for an instance: a hash of both.
fn score(member: NodeId, hash: u64) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(&hash.to_le_bytes(), member)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owners(ring: &Ring, keys: u64) -> Vec<NodeId> {
        (0..keys).map(|k| ring.owner(xxhash_rust::xxh3::xxh3_64(&k.to_le_bytes())).unwrap()).collect()
    }

    #[test]
    fn shares_are_even_and_the_epoch_names_the_set() {
        let ring = Ring::new([3, 1, 2, 2]);
        assert_eq!(ring.members(), [1, 2, 3]);
        assert_eq!(ring.epoch(), Ring::new([1, 2, 3]).epoch());
        assert_ne!(ring.epoch(), Ring::new([1, 2]).epoch());
        let owned = owners(&ring, 30_000);
        for member in [1, 2, 3] {
            let share = owned.iter().filter(|o| **o == member).count();
            assert!((9_000..11_000).contains(&share), "member {member} owns {share} of 30000");
        }
        assert_eq!(Ring::new([]).owner(7), None);
    }

    #[test]
    fn losing_one_of_three_moves_only_its_share() {
        let before = owners(&Ring::new([1, 2, 3]), 30_000);
        let after = owners(&Ring::new([1, 3]), 30_000);
        let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
        assert!(before.iter().zip(&after).all(|(b, a)| b == a || *b == 2), "only member 2's instances move");
        assert!(moved * 100 <= 40 * 30_000, "{moved} of 30000 moved");
        // Coming back moves exactly those back.
        assert_eq!(owners(&Ring::new([1, 2, 3]), 30_000), before);
    }
}
