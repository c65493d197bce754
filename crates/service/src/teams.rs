//! Teams: creation (the token is shown once, only its hash is kept) and finding the team a bearer
//! token belongs to.

use std::sync::Arc;

use shipwatch_shared::clock::Clock;

use crate::api_tokens::last_used_is_due;
use crate::auth::{TEAM_TOKEN_PREFIX, generate_token, hash_token, token_matches};
use crate::model::{Team, TeamId};
use crate::names::{InvalidName, checked_name};
use crate::ports::{MemberStore, StoreError, TeamStore};

#[derive(Debug, thiserror::Error)]
pub enum TeamError {
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new team and its bearer token, which exists nowhere else.
pub struct CreatedTeam {
    pub team: Team,
    pub token: String,
}

impl std::fmt::Debug for CreatedTeam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedTeam")
            .field("team", &self.team)
            .field("token", &"<redacted>")
            .finish()
    }
}

#[derive(Clone)]
pub struct TeamService {
    teams: Arc<dyn TeamStore>,
    /// Where the named API tokens are (they authenticate like the team token).
    api_tokens: Arc<dyn MemberStore>,
    clock: Arc<dyn Clock>,
}

impl TeamService {
    pub fn new(
        teams: Arc<dyn TeamStore>,
        api_tokens: Arc<dyn MemberStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            teams,
            api_tokens,
            clock,
        }
    }

    pub async fn create(&self, name: &str) -> Result<CreatedTeam, TeamError> {
        let name = checked_name(name, "team")?;
        let token = generate_token(TEAM_TOKEN_PREFIX);
        let team = Team {
            id: TeamId::generate(),
            name,
            token_hash: hash_token(&token),
            created_at: self.clock.now(),
        };
        self.teams.insert_team(&team).await?;
        tracing::info!(team = %team.id, "team created");
        Ok(CreatedTeam { team, token })
    }

    /// The team whose token this is, if any: the team token or one of its named API tokens.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Team>, TeamError> {
        let hash = hash_token(token);
        if let Some(team) = self.teams.find_team_by_token_hash(&hash).await? {
            // The lookup found it by hash; confirm in constant time all the same.
            return Ok(token_matches(token, &team.token_hash).then_some(team));
        }
        let Some(api_token) = self.api_tokens.find_api_token(&hash).await? else {
            return Ok(None);
        };
        if !token_matches(token, &api_token.token_hash) {
            return Ok(None);
        }
        let now = self.clock.now();
        // The last use is for display only: failing to record it must not refuse the request.
        if last_used_is_due(&api_token, now)
            && let Err(err) = self.api_tokens.touch_api_token(&hash, now).await
        {
            tracing::warn!(error = %err, token = %api_token.id, "could not record an api token's use");
        }
        self.get(&api_token.team_id).await
    }

    /// The team with this id, if any (the dashboard's sessions name their team).
    pub async fn get(&self, id: &TeamId) -> Result<Option<Team>, TeamError> {
        Ok(self.teams.get_team(id).await?)
    }
}
