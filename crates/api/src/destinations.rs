//! `/v1/destinations` and `/v1/workflows`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use shipwatch_service::destinations::{NewDestination, NewWorkflow};
use shipwatch_service::model::{DestinationId, WorkflowId};

use crate::ApiState;
use crate::auth::TeamAuth;
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::views::{DestinationView, WorkflowView};

pub async fn create(
    State(state): State<ApiState>,
    TeamAuth(team): TeamAuth,
    JsonBody(input): JsonBody<NewDestination>,
) -> Result<(StatusCode, Json<DestinationView>), ApiError> {
    let created = state.destinations.create(&team, input).await?;
    let mut view = DestinationView::from(&created.destination);
    view.signing_secret = created.signing_secret;
    Ok((StatusCode::CREATED, Json(view)))
}

pub async fn list(
    State(state): State<ApiState>,
    TeamAuth(team): TeamAuth,
) -> Result<Json<Value>, ApiError> {
    let all = state.destinations.list(&team).await?;
    let views: Vec<DestinationView> = all.iter().map(DestinationView::from).collect();
    Ok(Json(json!({ "destinations": views })))
}

pub async fn show(
    State(state): State<ApiState>,
    TeamAuth(team): TeamAuth,
    Path(id): Path<String>,
) -> Result<Json<DestinationView>, ApiError> {
    let destination = state.destinations.get(&team, &DestinationId(id)).await?;
    Ok(Json(DestinationView::from(&destination)))
}

pub async fn delete(
    State(state): State<ApiState>,
    TeamAuth(team): TeamAuth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.destinations.delete(&team, &DestinationId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn test(
    State(state): State<ApiState>,
    TeamAuth(team): TeamAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let outcome = state
        .destinations
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

pub async fn create_workflow(
    State(state): State<ApiState>,
    TeamAuth(team): TeamAuth,
    JsonBody(input): JsonBody<NewWorkflow>,
) -> Result<(StatusCode, Json<WorkflowView>), ApiError> {
    let workflow = state.destinations.create_workflow(&team, input).await?;
    Ok((StatusCode::CREATED, Json(WorkflowView::from(&workflow))))
}

pub async fn list_workflows(
    State(state): State<ApiState>,
    TeamAuth(team): TeamAuth,
) -> Result<Json<Value>, ApiError> {
    let all = state.destinations.list_workflows(&team).await?;
    let views: Vec<WorkflowView> = all.iter().map(WorkflowView::from).collect();
    Ok(Json(json!({ "workflows": views })))
}

pub async fn show_workflow(
    State(state): State<ApiState>,
    TeamAuth(team): TeamAuth,
    Path(id): Path<String>,
) -> Result<Json<WorkflowView>, ApiError> {
    let workflow = state
        .destinations
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
        .destinations
        .delete_workflow(&team, &WorkflowId(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
