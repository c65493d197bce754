//! Comparing two snapshots of one key into the transitions between them.
//!
//! Rules:
//! - No previous snapshot: the first sweep of a key is a silent baseline, nothing is reported.
//! - A version or build present now but not before is reported as new (`old: None`), also when its
//!   whole app only just became visible to the key.
//! - A version or build that is no longer visible (deleted, or out of the window of recent builds)
//!   is not an event.
//! - Only the two observed states are compared, so states skipped between sweeps are one jump, and
//!   any state string Apple sends (also a future one) is passed through unchanged.
//! - A new build is reported once, by its processing state; its TestFlight state is reported from
//!   its next change on.

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

use super::snapshot::{
    AppSnapshot, BuildSnapshot, KeySnapshot, PHASED_RELEASE_INACTIVE, VersionSnapshot,
};

/// The `app` object of an event (`docs/events.md`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRef {
    pub id: String,
    pub name: String,
    pub bundle_id: String,
}

impl AppRef {
    /// The app's name, or its id when there is none (a build of an app the key cannot list).
    pub fn label(&self) -> &str {
        if self.name.is_empty() {
            &self.id
        } else {
            &self.name
        }
    }
}

/// The `version` object of an event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRef {
    pub id: String,
    pub version_string: String,
    pub platform: String,
}

/// The `build` object of an event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildRef {
    pub id: String,
    pub version: String,
    pub short_version: Option<String>,
    pub platform: Option<String>,
}

/// One observed transition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// An App Store version's `appVersionState` changed, or a new version appeared (`old: None`).
    VersionState {
        app: AppRef,
        version: VersionRef,
        old: Option<String>,
        new: String,
        /// How long the version was in `old`; `None` when new or when that state was already there
        /// when shipwatch first looked (start unknown).
        time_in_previous_state: Option<TimeDelta>,
    },
    /// A build's `processingState` changed, or a new build appeared (`old: None`).
    BuildProcessing {
        app: AppRef,
        build: BuildRef,
        old: Option<String>,
        new: String,
    },
    /// A build's TestFlight `externalBuildState` changed (`old: None` when it had none before).
    BuildBeta {
        app: AppRef,
        build: BuildRef,
        old: Option<String>,
        new: String,
    },
    /// A version's phased release started, paused, resumed, completed (or entered any other state).
    PhasedRelease {
        app: AppRef,
        version: VersionRef,
        old: Option<String>,
        new: String,
        current_day_number: Option<u32>,
    },
    /// A Google Play release is new, changed `status`, or took a staged-rollout step.
    PlayRelease {
        app: AppRef,
        track: String,
        release: super::play_snapshot::PlayReleaseRef,
        old_state: Option<String>,
        new_state: String,
        old_user_fraction: Option<serde_json::Number>,
        new_user_fraction: Option<serde_json::Number>,
    },
}

impl Change {
    /// The app the change concerns.
    pub fn app(&self) -> &AppRef {
        match self {
            Self::VersionState { app, .. }
            | Self::BuildProcessing { app, .. }
            | Self::BuildBeta { app, .. }
            | Self::PhasedRelease { app, .. }
            | Self::PlayRelease { app, .. } => app,
        }
    }
}

/// The transitions from `prev` to `next`, grouped by app (by app id), and within an app: versions
/// (by id; state change before phased release change), then builds (oldest upload first).
pub fn diff(prev: Option<&KeySnapshot>, next: &KeySnapshot) -> Vec<Change> {
    let Some(prev) = prev else {
        return Vec::new();
    };
    let mut changes = Vec::new();
    for (app_id, app) in &next.apps {
        let app_ref = app_ref(app_id, app);
        // Compared with the last state seen, even when the last read did not show it: a store
        // glitch that hid it must not make its return look new.
        for (version_id, version) in &app.versions {
            let prev_version = prev.version_seen(app_id, version_id);
            diff_version(&app_ref, version_id, prev_version, version, &mut changes);
        }
        let mut builds: Vec<(&String, &BuildSnapshot)> = next
            .builds
            .iter()
            .filter(|(_, build)| &build.app_id == app_id)
            .collect();
        builds.sort_by(|(id_a, a), (id_b, b)| {
            a.uploaded_date
                .cmp(&b.uploaded_date)
                .then_with(|| id_a.cmp(id_b))
        });
        for (build_id, build) in builds {
            diff_build(
                &app_ref,
                build_id,
                prev.build_seen(build_id),
                build,
                &mut changes,
            );
        }
    }
    // Builds whose app is not among the visible apps still report, under a bare app reference.
    for (build_id, build) in &next.builds {
        if !next.apps.contains_key(&build.app_id) {
            let app_ref = AppRef {
                id: build.app_id.clone(),
                name: String::new(),
                bundle_id: String::new(),
            };
            diff_build(
                &app_ref,
                build_id,
                prev.build_seen(build_id),
                build,
                &mut changes,
            );
        }
    }
    super::play_snapshot::diff_play(prev, next, &mut changes);
    changes
}

fn diff_version(
    app: &AppRef,
    version_id: &str,
    prev: Option<&VersionSnapshot>,
    next: &VersionSnapshot,
    changes: &mut Vec<Change>,
) {
    let version_ref = VersionRef {
        id: version_id.to_owned(),
        version_string: next.version_string.clone(),
        platform: next.platform.clone(),
    };
    let old_state = prev.map(|prev| prev.state.as_str());
    if old_state != Some(next.state.as_str()) {
        let time_in_previous_state = prev
            .filter(|prev| !prev.state_since.at_baseline)
            .map(|prev| next.state_since.at - prev.state_since.at)
            .filter(|spent| *spent >= TimeDelta::zero());
        changes.push(Change::VersionState {
            app: app.clone(),
            version: version_ref.clone(),
            old: old_state.map(str::to_owned),
            new: next.state.clone(),
            time_in_previous_state,
        });
    }

    let old_phased = prev
        .and_then(|prev| prev.phased_release.as_ref())
        .and_then(|seen| seen.state());
    let next_phased = next.phased_release.as_ref();
    if let Some(new_phased) = next_phased.and_then(|seen| seen.state()) {
        // A phased release that is merely configured (INACTIVE) when first read has not started:
        // nothing has happened to users yet, so it is not announced.
        let first_seen_inactive = old_phased.is_none() && new_phased == PHASED_RELEASE_INACTIVE;
        // The first read of a version that was already in its state (its phased release was
        // never read before: a rollout under way when shipwatch started watching) is a baseline.
        let first_read_of_settled_version =
            prev.is_some_and(|prev| prev.phased_release.is_none() && prev.state == next.state);
        if old_phased != Some(new_phased) && !first_seen_inactive && !first_read_of_settled_version
        {
            let current_day_number = match next_phased {
                Some(super::snapshot::PhasedReleaseSeen::Present {
                    current_day_number, ..
                }) => *current_day_number,
                _ => None,
            };
            changes.push(Change::PhasedRelease {
                app: app.clone(),
                version: version_ref,
                old: old_phased.map(str::to_owned),
                new: new_phased.to_owned(),
                current_day_number,
            });
        }
    }
}

fn diff_build(
    app: &AppRef,
    build_id: &str,
    prev: Option<&BuildSnapshot>,
    next: &BuildSnapshot,
    changes: &mut Vec<Change>,
) {
    let build_ref = BuildRef {
        id: build_id.to_owned(),
        version: next.version.clone(),
        short_version: next.short_version.clone(),
        platform: next.platform.clone(),
    };
    let Some(prev) = prev else {
        changes.push(Change::BuildProcessing {
            app: app.clone(),
            build: build_ref,
            old: None,
            new: next.processing_state.clone(),
        });
        return;
    };
    if prev.processing_state != next.processing_state {
        changes.push(Change::BuildProcessing {
            app: app.clone(),
            build: build_ref.clone(),
            old: Some(prev.processing_state.clone()),
            new: next.processing_state.clone(),
        });
    }
    if let Some(new_external) = &next.external_build_state
        && prev.external_build_state.as_ref() != Some(new_external)
    {
        changes.push(Change::BuildBeta {
            app: app.clone(),
            build: build_ref,
            old: prev.external_build_state.clone(),
            new: new_external.clone(),
        });
    }
}

fn app_ref(app_id: &str, app: &AppSnapshot) -> AppRef {
    AppRef {
        id: app_id.to_owned(),
        name: app.name.clone(),
        bundle_id: app.bundle_id.clone(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeDelta, Utc};

    use super::*;
    use crate::domain::snapshot::{PhasedReleaseSeen, StateSince};

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default() + TimeDelta::minutes(minutes)
    }

    fn version(state: &str, since: StateSince) -> VersionSnapshot {
        VersionSnapshot {
            version_string: "2.1".into(),
            platform: "IOS".into(),
            state: state.into(),
            release_type: Some("MANUAL".into()),
            state_since: since,
            phased_release: None,
        }
    }

    fn known_since(minutes: i64) -> StateSince {
        StateSince {
            at: at(minutes),
            at_baseline: false,
        }
    }

    fn build(processing: &str, external: Option<&str>) -> BuildSnapshot {
        BuildSnapshot {
            app_id: "app1".into(),
            version: "42".into(),
            short_version: Some("2.1".into()),
            platform: Some("IOS".into()),
            processing_state: processing.into(),
            external_build_state: external.map(str::to_owned),
            internal_build_state: None,
            beta_review_state: None,
            uploaded_date: Some(at(0)),
        }
    }

    /// One app `app1` ("Hello") with the given versions and builds.
    fn snapshot(
        versions: Vec<(&str, VersionSnapshot)>,
        builds: Vec<(&str, BuildSnapshot)>,
    ) -> KeySnapshot {
        let mut snapshot = KeySnapshot::default();
        snapshot.apps.insert(
            "app1".into(),
            AppSnapshot {
                name: "Hello".into(),
                bundle_id: "com.example.hello".into(),
                versions: versions
                    .into_iter()
                    .map(|(id, v)| (id.to_owned(), v))
                    .collect(),
            },
        );
        snapshot.builds = builds
            .into_iter()
            .map(|(id, b)| (id.to_owned(), b))
            .collect();
        snapshot
    }

    fn hello() -> AppRef {
        AppRef {
            id: "app1".into(),
            name: "Hello".into(),
            bundle_id: "com.example.hello".into(),
        }
    }

    fn version_ref(id: &str) -> VersionRef {
        VersionRef {
            id: id.into(),
            version_string: "2.1".into(),
            platform: "IOS".into(),
        }
    }

    fn build_ref(id: &str) -> BuildRef {
        BuildRef {
            id: id.into(),
            version: "42".into(),
            short_version: Some("2.1".into()),
            platform: Some("IOS".into()),
        }
    }

    #[test]
    fn first_sweep_is_a_silent_baseline() {
        let next = snapshot(
            vec![("v1", version("WAITING_FOR_REVIEW", known_since(0)))],
            vec![("b1", build("PROCESSING", None))],
        );
        assert_eq!(diff(None, &next), Vec::new());
    }

    #[test]
    fn unchanged_snapshot_has_no_changes() {
        let same = snapshot(
            vec![("v1", version("IN_REVIEW", known_since(0)))],
            vec![("b1", build("VALID", Some("IN_BETA_TESTING")))],
        );
        assert_eq!(diff(Some(&same), &same.clone()), Vec::new());
    }

    #[test]
    fn version_state_change_reports_old_new_and_time_in_previous_state() {
        let prev = snapshot(
            vec![("v1", version("WAITING_FOR_REVIEW", known_since(0)))],
            vec![],
        );
        let next = snapshot(vec![("v1", version("IN_REVIEW", known_since(125)))], vec![]);
        assert_eq!(
            diff(Some(&prev), &next),
            vec![Change::VersionState {
                app: hello(),
                version: version_ref("v1"),
                old: Some("WAITING_FOR_REVIEW".into()),
                new: "IN_REVIEW".into(),
                time_in_previous_state: Some(TimeDelta::minutes(125)),
            }]
        );
    }

    #[test]
    fn time_in_a_state_already_there_at_baseline_is_unknown() {
        let baseline_since = StateSince {
            at: at(0),
            at_baseline: true,
        };
        let prev = snapshot(
            vec![("v1", version("WAITING_FOR_REVIEW", baseline_since))],
            vec![],
        );
        let next = snapshot(vec![("v1", version("IN_REVIEW", known_since(10)))], vec![]);
        let changes = diff(Some(&prev), &next);
        assert!(matches!(
            changes.as_slice(),
            [Change::VersionState {
                time_in_previous_state: None,
                ..
            }]
        ));
    }

    #[test]
    fn skipped_intermediate_states_are_one_jump() {
        // WAITING_FOR_REVIEW -> IN_REVIEW -> PENDING_DEVELOPER_RELEASE happened between two sweeps.
        let prev = snapshot(
            vec![("v1", version("WAITING_FOR_REVIEW", known_since(0)))],
            vec![("b1", build("PROCESSING", None))],
        );
        let next = snapshot(
            vec![("v1", version("PENDING_DEVELOPER_RELEASE", known_since(60)))],
            vec![("b1", build("VALID", None))],
        );
        let changes = diff(Some(&prev), &next);
        assert_eq!(changes.len(), 2);
        assert!(
            matches!(&changes[0], Change::VersionState { old: Some(old), new, .. }
            if old == "WAITING_FOR_REVIEW" && new == "PENDING_DEVELOPER_RELEASE")
        );
        assert!(
            matches!(&changes[1], Change::BuildProcessing { old: Some(old), new, .. }
            if old == "PROCESSING" && new == "VALID")
        );
    }

    #[test]
    fn unknown_future_states_pass_through() {
        let prev = snapshot(
            vec![("v1", version("IN_REVIEW", known_since(0)))],
            vec![("b1", build("PROCESSING", Some("IN_BETA_REVIEW")))],
        );
        let next = snapshot(
            vec![("v1", version("AWAITING_HOLOGRAPHIC_AUDIT", known_since(5)))],
            vec![("b1", build("QUANTUM_SIGNING", Some("BETA_TELEPORTED")))],
        );
        let changes = diff(Some(&prev), &next);
        let news: Vec<&str> = changes
            .iter()
            .map(|change| match change {
                Change::VersionState { new, .. }
                | Change::BuildProcessing { new, .. }
                | Change::BuildBeta { new, .. }
                | Change::PhasedRelease { new, .. } => new.as_str(),
                Change::PlayRelease { new_state, .. } => new_state.as_str(),
            })
            .collect();
        assert_eq!(
            news,
            [
                "AWAITING_HOLOGRAPHIC_AUDIT",
                "QUANTUM_SIGNING",
                "BETA_TELEPORTED"
            ]
        );
    }

    #[test]
    fn new_version_and_new_build_are_reported_with_no_old_state() {
        let prev = snapshot(vec![], vec![]);
        let next = snapshot(
            vec![("v2", version("PREPARE_FOR_SUBMISSION", known_since(3)))],
            vec![("b2", build("PROCESSING", Some("PROCESSING")))],
        );
        assert_eq!(
            diff(Some(&prev), &next),
            vec![
                Change::VersionState {
                    app: hello(),
                    version: version_ref("v2"),
                    old: None,
                    new: "PREPARE_FOR_SUBMISSION".into(),
                    time_in_previous_state: None,
                },
                // A new build is one event, by processing state, even with a TestFlight state.
                Change::BuildProcessing {
                    app: hello(),
                    build: build_ref("b2"),
                    old: None,
                    new: "PROCESSING".into(),
                },
            ]
        );
    }

    #[test]
    fn testflight_external_state_change_is_a_beta_change() {
        let prev = snapshot(vec![], vec![("b1", build("VALID", None))]);
        let mid = snapshot(
            vec![],
            vec![("b1", build("VALID", Some("WAITING_FOR_BETA_REVIEW")))],
        );
        let next = snapshot(vec![], vec![("b1", build("VALID", Some("BETA_APPROVED")))]);
        assert_eq!(
            diff(Some(&prev), &mid),
            vec![Change::BuildBeta {
                app: hello(),
                build: build_ref("b1"),
                old: None,
                new: "WAITING_FOR_BETA_REVIEW".into(),
            }]
        );
        assert_eq!(
            diff(Some(&mid), &next),
            vec![Change::BuildBeta {
                app: hello(),
                build: build_ref("b1"),
                old: Some("WAITING_FOR_BETA_REVIEW".into()),
                new: "BETA_APPROVED".into(),
            }]
        );
    }

    #[test]
    fn internal_state_and_beta_review_changes_alone_are_not_events() {
        let prev = snapshot(
            vec![],
            vec![("b1", build("VALID", Some("IN_BETA_TESTING")))],
        );
        let mut changed = build("VALID", Some("IN_BETA_TESTING"));
        changed.internal_build_state = Some("IN_BETA_TESTING".into());
        changed.beta_review_state = Some("APPROVED".into());
        let next = snapshot(vec![], vec![("b1", changed)]);
        assert_eq!(diff(Some(&prev), &next), Vec::new());
    }

    #[test]
    fn builds_and_versions_leaving_the_view_are_not_events() {
        let prev = snapshot(
            vec![("v1", version("READY_FOR_DISTRIBUTION", known_since(0)))],
            vec![
                ("b1", build("VALID", Some("IN_BETA_TESTING"))),
                ("b2", build("VALID", None)),
            ],
        );
        let next = snapshot(vec![], vec![("b2", build("VALID", None))]);
        assert_eq!(diff(Some(&prev), &next), Vec::new());
    }

    #[test]
    fn app_newly_visible_after_baseline_reports_its_versions_and_builds_as_new() {
        let prev = snapshot(vec![], vec![]);
        let mut next = prev.clone();
        next.apps.insert(
            "app2".into(),
            AppSnapshot {
                name: "World".into(),
                bundle_id: "com.example.world".into(),
                versions: [(
                    "v9".to_owned(),
                    version("READY_FOR_DISTRIBUTION", known_since(0)),
                )]
                .into(),
            },
        );
        let mut world_build = build("VALID", Some("IN_BETA_TESTING"));
        world_build.app_id = "app2".into();
        next.builds.insert("b9".into(), world_build);
        let changes = diff(Some(&prev), &next);
        assert_eq!(changes.len(), 2);
        assert!(changes.iter().all(|change| change.app().id == "app2"));
        assert!(
            matches!(&changes[0], Change::VersionState { old: None, new, .. } if new == "READY_FOR_DISTRIBUTION")
        );
        assert!(
            matches!(&changes[1], Change::BuildProcessing { old: None, new, .. } if new == "VALID")
        );
    }

    #[test]
    fn phased_release_transitions() {
        let with_phased = |state: Option<&str>, day: Option<u32>| {
            let mut v = version("READY_FOR_DISTRIBUTION", known_since(0));
            v.phased_release = state.map(|state| PhasedReleaseSeen::Present {
                state: state.into(),
                current_day_number: day,
            });
            snapshot(vec![("v1", v)], vec![])
        };
        let phased = |old: Option<&str>, new: &str, day: Option<u32>| Change::PhasedRelease {
            app: hello(),
            version: version_ref("v1"),
            old: old.map(str::to_owned),
            new: new.into(),
            current_day_number: day,
        };
        let unread = with_phased(None, None);
        let inactive = with_phased(Some("INACTIVE"), None);
        let active = with_phased(Some("ACTIVE"), Some(1));
        let active_later = with_phased(Some("ACTIVE"), Some(4));
        let paused = with_phased(Some("PAUSED"), Some(4));
        let complete = with_phased(Some("COMPLETE"), Some(7));

        // Configured but not started is not news; starting is.
        assert_eq!(diff(Some(&unread), &inactive), Vec::new());
        assert_eq!(
            diff(Some(&inactive), &active),
            vec![phased(Some("INACTIVE"), "ACTIVE", Some(1))]
        );
        // A rollout found under way on a version whose phased release was never read (it was
        // live before shipwatch watched it) is a baseline, not news ...
        assert_eq!(diff(Some(&unread), &active), Vec::new());
        // ... but one found on the version's way into release is.
        let mut entering = unread.clone();
        for app in entering.apps.values_mut() {
            for version in app.versions.values_mut() {
                version.state = "PENDING_DEVELOPER_RELEASE".into();
            }
        }
        let started: Vec<Change> = diff(Some(&entering), &active)
            .into_iter()
            .filter(|change| matches!(change, Change::PhasedRelease { .. }))
            .collect();
        assert_eq!(started, vec![phased(None, "ACTIVE", Some(1))]);
        // A new day is not a state change.
        assert_eq!(diff(Some(&active), &active_later), Vec::new());
        assert_eq!(
            diff(Some(&active_later), &paused),
            vec![phased(Some("ACTIVE"), "PAUSED", Some(4))]
        );
        assert_eq!(
            diff(Some(&paused), &active_later),
            vec![phased(Some("PAUSED"), "ACTIVE", Some(4))]
        );
        assert_eq!(
            diff(Some(&active_later), &complete),
            vec![phased(Some("ACTIVE"), "COMPLETE", Some(7))]
        );
    }

    #[test]
    fn order_is_deterministic_by_app_then_versions_then_builds_by_upload() {
        let prev = snapshot(vec![], vec![]);
        let mut older = build("PROCESSING", None);
        older.uploaded_date = Some(at(-30));
        let newer = build("PROCESSING", None);
        let next = snapshot(
            vec![
                ("vB", version("PREPARE_FOR_SUBMISSION", known_since(1))),
                ("vA", version("PREPARE_FOR_SUBMISSION", known_since(1))),
            ],
            vec![("b-newer", newer), ("b-older", older)],
        );
        let ids: Vec<String> = diff(Some(&prev), &next)
            .iter()
            .map(|change| match change {
                Change::VersionState { version, .. } => version.id.clone(),
                Change::BuildProcessing { build, .. } => build.id.clone(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(ids, ["vA", "vB", "b-older", "b-newer"]);
    }
}
