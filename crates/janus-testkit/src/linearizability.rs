//! Is a concurrent history linearizable?
//!
//! A history is a list of operations, each with the time it was called, the
//! time it returned and what it returned. It is linearizable when the
//! operations can be put in one order that (1) keeps every operation that
//! returned before another was called ahead of it, and (2) gives every
//! operation its recorded result when run one by one on the sequential
//! [`Model`]. An operation whose outcome is unknown (it timed out) may take
//! effect at any point after its call, or never.
//!
//! The search is Wing and Gong's: repeatedly pick an operation that could be
//! first (no remaining operation returned before it was called), apply it,
//! recurse, and back off on a mismatch. Lowe's memoization skips a (set of
//! done operations, model state) pair that already failed.

use std::collections::HashSet;
use std::hash::Hash;

/// A sequential specification.
pub trait Model: Clone + Eq + Hash {
    /// An operation.
    type Op;
    /// What an operation returns.
    type Ret: PartialEq + std::fmt::Debug;

    /// Runs `op` on a copy of the state: the next state and the result.
    fn step(&self, op: &Self::Op) -> (Self, Self::Ret);
}

/// One operation of a history.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation<Op, Ret> {
    /// When it was called.
    pub call: u64,
    /// When it returned; `None` if its outcome is unknown.
    pub ret: Option<u64>,
    /// The operation.
    pub op: Op,
    /// What it returned; `None` if its outcome is unknown.
    pub result: Option<Ret>,
}

/// Why a history is not linearizable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotLinearizable {
    /// The longest prefix of operations (indexes into the history) that could be ordered.
    pub longest_prefix: Vec<usize>,
}

impl std::fmt::Display for NotLinearizable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not linearizable; the longest order found was {:?}", self.longest_prefix)
    }
}

impl std::error::Error for NotLinearizable {}

/// Checks `history` against `initial`; on success returns one valid order
/// (indexes into `history`; operations with unknown outcome that never took
/// effect are left out).
///
/// # Errors
/// No order exists.
pub fn check<M: Model>(initial: &M, history: &[Operation<M::Op, M::Ret>]) -> Result<Vec<usize>, NotLinearizable> {
    let mut search = Search { history, failed: HashSet::new(), order: Vec::new(), longest: Vec::new() };
    let mut done = vec![false; history.len()];
    if search.run(initial, &mut done) {
        Ok(search.order)
    } else {
        Err(NotLinearizable { longest_prefix: search.longest })
    }
}

struct Search<'h, M: Model> {
    history: &'h [Operation<M::Op, M::Ret>],
    failed: HashSet<(Vec<bool>, M)>,
    order: Vec<usize>,
    longest: Vec<usize>,
}

impl<M: Model> Search<'_, M> {
    fn run(&mut self, state: &M, done: &mut Vec<bool>) -> bool {
        // Finished when only operations that may never have happened remain.
        let pending: Vec<usize> = (0..self.history.len()).filter(|i| !done[*i]).collect();
        if pending.iter().all(|i| self.history[*i].result.is_none()) {
            return true;
        }
        if self.failed.contains(&(done.clone(), state.clone())) {
            return false;
        }
        // An operation can go next if nothing pending returned before it was called.
        let first_return = pending.iter().filter_map(|i| self.history[*i].ret).min().unwrap_or(u64::MAX);
        for &candidate in pending.iter().filter(|i| self.history[**i].call < first_return) {
            let operation = &self.history[candidate];
            let (next, result) = state.step(&operation.op);
            if operation.result.as_ref().is_some_and(|expected| *expected != result) {
                continue;
            }
            done[candidate] = true;
            self.order.push(candidate);
            if self.order.len() > self.longest.len() {
                self.longest.clone_from(&self.order);
            }
            if self.run(&next, done) {
                return true;
            }
            self.order.pop();
            done[candidate] = false;
        }
        self.failed.insert((done.clone(), state.clone()));
        false
    }
}

/// A model of one registry service: the set of registered instance ports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct InstanceSet(pub std::collections::BTreeSet<u16>);

/// An operation on [`InstanceSet`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetOp {
    /// Register (idempotent).
    Register(u16),
    /// Deregister (says whether the instance was there).
    Deregister(u16),
    /// Read every instance.
    Read,
}

/// What a [`SetOp`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetRet {
    /// A register was acknowledged.
    Ok,
    /// A deregister was acknowledged: whether the instance was there.
    Removed(bool),
    /// The instances a read saw.
    Seen(std::collections::BTreeSet<u16>),
}

impl Model for InstanceSet {
    type Op = SetOp;
    type Ret = SetRet;

    fn step(&self, op: &SetOp) -> (Self, SetRet) {
        let mut next = self.clone();
        match op {
            SetOp::Register(port) => {
                next.0.insert(*port);
                (next, SetRet::Ok)
            }
            SetOp::Deregister(port) => {
                let was_there = next.0.remove(port);
                (next, SetRet::Removed(was_there))
            }
            SetOp::Read => (next, SetRet::Seen(self.0.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn op(call: u64, ret: u64, op: SetOp, result: SetRet) -> Operation<SetOp, SetRet> {
        Operation { call, ret: Some(ret), op, result: Some(result) }
    }

    fn seen(ports: &[u16]) -> SetRet {
        SetRet::Seen(ports.iter().copied().collect::<BTreeSet<u16>>())
    }

    #[test]
    fn overlapping_operations_may_take_effect_in_either_order() {
        // The read overlaps the register: seeing it or not are both fine.
        for read in [seen(&[]), seen(&[1])] {
            let history = [op(0, 10, SetOp::Register(1), SetRet::Ok), op(5, 15, SetOp::Read, read)];
            assert!(check(&InstanceSet::default(), &history).is_ok());
        }
    }

    #[test]
    fn a_stale_read_is_caught() {
        // The register returned at 10; a read called at 20 must see it.
        let history = [op(0, 10, SetOp::Register(1), SetRet::Ok), op(20, 30, SetOp::Read, seen(&[]))];
        let error = check(&InstanceSet::default(), &history).unwrap_err();
        assert_eq!(error.longest_prefix, [0]);
    }

    #[test]
    fn reads_may_not_go_back_in_time() {
        // Two sequential reads around a concurrent deregister: once a read saw
        // the instance gone, a later read cannot see it again.
        let history = [
            op(0, 5, SetOp::Register(7), SetRet::Ok),
            op(10, 100, SetOp::Deregister(7), SetRet::Removed(true)),
            op(20, 30, SetOp::Read, seen(&[])),
            op(40, 50, SetOp::Read, seen(&[7])),
        ];
        assert!(check(&InstanceSet::default(), &history).is_err());
        let mut fixed = history.clone();
        fixed[3].result = Some(seen(&[]));
        assert_eq!(check(&InstanceSet::default(), &fixed).unwrap(), [0, 1, 2, 3]);
    }

    #[test]
    fn an_unknown_outcome_may_or_may_not_have_happened() {
        let timed_out = Operation { call: 0, ret: None, op: SetOp::Register(3), result: None };
        for read in [seen(&[]), seen(&[3])] {
            let history = [timed_out.clone(), op(10, 20, SetOp::Read, read)];
            assert!(check(&InstanceSet::default(), &history).is_ok());
        }
        // But not in a way no order explains: seen, then gone without a deregister.
        let history = [timed_out, op(10, 20, SetOp::Read, seen(&[3])), op(30, 40, SetOp::Read, seen(&[]))];
        assert!(check(&InstanceSet::default(), &history).is_err());
    }

    #[test]
    fn many_concurrent_clients_finish_quickly() {
        // 8 clients × 25 overlapping register/read pairs: the memo keeps this small.
        let mut history = Vec::new();
        for client in 0..8u16 {
            for round in 0..25u16 {
                let t = u64::from(round) * 100;
                let port = client * 100 + round;
                history.push(op(t, t + 50, SetOp::Register(port), SetRet::Ok));
            }
        }
        let all: Vec<u16> = history.iter().map(|o| if let SetOp::Register(p) = o.op { p } else { 0 }).collect();
        history.push(op(10_000, 10_010, SetOp::Read, seen(&all)));
        assert!(check(&InstanceSet::default(), &history).is_ok());
    }
}
