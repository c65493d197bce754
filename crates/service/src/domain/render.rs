//! What an event looks like at each kind of destination: a CloudEvents 1.0 JSON event for webhooks,
//! and messages for people in Slack (Block Kit), Discord (embed) and Microsoft Teams (Adaptive
//! Card). Each event is first put into words once ([`Message`]); the chat formats only lay those
//! words out and escape them for their markup. Pure: the same event always renders the same.

use chrono::SecondsFormat;
use serde_json::{Map, Value, json};

use super::wording::{Outcome, duration_words, platform_words, state_outcome, state_words};
use crate::model::EventRecord;

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
    object.insert("data".into(), event.data.clone());
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

/// Puts an event into words. Every contract event type has its own wording; unknown types fall
/// back to the event's stored summary, so a newer event still reads sensibly.
pub fn message(event: &EventRecord) -> Message {
    let data = &event.data;
    let mut message = match event.event_type.as_str() {
        "shipwatch.app_version.state_changed" => app_version_message(data),
        "shipwatch.build.processing_state_changed" => build_processing_message(data),
        "shipwatch.build.beta_state_changed" => build_beta_message(data),
        "shipwatch.phased_release.state_changed" => phased_release_message(data),
        "shipwatch.account.action_required" => account_action_message(data),
        "shipwatch.key.status_changed" => key_status_message(data),
        "shipwatch.test" => test_message(data),
        _ => Message {
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
        },
    };
    message.title = truncate(&message.title, TITLE_LIMIT);
    message.description = truncate(&message.description, DESCRIPTION_LIMIT);
    for (_, value) in &mut message.facts {
        *value = truncate(value, FACT_LIMIT);
    }
    message
}

fn text<'a>(data: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut node = data;
    for key in path {
        node = node.get(key)?;
    }
    node.as_str().filter(|value| !value.is_empty())
}

/// The app's name, or its id when Apple gave no name.
fn app_name(data: &Value) -> String {
    text(data, &["app", "name"])
        .or_else(|| text(data, &["app", "id"]))
        .unwrap_or("An app")
        .to_owned()
}

fn app_link(data: &Value) -> String {
    match text(data, &["app", "id"]) {
        Some(id) if id.chars().all(|c| c.is_ascii_alphanumeric()) => {
            format!("https://appstoreconnect.apple.com/apps/{id}")
        }
        _ => APP_STORE_CONNECT.to_owned(),
    }
}

fn app_facts(data: &Value) -> Vec<(String, String)> {
    let mut facts = vec![("App".to_owned(), app_name(data))];
    if let Some(bundle_id) = text(data, &["app", "bundle_id"]) {
        facts.push(("Bundle ID".to_owned(), bundle_id.to_owned()));
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

fn new_state(data: &Value, field: &str) -> String {
    text(data, &[field]).unwrap_or("UNKNOWN").to_owned()
}

fn app_version_message(data: &Value) -> Message {
    let app = app_name(data);
    let version = text(data, &["version", "version_string"]).unwrap_or("(no version number)");
    let platform = text(data, &["version", "platform"]).map(platform_words);
    let old = text(data, &["old_state"]);
    let new = new_state(data, "new_state");
    let spent = data
        .get("time_in_previous_state_seconds")
        .and_then(Value::as_u64)
        .map(duration_words);
    let on_platform = platform
        .as_deref()
        .map(|platform| format!(" for {platform}"))
        .unwrap_or_default();
    let description = match (old, &spent) {
        (Some(old), Some(spent)) => format!(
            "Version {version}{on_platform} moved from {} to {} after {spent}.",
            state_words(old),
            state_words(&new)
        ),
        (Some(old), None) => format!(
            "Version {version}{on_platform} moved from {} to {}.",
            state_words(old),
            state_words(&new)
        ),
        (None, _) => format!(
            "A new version {version}{on_platform} appeared in App Store Connect, in {}.",
            state_words(&new)
        ),
    };
    let mut facts = app_facts(data);
    facts.push(("Version".to_owned(), version.to_owned()));
    if let Some(platform) = &platform {
        facts.push(("Platform".to_owned(), platform.clone()));
    }
    facts.push(("State".to_owned(), transition_words(old, &new)));
    if let (Some(_), Some(spent)) = (old, spent) {
        facts.push(("Time in previous state".to_owned(), spent));
    }
    Message {
        title: format!(
            "{app} {version}{}: {}",
            platform.map(|p| format!(" ({p})")).unwrap_or_default(),
            state_words(&new)
        ),
        description,
        facts,
        link_label: "Open in App Store Connect".to_owned(),
        link_url: app_link(data),
        outcome: state_outcome(&new),
    }
}

/// "2.1 (42)" from a build's marketing and build numbers.
fn build_number(data: &Value) -> String {
    let version = text(data, &["build", "version"]).unwrap_or("?");
    match text(data, &["build", "short_version"]) {
        Some(short) => format!("{short} ({version})"),
        None => version.to_owned(),
    }
}

fn build_facts(data: &Value, old: Option<&str>, new: &str) -> Vec<(String, String)> {
    let mut facts = app_facts(data);
    facts.push(("Build".to_owned(), build_number(data)));
    if let Some(platform) = text(data, &["build", "platform"]) {
        facts.push(("Platform".to_owned(), platform_words(platform)));
    }
    facts.push(("State".to_owned(), transition_words(old, new)));
    facts
}

fn build_processing_message(data: &Value) -> Message {
    let app = app_name(data);
    let build = build_number(data);
    let old = text(data, &["old_state"]);
    let new = new_state(data, "new_state");
    let description = match (new.as_str(), old) {
        ("VALID", _) => format!("Build {build} finished processing and is ready to use."),
        ("FAILED", _) => format!("Build {build} failed processing. Upload a new build."),
        ("INVALID", _) => format!(
            "Build {build} is invalid. Apple usually emails the reason; fix it and upload a new build."
        ),
        ("PROCESSING", None) => format!("Build {build} was uploaded and is processing."),
        (_, Some(old)) => format!(
            "Build {build} moved from {} to {}.",
            state_words(old),
            state_words(&new)
        ),
        (_, None) => format!("Build {build} appeared, in {}.", state_words(&new)),
    };
    Message {
        title: format!("{app} build {build}: {}", state_words(&new)),
        description,
        facts: build_facts(data, old, &new),
        link_label: "Open in App Store Connect".to_owned(),
        link_url: app_link(data),
        outcome: state_outcome(&new),
    }
}

fn build_beta_message(data: &Value) -> Message {
    let app = app_name(data);
    let build = build_number(data);
    let old = text(data, &["old_state"]);
    let new = new_state(data, "new_state");
    let description = match old {
        Some(old) => format!(
            "TestFlight: build {build} moved from {} to {}.",
            state_words(old),
            state_words(&new)
        ),
        None => format!("TestFlight: build {build} is {}.", state_words(&new)),
    };
    Message {
        title: format!("{app} build {build} on TestFlight: {}", state_words(&new)),
        description,
        facts: build_facts(data, old, &new),
        link_label: "Open in App Store Connect".to_owned(),
        link_url: app_link(data),
        outcome: state_outcome(&new),
    }
}

fn phased_release_message(data: &Value) -> Message {
    let app = app_name(data);
    // `version` is the contract's version object; accept a bare string too.
    let version = text(data, &["version", "version_string"])
        .or_else(|| text(data, &["version"]))
        .unwrap_or("(no version number)");
    let platform = text(data, &["version", "platform"]).map(platform_words);
    let old = text(data, &["old_state"]);
    let new = new_state(data, "new_state");
    let day = data.get("current_day_number").and_then(Value::as_u64);
    let happened = match (old, new.as_str()) {
        (Some("PAUSED"), "ACTIVE") => "resumed".to_owned(),
        (_, "ACTIVE") => "started".to_owned(),
        (_, "PAUSED") => "paused".to_owned(),
        (_, "COMPLETE") => "completed".to_owned(),
        (_, other) => format!("is now {}", state_words(other)),
    };
    let on_day = match (day, new.as_str()) {
        (Some(day), "ACTIVE" | "PAUSED") => format!(" on day {day} of 7"),
        _ => String::new(),
    };
    let description = if new == "COMPLETE" {
        format!("Version {version} is now available to all users on automatic updates.")
    } else {
        format!("The phased release of version {version} {happened}{on_day}.")
    };
    let mut facts = app_facts(data);
    facts.push(("Version".to_owned(), version.to_owned()));
    if let Some(platform) = &platform {
        facts.push(("Platform".to_owned(), platform.clone()));
    }
    facts.push(("State".to_owned(), transition_words(old, &new)));
    if let Some(day) = day {
        facts.push(("Day".to_owned(), format!("{day} of 7")));
    }
    let outcome = match new.as_str() {
        "COMPLETE" | "ACTIVE" => Outcome::Good,
        _ => Outcome::Neutral,
    };
    Message {
        title: format!("{app} {version}: phased release {happened}"),
        description,
        facts,
        link_label: "Open in App Store Connect".to_owned(),
        link_url: app_link(data),
        outcome,
    }
}

/// What a key status code means and what to do about it.
fn key_code_explanation(code: &str) -> String {
    match code {
        "not_authorized" => "App Store Connect no longer accepts this key: it was revoked or its Issuer ID does not match. Upload a new key.".to_owned(),
        "insufficient_role" => "The key's role can no longer read apps and builds. Give the key a role with access to apps (for example App Manager), or upload one that has it.".to_owned(),
        "agreements_required" => "App Store Connect needs the Account Holder to accept the latest agreements before the API answers again.".to_owned(),
        "asc_unavailable" => "App Store Connect could not be reached; shipwatch keeps trying.".to_owned(),
        other => format!("App Store Connect reported: {}.", state_words(other)),
    }
}

fn key_facts(data: &Value) -> Vec<(String, String)> {
    let mut facts = Vec::new();
    if let Some(key_id) = text(data, &["key", "key_id"]) {
        facts.push(("Key ID".to_owned(), key_id.to_owned()));
    }
    facts
}

fn key_label(data: &Value) -> String {
    match text(data, &["key", "key_id"]) {
        Some(key_id) => format!("API key {key_id}"),
        None => "An API key".to_owned(),
    }
}

fn account_action_message(data: &Value) -> Message {
    let code = text(data, &["code"]);
    let description = match (text(data, &["message"]), code) {
        (Some(message), _) => message.to_owned(),
        (None, Some(code)) => key_code_explanation(code),
        (None, None) => "App Store Connect asks for action on the account.".to_owned(),
    };
    let mut facts = key_facts(data);
    if let Some(code) = code {
        facts.push(("Reason".to_owned(), state_words(code)));
    }
    Message {
        title: format!("App Store Connect needs action ({})", key_label(data)),
        description,
        facts,
        link_label: "Open App Store Connect".to_owned(),
        link_url: APP_STORE_CONNECT.to_owned(),
        outcome: Outcome::Bad,
    }
}

fn key_status_message(data: &Value) -> Message {
    let old = text(data, &["old_status"]);
    let new = new_state(data, "new_status");
    let code = text(data, &["code"]);
    let description = match (new.as_str(), code) {
        ("valid", _) => "The key works again: shipwatch resumes watching its apps.".to_owned(),
        (_, Some(code)) => key_code_explanation(code),
        (_, None) => format!("The key is now {}.", state_words(&new)),
    };
    let mut facts = key_facts(data);
    facts.push(("Status".to_owned(), transition_words(old, &new)));
    if let Some(code) = code {
        facts.push(("Reason".to_owned(), state_words(code)));
    }
    let outcome = match new.as_str() {
        "valid" => Outcome::Good,
        "invalid" => Outcome::Bad,
        _ => Outcome::Neutral,
    };
    Message {
        title: format!("{} is now {}", key_label(data), state_words(&new)),
        description,
        facts,
        link_label: "Open API keys".to_owned(),
        link_url: API_KEYS_PAGE.to_owned(),
        outcome,
    }
}

fn test_message(data: &Value) -> Message {
    Message {
        title: "Test notification from shipwatch".to_owned(),
        description: text(data, &["message"])
            .unwrap_or("This destination is set up: shipwatch can reach it.")
            .to_owned(),
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

    fn event_with(event_type: &str, data: Value) -> EventRecord {
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
            json!({"app": {"id": "123", "name": long_name}, "new_state": "IN_REVIEW"}),
        );
        let header = slack(&event)["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap_or_default()
            .chars()
            .count();
        assert!(header <= 150, "{header}");
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
