//! The team's monitored apps as its keys last saw them: current versions and recent builds.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::QueryError;
use crate::domain::snapshot::KeySnapshot;
use crate::model::{KeyRecordId, Team};
use crate::ports::{KeyStore, SweepStore};

/// Builds shown per app, newest upload first.
pub const RECENT_BUILDS_PER_APP: usize = 5;

/// One App Store Connect app, seen through one of the team's keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonitoredApp {
    /// App Store Connect app id.
    pub id: String,
    pub name: String,
    pub bundle_id: String,
    /// The key that sees it.
    pub key: KeyRecordId,
    pub versions: Vec<CurrentVersion>,
    pub builds: Vec<RecentBuild>,
    /// Google Play apps: their tracks (empty for App Store Connect apps).
    pub tracks: Vec<PlayTrack>,
    /// `"ANDROID"` for Google Play apps; `None` for App Store Connect apps (whose versions
    /// carry Apple's platform each).
    pub platform: Option<&'static str>,
}

/// A Google Play track and its releases as the last sweep saw them (Google's values).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlayTrack {
    pub track: String,
    pub releases: Vec<crate::domain::play_snapshot::PlayReleaseSnapshot>,
}

/// Apple's values, unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurrentVersion {
    pub id: String,
    pub platform: String,
    pub version_string: String,
    pub state: String,
    pub state_since: DateTime<Utc>,
    /// The phased release state, if there is a phased release.
    pub phased_release: Option<String>,
}

/// Apple's values, unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecentBuild {
    pub id: String,
    pub version: String,
    pub short_version: Option<String>,
    pub platform: Option<String>,
    pub processing_state: String,
    pub external_beta_state: Option<String>,
    pub uploaded_date: Option<DateTime<Utc>>,
}

#[derive(Clone)]
pub struct AppsQuery {
    keys: Arc<dyn KeyStore>,
    sweeps: Arc<dyn SweepStore>,
}

impl AppsQuery {
    pub fn new(keys: Arc<dyn KeyStore>, sweeps: Arc<dyn SweepStore>) -> Self {
        Self { keys, sweeps }
    }

    /// One page of the team's apps: key by key (oldest key first), each key's apps in app id
    /// order. Keys not swept yet show nothing; an unreadable snapshot is logged and skipped. Only
    /// the snapshots of the keys the page reaches are read, [`KEYS_PER_READ`] per store call.
    pub async fn page(&self, team: &Team, filter: AppsFilter) -> Result<AppsPage, QueryError> {
        let limit = match filter.limit {
            None => DEFAULT_APPS_LIMIT,
            Some(n) if (1..=MAX_APPS_LIMIT).contains(&n) => n,
            Some(_) => {
                return Err(QueryError::InvalidLimit {
                    max: MAX_APPS_LIMIT,
                });
            }
        } as usize;
        let after = match filter.cursor.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(AppsCursor::decode(raw).ok_or(QueryError::InvalidCursor)?),
        };
        let keys = self.keys.list_keys(&team.id).await?;
        let start = match &after {
            None => 0,
            // A key deleted since the previous page leaves nowhere to go on from.
            Some(cursor) => keys
                .iter()
                .position(|key| key.id == cursor.key)
                .ok_or(QueryError::InvalidCursor)?,
        };
        let ids: Vec<KeyRecordId> = keys[start..].iter().map(|key| key.id.clone()).collect();
        let mut apps = Vec::new();
        'keys: for chunk in ids.chunks(KEYS_PER_READ) {
            let mut snapshots: HashMap<KeyRecordId, serde_json::Value> = self
                .sweeps
                .get_snapshots(chunk)
                .await?
                .into_iter()
                .map(|stored| (stored.key_record_id, stored.state))
                .collect();
            for key in chunk {
                let Some(state) = snapshots.remove(key) else {
                    continue;
                };
                let snapshot = match KeySnapshot::from_json(&state) {
                    Ok(snapshot) => snapshot,
                    Err(err) => {
                        tracing::error!(key = %key, error = %err, "stored snapshot unreadable");
                        continue;
                    }
                };
                let seen = apps_of(key, &snapshot)
                    .into_iter()
                    .filter(|app| match &after {
                        Some(cursor) if cursor.key == *key => app.id > cursor.app,
                        _ => true,
                    });
                apps.extend(seen);
                if apps.len() > limit {
                    break 'keys;
                }
            }
        }
        let next_cursor = if apps.len() > limit {
            apps.truncate(limit);
            apps.last().map(|last| {
                AppsCursor {
                    key: last.key.clone(),
                    app: last.id.clone(),
                }
                .encode()
            })
        } else {
            None
        };
        Ok(AppsPage { apps, next_cursor })
    }
}

/// Which page of `GET /v1/apps`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppsFilter {
    /// 1 to [`MAX_APPS_LIMIT`]; [`DEFAULT_APPS_LIMIT`] when absent.
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppsPage {
    pub apps: Vec<MonitoredApp>,
    pub next_cursor: Option<String>,
}

pub const DEFAULT_APPS_LIMIT: u32 = 100;
pub const MAX_APPS_LIMIT: u32 = 200;
/// Keys whose snapshots one store call reads.
pub const KEYS_PER_READ: usize = 100;

/// The last app of a page: its key and app id.
struct AppsCursor {
    key: KeyRecordId,
    app: String,
}

impl AppsCursor {
    fn encode(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("{}\n{}", self.key, self.app))
    }

    fn decode(raw: &str) -> Option<Self> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw)
            .ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (key, app) = text.split_once('\n')?;
        Some(Self {
            key: KeyRecordId(key.to_owned()),
            app: app.to_owned(),
        })
    }
}

fn apps_of(key: &KeyRecordId, snapshot: &KeySnapshot) -> Vec<MonitoredApp> {
    snapshot
        .apps
        .iter()
        .map(|(app_id, app)| MonitoredApp {
            id: app_id.clone(),
            name: app.name.clone(),
            bundle_id: app.bundle_id.clone(),
            key: key.clone(),
            versions: app
                .versions
                .iter()
                .map(|(id, v)| CurrentVersion {
                    id: id.clone(),
                    platform: v.platform.clone(),
                    version_string: v.version_string.clone(),
                    state: v.state.clone(),
                    state_since: v.state_since.at,
                    phased_release: v
                        .phased_release
                        .as_ref()
                        .and_then(|p| p.state())
                        .map(str::to_owned),
                })
                .collect(),
            builds: snapshot
                .builds_of(app_id)
                .into_iter()
                .take(RECENT_BUILDS_PER_APP)
                .map(|(id, b)| RecentBuild {
                    id: id.to_owned(),
                    version: b.version.clone(),
                    short_version: b.short_version.clone(),
                    platform: b.platform.clone(),
                    processing_state: b.processing_state.clone(),
                    external_beta_state: b.external_build_state.clone(),
                    uploaded_date: b.uploaded_date,
                })
                .collect(),
            tracks: Vec::new(),
            platform: None,
        })
        .chain(snapshot.play_apps.iter().map(|(package, app)| {
            MonitoredApp {
                id: package.clone(),
                name: app.title.clone(),
                bundle_id: package.clone(),
                key: key.clone(),
                versions: Vec::new(),
                builds: Vec::new(),
                tracks: app
                    .tracks
                    .iter()
                    .map(|(track, releases)| PlayTrack {
                        track: track.clone(),
                        releases: releases.values().cloned().collect(),
                    })
                    .collect(),
                platform: Some("ANDROID"),
            }
        }))
        .collect()
}
