//! The sweep end to end on the embedded store: a scripted App Store Connect (a small fake served
//! on 127.0.0.1 by this file), real HTTP delivery to local receivers, and a manual clock.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use shipwatch_adapters::delivery::HttpDeliverer;
use shipwatch_service::domain::signing::generate_signing_secret;
use shipwatch_service::model::*;
use shipwatch_service::ports::Stores;
use shipwatch_service::sweep::{SweepConfig, SweepService};
use shipwatch_shared::asc::{AscClient, AscConfig};
use shipwatch_shared::clock::{Clock, ManualClock};
use shipwatch_tests::receiver::{Receiver, RecordedRequest};
use shipwatch_tests::test_keys::TestKey;

type TestResult = Result<(), Box<dyn std::error::Error>>;

// ---------------------------------------------------------------------------------------------
// A scripted App Store Connect account.

#[derive(Clone, Debug)]
struct FakeVersion {
    id: String,
    version_string: String,
    state: String,
}

#[derive(Clone, Debug)]
struct FakeApp {
    id: String,
    name: String,
    versions: Vec<FakeVersion>,
}

#[derive(Clone, Debug)]
struct FakeBuild {
    id: String,
    app_id: String,
    number: String,
    short_version: String,
    processing: String,
    external: Option<String>,
    uploaded: DateTime<Utc>,
}

#[derive(Default)]
struct Account {
    apps: Vec<FakeApp>,
    builds: Vec<FakeBuild>,
    /// version id -> (phasedReleaseState, currentDayNumber)
    phased: HashMap<String, (String, u32)>,
    /// Answers that replace the next requests' answers: (status, headers, body).
    failures: VecDeque<(u16, Vec<(&'static str, String)>, Value)>,
    /// Every request path, in order.
    requests: Vec<String>,
}

#[derive(Clone)]
struct FakeAsc {
    url: String,
    account: Arc<Mutex<Account>>,
}

fn lock(account: &Mutex<Account>) -> std::sync::MutexGuard<'_, Account> {
    account
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl FakeAsc {
    async fn start() -> std::io::Result<Self> {
        let account = Arc::new(Mutex::new(Account::default()));
        let router = Router::new()
            .route("/v1/apps", get(apps))
            .route("/v1/builds", get(builds))
            .route(
                "/v1/appStoreVersions/{id}/appStoreVersionPhasedRelease",
                get(phased_release),
            )
            .with_state(account.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self { url, account })
    }

    fn edit(&self, change: impl FnOnce(&mut Account)) {
        change(&mut lock(&self.account));
    }

    fn requests(&self) -> usize {
        lock(&self.account).requests.len()
    }

    fn add_app(&self, id: &str, name: &str, versions: &[(&str, &str)]) {
        self.edit(|account| {
            account.apps.push(FakeApp {
                id: id.into(),
                name: name.into(),
                versions: versions
                    .iter()
                    .map(|(version_id, state)| FakeVersion {
                        id: (*version_id).into(),
                        version_string: "2.1".into(),
                        state: (*state).into(),
                    })
                    .collect(),
            })
        });
    }

    fn set_version_state(&self, version_id: &str, state: &str) {
        self.edit(|account| {
            for version in account
                .apps
                .iter_mut()
                .flat_map(|app| app.versions.iter_mut())
            {
                if version.id == version_id {
                    version.state = state.into();
                }
            }
        });
    }

    fn upsert_build(&self, id: &str, app_id: &str, processing: &str, external: Option<&str>) {
        self.edit(|account| {
            let uploaded = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
                + TimeDelta::seconds(account.builds.len() as i64);
            match account.builds.iter_mut().find(|build| build.id == id) {
                Some(build) => {
                    build.processing = processing.into();
                    build.external = external.map(str::to_owned);
                }
                None => account.builds.push(FakeBuild {
                    id: id.into(),
                    app_id: app_id.into(),
                    number: "42".into(),
                    short_version: "2.1".into(),
                    processing: processing.into(),
                    external: external.map(str::to_owned),
                    uploaded,
                }),
            }
        });
    }

    fn fail_next(&self, count: usize, status: u16, code: &str, headers: &[(&'static str, &str)]) {
        let body = json!({"errors": [{"status": status.to_string(), "code": code,
            "title": "scripted failure", "detail": "scripted failure"}]});
        self.edit(|account| {
            for _ in 0..count {
                let headers = headers.iter().map(|(n, v)| (*n, (*v).to_owned())).collect();
                account.failures.push_back((status, headers, body.clone()));
            }
        });
    }
}

/// Records the request; answers with the next scripted failure if there is one.
fn take_failure(account: &Mutex<Account>, uri: &Uri) -> Option<Response> {
    let mut account = lock(account);
    account.requests.push(uri.to_string());
    let (status, headers, body) = account.failures.pop_front()?;
    let mut response_headers = HeaderMap::new();
    for (name, value) in headers {
        if let Ok(value) = value.parse() {
            response_headers.insert(name, value);
        }
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Some((status, response_headers, axum::Json(body)).into_response())
}

async fn apps(State(account): State<Arc<Mutex<Account>>>, uri: Uri) -> Response {
    if let Some(failure) = take_failure(&account, &uri) {
        return failure;
    }
    let account = lock(&account);
    let data: Vec<Value> = account
        .apps
        .iter()
        .map(|app| {
            let linked: Vec<Value> = app
                .versions
                .iter()
                .map(|v| json!({"type": "appStoreVersions", "id": v.id}))
                .collect();
            json!({"type": "apps", "id": app.id,
                "attributes": {"name": app.name, "bundleId": format!("com.example.{}", app.id)},
                "relationships": {"appStoreVersions": {"data": linked,
                    "meta": {"paging": {"total": app.versions.len(), "limit": 50}}}}})
        })
        .collect();
    let included: Vec<Value> = account
        .apps
        .iter()
        .flat_map(|app| app.versions.iter())
        .map(|v| {
            json!({"type": "appStoreVersions", "id": v.id, "attributes": {
                "platform": "IOS", "versionString": v.version_string,
                "appVersionState": v.state, "releaseType": "MANUAL"}})
        })
        .collect();
    axum::Json(json!({"data": data, "included": included,
        "links": {"self": "/v1/apps"}, "meta": {"paging": {"total": data.len(), "limit": 200}}}))
    .into_response()
}

async fn builds(State(account): State<Arc<Mutex<Account>>>, uri: Uri) -> Response {
    if let Some(failure) = take_failure(&account, &uri) {
        return failure;
    }
    let account = lock(&account);
    let mut builds = account.builds.clone();
    builds.sort_by(|a, b| b.uploaded.cmp(&a.uploaded));
    let mut included = Vec::new();
    let data: Vec<Value> = builds
        .iter()
        .map(|build| {
            let detail = format!("detail-{}", build.id);
            let pre = format!("pre-{}", build.id);
            included.push(json!({"type": "preReleaseVersions", "id": pre,
                "attributes": {"version": build.short_version, "platform": "IOS"}}));
            included.push(json!({"type": "buildBetaDetails", "id": detail,
                "attributes": {"internalBuildState": "IN_BETA_TESTING",
                    "externalBuildState": build.external}}));
            json!({"type": "builds", "id": build.id,
                "attributes": {"version": build.number, "uploadedDate": build.uploaded.to_rfc3339(),
                    "expired": false, "processingState": build.processing},
                "relationships": {
                    "app": {"data": {"type": "apps", "id": build.app_id}},
                    "preReleaseVersion": {"data": {"type": "preReleaseVersions", "id": pre}},
                    "buildBetaDetail": {"data": {"type": "buildBetaDetails", "id": detail}}}})
        })
        .collect();
    axum::Json(
        json!({"data": data, "included": included, "links": {"self": "/v1/builds"},
        "meta": {"paging": {"total": data.len(), "limit": 200}}}),
    )
    .into_response()
}

async fn phased_release(
    State(account): State<Arc<Mutex<Account>>>,
    Path(version_id): Path<String>,
    uri: Uri,
) -> Response {
    if let Some(failure) = take_failure(&account, &uri) {
        return failure;
    }
    let account = lock(&account);
    match account.phased.get(&version_id) {
        Some((state, day)) => axum::Json(json!({"data": {
            "type": "appStoreVersionPhasedReleases", "id": format!("phased-{version_id}"),
            "attributes": {"phasedReleaseState": state, "currentDayNumber": day}},
            "links": {"self": uri.to_string()}}))
        .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"errors": [{"status": "404", "code": "NOT_FOUND",
                "title": "The specified resource does not exist"}]})),
        )
            .into_response(),
    }
}

// ---------------------------------------------------------------------------------------------
// A team with one valid key, one webhook destination and a catch-all workflow.

struct World {
    stores: Stores,
    clock: Arc<ManualClock>,
    asc: FakeAsc,
    receiver: Receiver,
    team: TeamId,
    key: KeyRecordId,
    config: SweepConfig,
    _dir: tempfile::TempDir,
}

fn quick_config() -> SweepConfig {
    SweepConfig {
        asc_retry_backoff: Duration::from_millis(5),
        ..SweepConfig::default()
    }
}

impl World {
    async fn new() -> Result<Self, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let stores = shipwatch_adapters::embedded::stores(dir.path())?;
        Self::on(stores, dir).await
    }

    /// The same world on DynamoDB + Secrets Manager (moto).
    async fn on_aws() -> Result<Self, Box<dyn std::error::Error>> {
        let stores = shipwatch_tests::moto::moto()
            .await
            .fresh_stores("sweep")
            .await;
        Self::on(stores, tempfile::tempdir()?).await
    }

    async fn on(
        stores: Stores,
        dir: tempfile::TempDir,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let clock = Arc::new(ManualClock::starting_now());
        let asc = FakeAsc::start().await?;
        let receiver = Receiver::start().await?;
        let now = clock.now();

        let team = TeamId::generate();
        stores
            .teams
            .insert_team(&Team {
                id: team.clone(),
                name: "Team".into(),
                token_hash: "0".repeat(64),
                created_at: now,
            })
            .await?;

        let test_key = TestKey::generate();
        let key = ApiKeyRecord {
            id: KeyRecordId::generate(),
            team_id: team.clone(),
            name: "CI".into(),
            key_id: test_key.key_id.clone(),
            issuer_id: test_key.issuer_id.clone(),
            public_key_fingerprint: test_key.expected_fingerprint(),
            status: KeyStatus::Valid,
            status_code: None,
            status_message: None,
            apps_count: None,
            validated_at: Some(now),
            last_swept_at: None,
            created_at: now,
            updated_at: now,
            validation_attempts: 0,
            next_validation_at: None,
            revision: 1,
        };
        stores
            .secrets
            .put_secret(&key.secret_name(), &SecretValue::new(test_key.pem.clone()))
            .await?;
        stores.keys.insert_key(&key).await?;

        let destination = Destination {
            id: DestinationId::generate(),
            team_id: team.clone(),
            kind: DestinationKind::Webhook,
            name: "hook".into(),
            url_hint: "http://127.0.0.1/…".into(),
            created_at: now,
        };
        let secrets = DestinationSecrets {
            url: format!("{}/hook", receiver.url()),
            signing_secret: Some(generate_signing_secret()),
        };
        stores
            .secrets
            .put_secret(
                &SecretName::for_destination(&team, &destination.id),
                &SecretValue::new(serde_json::to_string(&secrets)?),
            )
            .await?;
        stores.destinations.insert_destination(&destination).await?;
        stores
            .workflows
            .insert_workflow(&Workflow {
                id: WorkflowId::generate(),
                team_id: team.clone(),
                name: "everything".into(),
                destination_id: destination.id.clone(),
                app_ids: vec!["*".into()],
                event_types: vec!["*".into()],
                created_at: now,
            })
            .await?;
        Ok(Self {
            stores,
            clock,
            asc,
            receiver,
            team,
            key: key.id,
            config: quick_config(),
            _dir: dir,
        })
    }

    /// A sweeper as one process would have it (overlap tests build several).
    fn sweeper(&self) -> Result<SweepService, Box<dyn std::error::Error>> {
        let asc = AscClient::with_clock(AscConfig::new(&self.asc.url)?, self.clock.clone())?;
        let deliverer = Arc::new(HttpDeliverer::new(true, Duration::from_secs(5))?);
        Ok(SweepService::new(
            self.stores.clone(),
            asc,
            deliverer,
            self.clock.clone(),
            self.config.clone(),
        ))
    }

    async fn events(&self) -> Result<Vec<EventWithDeliveries>, Box<dyn std::error::Error>> {
        let page = self
            .stores
            .sweeps
            .list_events(
                &self.team,
                &EventQuery {
                    limit: 100,
                    ..EventQuery::default()
                },
            )
            .await?;
        Ok(page.items)
    }

    async fn key(&self) -> Result<ApiKeyRecord, Box<dyn std::error::Error>> {
        Ok(self
            .stores
            .keys
            .get_key_by_id(&self.key)
            .await?
            .ok_or("key vanished")?)
    }

    async fn snapshot_version(&self) -> Result<u64, Box<dyn std::error::Error>> {
        Ok(self
            .stores
            .sweeps
            .get_snapshot(&self.key)
            .await?
            .map_or(0, |s| s.version))
    }

    fn advance(&self, seconds: i64) {
        self.clock.advance_by(TimeDelta::seconds(seconds));
    }
}

fn webhook_types(requests: &[RecordedRequest]) -> Vec<String> {
    requests
        .iter()
        .map(|request| {
            request.json()["type"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn scripted_transitions_are_delivered_exactly_once() -> TestResult {
    scripted_transitions(World::new().await?).await
}

#[tokio::test]
async fn scripted_transitions_are_delivered_exactly_once_on_aws() -> TestResult {
    scripted_transitions(World::on_aws().await?).await
}

#[tokio::test]
async fn overlapping_sweeps_never_duplicate_on_aws() -> TestResult {
    overlapping_sweeps(World::on_aws().await?).await
}

async fn scripted_transitions(world: World) -> TestResult {
    world
        .asc
        .add_app("app1", "Hello", &[("v1", "WAITING_FOR_REVIEW")]);
    world
        .asc
        .upsert_build("b1", "app1", "VALID", Some("IN_BETA_TESTING"));
    let sweeper = world.sweeper()?;

    let baseline = sweeper.run().await;
    assert_eq!((baseline.keys, baseline.apps, baseline.events), (1, 1, 0));
    assert_eq!(baseline.asc_requests, 2);
    assert!(world.receiver.requests().is_empty(), "baseline is silent");
    assert_eq!(world.snapshot_version().await?, 1);

    world.asc.set_version_state("v1", "IN_REVIEW");
    world
        .asc
        .upsert_build("b1", "app1", "VALID", Some("WAITING_FOR_BETA_REVIEW"));
    world.asc.upsert_build("b2", "app1", "PROCESSING", None);
    world.advance(60);
    let report = sweeper.run().await;
    assert_eq!(
        (report.events, report.deliveries, report.delivery_attempts),
        (3, 3, 3)
    );

    let requests = world.receiver.requests();
    let mut types = webhook_types(&requests);
    types.sort();
    assert_eq!(
        types,
        [
            "shipwatch.app_version.state_changed",
            "shipwatch.build.beta_state_changed",
            "shipwatch.build.processing_state_changed",
        ]
    );
    let version_event = requests
        .iter()
        .map(RecordedRequest::json)
        .find(|body| body["type"] == "shipwatch.app_version.state_changed")
        .ok_or("version event delivered")?;
    assert_eq!(version_event["subject"], "app1");
    assert_eq!(
        version_event["data"]["app"],
        json!({"id": "app1", "name": "Hello", "bundle_id": "com.example.app1"})
    );
    assert_eq!(version_event["data"]["old_state"], "WAITING_FOR_REVIEW");
    assert_eq!(version_event["data"]["new_state"], "IN_REVIEW");
    for request in &requests {
        assert_eq!(request.header("webhook-id"), request.json()["id"].as_str());
    }

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
    Ok(())
}

#[tokio::test]
async fn overlapping_sweeps_never_duplicate_a_transition() -> TestResult {
    overlapping_sweeps(World::new().await?).await
}

async fn overlapping_sweeps(world: World) -> TestResult {
    world
        .asc
        .add_app("app1", "Hello", &[("v1", "PREPARE_FOR_SUBMISSION")]);
    let (first, second) = (world.sweeper()?, world.sweeper()?);
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
    let mut webhook_ids: Vec<String> = world
        .receiver
        .requests()
        .iter()
        .filter_map(|r| r.header("webhook-id").map(str::to_owned))
        .collect();
    webhook_ids.sort();
    webhook_ids.dedup();
    assert_eq!(webhook_ids.len(), 12, "no event was sent twice");
    Ok(())
}

#[tokio::test]
async fn failing_receiver_is_retried_across_sweeps_with_the_same_webhook_id() -> TestResult {
    let world = World::new().await?;
    world.asc.add_app("app1", "Hello", &[("v1", "IN_REVIEW")]);
    let sweeper = world.sweeper()?;
    sweeper.run().await;

    world.receiver.fail_next(2, 500);
    world
        .asc
        .set_version_state("v1", "PENDING_DEVELOPER_RELEASE");
    world.advance(60);
    let first = sweeper.run().await;
    assert_eq!((first.events, first.delivery_attempts), (1, 1));

    // Not due yet: the first backoff is 30 s.
    world.advance(10);
    assert_eq!(sweeper.deliver_due().await, 0);
    world.advance(25);
    assert_eq!(sweeper.run().await.delivery_attempts, 1);
    world.advance(130);
    assert_eq!(sweeper.run().await.delivery_attempts, 1);
    world.advance(3600);
    assert_eq!(
        sweeper.run().await.delivery_attempts,
        0,
        "delivered: nothing left"
    );

    let requests = world.receiver.requests();
    assert_eq!(requests.len(), 3);
    let ids: Vec<Option<&str>> = requests.iter().map(|r| r.header("webhook-id")).collect();
    assert!(ids[0].is_some() && ids.iter().all(|id| *id == ids[0]));

    let history = world.events().await?;
    let delivery = &history[0].deliveries[0];
    assert_eq!(delivery.status, DeliveryStatus::Delivered);
    let codes: Vec<Option<u16>> = delivery.attempts.iter().map(|a| a.status_code).collect();
    assert_eq!(codes, [Some(500), Some(500), Some(200)]);
    Ok(())
}

#[tokio::test]
async fn receiver_that_never_answers_2xx_fails_after_six_attempts() -> TestResult {
    let world = World::new().await?;
    world.asc.add_app("app1", "Hello", &[("v1", "IN_REVIEW")]);
    let sweeper = world.sweeper()?;
    sweeper.run().await;
    world.receiver.fail_next(10, 503);
    world.asc.set_version_state("v1", "REJECTED");
    sweeper.run().await;
    for _ in 0..8 {
        world.advance(2 * 3600);
        sweeper.deliver_due().await;
    }
    assert_eq!(world.receiver.requests().len(), 6);
    let history = world.events().await?;
    let delivery = &history[0].deliveries[0];
    assert_eq!(delivery.status, DeliveryStatus::Failed);
    assert_eq!(delivery.attempts.len(), 6);
    Ok(())
}

#[tokio::test]
async fn revoked_key_becomes_invalid_once_and_is_no_longer_swept() -> TestResult {
    let world = World::new().await?;
    world.asc.add_app("app1", "Hello", &[("v1", "IN_REVIEW")]);
    let sweeper = world.sweeper()?;
    sweeper.run().await;

    world.asc.fail_next(5, 401, "NOT_AUTHORIZED", &[]);
    world.advance(60);
    let report = sweeper.run().await;
    assert_eq!((report.events, report.keys_skipped), (1, 1));
    let key = world.key().await?;
    assert_eq!(key.status, KeyStatus::Invalid);
    assert_eq!(key.status_code, Some(KeyStatusCode::NotAuthorized));
    let requests = world.receiver.requests();
    assert_eq!(webhook_types(&requests), ["shipwatch.key.status_changed"]);
    let data = &requests[0].json()["data"];
    assert_eq!(data["old_status"], "valid");
    assert_eq!(data["new_status"], "invalid");
    assert_eq!(data["code"], "not_authorized");
    assert_eq!(data["key"]["key_id"], key.key_id.as_str());

    let asked = world.asc.requests();
    world.advance(60);
    let later = sweeper.run().await;
    assert_eq!((later.keys, later.events), (0, 0));
    assert_eq!(world.asc.requests(), asked, "an invalid key is not swept");
    Ok(())
}

#[tokio::test]
async fn agreements_block_is_announced_once_and_recovery_too() -> TestResult {
    let world = World::new().await?;
    world.asc.add_app("app1", "Hello", &[("v1", "IN_REVIEW")]);
    let sweeper = world.sweeper()?;
    sweeper.run().await;

    let code = "FORBIDDEN.REQUIRED_AGREEMENTS_MISSING_OR_EXPIRED";
    world.asc.fail_next(2, 403, code, &[]);
    world.advance(60);
    assert_eq!(sweeper.run().await.events, 1);
    let key = world.key().await?;
    assert_eq!(key.status, KeyStatus::ActionRequired);
    assert_eq!(key.status_code, Some(KeyStatusCode::AgreementsRequired));
    world.advance(60);
    assert_eq!(sweeper.run().await.events, 0, "not repeated while blocked");

    // Accepted: the next sweep reads again, the key is valid, and the change meanwhile is seen.
    world
        .asc
        .set_version_state("v1", "PENDING_DEVELOPER_RELEASE");
    world.advance(60);
    assert_eq!(sweeper.run().await.events, 2);
    assert_eq!(world.key().await?.status, KeyStatus::Valid);

    let bodies: Vec<Value> = world
        .receiver
        .requests()
        .iter()
        .map(RecordedRequest::json)
        .collect();
    assert_eq!(bodies.len(), 3);
    assert_eq!(bodies[0]["type"], "shipwatch.account.action_required");
    assert_eq!(bodies[0]["data"]["code"], "agreements_required");
    let mut rest: Vec<&str> = bodies[1..]
        .iter()
        .filter_map(|b| b["type"].as_str())
        .collect();
    rest.sort();
    assert_eq!(
        rest,
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
    Ok(())
}

#[tokio::test]
async fn unknown_future_states_pass_through() -> TestResult {
    let world = World::new().await?;
    world.asc.add_app("app1", "Hello", &[("v1", "IN_REVIEW")]);
    world
        .asc
        .upsert_build("b1", "app1", "VALID", Some("IN_BETA_TESTING"));
    let sweeper = world.sweeper()?;
    sweeper.run().await;
    world.asc.set_version_state("v1", "AWAITING_ORBITAL_REVIEW");
    world
        .asc
        .upsert_build("b1", "app1", "VALID", Some("BETA_IN_SPACE"));
    sweeper.run().await;
    let bodies: Vec<Value> = world
        .receiver
        .requests()
        .iter()
        .map(RecordedRequest::json)
        .collect();
    let mut new_states: Vec<&str> = bodies
        .iter()
        .filter_map(|b| b["data"]["new_state"].as_str())
        .collect();
    new_states.sort();
    assert_eq!(new_states, ["AWAITING_ORBITAL_REVIEW", "BETA_IN_SPACE"]);
    Ok(())
}

#[tokio::test]
async fn rate_limit_skips_the_key_without_events_until_it_resets() -> TestResult {
    let world = World::new().await?;
    world.asc.add_app("app1", "Hello", &[("v1", "IN_REVIEW")]);
    let sweeper = world.sweeper()?;
    sweeper.run().await;

    world.asc.set_version_state("v1", "REJECTED");
    world
        .asc
        .fail_next(1, 429, "RATE_LIMIT_EXCEEDED", &[("retry-after", "120")]);
    world.advance(60);
    let limited = sweeper.run().await;
    assert_eq!((limited.events, limited.keys_skipped), (0, 1));
    assert_eq!(world.key().await?.status, KeyStatus::Valid);
    assert_eq!(world.asc.requests(), 3, "no retry after a 429");

    world.advance(60);
    let waiting = sweeper.run().await;
    assert_eq!(
        (waiting.events, waiting.asc_requests),
        (0, 0),
        "Retry-After honoured"
    );

    world.advance(61);
    assert_eq!(sweeper.run().await.events, 1);
    assert_eq!(world.receiver.requests().len(), 1);
    Ok(())
}

#[tokio::test]
async fn server_errors_are_retried_briefly_then_the_key_is_skipped() -> TestResult {
    let world = World::new().await?;
    world.asc.add_app("app1", "Hello", &[("v1", "IN_REVIEW")]);
    let sweeper = world.sweeper()?;
    sweeper.run().await;

    world
        .asc
        .set_version_state("v1", "PENDING_DEVELOPER_RELEASE");
    world.asc.fail_next(2, 503, "UNAVAILABLE", &[]);
    let retried = sweeper.run().await;
    assert_eq!(
        (retried.events, retried.keys_skipped),
        (1, 0),
        "two retries are enough"
    );

    world.asc.set_version_state("v1", "READY_FOR_DISTRIBUTION");
    world.asc.fail_next(3, 500, "UNAVAILABLE", &[]);
    let skipped = sweeper.run().await;
    assert_eq!((skipped.events, skipped.keys_skipped), (0, 1));
    assert_eq!(
        world.key().await?.status,
        KeyStatus::Valid,
        "an outage changes no key"
    );
    assert_eq!(
        sweeper.run().await.events,
        1,
        "reported once Apple answers again"
    );
    Ok(())
}

#[tokio::test]
async fn phased_release_is_followed_while_in_flight() -> TestResult {
    let world = World::new().await?;
    world.asc.add_app("app1", "Hello", &[("v1", "IN_REVIEW")]);
    let sweeper = world.sweeper()?;
    sweeper.run().await;

    world.asc.set_version_state("v1", "READY_FOR_DISTRIBUTION");
    world.asc.edit(|account| {
        account.phased.insert("v1".into(), ("ACTIVE".into(), 1));
    });
    let started = sweeper.run().await;
    assert_eq!((started.events, started.asc_requests), (2, 3));
    world.asc.edit(|account| {
        account.phased.insert("v1".into(), ("PAUSED".into(), 3));
    });
    assert_eq!(sweeper.run().await.events, 1);
    world.asc.edit(|account| {
        account.phased.insert("v1".into(), ("COMPLETE".into(), 7));
    });
    assert_eq!(sweeper.run().await.events, 1);
    let settled = sweeper.run().await;
    assert_eq!(
        (settled.events, settled.asc_requests),
        (0, 2),
        "complete: no longer read"
    );

    let phased: Vec<Value> = world
        .receiver
        .requests()
        .iter()
        .map(RecordedRequest::json)
        .filter(|b| b["type"] == "shipwatch.phased_release.state_changed")
        .collect();
    let steps: Vec<(Value, Value, Value)> = phased
        .iter()
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
    Ok(())
}

#[tokio::test]
async fn requests_per_key_stay_flat_as_apps_grow() -> TestResult {
    let mut table = Vec::new();
    for apps in [1usize, 20, 150] {
        let world = World::new().await?;
        for n in 0..apps {
            let (app, version) = (format!("app{n}"), format!("v{n}"));
            world.asc.add_app(
                &app,
                &format!("App {n}"),
                &[(version.as_str(), "READY_FOR_DISTRIBUTION")],
            );
            world
                .asc
                .upsert_build(&format!("b{n}"), &app, "VALID", None);
        }
        let sweeper = world.sweeper()?;
        let baseline = sweeper.run().await;
        world.advance(60);
        let steady = sweeper.run().await;
        world
            .asc
            .set_version_state("v0", "REPLACED_WITH_NEW_VERSION");
        world
            .asc
            .add_app_version("app0", "v-next", "PENDING_DEVELOPER_RELEASE");
        world.advance(60);
        let release = sweeper.run().await;
        assert_eq!(baseline.apps, apps);
        assert_eq!(baseline.asc_requests, 2, "{apps} apps: baseline");
        assert_eq!(steady.asc_requests, 2, "{apps} apps: steady");
        assert_eq!(
            release.asc_requests, 3,
            "{apps} apps: one version in flight"
        );
        assert_eq!(release.events, 2);
        table.push((
            apps,
            baseline.asc_requests,
            steady.asc_requests,
            release.asc_requests,
        ));
    }
    println!("apps | requests: baseline, unchanged, one version entering release");
    for (apps, baseline, steady, release) in table {
        println!("{apps:>4} | {baseline}, {steady}, {release}");
    }
    Ok(())
}

impl FakeAsc {
    fn add_app_version(&self, app_id: &str, version_id: &str, state: &str) {
        self.edit(|account| {
            if let Some(app) = account.apps.iter_mut().find(|app| app.id == app_id) {
                app.versions.push(FakeVersion {
                    id: version_id.into(),
                    version_string: "2.2".into(),
                    state: state.into(),
                });
            }
        });
    }
}
