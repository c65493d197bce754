//! `POST /v1/teams` (admin): creates a team and shows its token once.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use super::auth::AdminAuth;
use super::body::JsonBody;
use crate::auth::{TEAM_TOKEN_PREFIX, generate_token, hash_token};
use crate::error::ApiError;
use crate::model::{Team, TeamId};

pub const MAX_NAME_CHARS: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTeam {
    pub name: String,
}

/// A display name: trimmed, 1 to 100 printable characters.
pub fn checked_name(raw: &str, what: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(ApiError::invalid_request(format!(
            "{what} name must be 1 to {MAX_NAME_CHARS} printable characters"
        )));
    }
    Ok(name.to_owned())
}

pub async fn create(
    State(state): State<ApiState>,
    _admin: AdminAuth,
    JsonBody(new): JsonBody<NewTeam>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let token = generate_token(TEAM_TOKEN_PREFIX);
    let team = Team {
        id: TeamId::generate(),
        name: checked_name(&new.name, "team")?,
        token_hash: hash_token(&token),
        created_at: state.clock.now(),
    };
    state.stores.teams.insert_team(&team).await?;
    tracing::info!(team = %team.id, "team created");
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "id": team.id, "name": team.name, "token": token, "created_at": team.created_at }),
        ),
    ))
}
