//! Bearer-token extractors: a team token resolves to its team; the admin token unlocks admin routes.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::ApiState;
use crate::auth::{bearer_token, hash_token, token_matches};
use crate::error::ApiError;
use crate::model::Team;

/// The team whose token authorised the request.
pub struct TeamAuth(pub Team);

/// Proof that the request carried the admin token.
pub struct AdminAuth;

fn presented_token(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
}

impl FromRequestParts<ApiState> for TeamAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let token = presented_token(parts).ok_or_else(ApiError::unauthorized)?;
        let team = state
            .stores
            .teams
            .find_team_by_token_hash(&hash_token(token))
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        // The lookup found it by hash; confirm in constant time all the same.
        if !token_matches(token, &team.token_hash) {
            return Err(ApiError::unauthorized());
        }
        Ok(Self(team))
    }
}

impl FromRequestParts<ApiState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let token = presented_token(parts).ok_or_else(ApiError::unauthorized)?;
        if token_matches(token, &state.admin_token_hash) {
            Ok(Self)
        } else {
            Err(ApiError::unauthorized())
        }
    }
}
