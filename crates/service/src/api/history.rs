//! `GET /v1/events` (the history) and `GET /v1/apps` (what the team's keys see), and
//! `POST /v1/sweeps` (admin: sweep now).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{AdminAuth, TeamAuth};
use super::{ApiState, SweepNow};
use crate::domain::render::cloud_event;
use crate::domain::snapshot::KeySnapshot;
use crate::error::ApiError;
use crate::model::{EventQuery, EventWithDeliveries};

/// Builds shown per app in `GET /v1/apps`.
const RECENT_BUILDS_PER_APP: usize = 5;
const MAX_EVENTS_LIMIT: u32 = 100;

#[derive(Deserialize)]
pub struct EventsParams {
    app_id: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    q: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

pub async fn events(
    State(state): State<ApiState>,
    TeamAuth(team): TeamAuth,
    Query(params): Query<EventsParams>,
) -> Result<Json<Value>, ApiError> {
    let limit = match non_empty(params.limit) {
        None => 50,
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=MAX_EVENTS_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid_request(format!(
                    "limit must be a whole number from 1 to {MAX_EVENTS_LIMIT}"
                )));
            }
        },
    };
    let query = EventQuery {
        app_id: non_empty(params.app_id),
        event_type: non_empty(params.event_type),
        text: non_empty(params.q),
        limit,
        cursor: non_empty(params.cursor),
    };
    let page = state
        .stores
        .sweeps
        .list_events(&team.id, &query)
        .await
        .map_err(|err| match err {
            crate::ports::StoreError::Corrupt(_) if query.cursor.is_some() => {
                ApiError::invalid_request(
                    "cursor is not one this API returned; start again without it",
                )
            }
            other => other.into(),
        })?;
    let destination_names: HashMap<String, String> = state
        .stores
        .destinations
        .list_destinations(&team.id)
        .await?
        .into_iter()
        .map(|d| (d.id.0, d.name))
        .collect();
    let events: Vec<Value> = page
        .items
        .iter()
        .map(|item| event_view(item, &destination_names))
        .collect();
    Ok(Json(
        json!({ "events": events, "next_cursor": page.next_cursor }),
    ))
}

fn event_view(item: &EventWithDeliveries, destination_names: &HashMap<String, String>) -> Value {
    let mut view = cloud_event(&item.event);
    let deliveries: Vec<Value> = item
        .deliveries
        .iter()
        .map(|d| {
            json!({
                "id": d.id,
                "destination": {
                    "id": d.destination_id,
                    "name": destination_names.get(d.destination_id.as_str()),
                },
                "outcome": d.status,
                "attempts": d.attempts,
                "next_attempt_at": d.next_attempt_at,
            })
        })
        .collect();
    if let Some(object) = view.as_object_mut() {
        object.insert("summary".into(), json!(item.event.summary));
        object.insert("key".into(), json!(item.event.key_record_id));
        object.insert("deliveries".into(), Value::Array(deliveries));
    }
    view
}

pub async fn apps(
    State(state): State<ApiState>,
    TeamAuth(team): TeamAuth,
) -> Result<Json<Value>, ApiError> {
    let mut apps = Vec::new();
    for key in state.stores.keys.list_keys(&team.id).await? {
        let Some(stored) = state.stores.sweeps.get_snapshot(&key.id).await? else {
            continue;
        };
        let snapshot = match KeySnapshot::from_json(&stored.state) {
            Ok(snapshot) => snapshot,
            Err(err) => {
                tracing::error!(key = %key.id, error = %err, "stored snapshot unreadable");
                continue;
            }
        };
        for (app_id, app) in &snapshot.apps {
            let versions: Vec<Value> = app
                .versions
                .iter()
                .map(|(id, v)| {
                    json!({
                        "id": id,
                        "platform": v.platform,
                        "version_string": v.version_string,
                        "state": v.state,
                        "state_since": v.state_since.at,
                        "phased_release": v.phased_release.as_ref().and_then(|p| p.state()),
                    })
                })
                .collect();
            let mut builds = snapshot.builds_of(app_id);
            builds.sort_by_key(|(_, build)| std::cmp::Reverse(build.uploaded_date));
            let builds: Vec<Value> = builds
                .into_iter()
                .take(RECENT_BUILDS_PER_APP)
                .map(|(id, b)| {
                    json!({
                        "id": id,
                        "version": b.version,
                        "short_version": b.short_version,
                        "platform": b.platform,
                        "processing_state": b.processing_state,
                        "external_beta_state": b.external_build_state,
                        "uploaded_date": b.uploaded_date,
                    })
                })
                .collect();
            apps.push(json!({
                "id": app_id,
                "name": app.name,
                "bundle_id": app.bundle_id,
                "key": key.id,
                "versions": versions,
                "builds": builds,
            }));
        }
    }
    Ok(Json(json!({ "apps": apps })))
}

pub async fn sweep_now(
    State(state): State<ApiState>,
    _admin: AdminAuth,
) -> (axum::http::StatusCode, Json<Value>) {
    match state.sweeps.sweep_now().await {
        SweepNow::Finished(report) => (axum::http::StatusCode::OK, Json(report)),
        SweepNow::Started(plan) => (axum::http::StatusCode::ACCEPTED, Json(plan)),
    }
}
