//! `GET /v1/events` (the history) and `GET /v1/apps` (what the team's keys see).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use shipwatch_service::domain::render::cloud_event;
use shipwatch_service::queries::{
    AppsFilter, HistoryEvent, HistoryFilter, MAX_APPS_LIMIT, MAX_EVENTS_LIMIT, MonitoredApp,
    QueryError,
};

use crate::ApiState;
use crate::auth::TeamAuth;
use crate::body::QueryParams;
use crate::error::ApiError;

#[derive(Deserialize)]
pub struct EventsParams {
    app_id: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    q: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

impl EventsParams {
    fn into_filter(self) -> Result<HistoryFilter, QueryError> {
        let limit = match self.limit.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(raw.parse::<u32>().map_err(|_| QueryError::InvalidLimit {
                max: MAX_EVENTS_LIMIT,
            })?),
        };
        Ok(HistoryFilter {
            app_id: self.app_id,
            event_type: self.event_type,
            text: self.q,
            limit,
            cursor: self.cursor,
        })
    }
}

pub async fn events(
    State(state): State<ApiState>,
    TeamAuth(team): TeamAuth,
    QueryParams(params): QueryParams<EventsParams>,
) -> Result<Json<Value>, ApiError> {
    let page = state.history.page(&team, params.into_filter()?).await?;
    let events: Vec<Value> = page.events.iter().map(event_view).collect();
    Ok(Json(
        json!({ "events": events, "next_cursor": page.next_cursor }),
    ))
}

/// The event as CloudEvents JSON (as webhooks receive it), plus its summary, key and deliveries.
fn event_view(item: &HistoryEvent) -> Value {
    let mut view = cloud_event(&item.event);
    let deliveries: Vec<Value> = item
        .deliveries
        .iter()
        .map(|d| {
            json!({
                "id": d.delivery.id,
                "destination": {
                    "id": d.delivery.destination_id,
                    "name": d.destination_name,
                },
                "outcome": d.delivery.status,
                "attempts": d.delivery.attempts,
                "next_attempt_at": d.delivery.next_attempt_at,
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

#[derive(Deserialize)]
pub struct AppsParams {
    limit: Option<String>,
    cursor: Option<String>,
}

pub async fn apps(
    State(state): State<ApiState>,
    TeamAuth(team): TeamAuth,
    QueryParams(params): QueryParams<AppsParams>,
) -> Result<Json<Value>, ApiError> {
    let limit = match params.limit.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(raw.parse::<u32>().map_err(|_| QueryError::InvalidLimit {
            max: MAX_APPS_LIMIT,
        })?),
    };
    let filter = AppsFilter {
        limit,
        cursor: params.cursor,
    };
    let page = state.apps.page(&team, filter).await?;
    let apps: Vec<Value> = page.apps.iter().map(app_view).collect();
    Ok(Json(
        json!({ "apps": apps, "next_cursor": page.next_cursor }),
    ))
}

fn app_view(app: &MonitoredApp) -> Value {
    let versions: Vec<Value> = app
        .versions
        .iter()
        .map(|v| {
            json!({
                "id": v.id,
                "platform": v.platform,
                "version_string": v.version_string,
                "state": v.state,
                "state_since": v.state_since,
                "phased_release": v.phased_release,
            })
        })
        .collect();
    let builds: Vec<Value> = app
        .builds
        .iter()
        .map(|b| {
            json!({
                "id": b.id,
                "version": b.version,
                "short_version": b.short_version,
                "platform": b.platform,
                "processing_state": b.processing_state,
                "external_beta_state": b.external_beta_state,
                "uploaded_date": b.uploaded_date,
            })
        })
        .collect();
    let mut view = json!({
        "id": app.id,
        "name": app.name,
        "bundle_id": app.bundle_id,
        "key": app.key,
        "versions": versions,
        "builds": builds,
    });
    // Google Play apps: `platform: ANDROID` and their tracks.
    if let (Some(platform), Some(object)) = (app.platform, view.as_object_mut()) {
        let tracks: Vec<Value> = app
            .tracks
            .iter()
            .map(|t| {
                let releases: Vec<Value> = t
                    .releases
                    .iter()
                    .map(|r| {
                        json!({
                            "name": r.name,
                            "version_codes": r.version_codes,
                            "status": r.status,
                            "user_fraction": r.user_fraction,
                        })
                    })
                    .collect();
                json!({"track": t.track, "releases": releases})
            })
            .collect();
        object.insert("platform".into(), json!(platform));
        object.insert("tracks".into(), json!(tracks));
    }
    view
}
