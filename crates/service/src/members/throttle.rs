//! Sign-in throttling: after `max` failures within `window` for a name (an account or a client),
//! sign-ins for that name are refused until the oldest failure leaves the window. Successes do
//! not count. Kept in the process: on AWS each warm Lambda instance counts apart (see docs).

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailureLimit {
    pub max: usize,
    pub window: TimeDelta,
}

/// Failures per account and per client before sign-in is slowed down.
pub const SIGN_IN_FAILURES: FailureLimit = FailureLimit {
    max: 5,
    window: TimeDelta::minutes(15),
};

/// How long `failures` (times) block another attempt at `now`, if they do.
pub fn blocked_for(
    failures: &[DateTime<Utc>],
    limit: FailureLimit,
    now: DateTime<Utc>,
) -> Option<TimeDelta> {
    let mut recent: Vec<_> = failures
        .iter()
        .filter(|at| **at > now - limit.window && **at <= now)
        .collect();
    if recent.len() < limit.max {
        return None;
    }
    recent.sort();
    let frees_at = *recent[recent.len() - limit.max] + limit.window;
    Some((frees_at - now).max(TimeDelta::seconds(1)))
}

#[derive(Debug)]
pub struct SignInThrottle {
    limit: FailureLimit,
    failures: Mutex<HashMap<String, Vec<DateTime<Utc>>>>,
}

impl Default for SignInThrottle {
    fn default() -> Self {
        Self::new(SIGN_IN_FAILURES)
    }
}

impl SignInThrottle {
    pub fn new(limit: FailureLimit) -> Self {
        Self {
            limit,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(wait)` when any of `names` has failed too often lately.
    pub fn check(&self, names: &[&str], now: DateTime<Utc>) -> Result<(), TimeDelta> {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let wait = names
            .iter()
            .filter_map(|name| failures.get(*name))
            .filter_map(|times| blocked_for(times, self.limit, now))
            .max();
        wait.map_or(Ok(()), Err)
    }

    pub fn record_failure(&self, names: &[&str], now: DateTime<Utc>) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let window = self.limit.window;
        // Forget names whose failures all left the window, so the map stays small.
        if failures.len() > 10_000 {
            failures.retain(|_, times| times.iter().any(|at| *at > now - window));
        }
        for name in names {
            let times = failures.entry((*name).to_owned()).or_default();
            times.retain(|at| *at > now - window);
            times.push(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap_or_default()
    }

    #[test]
    fn five_failures_block_the_account_until_the_window_moves() {
        let throttle = SignInThrottle::default();
        for second in 0..5 {
            assert!(throttle.check(&["account:a"], at(second)).is_ok());
            throttle.record_failure(&["account:a", "client:1"], at(second));
        }
        assert_eq!(
            throttle.check(&["account:a"], at(10)),
            Err(TimeDelta::seconds(15 * 60 - 10))
        );
        assert!(
            throttle.check(&["account:b"], at(10)).is_ok(),
            "other accounts are not slowed"
        );
        assert!(
            throttle.check(&["account:b", "client:1"], at(10)).is_err(),
            "the same client is"
        );
        assert!(throttle.check(&["account:a"], at(15 * 60)).is_ok());
    }
}
