//! Records of the dashboard's people: members, one-time invites and sign-in sessions. Secrets
//! (passwords, invite links, session ids) are stored only as hashes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::TeamId;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MemberId(pub String);

impl MemberId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
}

impl std::fmt::Display for MemberId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A person who signs in to the dashboard; emails are unique across teams (sign-in asks only for
/// the email), stored lowercased.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: MemberId,
    pub team_id: TeamId,
    pub email: String,
    pub name: String,
    /// PHC string of an Argon2id hash.
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("id", &self.id)
            .field("team_id", &self.team_id)
            .field("email", &self.email)
            .field("name", &self.name)
            .field("password_hash", &"<redacted>")
            .finish()
    }
}

/// A one-time link that lets its holder become a member of `team_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    /// SHA-256 (hex) of the link's token.
    pub token_hash: String,
    pub team_id: TeamId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Who invited (none for the link `POST /v1/teams` answers).
    pub invited_by: Option<MemberId>,
}

/// A signed-in browser. The cookie holds the session's token; the store keeps its hash.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// SHA-256 (hex) of the cookie's token.
    pub id_hash: String,
    pub member_id: MemberId,
    pub team_id: TeamId,
    /// The CSRF token the session's forms carry (random, tied to this session only).
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("member_id", &self.member_id)
            .field("team_id", &self.team_id)
            .field("created_at", &self.created_at)
            .field("last_seen_at", &self.last_seen_at)
            .finish_non_exhaustive()
    }
}
