//! What an event looks like at each kind of destination: a CloudEvents 1.0 JSON event for webhooks,
//! and messages for people in Slack (Block Kit), Discord (embed) and Microsoft Teams (Adaptive
//! Card). Each event is first put into words once ([`Message`]); the chat formats only lay those
//! words out and escape them for their markup. Pure: the same event always renders the same.

use chrono::SecondsFormat;
use serde_json::{Map, Value, json};

use super::diff::{AppRef, BuildRef};
use super::event_data::{
    AccountActionRequired, AppVersionStateChanged, BuildStateChanged, EventData, FeedbackKind,
    KeyPushDegraded, KeyRef, KeyStatusChanged, PhasedReleaseStateChanged, TestMessage,
    TestflightFeedbackReceived,
};
use super::wording::{Outcome, duration_words, platform_words, state_outcome, state_words};
use crate::model::{EventRecord, KeyStatus, KeyStatusCode};

const APP_STORE_CONNECT: &str = "https://appstoreconnect.apple.com/";
const API_KEYS_PAGE: &str = "https://appstoreconnect.apple.com/access/integrations/api";

/// Longest title, description and fact value kept before escaping; chat services reject longer
/// fields (Slack header 150, Discord title 256 and field 1024, even after escaping doubles them).
const TITLE_LIMIT: usize = 120;
const DESCRIPTION_LIMIT: usize = 500;
const FACT_LIMIT: usize = 200;

/// Discord embed colours.
const DISCORD_GREEN: u32 = 0x2E_B6_7D;
const DISCORD_RED: u32 = 0xE0_1E_5A;
const DISCORD_AMBER: u32 = 0xEC_B2_2E;

/// An event in words, before any format's markup. Texts are plain (unescaped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub title: String,
    pub description: String,
    /// Label and value pairs, in reading order.
    pub facts: Vec<(String, String)>,
    pub link_label: String,
    pub link_url: String,
    pub outcome: Outcome,
}

/// The structured-mode CloudEvents 1.0 JSON event for webhooks.
pub fn cloud_event(event: &EventRecord) -> Value {
    let source = match &event.key_record_id {
        Some(key) => format!("/shipwatch/keys/{key}"),
        None => "/shipwatch".to_owned(),
    };
    let mut object = Map::new();
    object.insert("specversion".into(), json!("1.0"));
    object.insert("id".into(), json!(event.id));
    object.insert("source".into(), json!(source));
    object.insert("type".into(), json!(event.event_type));
    if let Some(app_id) = &event.app_id {
        object.insert("subject".into(), json!(app_id));
    }
    object.insert(
        "time".into(),
        json!(event.time.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
    );
    object.insert("datacontenttype".into(), json!("application/json"));
    object.insert("data".into(), event.data.to_json());
    Value::Object(object)
}

/// A Slack incoming-webhook message: `text` (notification and fallback) and Block Kit `blocks`.
pub fn slack(event: &EventRecord) -> Value {
    let message = message(event);
    let mut blocks = vec![
        json!({
            "type": "header",
            // plain_text is not parsed as mrkdwn, so it needs no escaping
            "text": {"type": "plain_text", "text": format!("{} {}", outcome_emoji(message.outcome), message.title), "emoji": true},
        }),
        json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": slack_escape(&message.description)},
        }),
    ];
    if !message.facts.is_empty() {
        // Slack allows at most 10 fields per section.
        let fields: Vec<Value> = message
            .facts
            .iter()
            .take(10)
            .map(|(label, value)| {
                json!({"type": "mrkdwn", "text": format!("*{}*\n{}", slack_escape(label), slack_escape(value))})
            })
            .collect();
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    blocks.push(json!({
        "type": "actions",
        "elements": [{
            "type": "button",
            "text": {"type": "plain_text", "text": message.link_label},
            "url": message.link_url,
        }],
    }));
    let fallback_time = event.time.to_rfc3339_opts(SecondsFormat::Secs, true);
    blocks.push(json!({
        "type": "context",
        "elements": [{
            "type": "mrkdwn",
            // Slack shows the time in each reader's own time zone.
            "text": format!("shipwatch · <!date^{}^{{date_short_pretty}} at {{time}}|{fallback_time}>", event.time.timestamp()),
        }],
    }));
    json!({
        "text": slack_escape(&format!("{} — {}", message.title, message.description)),
        "blocks": blocks,
    })
}

/// A Discord webhook message with one embed. Mentions are disabled so app names cannot ping.
pub fn discord(event: &EventRecord) -> Value {
    let message = message(event);
    let color = match message.outcome {
        Outcome::Good => DISCORD_GREEN,
        Outcome::Bad => DISCORD_RED,
        Outcome::Neutral => DISCORD_AMBER,
    };
    let fields: Vec<Value> = message
        .facts
        .iter()
        .take(25)
        .map(|(label, value)| {
            json!({"name": discord_escape(label), "value": discord_escape(value), "inline": true})
        })
        .collect();
    json!({
        "embeds": [{
            "title": discord_escape(&message.title),
            "description": discord_escape(&message.description),
            "url": message.link_url,
            "color": color,
            "fields": fields,
            "timestamp": event.time.to_rfc3339_opts(SecondsFormat::Secs, true),
            "footer": {"text": "shipwatch"},
        }],
        "allowed_mentions": {"parse": []},
    })
}

/// A Microsoft Teams message with an Adaptive Card 1.4 attachment.
pub fn teams(event: &EventRecord) -> Value {
    let message = message(event);
    let title_color = match message.outcome {
        Outcome::Good => "Good",
        Outcome::Bad => "Attention",
        Outcome::Neutral => "Warning",
    };
    let mut body = vec![
        json!({"type": "TextBlock", "text": message.title, "size": "Medium", "weight": "Bolder", "color": title_color, "wrap": true}),
        json!({"type": "TextBlock", "text": message.description, "wrap": true}),
    ];
    if !message.facts.is_empty() {
        let facts: Vec<Value> = message
            .facts
            .iter()
            .map(|(label, value)| json!({"title": label, "value": value}))
            .collect();
        body.push(json!({"type": "FactSet", "facts": facts}));
    }
    body.push(json!({
        "type": "TextBlock",
        "text": format!("shipwatch · {}", event.time.to_rfc3339_opts(SecondsFormat::Secs, true)),
        "size": "Small",
        "isSubtle": true,
        "wrap": true,
    }));
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
                "actions": [{"type": "Action.OpenUrl", "title": message.link_label, "url": message.link_url}],
            },
        }],
    })
}

/// Escapes text for Slack mrkdwn: only `&`, `<` and `>` are control characters there.
pub fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Escapes Discord markdown (emphasis, code, spoilers, quotes, headings, masked links, mentions)
/// with backslashes, so user-controlled names show literally.
pub fn discord_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        if matches!(
            character,
            '\\' | '*' | '_' | '~' | '`' | '|' | '>' | '<' | '#' | '[' | ']' | '@'
        ) {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}

fn outcome_emoji(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Good => "✅",
        Outcome::Bad => "❌",
        Outcome::Neutral => "🔔",
    }
}

/// Puts an event into words. Every contract event type has its own wording; data of an unknown
/// type or shape ([`EventData::Other`]) falls back to the event's stored summary, so a newer
/// event still reads sensibly.
pub fn message(event: &EventRecord) -> Message {
    let mut message = match &event.data {
        EventData::AppVersionStateChanged(data) => app_version_message(data),
        EventData::BuildProcessingStateChanged(data) => build_processing_message(data),
        EventData::BuildBetaStateChanged(data) => build_beta_message(data),
        EventData::PhasedReleaseStateChanged(data) => phased_release_message(data),
        EventData::AccountActionRequired(data) => account_action_message(data),
        EventData::KeyStatusChanged(data) => key_status_message(data),
        EventData::Test(data) => test_message(data),
        EventData::PlayReleaseStateChanged(data) => play_release_message(data),
        EventData::KeyPushDegraded(data) => push_degraded_message(data),
        EventData::TestflightFeedbackReceived(data) => feedback_message(data),
        EventData::Other(_) => summary_message(event),
    };
    message.title = truncate(&message.title, TITLE_LIMIT);
    message.description = truncate(&message.description, DESCRIPTION_LIMIT);
    for (_, value) in &mut message.facts {
        *value = truncate(value, FACT_LIMIT);
    }
    message
}

fn summary_message(event: &EventRecord) -> Message {
    Message {
        title: if event.summary.is_empty() {
            event.event_type.clone()
        } else {
            event.summary.clone()
        },
        description: event.summary.clone(),
        facts: vec![("Event".to_owned(), event.event_type.clone())],
        link_label: "Open App Store Connect".to_owned(),
        link_url: APP_STORE_CONNECT.to_owned(),
        outcome: Outcome::Neutral,
    }
}

fn app_link(app: &AppRef) -> String {
    let id = &app.id;
    if !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()) {
        format!("https://appstoreconnect.apple.com/apps/{id}")
    } else {
        APP_STORE_CONNECT.to_owned()
    }
}

fn app_facts(app: &AppRef) -> Vec<(String, String)> {
    let mut facts = vec![("App".to_owned(), app.label().to_owned())];
    // Builds of an app the key cannot list come without a bundle id.
    if !app.bundle_id.is_empty() {
        facts.push(("Bundle ID".to_owned(), app.bundle_id.clone()));
    }
    facts
}

/// "Waiting for Review → In Review", or just "In Review" when there was no earlier state.
fn transition_words(old: Option<&str>, new: &str) -> String {
    match old {
        Some(old) => format!("{} → {}", state_words(old), state_words(new)),
        None => state_words(new),
    }
}

fn app_version_message(data: &AppVersionStateChanged) -> Message {
    let app = data.app.label();
    let version = &data.version.version_string;
    let platform = platform_words(&data.version.platform);
    let old = data.old_state.as_deref();
    let new = data.new_state.as_str();
    let spent = data
        .seconds_in_previous_state()
        .and_then(|seconds| u64::try_from(seconds).ok())
        .map(duration_words);
    let description = match (old, &spent) {
        (Some(old), Some(spent)) => format!(
            "Version {version} for {platform} moved from {} to {} after {spent}.",
            state_words(old),
            state_words(new)
        ),
        (Some(old), None) => format!(
            "Version {version} for {platform} moved from {} to {}.",
            state_words(old),
            state_words(new)
        ),
        (None, _) => format!(
            "A new version {version} for {platform} appeared in App Store Connect, in {}.",
            state_words(new)
        ),
    };
    let mut facts = app_facts(&data.app);
    facts.push(("Version".to_owned(), version.clone()));
    facts.push(("Platform".to_owned(), platform.clone()));
    facts.push(("State".to_owned(), transition_words(old, new)));
    if let (Some(_), Some(spent)) = (old, spent) {
        facts.push(("Time in previous state".to_owned(), spent));
    }
    Message {
        title: format!("{app} {version} ({platform}): {}", state_words(new)),
        description,
        facts,
        link_label: "Open in App Store Connect".to_owned(),
        link_url: app_link(&data.app),
        outcome: state_outcome(new),
    }
}

/// "2.1 (42)" from a build's marketing and build numbers.
fn build_number(build: &BuildRef) -> String {
    match &build.short_version {
        Some(short) => format!("{short} ({})", build.version),
        None => build.version.clone(),
    }
}

fn build_facts(data: &BuildStateChanged) -> Vec<(String, String)> {
    let mut facts = app_facts(&data.app);
    facts.push(("Build".to_owned(), build_number(&data.build)));
    if let Some(platform) = &data.build.platform {
        facts.push(("Platform".to_owned(), platform_words(platform)));
    }
    facts.push((
        "State".to_owned(),
        transition_words(data.old_state.as_deref(), &data.new_state),
    ));
    facts
}

fn build_processing_message(data: &BuildStateChanged) -> Message {
    let app = data.app.label();
    let build = build_number(&data.build);
    let new = data.new_state.as_str();
    let description = match (new, data.old_state.as_deref()) {
        ("VALID", _) => format!("Build {build} finished processing and is ready to use."),
        ("FAILED", _) => format!("Build {build} failed processing. Upload a new build."),
        ("INVALID", _) => format!(
            "Build {build} is invalid. Apple usually emails the reason; fix it and upload a new build."
        ),
        ("PROCESSING", None) => format!("Build {build} was uploaded and is processing."),
        (_, Some(old)) => format!(
            "Build {build} moved from {} to {}.",
            state_words(old),
            state_words(new)
        ),
        (_, None) => format!("Build {build} appeared, in {}.", state_words(new)),
    };
    Message {
        title: format!("{app} build {build}: {}", state_words(new)),
        description,
        facts: build_facts(data),
        link_label: "Open in App Store Connect".to_owned(),
        link_url: app_link(&data.app),
        outcome: state_outcome(new),
    }
}

fn build_beta_message(data: &BuildStateChanged) -> Message {
    let app = data.app.label();
    let build = build_number(&data.build);
    let new = data.new_state.as_str();
    let description = match data.old_state.as_deref() {
        Some(old) => format!(
            "TestFlight: build {build} moved from {} to {}.",
            state_words(old),
            state_words(new)
        ),
        None => format!("TestFlight: build {build} is {}.", state_words(new)),
    };
    Message {
        title: format!("{app} build {build} on TestFlight: {}", state_words(new)),
        description,
        facts: build_facts(data),
        link_label: "Open in App Store Connect".to_owned(),
        link_url: app_link(&data.app),
        outcome: state_outcome(new),
    }
}

fn phased_release_message(data: &PhasedReleaseStateChanged) -> Message {
    let app = data.app.label();
    let version = &data.version.version_string;
    let old = data.old_state.as_deref();
    let new = data.new_state.as_str();
    let happened = match (old, new) {
        (Some("PAUSED"), "ACTIVE") => "resumed".to_owned(),
        (_, "ACTIVE") => "started".to_owned(),
        (_, "PAUSED") => "paused".to_owned(),
        (_, "COMPLETE") => "completed".to_owned(),
        (_, other) => format!("is now {}", state_words(other)),
    };
    let on_day = match (data.current_day_number, new) {
        (Some(day), "ACTIVE" | "PAUSED") => format!(" on day {day} of 7"),
        _ => String::new(),
    };
    let description = if new == "COMPLETE" {
        format!("Version {version} is now available to all users on automatic updates.")
    } else {
        format!("The phased release of version {version} {happened}{on_day}.")
    };
    let mut facts = app_facts(&data.app);
    facts.push(("Version".to_owned(), version.clone()));
    facts.push((
        "Platform".to_owned(),
        platform_words(&data.version.platform),
    ));
    facts.push(("State".to_owned(), transition_words(old, new)));
    if let Some(day) = data.current_day_number {
        facts.push(("Day".to_owned(), format!("{day} of 7")));
    }
    let outcome = match new {
        "COMPLETE" | "ACTIVE" => Outcome::Good,
        _ => Outcome::Neutral,
    };
    Message {
        title: format!("{app} {version}: phased release {happened}"),
        description,
        facts,
        link_label: "Open in App Store Connect".to_owned(),
        link_url: app_link(&data.app),
        outcome,
    }
}

/// A staged-rollout fraction in words: `0.1` is "10 % of users".
fn rollout_words(fraction: Option<&serde_json::Number>) -> Option<String> {
    let percent = fraction?.as_f64()? * 100.0;
    let rounded = (percent * 100.0).round() / 100.0;
    Some(format!("{rounded} % of users"))
}

/// Google's release `status` in words.
fn play_status_words(status: &str) -> String {
    match status {
        "draft" => "draft".to_owned(),
        "inProgress" => "rolling out".to_owned(),
        "halted" => "halted".to_owned(),
        "completed" => "released to everyone".to_owned(),
        other => state_words(other),
    }
}

fn play_release_label(data: &crate::domain::event_data::PlayReleaseStateChanged) -> String {
    match (&data.release.name, data.release.version_codes.as_slice()) {
        (Some(name), _) if !name.is_empty() => name.clone(),
        (_, []) => "release".to_owned(),
        (_, codes) => format!("version code {}", codes.join(", ")),
    }
}

/// What happened to the release, in words.
fn play_release_happened(data: &crate::domain::event_data::PlayReleaseStateChanged) -> String {
    let rollout = rollout_words(data.new_user_fraction.as_ref());
    match (data.old_state.as_deref(), data.new_state.as_str()) {
        (None, "inProgress") => match rollout {
            Some(r) => format!("started rolling out to {r}"),
            None => "started rolling out".to_owned(),
        },
        (None, new) => format!("is new ({})", play_status_words(new)),
        (Some("inProgress"), "inProgress") => match rollout {
            Some(r) => format!("now rolling out to {r}"),
            None => "rollout changed".to_owned(),
        },
        (Some("halted"), "inProgress") => "resumed its rollout".to_owned(),
        (_, "halted") => "rollout halted".to_owned(),
        (_, "completed") => "released to everyone".to_owned(),
        (_, new) => format!("is now {}", play_status_words(new)),
    }
}

/// The one-line summary stored with a Play release event.
pub fn play_release_summary(data: &crate::domain::event_data::PlayReleaseStateChanged) -> String {
    format!(
        "{} {} on {}: {}",
        data.app.label(),
        play_release_label(data),
        data.track,
        play_release_happened(data)
    )
}

fn play_release_message(data: &crate::domain::event_data::PlayReleaseStateChanged) -> Message {
    let mut facts = vec![
        ("App".to_owned(), data.app.label().to_owned()),
        ("Package".to_owned(), data.app.id.clone()),
        ("Track".to_owned(), data.track.clone()),
        ("Release".to_owned(), play_release_label(data)),
    ];
    if !data.release.version_codes.is_empty() {
        facts.push((
            "Version codes".to_owned(),
            data.release.version_codes.join(", "),
        ));
    }
    let old = data.old_state.as_deref().map(play_status_words);
    facts.push((
        "Status".to_owned(),
        match old {
            Some(old) if old != play_status_words(&data.new_state) => {
                format!("{old} → {}", play_status_words(&data.new_state))
            }
            _ => play_status_words(&data.new_state),
        },
    ));
    if let Some(rollout) = rollout_words(data.new_user_fraction.as_ref()) {
        let before = rollout_words(data.old_user_fraction.as_ref());
        facts.push((
            "Rollout".to_owned(),
            match before {
                Some(before) if before != rollout => format!("{before} → {rollout}"),
                _ => rollout,
            },
        ));
    }
    let outcome = match data.new_state.as_str() {
        "completed" | "inProgress" => Outcome::Good,
        "halted" => Outcome::Bad,
        _ => Outcome::Neutral,
    };
    Message {
        title: format!(
            "{} {}: {}",
            data.app.label(),
            play_release_label(data),
            play_release_happened(data)
        ),
        description: format!(
            "{} {} on the {} track: {}.",
            data.app.label(),
            play_release_label(data),
            data.track,
            play_release_happened(data)
        ),
        facts,
        // Play Console's app pages are addressed by developer and app ids shipwatch does not
        // know; the console's app list is one click away from the app.
        link_label: "Open in Play Console".to_owned(),
        link_url: "https://play.google.com/console/developers".to_owned(),
        outcome,
    }
}

/// What a key status code means and what to do about it.
fn key_code_explanation(code: KeyStatusCode) -> &'static str {
    match code {
        KeyStatusCode::NotAuthorized => {
            "App Store Connect no longer accepts this key: it was revoked or its Issuer ID does not match. Upload a new key."
        }
        KeyStatusCode::InsufficientRole => {
            "The key's role can no longer read apps and builds. Give the key a role with access to apps (for example App Manager), or upload one that has it."
        }
        KeyStatusCode::AgreementsRequired => {
            "App Store Connect needs the Account Holder to accept the latest agreements before the API answers again."
        }
        KeyStatusCode::AscUnavailable => {
            "App Store Connect could not be reached; shipwatch keeps trying."
        }
        KeyStatusCode::InsufficientPermission => {
            "The service account can no longer read the app in Google Play Console. Invite it again under Users and permissions with at least \"View app information\"."
        }
        KeyStatusCode::PackageNotFound => {
            "Google Play has no app with one of the key's package names, or the service account cannot see it. Check the package names, or delete the key and upload it with the right ones."
        }
        KeyStatusCode::StoreUnavailable => {
            "Google Play could not be reached; shipwatch keeps trying."
        }
    }
}

fn key_facts(key: &KeyRef) -> Vec<(String, String)> {
    match (&key.key_id, &key.client_email) {
        (Some(key_id), _) => vec![("Key ID".to_owned(), key_id.as_str().to_owned())],
        (None, Some(email)) => vec![("Service account".to_owned(), email.clone())],
        (None, None) => Vec::new(),
    }
}

fn key_label(key: &KeyRef) -> String {
    match (&key.key_id, &key.client_email) {
        (Some(key_id), _) => format!("API key {}", key_id.as_str()),
        (None, Some(email)) => format!("service account {email}"),
        (None, None) => format!("key {}", key.id),
    }
}

fn account_action_message(data: &AccountActionRequired) -> Message {
    let mut facts = key_facts(&data.key);
    facts.push(("Reason".to_owned(), state_words(&data.code)));
    Message {
        title: format!("App Store Connect needs action ({})", key_label(&data.key)),
        description: data.message.clone(),
        facts,
        link_label: "Open App Store Connect".to_owned(),
        link_url: APP_STORE_CONNECT.to_owned(),
        outcome: Outcome::Bad,
    }
}

fn key_status_message(data: &KeyStatusChanged) -> Message {
    let new = data.new_status;
    let description = match (new, data.code) {
        (KeyStatus::Valid, _) => {
            "The key works again: shipwatch resumes watching its apps.".to_owned()
        }
        (_, Some(code)) => key_code_explanation(code).to_owned(),
        (_, None) => format!("The key is now {}.", state_words(new.as_str())),
    };
    let mut facts = key_facts(&data.key);
    facts.push((
        "Status".to_owned(),
        transition_words(Some(data.old_status.as_str()), new.as_str()),
    ));
    if let Some(code) = data.code {
        facts.push(("Reason".to_owned(), state_words(code.as_str())));
    }
    let outcome = match new {
        KeyStatus::Valid => Outcome::Good,
        KeyStatus::Invalid => Outcome::Bad,
        KeyStatus::Validating | KeyStatus::ActionRequired => Outcome::Neutral,
    };
    Message {
        title: format!(
            "{} is now {}",
            key_label(&data.key),
            state_words(new.as_str())
        ),
        description,
        facts,
        link_label: "Open API keys".to_owned(),
        link_url: API_KEYS_PAGE.to_owned(),
        outcome,
    }
}

fn push_degraded_message(data: &KeyPushDegraded) -> Message {
    let mut facts = key_facts(&data.key);
    facts.push((
        "Push".to_owned(),
        transition_words(Some(data.old_push.as_str()), data.new_push.as_str()),
    ));
    Message {
        title: format!(
            "Push from App Store Connect degraded for {}",
            key_label(&data.key)
        ),
        // The message already says what fails and that polling goes on.
        description: data.message.clone(),
        facts,
        link_label: "Open API keys".to_owned(),
        link_url: API_KEYS_PAGE.to_owned(),
        outcome: Outcome::Bad,
    }
}

fn feedback_message(data: &TestflightFeedbackReceived) -> Message {
    let app = data.app.label();
    let build = data.build.as_ref().map(build_number);
    let (what, outcome) = match data.kind {
        FeedbackKind::Crash => ("crash report", Outcome::Bad),
        FeedbackKind::Screenshot => ("screenshot feedback", Outcome::Neutral),
    };
    let title = match &build {
        Some(build) => format!("{app} build {build}: TestFlight {what}"),
        None => format!("{app}: TestFlight {what}"),
    };
    let description = match data.comment.as_deref().map(str::trim) {
        Some(comment) if !comment.is_empty() => format!("A tester wrote: \"{comment}\""),
        _ => format!("A tester sent a {what} without a comment."),
    };
    let mut facts = app_facts(&data.app);
    if let Some(build) = build {
        facts.push(("Build".to_owned(), build));
    }
    facts.push((
        "Kind".to_owned(),
        match data.kind {
            FeedbackKind::Crash => "Crash".to_owned(),
            FeedbackKind::Screenshot => "Screenshot".to_owned(),
        },
    ));
    if let Some(device) = &data.device_model {
        facts.push(("Device".to_owned(), device.clone()));
    }
    if let Some(os) = &data.os_version {
        facts.push(("OS version".to_owned(), os.clone()));
    }
    if let Some(sent) = &data.created_at {
        facts.push(("Sent".to_owned(), sent.clone()));
    }
    Message {
        title,
        description,
        facts,
        link_label: "Open in App Store Connect".to_owned(),
        link_url: app_link(&data.app),
        outcome,
    }
}

fn test_message(data: &TestMessage) -> Message {
    Message {
        title: "Test notification from shipwatch".to_owned(),
        description: data.message.clone(),
        facts: Vec::new(),
        link_label: "Open App Store Connect".to_owned(),
        link_url: APP_STORE_CONNECT.to_owned(),
        outcome: Outcome::Good,
    }
}

fn truncate(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let mut kept: String = text.chars().take(limit.saturating_sub(1)).collect();
    kept.push('…');
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EventId, EventRecord, TeamId};
    use chrono::TimeZone as _;

    /// An event of `event_type` whose data is `data` as stored; the data must fit the type.
    fn event_with(event_type: &str, data: Value) -> EventRecord {
        let data = EventData::from_stored(event_type, data);
        assert!(!matches!(data, EventData::Other(_)), "{data:?}");
        EventRecord {
            id: EventId("evt-1".into()),
            team_id: TeamId("team-1".into()),
            key_record_id: None,
            app_id: Some("123".into()),
            event_type: event_type.into(),
            time: chrono::Utc
                .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
                .single()
                .unwrap_or_default(),
            data,
            summary: "summary".into(),
        }
    }

    fn hostile_app_event() -> EventRecord {
        event_with(
            "shipwatch.app_version.state_changed",
            json!({
                "app": {"id": "123", "name": "<!channel> *Bold* & [x](https://evil) @everyone", "bundle_id": "a.b"},
                "version": {"id": "v", "version_string": "1.0", "platform": "IOS"},
                "old_state": "IN_REVIEW",
                "new_state": "REJECTED",
            }),
        )
    }

    #[test]
    fn slack_mrkdwn_escapes_control_characters_in_app_names() {
        let rendered = slack(&hostile_app_event());
        // Every text Slack parses as mrkdwn: the fallback and all mrkdwn objects (the header is
        // plain_text, which Slack shows literally).
        let mut mrkdwn_texts = vec![rendered["text"].as_str().unwrap_or_default().to_owned()];
        collect_mrkdwn(&rendered["blocks"], &mut mrkdwn_texts);
        let app_texts: Vec<&String> = mrkdwn_texts
            .iter()
            .filter(|text| text.contains("channel"))
            .collect();
        assert!(app_texts.len() >= 2, "{mrkdwn_texts:?}");
        for text in app_texts {
            assert!(!text.contains("<!channel>"), "{text}");
            assert!(text.contains("&lt;!channel&gt; *Bold* &amp; [x]"), "{text}");
        }
        assert_eq!(rendered["blocks"][0]["text"]["type"], json!("plain_text"));
    }

    fn collect_mrkdwn(node: &Value, out: &mut Vec<String>) {
        match node {
            Value::Object(map) => {
                if map.get("type") == Some(&json!("mrkdwn")) {
                    out.push(map["text"].as_str().unwrap_or_default().to_owned());
                }
                map.values().for_each(|child| collect_mrkdwn(child, out));
            }
            Value::Array(items) => items.iter().for_each(|child| collect_mrkdwn(child, out)),
            _ => {}
        }
    }

    #[test]
    fn discord_markdown_and_mentions_are_neutralised() {
        let rendered = discord(&hostile_app_event());
        let title = rendered["embeds"][0]["title"].as_str().unwrap_or_default();
        assert!(
            title.contains(r"\<!channel\> \*Bold\* & \[x\](https://evil)"),
            "{title}"
        );
        assert!(title.contains(r"\@everyone"));
        assert_eq!(rendered["allowed_mentions"], json!({"parse": []}));
        assert_eq!(rendered["embeds"][0]["color"], json!(DISCORD_RED));
    }

    #[test]
    fn long_names_are_cut_to_what_chat_services_accept() {
        let long_name = "n".repeat(1000);
        let event = event_with(
            "shipwatch.app_version.state_changed",
            json!({
                "app": {"id": "123", "name": long_name, "bundle_id": "a.b"},
                "version": {"id": "v", "version_string": "1.0", "platform": "IOS"},
                "old_state": null,
                "new_state": "IN_REVIEW",
                "time_in_previous_state_seconds": null,
            }),
        );
        let header = slack(&event)["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap_or_default()
            .chars()
            .count();
        assert!(header <= 150, "{header}");
    }

    #[test]
    fn data_of_an_unknown_type_or_shape_reads_as_the_summary() {
        for (event_type, data) in [
            ("shipwatch.future.thing", json!({"new_state": "X"})),
            (
                "shipwatch.app_version.state_changed",
                json!({"new_state": "X"}),
            ),
        ] {
            let event = EventRecord {
                data: EventData::from_stored(event_type, data),
                ..event_with("shipwatch.test", json!({"message": "hi"}))
            };
            let event = EventRecord {
                event_type: event_type.into(),
                ..event
            };
            let message = message(&event);
            assert_eq!(message.title, "summary");
            assert_eq!(message.description, "summary");
            assert_eq!(
                message.facts,
                vec![("Event".to_owned(), event_type.to_owned())]
            );
            assert_eq!(message.outcome, Outcome::Neutral);
            assert_eq!(cloud_event(&event)["data"], json!({"new_state": "X"}));
        }
    }

    #[test]
    fn cloud_event_omits_subject_without_an_app() {
        let mut event = event_with("shipwatch.test", json!({"message": "hi"}));
        event.app_id = None;
        let rendered = cloud_event(&event);
        assert!(rendered.get("subject").is_none());
        assert_eq!(rendered["source"], json!("/shipwatch"));
        assert_eq!(rendered["time"], json!("2026-01-02T03:04:05Z"));
    }
}
