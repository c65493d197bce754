//! `/keys`, `/keys/new` (the Add API Key form), `/keys/{id}` (status that updates itself) and
//! `/keys/{id}/status` (what the page's script polls). The upload goes through the API's own
//! multipart parsing and the key service's checks: one code path.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde_json::json;
use shipwatch_service::keys::KeyError;
use shipwatch_service::model::{AccountRef, ApiKeyRecord, KeyRecordId, KeyStatus, PushStatus};

use super::Signed;
use super::page::{self, Field, Nav, field_error};
use crate::ApiState;
use crate::body::{parse_multipart, read_limited};

pub fn status_label(status: KeyStatus) -> &'static str {
    match status {
        KeyStatus::Validating => "Validating",
        KeyStatus::Valid => "Valid",
        KeyStatus::Invalid => "Invalid",
        KeyStatus::ActionRequired => "Action required",
    }
}

/// Push from App Store Connect webhooks (contract section 7) in words: a CSS class, a label and
/// what it means for this key.
struct PushWords {
    class: &'static str,
    label: &'static str,
    sentence: String,
}

fn push_words(key: &ApiKeyRecord) -> PushWords {
    let words = |class, label, sentence: String| PushWords {
        class,
        label,
        sentence,
    };
    let Some(push) = &key.push else {
        return match key.account {
            AccountRef::GooglePlay { .. } => words(
                "push-off",
                "Not used",
                "Google Play sends no push; shipwatch polls this account.".to_owned(),
            ),
            AccountRef::AppStoreConnect { .. } => words(
                "push-off",
                "Not set up yet",
                "shipwatch sets up push right after it finds the key valid; until then it polls."
                    .to_owned(),
            ),
        };
    };
    let message = push.message.clone().unwrap_or_default();
    match push.status {
        PushStatus::Off => words("push-off", "Off", message),
        PushStatus::Unavailable => words("push-unavailable", "Unavailable", message),
        PushStatus::Degraded => words("push-degraded", "Degraded", message),
        PushStatus::Active => {
            let mut sentence = format!(
                "App Store Connect tells shipwatch of changes to {} app(s) within seconds; polling goes on as the safety net.",
                push.webhooks.len()
            );
            if !message.is_empty() {
                sentence.push(' ');
                sentence.push_str(&message);
            }
            words("push-active", "Active", sentence)
        }
    }
}

fn key_id_of(key: &ApiKeyRecord) -> &str {
    key.account.identity()
}

fn issuer_of(account: &AccountRef) -> Option<&str> {
    match account {
        AccountRef::AppStoreConnect { issuer_id, .. } => Some(issuer_id.as_str()),
        AccountRef::GooglePlay { .. } => None,
    }
}

fn platform_label(account: &AccountRef) -> &'static str {
    match account {
        AccountRef::AppStoreConnect { .. } => "App Store Connect",
        AccountRef::GooglePlay { .. } => "Google Play",
    }
}

pub async fn list(State(state): State<ApiState>, signed: Signed) -> Response {
    let Ok(keys) = state.keys.list(&signed.team).await else {
        return page::unavailable();
    };
    let body = html! {
        p { a.button href="/keys/new" { "Add API Key" } }
        @if keys.is_empty() {
            p.card { "No API keys yet. Add one to start monitoring your apps." }
        } @else {
            table.stack {
                thead { tr { th { "Name" } th { "Platform" } th { "Key ID" } th { "Status" } th { "Push" } th { "Apps" } } }
                tbody {
                    @for key in &keys {
                        tr {
                            td { a href={"/keys/" (key.id.0)} { (key.name) } }
                            td { (platform_label(&key.account)) }
                            td data-label="Key ID" { code { (key_id_of(key)) } }
                            td data-label="Status" { span class={"status status-" (key.status.as_str())} { (status_label(key.status)) } }
                            td data-label="Push" { @let push = push_words(key); span class=(push.class) { (push.label) } }
                            td data-label="Apps" { @if let Some(n) = key.apps_count { (n) } @else { "–" } }
                        }
                    }
                }
            }
        }
    };
    page::signed_page(
        "API Keys",
        Nav::Keys,
        &signed.team.name,
        &signed.session.csrf_token,
        body,
    )
}

#[derive(Default)]
struct Entered {
    platform: String,
    package_names: String,
    issuer_id: String,
    key_id: String,
    name: String,
}

fn form_page(
    signed: &Signed,
    status: StatusCode,
    entered: &Entered,
    errors: &[(&'static str, String)],
) -> Response {
    let error = |field| field_error(errors, field);
    let (service_account_error, package_names_error) =
        (error("service_account"), error("package_names"));
    let (platform_error, key_error, issuer_error, key_id_error, name_error) = (
        error("platform"),
        error("private_key"),
        error("issuer_id"),
        error("key_id"),
        error("name"),
    );
    let play = entered.platform == "google_play";
    let body: Markup = html! {
        form.card method="post" action="/keys/new" enctype="multipart/form-data" {
            input type="hidden" name="csrf" value=(signed.session.csrf_token);
            label for="platform" { "Platform" }
            select id="platform" name="platform" aria-describedby="platform-help" {
                option value="app_store_connect" selected[!play] { "App Store Connect" }
                option value="google_play" selected[play] { "Google Play" }
            }
            div id="platform-help" {
                p.hint { "App Store Connect: a team key from Users and Access → Integrations. Google Play: a service account JSON file." }
                @if let Some(e) = &platform_error { p.error id="platform-error" { (e) } }
            }
            fieldset {
                legend { "App Store Connect" }
            label for="private_key" { "Private key (.p8 file)" }
            input type="file" id="private_key" name="private_key" accept=".p8,.json" aria-describedby="private_key-help"
                aria-invalid=[key_error.as_ref().map(|_| "true")];
            div id="private_key-help" {
                p.hint { "The AuthKey_<KEYID>.p8 file you downloaded. It is kept only in the secret store and never shown again." }
                @if let Some(e) = &key_error { p.error id="private_key-error" { (e) } }
            }
            (Field { name: "issuer_id", label: "Issuer ID", kind: "text", value: &entered.issuer_id,
                hint: Some("Shown above the key list in App Store Connect, like 57246542-96fe-1a63-e053-0824d011072a."),
                error: issuer_error.as_deref(), required: false, autocomplete: Some("off") }.render())
            (Field { name: "key_id", label: "Key ID", kind: "text", value: &entered.key_id,
                hint: Some("Leave empty to take it from the file name AuthKey_<KEYID>.p8."),
                error: key_id_error.as_deref(), required: false, autocomplete: Some("off") }.render())
            }
            fieldset {
                legend { "Google Play" }
                label for="service_account" { "Service account key (JSON file)" }
                input type="file" id="service_account" name="service_account" accept=".json,application/json"
                    aria-describedby="service_account-help"
                    aria-invalid=[service_account_error.as_ref().map(|_| "true")];
                div id="service_account-help" {
                    p.hint { "The JSON key of the service account you invited in Play Console. It is kept only in the secret store and never shown again." }
                    @if let Some(e) = &service_account_error { p.error id="service_account-error" { (e) } }
                }
                (Field { name: "package_names", label: "Package names", kind: "text", value: &entered.package_names,
                    hint: Some("The apps to watch, separated by commas, like com.example.app."),
                    error: package_names_error.as_deref(), required: false, autocomplete: Some("off") }.render())
            }
            (Field { name: "name", label: "Name", kind: "text", value: &entered.name,
                hint: Some("Optional: how this key is called in shipwatch."),
                error: name_error.as_deref(), required: false, autocomplete: Some("off") }.render())
            button type="submit" { "Add API Key" }
        }
    };
    let mut response = page::signed_page(
        "Add API Key",
        Nav::Keys,
        &signed.team.name,
        &signed.session.csrf_token,
        body,
    );
    *response.status_mut() = status;
    response
}

pub async fn new_form(signed: Signed) -> Response {
    form_page(&signed, StatusCode::OK, &Entered::default(), &[])
}

/// The field a key service error concerns.
fn field_of(error: &KeyError) -> &'static str {
    match error {
        KeyError::InvalidPrivateKey(_) => "private_key",
        KeyError::InvalidKeyId(_) | KeyError::KeyIdMismatch { .. } | KeyError::KeyExists { .. } => {
            "key_id"
        }
        KeyError::InvalidIssuerId(_) => "issuer_id",
        KeyError::InvalidName => "name",
        KeyError::InvalidServiceAccount(_) | KeyError::ServiceAccountExists { .. } => {
            "service_account"
        }
        KeyError::InvalidPackageName(_) => "package_names",
        _ => "private_key",
    }
}

fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

pub async fn create(
    State(state): State<ApiState>,
    signed: Signed,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bytes = match read_limited(&headers, body).await {
        Ok(bytes) => bytes,
        Err(e) => {
            return form_page(
                &signed,
                e.status,
                &Entered::default(),
                &[("private_key", sentence(&e.message))],
            );
        }
    };
    let parts = match parse_multipart(&headers, bytes).await {
        Ok(parts) => parts,
        Err(e) => {
            return form_page(
                &signed,
                e.status,
                &Entered::default(),
                &[("private_key", sentence(&e.message))],
            );
        }
    };
    let text = |name: &str| {
        parts
            .iter()
            .find(|p| p.name == name)
            .map(|p| String::from_utf8_lossy(&p.data).into_owned())
            .unwrap_or_default()
    };
    if let Err(refused) = signed.check_csrf(&text("csrf")) {
        return refused;
    }
    let entered = Entered {
        platform: text("platform"),
        package_names: text("package_names"),
        issuer_id: text("issuer_id"),
        key_id: text("key_id"),
        name: text("name"),
    };
    match entered.platform.as_str() {
        "" | "app_store_connect" => {}
        "google_play" => return create_google_play(&state, &signed, &parts, &entered).await,
        _ => {
            return form_page(
                &signed,
                StatusCode::BAD_REQUEST,
                &entered,
                &[(
                    "platform",
                    "Choose App Store Connect or Google Play.".to_owned(),
                )],
            );
        }
    }
    let mut new = match crate::keys::new_key_from_parts(&parts) {
        Ok(new) => new,
        Err(e) => {
            return form_page(
                &signed,
                e.status,
                &entered,
                &[("private_key", sentence(&e.message))],
            );
        }
    };
    // A browser sends empty text fields; the API's "not given" is what they mean.
    for field in [&mut new.issuer_id, &mut new.key_id, &mut new.name] {
        if field.as_deref().is_some_and(|v| v.trim().is_empty()) {
            *field = None;
        }
    }
    if new.file_name.as_deref() == Some("") && new.private_key.is_empty() {
        return form_page(
            &signed,
            StatusCode::BAD_REQUEST,
            &entered,
            &[(
                "private_key",
                "Choose the .p8 file you downloaded from App Store Connect.".to_owned(),
            )],
        );
    }
    match state.keys.upload(&signed.team, new).await {
        Ok(record) => Redirect::to(&format!("/keys/{}", record.id.0)).into_response(),
        Err(KeyError::Store(_)) => page::unavailable(),
        Err(e) => {
            let (field, message) = (field_of(&e), sentence(&e.to_string()));
            let status = crate::error::ApiError::from(e).status;
            form_page(&signed, status, &entered, &[(field, message)])
        }
    }
}

/// The Google Play half of the form, through the API's parsing and the key service's checks.
async fn create_google_play(
    state: &ApiState,
    signed: &Signed,
    parts: &[crate::body::FormPart],
    entered: &Entered,
) -> Response {
    let mut new = match crate::keys_google_play::new_play_key_from_parts(parts) {
        Ok(new) => new,
        Err(e) => {
            return form_page(
                signed,
                e.status,
                entered,
                &[("service_account", sentence(&e.message))],
            );
        }
    };
    if new.name.as_deref().is_some_and(|v| v.trim().is_empty()) {
        new.name = None;
    }
    new.package_names.retain(|p| !p.trim().is_empty());
    match state.keys.upload_google_play(&signed.team, new).await {
        Ok(record) => Redirect::to(&format!("/keys/{}", record.id.0)).into_response(),
        Err(KeyError::Store(_)) => page::unavailable(),
        Err(e) => {
            let (field, message) = (field_of(&e), sentence(&e.to_string()));
            let status = crate::error::ApiError::from(e).status;
            form_page(signed, status, entered, &[(field, message)])
        }
    }
}

fn status_message(key: &ApiKeyRecord) -> String {
    match key.status {
        KeyStatus::Validating => match key.account {
            AccountRef::GooglePlay { .. } => {
                "Checking the service account with Google Play…".to_owned()
            }
            AccountRef::AppStoreConnect { .. } => {
                "Checking the key with App Store Connect…".to_owned()
            }
        },
        KeyStatus::Valid => match key.apps_count {
            Some(n) => format!("The key works; it sees {n} app(s)."),
            None => "The key works.".to_owned(),
        },
        _ => key.status_message.clone().unwrap_or_default(),
    }
}

pub async fn show(
    State(state): State<ApiState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Response {
    let key = match state.keys.get(&signed.team, &KeyRecordId(id)).await {
        Ok(key) => key,
        Err(KeyError::NotFound) => return page::not_found(),
        Err(_) => return page::unavailable(),
    };
    let status_url = format!("/keys/{}/status", key.id.0);
    let body = html! {
        div.card {
            p { "Status: "
                span id="key-status" class={"status status-" (key.status.as_str())}
                    data-status=(key.status.as_str()) data-status-url=(status_url) role="status" aria-live="polite" {
                    (status_label(key.status))
                }
            }
            p id="status-message" { (status_message(&key)) }
            @let push = push_words(&key);
            p { "Push: " span id="push-status" class=(push.class) { (push.label) } }
            @if !push.sentence.is_empty() {
                p id="push-message" { (push.sentence) }
            }
            table {
                tbody {
                    tr { th { "Platform" } td { (platform_label(&key.account)) } }
                    tr { th { "Key ID" } td { code { (key_id_of(&key)) } } }
                    @if let Some(issuer) = issuer_of(&key.account) {
                        tr { th { "Issuer ID" } td { code { (issuer) } } }
                    }
                    tr { th { "Public key fingerprint" } td { code { (key.public_key_fingerprint) } } }
                    tr { th { "Added" } td { (key.created_at.format("%Y-%m-%d %H:%M UTC")) } }
                    tr { th { "Last checked" } td { @if let Some(at) = key.last_swept_at { (at.format("%Y-%m-%d %H:%M UTC")) } @else { "not yet" } } }
                    @if let Some(push) = &key.push {
                        tr { th { "Push checked" } td { (push.checked_at.format("%Y-%m-%d %H:%M UTC")) } }
                    }
                }
            }
        }
        p { a href="/keys" { "← All API keys" } }
    };
    page::signed_page(
        &key.name,
        Nav::Keys,
        &signed.team.name,
        &signed.session.csrf_token,
        body,
    )
}

pub async fn status(
    State(state): State<ApiState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Response {
    match state.keys.get(&signed.team, &KeyRecordId(id)).await {
        Ok(key) => Json(json!({
            "status": key.status.as_str(),
            "label": status_label(key.status),
            "message": status_message(&key),
        }))
        .into_response(),
        Err(KeyError::NotFound) => page::not_found(),
        Err(_) => page::unavailable(),
    }
}
