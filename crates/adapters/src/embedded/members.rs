//! [`MemberStore`] on SQLite: `members` (email unique), `invites`, `sessions` (with the time the
//! session expires, so expired rows are swept out as new ones come in), `api_tokens` (hash unique).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::params;
use shipwatch_service::api_tokens::{ApiToken, ApiTokenId};
use shipwatch_service::members::{Invite, Member, MemberId, Session};
use shipwatch_service::model::TeamId;
use shipwatch_service::ports::{MemberStore, StoreError, StoreResult};

use super::{EmbeddedStore, decode_rows, query_bodies, query_body, sql_error};
use crate::store_support::{from_json, time_key, to_json};

#[async_trait]
impl MemberStore for EmbeddedStore {
    async fn insert_invite(&self, invite: &Invite) -> StoreResult<()> {
        let body = to_json("invite", invite)?;
        let hash = invite.token_hash.clone();
        self.run(move |c| {
            c.execute(
                "INSERT INTO invites (token_hash, body) VALUES (?1, ?2)",
                params![hash, body],
            )
            .map_err(sql_error("insert invite"))?;
            Ok(())
        })
        .await
    }

    async fn get_invite(&self, token_hash: &str) -> StoreResult<Option<Invite>> {
        let hash = token_hash.to_owned();
        let body = self
            .run(move |c| {
                query_body(
                    c,
                    "get invite",
                    "SELECT body FROM invites WHERE token_hash = ?1",
                    [hash],
                )
            })
            .await?;
        body.map(|b| from_json("invite", &b)).transpose()
    }

    async fn accept_invite(&self, token_hash: &str, member: &Member) -> StoreResult<()> {
        let body = to_json("member", member)?;
        let hash = token_hash.to_owned();
        let row = (
            member.id.0.clone(),
            member.team_id.0.clone(),
            member.email.clone(),
            time_key(member.created_at),
        );
        self.run(move |c| {
            let operation = "accept invite";
            let transaction = c.transaction().map_err(sql_error(operation))?;
            let removed = transaction
                .execute("DELETE FROM invites WHERE token_hash = ?1", [hash])
                .map_err(sql_error(operation))?;
            if removed == 0 {
                return Err(StoreError::Conflict("the invite was already used".to_owned()));
            }
            transaction
                .execute(
                    "INSERT INTO members (id, team_id, email, created_key, body) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![row.0, row.1, row.2, row.3, body],
                )
                .map_err(sql_error(operation))?;
            transaction.commit().map_err(sql_error(operation))
        })
        .await
    }

    async fn get_member(&self, id: &MemberId) -> StoreResult<Option<Member>> {
        let id = id.0.clone();
        let body = self
            .run(move |c| {
                query_body(
                    c,
                    "get member",
                    "SELECT body FROM members WHERE id = ?1",
                    [id],
                )
            })
            .await?;
        body.map(|b| from_json("member", &b)).transpose()
    }

    async fn find_member_by_email(&self, email: &str) -> StoreResult<Option<Member>> {
        let email = email.to_owned();
        let body = self
            .run(move |c| {
                query_body(
                    c,
                    "find member",
                    "SELECT body FROM members WHERE email = ?1",
                    [email],
                )
            })
            .await?;
        body.map(|b| from_json("member", &b)).transpose()
    }

    async fn list_members(&self, team: &TeamId) -> StoreResult<Vec<Member>> {
        let team = team.0.clone();
        let bodies = self
            .run(move |c| {
                query_bodies(
                    c,
                    "list members",
                    "SELECT body FROM members WHERE team_id = ?1 ORDER BY created_key, id",
                    [team],
                )
            })
            .await?;
        decode_rows("member", bodies)
    }

    async fn insert_session(
        &self,
        session: &Session,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let body = to_json("session", session)?;
        let hash = session.id_hash.clone();
        let (expires, now) = (time_key(expires_at), time_key(session.created_at));
        self.run(move |c| {
            // Sessions nobody came back to would otherwise stay forever (DynamoDB has its TTL).
            c.execute("DELETE FROM sessions WHERE expires_key <= ?1", [now])
                .map_err(sql_error("forget expired sessions"))?;
            c.execute(
                "INSERT INTO sessions (id_hash, expires_key, body) VALUES (?1, ?2, ?3)",
                params![hash, expires, body],
            )
            .map_err(sql_error("insert session"))?;
            Ok(())
        })
        .await
    }

    async fn get_session(&self, id_hash: &str) -> StoreResult<Option<Session>> {
        let hash = id_hash.to_owned();
        let body = self
            .run(move |c| {
                query_body(
                    c,
                    "get session",
                    "SELECT body FROM sessions WHERE id_hash = ?1",
                    [hash],
                )
            })
            .await?;
        body.map(|b| from_json("session", &b)).transpose()
    }

    async fn touch_session(
        &self,
        id_hash: &str,
        last_seen_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let Some(mut session) = self.get_session(id_hash).await? else {
            return Ok(false);
        };
        session.last_seen_at = last_seen_at;
        let body = to_json("session", &session)?;
        let (hash, expires) = (id_hash.to_owned(), time_key(expires_at));
        let changed = self
            .run(move |c| {
                c.execute(
                    "UPDATE sessions SET body = ?2, expires_key = ?3 WHERE id_hash = ?1",
                    params![hash, body, expires],
                )
                .map_err(sql_error("touch session"))
            })
            .await?;
        Ok(changed > 0)
    }

    async fn delete_session(&self, id_hash: &str) -> StoreResult<bool> {
        let hash = id_hash.to_owned();
        let removed = self
            .run(move |c| {
                c.execute("DELETE FROM sessions WHERE id_hash = ?1", [hash])
                    .map_err(sql_error("delete session"))
            })
            .await?;
        Ok(removed > 0)
    }

    async fn insert_api_token(&self, token: &ApiToken) -> StoreResult<()> {
        let body = to_json("api token", token)?;
        let row = (
            token.id.0.clone(),
            token.token_hash.clone(),
            token.team_id.0.clone(),
            time_key(token.created_at),
        );
        self.run(move |c| {
            c.execute(
                "INSERT INTO api_tokens (id, token_hash, team_id, created_key, body) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![row.0, row.1, row.2, row.3, body],
            )
            .map_err(sql_error("insert api token"))?;
            Ok(())
        })
        .await
    }

    async fn find_api_token(&self, token_hash: &str) -> StoreResult<Option<ApiToken>> {
        let hash = token_hash.to_owned();
        let body = self
            .run(move |c| {
                query_body(
                    c,
                    "find api token",
                    "SELECT body FROM api_tokens WHERE token_hash = ?1",
                    [hash],
                )
            })
            .await?;
        body.map(|b| from_json("api token", &b)).transpose()
    }

    async fn list_api_tokens(&self, team: &TeamId) -> StoreResult<Vec<ApiToken>> {
        let team = team.0.clone();
        let bodies = self
            .run(move |c| {
                query_bodies(
                    c,
                    "list api tokens",
                    "SELECT body FROM api_tokens WHERE team_id = ?1 ORDER BY created_key, id",
                    [team],
                )
            })
            .await?;
        decode_rows("api token", bodies)
    }

    async fn delete_api_token(&self, team: &TeamId, id: &ApiTokenId) -> StoreResult<bool> {
        let (team, id) = (team.0.clone(), id.0.clone());
        let removed = self
            .run(move |c| {
                c.execute(
                    "DELETE FROM api_tokens WHERE id = ?1 AND team_id = ?2",
                    params![id, team],
                )
                .map_err(sql_error("delete api token"))
            })
            .await?;
        Ok(removed > 0)
    }

    async fn touch_api_token(&self, token_hash: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        let Some(mut token) = self.find_api_token(token_hash).await? else {
            return Ok(false);
        };
        token.last_used_at = Some(at);
        let body = to_json("api token", &token)?;
        let hash = token_hash.to_owned();
        let changed = self
            .run(move |c| {
                c.execute(
                    "UPDATE api_tokens SET body = ?2 WHERE token_hash = ?1",
                    params![hash, body],
                )
                .map_err(sql_error("touch api token"))
            })
            .await?;
        Ok(changed > 0)
    }
}
