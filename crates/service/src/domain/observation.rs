//! What one read of a store account returned, in store-neutral terms. Each store adapter (App
//! Store Connect today) maps its own models into these; [`crate::domain::snapshot::KeySnapshot::observe`]
//! turns an observation into the snapshot the sweep diffs.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// One account read: its apps with their versions, its recent builds, and the phased releases
/// read this time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observation {
    pub apps: Vec<ObservedApp>,
    pub builds: Vec<ObservedBuild>,
    /// Phased releases read this time, by version id (`None`: the version has none). Versions
    /// not in the map were not read again.
    pub phased_releases: BTreeMap<String, Option<ObservedPhasedRelease>>,
    /// Google Play keys: each package's tracks.
    pub play_apps: Vec<ObservedPlayApp>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedApp {
    pub id: String,
    pub name: String,
    pub bundle_id: String,
    pub versions: Vec<ObservedVersion>,
}

/// A store version of an app. States are the store's own enum strings, unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedVersion {
    pub id: String,
    pub version_string: String,
    pub platform: String,
    pub state: String,
    pub release_type: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedBuild {
    pub id: String,
    pub app_id: String,
    /// The build number.
    pub version: String,
    /// The marketing version the build belongs to.
    pub short_version: Option<String>,
    pub platform: Option<String>,
    pub processing_state: String,
    pub external_build_state: Option<String>,
    pub internal_build_state: Option<String>,
    pub beta_review_state: Option<String>,
    pub uploaded_date: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedPhasedRelease {
    pub state: String,
    pub current_day_number: Option<u32>,
}

/// One Google Play app as one read showed it: the tracks of `edits.tracks.list`, and the default
/// listing's title when it was read this time (`None`: not read; the snapshot keeps the last).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedPlayApp {
    pub package_name: String,
    pub title: Option<String>,
    pub tracks: Vec<ObservedTrack>,
}

/// A Google Play track (`production`, `beta`, `alpha`, `internal`, or a custom one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedTrack {
    pub track: String,
    pub releases: Vec<ObservedRelease>,
}

/// A `TrackRelease`: Google's `status` (`draft`, `inProgress`, `halted`, `completed`) unchanged,
/// `versionCodes` as Google sends them (strings), `userFraction` of a staged rollout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedRelease {
    pub name: Option<String>,
    pub version_codes: Vec<String>,
    pub status: String,
    pub user_fraction: Option<serde_json::Number>,
}
