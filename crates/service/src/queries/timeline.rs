//! An app's versions as state timelines built from its history (`app_version.state_changed`
//! events), and the median review time. Pure: the dashboard's app page draws it.

use chrono::{DateTime, Utc};

use crate::domain::event_data::EventData;
use crate::model::EventRecord;

/// States that count as "in review" for the review time (waiting, then in review).
pub const REVIEW_STATES: &[&str] = &["WAITING_FOR_REVIEW", "IN_REVIEW"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub state: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Still the version's state (`end` is "now").
    pub current: bool,
}

impl Segment {
    pub fn seconds(&self) -> i64 {
        (self.end - self.start).num_seconds().max(0)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionTimeline {
    pub version_id: String,
    /// e.g. "IOS 1.2".
    pub label: String,
    pub segments: Vec<Segment>,
}

impl VersionTimeline {
    /// Seconds from entering review to leaving it, when the version went through review and
    /// left it.
    pub fn review_seconds(&self) -> Option<i64> {
        let review: Vec<&Segment> = self
            .segments
            .iter()
            .filter(|s| REVIEW_STATES.contains(&s.state.as_str()))
            .collect();
        if review.is_empty() || review.iter().any(|s| s.current) {
            return None;
        }
        Some(review.iter().map(|s| s.seconds()).sum())
    }
}

/// The timelines of the versions in `events` (any order; other event types are skipped), oldest
/// version first. A state's start is its event's time; the first state seen starts at the
/// time the event says it had lasted, when known.
pub fn version_timelines(events: &[EventRecord], now: DateTime<Utc>) -> Vec<VersionTimeline> {
    let mut changes: Vec<(
        &EventRecord,
        &crate::domain::event_data::AppVersionStateChanged,
    )> = events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::AppVersionStateChanged(data) => Some((e, data)),
            _ => None,
        })
        .collect();
    changes.sort_by(|a, b| (a.0.time, &a.0.id.0).cmp(&(b.0.time, &b.0.id.0)));
    let mut timelines: Vec<VersionTimeline> = Vec::new();
    for (event, change) in changes {
        let index = match timelines
            .iter()
            .position(|t| t.version_id == change.version.id)
        {
            Some(index) => index,
            None => {
                timelines.push(VersionTimeline {
                    version_id: change.version.id.clone(),
                    label: format!(
                        "{} {}",
                        change.version.platform, change.version.version_string
                    ),
                    segments: Vec::new(),
                });
                timelines.len() - 1
            }
        };
        let timeline = &mut timelines[index];
        match timeline.segments.last_mut() {
            Some(last) if last.current => {
                last.end = event.time;
                last.current = false;
            }
            _ => {
                // The first change seen: the old state's start is known only from its duration.
                if let (Some(old), Some(seconds)) =
                    (&change.old_state, change.seconds_in_previous_state())
                {
                    timeline.segments.push(Segment {
                        state: old.clone(),
                        start: event.time - chrono::TimeDelta::seconds(seconds),
                        end: event.time,
                        current: false,
                    });
                }
            }
        }
        timeline.segments.push(Segment {
            state: change.new_state.clone(),
            start: event.time,
            end: now.max(event.time),
            current: true,
        });
    }
    timelines
}

/// The median of the versions' review times (seconds), if any version went through review.
pub fn median_review_seconds(timelines: &[VersionTimeline]) -> Option<i64> {
    let mut times: Vec<i64> = timelines
        .iter()
        .filter_map(VersionTimeline::review_seconds)
        .collect();
    if times.is_empty() {
        return None;
    }
    times.sort_unstable();
    let middle = times.len() / 2;
    Some(if times.len() % 2 == 1 {
        times[middle]
    } else {
        (times[middle - 1] + times[middle]) / 2
    })
}

/// "3 d 4 h", "5 h 2 min", "12 min", "40 s".
pub fn human_duration(seconds: i64) -> String {
    let (d, h, m) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{seconds} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::diff::{AppRef, VersionRef};
    use crate::domain::event_data::AppVersionStateChanged;
    use crate::model::{EventId, TeamId};

    fn at(hours: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + hours * 3600, 0).unwrap_or_default()
    }

    fn change(
        version: &str,
        old: Option<&str>,
        new: &str,
        hours: i64,
        lasted: Option<i64>,
    ) -> EventRecord {
        EventRecord {
            id: EventId(format!("e-{version}-{hours}")),
            team_id: TeamId("t".into()),
            key_record_id: None,
            app_id: Some("1".into()),
            event_type: "shipwatch.app_version.state_changed".into(),
            time: at(hours),
            data: EventData::AppVersionStateChanged(AppVersionStateChanged {
                app: AppRef {
                    id: "1".into(),
                    name: "Hello".into(),
                    bundle_id: "com.example".into(),
                },
                version: VersionRef {
                    id: version.into(),
                    version_string: version.into(),
                    platform: "IOS".into(),
                },
                old_state: old.map(str::to_owned),
                new_state: new.into(),
                time_in_previous_state_seconds: Some(lasted),
            }),
            summary: String::new(),
        }
    }

    #[test]
    fn segments_follow_the_changes_and_the_last_is_current() {
        let events = vec![
            change(
                "1.0",
                Some("WAITING_FOR_REVIEW"),
                "IN_REVIEW",
                10,
                Some(5 * 3600),
            ),
            change(
                "1.0",
                Some("PREPARE_FOR_SUBMISSION"),
                "WAITING_FOR_REVIEW",
                5,
                None,
            ),
            change(
                "1.0",
                Some("IN_REVIEW"),
                "PENDING_DEVELOPER_RELEASE",
                12,
                Some(2 * 3600),
            ),
        ];
        let timelines = version_timelines(&events, at(20));
        assert_eq!(timelines.len(), 1);
        let states: Vec<(&str, i64, bool)> = timelines[0]
            .segments
            .iter()
            .map(|s| (s.state.as_str(), s.seconds() / 3600, s.current))
            .collect();
        assert_eq!(
            states,
            vec![
                ("WAITING_FOR_REVIEW", 5, false),
                ("IN_REVIEW", 2, false),
                ("PENDING_DEVELOPER_RELEASE", 8, true)
            ]
        );
        assert_eq!(timelines[0].review_seconds(), Some(7 * 3600));
    }

    #[test]
    fn the_first_state_starts_when_its_duration_says() {
        let events = vec![change(
            "2.0",
            Some("WAITING_FOR_REVIEW"),
            "IN_REVIEW",
            10,
            Some(3 * 3600),
        )];
        let timeline = &version_timelines(&events, at(11))[0];
        assert_eq!(timeline.segments[0].start, at(7));
        assert_eq!(timeline.review_seconds(), None, "still in review");
    }

    #[test]
    fn the_median_takes_finished_reviews_only() {
        let events = vec![
            change(
                "1.0",
                Some("PREPARE_FOR_SUBMISSION"),
                "WAITING_FOR_REVIEW",
                0,
                None,
            ),
            change(
                "1.0",
                Some("WAITING_FOR_REVIEW"),
                "READY_FOR_SALE",
                2,
                Some(7200),
            ),
            change(
                "1.1",
                Some("PREPARE_FOR_SUBMISSION"),
                "WAITING_FOR_REVIEW",
                10,
                None,
            ),
            change(
                "1.1",
                Some("WAITING_FOR_REVIEW"),
                "READY_FOR_SALE",
                16,
                Some(6 * 3600),
            ),
            change("1.2", Some("PREPARE_FOR_SUBMISSION"), "IN_REVIEW", 20, None),
        ];
        let timelines = version_timelines(&events, at(30));
        assert_eq!(median_review_seconds(&timelines), Some(4 * 3600));
        assert_eq!(median_review_seconds(&[]), None);
        assert_eq!(human_duration(4 * 3600 + 120), "4 h 2 min");
        assert_eq!(human_duration(2 * 86_400 + 3600), "2 d 1 h");
        assert_eq!(human_duration(42), "42 s");
    }
}
