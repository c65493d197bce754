//! The web dashboard (contract section 6): server-rendered pages (maud) on the API's router, a
//! session cookie, a CSRF token in every state-changing form, security headers on every answer.
//! Handlers read through the services and queries, never the stores.

// Handlers answer a refusal as the page itself (`Err(Response)`); boxing it would buy nothing.
#![allow(clippy::result_large_err)]

mod account;
mod apps;
mod assets;
mod keys;
mod notify;
mod overview;
pub mod page;
mod team;

pub(crate) use team::invite_url;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use shipwatch_service::members::{Member, Session, csrf_matches};
use shipwatch_service::model::Team;

use crate::ApiState;

/// The dashboard's routes (added to the API router).
pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/", get(overview::show))
        .route("/login", get(account::login_form).post(account::login))
        .route("/logout", post(account::logout))
        .route(
            "/invite/{token}",
            get(account::invite_form).post(account::accept_invite),
        )
        .route("/apps/{id}", get(apps::show))
        .route("/keys", get(keys::list))
        .route("/keys/new", get(keys::new_form).post(keys::create))
        .route("/keys/{id}", get(keys::show))
        .route("/keys/{id}/status", get(keys::status))
        .route(
            "/destinations",
            get(notify::destinations).post(notify::add_destination),
        )
        .route("/destinations/{id}/test", post(notify::test_destination))
        .route(
            "/destinations/{id}/delete",
            post(notify::delete_destination),
        )
        .route("/workflows/{id}/delete", post(notify::delete_workflow))
        .route(
            "/workflows",
            get(notify::workflows).post(notify::add_workflow),
        )
        .route("/history", get(notify::history))
        .route("/team", get(team::show))
        .route("/team/invites", post(team::invite))
        .route("/team/tokens", post(team::create_token))
        .route("/team/tokens/{id}/revoke", post(team::revoke_token))
        .route("/assets/{name}", get(assets::serve))
}

/// Whether the request reached shipwatch over https (directly or through API Gateway).
pub(crate) fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

/// The cookie names: `__Host-` (Secure, host-only, path /) over https.
pub(crate) fn cookie_name(headers: &HeaderMap, base: &str) -> String {
    if is_https(headers) {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

pub(crate) const SESSION_COOKIE: &str = "sw_session";
pub(crate) const FORM_COOKIE: &str = "sw_form";

/// The value of cookie `name`, if sent.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, path /, Secure over https.
pub(crate) fn set_cookie(
    headers: &HeaderMap,
    base: &str,
    value: &str,
    max_age: i64,
) -> HeaderValue {
    let secure = if is_https(headers) { "; Secure" } else { "" };
    let name = cookie_name(headers, base);
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("sw_invalid=; Max-Age=0"))
}

/// A signed-in member, their session and their team; pages that need one redirect to `/login`
/// without it.
pub(crate) struct Signed {
    pub session: Session,
    pub member: Member,
    pub team: Team,
    /// The cookie's token (sign-out deletes its session).
    pub token: String,
}

/// A state-changing form: it carries the session's CSRF token.
pub(crate) trait CsrfForm: serde::de::DeserializeOwned {
    fn csrf(&self) -> &str;
}

/// Forms read as name-value pairs (repeated fields such as checkboxes).
impl CsrfForm for Vec<(String, String)> {
    fn csrf(&self) -> &str {
        self.iter()
            .find(|(name, _)| name == "csrf")
            .map_or("", |(_, value)| value.as_str())
    }
}

impl Signed {
    /// Reads a signed-in member's form, refused (403) unless it carries this session's CSRF
    /// token.
    pub(crate) async fn read_checked_form<T: CsrfForm>(
        &self,
        headers: &HeaderMap,
        body: axum::body::Body,
    ) -> Result<T, Response> {
        let form: T = read_form(headers, body).await?;
        self.check_csrf(form.csrf())?;
        Ok(form)
    }

    /// Refuses (403) a form whose `csrf` is not this session's.
    pub fn check_csrf(&self, presented: &str) -> Result<(), Response> {
        if csrf_matches(&self.session, presented) {
            Ok(())
        } else {
            Err(csrf_refused())
        }
    }
}

pub(crate) fn csrf_refused() -> Response {
    page::message_page(
        StatusCode::FORBIDDEN,
        "Form expired",
        "This form was missing its security token or it was out of date. Go back, reload the page and send it again.",
    )
}

impl FromRequestParts<ApiState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Response> {
        let to_login = || Redirect::to("/login").into_response();
        let name = cookie_name(&parts.headers, SESSION_COOKIE);
        let Some(token) = cookie(&parts.headers, &name).map(str::to_owned) else {
            return Err(to_login());
        };
        let found = state
            .members
            .session(&token)
            .await
            .map_err(|_| page::unavailable())?;
        let Some((session, member)) = found else {
            return Err(to_login());
        };
        let team = state
            .teams
            .get(&session.team_id)
            .await
            .map_err(|_| page::unavailable())?
            .ok_or_else(to_login)?;
        Ok(Self {
            session,
            member,
            team,
            token,
        })
    }
}

/// Security headers on every answer (pages and API alike): scripts and styles only from
/// shipwatch's own files, no framing, no sniffing, no referrer to other sites.
pub(crate) async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// Whether a request for an unknown path wants a page rather than the API's JSON.
pub(crate) fn wants_page(parts_uri: &axum::http::Uri, headers: &HeaderMap) -> bool {
    !parts_uri.path().starts_with("/v1/")
        && headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"))
}

/// A form body (`application/x-www-form-urlencoded`) under the API's size limit.
pub(crate) async fn read_form<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<T, Response> {
    let bytes = crate::body::read_limited(headers, body)
        .await
        .map_err(|e| page::message_page(e.status, "Form refused", &e.message))?;
    serde_urlencoded::from_bytes(&bytes).map_err(|_| {
        page::message_page(
            StatusCode::BAD_REQUEST,
            "Form refused",
            "The form's fields could not be read. Reload the page and try again.",
        )
    })
}

/// The path as logged: an invite link's token is a credential, so it is left out.
pub(crate) fn loggable_path(path: &str) -> &str {
    if path.starts_with("/invite/") {
        "/invite/{token}"
    } else {
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invite_tokens_are_not_logged() {
        assert_eq!(loggable_path("/invite/swi_secret"), "/invite/{token}");
        assert_eq!(loggable_path("/keys/abc"), "/keys/abc");
    }

    #[test]
    fn cookies_are_read_and_named_by_scheme() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; sw_session=tok; b=2"),
        );
        assert_eq!(cookie(&headers, "sw_session"), Some("tok"));
        assert_eq!(cookie_name(&headers, SESSION_COOKIE), "sw_session");
        let plain = set_cookie(&headers, SESSION_COOKIE, "v", 60);
        assert!(!plain.to_str().unwrap_or_default().contains("Secure"));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert_eq!(cookie_name(&headers, SESSION_COOKIE), "__Host-sw_session");
        let secure = set_cookie(&headers, SESSION_COOKIE, "v", 60);
        let secure = secure.to_str().unwrap_or_default();
        assert!(secure.starts_with("__Host-sw_session=v; Path=/; HttpOnly; SameSite=Lax"));
        assert!(secure.ends_with("; Secure"));
    }
}
