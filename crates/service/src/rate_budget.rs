//! shipwatch's share of each key's hourly App Store Connect allowance.
//!
//! Apple allows a key a number of requests per hour (`X-Rate-Limit: user-hour-lim:3600;
//! user-hour-rem:N;`), shared by every tool that uses the key. shipwatch may use at most
//! `ASC_BUDGET_SHARE` of it (default 10 %, 360 of 3600). A sweep of a key costs 2-3 requests, so
//! a sweep every minute uses about 180 (5 %).
//!
//! Counting every request would cost a key write per sweep. Instead:
//! - **Unmetered** (no [`AscUsage`] stored): after each sweep, Apple's report says how many
//!   requests *all* tools sent in the hour (`limit - remaining`). shipwatch's own requests are a
//!   part of that, so while `limit - remaining + next sweep's cost <= budget`, shipwatch is proven
//!   to stay within its share and nothing is written.
//! - **Metered** ([`AscUsage`] stored on the key): once the report no longer proves it, shipwatch
//!   counts its own requests per clock hour (one key write per sweep, only for such keys). Its
//!   requests before counting began cannot be told apart from the other tools', so counting starts
//!   at `min(limit - remaining, budget)`: at worst the key waits for the next hour. A key whose
//!   sweep would go over the budget is skipped (no events, no failure) until the next hour, and
//!   sweeps are paced so what is left (of the budget, and of Apple's remaining minus a reserve for
//!   the team's other tools) lasts until the end of the hour: a key whose remaining allowance runs
//!   low is swept less often. When a report proves the share again, the key goes back to unmetered.
//!
//! The functions here are pure; the sweep (`crate::sweep`) applies them around each key's read.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use shipwatch_shared::asc::RateLimit;

use crate::model::AscUsage;

/// Apple's documented hourly allowance, assumed until a key's first report.
pub const DEFAULT_HOURLY_LIMIT: u32 = 3600;
/// `ASC_BUDGET_SHARE` when unset, in percent.
pub const DEFAULT_SHARE_PERCENT: f64 = 10.0;
/// Of Apple's remaining allowance, the part shipwatch leaves to the team's other tools (percent of
/// the hourly limit): shipwatch stops before it could push the key into 429s.
pub const RESERVE_PERCENT: f64 = 5.0;

/// How much of each key's hourly allowance shipwatch may use.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BudgetPolicy {
    share_percent: f64,
}

impl Default for BudgetPolicy {
    fn default() -> Self {
        Self {
            share_percent: DEFAULT_SHARE_PERCENT,
        }
    }
}

impl BudgetPolicy {
    /// `None` unless `0 < share_percent <= 100`.
    pub fn new(share_percent: f64) -> Option<Self> {
        (share_percent > 0.0 && share_percent <= 100.0).then_some(Self { share_percent })
    }

    pub fn share_percent(&self) -> f64 {
        self.share_percent
    }

    /// shipwatch's requests per hour for a key with this hourly limit (at least 1).
    pub fn budget(&self, hourly_limit: u32) -> u32 {
        percent_of(hourly_limit, self.share_percent).max(1)
    }

    /// What shipwatch leaves of Apple's remaining allowance to the team's other tools.
    pub fn reserve(&self, hourly_limit: u32) -> u32 {
        percent_of(hourly_limit, RESERVE_PERCENT)
    }
}

fn percent_of(value: u32, percent: f64) -> u32 {
    // Bounded by `value`, so the cast cannot overflow.
    (f64::from(value) * percent / 100.0).floor() as u32
}

/// Whether a key may be swept now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    Sweep,
    /// Not now: the next sweep would go over the key's budget this hour.
    OverBudget {
        until: DateTime<Utc>,
    },
    /// Not yet: the key's sweeps are spread out because its budget is running low.
    Paced {
        until: DateTime<Utc>,
    },
}

/// Start of the clock hour `at` falls in.
pub fn hour_start(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::hours(1)).unwrap_or(at)
}

/// Decides before a key's sweep, from what the key record keeps.
pub fn admit(policy: &BudgetPolicy, usage: Option<&AscUsage>, now: DateTime<Utc>) -> Admission {
    let Some(usage) = usage else {
        return Admission::Sweep;
    };
    let hour = hour_start(now);
    if usage.hour_start == hour {
        let expected = usage.last_sweep_requests.max(1);
        if usage.used.saturating_add(expected) > policy.budget(usage.hourly_limit) {
            return Admission::OverBudget {
                until: hour + TimeDelta::hours(1),
            };
        }
    }
    match usage.next_sweep_at {
        Some(at) if at > now => Admission::Paced { until: at },
        _ => Admission::Sweep,
    }
}

/// What the key record keeps after a sweep that sent `sent` requests and whose last answer
/// reported `report`. `None`: unmetered (see the module docs).
pub fn settle(
    policy: &BudgetPolicy,
    before: Option<&AscUsage>,
    sent: u32,
    report: Option<RateLimit>,
    now: DateTime<Utc>,
) -> Option<AscUsage> {
    let hour = hour_start(now);
    let counted_before = before
        .filter(|usage| usage.hour_start == hour)
        .map_or(0, |usage| usage.used);
    let expected = sent.max(1);
    let (limit, remaining) = match (report, before) {
        (Some(report), _) => (report.hourly_limit, report.hourly_remaining),
        // No report (App Store Connect always sends one; a failed transport does not): keep
        // counting a metered key on what is known, and leave an unmetered one unmetered.
        (None, Some(usage)) => (
            usage.hourly_limit,
            usage.hourly_remaining.saturating_sub(sent),
        ),
        (None, None) => return None,
    };
    let budget = policy.budget(limit);
    let used_by_all = limit.saturating_sub(remaining);
    let reserve = policy.reserve(limit);
    let proven_within_share = used_by_all.saturating_add(expected) <= budget
        && remaining >= reserve.saturating_add(expected);
    if report.is_some() && proven_within_share {
        return None;
    }
    let used = match before {
        Some(_) => counted_before.saturating_add(sent),
        // Counting begins: shipwatch's earlier requests this hour are somewhere in `used_by_all`.
        None => used_by_all.min(budget).max(sent),
    };
    let next_sweep_at = pace(
        budget,
        used,
        remaining.saturating_sub(reserve),
        expected,
        now,
    );
    Some(AscUsage {
        hour_start: hour,
        used,
        last_sweep_requests: sent,
        hourly_limit: limit,
        hourly_remaining: remaining,
        next_sweep_at,
    })
}

/// Spreads what is left until the end of the hour: `None` when sweeps need no spacing beyond
/// the schedule's, otherwise when the next sweep may run.
fn pace(
    budget: u32,
    used: u32,
    apple_left: u32,
    expected: u32,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let hour_end = hour_start(now) + TimeDelta::hours(1);
    let left = budget.saturating_sub(used).min(apple_left);
    let sweeps_left = left / expected.max(1);
    if sweeps_left == 0 {
        return Some(hour_end);
    }
    let spacing = (hour_end - now) / i32::try_from(sweeps_left).unwrap_or(i32::MAX);
    // A spacing under a minute changes nothing for a sweep that runs every minute or less often.
    (spacing >= TimeDelta::minutes(1)).then(|| now + spacing)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `minute` minutes after the start of an hour (1,800,000,000 s is a whole number of hours).
    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + minute * 60, 0).unwrap_or_default()
    }

    fn report(remaining: u32) -> Option<RateLimit> {
        Some(RateLimit {
            hourly_limit: 3600,
            hourly_remaining: remaining,
        })
    }

    #[test]
    fn budget_is_the_share_of_the_limit() {
        let policy = BudgetPolicy::default();
        assert_eq!(policy.budget(3600), 360);
        assert_eq!(BudgetPolicy::new(2.5).map(|p| p.budget(3600)), Some(90));
        assert_eq!(BudgetPolicy::new(0.0), None);
        assert_eq!(BudgetPolicy::new(100.5), None);
        assert_eq!(BudgetPolicy::new(0.001).map(|p| p.budget(3600)), Some(1));
    }

    #[test]
    fn a_key_used_only_by_shipwatch_stays_unmetered() {
        let policy = BudgetPolicy::default();
        // One sweep a minute at 3 requests: 180 of 3600 by the end of the hour.
        for minute in 0..60 {
            let remaining = 3600 - 3 * (minute as u32 + 1);
            assert_eq!(
                settle(&policy, None, 3, report(remaining), at(minute)),
                None
            );
        }
        assert_eq!(admit(&policy, None, at(30)), Admission::Sweep);
    }

    #[test]
    fn other_tools_start_metering_with_a_conservative_count() {
        let policy = BudgetPolicy::default();
        let usage = settle(&policy, None, 3, report(3600 - 400), at(20)).expect("metered");
        assert_eq!(usage.used, 360, "earlier requests cannot be told apart");
        assert_eq!(
            admit(&policy, Some(&usage), at(21)),
            Admission::OverBudget { until: at(60) }
        );
        // Next hour: counted exactly from zero.
        assert_eq!(admit(&policy, Some(&usage), at(61)), Admission::Sweep);
        let next = settle(&policy, Some(&usage), 3, report(3600 - 500), at(61)).expect("metered");
        assert_eq!(next.used, 3);
        assert_eq!(next.hour_start, at(60));
        assert_eq!(
            next.next_sweep_at, None,
            "357 left over 59 minutes needs no pacing"
        );
    }

    #[test]
    fn a_metered_key_is_skipped_before_it_would_go_over() {
        let policy = BudgetPolicy::default();
        let mut usage = AscUsage {
            hour_start: at(0),
            used: 354,
            last_sweep_requests: 3,
            hourly_limit: 3600,
            hourly_remaining: 3000,
            next_sweep_at: None,
        };
        assert_eq!(admit(&policy, Some(&usage), at(50)), Admission::Sweep);
        usage = settle(&policy, Some(&usage), 3, report(2990), at(50)).expect("metered");
        assert_eq!(usage.used, 357);
        assert_eq!(
            usage.next_sweep_at,
            Some(at(60)),
            "3 left, spread to the hour's end"
        );
        assert_eq!(
            admit(&policy, Some(&usage), at(51)),
            Admission::Paced { until: at(60) }
        );
        let full = AscUsage { used: 358, ..usage };
        assert_eq!(
            admit(&policy, Some(&full), at(51)),
            Admission::OverBudget { until: at(60) }
        );
    }

    #[test]
    fn low_remaining_allowance_slows_the_key_down() {
        let policy = BudgetPolicy::default();
        // Apple says 200 left; 180 are kept for the team's other tools: 20 requests, 6 sweeps of 3
        // over the remaining 60 minutes, one every 10 minutes.
        let usage = settle(&policy, None, 3, report(200), at(0)).expect("metered");
        let usage = AscUsage { used: 0, ..usage };
        let next = settle(&policy, Some(&usage), 3, report(200), at(0)).expect("metered");
        assert_eq!(next.next_sweep_at, Some(at(10)));
        assert_eq!(
            admit(&policy, Some(&next), at(5)),
            Admission::Paced { until: at(10) }
        );
        assert_eq!(admit(&policy, Some(&next), at(10)), Admission::Sweep);
        // Below the reserve: no sweep until the hour ends.
        let starved = settle(&policy, Some(&usage), 3, report(150), at(30)).expect("metered");
        assert_eq!(starved.next_sweep_at, Some(at(60)));
    }

    #[test]
    fn a_proof_of_the_share_ends_metering() {
        let policy = BudgetPolicy::default();
        let usage = settle(&policy, None, 3, report(3000), at(10)).expect("metered");
        assert_eq!(settle(&policy, Some(&usage), 3, report(3500), at(70)), None);
    }

    #[test]
    fn without_a_report_a_metered_key_keeps_counting() {
        let policy = BudgetPolicy::default();
        assert_eq!(settle(&policy, None, 2, None, at(0)), None);
        let usage = settle(&policy, None, 3, report(3000), at(70)).expect("metered");
        let next = settle(&policy, Some(&usage), 2, None, at(71)).expect("still metered");
        assert_eq!(next.used, usage.used + 2);
    }
}
