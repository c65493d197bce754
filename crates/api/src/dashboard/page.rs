//! The page frame (navigation, "Sign out"), form helpers and the plain message pages (404, 403).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::assets;

/// Which navigation entry is current.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Keys,
    Destinations,
    Workflows,
    History,
    Team,
}

const NAV: &[(Nav, &str, &str)] = &[
    (Nav::Overview, "/", "Overview"),
    (Nav::Keys, "/keys", "API Keys"),
    (Nav::Destinations, "/destinations", "Destinations"),
    (Nav::Workflows, "/workflows", "Workflows"),
    (Nav::History, "/history", "History"),
    (Nav::Team, "/team", "Team"),
];

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · shipwatch" }
            link rel="stylesheet" href=(assets::url("app.css"));
            script src=(assets::url("app.js")) defer {}
        }
    }
}

/// A signed-in page: navigation, the team's name and a "Sign out" button.
pub fn signed_page(title: &str, nav: Nav, team: &str, csrf: &str, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top {
                    span.brand { "shipwatch · " (team) }
                    nav aria-label="Main" {
                        @for (entry, href, label) in NAV {
                            @if *entry == nav {
                                a href=(href) aria-current="page" { (label) }
                            } @else {
                                a href=(href) { (label) }
                            }
                        }
                    }
                    form method="post" action="/logout" {
                        input type="hidden" name="csrf" value=(csrf);
                        button.link type="submit" { "Sign out" }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    };
    html_response(StatusCode::OK, markup)
}

/// A page for people not signed in (sign-in, invite).
pub fn public_page(status: StatusCode, title: &str, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top { span.brand { "shipwatch" } }
                main { h1 { (title) } (body) }
            }
        }
    };
    html_response(status, markup)
}

pub fn html_response(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // Pages show a team's data: never kept by caches.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub fn message_page(status: StatusCode, title: &str, message: &str) -> Response {
    public_page(
        status,
        title,
        html! { p { (message) } p { a href="/" { "Back to the dashboard" } } },
    )
}

pub fn not_found() -> Response {
    message_page(
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is no such page, or it belongs to another team.",
    )
}

pub fn unavailable() -> Response {
    message_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "shipwatch could not reach its storage. Try again in a moment.",
    )
}

/// A labelled input with its hint and, when there is one, its error right below.
pub struct Field<'a> {
    pub name: &'a str,
    pub label: &'a str,
    pub kind: &'a str,
    pub value: &'a str,
    pub hint: Option<&'a str>,
    pub error: Option<&'a str>,
    pub required: bool,
    pub autocomplete: Option<&'a str>,
}

impl Field<'_> {
    pub fn render(&self) -> Markup {
        let described = format!("{}-help", self.name);
        html! {
            label for=(self.name) { (self.label) }
            input type=(self.kind) id=(self.name) name=(self.name) value=(self.value)
                required[self.required] autocomplete=[self.autocomplete]
                aria-invalid=[self.error.map(|_| "true")] aria-describedby=(described);
            div id=(described) {
                @if let Some(hint) = self.hint { p.hint { (hint) } }
                @if let Some(error) = self.error { p.error id={(self.name) "-error"} { (error) } }
            }
        }
    }
}

/// An error shown next to the field it concerns.
pub fn field_error(errors: &[(&'static str, String)], field: &str) -> Option<String> {
    errors
        .iter()
        .find(|(name, _)| *name == field)
        .map(|(_, message)| message.clone())
}
