//! Limits on requests that cost something outside shipwatch: re-validating a key spends App Store
//! Connect requests of the customer's hourly allowance, a test send posts into a real channel.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};

/// At most `max` requests within any `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub max: usize,
    pub window: TimeDelta,
}

/// Re-validations a user may ask for per key: each costs two App Store Connect requests, so
/// this stays inside shipwatch's share of the key's hourly allowance (120 of 3,600 an hour).
pub const REVALIDATIONS_PER_KEY: Limit = Limit {
    max: 5,
    window: TimeDelta::minutes(5),
};

/// Test messages per destination.
pub const TEST_SENDS_PER_DESTINATION: Limit = Limit {
    max: 5,
    window: TimeDelta::minutes(1),
};

/// Admits one more request at `now` given the `recent` request times (pruned to the window and
/// extended on success), or says how long to wait.
pub fn admit(
    recent: &mut Vec<DateTime<Utc>>,
    limit: Limit,
    now: DateTime<Utc>,
) -> Result<(), TimeDelta> {
    recent.retain(|at| *at > now - limit.window && *at <= now);
    recent.sort();
    if recent.len() >= limit.max {
        let frees_at = recent[recent.len() - limit.max] + limit.window;
        return Err((frees_at - now).max(TimeDelta::seconds(1)));
    }
    recent.push(now);
    Ok(())
}

/// Whole seconds to wait, rounded up (for `Retry-After`).
pub fn retry_after_seconds(wait: TimeDelta) -> u64 {
    let millis = wait.num_milliseconds().max(0) as u64;
    millis.div_ceil(1000).max(1)
}

/// Request times per name, kept in this process (for limits that need no shared state).
#[derive(Debug, Default)]
pub struct LocalThrottle {
    recent: Mutex<HashMap<String, Vec<DateTime<Utc>>>>,
}

impl LocalThrottle {
    pub fn admit(&self, name: &str, limit: Limit, now: DateTime<Utc>) -> Result<(), TimeDelta> {
        let mut recent = self
            .recent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Forget names whose requests all left their window, so the map stays small.
        if recent.len() > 10_000 {
            recent.retain(|_, times| times.iter().any(|at| *at > now - limit.window));
        }
        admit(recent.entry(name.to_owned()).or_default(), limit, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap_or_default()
    }

    #[test]
    fn a_burst_is_admitted_then_refused_until_the_window_moves() {
        let limit = Limit {
            max: 3,
            window: TimeDelta::seconds(60),
        };
        let mut recent = Vec::new();
        for second in 0..3 {
            assert_eq!(admit(&mut recent, limit, at(second)), Ok(()));
        }
        assert_eq!(
            admit(&mut recent, limit, at(10)),
            Err(TimeDelta::seconds(50))
        );
        assert_eq!(recent.len(), 3, "a refused request is not counted");
        assert_eq!(
            admit(&mut recent, limit, at(60)),
            Ok(()),
            "the first left the window"
        );
        assert_eq!(retry_after_seconds(TimeDelta::milliseconds(1500)), 2);
    }

    #[test]
    fn local_throttles_count_each_name_apart() {
        let throttle = LocalThrottle::default();
        for _ in 0..TEST_SENDS_PER_DESTINATION.max {
            assert!(
                throttle
                    .admit("d1", TEST_SENDS_PER_DESTINATION, at(0))
                    .is_ok()
            );
        }
        assert!(
            throttle
                .admit("d1", TEST_SENDS_PER_DESTINATION, at(1))
                .is_err()
        );
        assert!(
            throttle
                .admit("d2", TEST_SENDS_PER_DESTINATION, at(1))
                .is_ok()
        );
    }
}
