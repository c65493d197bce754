//! `/destinations` (add, send a test; the webhook signing secret shown once, URLs never shown
//! back), `/workflows` (apps from the monitored list, event types from the catalogue) and
//! `/history` (search `q`, filters, each event with its deliveries, attempts and outcomes).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use shipwatch_service::destinations::{DestinationError, NewDestination, NewWorkflow};
use shipwatch_service::domain::event_labels::event_type_label;
use shipwatch_service::domain::routing::known_event_types;
use shipwatch_service::model::{DeliveryStatus, DestinationId, LastOutcome, WorkflowId};
use shipwatch_service::queries::{AppsFilter, HistoryFilter, MAX_APPS_LIMIT};

use super::Signed;
use super::page::{self, Field, Nav, field_error};
use crate::ApiState;

type Pairs = Vec<(String, String)>;

fn first<'a>(pairs: &'a Pairs, name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

fn all(pairs: &Pairs, name: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .collect()
}

fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// A destination's last outcome in words: "Delivered (HTTP 200)" or "Failed: ...", and when.
fn last_outcome(outcome: Option<&LastOutcome>) -> Markup {
    let Some(o) = outcome else {
        return html! { "No message sent yet" };
    };
    html! {
        @match (o.delivered, o.http_status, &o.error) {
            (true, Some(code), _) => { "Delivered (HTTP " (code) ")" }
            (true, None, _) => { "Delivered" }
            (false, _, Some(error)) => { "Failed: " (error) }
            (false, Some(code), None) => { "Failed (HTTP " (code) ")" }
            (false, None, None) => { "Failed" }
        }
        ", " time datetime=(o.at.to_rfc3339()) { (o.at.format("%Y-%m-%d %H:%M:%S UTC")) }
    }
}

async fn destinations_page(
    state: &ApiState,
    signed: &Signed,
    status: StatusCode,
    notice: Markup,
    entered: (&str, &str),
    errors: &[(&'static str, String)],
) -> Response {
    let Ok(destinations) = state.destinations.list(&signed.team).await else {
        return page::unavailable();
    };
    let csrf = &signed.session.csrf_token;
    let (type_error, name_error, url_error) = (
        field_error(errors, "type"),
        field_error(errors, "name"),
        field_error(errors, "url"),
    );
    let body = html! {
        (notice)
        @if destinations.is_empty() {
            p.card { "No destinations yet: add the Slack, Discord or Teams channel (or a webhook) to notify." }
        } @else {
            table.stack {
                thead { tr { th { "Name" } th { "Type" } th { "URL" } th { "Last outcome" } th { "Test" } th { "Delete" } } }
                tbody {
                    @for d in &destinations {
                        tr {
                            td { (d.name) }
                            td data-label="Type" { (d.kind.as_str()) }
                            td data-label="URL" { code { (d.url_hint) } }
                            td.outcome data-label="Last outcome" { (last_outcome(d.last_outcome.as_ref())) }
                            td {
                                form method="post" action={"/destinations/" (d.id.0) "/test"} {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button.link type="submit" { "Send a test" }
                                }
                            }
                            td {
                                form method="post" action={"/destinations/" (d.id.0) "/delete"} {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button.link type="submit" aria-label={"Delete " (d.name) " and the workflows that send to it"} { "Delete" }
                                }
                            }
                        }
                    }
                }
            }
        }
        form.card method="post" action="/destinations" {
            h2 { "Add a destination" }
            input type="hidden" name="csrf" value=(csrf);
            label for="type" { "Type" }
            select id="type" name="type" aria-describedby="type-help" {
                @for (value, label) in [("slack", "Slack"), ("discord", "Discord"), ("teams", "Microsoft Teams"), ("webhook", "Signed webhook")] {
                    option value=(value) selected[entered.0 == value] { (label) }
                }
            }
            div id="type-help" { @if let Some(e) = &type_error { p.error id="type-error" { (e) } } }
            (Field { name: "name", label: "Name", kind: "text", value: entered.1, hint: Some("For example #releases."),
                error: name_error.as_deref(), required: true, autocomplete: Some("off") }.render())
            (Field { name: "url", label: "Webhook URL", kind: "text", value: "", hint: Some("An https URL; it is stored as a secret and never shown again."),
                error: url_error.as_deref(), required: true, autocomplete: Some("off") }.render())
            button type="submit" { "Add destination" }
        }
    };
    let mut response = page::signed_page(
        "Destinations",
        Nav::Destinations,
        &signed.team.name,
        csrf,
        body,
    );
    *response.status_mut() = status;
    response
}

pub async fn destinations(State(state): State<ApiState>, signed: Signed) -> Response {
    destinations_page(
        &state,
        &signed,
        StatusCode::OK,
        html! {},
        ("slack", ""),
        &[],
    )
    .await
}

pub async fn add_destination(
    State(state): State<ApiState>,
    signed: Signed,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let pairs: Pairs = match signed.read_checked_form(&headers, body).await {
        Ok(pairs) => pairs,
        Err(response) => return response,
    };
    let (kind, name) = (
        first(&pairs, "type").to_owned(),
        first(&pairs, "name").to_owned(),
    );
    let new = NewDestination {
        kind: kind.clone(),
        name: name.clone(),
        url: first(&pairs, "url").to_owned(),
    };
    match state.destinations.create(&signed.team, new).await {
        Ok(created) => {
            let notice = html! {
                div.card.notice role="status" {
                    p { "Destination " strong { (created.destination.name) } " added." }
                    @if let Some(secret) = &created.signing_secret {
                        p { "Signing secret (shown once; verify the webhook-signature header with it):" }
                        p { code id="signing-secret" { (secret) } }
                    }
                }
            };
            destinations_page(
                &state,
                &signed,
                StatusCode::CREATED,
                notice,
                ("slack", ""),
                &[],
            )
            .await
        }
        Err(DestinationError::Store(_)) => page::unavailable(),
        Err(e) => {
            let field = match &e {
                DestinationError::InvalidType => "type",
                DestinationError::InvalidName(_) => "name",
                _ => "url",
            };
            destinations_page(
                &state,
                &signed,
                StatusCode::BAD_REQUEST,
                html! {},
                (&kind, &name),
                &[(field, sentence(&e.to_string()))],
            )
            .await
        }
    }
}

pub async fn test_destination(
    State(state): State<ApiState>,
    signed: Signed,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(response) = signed.read_checked_form::<Pairs>(&headers, body).await {
        return response;
    }
    let notice = match state
        .destinations
        .send_test(&signed.team, &DestinationId(id))
        .await
    {
        Ok(outcome) => {
            let attempt = &outcome.attempt;
            html! {
                div.card.notice role="status" id="test-outcome" {
                    @match (&attempt.error, attempt.status_code) {
                        (None, Some(code)) => { "Test message delivered (HTTP " (code) ")." }
                        (None, None) => { "Test message delivered." }
                        (Some(error), _) => { "Test message failed: " (error) }
                    }
                }
            }
        }
        Err(DestinationError::NotFound) => return page::not_found(),
        Err(DestinationError::Store(_)) => return page::unavailable(),
        Err(e) => {
            html! { div.card.notice role="status" id="test-outcome" { (sentence(&e.to_string())) } }
        }
    };
    destinations_page(&state, &signed, StatusCode::OK, notice, ("slack", ""), &[]).await
}

/// Deletes the destination as `DELETE /v1/destinations/{id}` does: the workflows that send to it
/// go with it, and the notice names them.
pub async fn delete_destination(
    State(state): State<ApiState>,
    signed: Signed,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(response) = signed.read_checked_form::<Pairs>(&headers, body).await {
        return response;
    }
    let id = DestinationId(id);
    let (destination, workflows) = match (
        state.destinations.get(&signed.team, &id).await,
        state.destinations.list_workflows(&signed.team).await,
    ) {
        (Ok(destination), Ok(workflows)) => (destination, workflows),
        (Err(DestinationError::NotFound), _) => return page::not_found(),
        _ => return page::unavailable(),
    };
    let dependent: Vec<&str> = workflows
        .iter()
        .filter(|w| w.destination_id == id)
        .map(|w| w.name.as_str())
        .collect();
    match state.destinations.delete(&signed.team, &id).await {
        Ok(()) => {}
        Err(DestinationError::NotFound) => return page::not_found(),
        Err(_) => return page::unavailable(),
    }
    let notice = html! {
        div.card.notice role="status" id="delete-outcome" {
            "Destination " strong { (destination.name) } " deleted."
            @if !dependent.is_empty() {
                " It was used by " (dependent.len()) @if dependent.len() == 1 { " workflow" } @else { " workflows" }
                ", deleted with it (nothing can be sent without a destination): " (dependent.join(", ")) "."
            }
        }
    };
    destinations_page(&state, &signed, StatusCode::OK, notice, ("slack", ""), &[]).await
}

pub async fn delete_workflow(
    State(state): State<ApiState>,
    signed: Signed,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(response) = signed.read_checked_form::<Pairs>(&headers, body).await {
        return response;
    }
    let id = WorkflowId(id);
    let name = match state.destinations.get_workflow(&signed.team, &id).await {
        Ok(workflow) => workflow.name,
        Err(DestinationError::WorkflowNotFound) => return page::not_found(),
        Err(_) => return page::unavailable(),
    };
    match state.destinations.delete_workflow(&signed.team, &id).await {
        Ok(()) => {}
        Err(DestinationError::WorkflowNotFound) => return page::not_found(),
        Err(_) => return page::unavailable(),
    }
    let notice = html! {
        div.card.notice role="status" id="delete-outcome" { "Workflow " strong { (name) } " deleted." }
    };
    workflows_page(&state, &signed, StatusCode::OK, notice, &[]).await
}

async fn workflows_page(
    state: &ApiState,
    signed: &Signed,
    status: StatusCode,
    notice: Markup,
    errors: &[(&'static str, String)],
) -> Response {
    let workflows = state.destinations.list_workflows(&signed.team).await;
    let destinations = state.destinations.list(&signed.team).await;
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
    let (Ok(workflows), Ok(destinations), Ok(apps)) = (workflows, destinations, apps) else {
        return page::unavailable();
    };
    let csrf = &signed.session.csrf_token;
    let destination_name = |id: &DestinationId| {
        destinations
            .iter()
            .find(|d| &d.id == id)
            .map_or("(deleted)", |d| d.name.as_str())
            .to_owned()
    };
    let (name_error, destination_error, apps_error, types_error) = (
        field_error(errors, "name"),
        field_error(errors, "destination_id"),
        field_error(errors, "app_ids"),
        field_error(errors, "event_types"),
    );
    let body = html! {
        (notice)
        @if !workflows.is_empty() {
            table.stack {
                thead { tr { th { "Name" } th { "Apps" } th { "Events" } th { "Destination" } th { "Delete" } } }
                tbody {
                    @for w in &workflows {
                        tr {
                            td { (w.name) } td data-label="Apps" { (w.app_ids.join(", ")) } td data-label="Events" { (w.event_types.iter().map(|t| if t == "*" { "All event types".into() } else { event_type_label(t) }).collect::<Vec<_>>().join(", ")) } td data-label="Destination" { (destination_name(&w.destination_id)) }
                            td {
                                form method="post" action={"/workflows/" (w.id.0) "/delete"} {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button.link type="submit" aria-label={"Delete " (w.name)} { "Delete" }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if destinations.is_empty() {
            p.card { "Add a destination first: " a href="/destinations" { "Destinations" } }
        } @else {
            form.card method="post" action="/workflows" {
                h2 { "New workflow" }
                input type="hidden" name="csrf" value=(csrf);
                (Field { name: "name", label: "Name", kind: "text", value: "", hint: None,
                    error: name_error.as_deref(), required: true, autocomplete: Some("off") }.render())
                label for="destination_id" { "Destination" }
                select id="destination_id" name="destination_id" {
                    @for d in &destinations { option value=(d.id.0) { (d.name) } }
                }
                @if let Some(e) = &destination_error { p.error { (e) } }
                fieldset {
                    legend { "Apps" }
                    label { input type="checkbox" name="app_ids" value="*" checked; " All apps, also future ones" }
                    @for app in &apps.apps {
                        label { input type="checkbox" name="app_ids" value=(app.id); " " (app.name) }
                    }
                    @if let Some(e) = &apps_error { p.error id="app_ids-error" { (e) } }
                }
                fieldset {
                    legend { "Event types" }
                    label { input type="checkbox" name="event_types" value="*" checked; " All event types" }
                    @for t in known_event_types() {
                        label { input type="checkbox" name="event_types" value=(t); " " (event_type_label(t)) " " small { code { (t) } } }
                    }
                    @if let Some(e) = &types_error { p.error id="event_types-error" { (e) } }
                }
                button type="submit" { "Create workflow" }
            }
        }
    };
    let mut response =
        page::signed_page("Workflows", Nav::Workflows, &signed.team.name, csrf, body);
    *response.status_mut() = status;
    response
}

pub async fn workflows(State(state): State<ApiState>, signed: Signed) -> Response {
    workflows_page(&state, &signed, StatusCode::OK, html! {}, &[]).await
}

pub async fn add_workflow(
    State(state): State<ApiState>,
    signed: Signed,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let pairs: Pairs = match signed.read_checked_form(&headers, body).await {
        Ok(pairs) => pairs,
        Err(response) => return response,
    };
    // "All" wins over single picks, as the API's ["*"] means.
    let pick = |name| {
        let picked = all(&pairs, name);
        if picked.iter().any(|v| v == "*") {
            vec!["*".to_owned()]
        } else {
            picked
        }
    };
    let new = NewWorkflow {
        name: first(&pairs, "name").to_owned(),
        destination_id: first(&pairs, "destination_id").to_owned(),
        app_ids: pick("app_ids"),
        event_types: pick("event_types"),
    };
    match state.destinations.create_workflow(&signed.team, new).await {
        Ok(workflow) => {
            let notice = html! { div.card.notice role="status" id="workflow-created" { "Workflow " strong { (workflow.name) } " created." } };
            workflows_page(&state, &signed, StatusCode::CREATED, notice, &[]).await
        }
        Err(DestinationError::Store(_)) => page::unavailable(),
        Err(e) => {
            let field = match &e {
                DestinationError::InvalidName(_) => "name",
                DestinationError::InvalidAppIds => "app_ids",
                DestinationError::InvalidEventTypes => "event_types",
                _ => "destination_id",
            };
            workflows_page(
                &state,
                &signed,
                StatusCode::BAD_REQUEST,
                html! {},
                &[(field, sentence(&e.to_string()))],
            )
            .await
        }
    }
}

#[derive(serde::Deserialize, Default)]
pub struct HistoryParams {
    #[serde(default)]
    q: String,
    #[serde(default, rename = "type")]
    event_type: String,
    #[serde(default)]
    app: String,
    #[serde(default)]
    cursor: String,
}

fn delivery_label(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Pending => "Pending",
        DeliveryStatus::Delivered => "Delivered",
        DeliveryStatus::Failed => "Failed",
    }
}

pub async fn history(
    State(state): State<ApiState>,
    signed: Signed,
    uri: axum::http::Uri,
) -> Response {
    let params: HistoryParams =
        serde_urlencoded::from_str(uri.query().unwrap_or_default()).unwrap_or_default();
    let some = |v: &str| (!v.trim().is_empty()).then(|| v.trim().to_owned());
    let filter = HistoryFilter {
        app_id: some(&params.app),
        event_type: some(&params.event_type),
        text: some(&params.q),
        limit: Some(50),
        cursor: some(&params.cursor),
    };
    let (page_result, filter_error) = match state.history.page(&signed.team, filter).await {
        Ok(found) => (Some(found), None),
        Err(shipwatch_service::queries::QueryError::Store(_)) => return page::unavailable(),
        Err(e) => (None, Some(sentence(&e.to_string()))),
    };
    let csrf = &signed.session.csrf_token;
    let body = html! {
        form.card method="get" action="/history" {
            label for="q" { "Search" }
            input type="text" id="q" name="q" value=(params.q);
            label for="type" { "Event type" }
            select id="type" name="type" {
                option value="" { "All event types" }
                @for t in known_event_types() { option value=(t) selected[params.event_type == *t] { (event_type_label(t)) } }
            }
            @if let Some(e) = &filter_error { p.error id="type-error" { (e) } }
            (Field { name: "app", label: "App ID", kind: "text", value: &params.app, hint: Some("The app's Apple ID, to see one app only."),
                error: None, required: false, autocomplete: Some("off") }.render())
            button type="submit" { "Search" }
        }
        @if let Some(found) = &page_result {
            @if found.events.is_empty() {
                p.card { "No events match." }
            }
            @for item in &found.events {
                article.card.event {
                    p { strong { (item.event.summary) } }
                    p.hint { (item.event.time.format("%Y-%m-%d %H:%M:%S UTC")) " · " code { (item.event.event_type) } }
                    @if item.deliveries.is_empty() {
                        p.hint { "Not sent anywhere (no workflow picked it)." }
                    }
                    @for d in &item.deliveries {
                        div.delivery {
                            span class={"status delivery-" (delivery_label(d.delivery.status).to_lowercase())} { (delivery_label(d.delivery.status)) }
                            " to " (d.destination_name.as_deref().unwrap_or("a deleted destination"))
                            @for a in &d.delivery.attempts {
                                div.hint { "Attempt at " (a.at.format("%H:%M:%S")) ": "
                                    @if let Some(code) = a.status_code { "HTTP " (code) " " }
                                    @if let Some(e) = &a.error { (e) } @else { "ok" }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(next) = &found.next_cursor {
                p { a href={"/history?q=" (params.q) "&type=" (params.event_type) "&app=" (params.app) "&cursor=" (next)} { "Older events" } }
            }
        }
    };
    page::signed_page("History", Nav::History, &signed.team.name, csrf, body)
}
