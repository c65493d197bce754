//! `POST /v1/teams` (admin): creates a team and shows its token once.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ApiState;
use crate::auth::AdminAuth;
use crate::body::JsonBody;
use crate::error::ApiError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTeam {
    pub name: String,
}

pub async fn create(
    State(state): State<ApiState>,
    _admin: AdminAuth,
    headers: axum::http::HeaderMap,
    JsonBody(new): JsonBody<NewTeam>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let created = state.teams.create(&new.name).await?;
    let team = &created.team;
    // The first member joins through this one-time link (contract section 6).
    let invite = state
        .members
        .invite(&team.id, None)
        .await
        .map_err(|_| ApiError::store_unavailable())?;
    let invite_url =
        crate::dashboard::invite_url(state.public_url.as_deref(), &headers, &invite.token);
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "id": team.id, "name": team.name, "token": created.token, "created_at": team.created_at, "invite_url": invite_url }),
        ),
    ))
}
