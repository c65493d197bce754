//! [`MemberStore`] on the single table. Items (docs/data-model.md):
//! `MEMBER#<id>`/`MEMBER` (the member), `EMAIL#<email>`/`EMAIL` (uniqueness guard naming the
//! member), `TEAM#<team>`/`MEMBER#<id>` (the team's list, a copy of the body),
//! `INVITE#<hash>`/`INVITE` and `SESSION#<hash>`/`SESSION`, the last two with the table's TTL
//! attribute `ttl` (epoch seconds), so DynamoDB forgets them on its own. Named API tokens:
//! `APITOKEN#<hash>`/`APITOKEN` (what a request looks up, one GetItem) and
//! `TEAM#<team>`/`APITOKEN#<id>` (the team's list, a copy of the body), written together.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use chrono::{DateTime, Utc};
use shipwatch_service::api_tokens::{ApiToken, ApiTokenId};
use shipwatch_service::members::{Invite, Member, MemberId, Session};
use shipwatch_service::model::TeamId;
use shipwatch_service::ports::{MemberStore, StoreError, StoreResult};

use super::AwsStore;
use super::codec::*;
use crate::store_support::to_json;

/// The table's TTL attribute (template.yaml `TimeToLiveSpecification`).
pub const TTL: &str = "ttl";
const MEMBER_SK: &str = "MEMBER";
const EMAIL_SK: &str = "EMAIL";
const INVITE_SK: &str = "INVITE";
const SESSION_SK: &str = "SESSION";
const TEAM_MEMBER_PREFIX: &str = "MEMBER#";
const API_TOKEN_SK: &str = "APITOKEN";
const TEAM_API_TOKEN_PREFIX: &str = "APITOKEN#";

fn api_token_pk(hash: &str) -> String {
    format!("APITOKEN#{hash}")
}
fn team_api_token_sk(id: &str) -> String {
    format!("{TEAM_API_TOKEN_PREFIX}{id}")
}

/// The lookup item and the team's list item of `token`.
fn api_token_items(token: &ApiToken) -> StoreResult<(Item, Item)> {
    let json = to_json("api token", token)?;
    let mut main = primary_key(api_token_pk(&token.token_hash), API_TOKEN_SK);
    main.insert(ENTITY.into(), s("api_token"));
    main.insert(BODY.into(), s(json.clone()));
    let mut listed = primary_key(keys::team(&token.team_id.0), team_api_token_sk(&token.id.0));
    listed.insert(ENTITY.into(), s("team_api_token"));
    listed.insert(BODY.into(), s(json));
    Ok((main, listed))
}

fn member_pk(id: &str) -> String {
    format!("MEMBER#{id}")
}
fn email_pk(email: &str) -> String {
    format!("EMAIL#{email}")
}
fn invite_pk(hash: &str) -> String {
    format!("INVITE#{hash}")
}
fn session_pk(hash: &str) -> String {
    format!("SESSION#{hash}")
}

fn epoch(at: DateTime<Utc>) -> u64 {
    at.timestamp().max(0) as u64
}

fn session_item(session: &Session, expires_at: DateTime<Utc>) -> StoreResult<Item> {
    let mut item = primary_key(session_pk(&session.id_hash), SESSION_SK);
    item.insert(ENTITY.into(), s("session"));
    item.insert(BODY.into(), s(to_json("session", session)?));
    item.insert(TTL.into(), n(epoch(expires_at)));
    Ok(item)
}

impl AwsStore {
    pub(super) fn put_write(
        &self,
        item: Item,
        condition: Option<&str>,
    ) -> StoreResult<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned))
            .build()
            .map_err(build_error("transaction put"))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

#[async_trait]
impl MemberStore for AwsStore {
    async fn insert_invite(&self, invite: &Invite) -> StoreResult<()> {
        let mut item = primary_key(invite_pk(&invite.token_hash), INVITE_SK);
        item.insert(ENTITY.into(), s("invite"));
        item.insert(BODY.into(), s(to_json("invite", invite)?));
        item.insert(TTL.into(), n(epoch(invite.expires_at)));
        self.transact("insert invite", vec![self.put_if_absent(item)?])
            .await
    }

    async fn get_invite(&self, token_hash: &str) -> StoreResult<Option<Invite>> {
        self.get_item("get invite", invite_pk(token_hash), INVITE_SK)
            .await?
            .map(|item| body("invite", &item))
            .transpose()
    }

    async fn accept_invite(&self, token_hash: &str, member: &Member) -> StoreResult<()> {
        let json = to_json("member", member)?;
        let mut main = primary_key(member_pk(&member.id.0), MEMBER_SK);
        main.insert(ENTITY.into(), s("member"));
        main.insert(BODY.into(), s(json.clone()));
        let mut listed = primary_key(
            keys::team(&member.team_id.0),
            format!("{TEAM_MEMBER_PREFIX}{}", member.id.0),
        );
        listed.insert(ENTITY.into(), s("team_member"));
        listed.insert(BODY.into(), s(json));
        let mut guard = primary_key(email_pk(&member.email), EMAIL_SK);
        guard.insert(ENTITY.into(), s("email_guard"));
        guard.insert("member_id".into(), s(member.id.0.clone()));
        let used = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(primary_key(invite_pk(token_hash), INVITE_SK)))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(build_error("transaction delete"))?;
        let writes = vec![
            TransactWriteItem::builder().delete(used).build(),
            self.put_if_absent(guard)?,
            self.put_if_absent(main)?,
            self.put_if_absent(listed)?,
        ];
        self.transact("accept invite", writes).await
    }

    async fn get_member(&self, id: &MemberId) -> StoreResult<Option<Member>> {
        self.get_item("get member", member_pk(&id.0), MEMBER_SK)
            .await?
            .map(|item| body("member", &item))
            .transpose()
    }

    async fn find_member_by_email(&self, email: &str) -> StoreResult<Option<Member>> {
        let Some(guard) = self
            .get_item("find member", email_pk(email), EMAIL_SK)
            .await?
        else {
            return Ok(None);
        };
        let id = MemberId(string_attr(&guard, "member_id")?.to_owned());
        Ok(self.get_member(&id).await?.filter(|m| m.email == email))
    }

    async fn list_members(&self, team: &TeamId) -> StoreResult<Vec<Member>> {
        self.list_team_records("list members", team, TEAM_MEMBER_PREFIX, |m: &Member| {
            (m.created_at, m.id.0.clone())
        })
        .await
    }

    async fn insert_session(
        &self,
        session: &Session,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let item = session_item(session, expires_at)?;
        self.transact("insert session", vec![self.put_if_absent(item)?])
            .await
    }

    async fn get_session(&self, id_hash: &str) -> StoreResult<Option<Session>> {
        self.get_item("get session", session_pk(id_hash), SESSION_SK)
            .await?
            .map(|item| body("session", &item))
            .transpose()
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
        // Only while it still exists: a sign-out in between must not bring it back.
        let write = self.put_write(
            session_item(&session, expires_at)?,
            Some("attribute_exists(pk)"),
        )?;
        match self.transact("touch session", vec![write]).await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(other) => Err(other),
        }
    }

    async fn delete_session(&self, id_hash: &str) -> StoreResult<bool> {
        self.delete_item("delete session", session_pk(id_hash), SESSION_SK.to_owned())
            .await
    }

    async fn insert_api_token(&self, token: &ApiToken) -> StoreResult<()> {
        let (main, listed) = api_token_items(token)?;
        let writes = vec![self.put_if_absent(main)?, self.put_if_absent(listed)?];
        self.transact("insert api token", writes).await
    }

    async fn find_api_token(&self, token_hash: &str) -> StoreResult<Option<ApiToken>> {
        self.get_item("find api token", api_token_pk(token_hash), API_TOKEN_SK)
            .await?
            .map(|item| body("api token", &item))
            .transpose()
    }

    async fn list_api_tokens(&self, team: &TeamId) -> StoreResult<Vec<ApiToken>> {
        self.list_team_records(
            "list api tokens",
            team,
            TEAM_API_TOKEN_PREFIX,
            |t: &ApiToken| (t.created_at, t.id.0.clone()),
        )
        .await
    }

    async fn delete_api_token(&self, team: &TeamId, id: &ApiTokenId) -> StoreResult<bool> {
        // The team's list item is keyed by team, so another team's id finds nothing here.
        let Some(listed) = self
            .get_item(
                "delete api token",
                keys::team(&team.0),
                &team_api_token_sk(&id.0),
            )
            .await?
        else {
            return Ok(false);
        };
        let token: ApiToken = body("api token", &listed)?;
        let writes = vec![
            self.delete_write(api_token_pk(&token.token_hash), API_TOKEN_SK)?,
            self.delete_write(keys::team(&team.0), &team_api_token_sk(&id.0))?,
        ];
        self.transact("delete api token", writes).await?;
        Ok(true)
    }

    async fn touch_api_token(&self, token_hash: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        let Some(mut token) = self.find_api_token(token_hash).await? else {
            return Ok(false);
        };
        token.last_used_at = Some(at);
        let (main, listed) = api_token_items(&token)?;
        // Only while both still exist: a revocation in between must not bring the token back.
        let writes = vec![
            self.put_write(main, Some("attribute_exists(pk)"))?,
            self.put_write(listed, Some("attribute_exists(pk)"))?,
        ];
        match self.transact("touch api token", writes).await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(other) => Err(other),
        }
    }
}
