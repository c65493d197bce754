//! `/v1/destinations` and `/v1/workflows`.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use super::auth::TeamAuth;
use super::body::{parse_json, read_limited};
use super::views::{DestinationView, WorkflowView};
use crate::destinations::{NewDestination, NewWorkflow};
use crate::error::ApiError;
use crate::model::{DestinationId, WorkflowId};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DestinationBody {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    url: String,
}

pub async fn create(
    State(state): State<ApiState>,
    TeamAuth(team): TeamAuth,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<DestinationView>), ApiError> {
    let bytes = read_limited(&headers, body).await?;
    let input: DestinationBody = parse_json(&headers, &bytes)?;
    let created = state
        .destinations()
        .create(
            &team,
            NewDestination {
                kind: input.kind,
                name: input.name,
                url: input.url,
            },
        )
        .await?;
    let mut view = DestinationView::from(&created.destination);
    view.signing_secret = created.signing_secret;
    Ok((StatusCode::CREATED, Json(view)))
}

pub async fn list(
    State(state): State<ApiState>,
    TeamAuth(team): TeamAuth,
) -> Result<Json<Value>, ApiError> {
    let all = state.destinations().list(&team).await?;
    let views: Vec<DestinationView> = all.iter().map(DestinationView::from).collect();
    Ok(Json(json!({ "destinations": views })))
}

pub async fn show(
    State(state): State<ApiState>,
    TeamAuth(team): TeamAuth,
    Path(id): Path<String>,
) -> Result<Json<DestinationView>, ApiError> {
    let destination = state.destinations().get(&team, &DestinationId(id)).await?;
    Ok(Json(DestinationView::from(&destination)))
}

pub async fn delete(
    State(state): State<ApiState>,
    TeamAuth(team): TeamAuth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .destinations()
        .delete(&team, &DestinationId(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn test(
    State(state): State<ApiState>,
    TeamAuth(team): TeamAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let outcome = state
        .destinations()
        .send_test(&team, &DestinationId(id))
        .await?;
    let delivered = outcome
        .attempt
        .status_code
        .is_some_and(|code| (200..300).contains(&code));
    Ok(Json(json!({
        "event_id": outcome.event.id,
        "delivered": delivered,
        "status_code": outcome.attempt.status_code,
        "error": outcome.attempt.error,
        "duration_ms": outcome.attempt.duration_ms,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkflowBody {
    name: String,
    destination_id: String,
    app_ids: Vec<String>,
    event_types: Vec<String>,
}

pub async fn create_workflow(
    State(state): State<ApiState>,
    TeamAuth(team): TeamAuth,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<WorkflowView>), ApiError> {
    let bytes = read_limited(&headers, body).await?;
    let input: WorkflowBody = parse_json(&headers, &bytes)?;
    let workflow = state
        .destinations()
        .create_workflow(
            &team,
            NewWorkflow {
                name: input.name,
                destination_id: input.destination_id,
                app_ids: input.app_ids,
                event_types: input.event_types,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(WorkflowView::from(&workflow))))
}

pub async fn list_workflows(
    State(state): State<ApiState>,
    TeamAuth(team): TeamAuth,
) -> Result<Json<Value>, ApiError> {
    let all = state.destinations().list_workflows(&team).await?;
    let views: Vec<WorkflowView> = all.iter().map(WorkflowView::from).collect();
    Ok(Json(json!({ "workflows": views })))
}

pub async fn show_workflow(
    State(state): State<ApiState>,
    TeamAuth(team): TeamAuth,
    Path(id): Path<String>,
) -> Result<Json<WorkflowView>, ApiError> {
    let workflow = state
        .destinations()
        .get_workflow(&team, &WorkflowId(id))
        .await?;
    Ok(Json(WorkflowView::from(&workflow)))
}

pub async fn delete_workflow(
    State(state): State<ApiState>,
    TeamAuth(team): TeamAuth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .destinations()
        .delete_workflow(&team, &WorkflowId(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
