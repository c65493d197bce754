//! Google Play in the key snapshot: each package's tracks and their releases, and the diff of
//! two snapshots into release transitions (`shipwatch.play_release.state_changed`).
//!
//! Rules (the same spirit as App Store Connect's in [`super::diff`]):
//! - the first sweep of a package is a silent baseline (also a package first read later);
//! - a release is identified within its track by its version codes (unique per app on Google
//!   Play), or by its name when it has none;
//! - a release seen now and not before is new (`old: None`); a change of `status` or of
//!   `userFraction` (a staged-rollout step) is one transition; a release no longer listed is not
//!   an event.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::diff::{AppRef, Change};
use super::observation::ObservedPlayApp;
use super::snapshot::KeySnapshot;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayAppSnapshot {
    /// The default listing's title, read once per baseline; empty when unknown.
    #[serde(default)]
    pub title: String,
    /// Track name -> release key ([`release_key`]) -> release.
    #[serde(default)]
    pub tracks: BTreeMap<String, BTreeMap<String, PlayReleaseSnapshot>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayReleaseSnapshot {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub version_codes: Vec<String>,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_fraction: Option<serde_json::Number>,
}

/// The `release` object of a Play event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayReleaseRef {
    pub name: Option<String>,
    pub version_codes: Vec<String>,
}

/// Identity of a release within its track.
pub fn release_key(name: Option<&str>, version_codes: &[String]) -> String {
    if version_codes.is_empty() {
        format!("name:{}", name.unwrap_or_default())
    } else {
        format!("codes:{}", version_codes.join(","))
    }
}

/// The Play part of the snapshot from what was read now; a title not read this time is the
/// last one known.
pub fn observe_play(
    prev: Option<&KeySnapshot>,
    observed: &[ObservedPlayApp],
) -> BTreeMap<String, PlayAppSnapshot> {
    observed
        .iter()
        .map(|app| {
            let title = app.title.clone().unwrap_or_else(|| {
                prev.and_then(|p| p.play_apps.get(&app.package_name))
                    .map(|p| p.title.clone())
                    .unwrap_or_default()
            });
            let tracks = app
                .tracks
                .iter()
                .map(|track| {
                    let releases = track
                        .releases
                        .iter()
                        .map(|r| {
                            (
                                release_key(r.name.as_deref(), &r.version_codes),
                                PlayReleaseSnapshot {
                                    name: r.name.clone(),
                                    version_codes: r.version_codes.clone(),
                                    status: r.status.clone(),
                                    user_fraction: r.user_fraction.clone(),
                                },
                            )
                        })
                        .collect();
                    (track.track.clone(), releases)
                })
                .collect();
            (app.package_name.clone(), PlayAppSnapshot { title, tracks })
        })
        .collect()
}

/// Whether the package needs its listing read (no title known yet).
pub fn needs_title(prev: Option<&KeySnapshot>, package_name: &str) -> bool {
    prev.and_then(|p| p.play_apps.get(package_name))
        .is_none_or(|app| app.title.is_empty())
}

/// The Play transitions from `prev` to `next`, by package, track and release key.
pub fn diff_play(prev: &KeySnapshot, next: &KeySnapshot, changes: &mut Vec<Change>) {
    for (package, app) in &next.play_apps {
        let Some(prev_app) = prev.play_apps.get(package) else {
            continue; // first read of the package: baseline
        };
        let app_ref = AppRef {
            id: package.clone(),
            name: app.title.clone(),
            bundle_id: package.clone(),
        };
        for (track, releases) in &app.tracks {
            for (key, release) in releases {
                let old = prev_app.tracks.get(track).and_then(|r| r.get(key));
                let changed = match old {
                    None => true,
                    Some(old) => {
                        old.status != release.status || old.user_fraction != release.user_fraction
                    }
                };
                if changed {
                    changes.push(Change::PlayRelease {
                        app: app_ref.clone(),
                        track: track.clone(),
                        release: PlayReleaseRef {
                            name: release.name.clone(),
                            version_codes: release.version_codes.clone(),
                        },
                        old_state: old.map(|o| o.status.clone()),
                        new_state: release.status.clone(),
                        old_user_fraction: old.and_then(|o| o.user_fraction.clone()),
                        new_user_fraction: release.user_fraction.clone(),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::observation::{Observation, ObservedRelease, ObservedTrack};

    fn read(releases: &[(&str, &str, Option<f64>)]) -> Observation {
        Observation {
            play_apps: vec![ObservedPlayApp {
                package_name: "com.example.app".into(),
                title: Some("Example".into()),
                tracks: vec![ObservedTrack {
                    track: "production".into(),
                    releases: releases
                        .iter()
                        .map(|(code, status, fraction)| ObservedRelease {
                            name: Some(format!("1.{code}")),
                            version_codes: vec![(*code).to_owned()],
                            status: (*status).to_owned(),
                            user_fraction: fraction.and_then(serde_json::Number::from_f64),
                        })
                        .collect(),
                }],
            }],
            ..Observation::default()
        }
    }

    fn snap(prev: Option<&KeySnapshot>, observation: &Observation) -> KeySnapshot {
        KeySnapshot::observe(prev, observation, chrono::Utc::now())
    }

    fn changes(prev: &KeySnapshot, next: &KeySnapshot) -> Vec<(Option<String>, String)> {
        let mut out = Vec::new();
        diff_play(prev, next, &mut out);
        out.into_iter()
            .map(|c| match c {
                Change::PlayRelease {
                    old_state,
                    new_state,
                    ..
                } => (old_state, new_state),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn baseline_is_silent_then_each_transition_is_one_change() {
        let base = snap(None, &read(&[("10", "completed", None)]));
        assert!(crate::domain::diff::diff(None, &base).is_empty());
        let same = snap(Some(&base), &read(&[("10", "completed", None)]));
        assert!(changes(&base, &same).is_empty());

        let rollout = snap(
            Some(&same),
            &read(&[("10", "completed", None), ("11", "inProgress", Some(0.1))]),
        );
        assert_eq!(changes(&same, &rollout), [(None, "inProgress".to_owned())]);
        let step = snap(
            Some(&rollout),
            &read(&[("10", "completed", None), ("11", "inProgress", Some(0.5))]),
        );
        assert_eq!(
            changes(&rollout, &step),
            [(Some("inProgress".into()), "inProgress".into())]
        );
        let halted = snap(
            Some(&step),
            &read(&[("10", "completed", None), ("11", "halted", Some(0.5))]),
        );
        assert_eq!(
            changes(&step, &halted),
            [(Some("inProgress".into()), "halted".into())]
        );
        // Through the store-neutral diff too.
        assert_eq!(crate::domain::diff::diff(Some(&step), &halted).len(), 1);
        // A release no longer listed is not an event; the title is kept when not read again.
        let mut no_title = read(&[("11", "completed", None)]);
        no_title.play_apps[0].title = None;
        let done = snap(Some(&halted), &no_title);
        assert_eq!(
            changes(&halted, &done),
            [(Some("halted".into()), "completed".into())]
        );
        assert_eq!(done.play_apps["com.example.app"].title, "Example");
        assert!(!needs_title(Some(&done), "com.example.app"));
        assert!(needs_title(None, "com.example.app"));
    }
}
