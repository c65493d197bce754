//! Teams: creation (the token is shown once, only its hash is kept) and finding the team a bearer
//! token belongs to.

use std::sync::Arc;

use shipwatch_shared::clock::Clock;

use crate::auth::{TEAM_TOKEN_PREFIX, generate_token, hash_token, token_matches};
use crate::model::{Team, TeamId};
use crate::names::{InvalidName, checked_name};
use crate::ports::{StoreError, TeamStore};

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
    clock: Arc<dyn Clock>,
}

impl TeamService {
    pub fn new(teams: Arc<dyn TeamStore>, clock: Arc<dyn Clock>) -> Self {
        Self { teams, clock }
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

    /// The team whose token this is, if any.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Team>, TeamError> {
        let Some(team) = self
            .teams
            .find_team_by_token_hash(&hash_token(token))
            .await?
        else {
            return Ok(None);
        };
        // The lookup found it by hash; confirm in constant time all the same.
        Ok(token_matches(token, &team.token_hash).then_some(team))
    }

    /// The team with this id, if any (the dashboard's sessions name their team).
    pub async fn get(&self, id: &TeamId) -> Result<Option<Team>, TeamError> {
        Ok(self.teams.get_team(id).await?)
    }
}
