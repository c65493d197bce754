//! `/team`: the members, and invite links for new ones (each shown once).

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::page::{self, Nav};
use super::{Signed, read_form};
use crate::ApiState;

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    csrf: String,
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
    let Ok(members) = state.members.list_members(&signed.team.id).await else {
        return page::unavailable();
    };
    let body = html! {
        (extra)
        table.stack {
            thead { tr { th { "Name" } th { "Email" } th { "Member since" } } }
            tbody {
                @for member in &members {
                    tr { td { (member.name) } td { (member.email) } td { (member.created_at.format("%Y-%m-%d")) } }
                }
            }
        }
        form.card method="post" action="/team/invites" {
            input type="hidden" name="csrf" value=(signed.session.csrf_token);
            p { "Invite someone: create a one-time link (valid 7 days) and send it to them." }
            button type="submit" { "Create invite link" }
        }
    };
    page::signed_page(
        "Team",
        Nav::Team,
        &signed.team.name,
        &signed.session.csrf_token,
        body,
    )
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
    let form: InviteForm = match read_form(&headers, body).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    if let Err(refused) = signed.check_csrf(&form.csrf) {
        return refused;
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
