//! `/team`: the members, invite links for new ones, and the team's named API tokens (links and
//! token values are each shown once).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use shipwatch_service::api_tokens::{ApiTokenError, ApiTokenId};

use super::Signed;
use super::page::{self, Field, Nav};
use crate::ApiState;

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    csrf: String,
}

impl super::CsrfForm for InviteForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

impl super::CsrfForm for TokenForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// What the token form shows again after a refused attempt.
#[derive(Default)]
struct TokenEntry<'a> {
    name: &'a str,
    error: Option<String>,
}

/// The absolute invite URL for `token`: under the configured public URL, else on the host the
/// request came to.
pub(crate) fn invite_url(public_url: Option<&str>, headers: &HeaderMap, token: &str) -> String {
    if let Some(base) = public_url {
        return format!("{}/invite/{token}", base.trim_end_matches('/'));
    }
    let scheme = if super::is_https(headers) {
        "https"
    } else {
        "http"
    };
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    format!("{scheme}://{host}/invite/{token}")
}

async fn render(state: &ApiState, signed: &Signed, extra: Markup) -> Response {
    render_with(state, signed, StatusCode::OK, extra, TokenEntry::default()).await
}

async fn render_with(
    state: &ApiState,
    signed: &Signed,
    status: StatusCode,
    extra: Markup,
    entry: TokenEntry<'_>,
) -> Response {
    let (Ok(members), Ok(tokens)) = (
        state.members.list_members(&signed.team.id).await,
        state.api_tokens.list(&signed.team.id).await,
    ) else {
        return page::unavailable();
    };
    let member_name = |id| {
        members
            .iter()
            .find(|m| &m.id == id)
            .map_or("a former member", |m| m.name.as_str())
    };
    let csrf = &signed.session.csrf_token;
    let body = html! {
        (extra)
        table.stack {
            thead { tr { th { "Name" } th { "Email" } th { "Member since" } } }
            tbody {
                @for member in &members {
                    tr { td { (member.name) } td data-label="Email" { (member.email) } td data-label="Member since" { (member.created_at.format("%Y-%m-%d")) } }
                }
            }
        }
        form.card method="post" action="/team/invites" {
            input type="hidden" name="csrf" value=(csrf);
            p { "Invite someone: create a one-time link (valid 7 days) and send it to them." }
            button type="submit" { "Create invite link" }
        }
        h2 { "API tokens" }
        @if tokens.is_empty() {
            p.card { "No API tokens yet. Scripts can use one as a bearer token on the HTTP API." }
        } @else {
            table.stack id="api-tokens" {
                thead { tr { th { "Name" } th { "Created by" } th { "Created" } th { "Last used" } th { "Revoke" } } }
                tbody {
                    @for token in &tokens {
                        tr {
                            td { (token.name) }
                            td data-label="Created by" { (member_name(&token.created_by)) }
                            td data-label="Created" { (token.created_at.format("%Y-%m-%d %H:%M UTC")) }
                            td data-label="Last used" { @match token.last_used_at { Some(at) => { (at.format("%Y-%m-%d %H:%M UTC")) } None => { "never" } } }
                            td {
                                form method="post" action={"/team/tokens/" (token.id.0) "/revoke"} {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button.link type="submit" { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
        form.card method="post" action="/team/tokens" {
            h3 { "Create an API token" }
            input type="hidden" name="csrf" value=(csrf);
            (Field { name: "name", label: "Name", kind: "text", value: entry.name,
                hint: Some("What uses it, for example CI release script."),
                error: entry.error.as_deref(), required: true, autocomplete: Some("off") }.render())
            button type="submit" { "Create token" }
        }
    };
    let mut response = page::signed_page("Team", Nav::Team, &signed.team.name, csrf, body);
    *response.status_mut() = status;
    response
}

pub async fn show(State(state): State<ApiState>, signed: Signed) -> Response {
    render(&state, &signed, html! {}).await
}

pub async fn invite(
    State(state): State<ApiState>,
    signed: Signed,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(response) = signed.read_checked_form::<InviteForm>(&headers, body).await {
        return response;
    }
    let Ok(created) = state
        .members
        .invite(&signed.team.id, Some(&signed.member.id))
        .await
    else {
        return page::unavailable();
    };
    let url = invite_url(state.public_url.as_deref(), &headers, &created.token);
    render(
        &state,
        &signed,
        html! {
            div.card.notice role="status" {
                p { "Invite link (shown once; valid 7 days):" }
                p { code id="invite-url" { (url) } }
            }
        },
    )
    .await
}

pub async fn create_token(
    State(state): State<ApiState>,
    signed: Signed,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let form: TokenForm = match signed.read_checked_form(&headers, body).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    match state
        .api_tokens
        .create(&signed.team.id, &signed.member.id, &form.name)
        .await
    {
        Ok(created) => {
            let notice = html! {
                div.card.notice role="status" {
                    p { "API token " strong { (created.token.name) } " (shown once; copy it now):" }
                    p { code id="api-token-value" { (created.value) } }
                    p.hint { "Send it as Authorization: Bearer <token>." }
                }
            };
            render_with(
                &state,
                &signed,
                StatusCode::CREATED,
                notice,
                TokenEntry::default(),
            )
            .await
        }
        Err(ApiTokenError::InvalidName(e)) => {
            let entry = TokenEntry {
                name: &form.name,
                error: Some(format!("Give the token a name: {e}.")),
            };
            render_with(&state, &signed, StatusCode::BAD_REQUEST, html! {}, entry).await
        }
        Err(ApiTokenError::Store(_)) => page::unavailable(),
    }
}

pub async fn revoke_token(
    State(state): State<ApiState>,
    signed: Signed,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(response) = signed.read_checked_form::<InviteForm>(&headers, body).await {
        return response;
    }
    match state
        .api_tokens
        .revoke(&signed.team.id, &ApiTokenId(id))
        .await
    {
        Ok(true) => {
            let notice = html! { div.card.notice role="status" { p { "API token revoked; it no longer works." } } };
            render(&state, &signed, notice).await
        }
        Ok(false) => page::not_found(),
        Err(_) => page::unavailable(),
    }
}
