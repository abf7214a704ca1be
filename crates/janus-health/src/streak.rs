//! [`Streak`]: results in a row, and when they flip an instance's health.

/// Consecutive probe results of one instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Streak {
    successes: u32,
    failures: u32,
}

impl Streak {
    /// Records a result for an instance that is `healthy` now; returns its
    /// new health if `rise` successes (resp. `fall` failures) in a row
    /// contradict it. A result resets the opposite count.
    pub fn observe(&mut self, ok: bool, healthy: bool, rise: u32, fall: u32) -> Option<bool> {
        if ok {
            self.successes = self.successes.saturating_add(1);
            self.failures = 0;
            (!healthy && self.successes >= rise.max(1)).then_some(true)
        } else {
            self.failures = self.failures.saturating_add(1);
            self.successes = 0;
            (healthy && self.failures >= fall.max(1)).then_some(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_flips_after_three_in_a_row_and_an_opposite_result_starts_over() {
        let mut streak = Streak::default();
        assert_eq!(streak.observe(false, true, 3, 3), None);
        assert_eq!(streak.observe(false, true, 3, 3), None);
        assert_eq!(streak.observe(true, true, 3, 3), None, "a success resets the failures");
        assert_eq!(streak.observe(false, true, 3, 3), None);
        assert_eq!(streak.observe(false, true, 3, 3), None);
        assert_eq!(streak.observe(false, true, 3, 3), Some(false));
        assert_eq!(streak.observe(true, false, 3, 3), None);
        assert_eq!(streak.observe(true, false, 3, 3), None);
        assert_eq!(streak.observe(true, false, 3, 3), Some(true));
        assert_eq!(streak.observe(true, true, 3, 3), None, "agreeing results change nothing");
    }
}
