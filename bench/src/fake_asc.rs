//! A lean fake App Store Connect for measurements, on 127.0.0.1.
//!
//! Unlike `shipwatch_tests::fake_asc` (which verifies every ES256 signature and checks every query
//! against the OpenAPI spec, and keeps every account in memory), this one is built to answer
//! tens of thousands of requests cheaply:
//! - a bearer token is accepted when it is a well-formed JWS whose header names a bench key
//!   (`kid` = `B` + 9 digits, see [`crate::fixtures::bench_key_id`]); the signature is not checked;
//! - each key's account is computed from the key's number: `apps_per_key` apps with one App
//!   Store version each, and one processed TestFlight build per app;
//! - documents follow the spec's `AppsResponse` / `BuildsResponse` shapes: JSON:API `data`,
//!   `included`, relationship `meta.paging`, `links.self`/`links.next` (cursor paging, `limit` at
//!   most 200) and `meta.paging`;
//! - every `/v1` answer waits `latency` first, like a far-away server.
//!
//! [`FakeAscServer::change_every`] starts a round of changes: the App Store state of every app
//! whose number (key number x apps per key + index) is a multiple of `every` moves on, so a
//! sweep sees exactly that share of apps changed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::BenchError;
use crate::fixtures::key_number_of;

/// Apple's page size maximum for `/v1/apps` and `/v1/builds`.
const MAX_LIMIT: usize = 200;
/// Apple's default page size.
const DEFAULT_LIMIT: usize = 50;
/// App Store states an app cycles through, one step per change round. None of them is "in
/// flight" (no phased release read), so an unchanged key costs exactly its list requests.
const VERSION_STATES: [&str; 3] = ["WAITING_FOR_REVIEW", "IN_REVIEW", "REJECTED"];
/// Upload time of the newest build; older builds are a minute apart.
const NEWEST_UPLOAD: &str = "2025-06-02T12:00:00.000+0000";

/// What every account looks like and how slow the fake is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeAscOptions {
    pub apps_per_key: usize,
    pub latency: Duration,
}

struct World {
    options: FakeAscOptions,
    /// `/v1` requests answered (any status).
    requests: AtomicU64,
    /// One entry per change round: its `every`.
    change_rounds: Mutex<Vec<u64>>,
}

/// A running fake; stops when dropped.
pub struct FakeAscServer {
    base_url: String,
    world: Arc<World>,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FakeAscServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeAscServer")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeAscServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeAscServer {
    /// Serves on a free 127.0.0.1 port.
    pub async fn start(options: FakeAscOptions) -> Result<Self, BenchError> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(BenchError::io("binding the fake App Store Connect"))?;
        let address = listener
            .local_addr()
            .map_err(BenchError::io("reading the fake's address"))?;
        let world = Arc::new(World {
            options,
            requests: AtomicU64::new(0),
            change_rounds: Mutex::new(Vec::new()),
        });
        let router = Router::new().fallback(answer).with_state(world.clone());
        let server = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, router).await {
                eprintln!("fake App Store Connect stopped: {err}");
            }
        });
        Ok(Self {
            base_url: format!("http://{address}"),
            world,
            server,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `/v1` requests answered so far.
    pub fn requests(&self) -> u64 {
        self.world.requests.load(Ordering::Relaxed)
    }

    /// Starts a change round (see the module docs); `every` = 1 changes every app.
    pub fn change_every(&self, every: u64) {
        self.world
            .change_rounds
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(every.max(1));
    }
}

/// The request-count endpoint of a fake running in another process (`shipwatch-bench fake-asc`).
pub const REQUESTS_PATH: &str = "/_bench/requests";

async fn answer(State(world): State<Arc<World>>, uri: Uri, headers: HeaderMap) -> Response {
    if uri.path() == REQUESTS_PATH {
        return json_response(
            StatusCode::OK,
            &json!({ "requests": world.requests.load(Ordering::Relaxed) }),
        );
    }
    world.requests.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(world.options.latency).await;
    let Some(key_number) = bearer_key_number(&headers) else {
        return apple_error(
            StatusCode::UNAUTHORIZED,
            "NOT_AUTHORIZED",
            "Authentication credentials are missing or invalid.",
            "Provide a properly configured and signed bearer token, and make sure that it has not expired.",
        );
    };
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("127.0.0.1");
    let request = match Request::parse(&uri, host) {
        Ok(request) => request,
        Err(detail) => {
            return apple_error(
                StatusCode::BAD_REQUEST,
                "PARAMETER_ERROR.INVALID",
                "A parameter has an invalid value",
                &detail,
            );
        }
    };
    let rounds = world
        .change_rounds
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    let account = Account {
        key_number,
        apps: world.options.apps_per_key,
        change_rounds: &rounds,
    };
    let document = match uri.path() {
        "/v1/apps" => apps_document(&request, &account),
        "/v1/builds" => builds_document(&request, &account),
        _ => {
            return apple_error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "The specified resource does not exist",
                &format!(
                    "The path provided does not match a defined resource type: {}",
                    uri.path()
                ),
            );
        }
    };
    let mut response = json_response(StatusCode::OK, &document);
    // Apple reports the hourly budget on every answer; the bench keys never come near it.
    response.headers_mut().insert(
        "x-rate-limit",
        HeaderValue::from_static("user-hour-lim:3600;user-hour-rem:3599;"),
    );
    response
}

/// The bench key number named by the token's `kid`, when the token is a well-formed JWS.
fn bearer_key_number(headers: &HeaderMap) -> Option<u64> {
    let token = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    let mut parts = token.split('.');
    let (Some(header_part), Some(claims_part), Some(signature_part), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if claims_part.is_empty() || signature_part.is_empty() {
        return None;
    }
    let jws_header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header_part).ok()?).ok()?;
    if jws_header["alg"] != "ES256" {
        return None;
    }
    key_number_of(jws_header["kid"].as_str()?)
}

/// The parts of a list request the fake honours.
struct Request {
    /// `scheme://host` the client used, for links.
    origin: String,
    path: String,
    query: Vec<(String, String)>,
    limit: usize,
    offset: usize,
    include: Vec<String>,
}

impl Request {
    fn parse(uri: &Uri, host: &str) -> Result<Self, String> {
        let query: Vec<(String, String)> =
            url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .map(|(name, value)| (name.into_owned(), value.into_owned()))
                .collect();
        let param = |name: &str| {
            query
                .iter()
                .find(|(candidate, _)| candidate == name)
                .map(|(_, value)| value.as_str())
        };
        let limit = match param("limit") {
            None => DEFAULT_LIMIT,
            Some(raw) => match raw.parse::<usize>() {
                Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => limit,
                _ => {
                    return Err(format!(
                        "'{raw}' is not a valid value for 'limit': it must be 1 to {MAX_LIMIT}"
                    ));
                }
            },
        };
        let offset = match param("cursor") {
            None => 0,
            Some(cursor) => {
                decode_cursor(cursor).ok_or_else(|| format!("'{cursor}' is not a valid cursor"))?
            }
        };
        let include = param("include")
            .map(|raw| raw.split(',').map(str::to_owned).collect())
            .unwrap_or_default();
        Ok(Self {
            origin: format!("http://{host}"),
            path: uri.path().to_owned(),
            query,
            limit,
            offset,
            include,
        })
    }

    fn includes(&self, relationship: &str) -> bool {
        self.include.iter().any(|wanted| wanted == relationship)
    }

    fn link_with_offset(&self, offset: Option<usize>) -> String {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in self.query.iter().filter(|(name, _)| name != "cursor") {
            serializer.append_pair(name, value);
        }
        if let Some(offset) = offset {
            serializer.append_pair("cursor", &encode_cursor(offset));
        }
        format!("{}{}?{}", self.origin, self.path, serializer.finish())
    }

    /// The page's index range, `links` and `meta` for a collection of `total` items.
    fn page(&self, total: usize) -> (std::ops::Range<usize>, Value, Value) {
        let start = self.offset.min(total);
        let end = (start + self.limit).min(total);
        let mut links =
            json!({ "self": self.link_with_offset((self.offset > 0).then_some(self.offset)) });
        if end < total {
            links["next"] = json!(self.link_with_offset(Some(end)));
        }
        let meta = json!({ "paging": { "total": total, "limit": self.limit } });
        (start..end, links, meta)
    }
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

/// One bench key's account, computed rather than stored.
struct Account<'a> {
    key_number: u64,
    apps: usize,
    change_rounds: &'a [u64],
}

impl Account<'_> {
    fn app_number(&self, index: usize) -> u64 {
        self.key_number * self.apps as u64 + index as u64
    }

    fn app_id(&self, index: usize) -> String {
        (1_000_000_000 + self.app_number(index)).to_string()
    }

    fn version_state(&self, index: usize) -> &'static str {
        let number = self.app_number(index);
        let changes = self
            .change_rounds
            .iter()
            .filter(|every| number % **every == 0)
            .count();
        VERSION_STATES[changes % VERSION_STATES.len()]
    }

    fn app_resource(&self, request: &Request, index: usize, with_versions: bool) -> Value {
        let id = self.app_id(index);
        let mut app = json!({
            "type": "apps",
            "id": id,
            "attributes": { "name": format!("Bench App {}", self.app_number(index)), "bundleId": format!("com.example.bench.app{}", self.app_number(index)) },
            "links": { "self": format!("{}/v1/apps/{id}", request.origin) },
        });
        if with_versions {
            app["relationships"] = json!({
                "appStoreVersions": {
                    "links": {
                        "self": format!("{}/v1/apps/{id}/relationships/appStoreVersions", request.origin),
                        "related": format!("{}/v1/apps/{id}/appStoreVersions", request.origin),
                    },
                    "meta": { "paging": { "total": 1, "limit": 50 } },
                    "data": [{ "type": "appStoreVersions", "id": format!("{id}-v1") }],
                }
            });
        }
        app
    }

    fn version_resource(&self, request: &Request, index: usize) -> Value {
        let id = format!("{}-v1", self.app_id(index));
        let state = self.version_state(index);
        json!({
            "type": "appStoreVersions",
            "id": id,
            "attributes": {
                "platform": "IOS",
                "versionString": "1.0",
                // appStoreState is deprecated; for these states Apple sends the same value.
                "appStoreState": state,
                "appVersionState": state,
                "releaseType": "MANUAL",
                "createdDate": "2025-06-01T08:00:00.000+0000",
            },
            "links": { "self": format!("{}/v1/appStoreVersions/{id}", request.origin) },
        })
    }
}

fn apps_document(request: &Request, account: &Account<'_>) -> Value {
    let with_versions = request.includes("appStoreVersions");
    let (range, links, meta) = request.page(account.apps);
    let data: Vec<Value> = range
        .clone()
        .map(|index| account.app_resource(request, index, with_versions))
        .collect();
    let mut document = json!({ "data": data, "links": links, "meta": meta });
    if with_versions {
        let included: Vec<Value> = range
            .map(|index| account.version_resource(request, index))
            .collect();
        document["included"] = json!(included);
    }
    document
}

/// Newest first (`sort=-uploadedDate`, the only order the sweep asks for): build `i` belongs to
/// app `i` and was uploaded `i` minutes before the newest.
fn builds_document(request: &Request, account: &Account<'_>) -> Value {
    let (range, links, meta) = request.page(account.apps);
    let newest = chrono::DateTime::parse_from_str(NEWEST_UPLOAD, "%Y-%m-%dT%H:%M:%S%.f%z")
        .unwrap_or_default();
    let mut data = Vec::with_capacity(range.len());
    let mut included = Vec::new();
    for index in range {
        let app_id = account.app_id(index);
        let build_id = format!("{app_id}-b1");
        let uploaded = newest - chrono::TimeDelta::minutes(index as i64);
        let uploaded = uploaded.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string();
        let link = |name: &str| {
            json!({
                "self": format!("{}/v1/builds/{build_id}/relationships/{name}", request.origin),
                "related": format!("{}/v1/builds/{build_id}/{name}", request.origin),
            })
        };
        let mut relationships = json!({
            "app": { "links": link("app") },
            "preReleaseVersion": { "links": link("preReleaseVersion") },
            "buildBetaDetail": { "links": link("buildBetaDetail") },
            "betaAppReviewSubmission": { "links": link("betaAppReviewSubmission") },
        });
        if request.includes("app") {
            relationships["app"]["data"] = json!({ "type": "apps", "id": app_id });
            included.push(account.app_resource(request, index, false));
        }
        if request.includes("preReleaseVersion") {
            let pre_release_id = format!("{app_id}-p1");
            relationships["preReleaseVersion"]["data"] =
                json!({ "type": "preReleaseVersions", "id": pre_release_id });
            included.push(json!({
                "type": "preReleaseVersions",
                "id": pre_release_id,
                "attributes": { "version": "1.0", "platform": "IOS" },
                "links": { "self": format!("{}/v1/preReleaseVersions/{pre_release_id}", request.origin) },
            }));
        }
        if request.includes("buildBetaDetail") {
            // App Store Connect gives the beta detail the build's id.
            relationships["buildBetaDetail"]["data"] =
                json!({ "type": "buildBetaDetails", "id": build_id });
            included.push(json!({
                "type": "buildBetaDetails",
                "id": build_id,
                "attributes": {
                    "autoNotifyEnabled": false,
                    "internalBuildState": "IN_BETA_TESTING",
                    "externalBuildState": "IN_BETA_TESTING",
                },
                "links": { "self": format!("{}/v1/buildBetaDetails/{build_id}", request.origin) },
            }));
        }
        data.push(json!({
            "type": "builds",
            "id": build_id,
            "attributes": {
                "version": "1",
                "uploadedDate": uploaded,
                "expired": false,
                "minOsVersion": "17.0",
                "processingState": "VALID",
            },
            "relationships": relationships,
            "links": { "self": format!("{}/v1/builds/{build_id}", request.origin) },
        }));
    }
    let mut document = json!({ "data": data, "links": links, "meta": meta });
    if !included.is_empty() {
        document["included"] = json!(included);
    }
    document
}

fn json_response(status: StatusCode, document: &Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document.to_string(),
    )
        .into_response()
}

/// Apple's `ErrorResponse`.
fn apple_error(status: StatusCode, code: &str, title: &str, detail: &str) -> Response {
    json_response(
        status,
        &json!({
            "errors": [{
                "id": format!("bench-{}", status.as_u16()),
                "status": status.as_u16().to_string(),
                "code": code,
                "title": title,
                "detail": detail,
            }]
        }),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use shipwatch_shared::asc::{AscClient, AscConfig};

    use super::*;
    use crate::fixtures::bench_credentials;

    async fn session(fake: &FakeAscServer, key_number: u64) -> shipwatch_shared::asc::AscSession {
        let config = AscConfig::new(fake.base_url()).unwrap();
        let client = AscClient::new(config).unwrap();
        client.session(Arc::new(bench_credentials(key_number).unwrap()))
    }

    #[tokio::test]
    async fn the_real_client_reads_every_page_and_build() {
        let fake = FakeAscServer::start(FakeAscOptions {
            apps_per_key: 450,
            latency: Duration::ZERO,
        })
        .await
        .unwrap();
        let session = session(&fake, 3).await;
        let apps = session.list_apps_with_versions().await.unwrap();
        assert_eq!(apps.len(), 450);
        assert_eq!(apps[0].app.id, (1_000_000_000u64 + 3 * 450).to_string());
        assert!(apps.iter().all(|app| app.versions.len() == 1));
        let builds = session.list_recent_builds(200).await.unwrap();
        assert_eq!(builds.len(), 200);
        assert_eq!(builds[0].app_id, apps[0].app.id);
        assert!(builds[0].uploaded_date > builds[1].uploaded_date);
        // 3 pages of apps (200 + 200 + 50) and one page of builds.
        assert_eq!(session.requests_sent(), 4);
        assert_eq!(fake.requests(), 4);
        assert_eq!(session.count_apps().await.unwrap(), 450);
    }

    #[tokio::test]
    async fn a_change_round_moves_exactly_the_chosen_apps() {
        let fake = FakeAscServer::start(FakeAscOptions {
            apps_per_key: 10,
            latency: Duration::ZERO,
        })
        .await
        .unwrap();
        let session = session(&fake, 0).await;
        let states = |apps: &[shipwatch_shared::asc::AppWithVersions]| -> Vec<String> {
            apps.iter()
                .map(|app| format!("{:?}", app.versions[0].state))
                .collect()
        };
        let before = states(&session.list_apps_with_versions().await.unwrap());
        fake.change_every(5);
        let after = states(&session.list_apps_with_versions().await.unwrap());
        let changed: Vec<usize> = (0..10).filter(|i| before[*i] != after[*i]).collect();
        assert_eq!(changed, vec![0, 5]);
    }

    #[tokio::test]
    async fn tokens_must_name_a_bench_key_and_limits_are_checked() {
        let fake = FakeAscServer::start(FakeAscOptions {
            apps_per_key: 1,
            latency: Duration::ZERO,
        })
        .await
        .unwrap();
        let http = reqwest::Client::new();
        let unauthenticated = http
            .get(format!("{}/v1/apps", fake.base_url()))
            .bearer_auth("not-a-jws")
            .send()
            .await
            .unwrap();
        assert_eq!(unauthenticated.status().as_u16(), 401);
        let session = session(&fake, 1).await;
        assert!(matches!(
            session.list_recent_builds(200).await,
            Ok(builds) if builds.len() == 1
        ));
        let credentials = bench_credentials(1).unwrap();
        let client = AscClient::new(AscConfig::new(fake.base_url()).unwrap()).unwrap();
        let token = client.token_for(&credentials).unwrap();
        let over_limit = http
            .get(format!("{}/v1/apps?limit=201", fake.base_url()))
            .bearer_auth(token.expose())
            .send()
            .await
            .unwrap();
        assert_eq!(over_limit.status().as_u16(), 400);
        let missing = session.get_phased_release("1000000001-v1").await;
        assert!(matches!(missing, Ok(None)), "{missing:?}");
    }
}
