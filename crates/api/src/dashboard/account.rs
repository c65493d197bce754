//! Sign-in, sign-out and joining through an invite link. Forms shown before there is a session
//! carry a token that must match a cookie set with the form (double submit), so they cannot be
//! posted from another site either.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use shipwatch_service::auth::generate_token;
use shipwatch_service::members::{MemberError, NewMember, StartedSession};
use subtle::ConstantTimeEq;

use super::page::{self, Field, field_error};
use super::{FORM_COOKIE, SESSION_COOKIE, Signed, cookie, cookie_name, read_form, set_cookie};
use crate::ApiState;

/// How long a pre-session form stays valid.
const FORM_TOKEN_SECONDS: i64 = 3600;

#[derive(Deserialize, Default)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

#[derive(Deserialize, Default)]
pub struct JoinForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    csrf: String,
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

impl super::CsrfForm for CsrfOnly {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The form token a pre-session form carries: the cookie's when there is one, else a new one
/// (and the cookie to set).
fn form_token(headers: &HeaderMap) -> (String, Option<axum::http::HeaderValue>) {
    match cookie(headers, &cookie_name(headers, FORM_COOKIE)) {
        Some(token) if token.len() >= 32 => (token.to_owned(), None),
        _ => {
            let token = generate_token("");
            let set = set_cookie(headers, FORM_COOKIE, &token, FORM_TOKEN_SECONDS);
            (token, Some(set))
        }
    }
}

fn form_token_matches(headers: &HeaderMap, presented: &str) -> bool {
    cookie(headers, &cookie_name(headers, FORM_COOKIE)).is_some_and(|expected| {
        !presented.is_empty() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
    })
}

fn with_cookie(mut response: Response, cookie: Option<axum::http::HeaderValue>) -> Response {
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// Signed in: the session cookie, then the overview.
fn signed_in(headers: &HeaderMap, started: &StartedSession, max_age: i64) -> Response {
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(headers, SESSION_COOKIE, &started.token, max_age),
    );
    response
}

fn client_of(headers: &HeaderMap) -> String {
    // API Gateway puts the caller first in X-Forwarded-For; locally there is no proxy.
    headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| "direct".to_owned())
}

fn login_page(
    status: StatusCode,
    csrf: &str,
    email: &str,
    errors: &[(&'static str, String)],
) -> Response {
    let email_error = field_error(errors, "email");
    let password_error = field_error(errors, "password");
    page::public_page(
        status,
        "Sign in",
        html! {
            form.card method="post" action="/login" {
                input type="hidden" name="csrf" value=(csrf);
                (Field { name: "email", label: "Email", kind: "email", value: email, hint: None,
                    error: email_error.as_deref(), required: true, autocomplete: Some("username") }.render())
                (Field { name: "password", label: "Password", kind: "password", value: "", hint: None,
                    error: password_error.as_deref(), required: true, autocomplete: Some("current-password") }.render())
                button type="submit" { "Sign in" }
            }
            p.hint { "New here? Ask a member of your team for an invite link." }
        },
    )
}

pub async fn login_form(headers: HeaderMap) -> Response {
    let (csrf, set) = form_token(&headers);
    with_cookie(login_page(StatusCode::OK, &csrf, "", &[]), set)
}

pub async fn login(State(state): State<ApiState>, headers: HeaderMap, body: Body) -> Response {
    let form: LoginForm = match read_form(&headers, body).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    if !form_token_matches(&headers, &form.csrf) {
        return super::csrf_refused();
    }
    match state
        .members
        .sign_in(&form.email, &form.password, &client_of(&headers))
        .await
    {
        Ok((_, started)) => signed_in(
            &headers,
            &started,
            state.members.policy().absolute.num_seconds(),
        ),
        Err(MemberError::WrongCredentials) => login_page(
            StatusCode::UNAUTHORIZED,
            &form.csrf,
            &form.email,
            &[("password", "The email or the password is wrong.".to_owned())],
        ),
        Err(e @ MemberError::Throttled { .. }) => login_page(
            StatusCode::TOO_MANY_REQUESTS,
            &form.csrf,
            &form.email,
            &[("password", format!("{}.", capitalized(&e.to_string())))],
        ),
        Err(_) => page::unavailable(),
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

pub async fn logout(
    State(state): State<ApiState>,
    signed: Signed,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(response) = signed.read_checked_form::<CsrfOnly>(&headers, body).await {
        return response;
    }
    if state.members.sign_out(&signed.token).await.is_err() {
        return page::unavailable();
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&headers, SESSION_COOKIE, "", 0),
    );
    response
}

fn join_page(
    status: StatusCode,
    token: &str,
    csrf: &str,
    form: &JoinForm,
    errors: &[(&'static str, String)],
) -> Response {
    let action = format!("/invite/{token}");
    let email_error = field_error(errors, "email");
    let password_error = field_error(errors, "password");
    let name_error = field_error(errors, "name");
    page::public_page(
        status,
        "Join your team",
        html! {
            form.card method="post" action=(action) {
                input type="hidden" name="csrf" value=(csrf);
                (Field { name: "name", label: "Your name", kind: "text", value: &form.name, hint: None,
                    error: name_error.as_deref(), required: true, autocomplete: Some("name") }.render())
                (Field { name: "email", label: "Email", kind: "email", value: &form.email, hint: Some("You sign in with it."),
                    error: email_error.as_deref(), required: true, autocomplete: Some("username") }.render())
                (Field { name: "password", label: "Password", kind: "password", value: "", hint: Some("At least 12 characters."),
                    error: password_error.as_deref(), required: true, autocomplete: Some("new-password") }.render())
                button type="submit" { "Create account" }
            }
        },
    )
}

fn invite_unusable() -> Response {
    page::message_page(
        StatusCode::NOT_FOUND,
        "Invite link not usable",
        "This invite link is unknown, already used or expired. Ask a member of your team for a new one.",
    )
}

pub async fn invite_form(
    State(state): State<ApiState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    match state.members.usable_invite(&token).await {
        Ok(_) => {
            let (csrf, set) = form_token(&headers);
            with_cookie(
                join_page(StatusCode::OK, &token, &csrf, &JoinForm::default(), &[]),
                set,
            )
        }
        Err(MemberError::InviteUnusable) => invite_unusable(),
        Err(_) => page::unavailable(),
    }
}

pub async fn accept_invite(
    State(state): State<ApiState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let form: JoinForm = match read_form(&headers, body).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    if !form_token_matches(&headers, &form.csrf) {
        return super::csrf_refused();
    }
    let new = NewMember {
        email: &form.email,
        password: &form.password,
        name: &form.name,
    };
    let refused = |field: &'static str, message: String| {
        join_page(
            StatusCode::BAD_REQUEST,
            &token,
            &form.csrf,
            &form,
            &[(field, format!("{}.", capitalized(&message)))],
        )
    };
    match state.members.accept_invite(&token, new).await {
        Ok((_, started)) => signed_in(
            &headers,
            &started,
            state.members.policy().absolute.num_seconds(),
        ),
        Err(MemberError::Invalid { field, message }) => refused(field.as_str(), message),
        Err(e @ MemberError::EmailTaken) => refused("email", e.to_string()),
        Err(MemberError::InviteUnusable) => invite_unusable(),
        Err(_) => page::unavailable(),
    }
}
