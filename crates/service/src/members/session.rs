//! Session expiry: a session ends after `idle` without a request or `absolute` after sign-in,
//! whichever comes first. Pure, so it is tested without a store.

use chrono::{DateTime, TimeDelta, Utc};

use super::Session;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionPolicy {
    pub idle: TimeDelta,
    pub absolute: TimeDelta,
    /// `last_seen_at` is written at most this often (one write per request would be wasteful).
    pub touch_after: TimeDelta,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle: TimeDelta::hours(12),
            absolute: TimeDelta::days(7),
            touch_after: TimeDelta::minutes(5),
        }
    }
}

impl SessionPolicy {
    /// When the session ends if nothing more happens.
    pub fn expires_at(&self, session: &Session) -> DateTime<Utc> {
        (session.last_seen_at + self.idle).min(session.created_at + self.absolute)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionState {
    Active,
    /// Active, and `last_seen_at` is old enough to be written again.
    Touch,
    Expired,
}

pub fn session_state(
    session: &Session,
    now: DateTime<Utc>,
    policy: &SessionPolicy,
) -> SessionState {
    if now >= policy.expires_at(session) {
        SessionState::Expired
    } else if now - session.last_seen_at >= policy.touch_after {
        SessionState::Touch
    } else {
        SessionState::Active
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::members::MemberId;
    use crate::model::TeamId;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + minutes * 60, 0).unwrap_or_default()
    }

    fn session(created: i64, seen: i64) -> Session {
        Session {
            id_hash: "h".into(),
            member_id: MemberId("m".into()),
            team_id: TeamId("t".into()),
            csrf_token: "c".into(),
            created_at: at(created),
            last_seen_at: at(seen),
        }
    }

    #[test]
    fn idle_sessions_expire() {
        let policy = SessionPolicy::default();
        let s = session(0, 0);
        assert_eq!(session_state(&s, at(1), &policy), SessionState::Active);
        assert_eq!(session_state(&s, at(6), &policy), SessionState::Touch);
        assert_eq!(
            session_state(&s, at(12 * 60 - 1), &policy),
            SessionState::Touch
        );
        assert_eq!(
            session_state(&s, at(12 * 60), &policy),
            SessionState::Expired
        );
    }

    #[test]
    fn busy_sessions_still_end_at_the_absolute_limit() {
        let policy = SessionPolicy::default();
        let week = 7 * 24 * 60;
        let s = session(0, week - 1);
        assert_eq!(
            session_state(&s, at(week - 1), &policy),
            SessionState::Active
        );
        assert_eq!(session_state(&s, at(week), &policy), SessionState::Expired);
        assert_eq!(policy.expires_at(&s), at(week));
    }
}
