//! Named API tokens: bearer tokens for scripts that members create and revoke on `/team`. They
//! authenticate exactly like the team token ([`crate::teams::TeamService::authenticate`]); the
//! value is shown once at creation and only its SHA-256 is stored.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use shipwatch_shared::clock::Clock;

use crate::auth::{TEAM_TOKEN_PREFIX, generate_token, hash_token};
use crate::members::MemberId;
use crate::model::TeamId;
use crate::names::{InvalidName, checked_name};
use crate::ports::{MemberStore, StoreError};

/// `last_used_at` moves at most this often, so a busy script does not write on every request.
pub const LAST_USED_RESOLUTION: TimeDelta = TimeDelta::minutes(1);

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ApiTokenId(pub String);

impl ApiTokenId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
}

impl std::fmt::Display for ApiTokenId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A named API token of a team (its value is not kept, only its hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: ApiTokenId,
    pub team_id: TeamId,
    pub name: String,
    /// SHA-256 (hex) of the token.
    pub token_hash: String,
    pub created_by: MemberId,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Whether a request at `now` should record itself as the token's last use.
pub fn last_used_is_due(token: &ApiToken, now: DateTime<Utc>) -> bool {
    token
        .last_used_at
        .is_none_or(|last| now - last >= LAST_USED_RESOLUTION)
}

#[derive(Debug, thiserror::Error)]
pub enum ApiTokenError {
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new token and its value, which exists nowhere else.
pub struct CreatedApiToken {
    pub token: ApiToken,
    pub value: String,
}

impl std::fmt::Debug for CreatedApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedApiToken")
            .field("token", &self.token)
            .field("value", &"<redacted>")
            .finish()
    }
}

#[derive(Clone)]
pub struct ApiTokenService {
    store: Arc<dyn MemberStore>,
    clock: Arc<dyn Clock>,
}

impl ApiTokenService {
    pub fn new(store: Arc<dyn MemberStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    pub async fn create(
        &self,
        team: &TeamId,
        created_by: &MemberId,
        name: &str,
    ) -> Result<CreatedApiToken, ApiTokenError> {
        let name = checked_name(name, "token")?;
        let value = generate_token(TEAM_TOKEN_PREFIX);
        let token = ApiToken {
            id: ApiTokenId::generate(),
            team_id: team.clone(),
            name,
            token_hash: hash_token(&value),
            created_by: created_by.clone(),
            created_at: self.clock.now(),
            last_used_at: None,
        };
        self.store.insert_api_token(&token).await?;
        tracing::info!(team = %team, token = %token.id, "api token created");
        Ok(CreatedApiToken { token, value })
    }

    /// The team's tokens, oldest first.
    pub async fn list(&self, team: &TeamId) -> Result<Vec<ApiToken>, ApiTokenError> {
        Ok(self.store.list_api_tokens(team).await?)
    }

    /// `false` when the team has no such token.
    pub async fn revoke(&self, team: &TeamId, id: &ApiTokenId) -> Result<bool, ApiTokenError> {
        let removed = self.store.delete_api_token(team, id).await?;
        if removed {
            tracing::info!(team = %team, token = %id, "api token revoked");
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(last_used_at: Option<DateTime<Utc>>) -> ApiToken {
        ApiToken {
            id: ApiTokenId("t".into()),
            team_id: TeamId("team".into()),
            name: "ci".into(),
            token_hash: "h".into(),
            created_by: MemberId("m".into()),
            created_at: DateTime::UNIX_EPOCH,
            last_used_at,
        }
    }

    #[test]
    fn last_use_is_recorded_at_most_once_a_minute() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        assert!(last_used_is_due(&token(None), now));
        assert!(!last_used_is_due(
            &token(Some(now - TimeDelta::seconds(59))),
            now
        ));
        assert!(last_used_is_due(
            &token(Some(now - TimeDelta::seconds(60))),
            now
        ));
    }

    #[test]
    fn debug_output_hides_the_value() {
        let created = CreatedApiToken {
            token: token(None),
            value: "swt_secret".into(),
        };
        assert!(!format!("{created:?}").contains("swt_secret"));
    }
}
