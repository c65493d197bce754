//! A fake App Store Connect API on 127.0.0.1 for every test that talks to Apple.
//!
//! It behaves like the real service where shipwatch depends on it:
//! - bearer tokens are verified independently of the client (p256 ECDSA + hand-parsed JWT),
//!   against the public key registered with [`FakeAsc::register_key`];
//! - every query is checked against Apple's OpenAPI spec (unknown parameters, enum values or
//!   `limit` over the maximum answer 400 `PARAMETER_ERROR.INVALID`);
//! - documents are JSON:API with `links.next` pagination, `meta.paging`, `included` and sparse
//!   fieldsets, shaped per the spec's response schemas;
//! - per-key failure modes reproduce Apple's error answers.
//!
//! State (apps, versions, builds, phased releases, review submissions, TestFlight feedback) is
//! scriptable between calls.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use serde_json::{Map, Value, json};
use shipwatch_shared::clock::{Clock, SystemClock};
use shipwatch_shared::credentials::{IssuerId, KeyId};

use crate::spec;
use crate::test_keys::TestKey;

mod deliveries;
mod feedback;
mod webhooks;
pub use deliveries::FakeDelivery;
pub use feedback::FakeFeedback;
pub use webhooks::{FakeRole, FakeWebhook, MAX_WEBHOOKS_PER_APP, notification_body};

/// Apple's hourly request allowance, reported in `X-Rate-Limit`.
pub const HOURLY_LIMIT: u32 = 3600;
/// How far in the future `iat` may be before the fake rejects a token (clock skew).
pub const ALLOWED_SKEW_SECONDS: i64 = 60;
/// Apple's longest accepted token lifetime.
pub const MAX_TOKEN_LIFETIME_SECONDS: i64 = 20 * 60;
const DEFAULT_PAGE_LIMIT: usize = 50;
const DEFAULT_INCLUDED_LIMIT: usize = 10;

/// How a registered key misbehaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// 401 `NOT_AUTHORIZED`, as for a revoked key.
    Unauthorized,
    /// 403 `FORBIDDEN_ERROR` on `/v1/builds` only, as for Finance or Sales roles.
    ForbiddenBuilds,
    /// 403 `FORBIDDEN.REQUIRED_AGREEMENTS_MISSING_OR_EXPIRED` on everything.
    AgreementsMissing,
    /// 429 with `Retry-After` (when given) and `X-Rate-Limit: ...user-hour-rem:0;`.
    RateLimited { retry_after: Option<Duration> },
    /// 500 `UNEXPECTED_ERROR`.
    ServerError,
    /// 503 `SERVICE_UNAVAILABLE`.
    ServiceUnavailable,
    /// Answers normally after this delay (for timeout tests).
    Delay(Duration),
}

/// The earlier name of [`Failure`].
pub type FailureMode = Failure;

/// One request the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The `kid` of the bearer token, when the token could be read at all.
    pub key_id: Option<String>,
    pub method: String,
    pub path: String,
    /// Decoded query pairs in request order.
    pub query: Vec<(String, String)>,
    pub status: u16,
}

impl RecordedRequest {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeApp {
    pub id: String,
    pub name: String,
    pub bundle_id: String,
}

impl FakeApp {
    pub fn new(id: &str, name: &str, bundle_id: &str) -> Self {
        Self {
            id: id.to_owned(),
            name: name.to_owned(),
            bundle_id: bundle_id.to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeVersion {
    pub id: String,
    pub app_id: String,
    pub version_string: String,
    pub platform: String,
    /// `None` leaves the attribute out (older answers only had `appStoreState`).
    pub app_version_state: Option<String>,
    pub app_store_state: Option<String>,
    pub release_type: Option<String>,
    pub created_date: DateTime<Utc>,
}

impl FakeVersion {
    /// A version with `appVersionState` = `state`, release type `MANUAL`, created now.
    pub fn new(id: &str, app_id: &str, version_string: &str, platform: &str, state: &str) -> Self {
        Self {
            id: id.to_owned(),
            app_id: app_id.to_owned(),
            version_string: version_string.to_owned(),
            platform: platform.to_owned(),
            app_version_state: Some(state.to_owned()),
            app_store_state: None,
            release_type: Some("MANUAL".to_owned()),
            created_date: Utc::now(),
        }
    }

    pub fn with_app_store_state(mut self, state: &str) -> Self {
        self.app_store_state = Some(state.to_owned());
        self
    }

    /// Drops `appVersionState`, so only the deprecated `appStoreState` is sent.
    pub fn without_app_version_state(mut self) -> Self {
        self.app_version_state = None;
        self
    }

    pub fn with_release_type(mut self, release_type: Option<&str>) -> Self {
        self.release_type = release_type.map(str::to_owned);
        self
    }

    pub fn created(mut self, at: DateTime<Utc>) -> Self {
        self.created_date = at;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakePreReleaseVersion {
    pub id: String,
    pub version: String,
    pub platform: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeBuild {
    pub id: String,
    pub app_id: String,
    /// The build number.
    pub version: String,
    pub uploaded_date: DateTime<Utc>,
    pub processing_state: String,
    pub expired: bool,
    pub pre_release_version: Option<FakePreReleaseVersion>,
    pub external_build_state: Option<String>,
    pub internal_build_state: Option<String>,
    pub beta_review_state: Option<String>,
}

impl FakeBuild {
    /// A `PROCESSING` build uploaded now, for iOS marketing version `short_version`, with a
    /// beta detail in `PROCESSING` and no beta review submission.
    pub fn new(id: &str, app_id: &str, version: &str, short_version: &str) -> Self {
        Self {
            id: id.to_owned(),
            app_id: app_id.to_owned(),
            version: version.to_owned(),
            uploaded_date: Utc::now(),
            processing_state: "PROCESSING".to_owned(),
            expired: false,
            pre_release_version: Some(FakePreReleaseVersion {
                id: format!("prv-{app_id}-{short_version}"),
                version: short_version.to_owned(),
                platform: "IOS".to_owned(),
            }),
            external_build_state: Some("PROCESSING".to_owned()),
            internal_build_state: Some("PROCESSING".to_owned()),
            beta_review_state: None,
        }
    }

    pub fn uploaded(mut self, at: DateTime<Utc>) -> Self {
        self.uploaded_date = at;
        self
    }

    pub fn processing_state(mut self, state: &str) -> Self {
        self.processing_state = state.to_owned();
        self
    }

    pub fn external_state(mut self, state: Option<&str>) -> Self {
        self.external_build_state = state.map(str::to_owned);
        self
    }

    pub fn internal_state(mut self, state: Option<&str>) -> Self {
        self.internal_build_state = state.map(str::to_owned);
        self
    }

    pub fn beta_review_state(mut self, state: Option<&str>) -> Self {
        self.beta_review_state = state.map(str::to_owned);
        self
    }

    pub fn platform(mut self, platform: &str) -> Self {
        if let Some(pre_release) = &mut self.pre_release_version {
            pre_release.platform = platform.to_owned();
        }
        self
    }

    pub fn expired(mut self, expired: bool) -> Self {
        self.expired = expired;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakePhasedRelease {
    pub id: String,
    pub state: String,
    pub current_day_number: Option<u32>,
    pub start_date: Option<DateTime<Utc>>,
}

impl FakePhasedRelease {
    pub fn new(id: &str, state: &str, current_day_number: Option<u32>) -> Self {
        Self {
            id: id.to_owned(),
            state: state.to_owned(),
            current_day_number,
            start_date: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeReviewSubmission {
    pub id: String,
    pub app_id: String,
    pub platform: String,
    pub state: String,
    pub submitted_date: Option<DateTime<Utc>>,
    pub version_id: Option<String>,
}

#[derive(Debug)]
struct RegisteredKey {
    issuer_id: String,
    verifying_key: VerifyingKey,
    failure: Option<FailureMode>,
    rate_remaining: u32,
    role: webhooks::FakeRole,
}

#[derive(Debug, Default)]
struct Account {
    apps: Vec<FakeApp>,
    versions: Vec<FakeVersion>,
    builds: Vec<FakeBuild>,
    phased_releases: HashMap<String, FakePhasedRelease>,
    review_submissions: Vec<FakeReviewSubmission>,
    webhooks: Vec<webhooks::FakeWebhook>,
    feedback: Vec<feedback::FakeFeedback>,
}

#[derive(Debug, Default)]
struct World {
    keys: HashMap<String, RegisteredKey>,
    accounts: HashMap<String, Account>,
    tokens_seen: Vec<(String, String)>,
    requests: Vec<RecordedRequest>,
    /// Where webhook deliveries are posted (the test app's address).
    delivery_host: Option<String>,
    deliveries: Vec<deliveries::FakeDelivery>,
}

struct Shared {
    world: Mutex<World>,
    clock: Mutex<Arc<dyn Clock>>,
    base_url: String,
}

impl Shared {
    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.lock().unwrap_or_else(|p| p.into_inner()).now()
    }
}

/// The running fake. Dropping it stops the server.
pub struct FakeAsc {
    shared: Arc<Shared>,
    address: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeAsc {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl std::fmt::Debug for FakeAsc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeAsc")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl FakeAsc {
    /// Starts on 127.0.0.1 with a free port, judging token times by the system clock.
    pub async fn start() -> Self {
        Self::start_with_clock(Arc::new(SystemClock)).await
    }

    /// Starts with the given clock for token `iat`/`exp` checks (share a `ManualClock` with the client).
    pub async fn start_with_clock(clock: Arc<dyn Clock>) -> Self {
        // Load the spec up front so a missing file fails here with its clear message.
        let _ = spec::spec();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0 for the fake App Store Connect");
        let address = listener.local_addr().expect("listener address");
        let shared = Arc::new(Shared {
            world: Mutex::new(World::default()),
            clock: Mutex::new(clock),
            base_url: format!("http://{address}"),
        });
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            shared,
            address,
            server,
        }
    }

    /// `http://127.0.0.1:<port>`, for `ASC_API_BASE_URL` / `AscConfig::new`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    pub fn set_clock(&self, clock: Arc<dyn Clock>) {
        *self.shared.clock.lock().unwrap_or_else(|p| p.into_inner()) = clock;
    }

    /// Registers a key's public half under its issuer (creating the account if needed).
    pub fn register_key(&self, key: &TestKey) {
        let mut world = self.shared.world();
        world
            .accounts
            .entry(key.issuer_id.as_str().to_owned())
            .or_default();
        world.keys.insert(
            key.key_id.as_str().to_owned(),
            RegisteredKey {
                issuer_id: key.issuer_id.as_str().to_owned(),
                verifying_key: key.verifying_key,
                failure: None,
                rate_remaining: HOURLY_LIMIT,
                role: webhooks::FakeRole::Admin,
            },
        );
    }

    /// Forgets a key entirely (its tokens then fail with 401 as unknown `kid`).
    pub fn unregister_key(&self, key_id: &KeyId) {
        self.shared.world().keys.remove(key_id.as_str());
    }

    pub fn set_failure(&self, key_id: &KeyId, failure: FailureMode) {
        self.with_key(key_id, |key| key.failure = Some(failure));
    }

    pub fn clear_failure(&self, key_id: &KeyId) {
        self.with_key(key_id, |key| key.failure = None);
    }

    /// Sets the `user-hour-rem` the next answer for this key reports (then decreasing).
    pub fn set_rate_remaining(&self, key_id: &KeyId, remaining: u32) {
        self.with_key(key_id, |key| key.rate_remaining = remaining);
    }

    fn with_key(&self, key_id: &KeyId, change: impl FnOnce(&mut RegisteredKey)) {
        let mut world = self.shared.world();
        let key = world
            .keys
            .get_mut(key_id.as_str())
            .unwrap_or_else(|| panic!("key {key_id} is not registered with the fake"));
        change(key);
    }

    pub fn add_app(&self, issuer_id: &IssuerId, app: FakeApp) {
        let mut world = self.shared.world();
        let account = world
            .accounts
            .entry(issuer_id.as_str().to_owned())
            .or_default();
        account.apps.retain(|a| a.id != app.id);
        account.apps.push(app);
    }

    /// Removes an app and everything of it from every account.
    pub fn remove_app(&self, app_id: &str) {
        let mut world = self.shared.world();
        for account in world.accounts.values_mut() {
            account.apps.retain(|a| a.id != app_id);
            let removed: Vec<String> = account
                .versions
                .iter()
                .filter(|v| v.app_id == app_id)
                .map(|v| v.id.clone())
                .collect();
            account.versions.retain(|v| v.app_id != app_id);
            account.builds.retain(|b| b.app_id != app_id);
            account.review_submissions.retain(|r| r.app_id != app_id);
            for id in removed {
                account.phased_releases.remove(&id);
            }
        }
    }

    /// Adds a version to the account that holds its app (panics if no account has the app).
    pub fn add_version(&self, version: FakeVersion) {
        let mut world = self.shared.world();
        let account = account_of_app(&mut world, &version.app_id);
        account.versions.retain(|v| v.id != version.id);
        account.versions.push(version);
    }

    /// Sets `appVersionState` of a version.
    pub fn set_version_state(&self, version_id: &str, state: &str) {
        self.with_version(version_id, |v| v.app_version_state = Some(state.to_owned()));
    }

    /// Sets the deprecated `appStoreState` of a version.
    pub fn set_version_app_store_state(&self, version_id: &str, state: Option<&str>) {
        self.with_version(version_id, |v| v.app_store_state = state.map(str::to_owned));
    }

    pub fn update_version(&self, version_id: &str, change: impl FnOnce(&mut FakeVersion)) {
        self.with_version(version_id, change);
    }

    pub fn remove_version(&self, version_id: &str) {
        let mut world = self.shared.world();
        for account in world.accounts.values_mut() {
            account.versions.retain(|v| v.id != version_id);
            account.phased_releases.remove(version_id);
        }
    }

    fn with_version(&self, version_id: &str, change: impl FnOnce(&mut FakeVersion)) {
        let mut world = self.shared.world();
        let version = world
            .accounts
            .values_mut()
            .flat_map(|a| a.versions.iter_mut())
            .find(|v| v.id == version_id)
            .unwrap_or_else(|| panic!("no version {version_id} in the fake"));
        change(version);
    }

    /// Sets (or with `None` removes) the phased release of a version.
    pub fn set_phased_release(&self, version_id: &str, phased: Option<FakePhasedRelease>) {
        let mut world = self.shared.world();
        let account = world
            .accounts
            .values_mut()
            .find(|a| a.versions.iter().any(|v| v.id == version_id))
            .unwrap_or_else(|| panic!("no version {version_id} in the fake"));
        match phased {
            Some(phased) => {
                account
                    .phased_releases
                    .insert(version_id.to_owned(), phased);
            }
            None => {
                account.phased_releases.remove(version_id);
            }
        }
    }

    pub fn add_build(&self, build: FakeBuild) {
        let mut world = self.shared.world();
        let account = account_of_app(&mut world, &build.app_id);
        account.builds.retain(|b| b.id != build.id);
        account.builds.push(build);
    }

    pub fn set_build_processing(&self, build_id: &str, state: &str) {
        self.update_build(build_id, |b| b.processing_state = state.to_owned());
    }

    pub fn set_build_external_state(&self, build_id: &str, state: Option<&str>) {
        self.update_build(build_id, |b| {
            b.external_build_state = state.map(str::to_owned)
        });
    }

    pub fn set_build_internal_state(&self, build_id: &str, state: Option<&str>) {
        self.update_build(build_id, |b| {
            b.internal_build_state = state.map(str::to_owned)
        });
    }

    pub fn set_beta_review_state(&self, build_id: &str, state: Option<&str>) {
        self.update_build(build_id, |b| b.beta_review_state = state.map(str::to_owned));
    }

    pub fn set_build_expired(&self, build_id: &str, expired: bool) {
        self.update_build(build_id, |b| b.expired = expired);
    }

    pub fn update_build(&self, build_id: &str, change: impl FnOnce(&mut FakeBuild)) {
        let mut world = self.shared.world();
        let build = world
            .accounts
            .values_mut()
            .flat_map(|a| a.builds.iter_mut())
            .find(|b| b.id == build_id)
            .unwrap_or_else(|| panic!("no build {build_id} in the fake"));
        change(build);
    }

    pub fn add_review_submission(&self, submission: FakeReviewSubmission) {
        let mut world = self.shared.world();
        let account = account_of_app(&mut world, &submission.app_id);
        account.review_submissions.retain(|r| r.id != submission.id);
        account.review_submissions.push(submission);
    }

    /// Requests whose bearer token named this key (including rejected ones).
    pub fn requests_for(&self, key_id: &KeyId) -> usize {
        self.shared
            .world()
            .requests
            .iter()
            .filter(|r| r.key_id.as_deref() == Some(key_id.as_str()))
            .count()
    }

    /// The requests whose path starts with `prefix`, in order.
    pub fn requests_to(&self, prefix: &str) -> Vec<RecordedRequest> {
        self.shared
            .world()
            .requests
            .iter()
            .filter(|r| r.path.starts_with(prefix))
            .cloned()
            .collect()
    }

    pub fn total_requests(&self) -> usize {
        self.shared.world().requests.len()
    }

    pub fn request_log(&self) -> Vec<RecordedRequest> {
        self.shared.world().requests.clone()
    }

    /// Every bearer token received, in order (only for token-reuse assertions).
    pub fn tokens_seen(&self) -> Vec<String> {
        self.shared
            .world()
            .tokens_seen
            .iter()
            .map(|(_, token)| token.clone())
            .collect()
    }

    /// Distinct tokens received for one key.
    pub fn distinct_tokens_for(&self, key_id: &KeyId) -> usize {
        self.shared
            .world()
            .tokens_seen
            .iter()
            .filter(|(kid, _)| kid == key_id.as_str())
            .map(|(_, token)| token.as_str())
            .collect::<HashSet<_>>()
            .len()
    }

    /// Clears the request log and the tokens seen (state and keys stay).
    pub fn reset_counters(&self) {
        let mut world = self.shared.world();
        world.requests.clear();
        world.tokens_seen.clear();
    }
}

fn account_of_app<'a>(world: &'a mut World, app_id: &str) -> &'a mut Account {
    world
        .accounts
        .values_mut()
        .find(|a| a.apps.iter().any(|app| app.id == app_id))
        .unwrap_or_else(|| panic!("no account has app {app_id}; add_app first"))
}

// ---------------------------------------------------------------------------------------------
// Request handling

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let claimed_kid = bearer.as_deref().and_then(token_kid);

    let now = shared.now();
    let verdict = {
        let mut world = shared.world();
        if let (Some(token), Some(kid)) = (&bearer, &claimed_kid) {
            world.tokens_seen.push((kid.clone(), token.clone()));
        }
        match bearer.as_deref() {
            None => Err(not_authorized()),
            Some(token) => verify_token(&world, token, now).map_err(|_| not_authorized()),
        }
        .map(|key_id| {
            let key = world.keys.get(&key_id);
            (
                key_id.clone(),
                key.map(|k| k.issuer_id.clone()).unwrap_or_default(),
                key.and_then(|k| k.failure.clone()),
            )
        })
    };

    let response = match verdict {
        Err(response) => response,
        Ok((key_id, issuer_id, failure)) => {
            if let Some(FailureMode::Delay(delay)) = &failure {
                tokio::time::sleep(*delay).await;
            }
            match webhooks::answer(&shared, &method, &path, &query, &key_id, &issuer_id, &body) {
                Some(response) if failure.is_none() => response,
                _ => answer(
                    &shared, &method, &path, &query, &key_id, &issuer_id, failure,
                ),
            }
        }
    };

    shared.world().requests.push(RecordedRequest {
        key_id: claimed_kid,
        method: method.to_string(),
        path,
        query,
        status: response.status().as_u16(),
    });
    response
}

fn answer(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &[(String, String)],
    key_id: &str,
    issuer_id: &str,
    failure: Option<FailureMode>,
) -> Response {
    match failure {
        Some(FailureMode::Unauthorized) => return not_authorized(),
        Some(FailureMode::AgreementsMissing) => return agreements_missing(),
        Some(FailureMode::RateLimited { retry_after }) => return rate_limited(retry_after),
        Some(FailureMode::ServerError) => return server_error(500),
        Some(FailureMode::ServiceUnavailable) => return server_error(503),
        Some(FailureMode::ForbiddenBuilds) if path.starts_with("/v1/builds") => {
            return forbidden();
        }
        _ => {}
    }
    if method != Method::GET {
        return error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "The request method is not valid for the resource path.",
            "The fake App Store Connect only serves GET requests.",
            None,
        );
    }
    let Some(operation) = spec::find_operation("GET", path) else {
        return not_found("The path provided does not match a defined resource type.");
    };
    if let Err(problem) = spec::validate_query(&operation, query) {
        return error_response(
            StatusCode::BAD_REQUEST,
            "PARAMETER_ERROR.INVALID",
            "A parameter has an invalid value",
            &problem.detail,
            Some(&problem.parameter),
        );
    }
    let request = ParsedQuery::new(query);
    let body = {
        let mut world = shared.world();
        let remaining = world
            .keys
            .get_mut(key_id)
            .map(|k| {
                k.rate_remaining = k.rate_remaining.saturating_sub(1);
                k.rate_remaining
            })
            .unwrap_or(0);
        let empty = Account::default();
        let account = world.accounts.get(issuer_id).unwrap_or(&empty);
        let context = Context {
            base_url: &shared.base_url,
            path,
            query,
            request: &request,
        };
        let result = match operation.template.as_str() {
            "/v1/apps" => Ok(apps_document(&context, account)),
            "/v1/apps/{id}/appStoreVersions" => app_versions_document(&context, account),
            "/v1/builds" => Ok(builds_document(&context, account)),
            "/v1/appStoreVersions/{id}/appStoreVersionPhasedRelease" => {
                phased_release_document(&context, account)
            }
            "/v1/reviewSubmissions" => Ok(review_submissions_document(&context, account)),
            "/v1/betaFeedbackCrashSubmissions/{id}" => {
                feedback::feedback_document(&context, account, "betaFeedbackCrashSubmissions")
            }
            "/v1/betaFeedbackScreenshotSubmissions/{id}" => {
                feedback::feedback_document(&context, account, "betaFeedbackScreenshotSubmissions")
            }
            other => Err(format!(
                "The fake App Store Connect does not serve {other}."
            )),
        };
        result.map(|doc| (doc, remaining))
    };
    match body {
        Ok((document, remaining)) => {
            let mut response = (StatusCode::OK, axum::Json(document)).into_response();
            set_rate_limit(&mut response, remaining);
            response
        }
        Err(detail) => not_found(&detail),
    }
}

struct Context<'a> {
    base_url: &'a str,
    path: &'a str,
    query: &'a [(String, String)],
    request: &'a ParsedQuery,
}

impl Context<'_> {
    fn self_link(&self) -> String {
        let encoded = encode_query(self.query);
        if encoded.is_empty() {
            format!("{}{}", self.base_url, self.path)
        } else {
            format!("{}{}?{}", self.base_url, self.path, encoded)
        }
    }

    fn next_link(&self, next_offset: usize) -> String {
        let mut pairs: Vec<(String, String)> = self
            .query
            .iter()
            .filter(|(name, _)| name != "cursor")
            .cloned()
            .collect();
        pairs.push(("cursor".to_owned(), encode_cursor(next_offset)));
        format!("{}{}?{}", self.base_url, self.path, encode_query(&pairs))
    }

    fn resource_link(&self, kind: &str, id: &str) -> String {
        format!("{}/v1/{kind}/{id}", self.base_url)
    }

    fn relationship_links(&self, kind: &str, id: &str, name: &str) -> Value {
        json!({
            "self": format!("{}/v1/{kind}/{id}/relationships/{name}", self.base_url),
            "related": format!("{}/v1/{kind}/{id}/{name}", self.base_url),
        })
    }

    /// A paged collection document: `data`, `included` (if any), `links`, `meta.paging`.
    fn collection(
        &self,
        all: Vec<Value>,
        included: Vec<Value>,
        offset: usize,
        limit: usize,
    ) -> Value {
        let total = all.len();
        let mut document = Map::new();
        document.insert("data".into(), Value::Array(all));
        if !included.is_empty() {
            document.insert("included".into(), Value::Array(dedup(included)));
        }
        let mut links = Map::new();
        links.insert("self".into(), Value::String(self.self_link()));
        if offset + limit < total {
            links.insert("next".into(), Value::String(self.next_link(offset + limit)));
        }
        document.insert("links".into(), Value::Object(links));
        document.insert(
            "meta".into(),
            json!({ "paging": { "total": total, "limit": limit } }),
        );
        Value::Object(document)
    }
}

/// The parts of a query the fake acts on.
struct ParsedQuery {
    fields: HashMap<String, HashSet<String>>,
    include: HashSet<String>,
    limits: HashMap<String, usize>,
    limit: usize,
    offset: usize,
    filters: HashMap<String, Vec<String>>,
    sort: Option<String>,
}

impl ParsedQuery {
    fn new(pairs: &[(String, String)]) -> Self {
        let mut parsed = Self {
            fields: HashMap::new(),
            include: HashSet::new(),
            limits: HashMap::new(),
            limit: DEFAULT_PAGE_LIMIT,
            offset: 0,
            filters: HashMap::new(),
            sort: None,
        };
        for (name, value) in pairs {
            let list = || value.split(',').map(str::to_owned);
            if let Some(kind) = bracketed(name, "fields") {
                parsed.fields.insert(kind, list().collect());
            } else if let Some(relationship) = bracketed(name, "limit") {
                if let Ok(n) = value.parse() {
                    parsed.limits.insert(relationship, n);
                }
            } else if let Some(filter) = bracketed(name, "filter") {
                parsed.filters.insert(filter, list().collect());
            } else if name == "include" {
                parsed.include = list().collect();
            } else if name == "limit" {
                parsed.limit = value.parse().unwrap_or(DEFAULT_PAGE_LIMIT);
            } else if name == "cursor" {
                parsed.offset = decode_cursor(value).unwrap_or(0);
            } else if name == "sort" {
                parsed.sort = Some(value.clone());
            }
        }
        parsed
    }

    fn wants(&self, kind: &str, field: &str) -> bool {
        self.fields.get(kind).is_none_or(|set| set.contains(field))
    }

    fn filter_allows(&self, name: &str, value: &str) -> bool {
        self.filters
            .get(name)
            .is_none_or(|allowed| allowed.iter().any(|a| a == value))
    }

    fn page<T: Clone>(&self, items: &[T]) -> Vec<T> {
        items
            .iter()
            .skip(self.offset)
            .take(self.limit)
            .cloned()
            .collect()
    }
}

fn bracketed(name: &str, prefix: &str) -> Option<String> {
    name.strip_prefix(prefix)?
        .strip_prefix('[')?
        .strip_suffix(']')
        .map(str::to_owned)
}

/// Builds a resource object, applying the sparse fieldset for its type to attributes and relationships.
fn resource(
    request: &ParsedQuery,
    context: &Context<'_>,
    kind: &str,
    id: &str,
    attributes: Vec<(&str, Option<Value>)>,
    relationships: Vec<(&str, Value)>,
) -> Value {
    let attributes: Map<String, Value> = attributes
        .into_iter()
        .filter(|(name, _)| request.wants(kind, name))
        .filter_map(|(name, value)| value.map(|v| (name.to_owned(), v)))
        .collect();
    let relationships: Map<String, Value> = relationships
        .into_iter()
        .filter(|(name, _)| request.wants(kind, name))
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    let mut object = Map::new();
    object.insert("type".into(), json!(kind));
    object.insert("id".into(), json!(id));
    if !attributes.is_empty() {
        object.insert("attributes".into(), Value::Object(attributes));
    }
    if !relationships.is_empty() {
        object.insert("relationships".into(), Value::Object(relationships));
    }
    object.insert(
        "links".into(),
        json!({ "self": context.resource_link(kind, id) }),
    );
    Value::Object(object)
}

fn date(at: &DateTime<Utc>) -> Value {
    json!(at.to_rfc3339_opts(SecondsFormat::Secs, true))
}

fn versions_of_app<'a>(account: &'a Account, app_id: &str) -> Vec<&'a FakeVersion> {
    // Newest first, which is the order App Store Connect lists versions in.
    let mut versions: Vec<&FakeVersion> = account
        .versions
        .iter()
        .filter(|v| v.app_id == app_id)
        .collect();
    versions.sort_by(|a, b| b.created_date.cmp(&a.created_date).then(b.id.cmp(&a.id)));
    versions
}

fn version_resource(context: &Context<'_>, version: &FakeVersion) -> Value {
    resource(
        context.request,
        context,
        "appStoreVersions",
        &version.id,
        vec![
            ("platform", Some(json!(version.platform))),
            ("versionString", Some(json!(version.version_string))),
            (
                "appStoreState",
                version.app_store_state.as_ref().map(|s| json!(s)),
            ),
            (
                "appVersionState",
                version.app_version_state.as_ref().map(|s| json!(s)),
            ),
            (
                "releaseType",
                version.release_type.as_ref().map(|s| json!(s)),
            ),
            ("createdDate", Some(date(&version.created_date))),
        ],
        vec![(
            "app",
            json!({ "data": { "type": "apps", "id": version.app_id } }),
        )],
    )
}

fn app_resource(context: &Context<'_>, app: &FakeApp, relationships: Vec<(&str, Value)>) -> Value {
    resource(
        context.request,
        context,
        "apps",
        &app.id,
        vec![
            ("name", Some(json!(app.name))),
            ("bundleId", Some(json!(app.bundle_id))),
            ("sku", Some(json!(format!("SKU-{}", app.id)))),
            ("primaryLocale", Some(json!("en-US"))),
        ],
        relationships,
    )
}

fn apps_document(context: &Context<'_>, account: &Account) -> Value {
    let request = context.request;
    let apps: Vec<&FakeApp> = account
        .apps
        .iter()
        .filter(|a| request.filter_allows("id", &a.id))
        .filter(|a| request.filter_allows("bundleId", &a.bundle_id))
        .collect();
    let include_versions = request.include.contains("appStoreVersions");
    let included_limit = request
        .limits
        .get("appStoreVersions")
        .copied()
        .unwrap_or(DEFAULT_INCLUDED_LIMIT);
    let mut included = Vec::new();
    let page = request.page(&apps);
    let data: Vec<Value> = page
        .iter()
        .map(|app| {
            let versions = versions_of_app(account, &app.id);
            let relationship = if include_versions {
                let shown: Vec<&FakeVersion> = versions.iter().take(included_limit).copied().collect();
                included.extend(shown.iter().map(|v| version_resource(context, v)));
                json!({
                    "links": context.relationship_links("apps", &app.id, "appStoreVersions"),
                    "meta": { "paging": { "total": versions.len(), "limit": included_limit } },
                    "data": shown.iter().map(|v| json!({"type": "appStoreVersions", "id": v.id})).collect::<Vec<_>>(),
                })
            } else {
                json!({ "links": context.relationship_links("apps", &app.id, "appStoreVersions") })
            };
            app_resource(context, app, vec![("appStoreVersions", relationship)])
        })
        .collect();
    context.collection_with_total(data, included, apps.len())
}

impl Context<'_> {
    fn collection_with_total(&self, page: Vec<Value>, included: Vec<Value>, total: usize) -> Value {
        let mut document = self.collection(
            Vec::new(),
            included,
            self.request.offset,
            self.request.limit,
        );
        document["data"] = Value::Array(page);
        document["meta"]["paging"]["total"] = json!(total);
        if self.request.offset + self.request.limit < total {
            document["links"]["next"] =
                json!(self.next_link(self.request.offset + self.request.limit));
        } else if let Some(links) = document["links"].as_object_mut() {
            links.remove("next");
        }
        document
    }
}

/// `Err` carries the 404 detail.
fn app_versions_document(context: &Context<'_>, account: &Account) -> Result<Value, String> {
    let app_id = path_id(context.path, 3);
    if !account.apps.iter().any(|a| a.id == app_id) {
        return Err(format!(
            "There is no resource of type 'apps' with id '{app_id}'"
        ));
    }
    let request = context.request;
    let versions: Vec<&FakeVersion> = versions_of_app(account, &app_id)
        .into_iter()
        .filter(|v| request.filter_allows("platform", &v.platform))
        .filter(|v| request.filter_allows("versionString", &v.version_string))
        .filter(|v| request.filter_allows("id", &v.id))
        .filter(|v| {
            v.app_version_state
                .as_deref()
                .is_none_or(|s| request.filter_allows("appVersionState", s))
        })
        .collect();
    let data = request
        .page(&versions)
        .iter()
        .map(|v| version_resource(context, v))
        .collect();
    Ok(context.collection_with_total(data, Vec::new(), versions.len()))
}

fn builds_document(context: &Context<'_>, account: &Account) -> Value {
    let request = context.request;
    let mut builds: Vec<&FakeBuild> = account
        .builds
        .iter()
        .filter(|b| request.filter_allows("app", &b.app_id))
        .filter(|b| request.filter_allows("processingState", &b.processing_state))
        .filter(|b| request.filter_allows("expired", if b.expired { "true" } else { "false" }))
        .filter(|b| request.filter_allows("id", &b.id))
        .collect();
    match request.sort.as_deref() {
        Some("-uploadedDate") => {
            builds.sort_by(|a, b| b.uploaded_date.cmp(&a.uploaded_date).then(b.id.cmp(&a.id)))
        }
        Some("uploadedDate") => {
            builds.sort_by(|a, b| a.uploaded_date.cmp(&b.uploaded_date).then(a.id.cmp(&b.id)))
        }
        Some("-version") => builds.sort_by(|a, b| b.version.cmp(&a.version)),
        Some("version") => builds.sort_by(|a, b| a.version.cmp(&b.version)),
        _ => {}
    }
    let includes = &request.include;
    let mut included = Vec::new();
    let data: Vec<Value> = request
        .page(&builds)
        .iter()
        .map(|build| {
            let mut relationships = Vec::new();
            let link = |name: &str| context.relationship_links("builds", &build.id, name);
            // app
            if includes.contains("app") {
                if let Some(app) = account.apps.iter().find(|a| a.id == build.app_id) {
                    included.push(app_resource(context, app, vec![]));
                }
                relationships.push(("app", json!({"links": link("app"), "data": {"type": "apps", "id": build.app_id}})));
            } else {
                relationships.push(("app", json!({"links": link("app")})));
            }
            // preReleaseVersion
            match (&build.pre_release_version, includes.contains("preReleaseVersion")) {
                (Some(pre), true) => {
                    included.push(resource(
                        request,
                        context,
                        "preReleaseVersions",
                        &pre.id,
                        vec![
                            ("version", Some(json!(pre.version))),
                            ("platform", Some(json!(pre.platform))),
                        ],
                        vec![],
                    ));
                    relationships.push(("preReleaseVersion", json!({"links": link("preReleaseVersion"), "data": {"type": "preReleaseVersions", "id": pre.id}})));
                }
                _ => relationships.push(("preReleaseVersion", json!({"links": link("preReleaseVersion")}))),
            }
            // buildBetaDetail: App Store Connect gives it the build's id.
            if includes.contains("buildBetaDetail") {
                included.push(resource(
                    request,
                    context,
                    "buildBetaDetails",
                    &build.id,
                    vec![
                        ("autoNotifyEnabled", Some(json!(false))),
                        ("internalBuildState", build.internal_build_state.as_ref().map(|s| json!(s))),
                        ("externalBuildState", build.external_build_state.as_ref().map(|s| json!(s))),
                    ],
                    vec![],
                ));
                relationships.push(("buildBetaDetail", json!({"links": link("buildBetaDetail"), "data": {"type": "buildBetaDetails", "id": build.id}})));
            } else {
                relationships.push(("buildBetaDetail", json!({"links": link("buildBetaDetail")})));
            }
            // betaAppReviewSubmission: only exists once submitted for beta review.
            match (&build.beta_review_state, includes.contains("betaAppReviewSubmission")) {
                (Some(state), true) => {
                    included.push(resource(
                        request,
                        context,
                        "betaAppReviewSubmissions",
                        &build.id,
                        vec![("betaReviewState", Some(json!(state)))],
                        vec![],
                    ));
                    relationships.push(("betaAppReviewSubmission", json!({"links": link("betaAppReviewSubmission"), "data": {"type": "betaAppReviewSubmissions", "id": build.id}})));
                }
                _ => relationships.push(("betaAppReviewSubmission", json!({"links": link("betaAppReviewSubmission")}))),
            }
            resource(
                request,
                context,
                "builds",
                &build.id,
                vec![
                    ("version", Some(json!(build.version))),
                    ("uploadedDate", Some(date(&build.uploaded_date))),
                    ("expirationDate", Some(date(&(build.uploaded_date + chrono::TimeDelta::days(90))))),
                    ("expired", Some(json!(build.expired))),
                    ("minOsVersion", Some(json!("17.0"))),
                    ("processingState", Some(json!(build.processing_state))),
                ],
                relationships,
            )
        })
        .collect();
    context.collection_with_total(data, included, builds.len())
}

/// `Err` carries the 404 detail.
fn phased_release_document(context: &Context<'_>, account: &Account) -> Result<Value, String> {
    let version_id = path_id(context.path, 3);
    if !account.versions.iter().any(|v| v.id == version_id) {
        return Err(format!(
            "There is no resource of type 'appStoreVersions' with id '{version_id}'"
        ));
    }
    let Some(phased) = account.phased_releases.get(&version_id) else {
        return Err(format!(
            "The appStoreVersion '{version_id}' has no appStoreVersionPhasedRelease"
        ));
    };
    let data = resource(
        context.request,
        context,
        "appStoreVersionPhasedReleases",
        &phased.id,
        vec![
            ("phasedReleaseState", Some(json!(phased.state))),
            ("startDate", phased.start_date.as_ref().map(date)),
            ("totalPauseDuration", Some(json!(0))),
            (
                "currentDayNumber",
                phased.current_day_number.map(|d| json!(d)),
            ),
        ],
        vec![],
    );
    Ok(json!({ "data": data, "links": { "self": context.self_link() } }))
}

fn review_submissions_document(context: &Context<'_>, account: &Account) -> Value {
    let request = context.request;
    let submissions: Vec<&FakeReviewSubmission> = account
        .review_submissions
        .iter()
        .filter(|r| request.filter_allows("app", &r.app_id))
        .filter(|r| request.filter_allows("state", &r.state))
        .filter(|r| request.filter_allows("platform", &r.platform))
        .collect();
    let data = request
        .page(&submissions)
        .iter()
        .map(|r| {
            let mut relationships =
                vec![("app", json!({"data": {"type": "apps", "id": r.app_id}}))];
            if let Some(version_id) = &r.version_id {
                relationships.push((
                    "appStoreVersionForReview",
                    json!({"data": {"type": "appStoreVersions", "id": version_id}}),
                ));
            }
            resource(
                request,
                context,
                "reviewSubmissions",
                &r.id,
                vec![
                    ("platform", Some(json!(r.platform))),
                    ("state", Some(json!(r.state))),
                    ("submittedDate", r.submitted_date.as_ref().map(date)),
                ],
                relationships,
            )
        })
        .collect();
    context.collection_with_total(data, Vec::new(), submissions.len())
}

fn path_id(path: &str, index: usize) -> String {
    let raw = path.split('/').nth(index).unwrap_or_default();
    percent_decode(raw)
}

fn percent_decode(raw: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", raw.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn dedup(resources: Vec<Value>) -> Vec<Value> {
    let mut seen = HashSet::new();
    resources
        .into_iter()
        .filter(|r| seen.insert((r["type"].to_string(), r["id"].to_string())))
        .collect()
}

fn encode_query(pairs: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn encode_cursor(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("offset:{offset}"))
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix("offset:")?
        .parse()
        .ok()
}

// ---------------------------------------------------------------------------------------------
// Token verification, written independently of jsonwebtoken and of the client.

/// Why a token was rejected (for the fake's own tests; Apple only ever says NOT_AUTHORIZED).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRejection {
    Malformed(&'static str),
    WrongAlgorithm,
    UnknownKey,
    BadSignature,
    WrongIssuer,
    WrongAudience,
    LifetimeTooLong,
    Expired,
    IssuedInFuture,
}

fn token_kid(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    header["kid"].as_str().map(str::to_owned)
}

fn verify_token(world: &World, token: &str, now: DateTime<Utc>) -> Result<String, TokenRejection> {
    let keys: BTreeMap<&str, (&str, &VerifyingKey)> = world
        .keys
        .iter()
        .map(|(kid, key)| (kid.as_str(), (key.issuer_id.as_str(), &key.verifying_key)))
        .collect();
    verify_es256_token(token, now, |kid| {
        keys.get(kid).map(|(i, k)| (i.to_string(), **k))
    })
}

/// Verifies an App Store Connect bearer token as Apple does. `lookup` maps a `kid` to the
/// issuer and public key registered for it. Returns the key id.
pub fn verify_es256_token(
    token: &str,
    now: DateTime<Utc>,
    lookup: impl Fn(&str) -> Option<(String, VerifyingKey)>,
) -> Result<String, TokenRejection> {
    let mut parts = token.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenRejection::Malformed(
            "a JWS has three dot-separated parts",
        ));
    };
    let decode_json = |part: &str| -> Result<Value, TokenRejection> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| TokenRejection::Malformed("part is not base64url"))?;
        serde_json::from_slice(&bytes).map_err(|_| TokenRejection::Malformed("part is not JSON"))
    };
    let header = decode_json(header_b64)?;
    let claims = decode_json(claims_b64)?;
    if header["alg"] != "ES256" {
        return Err(TokenRejection::WrongAlgorithm);
    }
    if !header["typ"].is_null() && header["typ"] != "JWT" {
        return Err(TokenRejection::Malformed("typ must be JWT"));
    }
    let kid = header["kid"]
        .as_str()
        .ok_or(TokenRejection::Malformed("kid is missing"))?;
    let (issuer, verifying_key) = lookup(kid).ok_or(TokenRejection::UnknownKey)?;
    let signature_bytes = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| TokenRejection::Malformed("signature is not base64url"))?;
    // JWS ES256 signatures are raw r||s (64 bytes), not DER.
    let signature =
        Signature::from_slice(&signature_bytes).map_err(|_| TokenRejection::BadSignature)?;
    let signing_input = format!("{header_b64}.{claims_b64}");
    verifying_key
        .verify(signing_input.as_bytes(), &signature)
        .map_err(|_| TokenRejection::BadSignature)?;
    if claims["iss"] != issuer.as_str() {
        return Err(TokenRejection::WrongIssuer);
    }
    if claims["aud"] != "appstoreconnect-v1" {
        return Err(TokenRejection::WrongAudience);
    }
    let iat = claims["iat"]
        .as_i64()
        .ok_or(TokenRejection::Malformed("iat is missing"))?;
    let exp = claims["exp"]
        .as_i64()
        .ok_or(TokenRejection::Malformed("exp is missing"))?;
    if exp - iat > MAX_TOKEN_LIFETIME_SECONDS || exp <= iat {
        return Err(TokenRejection::LifetimeTooLong);
    }
    let now = now.timestamp();
    if exp <= now {
        return Err(TokenRejection::Expired);
    }
    if iat > now + ALLOWED_SKEW_SECONDS {
        return Err(TokenRejection::IssuedInFuture);
    }
    Ok(kid.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Apple's error answers

fn error_response(
    status: StatusCode,
    code: &str,
    title: &str,
    detail: &str,
    parameter: Option<&str>,
) -> Response {
    let mut error = json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "status": status.as_u16().to_string(),
        "code": code,
        "title": title,
        "detail": detail,
    });
    if let Some(parameter) = parameter {
        error["source"] = json!({ "parameter": parameter });
    }
    (status, axum::Json(json!({ "errors": [error] }))).into_response()
}

/// Apple's 401 body.
pub fn not_authorized_body() -> Value {
    json!({"errors": [{
        "status": "401",
        "code": "NOT_AUTHORIZED",
        "title": "Authentication credentials are missing or invalid.",
        "detail": "Provide a properly configured and signed bearer token, and make sure that it has not expired. Learn more about Generating Tokens for API Requests https://developer.apple.com/go/?id=api-generating-tokens",
    }]})
}

fn not_authorized() -> Response {
    (StatusCode::UNAUTHORIZED, axum::Json(not_authorized_body())).into_response()
}

fn forbidden() -> Response {
    error_response(
        StatusCode::FORBIDDEN,
        "FORBIDDEN_ERROR",
        "This request is forbidden for security reasons",
        "The API key in use does not allow this request",
        None,
    )
}

fn agreements_missing() -> Response {
    error_response(
        StatusCode::FORBIDDEN,
        "FORBIDDEN.REQUIRED_AGREEMENTS_MISSING_OR_EXPIRED",
        "A required agreement is missing or has expired.",
        "This request requires an in-effect agreement that has not been signed or has expired.",
        None,
    )
}

fn rate_limited(retry_after: Option<Duration>) -> Response {
    let mut response = error_response(
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMIT_EXCEEDED",
        "The request rate limit has been reached.",
        "We've received too many requests for this API. Please wait and try again or slow down your request rate.",
        None,
    );
    set_rate_limit(&mut response, 0);
    if let Some(retry_after) = retry_after
        && let Ok(value) = HeaderValue::from_str(&retry_after.as_secs().to_string())
    {
        response.headers_mut().insert("retry-after", value);
    }
    response
}

fn server_error(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (code, title) = if status == StatusCode::SERVICE_UNAVAILABLE {
        (
            "SERVICE_UNAVAILABLE",
            "The service is temporarily unavailable.",
        )
    } else {
        ("UNEXPECTED_ERROR", "An unexpected error occurred.")
    };
    error_response(
        status,
        code,
        title,
        "An unexpected error occurred on the server side. If this issue continues, contact us at https://developer.apple.com/contact/.",
        None,
    )
}

fn not_found(detail: &str) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "The specified resource does not exist",
        detail,
        None,
    )
}

fn set_rate_limit(response: &mut Response, remaining: u32) {
    let value = format!("user-hour-lim:{HOURLY_LIMIT};user-hour-rem:{remaining};");
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert("x-rate-limit", value);
    }
}
