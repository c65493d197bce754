//! The notification flow as a user drives it through the HTTP API (docs/openapi.yaml), on both
//! store adapters: upload a key, create destinations of every type pointing at real local
//! receivers, route events with workflows, sweep on demand, and read the history and the apps.
//! Every webhook is checked as CloudEvents 1.0 and its Standard Webhooks signature verified
//! independently; URLs and signing secrets never come back after creation, nor reach the logs.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use shipwatch_service::model::{
    DeliveryRecord, DestinationId, EventId, EventQuery, EventRecord, EventWithDeliveries,
    KeyRecordId, Page, SecretName, StoredSnapshot, TeamId,
};
use shipwatch_service::ports::{StoreResult, Stores, SweepCommit, SweepStore};
use shipwatch_shared::clock::SystemClock;
use shipwatch_tests::app::{Backend, TestApp, TestTeam, fresh_stores};
use shipwatch_tests::fake_asc::{FakeApp, FakeAsc, FakeBuild, FakeVersion};
use shipwatch_tests::receiver::{Receiver, RecordedRequest, ScriptedAnswer};
use shipwatch_tests::standard_webhooks;
use shipwatch_tests::test_keys::TestKey;

shipwatch_tests::on_both_stores!(
    workflows_are_listed_and_shown_as_created,
    sweeps_are_for_the_admin_and_the_first_is_a_silent_baseline,
    sweeps_notify_every_destination_as_the_workflows_route,
    sweeps_send_nothing_without_news_and_only_what_changed_later,
    the_history_lists_every_event_newest_first_with_its_deliveries,
    the_history_filters_by_app_type_and_text,
    the_history_pages_without_duplicates_or_gaps,
    apps_show_their_versions_and_builds_as_last_seen,
    test_messages_report_whether_they_arrived_and_are_in_the_history,
    destinations_never_show_their_url_or_signing_secret_again,
    deleting_a_destination_removes_its_workflow_and_its_secret,
    invalid_destinations_and_workflows_are_refused_with_their_code,
    private_destinations_are_refused_without_the_development_flag,
    teams_see_only_their_own_destinations_workflows_events_and_apps,
    test_messages_report_failures_without_revealing_the_url,
    the_apps_page_reads_every_snapshot_in_one_store_call,
);

const HELLO: &str = "6450000101";
const WORLD: &str = "6450000102";
const VERSION_CHANGED: &str = "shipwatch.app_version.state_changed";
const PROCESSING_CHANGED: &str = "shipwatch.build.processing_state_changed";
const BETA_CHANGED: &str = "shipwatch.build.beta_state_changed";
const TEST_EVENT: &str = "shipwatch.test";

/// A team of the app with one validated key, on a fake App Store Connect with two apps.
struct Setup {
    asc: FakeAsc,
    app: TestApp,
    team: TestTeam,
    key_record: String,
}

fn uploaded(nth: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default() + TimeDelta::seconds(nth)
}

impl Setup {
    async fn new(backend: Backend) -> Self {
        let asc = FakeAsc::start().await;
        let app = TestApp::start(backend, &asc.base_url()).await;
        let team = app.create_team("Acme").await;
        let key = TestKey::generate();
        asc.register_key(&key);
        asc.add_app(
            &key.issuer_id,
            FakeApp::new(HELLO, "Hello", "com.example.hello"),
        );
        asc.add_app(
            &key.issuer_id,
            FakeApp::new(WORLD, "World", "com.example.world"),
        );
        asc.add_version(FakeVersion::new(
            "vA1",
            HELLO,
            "2.1",
            "IOS",
            "WAITING_FOR_REVIEW",
        ));
        asc.add_version(FakeVersion::new(
            "vB1",
            WORLD,
            "1.0",
            "MAC_OS",
            "PREPARE_FOR_SUBMISSION",
        ));
        asc.add_build(
            FakeBuild::new("bA1", HELLO, "41", "2.1")
                .processing_state("VALID")
                .external_state(Some("READY_FOR_BETA_SUBMISSION"))
                .uploaded(uploaded(1)),
        );
        asc.add_build(
            FakeBuild::new("bB1", WORLD, "7", "1.0")
                .platform("MAC_OS")
                .external_state(None)
                .uploaded(uploaded(2)),
        );

        let (status, created) = app
            .post_json(
                &team.token,
                "/v1/keys",
                &json!({
                    "private_key": key.pem,
                    "issuer_id": key.issuer_id.as_str(),
                    "key_id": key.key_id.as_str(),
                    "name": "CI key",
                }),
            )
            .await;
        assert_eq!(status, 202, "{created}");
        let key_record = created["id"].as_str().expect("key id").to_owned();
        let key = app
            .wait_for_key(&team.token, &key_record, |k| k["status"] != "validating")
            .await;
        assert_eq!(key["status"], "valid", "{key}");
        assert_eq!(key["apps_count"], 2);
        Self {
            asc,
            app,
            team,
            key_record,
        }
    }

    /// `POST /v1/sweeps` with the admin token; the report.
    async fn sweep(&self) -> Value {
        let (status, report) = self
            .app
            .post_json(&self.app.admin_token, "/v1/sweeps", &json!({}))
            .await;
        assert_eq!(status, 200, "{report}");
        report
    }

    /// One sweep's App Store Connect changes: five transitions, two apps, every kind of build change.
    fn first_changes(&self) {
        self.asc.set_version_state("vA1", "IN_REVIEW");
        self.asc
            .set_build_external_state("bA1", Some("WAITING_FOR_BETA_REVIEW"));
        self.asc.add_build(
            FakeBuild::new("bA2", HELLO, "42", "2.1")
                .external_state(None)
                .uploaded(uploaded(3)),
        );
        self.asc.set_version_state("vB1", "WAITING_FOR_REVIEW");
        self.asc.set_build_processing("bB1", "VALID");
    }
}

/// One destination and the receiver behind it.
struct Target {
    kind: &'static str,
    name: String,
    id: String,
    receiver: Receiver,
    /// The secret part of the URL (the whole path).
    secret_path: String,
    url: String,
    signing_secret: Option<String>,
}

fn secret_path(kind: &str) -> String {
    format!(
        "/{kind}/T{}/B{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

async fn create_target(app: &TestApp, team: &TestTeam, kind: &'static str) -> Target {
    let receiver = Receiver::start().await.expect("receiver");
    let path = secret_path(kind);
    let url = format!("{}{path}", receiver.url());
    let name = format!("{kind} of Acme");
    let (status, created) = app
        .post_json(
            &team.token,
            "/v1/destinations",
            &json!({"type": kind, "name": name, "url": url}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["type"], kind);
    assert_eq!(created["name"], name.as_str());
    let hint = created["url_hint"].as_str().expect("url_hint");
    assert!(
        hint.starts_with(&format!("{}/…/", receiver.url())),
        "{hint}"
    );
    assert!(created.get("url").is_none(), "{created}");
    let text = created.to_string();
    assert!(
        !text.contains(&path[..path.len() - 4]),
        "the URL path is a secret: {text}"
    );
    let signing_secret = created["signing_secret"].as_str().map(str::to_owned);
    if kind == "webhook" {
        let secret = signing_secret.as_deref().expect("webhook signing secret");
        assert!(
            secret.starts_with("whsec_") && secret.len() > 30,
            "{secret}"
        );
    } else {
        assert!(created.get("signing_secret").is_none(), "{created}");
    }
    Target {
        kind,
        name,
        id: created["id"].as_str().expect("id").to_owned(),
        receiver,
        secret_path: path,
        url,
        signing_secret,
    }
}

/// The four destinations: webhook, slack, discord, teams.
async fn create_targets(app: &TestApp, team: &TestTeam) -> [Target; 4] {
    [
        create_target(app, team, "webhook").await,
        create_target(app, team, "slack").await,
        create_target(app, team, "discord").await,
        create_target(app, team, "teams").await,
    ]
}

async fn create_workflow(
    app: &TestApp,
    team: &TestTeam,
    name: &str,
    destination: &str,
    app_ids: &[&str],
    event_types: &[&str],
) -> String {
    let (status, created) = app
        .post_json(
            &team.token,
            "/v1/workflows",
            &json!({"name": name, "destination_id": destination,
                "app_ids": app_ids, "event_types": event_types}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["name"], name);
    assert_eq!(created["destination_id"], destination);
    assert_eq!(created["app_ids"], json!(app_ids));
    assert_eq!(created["event_types"], json!(event_types));
    created["id"].as_str().expect("workflow id").to_owned()
}

/// Routing: everything to the webhook, Hello's events to Slack, processing changes to Discord,
/// World's version changes to Teams.
async fn create_workflows(setup: &Setup, targets: &[Target; 4]) -> [String; 4] {
    let (app, team) = (&setup.app, &setup.team);
    [
        create_workflow(app, team, "all", &targets[0].id, &["*"], &["*"]).await,
        create_workflow(app, team, "hello", &targets[1].id, &[HELLO], &["*"]).await,
        create_workflow(
            app,
            team,
            "builds",
            &targets[2].id,
            &["*"],
            &[PROCESSING_CHANGED],
        )
        .await,
        create_workflow(
            app,
            team,
            "world review",
            &targets[3].id,
            &[WORLD],
            &[VERSION_CHANGED],
        )
        .await,
    ]
}

/// Which destinations (by index in the targets) an event of `event_type` about `app_id` goes to.
fn routed_to(event_type: &str, app_id: &str) -> BTreeSet<usize> {
    let mut to = BTreeSet::from([0]);
    if app_id == HELLO {
        to.insert(1);
    }
    if event_type == PROCESSING_CHANGED {
        to.insert(2);
    }
    if app_id == WORLD && event_type == VERSION_CHANGED {
        to.insert(3);
    }
    to
}

fn assert_error(response: &(u16, Value), status: u16, code: &str) {
    let (actual, body) = response;
    assert_eq!(*actual, status, "{code}: {body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.len() > 10,
        "{code} needs a message that says what to do: {body}"
    );
}

/// Checks a webhook delivery (content type, CloudEvents 1.0 structure, Standard Webhooks
/// signature keyed by `signing_secret`) and returns its JSON body.
fn verified_cloud_event(signing_secret: &str, request: &RecordedRequest) -> Value {
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.header("content-type"),
        Some("application/cloudevents+json")
    );
    let verified = standard_webhooks::verify_headers(
        signing_secret,
        &request.headers,
        &request.body,
        Utc::now().timestamp(),
    );
    assert_eq!(verified, Ok(()), "Standard Webhooks signature");
    let event = request.json();
    assert_eq!(event["specversion"], "1.0");
    assert!(event["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(request.header("webhook-id"), event["id"].as_str());
    assert!(
        event["source"]
            .as_str()
            .is_some_and(|s| s.starts_with("/shipwatch")),
        "{event}"
    );
    assert!(
        event["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("shipwatch."))
    );
    assert!(
        event["time"]
            .as_str()
            .is_some_and(|t| DateTime::parse_from_rfc3339(t).is_ok()),
        "{event}"
    );
    assert_eq!(event["datacontenttype"], "application/json");
    assert!(event["data"].is_object(), "{event}");
    event
}

/// The contract's `data` of a state change event about one of the fake's apps.
fn assert_state_change_data(event: &Value) {
    let data = &event["data"];
    let app_id = event["subject"].as_str().expect("subject = app id");
    let expected_app = match app_id {
        HELLO => json!({"id": HELLO, "name": "Hello", "bundle_id": "com.example.hello"}),
        WORLD => json!({"id": WORLD, "name": "World", "bundle_id": "com.example.world"}),
        other => panic!("event about an unknown app {other}"),
    };
    assert_eq!(data["app"], expected_app);
    assert!(data["new_state"].is_string(), "{event}");
    assert!(data.get("old_state").is_some(), "{event}");
    match event["type"].as_str() {
        Some(VERSION_CHANGED) => {
            let version = &data["version"];
            for field in ["id", "version_string", "platform"] {
                assert!(version[field].is_string(), "version.{field}: {event}");
            }
        }
        Some(PROCESSING_CHANGED | BETA_CHANGED) => {
            let build = &data["build"];
            for field in ["id", "version", "short_version", "platform"] {
                assert!(build[field].is_string(), "build.{field}: {event}");
            }
        }
        other => panic!("unexpected event type {other:?}"),
    }
}

fn assert_chat_message(target: &Target, request: &RecordedRequest) {
    assert_eq!(request.method, "POST");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert!(request.header("webhook-signature").is_none());
    let body = request.json();
    match target.kind {
        "slack" => {
            assert!(
                body["text"].as_str().is_some_and(|t| !t.is_empty()),
                "{body}"
            );
            let blocks = body["blocks"].as_array().expect("Block Kit blocks");
            assert!(!blocks.is_empty());
            assert!(blocks.iter().all(|b| b["type"].is_string()), "{body}");
        }
        "discord" => {
            let embeds = body["embeds"].as_array().expect("embeds");
            assert_eq!(embeds.len(), 1, "{body}");
            assert!(embeds[0]["title"].as_str().is_some_and(|t| !t.is_empty()));
            assert!(embeds[0]["description"].is_string());
        }
        "teams" => {
            assert_eq!(body["type"], "message");
            let attachments = body["attachments"].as_array().expect("attachments");
            assert_eq!(attachments.len(), 1, "{body}");
            assert_eq!(
                attachments[0]["contentType"],
                "application/vnd.microsoft.card.adaptive"
            );
            let card = &attachments[0]["content"];
            assert_eq!(card["type"], "AdaptiveCard");
            assert!(card["version"].is_string());
            assert!(
                card["body"].as_array().is_some_and(|b| !b.is_empty()),
                "{body}"
            );
        }
        other => panic!("not a chat destination: {other}"),
    }
}

/// Every event of the team's history, following `next_cursor` with pages of `limit`.
async fn all_pages(setup: &Setup, filter: &str, limit: usize) -> Vec<Value> {
    let mut events = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut path = format!("/v1/events?limit={limit}{filter}");
        if let Some(cursor) = &cursor {
            let encoded: String = url::form_urlencoded::byte_serialize(cursor.as_bytes()).collect();
            path.push_str(&format!("&cursor={encoded}"));
        }
        let (status, page) = setup.app.get(&setup.team.token, &path).await;
        assert_eq!(status, 200, "{page}");
        let items = page["events"].as_array().expect("events");
        assert!(items.len() <= limit);
        events.extend(items.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => {
                assert_eq!(items.len(), limit, "only the last page is short");
                cursor = Some(next.to_owned());
            }
            None => return events,
        }
    }
    panic!("pagination never ended");
}

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["id"].as_str().expect("event id").to_owned())
        .collect()
}

async fn events(setup: &Setup, query: &str) -> Vec<Value> {
    let (status, page) = setup
        .app
        .get(&setup.team.token, &format!("/v1/events{query}"))
        .await;
    assert_eq!(status, 200, "{page}");
    page["events"].as_array().expect("events").clone()
}

/// No response or log line may contain a destination's URL path or signing secret.
fn assert_no_destination_secret(targets: &[Target], text: &str, what: &str) {
    for target in targets {
        assert!(
            !text.contains(&target.url),
            "{what} contains a destination URL"
        );
        assert!(
            !text.contains(&target.secret_path[..target.secret_path.len() - 4]),
            "{what} contains a destination URL path"
        );
        if let Some(secret) = &target.signing_secret {
            let key = secret.trim_start_matches("whsec_");
            assert!(!text.contains(key), "{what} contains a signing secret");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One team routing to four destinations, driven stage by stage. Each test below starts at the
// stage it checks and replays the stages before it (whose own tests assert them), so a failure in
// one stage hides nothing about the others.

/// A [`Setup`] with the four destinations of [`create_targets`] and the workflows of
/// [`create_workflows`].
struct Routed {
    setup: Setup,
    targets: [Target; 4],
    workflows: [String; 4],
}

impl Routed {
    async fn new(backend: Backend) -> Self {
        let setup = Setup::new(backend).await;
        let targets = create_targets(&setup.app, &setup.team).await;
        let workflows = create_workflows(&setup, &targets).await;
        Self {
            setup,
            targets,
            workflows,
        }
    }

    /// Through the sweep after [`Setup::first_changes`]: five events, delivered as routed.
    async fn notified(backend: Backend) -> Self {
        let routed = Self::new(backend).await;
        let report = routed.notify_first_changes().await;
        assert_eq!(report["events"], 5, "{report}");
        routed
    }

    /// Through the later transition: six events in the history.
    async fn with_history(backend: Backend) -> Self {
        let routed = Self::notified(backend).await;
        let quiet = routed.setup.sweep().await;
        assert_eq!(quiet["events"], 0, "{quiet}");
        let later = routed.later_transition().await;
        assert_eq!(later["events"], 1, "{later}");
        routed
    }

    /// Through the two test messages of [`Routed::send_test_messages`].
    async fn with_test_messages(backend: Backend) -> Self {
        let routed = Self::with_history(backend).await;
        routed.send_test_messages().await;
        routed
    }

    /// The webhook's signing secret.
    fn secret(&self) -> &str {
        self.targets[0].signing_secret.as_deref().expect("secret")
    }

    /// How many requests each receiver got: webhook, slack, discord, teams.
    fn counts(&self) -> Vec<usize> {
        self.targets
            .iter()
            .map(|t| t.receiver.requests().len())
            .collect()
    }

    /// The silent baseline sweep, then [`Setup::first_changes`] and the report of their sweep.
    async fn notify_first_changes(&self) -> Value {
        let baseline = self.setup.sweep().await;
        assert_eq!(baseline["events"], 0, "{baseline}");
        self.setup.first_changes();
        self.setup.sweep().await
    }

    /// A later transition of Hello's version, so the history has an order to show; the report.
    async fn later_transition(&self) -> Value {
        self.setup
            .asc
            .set_version_state("vA1", "PENDING_DEVELOPER_RELEASE");
        self.setup.sweep().await
    }

    /// `POST /v1/destinations/{id}/test` for the target at `index`; the outcome.
    async fn test_message(&self, index: usize) -> Value {
        let (status, outcome) = self
            .setup
            .app
            .post_json(
                &self.setup.team.token,
                &format!("/v1/destinations/{}/test", self.targets[index].id),
                &json!({}),
            )
            .await;
        assert_eq!(status, 200, "{outcome}");
        outcome
    }

    /// Test messages: one to the webhook that arrives, one that Slack's receiver refuses with
    /// 503; their outcomes.
    async fn send_test_messages(&self) -> (Value, Value) {
        let outcome = self.test_message(0).await;
        self.targets[1].receiver.fail_next(1, 503);
        let refused = self.test_message(1).await;
        (outcome, refused)
    }
}

async fn workflows_are_listed_and_shown_as_created(backend: Backend) {
    let routed = Routed::new(backend).await;
    let (setup, workflows) = (&routed.setup, &routed.workflows);
    let (status, listed) = setup.app.get(&setup.team.token, "/v1/workflows").await;
    assert_eq!(status, 200);
    assert_eq!(listed["workflows"].as_array().map(Vec::len), Some(4));
    let (status, shown) = setup
        .app
        .get(
            &setup.team.token,
            &format!("/v1/workflows/{}", workflows[3]),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(shown["app_ids"], json!([WORLD]));
    assert_eq!(shown["event_types"], json!([VERSION_CHANGED]));
}

async fn sweeps_are_for_the_admin_and_the_first_is_a_silent_baseline(backend: Backend) {
    let routed = Routed::new(backend).await;
    let (setup, targets) = (&routed.setup, &routed.targets);

    // Sweeping is for the admin only.
    let forbidden = setup
        .app
        .post_json(&setup.team.token, "/v1/sweeps", &json!({}))
        .await;
    assert_error(&forbidden, 401, "unauthorized");

    // The first sweep of the key is a silent baseline.
    let baseline = setup.sweep().await;
    println!("{backend:?} baseline sweep: {baseline}");
    for (field, expected) in [
        ("keys", 1),
        ("apps", 2),
        ("asc_requests", 2),
        ("events", 0),
        ("deliveries", 0),
    ] {
        assert_eq!(baseline[field], expected, "baseline {field}: {baseline}");
    }
    assert!(targets.iter().all(|t| t.receiver.requests().is_empty()));
}

async fn sweeps_notify_every_destination_as_the_workflows_route(backend: Backend) {
    let routed = Routed::new(backend).await;
    let targets = &routed.targets;
    let report = routed.notify_first_changes().await;
    println!("{backend:?} sweep after five transitions: {report}");
    for (field, expected) in [
        ("keys", 1),
        ("apps", 2),
        ("asc_requests", 2),
        ("events", 5),
        ("deliveries", 5 + 3 + 2 + 1),
    ] {
        assert_eq!(report[field], expected, "{field}: {report}");
    }
    assert_eq!(
        routed.counts(),
        [5, 3, 2, 1],
        "webhook, slack, discord, teams"
    );

    // The webhook: CloudEvents, signed, one per transition.
    let secret = routed.secret();
    let webhooks: Vec<Value> = targets[0]
        .receiver
        .requests()
        .iter()
        .map(|r| verified_cloud_event(secret, r))
        .collect();
    let mut seen: Vec<(String, String, String, String)> = webhooks
        .iter()
        .map(|e| {
            assert_state_change_data(e);
            let text = |v: &Value| v.as_str().unwrap_or("null").to_owned();
            (
                text(&e["subject"]),
                text(&e["type"]),
                text(&e["data"]["old_state"]),
                text(&e["data"]["new_state"]),
            )
        })
        .collect();
    seen.sort();
    let expected: Vec<(String, String, String, String)> = [
        (HELLO, VERSION_CHANGED, "WAITING_FOR_REVIEW", "IN_REVIEW"),
        (
            HELLO,
            BETA_CHANGED,
            "READY_FOR_BETA_SUBMISSION",
            "WAITING_FOR_BETA_REVIEW",
        ),
        (HELLO, PROCESSING_CHANGED, "null", "PROCESSING"),
        (
            WORLD,
            VERSION_CHANGED,
            "PREPARE_FOR_SUBMISSION",
            "WAITING_FOR_REVIEW",
        ),
        (WORLD, PROCESSING_CHANGED, "PROCESSING", "VALID"),
    ]
    .iter()
    .map(|(a, t, o, n)| (a.to_string(), t.to_string(), o.to_string(), n.to_string()))
    .collect::<BTreeSet<_>>()
    .into_iter()
    .collect();
    assert_eq!(seen, expected);
    let version = webhooks
        .iter()
        .find(|e| e["subject"] == WORLD && e["type"] == VERSION_CHANGED)
        .expect("World's version event");
    assert_eq!(
        version["data"]["version"],
        json!({"id": "vB1", "version_string": "1.0", "platform": "MAC_OS"})
    );
    let new_build = webhooks
        .iter()
        .find(|e| e["data"]["build"]["id"] == "bA2")
        .expect("new build event");
    assert_eq!(
        new_build["data"]["build"],
        json!({"id": "bA2", "version": "42", "short_version": "2.1", "platform": "IOS"})
    );

    // The chat destinations: their own formats, naming the app.
    for target in &targets[1..] {
        for request in target.receiver.requests() {
            assert_chat_message(target, &request);
        }
    }
    let teams_text = targets[3].receiver.requests()[0].body_text();
    assert!(teams_text.contains("World"), "{teams_text}");
    assert!(
        targets[1]
            .receiver
            .requests()
            .iter()
            .all(|r| r.body_text().contains("Hello") && !r.body_text().contains("World"))
    );
}

async fn sweeps_send_nothing_without_news_and_only_what_changed_later(backend: Backend) {
    let routed = Routed::notified(backend).await;
    let setup = &routed.setup;

    // Nothing new: silent, nothing sent.
    let quiet = setup.sweep().await;
    assert_eq!(
        (quiet["events"].clone(), quiet["deliveries"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(routed.counts(), [5, 3, 2, 1]);

    // A later transition: one event, to the webhook and Slack (Hello's).
    let later = routed.later_transition().await;
    assert_eq!(
        (later["events"].clone(), later["deliveries"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(
        later["asc_requests"], 3,
        "a phased release may follow: one more read"
    );
}

async fn the_history_lists_every_event_newest_first_with_its_deliveries(backend: Backend) {
    let routed = Routed::with_history(backend).await;
    let (setup, targets) = (&routed.setup, &routed.targets);

    // The history: newest first, each event with its deliveries.
    let history = events(setup, "").await;
    assert_eq!(history.len(), 6);
    assert_eq!(history[0]["type"], VERSION_CHANGED);
    assert_eq!(history[0]["data"]["new_state"], "PENDING_DEVELOPER_RELEASE");
    let times: Vec<DateTime<chrono::FixedOffset>> = history
        .iter()
        .map(|e| DateTime::parse_from_rfc3339(e["time"].as_str().expect("time")).expect("rfc3339"))
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    assert!(times[0] > times[1]);
    let names: BTreeMap<&str, (usize, &str)> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.as_str(), (i, t.name.as_str())))
        .collect();
    for event in &history {
        assert_eq!(event["specversion"], "1.0");
        assert!(event["summary"].as_str().is_some_and(|s| !s.is_empty()));
        let deliveries = event["deliveries"].as_array().expect("deliveries");
        let mut reached = BTreeSet::new();
        for delivery in deliveries {
            let destination = delivery["destination"]["id"]
                .as_str()
                .expect("destination id");
            let (index, name) = names[destination];
            assert_eq!(delivery["destination"]["name"], name);
            assert_eq!(delivery["outcome"], "delivered", "{delivery}");
            let attempts = delivery["attempts"].as_array().expect("attempts");
            assert_eq!(attempts.len(), 1);
            assert_eq!(attempts[0]["status_code"], 200);
            reached.insert(index);
        }
        let (event_type, app_id) = (
            event["type"].as_str().unwrap_or_default(),
            event["subject"].as_str().unwrap_or_default(),
        );
        assert_eq!(reached, routed_to(event_type, app_id), "routing of {event}");
    }
    let secret = routed.secret();
    let mut delivered_ids: Vec<String> = targets[0]
        .receiver
        .requests()
        .iter()
        .map(|r| {
            verified_cloud_event(secret, r)["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    delivered_ids.sort();
    let mut history_ids = ids(&history);
    history_ids.sort();
    assert_eq!(
        delivered_ids, history_ids,
        "the webhook got every event once"
    );
}

async fn the_history_filters_by_app_type_and_text(backend: Backend) {
    let routed = Routed::with_history(backend).await;
    let setup = &routed.setup;
    let by_app = events(setup, &format!("?app_id={HELLO}")).await;
    assert_eq!(by_app.len(), 4);
    assert!(by_app.iter().all(|e| e["subject"] == HELLO));
    let by_type = events(setup, &format!("?type={PROCESSING_CHANGED}")).await;
    assert_eq!(by_type.len(), 2);
    assert!(by_type.iter().all(|e| e["type"] == PROCESSING_CHANGED));
    let by_text = events(setup, "?q=World").await;
    assert_eq!(by_text.len(), 2);
    assert!(by_text.iter().all(|e| e["subject"] == WORLD));
    assert_eq!(
        ids(&events(setup, "?q=com.example.world").await),
        ids(&by_text),
        "the bundle id is searched too"
    );
    assert_eq!(ids(&all_pages(setup, "&q=world", 1).await), ids(&by_text));
    let by_text_any_case = events(setup, "?q=hELLo").await;
    assert_eq!(ids(&by_text_any_case), ids(&by_app));
    let combined = events(setup, &format!("?app_id={WORLD}&type={VERSION_CHANGED}")).await;
    assert_eq!(combined.len(), 1);
    assert_eq!(combined[0]["data"]["version"]["id"], "vB1");
    assert!(events(setup, "?q=no-such-text-anywhere").await.is_empty());
}

async fn the_history_pages_without_duplicates_or_gaps(backend: Backend) {
    let routed = Routed::with_history(backend).await;
    let setup = &routed.setup;
    let history = events(setup, "").await;
    assert_eq!(history.len(), 6);
    let by_app = events(setup, &format!("?app_id={HELLO}")).await;
    assert_eq!(by_app.len(), 4);

    // The same events in the same order, no duplicates, no gaps.
    for limit in [1, 2, 4] {
        let paged = all_pages(setup, "", limit).await;
        assert_eq!(ids(&paged), ids(&history), "limit {limit}");
    }
    assert_eq!(
        ids(&all_pages(setup, &format!("&app_id={HELLO}"), 3).await),
        ids(&by_app)
    );
    let bad_limit = setup.app.get(&setup.team.token, "/v1/events?limit=0").await;
    assert_eq!(bad_limit.0, 400, "{}", bad_limit.1);
    let bad_cursor = setup
        .app
        .get(&setup.team.token, "/v1/events?cursor=garbage")
        .await;
    assert_eq!(bad_cursor.0, 400, "{}", bad_cursor.1);
}

async fn apps_show_their_versions_and_builds_as_last_seen(backend: Backend) {
    let routed = Routed::with_history(backend).await;
    let setup = &routed.setup;
    let (status, apps) = setup.app.get(&setup.team.token, "/v1/apps").await;
    assert_eq!(status, 200, "{apps}");
    let apps = apps["apps"].as_array().expect("apps").clone();
    assert_eq!(apps.len(), 2);
    let hello = apps.iter().find(|a| a["id"] == HELLO).expect("Hello");
    assert_eq!(hello["name"], "Hello");
    assert_eq!(hello["bundle_id"], "com.example.hello");
    assert_eq!(hello["key"], setup.key_record.as_str());
    let versions = hello["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 1);
    assert_eq!(
        (
            &versions[0]["platform"],
            &versions[0]["version_string"],
            &versions[0]["state"]
        ),
        (
            &json!("IOS"),
            &json!("2.1"),
            &json!("PENDING_DEVELOPER_RELEASE")
        )
    );
    let builds: Vec<(Value, Value, Value)> = hello["builds"]
        .as_array()
        .expect("builds")
        .iter()
        .map(|b| {
            (
                b["version"].clone(),
                b["processing_state"].clone(),
                b["external_beta_state"].clone(),
            )
        })
        .collect();
    assert_eq!(
        builds,
        [
            (json!("42"), json!("PROCESSING"), Value::Null),
            (
                json!("41"),
                json!("VALID"),
                json!("WAITING_FOR_BETA_REVIEW")
            ),
        ],
        "newest first"
    );
    let world = apps.iter().find(|a| a["id"] == WORLD).expect("World");
    assert_eq!(world["versions"][0]["state"], "WAITING_FOR_REVIEW");
    assert_eq!(world["versions"][0]["platform"], "MAC_OS");
    assert_eq!(world["builds"][0]["processing_state"], "VALID");
}

async fn test_messages_report_whether_they_arrived_and_are_in_the_history(backend: Backend) {
    let routed = Routed::with_history(backend).await;
    let (setup, targets) = (&routed.setup, &routed.targets);

    // One that arrives, one that the receiver refuses.
    let (outcome, refused) = routed.send_test_messages().await;
    assert_eq!(outcome["delivered"], true);
    assert_eq!(outcome["status_code"], 200);
    let requests = targets[0].receiver.requests();
    assert_eq!(requests.len(), 7);
    let test_event = verified_cloud_event(routed.secret(), &requests[6]);
    assert_eq!(test_event["type"], TEST_EVENT);
    assert_eq!(test_event["id"], outcome["event_id"]);
    assert!(test_event.get("subject").is_none(), "no app: no subject");
    assert!(
        test_event["data"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );

    assert_eq!(refused["delivered"], false);
    assert_eq!(refused["status_code"], 503);
    // Hello's four transitions, then the test.
    assert_eq!(targets[1].receiver.requests().len(), 5);
    assert_chat_message(&targets[1], &targets[1].receiver.requests()[4]);
    let tests = events(setup, &format!("?type={TEST_EVENT}")).await;
    assert_eq!(tests.len(), 2);
    assert_eq!(tests[0]["id"], refused["event_id"], "newest first");
    assert_eq!(tests[0]["deliveries"][0]["outcome"], "failed");
    assert_eq!(tests[0]["deliveries"][0]["attempts"][0]["status_code"], 503);
    assert_eq!(tests[1]["deliveries"][0]["outcome"], "delivered");
}

async fn destinations_never_show_their_url_or_signing_secret_again(backend: Backend) {
    let routed = Routed::with_test_messages(backend).await;
    let (setup, targets) = (&routed.setup, &routed.targets);
    let (status, list) = setup.app.get(&setup.team.token, "/v1/destinations").await;
    assert_eq!(status, 200);
    let listed = list["destinations"].as_array().expect("destinations");
    assert_eq!(listed.len(), 4);
    for target in targets {
        let (status, shown) = setup
            .app
            .get(
                &setup.team.token,
                &format!("/v1/destinations/{}", target.id),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(shown["type"], target.kind);
        assert!(shown["url_hint"].is_string());
        assert!(
            shown.get("signing_secret").is_none() && shown.get("url").is_none(),
            "{shown}"
        );
        assert_no_destination_secret(targets, &shown.to_string(), "GET destination");
    }
    assert!(
        listed
            .iter()
            .all(|d| d.get("signing_secret").is_none() && d.get("url").is_none())
    );
    assert_no_destination_secret(targets, &list.to_string(), "the destination list");
    let (_, all_events) = setup.app.get(&setup.team.token, "/v1/events").await;
    assert_no_destination_secret(targets, &all_events.to_string(), "the history");
    assert_no_destination_secret(targets, &shipwatch_tests::logs::captured(), "the logs");
}

async fn deleting_a_destination_removes_its_workflow_and_its_secret(backend: Backend) {
    let routed = Routed::with_test_messages(backend).await;
    let (setup, targets, workflows) = (&routed.setup, &routed.targets, &routed.workflows);

    // Deleting a destination removes its workflow and its secret; it gets nothing more.
    let slack = &targets[1];
    let (status, _) = setup
        .app
        .delete(&setup.team.token, &format!("/v1/destinations/{}", slack.id))
        .await;
    assert_eq!(status, 204);
    let gone = setup
        .app
        .get(&setup.team.token, &format!("/v1/destinations/{}", slack.id))
        .await;
    assert_error(&gone, 404, "not_found");
    let gone = setup
        .app
        .get(
            &setup.team.token,
            &format!("/v1/workflows/{}", workflows[1]),
        )
        .await;
    assert_error(&gone, 404, "not_found");
    let (_, listed) = setup.app.get(&setup.team.token, "/v1/workflows").await;
    let remaining: BTreeSet<&str> = listed["workflows"]
        .as_array()
        .expect("workflows")
        .iter()
        .filter_map(|w| w["id"].as_str())
        .collect();
    assert_eq!(
        remaining,
        BTreeSet::from([
            workflows[0].as_str(),
            workflows[2].as_str(),
            workflows[3].as_str()
        ])
    );
    let secret_left = setup
        .app
        .services
        .stores
        .secrets
        .get_secret(&SecretName::for_destination(
            &TeamId(setup.team.id.clone()),
            &DestinationId(slack.id.clone()),
        ))
        .await
        .expect("secret store answers");
    assert!(secret_left.is_none(), "the destination's secret is deleted");
    assert_eq!(
        setup.app.count_team_secrets(&setup.team.id).await,
        4,
        "key + 3 destinations"
    );

    setup.asc.set_version_state("vA1", "READY_FOR_DISTRIBUTION");
    let after_delete = setup.sweep().await;
    assert_eq!(
        (
            after_delete["events"].clone(),
            after_delete["deliveries"].clone()
        ),
        (json!(1), json!(1)),
        "only the webhook is left for Hello's version"
    );
    assert_eq!(slack.receiver.requests().len(), 5);
    assert_eq!(targets[0].receiver.requests().len(), 8);

    assert_no_destination_secret(targets, &shipwatch_tests::logs::captured(), "the logs");
}

async fn invalid_destinations_and_workflows_are_refused_with_their_code(backend: Backend) {
    let setup = Setup::new(backend).await;
    let (app, team) = (&setup.app, &setup.team);
    let webhook = create_target(app, team, "webhook").await;
    let post_destination =
        |body: Value| async move { app.post_json(&team.token, "/v1/destinations", &body).await };

    let unknown_type = post_destination(
        json!({"type": "email", "name": "mail", "url": "https://example.com/hooks/abcdefgh"}),
    )
    .await;
    assert_error(&unknown_type, 400, "invalid_destination_type");
    let not_a_url =
        post_destination(json!({"type": "slack", "name": "s", "url": "hooks.slack.com"})).await;
    assert_error(&not_a_url, 400, "invalid_destination_url");
    let ftp = post_destination(
        json!({"type": "slack", "name": "s", "url": "ftp://hooks.example.com/services/abc"}),
    )
    .await;
    assert_error(&ftp, 400, "invalid_destination_url");
    let unauthenticated = app
        .http
        .post(app.url("/v1/destinations"))
        .json(&json!({"type": "slack", "name": "s", "url": "https://example.com/x"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(unauthenticated.status(), 401);

    let post_workflow = |app_ids: Value, event_types: Value, destination: &str| {
        let body = json!({"name": "w", "destination_id": destination,
            "app_ids": app_ids, "event_types": event_types});
        async move { app.post_json(&team.token, "/v1/workflows", &body).await }
    };
    let id = webhook.id.as_str();
    for event_types in [
        json!(["shipwatch.app.exploded"]),
        json!([VERSION_CHANGED, "build.finished"]),
        json!([]),
    ] {
        let refused = post_workflow(json!(["*"]), event_types, id).await;
        assert_error(&refused, 400, "invalid_event_types");
    }
    for app_ids in [
        json!(["com.example.hello"]),
        json!([HELLO, "12ab"]),
        json!([]),
        json!(["*", HELLO]),
    ] {
        let refused = post_workflow(app_ids, json!(["*"]), id).await;
        assert_error(&refused, 400, "invalid_app_ids");
    }
    let unknown = post_workflow(json!(["*"]), json!(["*"]), "no-such-destination").await;
    assert_error(&unknown, 400, "unknown_destination");

    let (status, listed) = app.get(&team.token, "/v1/workflows").await;
    assert_eq!(status, 200);
    assert_eq!(listed["workflows"], json!([]), "nothing was stored");
    let (_, destinations) = app.get(&team.token, "/v1/destinations").await;
    assert_eq!(
        destinations["destinations"].as_array().map(Vec::len),
        Some(1)
    );
}

async fn private_destinations_are_refused_without_the_development_flag(backend: Backend) {
    let asc = FakeAsc::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let stores = fresh_stores(backend, dir.path()).await;
    let app = TestApp::start_with_settings(
        backend,
        stores,
        &asc.base_url(),
        dir,
        Arc::new(SystemClock),
        &[],
    )
    .await;
    let team = app.create_team("Prod").await;
    let receiver = Receiver::start().await.expect("receiver");
    let local_receiver = format!("{}{}", receiver.url(), secret_path("webhook"));
    for url in [
        local_receiver.as_str(),
        "http://hooks.example.com/services/T000/B000/abcdefgh",
        "https://127.0.0.1/hooks/abcdefgh",
        "https://127.8.9.10:8443/hooks/abcdefgh",
        "https://localhost/hooks/abcdefgh",
        "https://hooks.localhost/abcdefgh",
        "https://10.1.2.3/hooks/abcdefgh",
        "https://172.16.5.4/hooks/abcdefgh",
        "https://192.168.0.10/hooks/abcdefgh",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hooks/abcdefgh",
        "https://[fe80::1]/hooks/abcdefgh",
        "https://[fd00::1]/hooks/abcdefgh",
        "https://[::ffff:127.0.0.1]/hooks/abcdefgh",
        "https://0.0.0.0/hooks/abcdefgh",
    ] {
        for kind in ["webhook", "slack"] {
            let refused = app
                .post_json(
                    &team.token,
                    "/v1/destinations",
                    &json!({"type": kind, "name": "internal", "url": url}),
                )
                .await;
            assert_error(&refused, 400, "invalid_destination_url");
            assert!(
                !refused.1.to_string().contains(url),
                "the URL is not echoed"
            );
        }
    }
    let (_, listed) = app.get(&team.token, "/v1/destinations").await;
    assert_eq!(listed["destinations"], json!([]), "nothing was stored");
    assert_eq!(
        app.count_team_secrets(&team.id).await,
        0,
        "no secret was stored"
    );

    // A public https URL is fine (it is not contacted at creation).
    let public = "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXabcd";
    let (status, created) = app
        .post_json(
            &team.token,
            "/v1/destinations",
            &json!({"type": "slack", "name": "public", "url": public}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["url_hint"], "https://hooks.slack.com/…/abcd");
    assert!(!created.to_string().contains("XXXXXXXXXXXX"));
    assert!(receiver.requests().is_empty());
}

async fn teams_see_only_their_own_destinations_workflows_events_and_apps(backend: Backend) {
    let setup = Setup::new(backend).await;
    let targets = create_targets(&setup.app, &setup.team).await;
    let workflows = create_workflows(&setup, &targets).await;
    setup.sweep().await;
    setup.first_changes();
    let report = setup.sweep().await;
    assert_eq!(report["events"], 5);
    let other = setup.app.create_team("Other").await;
    let app = &setup.app;

    for target in &targets {
        let path = format!("/v1/destinations/{}", target.id);
        assert_error(&app.get(&other.token, &path).await, 404, "not_found");
        assert_error(
            &app.post_json(&other.token, &format!("{path}/test"), &json!({}))
                .await,
            404,
            "not_found",
        );
        assert_error(&app.delete(&other.token, &path).await, 404, "not_found");
        // Another team's destination cannot be named in a workflow either.
        let borrowed = app
            .post_json(
                &other.token,
                "/v1/workflows",
                &json!({"name": "steal", "destination_id": target.id,
                    "app_ids": ["*"], "event_types": ["*"]}),
            )
            .await;
        assert_error(&borrowed, 400, "unknown_destination");
    }
    for workflow in &workflows {
        let path = format!("/v1/workflows/{workflow}");
        assert_error(&app.get(&other.token, &path).await, 404, "not_found");
        assert_error(&app.delete(&other.token, &path).await, 404, "not_found");
    }
    for (path, field) in [
        ("/v1/destinations", "destinations"),
        ("/v1/workflows", "workflows"),
        ("/v1/events", "events"),
        ("/v1/apps", "apps"),
    ] {
        let (status, body) = app.get(&other.token, path).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body[field], json!([]), "{path} of another team: {body}");
    }
    let filtered = app
        .get(&other.token, &format!("/v1/events?app_id={HELLO}"))
        .await;
    assert_eq!(filtered.1["events"], json!([]));
    assert_error(
        &app.get("not-a-token", "/v1/events").await,
        401,
        "unauthorized",
    );

    // The owner still has everything: nothing the other team tried changed it.
    let (_, destinations) = app.get(&setup.team.token, "/v1/destinations").await;
    assert_eq!(
        destinations["destinations"].as_array().map(Vec::len),
        Some(4)
    );
    let (_, owned) = app.get(&setup.team.token, "/v1/workflows").await;
    assert_eq!(owned["workflows"].as_array().map(Vec::len), Some(4));
    assert_eq!(events(&setup, "").await.len(), 5);
    let counts: Vec<usize> = targets
        .iter()
        .map(|t| t.receiver.requests().len())
        .collect();
    assert_eq!(
        counts,
        [5, 3, 2, 1],
        "no test message was sent for the other team"
    );

    // The owner can delete a workflow; it is gone, once.
    let path = format!("/v1/workflows/{}", workflows[2]);
    let (status, _) = app.delete(&setup.team.token, &path).await;
    assert_eq!(status, 204);
    assert_error(&app.get(&setup.team.token, &path).await, 404, "not_found");
    assert_error(
        &app.delete(&setup.team.token, &path).await,
        404,
        "not_found",
    );
    let (_, owned) = app.get(&setup.team.token, "/v1/workflows").await;
    assert_eq!(owned["workflows"].as_array().map(Vec::len), Some(3));
}

async fn test_messages_report_failures_without_revealing_the_url(backend: Backend) {
    let setup = Setup::new(backend).await;
    let (app, team) = (&setup.app, &setup.team);
    let test = |target: &Target| {
        let path = format!("/v1/destinations/{}/test", target.id);
        async move { app.post_json(&team.token, &path, &json!({})).await }
    };

    // A receiver that refuses and echoes the request path back in its answer.
    let echoing = create_target(app, team, "discord").await;
    echoing.receiver.respond_next(
        ScriptedAnswer::status(404).with_body(&format!("no webhook at {}", echoing.secret_path)),
    );
    let (status, outcome) = test(&echoing).await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["delivered"], false);
    assert_eq!(outcome["status_code"], 404);
    assert!(
        outcome["error"].as_str().is_some_and(|e| e.contains("404")),
        "{outcome}"
    );
    assert_eq!(echoing.receiver.requests().len(), 1);

    // A receiver that is gone: no status code, a reason, and still no URL.
    let gone = create_target(app, team, "webhook").await;
    let port = gone.receiver.port();
    drop(gone.receiver);
    let gone = Target {
        receiver: Receiver::start().await.expect("placeholder receiver"),
        ..gone
    };
    let (status, unreachable) = test(&gone).await;
    assert_eq!(status, 200, "{unreachable}");
    assert_eq!(unreachable["delivered"], false);
    assert_eq!(unreachable["status_code"], Value::Null);
    assert!(
        unreachable["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{unreachable}"
    );
    assert!(
        !unreachable.to_string().contains(&format!(":{port}")),
        "{unreachable}"
    );

    let targets = [echoing, gone];
    for answer in [&outcome, &unreachable] {
        assert_no_destination_secret(&targets, &answer.to_string(), "a test outcome");
    }
    let history = events(&setup, &format!("?type={TEST_EVENT}")).await;
    assert_eq!(history.len(), 2);
    assert!(
        history
            .iter()
            .all(|e| e["deliveries"][0]["outcome"] == "failed")
    );
    assert_no_destination_secret(&targets, &json!(history).to_string(), "the history");
    assert_no_destination_secret(&targets, &shipwatch_tests::logs::captured(), "the logs");

    // Unknown destination, and the admin-only sweep without any token.
    let missing = app
        .post_json(&team.token, "/v1/destinations/no-such-id/test", &json!({}))
        .await;
    assert_error(&missing, 404, "not_found");
    let anonymous = app
        .http
        .post(app.url("/v1/sweeps"))
        .send()
        .await
        .expect("POST /v1/sweeps");
    assert_eq!(anonymous.status(), 401);
}

/// A sweep store that counts snapshot reads.
struct CountedSnapshotReads {
    inner: Arc<dyn SweepStore>,
    one_key: AtomicUsize,
    many_keys: AtomicUsize,
}

#[async_trait]
impl SweepStore for CountedSnapshotReads {
    async fn get_snapshot(&self, key: &KeyRecordId) -> StoreResult<Option<StoredSnapshot>> {
        self.one_key.fetch_add(1, Ordering::SeqCst);
        self.inner.get_snapshot(key).await
    }
    async fn get_snapshots(&self, keys: &[KeyRecordId]) -> StoreResult<Vec<StoredSnapshot>> {
        self.many_keys.fetch_add(1, Ordering::SeqCst);
        self.inner.get_snapshots(keys).await
    }
    async fn commit_sweep(&self, commit: &SweepCommit) -> StoreResult<()> {
        self.inner.commit_sweep(commit).await
    }
    async fn append_events(
        &self,
        events: &[EventRecord],
        deliveries: &[DeliveryRecord],
    ) -> StoreResult<()> {
        self.inner.append_events(events, deliveries).await
    }
    async fn list_events(
        &self,
        team: &TeamId,
        query: &EventQuery,
    ) -> StoreResult<Page<EventWithDeliveries>> {
        self.inner.list_events(team, query).await
    }
    async fn get_event(&self, id: &EventId) -> StoreResult<Option<EventRecord>> {
        self.inner.get_event(id).await
    }
    async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        self.inner.due_deliveries(now, limit).await
    }
    async fn update_delivery(
        &self,
        delivery: &DeliveryRecord,
        expected_revision: u64,
    ) -> StoreResult<()> {
        self.inner
            .update_delivery(delivery, expected_revision)
            .await
    }
}

/// `GET /v1/apps` reads the snapshots of all the team's keys in one store call, whatever the
/// number of keys, and shows each key's apps, oldest key first.
async fn the_apps_page_reads_every_snapshot_in_one_store_call(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let real = fresh_stores(backend, dir.path()).await;
    let counted = Arc::new(CountedSnapshotReads {
        inner: real.sweeps.clone(),
        one_key: AtomicUsize::new(0),
        many_keys: AtomicUsize::new(0),
    });
    let stores = Stores {
        sweeps: counted.clone(),
        ..real
    };
    let asc = FakeAsc::start().await;
    let app = TestApp::start_with(
        backend,
        stores.clone(),
        &asc.base_url(),
        dir,
        Arc::new(SystemClock),
    )
    .await;
    let team = app.create_team("Acme").await;
    let team_id = TeamId(team.id.clone());
    let mut expected = Vec::new();
    for (number, key_id) in ["AAAAA11111", "BBBBB22222", "CCCCC33333", "DDDDD44444"]
        .into_iter()
        .enumerate()
    {
        let key = shipwatch_tests::store_contract::api_key(&team_id, key_id, number as i64);
        stores.keys.insert_key(&key).await.expect("insert key");
        if number == 2 {
            continue; // not swept yet: no snapshot, no apps
        }
        let app_id = format!("64500002{number:02}");
        let state = json!({
            "apps": { app_id.clone(): { "name": format!("App {number}"), "bundle_id": format!("com.example.app{number}") } },
        });
        let commit = SweepCommit {
            snapshot: StoredSnapshot {
                key_record_id: key.id.clone(),
                team_id: team_id.clone(),
                version: 1,
                state,
                updated_at: Utc::now(),
            },
            expected_version: 0,
            events: Vec::new(),
            deliveries: Vec::new(),
        };
        stores.sweeps.commit_sweep(&commit).await.expect("commit");
        expected.push(json!({
            "id": app_id,
            "name": format!("App {number}"),
            "bundle_id": format!("com.example.app{number}"),
            "key": key.id.0,
            "versions": [],
            "builds": [],
        }));
    }
    let other = app.create_team("Other").await;
    counted.one_key.store(0, Ordering::SeqCst);
    counted.many_keys.store(0, Ordering::SeqCst);

    let (status, apps) = app.get(&team.token, "/v1/apps").await;
    assert_eq!(status, 200, "{apps}");
    assert_eq!(apps["apps"], Value::Array(expected));
    assert_eq!(
        counted.many_keys.load(Ordering::SeqCst),
        1,
        "one read for all keys"
    );
    assert_eq!(counted.one_key.load(Ordering::SeqCst), 0, "no read per key");

    let (status, apps) = app.get(&other.token, "/v1/apps").await;
    assert_eq!((status, &apps["apps"]), (200, &json!([])), "{apps}");
}
