//! `/`: the team's monitored apps with each current version's state, the latest builds and when
//! each key was last checked (read through the apps query).

use axum::extract::State;
use axum::response::Response;
use maud::html;
use shipwatch_service::queries::{AppsFilter, MAX_APPS_LIMIT};

use super::Signed;
use super::page::{self, Nav};
use crate::ApiState;

pub async fn show(State(state): State<ApiState>, signed: Signed) -> Response {
    let apps = state
        .apps
        .page(
            &signed.team,
            AppsFilter {
                limit: Some(MAX_APPS_LIMIT),
                cursor: None,
            },
        )
        .await;
    let keys = state.keys.list(&signed.team).await;
    let (Ok(apps), Ok(keys)) = (apps, keys) else {
        return page::unavailable();
    };
    let last_checked = |key: &shipwatch_service::model::KeyRecordId| {
        keys.iter()
            .find(|k| &k.id == key)
            .and_then(|k| k.last_swept_at)
            .map(|at| at.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_else(|| "not yet".to_owned())
    };
    let body = html! {
        @if keys.is_empty() {
            div.card.notice {
                p { "Welcome, " (signed.member.name) ". Add your App Store Connect API key to start monitoring your apps." }
                a.button href="/keys/new" { "Add API Key" }
            }
        } @else if apps.apps.is_empty() {
            p.card { "No apps seen yet: they appear after the first check of a valid key." }
        } @else {
            table.stack {
                thead { tr { th { "App" } th { "Versions" } th { "Latest builds" } th { "Last checked" } } }
                tbody {
                    @for app in &apps.apps {
                        tr {
                            td { strong { a href={"/apps/" (app.id)} { (app.name) } } br; small.hint { (app.bundle_id) } }
                            td data-label="Versions" {
                                @for version in &app.versions {
                                    div { (version.platform) " " (version.version_string) ": " strong { (version.state) }
                                        small.hint { " since " (version.state_since.format("%Y-%m-%d %H:%M")) } }
                                }
                            }
                            td data-label="Latest builds" {
                                @for build in app.builds.iter().take(3) {
                                    div { (build.short_version.as_deref().unwrap_or("")) " (" (build.version) "): " (build.processing_state) }
                                }
                            }
                            td data-label="Last checked" { (last_checked(&app.key)) }
                        }
                    }
                }
            }
        }
    };
    page::signed_page(
        "Overview",
        Nav::Overview,
        &signed.team.name,
        &signed.session.csrf_token,
        body,
    )
}
