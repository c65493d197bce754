//! Bearer-token extractors: a team token resolves to its team; the admin token unlocks admin routes.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use shipwatch_service::auth::{bearer_token, token_matches};
use shipwatch_service::model::Team;

use crate::ApiState;
use crate::error::ApiError;

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
            .teams
            .authenticate(token)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
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
