//! Sign-in throttling: after `max` failures within `window` for a name (an account or a client),
//! sign-ins for that name are refused until the oldest failure leaves the window. Successes do
//! not count. The failures are kept in the store ([`SignInFailureStore`]), so every process
//! (each warm Lambda container) counts the same ones.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use crate::ports::{SignInFailureStore, StoreResult};

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

/// Sign-in throttling over the store, so that every process sees every failure. Names are
/// hashed before they reach the store.
#[derive(Clone)]
pub struct SignInThrottle {
    limit: FailureLimit,
    failures: Arc<dyn SignInFailureStore>,
}

impl std::fmt::Debug for SignInThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInThrottle")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

/// What the store keeps for a throttle name: its SHA-256, so emails and client addresses are not
/// stored for throttling.
fn stored_name(name: &str) -> String {
    crate::auth::hash_token(name)
}

impl SignInThrottle {
    pub fn new(failures: Arc<dyn SignInFailureStore>, limit: FailureLimit) -> Self {
        Self { limit, failures }
    }

    /// `Ok(Err(wait))` when any of `names` has failed too often lately.
    pub async fn check(
        &self,
        names: &[&str],
        now: DateTime<Utc>,
    ) -> StoreResult<Result<(), TimeDelta>> {
        let since = now - self.limit.window;
        let mut longest: Option<TimeDelta> = None;
        for name in names {
            let times = self
                .failures
                .sign_in_failures_since(&stored_name(name), since)
                .await?;
            if let Some(wait) = blocked_for(&times, self.limit, now) {
                longest = Some(longest.map_or(wait, |w| w.max(wait)));
            }
        }
        Ok(longest.map_or(Ok(()), Err))
    }

    pub async fn record_failure(&self, names: &[&str], now: DateTime<Utc>) -> StoreResult<()> {
        let names: Vec<String> = names.iter().map(|name| stored_name(name)).collect();
        self.failures
            .record_sign_in_failure(&names, now, now + self.limit.window)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap_or_default()
    }

    #[test]
    fn five_failures_block_until_the_oldest_leaves_the_window() {
        let four: Vec<_> = (0..4).map(at).collect();
        assert_eq!(blocked_for(&four, SIGN_IN_FAILURES, at(10)), None);
        let five: Vec<_> = (0..5).map(at).collect();
        assert_eq!(
            blocked_for(&five, SIGN_IN_FAILURES, at(10)),
            Some(TimeDelta::seconds(15 * 60 - 10))
        );
        assert_eq!(blocked_for(&five, SIGN_IN_FAILURES, at(15 * 60)), None);
    }

    #[test]
    fn the_wait_is_counted_from_the_fifth_newest_failure() {
        // Seven failures: the block lasts until the fifth newest (at 2 s) leaves the window.
        let seven: Vec<_> = [6, 0, 5, 1, 4, 2, 3].into_iter().map(at).collect();
        assert_eq!(
            blocked_for(&seven, SIGN_IN_FAILURES, at(100)),
            Some(TimeDelta::seconds(15 * 60 + 2 - 100))
        );
    }

    #[test]
    fn failures_in_the_future_or_outside_the_window_do_not_count() {
        let times = [
            at(-15 * 60),
            at(-15 * 60 - 1),
            at(1),
            at(2),
            at(3),
            at(4),
            at(500),
        ];
        assert_eq!(blocked_for(&times, SIGN_IN_FAILURES, at(5)), None);
    }

    #[test]
    fn stored_names_do_not_hold_the_email() {
        let name = stored_name("account:ana@example.com");
        assert!(!name.contains("ana"), "{name}");
        assert_eq!(name, stored_name("account:ana@example.com"));
        assert_ne!(name, stored_name("account:bob@example.com"));
    }
}
