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

    /// Key by key (oldest key first), each key's apps in app id order. Keys not swept yet show
    /// nothing; an unreadable snapshot is logged and skipped.
    pub async fn list(&self, team: &Team) -> Result<Vec<MonitoredApp>, QueryError> {
        let keys = self.keys.list_keys(&team.id).await?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<KeyRecordId> = keys.iter().map(|key| key.id.clone()).collect();
        let mut snapshots: HashMap<KeyRecordId, serde_json::Value> = self
            .sweeps
            .get_snapshots(&ids)
            .await?
            .into_iter()
            .map(|stored| (stored.key_record_id, stored.state))
            .collect();
        let mut apps = Vec::new();
        for key in ids {
            let Some(state) = snapshots.remove(&key) else {
                continue;
            };
            match KeySnapshot::from_json(&state) {
                Ok(snapshot) => apps.extend(apps_of(&key, &snapshot)),
                Err(err) => tracing::error!(key = %key, error = %err, "stored snapshot unreadable"),
            }
        }
        Ok(apps)
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
        })
        .collect()
}
