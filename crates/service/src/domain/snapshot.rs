//! What one key's App Store Connect account looked like at one sweep.
//!
//! A [`KeySnapshot`] is stored as JSON in [`crate::model::StoredSnapshot::state`]; the next sweep diffs
//! against it (see [`crate::domain::diff`]). Maps are `BTreeMap`s so the serialization is stable and
//! every walk over a snapshot is deterministic.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::observation::{Observation, ObservedApp};

/// `appVersionState` of a version that is approved and live (or going live) on the App Store.
pub const READY_FOR_DISTRIBUTION: &str = "READY_FOR_DISTRIBUTION";
/// `appVersionState` of an approved version waiting for the developer to release it.
pub const PENDING_DEVELOPER_RELEASE: &str = "PENDING_DEVELOPER_RELEASE";
/// `phasedReleaseState` of a phased release that has run all its days (or was released to everyone).
pub const PHASED_RELEASE_COMPLETE: &str = "COMPLETE";
/// `phasedReleaseState` of a phased release configured but not yet started.
pub const PHASED_RELEASE_INACTIVE: &str = "INACTIVE";

/// The snapshot could not be turned into, or read back from, its stored JSON.
#[derive(Debug, thiserror::Error)]
#[error("key snapshot JSON: {0}")]
pub struct SnapshotCodecError(#[from] serde_json::Error);

/// Everything one key's sweep saw: apps (with their App Store versions) and recent builds.
/// Account blocks (agreements) are not part of it: they are the key's status, changed by a
/// conditional write so each is announced once.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySnapshot {
    /// App Store Connect app id -> app.
    #[serde(default)]
    pub apps: BTreeMap<String, AppSnapshot>,
    /// Build id -> build, for the builds in the window the sweep reads (newest uploads first).
    #[serde(default)]
    pub builds: BTreeMap<String, BuildSnapshot>,
    /// What earlier reads showed and the last ones did not, kept for [`VANISHED_TTL_DAYS`] so that
    /// its return is compared with its last state instead of announced as new (a store's empty or
    /// partial answer is a glitch more often than a deletion).
    #[serde(default, skip_serializing_if = "Vanished::is_empty")]
    pub vanished: Vanished,
    /// Google Play keys: package name -> app with its tracks and releases.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub play_apps: BTreeMap<String, super::play_snapshot::PlayAppSnapshot>,
}

/// How long a vanished app, version or build is remembered.
pub const VANISHED_TTL_DAYS: i64 = 30;
/// Most vanished builds remembered (builds leave the newest-uploads window all the time).
pub const MAX_VANISHED_BUILDS: usize = 400;

/// Apps, versions (of apps still visible) and builds no longer seen, each with its last state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vanished {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub apps: BTreeMap<String, Gone<AppSnapshot>>,
    /// By version id (store version ids are unique across apps).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub versions: BTreeMap<String, Gone<VersionSnapshot>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub builds: BTreeMap<String, Gone<BuildSnapshot>>,
}

impl Vanished {
    pub fn is_empty(&self) -> bool {
        self.apps.is_empty() && self.versions.is_empty() && self.builds.is_empty()
    }
}

/// Something no longer shown by the store, in the state it last had.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gone<T> {
    /// The first read that no longer showed it.
    pub since: DateTime<Utc>,
    pub last_seen: T,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSnapshot {
    pub name: String,
    pub bundle_id: String,
    /// App Store version id -> version.
    #[serde(default)]
    pub versions: BTreeMap<String, VersionSnapshot>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionSnapshot {
    pub version_string: String,
    /// Apple's `Platform` value (`IOS`, `MAC_OS`, ...), unchanged.
    pub platform: String,
    /// Apple's `appVersionState`, unchanged (unknown future values too).
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_type: Option<String>,
    pub state_since: StateSince,
    /// The phased release as last read; `None` while it has never been read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phased_release: Option<PhasedReleaseSeen>,
}

/// When shipwatch first saw a version in its current state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateSince {
    pub at: DateTime<Utc>,
    /// The state was already there when shipwatch first looked (baseline, or an app that just
    /// became visible), so the real start is unknown and `at` is only a lower bound.
    pub at_baseline: bool,
}

/// What the last read of a version's phased release found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PhasedReleaseSeen {
    /// The version has no phased release.
    Absent,
    Present {
        /// Apple's `phasedReleaseState`, unchanged.
        state: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        current_day_number: Option<u32>,
    },
}

impl PhasedReleaseSeen {
    /// The phased release state, if there is a phased release.
    pub fn state(&self) -> Option<&str> {
        match self {
            Self::Absent => None,
            Self::Present { state, .. } => Some(state),
        }
    }

    /// `true` when nothing more can happen to it: absent, or complete.
    pub fn is_settled(&self) -> bool {
        match self {
            Self::Absent => true,
            Self::Present { state, .. } => state == PHASED_RELEASE_COMPLETE,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildSnapshot {
    /// The app the build belongs to.
    pub app_id: String,
    /// `CFBundleVersion` (the build number).
    pub version: String,
    /// `CFBundleShortVersionString`, from the build's pre-release version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_version: Option<String>,
    /// Apple's `Platform`, from the build's pre-release version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Apple's `processingState` (`PROCESSING`, `FAILED`, `INVALID`, `VALID`, ...).
    pub processing_state: String,
    /// Apple's `externalBuildState` (TestFlight external testing), from the build beta detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_build_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_build_state: Option<String>,
    /// Apple's `betaReviewState`, from the build's beta app review submission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta_review_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_date: Option<DateTime<Utc>>,
}

impl KeySnapshot {
    /// The snapshot of what App Store Connect shows now.
    ///
    /// `prev` carries over what one read does not show: since when each version is in its state
    /// (kept while the state is unchanged; a state first seen at baseline, or in an app that just
    /// became visible, is marked as having an unknown start), and the phased release of versions
    /// that were not read again this time. `phased` holds the phased releases read this time, by
    /// version id (`None`: the version has none).
    pub fn observe(
        prev: Option<&KeySnapshot>,
        observation: &Observation,
        now: DateTime<Utc>,
    ) -> KeySnapshot {
        let phased = &observation.phased_releases;
        let mut snapshot = KeySnapshot::default();
        for listed in &observation.apps {
            let prev_app = prev.and_then(|prev| prev.app_seen(&listed.id));
            let versions = listed
                .versions
                .iter()
                .map(|version| {
                    let prev_version =
                        prev.and_then(|prev| prev.version_seen(&listed.id, &version.id));
                    let state = version.state.as_str();
                    let state_since = match prev_version {
                        Some(prev_version) if prev_version.state == state => {
                            prev_version.state_since
                        }
                        _ => StateSince {
                            at: now,
                            // Only a change seen between two sweeps of the app has a known start.
                            at_baseline: prev_app.is_none(),
                        },
                    };
                    let phased_release = match phased.get(&version.id) {
                        Some(Some(read)) => Some(PhasedReleaseSeen::Present {
                            state: read.state.clone(),
                            current_day_number: read.current_day_number,
                        }),
                        Some(None) => Some(PhasedReleaseSeen::Absent),
                        None => prev_version.and_then(|prev| prev.phased_release.clone()),
                    };
                    let snapshot = VersionSnapshot {
                        version_string: version.version_string.clone(),
                        platform: version.platform.clone(),
                        state: state.to_owned(),
                        release_type: version.release_type.clone(),
                        state_since,
                        phased_release,
                    };
                    (version.id.clone(), snapshot)
                })
                .collect();
            snapshot.apps.insert(
                listed.id.clone(),
                AppSnapshot {
                    name: listed.name.clone(),
                    bundle_id: listed.bundle_id.clone(),
                    versions,
                },
            );
        }
        for build in &observation.builds {
            snapshot.builds.insert(
                build.id.clone(),
                BuildSnapshot {
                    app_id: build.app_id.clone(),
                    version: build.version.clone(),
                    short_version: build.short_version.clone(),
                    platform: build.platform.clone(),
                    processing_state: build.processing_state.clone(),
                    external_build_state: build.external_build_state.clone(),
                    internal_build_state: build.internal_build_state.clone(),
                    beta_review_state: build.beta_review_state.clone(),
                    uploaded_date: build.uploaded_date,
                },
            );
        }
        if let Some(prev) = prev {
            snapshot.vanished = prev.still_vanished(&snapshot, now);
        }
        snapshot.play_apps = super::play_snapshot::observe_play(prev, &observation.play_apps);
        snapshot
    }

    /// The app as last seen, visible or vanished.
    pub fn app_seen(&self, app_id: &str) -> Option<&AppSnapshot> {
        self.apps
            .get(app_id)
            .or_else(|| self.vanished.apps.get(app_id).map(|gone| &gone.last_seen))
    }

    /// The version as last seen, in a visible or a vanished app, or vanished itself.
    pub fn version_seen(&self, app_id: &str, version_id: &str) -> Option<&VersionSnapshot> {
        self.app_seen(app_id)
            .and_then(|app| app.versions.get(version_id))
            .or_else(|| {
                self.vanished
                    .versions
                    .get(version_id)
                    .map(|gone| &gone.last_seen)
            })
    }

    /// The build as last seen, visible or vanished.
    pub fn build_seen(&self, build_id: &str) -> Option<&BuildSnapshot> {
        self.builds.get(build_id).or_else(|| {
            self.vanished
                .builds
                .get(build_id)
                .map(|gone| &gone.last_seen)
        })
    }

    /// What this snapshot showed (or still remembered) that `next` does not, within the TTL.
    fn still_vanished(&self, next: &KeySnapshot, now: DateTime<Utc>) -> Vanished {
        let fresh = |gone_since: DateTime<Utc>| {
            now - gone_since < chrono::TimeDelta::days(VANISHED_TTL_DAYS)
        };
        let mut vanished = Vanished::default();
        for (id, app) in &self.apps {
            if !next.apps.contains_key(id) {
                vanished.apps.insert(
                    id.clone(),
                    Gone {
                        since: now,
                        last_seen: app.clone(),
                    },
                );
            }
        }
        for (id, gone) in &self.vanished.apps {
            if !next.apps.contains_key(id) && fresh(gone.since) {
                vanished.apps.insert(id.clone(), gone.clone());
            }
        }
        let visible_versions: std::collections::BTreeSet<&str> = next
            .apps
            .values()
            .flat_map(|app| app.versions.keys().map(String::as_str))
            .collect();
        // Versions of a vanished app stay with their app; these are versions gone from apps
        // still visible.
        for (_, app) in self
            .apps
            .iter()
            .filter(|(id, _)| next.apps.contains_key(*id))
        {
            for (id, version) in &app.versions {
                if !visible_versions.contains(id.as_str()) {
                    vanished.versions.insert(
                        id.clone(),
                        Gone {
                            since: now,
                            last_seen: version.clone(),
                        },
                    );
                }
            }
        }
        for (id, gone) in &self.vanished.versions {
            if !visible_versions.contains(id.as_str()) && fresh(gone.since) {
                vanished
                    .versions
                    .entry(id.clone())
                    .or_insert_with(|| gone.clone());
            }
        }
        for (id, build) in &self.builds {
            if !next.builds.contains_key(id) {
                vanished.builds.insert(
                    id.clone(),
                    Gone {
                        since: now,
                        last_seen: build.clone(),
                    },
                );
            }
        }
        for (id, gone) in &self.vanished.builds {
            if !next.builds.contains_key(id) && fresh(gone.since) {
                vanished
                    .builds
                    .entry(id.clone())
                    .or_insert_with(|| gone.clone());
            }
        }
        if vanished.builds.len() > MAX_VANISHED_BUILDS {
            // Forget the oldest uploads first.
            let mut by_upload: Vec<(Option<DateTime<Utc>>, String)> = vanished
                .builds
                .iter()
                .map(|(id, gone)| (gone.last_seen.uploaded_date, id.clone()))
                .collect();
            by_upload.sort();
            let excess = by_upload.len() - MAX_VANISHED_BUILDS;
            for (_, id) in by_upload.into_iter().take(excess) {
                vanished.builds.remove(&id);
            }
        }
        vanished
    }

    /// Reads a snapshot back from [`crate::model::StoredSnapshot::state`].
    pub fn from_json(state: &serde_json::Value) -> Result<Self, SnapshotCodecError> {
        Ok(Self::deserialize(state)?)
    }

    /// The JSON stored in [`crate::model::StoredSnapshot::state`].
    pub fn to_json(&self) -> Result<serde_json::Value, SnapshotCodecError> {
        Ok(serde_json::to_value(self)?)
    }

    /// The app's builds in this snapshot, newest upload first (ties by id).
    pub fn builds_of<'a>(&'a self, app_id: &str) -> Vec<(&'a str, &'a BuildSnapshot)> {
        let mut builds: Vec<(&str, &BuildSnapshot)> = self
            .builds
            .iter()
            .filter(|(_, build)| build.app_id == app_id)
            .map(|(id, build)| (id.as_str(), build))
            .collect();
        builds.sort_by(|(id_a, a), (id_b, b)| {
            b.uploaded_date
                .cmp(&a.uploaded_date)
                .then_with(|| id_a.cmp(id_b))
        });
        builds
    }

    /// Number of apps in the snapshot.
    pub fn apps_count(&self) -> usize {
        self.apps.len()
    }
}

/// The versions whose phased release the sweep reads (one request each), by version id.
///
/// Phased releases are not part of the apps listing (Apple allows no nested include), so they cost
/// a request per version. To stay near two requests per key, only versions where a phased release
/// can be (or is) under way are read, and only until it is settled. A version in
/// `READY_FOR_DISTRIBUTION` or `PENDING_DEVELOPER_RELEASE` is read
/// - when it appeared or changed state since the previous snapshot (a phased release may start
///   there);
/// - once, when live (`READY_FOR_DISTRIBUTION`) and its phased release was never read: at the
///   key's baseline, in an app that just became visible, and in snapshots stored before
///   baselines read phased releases (so a rollout already running when shipwatch starts watching
///   is followed);
/// - while `READY_FOR_DISTRIBUTION` with a phased release last seen in any state but `COMPLETE`.
///
/// A version whose phased release was found absent or complete is not read again unless it
/// re-enters one of those states.
pub fn phased_release_checks(prev: Option<&KeySnapshot>, apps: &[ObservedApp]) -> Vec<String> {
    let mut checks = Vec::new();
    for listed in apps {
        let prev_app = prev.and_then(|prev| prev.app_seen(&listed.id));
        for version in &listed.versions {
            let state = version.state.as_str();
            if state != READY_FOR_DISTRIBUTION && state != PENDING_DEVELOPER_RELEASE {
                continue;
            }
            let live = state == READY_FOR_DISTRIBUTION;
            let prev_version = prev.and_then(|prev| prev.version_seen(&listed.id, &version.id));
            let needed = match (prev_app, prev_version) {
                // Baseline of the key or of the app: live versions only.
                (None, _) => live,
                (Some(_), None) => true,
                (Some(_), Some(prev_version)) if prev_version.state != state => true,
                (Some(_), Some(prev_version)) => match &prev_version.phased_release {
                    None => live,
                    Some(seen) => live && !seen.is_settled(),
                },
            };
            if needed {
                checks.push(version.id.clone());
            }
        }
    }
    checks
}

#[cfg(test)]
mod tests {
    use crate::domain::observation::{ObservedBuild, ObservedPhasedRelease, ObservedVersion};
    use chrono::TimeDelta;

    use super::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default() + TimeDelta::minutes(minutes)
    }

    fn app(id: &str, versions: &[(&str, &str)]) -> ObservedApp {
        ObservedApp {
            id: id.into(),
            name: format!("App {id}"),
            bundle_id: format!("com.example.{id}"),
            versions: versions
                .iter()
                .map(|(version_id, state)| ObservedVersion {
                    id: (*version_id).into(),
                    version_string: "1.0".into(),
                    platform: "IOS".into(),
                    state: (*state).into(),
                    release_type: Some("MANUAL".into()),
                })
                .collect(),
        }
    }

    fn build(id: &str, processing: &str, external: Option<&str>) -> ObservedBuild {
        ObservedBuild {
            id: id.into(),
            app_id: "a1".into(),
            version: "7".into(),
            short_version: Some("1.0".into()),
            platform: Some("IOS".into()),
            processing_state: processing.into(),
            external_build_state: external.map(str::to_owned),
            internal_build_state: None,
            beta_review_state: None,
            uploaded_date: Some(at(-5)),
        }
    }

    fn phased(state: &str, day: Option<u32>) -> Option<ObservedPhasedRelease> {
        Some(ObservedPhasedRelease {
            state: state.into(),
            current_day_number: day,
        })
    }

    fn observation(
        apps: &[ObservedApp],
        builds: &[ObservedBuild],
        phased: &[(&str, Option<ObservedPhasedRelease>)],
    ) -> Observation {
        Observation {
            apps: apps.to_vec(),
            builds: builds.to_vec(),
            phased_releases: phased
                .iter()
                .map(|(id, read)| ((*id).to_owned(), read.clone()))
                .collect(),
            play_apps: Vec::new(),
        }
    }

    fn observe(
        prev: Option<&KeySnapshot>,
        apps: &[ObservedApp],
        phased: &[(&str, Option<ObservedPhasedRelease>)],
        minutes: i64,
    ) -> KeySnapshot {
        KeySnapshot::observe(prev, &observation(apps, &[], phased), at(minutes))
    }

    fn version<'a>(snapshot: &'a KeySnapshot, app: &str, id: &str) -> &'a VersionSnapshot {
        &snapshot.apps[app].versions[id]
    }

    #[test]
    fn observe_maps_apps_versions_and_builds() {
        let builds = [build("b1", "VALID", Some("IN_BETA_TESTING"))];
        let snapshot = KeySnapshot::observe(
            None,
            &observation(&[app("a1", &[("v1", "WAITING_FOR_REVIEW")])], &builds, &[]),
            at(0),
        );
        let app = &snapshot.apps["a1"];
        assert_eq!(
            (app.name.as_str(), app.bundle_id.as_str()),
            ("App a1", "com.example.a1")
        );
        assert_eq!(
            version(&snapshot, "a1", "v1"),
            &VersionSnapshot {
                version_string: "1.0".into(),
                platform: "IOS".into(),
                state: "WAITING_FOR_REVIEW".into(),
                release_type: Some("MANUAL".into()),
                state_since: StateSince {
                    at: at(0),
                    at_baseline: true
                },
                phased_release: None,
            }
        );
        assert_eq!(
            snapshot.builds["b1"],
            BuildSnapshot {
                app_id: "a1".into(),
                version: "7".into(),
                short_version: Some("1.0".into()),
                platform: Some("IOS".into()),
                processing_state: "VALID".into(),
                external_build_state: Some("IN_BETA_TESTING".into()),
                internal_build_state: None,
                beta_review_state: None,
                uploaded_date: Some(at(-5)),
            }
        );
    }

    #[test]
    fn state_since_is_kept_while_unchanged_and_reset_on_change() {
        let baseline = observe(None, &[app("a1", &[("v1", "WAITING_FOR_REVIEW")])], &[], 0);
        let same = observe(
            Some(&baseline),
            &[app("a1", &[("v1", "WAITING_FOR_REVIEW")])],
            &[],
            10,
        );
        assert_eq!(
            version(&same, "a1", "v1").state_since,
            StateSince {
                at: at(0),
                at_baseline: true
            }
        );
        let changed = observe(Some(&same), &[app("a1", &[("v1", "IN_REVIEW")])], &[], 20);
        assert_eq!(
            version(&changed, "a1", "v1").state_since,
            StateSince {
                at: at(20),
                at_baseline: false
            }
        );
        // A version new in a known app starts now; an app that just became visible is unknown.
        let more = observe(
            Some(&changed),
            &[
                app(
                    "a1",
                    &[("v1", "IN_REVIEW"), ("v2", "PREPARE_FOR_SUBMISSION")],
                ),
                app("a2", &[("v3", "READY_FOR_DISTRIBUTION")]),
            ],
            &[],
            30,
        );
        assert!(!version(&more, "a1", "v2").state_since.at_baseline);
        assert!(version(&more, "a2", "v3").state_since.at_baseline);
    }

    #[test]
    fn phased_release_reads_replace_and_unread_versions_carry_over() {
        let apps = [app("a1", &[("v1", "READY_FOR_DISTRIBUTION")])];
        let first = observe(None, &apps, &[("v1", phased("ACTIVE", Some(2)))], 0);
        assert_eq!(
            version(&first, "a1", "v1").phased_release,
            Some(PhasedReleaseSeen::Present {
                state: "ACTIVE".into(),
                current_day_number: Some(2)
            })
        );
        let carried = observe(Some(&first), &apps, &[], 10);
        assert_eq!(
            version(&carried, "a1", "v1").phased_release,
            version(&first, "a1", "v1").phased_release
        );
        let absent = observe(Some(&carried), &apps, &[("v1", None)], 20);
        assert_eq!(
            version(&absent, "a1", "v1").phased_release,
            Some(PhasedReleaseSeen::Absent)
        );
    }

    #[test]
    fn phased_release_checks_read_unread_and_unsettled_versions_only() {
        let rfd = READY_FOR_DISTRIBUTION;
        let pdr = PENDING_DEVELOPER_RELEASE;
        // Baseline: each live version once, nothing else.
        assert_eq!(
            phased_release_checks(
                None,
                &[app("a1", &[("v1", rfd), ("v2", pdr), ("v3", "IN_REVIEW")])]
            ),
            ["v1"]
        );

        let prev = observe(
            None,
            &[app(
                "a1",
                &[
                    ("v-review", "IN_REVIEW"),
                    ("v-pending", pdr),
                    ("v-live-unread", rfd),
                    ("v-active", rfd),
                    ("v-complete", rfd),
                    ("v-absent", rfd),
                    ("v-inactive", rfd),
                ],
            )],
            &[
                ("v-active", phased("ACTIVE", Some(3))),
                ("v-complete", phased("COMPLETE", Some(7))),
                ("v-absent", None),
                ("v-inactive", phased("INACTIVE", None)),
            ],
            0,
        );
        let now = [
            app(
                "a1",
                &[
                    ("v-review", pdr),  // just entered
                    ("v-pending", rfd), // just entered
                    ("v-live-unread", rfd),
                    ("v-active", rfd),
                    ("v-complete", rfd),
                    ("v-absent", rfd),
                    ("v-inactive", rfd),
                    ("v-new", rfd), // appeared directly there
                    ("v-new-other", "PREPARE_FOR_SUBMISSION"),
                ],
            ),
            app("a2", &[("v-other-app", rfd)]), // newly visible: like baseline
        ];
        let mut checks = phased_release_checks(Some(&prev), &now);
        checks.sort();
        // Not read again: found complete or absent; never read: the live version the previous
        // snapshot did not read.
        assert_eq!(
            checks,
            [
                "v-active",
                "v-inactive",
                "v-live-unread",
                "v-new",
                "v-other-app",
                "v-pending",
                "v-review"
            ]
        );
        // Once read and settled, a steady sweep reads only the unsettled ones.
        let read = observe(
            Some(&prev),
            &now,
            &[
                ("v-live-unread", None),
                ("v-new", phased("COMPLETE", Some(7))),
                ("v-other-app", None),
                ("v-pending", phased("ACTIVE", Some(1))),
                ("v-review", None),
            ],
            10,
        );
        let mut steady = phased_release_checks(Some(&read), &now);
        steady.sort();
        assert_eq!(steady, ["v-active", "v-inactive", "v-pending"]);
    }

    /// A normal read, an empty (or partial) one, then the normal one again: nothing to announce.
    fn glitch_round(apps_empty: bool, builds_empty: bool) -> Vec<crate::domain::diff::Change> {
        use crate::domain::diff::diff;
        let apps = [app("a1", &[("v1", "WAITING_FOR_REVIEW")])];
        let builds = [build("b1", "VALID", Some("IN_BETA_TESTING"))];
        let normal = observation(&apps, &builds, &[]);
        let glitch = observation(
            if apps_empty { &[] } else { &apps },
            if builds_empty { &[] } else { &builds },
            &[],
        );
        let first = KeySnapshot::observe(None, &normal, at(0));
        let during = KeySnapshot::observe(Some(&first), &glitch, at(1));
        let after = KeySnapshot::observe(Some(&during), &normal, at(2));
        let mut changes = diff(Some(&first), &during);
        changes.extend(diff(Some(&during), &after));
        assert_eq!(
            version(&after, "a1", "v1").state_since,
            version(&first, "a1", "v1").state_since,
            "the state's start survives the glitch"
        );
        changes
    }

    #[test]
    fn an_empty_answer_then_the_normal_one_announces_nothing() {
        assert_eq!(glitch_round(true, false), Vec::new(), "apps empty");
        assert_eq!(glitch_round(false, true), Vec::new(), "builds empty");
        assert_eq!(glitch_round(true, true), Vec::new(), "both empty");
    }

    #[test]
    fn vanished_things_are_remembered_for_a_while_then_forgotten() {
        let apps = [app("a1", &[("v1", "READY_FOR_SALE"), ("v2", "IN_REVIEW")])];
        let builds = [build("b1", "VALID", None)];
        let first = KeySnapshot::observe(None, &observation(&apps, &builds, &[]), at(0));
        let partial = KeySnapshot::observe(
            Some(&first),
            &observation(&[app("a1", &[("v1", "READY_FOR_SALE")])], &[], &[]),
            at(1),
        );
        assert!(partial.vanished.versions.contains_key("v2"));
        assert!(partial.vanished.builds.contains_key("b1"));
        assert_eq!(
            partial.version_seen("a1", "v2"),
            Some(version(&first, "a1", "v2"))
        );
        let gone = KeySnapshot::observe(Some(&partial), &observation(&[], &[], &[]), at(2));
        assert!(gone.vanished.apps.contains_key("a1"));
        assert!(gone.vanished.versions.contains_key("v2"));
        let later = at(2) + chrono::TimeDelta::days(VANISHED_TTL_DAYS);
        let forgotten = KeySnapshot::observe(Some(&gone), &observation(&[], &[], &[]), later);
        assert!(forgotten.vanished.is_empty(), "{:?}", forgotten.vanished);
    }

    #[test]
    fn json_round_trip_is_stable() -> Result<(), SnapshotCodecError> {
        let apps = [app("a1", &[("v1", "READY_FOR_DISTRIBUTION")])];
        let snapshot = KeySnapshot::observe(
            None,
            &observation(
                &apps,
                &[build("b1", "PROCESSING", None)],
                &[("v1", phased("PAUSED", Some(4)))],
            ),
            at(0),
        );
        let json = snapshot.to_json()?;
        assert_eq!(KeySnapshot::from_json(&json)?, snapshot);
        assert_eq!(
            json["apps"]["a1"]["versions"]["v1"]["phased_release"],
            serde_json::json!({"kind": "present", "state": "PAUSED", "current_day_number": 4})
        );
        assert!(KeySnapshot::from_json(&serde_json::json!({"apps": 3})).is_err());
        Ok(())
    }

    #[test]
    fn builds_of_lists_an_apps_builds_newest_first() {
        let mut older = build("b-old", "VALID", None);
        older.uploaded_date = Some(at(-60));
        let mut other_app = build("b-other", "VALID", None);
        other_app.app_id = "a2".into();
        let snapshot = KeySnapshot::observe(
            None,
            &observation(
                &[],
                &[older, build("b-new", "PROCESSING", None), other_app],
                &[],
            ),
            at(0),
        );
        let ids: Vec<&str> = snapshot.builds_of("a1").iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, ["b-new", "b-old"]);
    }
}
