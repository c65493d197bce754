//! When a failed delivery is tried again, and when it is given up (pure).

use chrono::TimeDelta;

/// The retry schedule of deliveries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetrySchedule {
    /// Wait after the n-th failed attempt (the last entry repeats).
    pub backoff: Vec<TimeDelta>,
    /// Attempts before a delivery is given up as failed.
    pub max_attempts: usize,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self {
            // The first two retries come fast (a chat service's hiccup should not make "your app
            // was approved" minutes late), later ones spread out over hours.
            backoff: vec![
                TimeDelta::seconds(5),
                TimeDelta::seconds(30),
                TimeDelta::minutes(2),
                TimeDelta::minutes(10),
                TimeDelta::hours(1),
            ],
            max_attempts: 6,
        }
    }
}

impl RetrySchedule {
    /// Wait after `failed_attempts` failed attempts.
    pub fn wait_after(&self, failed_attempts: usize) -> TimeDelta {
        self.backoff
            .get(failed_attempts.saturating_sub(1))
            .or(self.backoff.last())
            .copied()
            .unwrap_or(TimeDelta::minutes(1))
    }

    /// Whether `attempts` attempts use up the schedule.
    pub fn is_exhausted(&self, attempts: usize) -> bool {
        attempts >= self.max_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_then_repeat_the_last_step() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.wait_after(1), TimeDelta::seconds(5));
        assert_eq!(schedule.wait_after(2), TimeDelta::seconds(30));
        assert_eq!(schedule.wait_after(3), TimeDelta::minutes(2));
        assert_eq!(schedule.wait_after(5), TimeDelta::hours(1));
        assert_eq!(schedule.wait_after(9), TimeDelta::hours(1));
        assert!(!schedule.is_exhausted(5));
        assert!(schedule.is_exhausted(6));
    }

    #[test]
    fn an_empty_schedule_still_waits() {
        let schedule = RetrySchedule {
            backoff: Vec::new(),
            max_attempts: 2,
        };
        assert_eq!(schedule.wait_after(1), TimeDelta::minutes(1));
    }
}
