//! [`SpreadCounter`]: a count that threads change at once without sharing
//! a cache line, for the registry's totals (instances, expected renewals)
//! that writes to different services under the shared lock all change.
//!
//! Each thread adds to a cell of its own (threads are given cells round
//! robin); a read sums the cells. An increment and its decrement may land in
//! different cells: only the sum means anything.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};

/// Cells per counter.
pub(crate) const CELLS: usize = 16;

/// One cell, alone on its cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Cell(AtomicI64);

/// A count spread over per-thread cells (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct SpreadCounter {
    cells: [Cell; CELLS],
}

/// The cell index of the calling thread (below [`CELLS`]).
pub(crate) fn cell() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static CELL: usize = NEXT.fetch_add(1, Ordering::Relaxed) % CELLS;
    }
    CELL.with(|cell| *cell)
}

impl SpreadCounter {
    /// Adds `n`.
    pub(crate) fn add(&self, n: u64) {
        self.cells[cell()].0.fetch_add(signed(n), Ordering::Relaxed);
    }

    /// Takes `n` away.
    pub(crate) fn sub(&self, n: u64) {
        self.cells[cell()].0.fetch_sub(signed(n), Ordering::Relaxed);
    }

    /// The count (never below zero).
    #[must_use]
    pub(crate) fn get(&self) -> u64 {
        let sum = self.cells.iter().fold(0i64, |sum, cell| sum.wrapping_add(cell.0.load(Ordering::Relaxed)));
        u64::try_from(sum).unwrap_or(0)
    }
}

/// One cell of a [`SpreadMax`], alone on its cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
struct MaxCell(AtomicU64);

/// A value that threads raise at once without sharing a cache line (a
/// namespace's revision, which every write to any of its services raises):
/// each thread raises a cell of its own, a read takes the largest. Raises
/// and reads are sequentially consistent (see `crate::watch`).
#[derive(Debug, Default)]
pub(crate) struct SpreadMax {
    cells: [MaxCell; CELLS],
}

impl SpreadMax {
    /// A value starting at `value`.
    pub(crate) fn new(value: u64) -> Self {
        let max = Self::default();
        max.cells[0].0.store(value, Ordering::SeqCst);
        max
    }

    /// Raises the value to at least `value`.
    pub(crate) fn raise(&self, value: u64) {
        self.cells[cell()].0.fetch_max(value, Ordering::SeqCst);
    }

    /// [`Self::raise`] with `&mut` access (no other thread can be raising).
    pub(crate) fn raise_mut(&mut self, value: u64) {
        let first = self.cells[0].0.get_mut();
        *first = (*first).max(value);
    }

    /// The value: the largest raise so far.
    pub(crate) fn get(&self) -> u64 {
        self.cells.iter().map(|cell| cell.0.load(Ordering::SeqCst)).max().unwrap_or(0)
    }
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use super::*;

    #[test]
    fn the_sum_counts_what_threads_added_and_took_away() {
        let counter = Arc::new(SpreadCounter::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let counter = counter.clone();
                std::thread::spawn(move || {
                    for _ in 0..1_000 {
                        counter.add(3);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(counter.get(), 12_000);
        // Taken away on another thread (another cell) than it was added on.
        counter.sub(2_000);
        assert_eq!(counter.get(), 10_000);
        counter.sub(20_000);
        assert_eq!(counter.get(), 0, "never below zero");
    }

    #[test]
    fn a_spread_max_reads_the_largest_raise_of_any_thread() {
        let mut max = SpreadMax::new(5);
        assert_eq!(max.get(), 5);
        max.raise(3);
        assert_eq!(max.get(), 5, "never lowered");
        let max = Arc::new({
            max.raise_mut(7);
            max
        });
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let max = max.clone();
                std::thread::spawn(move || {
                    for i in 0..100 {
                        max.raise(t * 1_000 + i);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(max.get(), 3_099);
    }
}
