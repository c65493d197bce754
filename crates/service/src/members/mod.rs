//! Dashboard accounts: one-time invites, members with Argon2id password hashes, sign-in with
//! throttling after failures (per account and per client), sessions with idle and absolute expiry,
//! and the CSRF token each session's forms carry.

mod model;
pub mod password;
pub mod session;
pub mod throttle;

use std::sync::Arc;

#[cfg(test)]
use chrono::DateTime;
use chrono::TimeDelta;
use shipwatch_shared::clock::Clock;
use subtle::ConstantTimeEq;

pub use model::{Invite, Member, MemberId, Session};
pub use session::{SessionPolicy, SessionState, session_state};
pub use throttle::{FailureLimit, SignInThrottle};

use crate::auth::{generate_token, hash_token};
use crate::model::TeamId;
use crate::names::checked_name;
use crate::ports::{MemberStore, StoreError};

/// Invite links hold for 7 days (contract section 6).
pub const INVITE_VALIDITY: TimeDelta = TimeDelta::days(7);
/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted (Argon2 costs grow with it; nobody types more).
pub const MAX_PASSWORD_CHARS: usize = 256;
const INVITE_PREFIX: &str = "swi_";
const SESSION_PREFIX: &str = "sws_";

/// Which field a bad input concerns, so a form can show the words next to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Email,
    Password,
    Name,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Password => "password",
            Self::Name => "name",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    #[error("{message}")]
    Invalid { field: Field, message: String },
    #[error("this invite link is unknown, already used or expired; ask for a new one")]
    InviteUnusable,
    #[error("a member with this email already exists; sign in instead")]
    EmailTaken,
    #[error("the email or the password is wrong")]
    WrongCredentials,
    #[error("too many failed sign-ins; try again in {retry_after_seconds} seconds")]
    Throttled { retry_after_seconds: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: Field, message: impl Into<String>) -> MemberError {
    MemberError::Invalid {
        field,
        message: message.into(),
    }
}

/// A new invite and the token of its link, which exists nowhere else.
pub struct CreatedInvite {
    pub invite: Invite,
    pub token: String,
}

impl std::fmt::Debug for CreatedInvite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedInvite")
            .field("invite", &self.invite)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// A new session and the token its cookie carries.
pub struct StartedSession {
    pub session: Session,
    pub token: String,
}

impl std::fmt::Debug for StartedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartedSession")
            .field("session", &self.session)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// What a sign-up form sends.
pub struct NewMember<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub name: &'a str,
}

#[derive(Clone)]
pub struct MemberService {
    members: Arc<dyn MemberStore>,
    clock: Arc<dyn Clock>,
    policy: SessionPolicy,
    throttle: SignInThrottle,
}

/// Checks an email's shape (one `@`, something on each side, no spaces) and lowercases it.
pub fn normalized_email(email: &str) -> Result<String, MemberError> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && matches!(email.split_once('@'), Some((local, domain))
            if !local.is_empty() && domain.contains('.') && !domain.contains('@')
                && !domain.starts_with('.') && !domain.ends_with('.'));
    if valid {
        Ok(email)
    } else {
        Err(invalid(
            Field::Email,
            "enter an email address such as ana@example.com",
        ))
    }
}

/// Checks a new password's length.
pub fn checked_password(password: &str) -> Result<(), MemberError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(invalid(
            Field::Password,
            format!("use at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(invalid(
            Field::Password,
            format!("use at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

impl MemberService {
    pub fn new(
        members: Arc<dyn MemberStore>,
        sign_in_failures: Arc<dyn crate::ports::SignInFailureStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            members,
            clock,
            policy: SessionPolicy::default(),
            throttle: SignInThrottle::new(sign_in_failures, throttle::SIGN_IN_FAILURES),
        }
    }

    pub fn policy(&self) -> SessionPolicy {
        self.policy
    }

    /// A one-time invite link to `team` (from `POST /v1/teams` or a member on `/team`).
    pub async fn invite(
        &self,
        team: &TeamId,
        invited_by: Option<&MemberId>,
    ) -> Result<CreatedInvite, MemberError> {
        let token = generate_token(INVITE_PREFIX);
        let now = self.clock.now();
        let invite = Invite {
            token_hash: hash_token(&token),
            team_id: team.clone(),
            created_at: now,
            expires_at: now + INVITE_VALIDITY,
            invited_by: invited_by.cloned(),
        };
        self.members.insert_invite(&invite).await?;
        Ok(CreatedInvite { invite, token })
    }

    /// The invite behind a link's token, if it can still be used.
    pub async fn usable_invite(&self, token: &str) -> Result<Invite, MemberError> {
        let invite = self
            .members
            .get_invite(&hash_token(token))
            .await?
            .ok_or(MemberError::InviteUnusable)?;
        if invite.expires_at <= self.clock.now() {
            return Err(MemberError::InviteUnusable);
        }
        Ok(invite)
    }

    /// Uses the invite: creates the member and signs them in.
    pub async fn accept_invite(
        &self,
        token: &str,
        new: NewMember<'_>,
    ) -> Result<(Member, StartedSession), MemberError> {
        let email = normalized_email(new.email)?;
        checked_password(new.password)?;
        let name =
            checked_name(new.name, "name").map_err(|e| invalid(Field::Name, e.to_string()))?;
        let invite = self.usable_invite(token).await?;
        if self.members.find_member_by_email(&email).await?.is_some() {
            return Err(MemberError::EmailTaken);
        }
        let member = Member {
            id: MemberId::generate(),
            team_id: invite.team_id.clone(),
            email,
            name,
            password_hash: password::hash(new.password),
            created_at: self.clock.now(),
        };
        match self
            .members
            .accept_invite(&invite.token_hash, &member)
            .await
        {
            Ok(()) => {}
            // Lost a race: the invite was used meanwhile, or the email was taken.
            Err(StoreError::Conflict(_)) => {
                return Err(
                    if self
                        .members
                        .find_member_by_email(&member.email)
                        .await?
                        .is_some()
                    {
                        MemberError::EmailTaken
                    } else {
                        MemberError::InviteUnusable
                    },
                );
            }
            Err(other) => return Err(other.into()),
        }
        tracing::info!(team = %member.team_id, member = %member.id, "member joined");
        let session = self.start_session(&member).await?;
        Ok((member, session))
    }

    /// Signs in; `client` names where the request came from (for throttling).
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        client: &str,
    ) -> Result<(Member, StartedSession), MemberError> {
        let now = self.clock.now();
        let account = format!("account:{}", email.trim().to_lowercase());
        let client = format!("client:{client}");
        self.throttle
            .check(&[&account, &client], now)
            .await?
            .map_err(|wait| MemberError::Throttled {
                retry_after_seconds: crate::throttle::retry_after_seconds(wait),
            })?;
        let found = match normalized_email(email) {
            Ok(email) => self.members.find_member_by_email(&email).await?,
            Err(_) => None,
        };
        // Verify against a dummy hash when there is no such member, so timing does not tell.
        let verified = match &found {
            Some(member) => password::verify(password, &member.password_hash),
            None => {
                password::verify(password, password::dummy_hash());
                false
            }
        };
        let Some(member) = found.filter(|_| verified) else {
            self.throttle
                .record_failure(&[&account, &client], now)
                .await?;
            return Err(MemberError::WrongCredentials);
        };
        let session = self.start_session(&member).await?;
        tracing::info!(team = %member.team_id, member = %member.id, "member signed in");
        Ok((member, session))
    }

    async fn start_session(&self, member: &Member) -> Result<StartedSession, MemberError> {
        let token = generate_token(SESSION_PREFIX);
        let now = self.clock.now();
        let session = Session {
            id_hash: hash_token(&token),
            member_id: member.id.clone(),
            team_id: member.team_id.clone(),
            csrf_token: generate_token(""),
            created_at: now,
            last_seen_at: now,
        };
        self.members
            .insert_session(&session, self.policy.expires_at(&session))
            .await?;
        Ok(StartedSession { session, token })
    }

    /// The live session and its member for a cookie's token; `None` when unknown or expired
    /// (an expired one is deleted). Moves the idle deadline when due.
    pub async fn session(&self, token: &str) -> Result<Option<(Session, Member)>, MemberError> {
        let id_hash = hash_token(token);
        let Some(mut session) = self.members.get_session(&id_hash).await? else {
            return Ok(None);
        };
        let now = self.clock.now();
        match session_state(&session, now, &self.policy) {
            SessionState::Expired => {
                self.members.delete_session(&id_hash).await?;
                return Ok(None);
            }
            SessionState::Touch => {
                session.last_seen_at = now;
                let expires_at = self.policy.expires_at(&session);
                if !self
                    .members
                    .touch_session(&id_hash, now, expires_at)
                    .await?
                {
                    return Ok(None);
                }
            }
            SessionState::Active => {}
        }
        let Some(member) = self.members.get_member(&session.member_id).await? else {
            return Ok(None);
        };
        Ok(Some((session, member)))
    }

    /// Ends the session on the server.
    pub async fn sign_out(&self, token: &str) -> Result<(), MemberError> {
        self.members.delete_session(&hash_token(token)).await?;
        Ok(())
    }

    pub async fn list_members(&self, team: &TeamId) -> Result<Vec<Member>, MemberError> {
        Ok(self.members.list_members(team).await?)
    }
}

/// Whether a form's CSRF token is the session's (constant time).
pub fn csrf_matches(session: &Session, presented: &str) -> bool {
    !presented.is_empty() && bool::from(presented.as_bytes().ct_eq(session.csrf_token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_and_lowercased() {
        assert_eq!(
            normalized_email(" Ana@Example.COM ").ok().as_deref(),
            Some("ana@example.com")
        );
        for bad in [
            "",
            "ana",
            "ana@",
            "@example.com",
            "ana@example",
            "a b@example.com",
            "a@b@c.de",
        ] {
            assert!(normalized_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_need_twelve_characters() {
        assert!(checked_password("elevenchars").is_err());
        assert!(checked_password("twelve chars").is_ok());
        assert!(matches!(
            checked_password("short"),
            Err(MemberError::Invalid {
                field: Field::Password,
                ..
            })
        ));
    }

    #[test]
    fn csrf_tokens_must_match_the_session() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let session = Session {
            id_hash: "h".into(),
            member_id: MemberId("m".into()),
            team_id: TeamId("t".into()),
            csrf_token: "abc".into(),
            created_at: now,
            last_seen_at: now,
        };
        assert!(csrf_matches(&session, "abc"));
        assert!(!csrf_matches(&session, "abd"));
        assert!(!csrf_matches(&session, ""));
    }
}
