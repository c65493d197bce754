//! The sweep end to end, on both store adapters (embedded, and DynamoDB + Secrets Manager on moto):
//! the fake App Store Connect of `tests/src/fake_asc.rs` (every token verified independently, every query checked against
//! Apple's spec) with scripted transitions, the app wired as `shipwatch-local` wires it (key
//! uploaded and validated, webhook destination and workflow created through the HTTP API), real
//! HTTP delivery to a local receiver whose signatures are verified, and one manual clock shared by
//! the fake and the app.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use shipwatch_adapters::app_store_connect::AppStoreConnectAccounts;
use shipwatch_service::model::{
    ApiKeyRecord, DeliveryStatus, EventQuery, EventWithDeliveries, KeyRecordId, KeyStatus,
    KeyStatusCode, TeamId,
};
use shipwatch_service::sweep::{SweepConfig, SweepService};
use shipwatch_shared::asc::{AscClient, AscConfig};
use shipwatch_shared::clock::ManualClock;
use shipwatch_shared::credentials::KeyId;
use shipwatch_tests::app::{Backend, TestApp, TestTeam, fresh_stores};
use shipwatch_tests::fake_asc::{
    Failure, FakeApp, FakeAsc, FakeBuild, FakePhasedRelease, FakeVersion,
    RecordedRequest as AscRequest,
};
use shipwatch_tests::receiver::{Receiver, RecordedRequest};
use shipwatch_tests::standard_webhooks;
use shipwatch_tests::test_keys::TestKey;

type TestResult = Result<(), Box<dyn std::error::Error>>;

shipwatch_tests::on_both_stores!(
    returning super::TestResult;
    scripted_transitions_are_delivered_exactly_once,
    two_sweeps_reading_the_same_snapshot_record_a_transition_once,
    failing_receiver_is_retried_across_sweeps_with_the_same_webhook_id,
    receiver_that_never_answers_2xx_fails_after_six_attempts,
    revoked_key_becomes_invalid_once_and_is_no_longer_swept,
    two_sweeps_reading_the_same_key_announce_its_revocation_once,
    agreements_block_is_announced_once_and_recovery_too,
    unknown_future_states_pass_through,
    rate_limit_skips_the_key_without_events_until_it_resets,
    server_errors_are_retried_briefly_then_the_key_is_skipped,
    phased_release_is_followed_while_in_flight,
    a_phased_release_running_at_the_first_sweep_is_followed,
    an_empty_answer_that_passes_announces_nothing,
    app_store_connect_faults_end_the_keys_sweep_in_time_without_false_events,
    requests_per_key_stay_flat_as_apps_grow,
);

const APP: &str = "6450000001";
const PHASED_RELEASE_SUFFIX: &str = "/appStoreVersionPhasedRelease";

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------------------------
// A gate between the app and the fake App Store Connect. It forwards every request unchanged
// (so the fake verifies each token and query), and can make the next few requests fail while the
// ones after them succeed, which the fake's per-key failure modes (on until cleared) cannot.
// The fake itself answers a failing request, with Apple's error document.

struct GateState {
    fake: Arc<FakeAsc>,
    fake_url: String,
    gate_url: String,
    key_id: KeyId,
    failures: Mutex<VecDeque<Failure>>,
    /// Paths whose next answer is a well-formed but empty page (`{"data": []}`), as a glitching
    /// App Store Connect might send.
    blanks: Mutex<Vec<String>>,
    /// Answers App Store Connect never documents but networks produce, for the next requests.
    raw: Mutex<VecDeque<RawAnswer>>,
    http: reqwest::Client,
}

/// A broken answer the gate gives instead of forwarding.
#[derive(Clone, Debug)]
enum RawAnswer {
    Body {
        status: u16,
        content_type: &'static str,
        body: &'static str,
    },
    /// Announces more bytes than it sends, so the connection ends mid-answer.
    Truncated,
    /// Answers only after this long.
    Hang(Duration),
}

struct Gate {
    state: Arc<GateState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Gate {
    async fn start(fake: Arc<FakeAsc>, key_id: KeyId) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let state = Arc::new(GateState {
            fake_url: fake.base_url(),
            gate_url: format!("http://{}", listener.local_addr()?),
            fake,
            key_id,
            failures: Mutex::new(VecDeque::new()),
            blanks: Mutex::new(Vec::new()),
            raw: Mutex::new(VecDeque::new()),
            http: reqwest::Client::new(),
        });
        let router = Router::new().fallback(forward).with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self { state, server })
    }

    fn url(&self) -> String {
        self.state.gate_url.clone()
    }

    /// The next `count` requests of the key fail with `failure`; later ones are answered normally.
    fn fail_next(&self, count: usize, failure: Failure) {
        lock(&self.state.failures).extend(std::iter::repeat_n(failure, count));
    }

    /// The next `count` requests get `answer` instead of App Store Connect's.
    fn answer_next(&self, count: usize, answer: RawAnswer) {
        lock(&self.state.raw).extend(std::iter::repeat_n(answer, count));
    }

    /// The next request for `path` is answered 200 with an empty page.
    fn blank_next(&self, path: &str) {
        lock(&self.state.blanks).push(path.to_owned());
    }
}

async fn forward(
    State(gate): State<Arc<GateState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let raw = lock(&gate.raw).pop_front();
    match raw {
        Some(RawAnswer::Body {
            status,
            content_type,
            body,
        }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            return (status, [("content-type", content_type)], body).into_response();
        }
        Some(RawAnswer::Truncated) => {
            // The body stream fails after its first bytes: the connection is cut mid-answer.
            let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(Bytes::from_static(b"{\"data\": [")),
                Err(std::io::Error::other("connection dropped")),
            ];
            let body = axum::body::Body::from_stream(futures_util::stream::iter(chunks));
            return (StatusCode::OK, [("content-type", "application/json")], body).into_response();
        }
        Some(RawAnswer::Hang(wait)) => tokio::time::sleep(wait).await,
        None => {}
    }
    {
        let mut blanks = lock(&gate.blanks);
        if let Some(at) = blanks.iter().position(|path| path == uri.path()) {
            blanks.remove(at);
            let page = json!({
                "data": [],
                "links": {"self": format!("{}{}", gate.gate_url, uri)},
                "meta": {"paging": {"total": 0, "limit": 200}},
            });
            return (StatusCode::OK, axum::Json(page)).into_response();
        }
    }
    let scripted = lock(&gate.failures).pop_front();
    if let Some(failure) = &scripted {
        gate.fake.set_failure(&gate.key_id, failure.clone());
    }
    let target = format!(
        "{}{}",
        gate.fake_url,
        uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut request = gate.http.request(method, target);
    if let Some(authorization) = headers.get("authorization") {
        request = request.header("authorization", authorization);
    }
    let answer = request.send().await;
    if scripted.is_some() {
        gate.fake.clear_failure(&gate.key_id);
    }
    let Ok(answer) = answer else {
        return (
            StatusCode::BAD_GATEWAY,
            "the fake App Store Connect is gone",
        )
            .into_response();
    };
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response_headers = HeaderMap::new();
    for name in ["content-type", "x-rate-limit", "retry-after"] {
        if let Some(value) = answer.headers().get(name) {
            response_headers.insert(name, value.clone());
        }
    }
    let body = answer.bytes().await.unwrap_or_default();
    // `links` name the fake; point them at the gate so follow-up pages pass here too.
    let body = String::from_utf8_lossy(&body).replace(&gate.fake_url, &gate.gate_url);
    (status, response_headers, Bytes::from(body)).into_response()
}

// ---------------------------------------------------------------------------------------------
// A team with one valid key, one webhook destination and a catch-all workflow, all made through
// the HTTP API.

struct World {
    clock: Arc<ManualClock>,
    asc: Arc<FakeAsc>,
    gate: Gate,
    app: TestApp,
    receiver: Receiver,
    team: TestTeam,
    key: TestKey,
    key_record: KeyRecordId,
    signing_secret: String,
    /// The secret part of the webhook destination's URL.
    hook_path: String,
}

impl World {
    async fn new(backend: Backend) -> Result<Self, Box<dyn std::error::Error>> {
        let clock = Arc::new(ManualClock::starting_now());
        let asc = Arc::new(FakeAsc::start_with_clock(clock.clone()).await);
        let key = TestKey::generate();
        asc.register_key(&key);
        asc.add_app(
            &key.issuer_id,
            FakeApp::new(APP, "Hello", "com.example.hello"),
        );
        let gate = Gate::start(asc.clone(), key.key_id.clone()).await?;
        let dir = tempfile::tempdir()?;
        let stores = fresh_stores(backend, dir.path()).await;
        let app = TestApp::start_with(backend, stores, &gate.url(), dir, clock.clone()).await;
        let receiver = Receiver::start().await?;
        let team = app.create_team("Acme").await;

        let (status, created) = app
            .post_json(
                &team.token,
                "/v1/keys",
                &json!({
                    "private_key": key.pem,
                    "issuer_id": key.issuer_id.as_str(),
                    "key_id": key.key_id.as_str(),
                    "name": "CI",
                }),
            )
            .await;
        assert_eq!(status, 202, "{created}");
        let key_record = created["id"].as_str().ok_or("key id")?.to_owned();
        let validated = app
            .wait_for_key(&team.token, &key_record, |k| k["status"] != "validating")
            .await;
        assert_eq!(validated["status"], "valid", "{validated}");

        let hook_path = format!("/hooks/{}", uuid::Uuid::new_v4().simple());
        let (status, destination) = app
            .post_json(
                &team.token,
                "/v1/destinations",
                &json!({"type": "webhook", "name": "hook",
                    "url": format!("{}{hook_path}", receiver.url())}),
            )
            .await;
        assert_eq!(status, 201, "{destination}");
        let signing_secret = destination["signing_secret"]
            .as_str()
            .ok_or("signing secret")?
            .to_owned();
        let (status, workflow) = app
            .post_json(
                &team.token,
                "/v1/workflows",
                &json!({"name": "everything", "destination_id": destination["id"],
                    "app_ids": ["*"], "event_types": ["*"]}),
            )
            .await;
        assert_eq!(status, 201, "{workflow}");
        Ok(Self {
            clock,
            asc,
            gate,
            app,
            receiver,
            team,
            key,
            key_record: KeyRecordId(key_record),
            signing_secret,
            hook_path,
        })
    }

    /// The sweeper the app runs.
    fn sweeper(&self) -> SweepService {
        self.app.services.sweeper.clone()
    }

    /// A sweeper as a second process would have it: its own App Store Connect client, the same stores.
    fn second_sweeper(&self) -> Result<SweepService, Box<dyn std::error::Error>> {
        self.sweeper_with(SweepConfig::default())
    }

    fn sweeper_with(
        &self,
        config: SweepConfig,
    ) -> Result<SweepService, Box<dyn std::error::Error>> {
        let asc = AscClient::with_clock(AscConfig::new(&self.gate.url())?, self.clock.clone())?;
        Ok(SweepService::new(
            self.app.services.stores.clone(),
            AppStoreConnectAccounts::port(asc),
            self.app.services.deliverer.clone(),
            self.clock.clone(),
            config,
        ))
    }

    fn advance(&self, seconds: i64) {
        self.clock.advance_by(TimeDelta::seconds(seconds));
    }

    /// How many requests the fake has received with this key's tokens.
    fn asked(&self) -> usize {
        self.asc.requests_for(&self.key.key_id)
    }

    /// The requests the fake received after the first `mark` ones.
    fn asc_requests_since(&self, mark: usize) -> Vec<AscRequest> {
        self.asc.request_log().into_iter().skip(mark).collect()
    }

    /// (path, status) of the requests after the first `mark` ones.
    fn asc_answers_since(&self, mark: usize) -> Vec<(String, u16)> {
        self.asc_requests_since(mark)
            .into_iter()
            .map(|r| (r.path, r.status))
            .collect()
    }

    /// Every request App Store Connect received carried a verified token of this key and a query
    /// the spec allows: answered 200 (or 404 for a version without a phased release), or with
    /// one of the failures the scenario scripted.
    fn assert_every_asc_request_was_valid(&self, scripted_failures: &[u16]) {
        let log = self.asc.request_log();
        assert!(!log.is_empty(), "the sweep asked App Store Connect");
        for request in log {
            assert_eq!(request.key_id.as_deref(), Some(self.key.key_id.as_str()));
            assert_eq!(request.method, "GET");
            let accepted = request.status == 200
                || (request.status == 404 && request.path.ends_with(PHASED_RELEASE_SUFFIX))
                || scripted_failures.contains(&request.status);
            assert!(accepted, "App Store Connect refused {request:?}");
        }
    }

    /// The `last_outcome` of the team's one destination, as `GET /v1/destinations` shows it.
    async fn last_outcome(&self) -> Value {
        let (status, listed) = self.app.get(&self.team.token, "/v1/destinations").await;
        assert_eq!(status, 200, "{listed}");
        let outcome = listed["destinations"][0]["last_outcome"].clone();
        assert!(
            !outcome.to_string().contains(&self.hook_path),
            "the URL in the outcome"
        );
        outcome
    }

    /// Neither the destination's URL path nor its signing secret was ever logged.
    fn assert_no_destination_secret_logged(&self) {
        let logs = shipwatch_tests::logs::captured();
        assert!(
            !logs.contains(&self.hook_path),
            "the destination URL path was logged"
        );
        let key = self.signing_secret.trim_start_matches("whsec_");
        assert!(!logs.contains(key), "the signing secret was logged");
    }

    async fn events(&self) -> Result<Vec<EventWithDeliveries>, Box<dyn std::error::Error>> {
        let page = self
            .app
            .services
            .stores
            .sweeps
            .list_events(
                &TeamId(self.team.id.clone()),
                &EventQuery {
                    limit: 100,
                    ..EventQuery::default()
                },
            )
            .await?;
        Ok(page.items)
    }

    async fn key_record(&self) -> Result<ApiKeyRecord, Box<dyn std::error::Error>> {
        Ok(self
            .app
            .services
            .stores
            .keys
            .get_key_by_id(&self.key_record)
            .await?
            .ok_or("key vanished")?)
    }

    async fn snapshot_version(&self) -> Result<u64, Box<dyn std::error::Error>> {
        Ok(self
            .app
            .services
            .stores
            .sweeps
            .get_snapshot(&self.key_record)
            .await?
            .map_or(0, |s| s.version))
    }

    /// Every webhook the receiver got, each checked (content type, Standard Webhooks signature
    /// with the secret returned at creation, `webhook-id` = event id), as JSON bodies.
    fn webhooks(&self) -> Vec<Value> {
        self.receiver
            .requests()
            .iter()
            .map(|request| verified_webhook(&self.signing_secret, request))
            .collect()
    }

    fn add_version(&self, id: &str, state: &str) {
        self.asc
            .add_version(FakeVersion::new(id, APP, "2.1", "IOS", state));
    }

    fn add_build(&self, id: &str, processing: &str, external: Option<&str>, nth: i64) {
        self.asc.add_build(
            FakeBuild::new(id, APP, &format!("{}", 40 + nth), "2.1")
                .processing_state(processing)
                .external_state(external)
                .uploaded(uploaded(nth)),
        );
    }
}

/// Upload times in a fixed order (newest last).
fn uploaded(nth: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default() + TimeDelta::seconds(nth)
}

fn verified_webhook(signing_secret: &str, request: &RecordedRequest) -> Value {
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
    let body = request.json();
    assert_eq!(body["specversion"], "1.0");
    assert_eq!(request.header("webhook-id"), body["id"].as_str());
    body
}

fn types_of(bodies: &[Value]) -> Vec<&str> {
    bodies.iter().filter_map(|b| b["type"].as_str()).collect()
}

fn sorted(mut items: Vec<&str>) -> Vec<&str> {
    items.sort_unstable();
    items
}

// ---------------------------------------------------------------------------------------------

async fn scripted_transitions_are_delivered_exactly_once(backend: Backend) -> TestResult {
    let world = World::new(backend).await?;
    world.add_version("v1", "WAITING_FOR_REVIEW");
    world.add_build("b1", "VALID", Some("IN_BETA_TESTING"), 1);
    let sweeper = world.sweeper();

    let mark = world.asc.total_requests();
    let baseline = sweeper.run().await;
    assert_eq!((baseline.keys, baseline.apps, baseline.events), (1, 1, 0));
    assert_eq!(baseline.asc_requests, 2);
    assert_eq!(
        world.asc_answers_since(mark),
        [("/v1/apps".to_owned(), 200), ("/v1/builds".to_owned(), 200)]
    );
    assert!(world.receiver.requests().is_empty(), "baseline is silent");
    assert_eq!(world.snapshot_version().await?, 1);

    world.asc.set_version_state("v1", "IN_REVIEW");
    world
        .asc
        .set_build_external_state("b1", Some("WAITING_FOR_BETA_REVIEW"));
    world.add_build("b2", "PROCESSING", None, 2);
    world.advance(60);
    let report = sweeper.run().await;
    assert_eq!(
        (report.events, report.deliveries, report.delivery_attempts),
        (3, 3, 3)
    );
    assert_eq!(report.asc_requests, 2);

    let bodies = world.webhooks();
    assert_eq!(
        sorted(types_of(&bodies)),
        [
            "shipwatch.app_version.state_changed",
            "shipwatch.build.beta_state_changed",
            "shipwatch.build.processing_state_changed",
        ]
    );
    let of_type = |event_type: &str| {
        bodies
            .iter()
            .find(|body| body["type"] == event_type)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let version_event = of_type("shipwatch.app_version.state_changed");
    assert_eq!(version_event["subject"], APP);
    assert_eq!(
        version_event["data"]["app"],
        json!({"id": APP, "name": "Hello", "bundle_id": "com.example.hello"})
    );
    assert_eq!(
        version_event["data"]["version"],
        json!({"id": "v1", "version_string": "2.1", "platform": "IOS"})
    );
    assert_eq!(version_event["data"]["old_state"], "WAITING_FOR_REVIEW");
    assert_eq!(version_event["data"]["new_state"], "IN_REVIEW");
    let beta_event = of_type("shipwatch.build.beta_state_changed");
    assert_eq!(beta_event["data"]["build"]["id"], "b1");
    assert_eq!(beta_event["data"]["old_state"], "IN_BETA_TESTING");
    assert_eq!(beta_event["data"]["new_state"], "WAITING_FOR_BETA_REVIEW");
    let new_build = of_type("shipwatch.build.processing_state_changed");
    assert_eq!(new_build["subject"], APP);
    assert_eq!(new_build["data"]["build"]["id"], "b2");
    assert_eq!(new_build["data"]["build"]["short_version"], "2.1");
    assert_eq!(new_build["data"]["old_state"], Value::Null);
    assert_eq!(new_build["data"]["new_state"], "PROCESSING");

    let history = world.events().await?;
    assert_eq!(history.len(), 3);
    assert!(history.iter().all(|event| event.deliveries.len() == 1
        && event.deliveries[0].status == DeliveryStatus::Delivered
        && event.deliveries[0].attempts.len() == 1));

    // Nothing changed: nothing is sent, and nothing is committed.
    world.advance(60);
    let quiet = sweeper.run().await;
    assert_eq!(
        (quiet.events, quiet.deliveries, quiet.delivery_attempts),
        (0, 0, 0)
    );
    assert_eq!(world.receiver.requests().len(), 3);
    assert_eq!(world.snapshot_version().await?, 2);
    world.assert_every_asc_request_was_valid(&[]);
    world.assert_no_destination_secret_logged();
    Ok(())
}

/// Two sweeps of one key (two processes) run side by side: both read the same snapshot and race to
/// commit; only one records. On moto the store answers one request at a time, so what this checks is
/// the conditional commit between interleaved sweeps; the store cancelling both transactions is
/// `sweep_commit_conflicts`.
async fn two_sweeps_reading_the_same_snapshot_record_a_transition_once(
    backend: Backend,
) -> TestResult {
    let world = World::new(backend).await?;
    world.add_version("v1", "PREPARE_FOR_SUBMISSION");
    let (first, second) = (world.sweeper(), world.second_sweeper()?);
    first.run().await;

    let states = ["WAITING_FOR_REVIEW", "IN_REVIEW", "REJECTED"];
    for round in 0..12 {
        world
            .asc
            .set_version_state("v1", states[round % states.len()]);
        world.advance(60);
        let (a, b) = tokio::join!(first.run(), second.run());
        assert!(
            a.events + b.events <= 1,
            "round {round}: never recorded twice"
        );
        if a.events + b.events == 0 {
            // Both commits were cancelled by a store-level collision: the next sweep reports it.
            assert_eq!(
                first.run().await.events,
                1,
                "round {round}: reported late, once"
            );
        }
        world.advance(600);
        first.deliver_due().await;
        assert_eq!(world.receiver.requests().len(), round + 1, "round {round}");
    }
    let history = world.events().await?;
    assert_eq!(history.len(), 12);
    let bodies = world.webhooks();
    let mut webhook_ids: Vec<&str> = bodies.iter().filter_map(|b| b["id"].as_str()).collect();
    webhook_ids.sort_unstable();
    webhook_ids.dedup();
    assert_eq!(webhook_ids.len(), 12, "no event was sent twice");
    let new_states: Vec<&str> = bodies
        .iter()
        .filter_map(|b| b["data"]["new_state"].as_str())
        .collect();
    let expected: Vec<&str> = (0..12).map(|round| states[round % states.len()]).collect();
    assert_eq!(new_states, expected, "each transition once, in order");
    world.assert_every_asc_request_was_valid(&[]);
    Ok(())
}

async fn failing_receiver_is_retried_across_sweeps_with_the_same_webhook_id(
    backend: Backend,
) -> TestResult {
    let world = World::new(backend).await?;
    world.add_version("v1", "IN_REVIEW");
    let sweeper = world.sweeper();
    sweeper.run().await;

    world.receiver.fail_next(2, 500);
    world
        .asc
        .set_version_state("v1", "PENDING_DEVELOPER_RELEASE");
    world.advance(60);
    let first = sweeper.run().await;
    assert_eq!((first.events, first.delivery_attempts), (1, 1));
    // The outbox's attempt is the destination's last outcome.
    let failed = world.last_outcome().await;
    assert_eq!(
        (&failed["status"], &failed["http_status"]),
        (&json!("failed"), &json!(500)),
        "{failed}"
    );

    // Not due yet: the first backoff is 5 s, the second 30 s.
    world.advance(2);
    assert_eq!(sweeper.deliver_due().await, 0);
    world.advance(4);
    assert_eq!(sweeper.deliver_due().await, 1);
    world.advance(20);
    assert_eq!(sweeper.deliver_due().await, 0);
    world.advance(15);
    assert_eq!(sweeper.run().await.delivery_attempts, 1);
    world.advance(3600);
    assert_eq!(
        sweeper.run().await.delivery_attempts,
        0,
        "delivered: nothing left"
    );

    // Every attempt is signed afresh and verifies; the id stays the event's.
    let bodies = world.webhooks();
    assert_eq!(bodies.len(), 3);
    let requests = world.receiver.requests();
    let ids: Vec<Option<&str>> = requests.iter().map(|r| r.header("webhook-id")).collect();
    assert!(ids[0].is_some() && ids.iter().all(|id| *id == ids[0]));

    let history = world.events().await?;
    assert_eq!(history.len(), 1);
    assert_eq!(Some(history[0].event.id.as_str()), ids[0]);
    let delivery = &history[0].deliveries[0];
    assert_eq!(delivery.status, DeliveryStatus::Delivered);
    let codes: Vec<Option<u16>> = delivery.attempts.iter().map(|a| a.status_code).collect();
    assert_eq!(codes, [Some(500), Some(500), Some(200)]);
    let delivered = world.last_outcome().await;
    assert_eq!(
        (&delivered["status"], &delivered["http_status"]),
        (&json!("delivered"), &json!(200)),
        "{delivered}"
    );
    let at: Option<DateTime<Utc>> = delivered["at"].as_str().and_then(|at| at.parse().ok());
    assert_eq!(at, Some(delivery.attempts[2].at));
    world.assert_every_asc_request_was_valid(&[]);
    Ok(())
}

async fn receiver_that_never_answers_2xx_fails_after_six_attempts(backend: Backend) -> TestResult {
    let world = World::new(backend).await?;
    world.add_version("v1", "IN_REVIEW");
    let sweeper = world.sweeper();
    sweeper.run().await;
    world.receiver.fail_next(10, 503);
    world.asc.set_version_state("v1", "REJECTED");
    assert_eq!(sweeper.run().await.delivery_attempts, 1);
    for _ in 0..8 {
        world.advance(2 * 3600);
        sweeper.deliver_due().await;
    }
    assert_eq!(world.receiver.requests().len(), 6);
    let history = world.events().await?;
    let delivery = &history[0].deliveries[0];
    assert_eq!(delivery.status, DeliveryStatus::Failed);
    assert_eq!(delivery.attempts.len(), 6);
    assert!(delivery.attempts.iter().all(|a| a.status_code == Some(503)));
    assert_eq!(delivery.next_attempt_at, None, "given up");
    world.assert_every_asc_request_was_valid(&[]);
    Ok(())
}

async fn revoked_key_becomes_invalid_once_and_is_no_longer_swept(backend: Backend) -> TestResult {
    let world = World::new(backend).await?;
    world.add_version("v1", "IN_REVIEW");
    let sweeper = world.sweeper();
    sweeper.run().await;

    world
        .asc
        .set_failure(&world.key.key_id, Failure::Unauthorized);
    world.advance(60);
    let mark = world.asc.total_requests();
    let report = sweeper.run().await;
    assert_eq!((report.events, report.keys_skipped), (1, 1));
    assert_eq!(
        world.asc_answers_since(mark),
        [("/v1/apps".to_owned(), 401)],
        "a 401 is not retried"
    );
    let key = world.key_record().await?;
    assert_eq!(key.status, KeyStatus::Invalid);
    assert_eq!(key.status_code, Some(KeyStatusCode::NotAuthorized));
    let (status, shown) = world
        .app
        .get(&world.team.token, &format!("/v1/keys/{}", world.key_record))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (&shown["status"], &shown["status_code"]),
        (&json!("invalid"), &json!("not_authorized"))
    );
    let bodies = world.webhooks();
    assert_eq!(types_of(&bodies), ["shipwatch.key.status_changed"]);
    let data = &bodies[0]["data"];
    assert_eq!(data["old_status"], "valid");
    assert_eq!(data["new_status"], "invalid");
    assert_eq!(data["code"], "not_authorized");
    assert_eq!(data["key"]["key_id"], world.key.key_id.as_str());
    assert_eq!(data["key"]["id"], world.key_record.as_str());

    let asked = world.asked();
    world.advance(60);
    let later = sweeper.run().await;
    assert_eq!((later.keys, later.events, later.asc_requests), (0, 0, 0));
    assert_eq!(world.asked(), asked, "an invalid key is not swept");
    assert_eq!(world.receiver.requests().len(), 1, "announced once");
    world.assert_every_asc_request_was_valid(&[401]);
    Ok(())
}

async fn two_sweeps_reading_the_same_key_announce_its_revocation_once(
    backend: Backend,
) -> TestResult {
    let world = World::new(backend).await?;
    world.add_version("v1", "IN_REVIEW");
    let (first, second) = (world.sweeper(), world.second_sweeper()?);
    first.run().await;
    let validate = format!("/v1/keys/{}/validate", world.key_record);
    for round in 1..=5 {
        world
            .asc
            .set_failure(&world.key.key_id, Failure::Unauthorized);
        world.advance(60);
        let (a, b) = tokio::join!(first.run(), second.run());
        assert_eq!(a.events + b.events, 1, "round {round}: announced once");
        assert_eq!(world.key_record().await?.status, KeyStatus::Invalid);
        let revoked = world
            .webhooks()
            .iter()
            .filter(|b| {
                b["type"] == "shipwatch.key.status_changed" && b["data"]["new_status"] == "invalid"
            })
            .count();
        assert_eq!(revoked, round, "round {round}");

        // The key is fixed on Apple's side and validated again through the API.
        world.asc.clear_failure(&world.key.key_id);
        let (status, answer) = world
            .app
            .post_json(&world.team.token, &validate, &json!({}))
            .await;
        assert_eq!(status, 202, "{answer}");
        let key = world
            .app
            .wait_for_key(&world.team.token, world.key_record.as_str(), |k| {
                k["status"] == "valid"
            })
            .await;
        assert_eq!(key["status_code"], Value::Null);
    }
    world.assert_every_asc_request_was_valid(&[401]);
    Ok(())
}

async fn agreements_block_is_announced_once_and_recovery_too(backend: Backend) -> TestResult {
    let world = World::new(backend).await?;
    world.add_version("v1", "IN_REVIEW");
    let sweeper = world.sweeper();
    sweeper.run().await;

    world
        .asc
        .set_failure(&world.key.key_id, Failure::AgreementsMissing);
    world.advance(60);
    assert_eq!(sweeper.run().await.events, 1);
    let key = world.key_record().await?;
    assert_eq!(key.status, KeyStatus::ActionRequired);
    assert_eq!(key.status_code, Some(KeyStatusCode::AgreementsRequired));
    world.advance(60);
    let asked = world.asked();
    assert_eq!(sweeper.run().await.events, 0, "not repeated while blocked");
    assert_eq!(world.asked(), asked + 1, "a blocked key is still looked at");

    // Accepted: the next sweep reads again, the key is valid, and the change meanwhile is seen.
    world.asc.clear_failure(&world.key.key_id);
    world
        .asc
        .set_version_state("v1", "PENDING_DEVELOPER_RELEASE");
    world.advance(60);
    assert_eq!(sweeper.run().await.events, 2);
    assert_eq!(world.key_record().await?.status, KeyStatus::Valid);

    let bodies = world.webhooks();
    assert_eq!(bodies.len(), 3);
    assert_eq!(bodies[0]["type"], "shipwatch.account.action_required");
    assert_eq!(bodies[0]["data"]["code"], "agreements_required");
    assert_eq!(
        bodies[0]["data"]["key"]["key_id"],
        world.key.key_id.as_str()
    );
    assert!(
        bodies[0]["data"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert_eq!(
        sorted(types_of(&bodies[1..])),
        [
            "shipwatch.app_version.state_changed",
            "shipwatch.key.status_changed"
        ]
    );
    let recovered = bodies
        .iter()
        .find(|b| b["type"] == "shipwatch.key.status_changed")
        .ok_or("recovery event")?;
    assert_eq!(recovered["data"]["old_status"], "action_required");
    assert_eq!(recovered["data"]["new_status"], "valid");
    world.assert_every_asc_request_was_valid(&[403]);
    Ok(())
}

async fn unknown_future_states_pass_through(backend: Backend) -> TestResult {
    let world = World::new(backend).await?;
    world.add_version("v1", "IN_REVIEW");
    world.add_build("b1", "VALID", Some("IN_BETA_TESTING"), 1);
    let sweeper = world.sweeper();
    sweeper.run().await;
    world.asc.set_version_state("v1", "AWAITING_ORBITAL_REVIEW");
    world
        .asc
        .set_build_external_state("b1", Some("BETA_IN_SPACE"));
    assert_eq!(sweeper.run().await.events, 2);
    let bodies = world.webhooks();
    let new_states: Vec<&str> = bodies
        .iter()
        .filter_map(|b| b["data"]["new_state"].as_str())
        .collect();
    assert_eq!(
        sorted(new_states),
        ["AWAITING_ORBITAL_REVIEW", "BETA_IN_SPACE"]
    );
    world.assert_every_asc_request_was_valid(&[]);
    Ok(())
}

async fn rate_limit_skips_the_key_without_events_until_it_resets(backend: Backend) -> TestResult {
    let world = World::new(backend).await?;
    world.add_version("v1", "IN_REVIEW");
    let sweeper = world.sweeper();
    sweeper.run().await;

    world.asc.set_version_state("v1", "REJECTED");
    world.asc.set_failure(
        &world.key.key_id,
        Failure::RateLimited {
            retry_after: Some(Duration::from_secs(120)),
        },
    );
    world.advance(60);
    let mark = world.asc.total_requests();
    let limited = sweeper.run().await;
    assert_eq!((limited.events, limited.keys_skipped), (0, 1));
    assert_eq!(limited.asc_requests, 1);
    assert_eq!(
        world.asc_answers_since(mark),
        [("/v1/apps".to_owned(), 429)],
        "no retry after a 429"
    );
    assert_eq!(world.key_record().await?.status, KeyStatus::Valid);

    // Still inside Retry-After: the key is not asked at all (the fake would still refuse).
    world.advance(60);
    let waiting = sweeper.run().await;
    assert_eq!(
        (waiting.events, waiting.asc_requests),
        (0, 0),
        "Retry-After honoured"
    );
    assert_eq!(world.asc.total_requests(), mark + 1);

    // Apple's answer also said the hour's allowance is spent (`user-hour-rem:0`): past both the
    // Retry-After and the hour, the key is read again and the change meanwhile is reported once.
    world.asc.clear_failure(&world.key.key_id);
    world.advance(3600);
    assert_eq!(sweeper.run().await.events, 1);
    let bodies = world.webhooks();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["data"]["old_state"], "IN_REVIEW");
    assert_eq!(bodies[0]["data"]["new_state"], "REJECTED");
    world.assert_every_asc_request_was_valid(&[429]);
    Ok(())
}

async fn server_errors_are_retried_briefly_then_the_key_is_skipped(backend: Backend) -> TestResult {
    let world = World::new(backend).await?;
    world.add_version("v1", "IN_REVIEW");
    let sweeper = world.sweeper();
    sweeper.run().await;

    world
        .asc
        .set_version_state("v1", "PENDING_DEVELOPER_RELEASE");
    world.gate.fail_next(2, Failure::ServiceUnavailable);
    let mark = world.asc.total_requests();
    let retried = sweeper.run().await;
    assert_eq!(
        (retried.events, retried.keys_skipped),
        (1, 0),
        "two retries are enough"
    );
    assert_eq!(
        world.asc_answers_since(mark),
        [
            ("/v1/apps".to_owned(), 503),
            ("/v1/apps".to_owned(), 503),
            ("/v1/apps".to_owned(), 200),
            ("/v1/builds".to_owned(), 200),
            // The version entered PENDING_DEVELOPER_RELEASE: is a phased release set up?
            (
                format!("/v1/appStoreVersions/v1{PHASED_RELEASE_SUFFIX}"),
                404
            ),
        ]
    );

    world.asc.set_version_state("v1", "READY_FOR_DISTRIBUTION");
    world.gate.fail_next(3, Failure::ServerError);
    let mark = world.asc.total_requests();
    let skipped = sweeper.run().await;
    assert_eq!((skipped.events, skipped.keys_skipped), (0, 1));
    assert_eq!(
        world.asc_answers_since(mark),
        [
            ("/v1/apps".to_owned(), 500),
            ("/v1/apps".to_owned(), 500),
            ("/v1/apps".to_owned(), 500),
        ],
        "one try and two retries, then the key is skipped"
    );
    assert_eq!(
        world.key_record().await?.status,
        KeyStatus::Valid,
        "an outage changes no key"
    );
    assert_eq!(
        sweeper.run().await.events,
        1,
        "reported once Apple answers again"
    );
    let bodies = world.webhooks();
    let steps: Vec<(&str, &str)> = bodies
        .iter()
        .filter_map(|b| {
            Some((
                b["data"]["old_state"].as_str()?,
                b["data"]["new_state"].as_str()?,
            ))
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("IN_REVIEW", "PENDING_DEVELOPER_RELEASE"),
            ("PENDING_DEVELOPER_RELEASE", "READY_FOR_DISTRIBUTION"),
        ]
    );
    world.assert_every_asc_request_was_valid(&[500, 503]);
    Ok(())
}

async fn phased_release_is_followed_while_in_flight(backend: Backend) -> TestResult {
    let world = World::new(backend).await?;
    world.add_version("v1", "IN_REVIEW");
    let sweeper = world.sweeper();
    sweeper.run().await;

    world.asc.set_version_state("v1", "READY_FOR_DISTRIBUTION");
    let phased =
        |state: &str, day: u32| Some(FakePhasedRelease::new("phased-v1", state, Some(day)));
    world.asc.set_phased_release("v1", phased("ACTIVE", 1));
    let started = sweeper.run().await;
    assert_eq!((started.events, started.asc_requests), (2, 3));
    world.asc.set_phased_release("v1", phased("PAUSED", 3));
    assert_eq!(sweeper.run().await.events, 1);
    world.asc.set_phased_release("v1", phased("COMPLETE", 7));
    assert_eq!(sweeper.run().await.events, 1);
    let mark = world.asc.total_requests();
    let settled = sweeper.run().await;
    assert_eq!(
        (settled.events, settled.asc_requests),
        (0, 2),
        "complete: no longer read"
    );
    assert!(
        world
            .asc_requests_since(mark)
            .iter()
            .all(|r| !r.path.ends_with(PHASED_RELEASE_SUFFIX))
    );

    let bodies = world.webhooks();
    let steps: Vec<(Value, Value, Value)> = bodies
        .iter()
        .filter(|b| b["type"] == "shipwatch.phased_release.state_changed")
        .map(|b| {
            (
                b["data"]["old_state"].clone(),
                b["data"]["new_state"].clone(),
                b["data"]["current_day_number"].clone(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            (Value::Null, json!("ACTIVE"), json!(1)),
            (json!("ACTIVE"), json!("PAUSED"), json!(3)),
            (json!("PAUSED"), json!("COMPLETE"), json!(7)),
        ]
    );
    world.assert_every_asc_request_was_valid(&[]);
    Ok(())
}

async fn a_phased_release_running_at_the_first_sweep_is_followed(backend: Backend) -> TestResult {
    let world = World::new(backend).await?;
    world.add_version("v1", "READY_FOR_DISTRIBUTION");
    let phased =
        |state: &str, day: u32| Some(FakePhasedRelease::new("phased-v1", state, Some(day)));
    world.asc.set_phased_release("v1", phased("ACTIVE", 3));
    let sweeper = world.sweeper();
    let baseline = sweeper.run().await;
    assert_eq!(
        (baseline.events, baseline.asc_requests),
        (0, 3),
        "a silent baseline that reads the live version's rollout once"
    );
    world.asc.set_phased_release("v1", phased("PAUSED", 3));
    assert_eq!(sweeper.run().await.events, 1, "paused");
    world.asc.set_phased_release("v1", phased("ACTIVE", 4));
    assert_eq!(sweeper.run().await.events, 1, "resumed");
    world.asc.set_phased_release("v1", phased("COMPLETE", 7));
    assert_eq!(sweeper.run().await.events, 1, "complete");
    let settled = sweeper.run().await;
    assert_eq!((settled.events, settled.asc_requests), (0, 2));

    let steps: Vec<(Value, Value)> = world
        .webhooks()
        .iter()
        .filter(|b| b["type"] == "shipwatch.phased_release.state_changed")
        .map(|b| {
            (
                b["data"]["old_state"].clone(),
                b["data"]["new_state"].clone(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            (json!("ACTIVE"), json!("PAUSED")),
            (json!("PAUSED"), json!("ACTIVE")),
            (json!("ACTIVE"), json!("COMPLETE")),
        ]
    );
    world.assert_every_asc_request_was_valid(&[]);
    Ok(())
}

async fn an_empty_answer_that_passes_announces_nothing(backend: Backend) -> TestResult {
    let world = World::new(backend).await?;
    world.add_version("v1", "IN_REVIEW");
    world.add_build("b1", "VALID", Some("IN_BETA_TESTING"), 1);
    let sweeper = world.sweeper();
    sweeper.run().await;

    for (apps, builds) in [(true, false), (false, true), (true, true)] {
        if apps {
            world.gate.blank_next("/v1/apps");
        }
        if builds {
            world.gate.blank_next("/v1/builds");
        }
        let glitch = sweeper.run().await;
        let after = sweeper.run().await;
        assert_eq!(
            (glitch.events, after.events),
            (0, 0),
            "empty apps: {apps}, empty builds: {builds}"
        );
        assert!(
            lock(&world.gate.state.blanks).is_empty(),
            "the glitch happened"
        );
    }
    assert!(world.webhooks().is_empty(), "{:?}", world.webhooks());

    // A real change afterwards is still news, compared with the state before the glitches.
    world
        .asc
        .set_version_state("v1", "PENDING_DEVELOPER_RELEASE");
    assert_eq!(sweeper.run().await.events, 1);
    let bodies = world.webhooks();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["data"]["old_state"], "IN_REVIEW");
    Ok(())
}

async fn app_store_connect_faults_end_the_keys_sweep_in_time_without_false_events(
    backend: Backend,
) -> TestResult {
    let world = World::new(backend).await?;
    world.add_version("v1", "IN_REVIEW");
    world.add_build("b1", "VALID", Some("IN_BETA_TESTING"), 1);
    let deadline = Duration::from_secs(2);
    let sweeper = world.sweeper_with(SweepConfig {
        key_deadline: deadline,
        ..SweepConfig::default()
    })?;
    sweeper.run().await;

    let html = RawAnswer::Body {
        status: 502,
        content_type: "text/html",
        body: "<html><body><h1>502 Bad Gateway</h1></body></html>",
    };
    let garbage = RawAnswer::Body {
        status: 200,
        content_type: "application/json",
        body: "{\"data\": [{\"id\": ",
    };
    type Inject = Box<dyn Fn(&World)>;
    let faults: Vec<(&str, Inject)> = vec![
        (
            "500",
            Box::new(|w: &World| w.gate.fail_next(3, Failure::ServerError)),
        ),
        (
            "503",
            Box::new(|w: &World| w.gate.fail_next(3, Failure::ServiceUnavailable)),
        ),
        (
            "HTML 502",
            Box::new(move |w: &World| w.gate.answer_next(3, html.clone())),
        ),
        (
            "garbage",
            Box::new(move |w: &World| w.gate.answer_next(1, garbage.clone())),
        ),
        (
            "dropped connection",
            Box::new(|w: &World| w.gate.answer_next(3, RawAnswer::Truncated)),
        ),
        (
            "hang",
            Box::new(|w: &World| {
                w.gate
                    .answer_next(1, RawAnswer::Hang(Duration::from_secs(20)))
            }),
        ),
    ];
    for (name, inject) in &faults {
        world.advance(60);
        inject(&world);
        let started = std::time::Instant::now();
        let faulty = sweeper.run().await;
        assert!(
            started.elapsed() < deadline + Duration::from_secs(3),
            "{name}: the key's sweep ended within its deadline ({:?})",
            started.elapsed()
        );
        assert_eq!(
            (faulty.events, faulty.keys_skipped),
            (0, 1),
            "{name}: skipped, no event"
        );
        world.advance(60);
        let next = sweeper.run().await;
        assert_eq!(
            (next.events, next.keys),
            (0, 1),
            "{name}: read again, nothing to announce"
        );
        assert_eq!(world.key_record().await?.status, KeyStatus::Valid, "{name}");
    }

    // 429 with Retry-After: skipped until then, read again afterwards, still no false event.
    world.advance(60);
    world.gate.fail_next(
        1,
        Failure::RateLimited {
            retry_after: Some(Duration::from_secs(120)),
        },
    );
    assert_eq!(sweeper.run().await.keys_skipped, 1);
    world.advance(60);
    let waiting = sweeper.run().await;
    assert_eq!(
        (waiting.keys_skipped, waiting.asc_requests),
        (1, 0),
        "Retry-After honoured"
    );
    // Apple's answer also said the hour's allowance is used up: read again in the next hour.
    world.advance(3600);
    assert_eq!(sweeper.run().await.keys, 1);

    assert!(
        world.webhooks().is_empty(),
        "no false events: {:?}",
        world.webhooks()
    );
    world.asc.set_version_state("v1", "REJECTED");
    world.advance(60);
    assert_eq!(sweeper.run().await.events, 1, "a real change is still news");
    Ok(())
}

/// The exact App Store Connect requests of one key's sweep, as the fake received them.
fn paths(requests: &[AscRequest]) -> Vec<String> {
    requests.iter().map(|r| r.path.clone()).collect()
}

async fn requests_per_key_stay_flat_as_apps_grow(backend: Backend) -> TestResult {
    let mut table = Vec::new();
    for apps in [1usize, 20, 150] {
        let world = World::new(backend).await?;
        world.asc.remove_app(APP);
        for n in 0..apps {
            let app = format!("{}", 6_460_000_000u64 + n as u64);
            world.asc.add_app(
                &world.key.issuer_id,
                FakeApp::new(&app, &format!("App {n}"), &format!("com.example.app{n}")),
            );
            world.asc.add_version(FakeVersion::new(
                &format!("v{n}"),
                &app,
                "1.0",
                "IOS",
                "READY_FOR_DISTRIBUTION",
            ));
            world.asc.add_build(
                FakeBuild::new(&format!("b{n}"), &app, "1", "1.0")
                    .processing_state("VALID")
                    .external_state(Some("IN_BETA_TESTING"))
                    .uploaded(uploaded(n as i64)),
            );
        }
        let sweeper = world.sweeper();
        let count_sweep = |report_requests: u64, mark: usize| {
            let received = world.asc_requests_since(mark);
            assert_eq!(
                received.len() as u64,
                report_requests,
                "{apps} apps: the report counts what App Store Connect received"
            );
            received
        };

        let mark = world.asc.total_requests();
        let baseline = sweeper.run().await;
        let baseline_requests = count_sweep(baseline.asc_requests, mark);
        world.advance(60);
        let mark = world.asc.total_requests();
        let steady = sweeper.run().await;
        let steady_requests = count_sweep(steady.asc_requests, mark);
        world
            .asc
            .set_version_state("v0", "REPLACED_WITH_NEW_VERSION");
        world.asc.add_version(
            FakeVersion::new(
                "v-next",
                &format!("{}", 6_460_000_000u64),
                "1.1",
                "IOS",
                "PENDING_DEVELOPER_RELEASE",
            )
            .created(Utc::now() + TimeDelta::seconds(1)),
        );
        world.advance(60);
        let mark = world.asc.total_requests();
        let release = sweeper.run().await;
        let release_requests = count_sweep(release.asc_requests, mark);

        assert_eq!(baseline.apps, apps);
        // The baseline reads each live version's phased release once (a rollout already under
        // way is followed from then on); none has one, so later sweeps read none of them again.
        let mut expected_baseline = vec!["/v1/apps".to_owned(), "/v1/builds".to_owned()];
        let mut phased_reads: Vec<String> = (0..apps)
            .map(|n| format!("/v1/appStoreVersions/v{n}{PHASED_RELEASE_SUFFIX}"))
            .collect();
        let mut baseline_paths = paths(&baseline_requests);
        baseline_paths[2..].sort();
        phased_reads.sort();
        expected_baseline.extend(phased_reads);
        assert_eq!(baseline_paths, expected_baseline, "{apps} apps: baseline");
        assert_eq!(
            paths(&steady_requests),
            ["/v1/apps", "/v1/builds"],
            "{apps} apps: unchanged"
        );
        assert_eq!(steady.events, 0);
        assert_eq!(
            paths(&release_requests),
            [
                "/v1/apps",
                "/v1/builds",
                "/v1/appStoreVersions/v-next/appStoreVersionPhasedRelease"
            ],
            "{apps} apps: one version in flight"
        );
        assert_eq!(release.events, 2, "v0 replaced, v-next new");
        // All apps and builds came on one page each, at the spec's maximum page size.
        assert_eq!(baseline_requests[0].param("limit"), Some("200"));
        assert_eq!(baseline_requests[1].param("limit"), Some("200"));
        world.assert_every_asc_request_was_valid(&[]);
        table.push((
            apps,
            baseline.asc_requests,
            steady.asc_requests,
            release.asc_requests,
        ));
    }
    println!(
        "ASC requests per key per sweep ({backend:?} store)\n apps | baseline | unchanged | one version in flight"
    );
    for (apps, baseline, steady, release) in table {
        println!("{apps:>5} | {baseline:>8} | {steady:>9} | {release:>21}");
    }
    Ok(())
}
