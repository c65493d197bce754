//! A fake Google (OAuth token endpoint + Google Play Developer API, androidpublisher v3) for
//! tests, speaking the shapes of Google's androidpublisher v3 reference and of Google's OAuth 2.0
//! server-to-server flow.
//!
//! - `POST /token`: the JWT bearer grant. The assertion is verified with the registered
//!   service account's public half (RS256), and its `iss`, `aud` (this fake's token URL), `scope`
//!   and lifetime (at most one hour, not expired) are checked; a revoked account gets
//!   `400 {"error": "invalid_grant", "error_description": ...}`.
//! - `POST /androidpublisher/v3/applications/{packageName}/edits` (`edits.insert`, an `AppEdit`),
//!   `DELETE .../edits/{editId}` (`edits.delete`), `GET .../edits/{editId}/tracks`
//!   (`edits.tracks.list`), `GET .../edits/{editId}/listings` (`edits.listings.list`). Every call
//!   needs a token this fake issued; errors are Google's `{"error": {"code", "message",
//!   "status", "errors": [...]}}` (401, 403 when the account may not read the app, 404 for an
//!   unknown package, 429 with `Retry-After`, 503).
//! - A control API in Rust: accounts, apps and their readers, tracks, faults, request counts.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// The androidpublisher scope the grant must ask for.
pub const SCOPE: &str = "https://www.googleapis.com/auth/androidpublisher";

/// The RSA test keys checked in under `tests/fixtures/google_play` (made once with openssl).
pub struct PlayTestKey {
    pub private_pem: &'static str,
    pub public_pem: &'static str,
}

pub const KEY_A: PlayTestKey = PlayTestKey {
    private_pem: include_str!("../fixtures/google_play/rsa_a.pem"),
    public_pem: include_str!("../fixtures/google_play/rsa_a.pub.pem"),
};
pub const KEY_B: PlayTestKey = PlayTestKey {
    private_pem: include_str!("../fixtures/google_play/rsa_b.pem"),
    public_pem: include_str!("../fixtures/google_play/rsa_b.pub.pem"),
};
/// A PKCS#1 (`BEGIN RSA PRIVATE KEY`) copy of key A: not what Google ships.
pub const KEY_A_PKCS1: &str = include_str!("../fixtures/google_play/rsa_a_pkcs1.pem");
/// A P-256 key: not RSA.
pub const EC_P256: &str = include_str!("../fixtures/google_play/ec_p256.pem");

impl PlayTestKey {
    /// A service-account JSON key file as Google Cloud downloads it, for `client_email`.
    pub fn service_account_json(&self, client_email: &str) -> Value {
        json!({
            "type": "service_account",
            "project_id": "shipwatch-test",
            "private_key_id": "5f1c0a3b9d2e4f60718293a4b5c6d7e8f9a0b1c2",
            "private_key": self.private_pem,
            "client_email": client_email,
            "client_id": "104857600000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            // Deliberately elsewhere: shipwatch must use its own setting, never this.
            "token_uri": "http://127.0.0.1:9/never-used",
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/x",
            "universe_domain": "googleapis.com"
        })
    }

    /// Lines of the private key's base64 body, to prove none leaks.
    pub fn pem_body_lines(&self) -> Vec<String> {
        self.private_pem
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() > 20)
            .map(str::to_owned)
            .collect()
    }

    /// The PKCS#1 `RSAPublicKey` DER of the public half (from the public PEM, not the private).
    fn public_key_der(&self) -> Vec<u8> {
        let (label, der) = pkcs8::der::pem::decode_vec(self.public_pem.as_bytes()).expect("PEM");
        assert_eq!(label, "PUBLIC KEY");
        let spki = pkcs8::spki::SubjectPublicKeyInfoRef::try_from(der.as_slice()).expect("SPKI");
        spki.subject_public_key.raw_bytes().to_vec()
    }
}

/// A fault the next matching API calls answer with.
#[derive(Clone, Debug)]
pub enum PlayFault {
    /// 429 with `Retry-After: seconds`.
    RateLimited { retry_after_seconds: u64 },
    /// 503.
    Unavailable,
}

#[derive(Default)]
struct PlayApp {
    readers: HashSet<String>,
    tracks: Vec<Value>,
    title: String,
}

#[derive(Default)]
struct World {
    /// client_email -> (RSAPublicKey DER, revoked)
    accounts: HashMap<String, (Vec<u8>, bool)>,
    tokens: HashMap<String, String>,
    apps: HashMap<String, PlayApp>,
    open_edits: HashMap<String, String>,
    next_id: u64,
    faults: VecDeque<PlayFault>,
    token_faults: VecDeque<PlayFault>,
    /// (method, path) of every request, in order.
    requests: Vec<(String, String)>,
    rejected_assertions: Vec<String>,
}

struct Shared {
    world: Mutex<World>,
    token_url: String,
}

/// The running fake; stops when dropped.
pub struct FakeGooglePlay {
    shared: Arc<Shared>,
    address: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGooglePlay {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeGooglePlay {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Google Play");
        let address = listener.local_addr().expect("address");
        let shared = Arc::new(Shared {
            world: Mutex::new(World::default()),
            token_url: format!("http://{address}/token"),
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

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.shared.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// For `GOOGLE_OAUTH_TOKEN_URL`.
    pub fn token_url(&self) -> String {
        self.shared.token_url.clone()
    }

    /// For `GOOGLE_PLAY_API_BASE_URL`.
    pub fn api_base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The settings that point shipwatch at this fake.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("GOOGLE_OAUTH_TOKEN_URL", self.token_url()),
            ("GOOGLE_PLAY_API_BASE_URL", self.api_base_url()),
        ]
    }

    /// A service account Google knows, with the public half of `key`.
    pub fn add_service_account(&self, client_email: &str, key: &PlayTestKey) {
        self.world()
            .accounts
            .insert(client_email.to_owned(), (key.public_key_der(), false));
    }

    /// The key was deleted or the account disabled: grants are refused, tokens stop working.
    pub fn revoke(&self, client_email: &str) {
        let mut world = self.world();
        if let Some(account) = world.accounts.get_mut(client_email) {
            account.1 = true;
        }
        world.tokens.retain(|_, email| email != client_email);
    }

    /// An app in Play Console with its default listing title.
    pub fn add_app(&self, package: &str, title: &str) {
        self.world().apps.insert(
            package.to_owned(),
            PlayApp {
                title: title.to_owned(),
                ..PlayApp::default()
            },
        );
    }

    /// Invites the service account to the app (Users and permissions).
    pub fn grant(&self, package: &str, client_email: &str) {
        if let Some(app) = self.world().apps.get_mut(package) {
            app.readers.insert(client_email.to_owned());
        }
    }

    /// Removes the service account from the app (Users and permissions).
    pub fn revoke_permission(&self, package: &str, client_email: &str) {
        if let Some(app) = self.world().apps.get_mut(package) {
            app.readers.remove(client_email);
        }
    }

    /// Sets the app's `Track` objects as `edits.tracks.list` returns them.
    pub fn set_tracks(&self, package: &str, tracks: Vec<Value>) {
        if let Some(app) = self.world().apps.get_mut(package) {
            app.tracks = tracks;
        }
    }

    /// The next API calls (not token calls) answer with these faults, one each.
    pub fn push_fault(&self, fault: PlayFault) {
        self.world().faults.push_back(fault);
    }

    /// The next token calls answer with these faults, one each.
    pub fn push_token_fault(&self, fault: PlayFault) {
        self.world().token_faults.push_back(fault);
    }

    /// (method, path) of every request so far.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.world().requests.clone()
    }

    pub fn count(&self, method: &str, path_contains: &str) -> usize {
        self.world()
            .requests
            .iter()
            .filter(|(m, p)| m == method && p.contains(path_contains))
            .count()
    }

    /// Edits inserted and not deleted.
    pub fn open_edits(&self) -> usize {
        self.world().open_edits.len()
    }

    /// Why assertions were refused (for failing tests' messages).
    pub fn rejected_assertions(&self) -> Vec<String> {
        self.world().rejected_assertions.clone()
    }
}

fn google_error(status: StatusCode, message: &str, google_status: &str, reason: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "error": {
                "code": status.as_u16(),
                "message": message,
                "status": google_status,
                "errors": [{"message": message, "domain": "global", "reason": reason}],
            }
        })),
    )
        .into_response()
}

fn fault_response(fault: PlayFault) -> Response {
    match fault {
        PlayFault::RateLimited {
            retry_after_seconds,
        } => {
            let mut response = google_error(
                StatusCode::TOO_MANY_REQUESTS,
                "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute'.",
                "RESOURCE_EXHAUSTED",
                "rateLimitExceeded",
            );
            response.headers_mut().insert(
                "retry-after",
                retry_after_seconds.to_string().parse().expect("header"),
            );
            response
        }
        PlayFault::Unavailable => google_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is currently unavailable.",
            "UNAVAILABLE",
            "backendError",
        ),
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    shared
        .world
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .requests
        .push((method.to_string(), path.clone()));
    if path == "/token" && method == Method::POST {
        return token(&shared, &headers, &body);
    }
    api(&shared, &method, &path, &headers)
}

fn grant_error(world: &mut World, why: &str) -> Response {
    world.rejected_assertions.push(why.to_owned());
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": "invalid_grant", "error_description": why})),
    )
        .into_response()
}

fn token(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Response {
    let mut world = shared.world.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(fault) = world.token_faults.pop_front() {
        return fault_response(fault);
    }
    let form_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !form_type.starts_with("application/x-www-form-urlencoded") {
        return grant_error(&mut world, "expected a form body");
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "unsupported_grant_type", "error_description": "Invalid grant_type"})),
        )
            .into_response();
    }
    let Some(assertion) = form.get("assertion") else {
        return grant_error(&mut world, "no assertion");
    };
    let parts: Vec<&str> = assertion.split('.').collect();
    if parts.len() != 3 {
        return grant_error(&mut world, "Invalid JWT");
    }
    let decode = |part: &str| -> Option<Value> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
    };
    let (Some(header), Some(claims), Ok(signature)) = (
        decode(parts[0]),
        decode(parts[1]),
        URL_SAFE_NO_PAD.decode(parts[2]),
    ) else {
        return grant_error(&mut world, "Invalid JWT encoding");
    };
    if header["alg"] != "RS256" {
        return grant_error(&mut world, "Invalid JWT: alg must be RS256");
    }
    let iss = claims["iss"].as_str().unwrap_or_default().to_owned();
    let Some((public_key, revoked)) = world.accounts.get(&iss).cloned() else {
        return grant_error(&mut world, "Invalid JWT Signature.");
    };
    let signed = format!("{}.{}", parts[0], parts[1]);
    if UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &public_key)
        .verify(signed.as_bytes(), &signature)
        .is_err()
    {
        return grant_error(&mut world, "Invalid JWT Signature.");
    }
    if claims["aud"] != shared.token_url.as_str() {
        return grant_error(&mut world, "Invalid JWT: aud is not the token URL");
    }
    if claims["scope"] != SCOPE {
        return grant_error(&mut world, "Invalid JWT: scope is not androidpublisher");
    }
    let now = chrono::Utc::now().timestamp();
    let (Some(iat), Some(exp)) = (claims["iat"].as_i64(), claims["exp"].as_i64()) else {
        return grant_error(&mut world, "Invalid JWT: iat and exp are required");
    };
    if exp - iat > 3600 || exp <= now || iat > now + 300 {
        return grant_error(
            &mut world,
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.",
        );
    }
    if revoked {
        return grant_error(&mut world, "Invalid grant: account not found");
    }
    world.next_id += 1;
    let token = format!(
        "ya29.fake-{}-{}",
        world.next_id,
        uuid::Uuid::new_v4().simple()
    );
    world.tokens.insert(token.clone(), iss);
    axum::Json(json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}))
        .into_response()
}

fn api(shared: &Shared, method: &Method, path: &str, headers: &HeaderMap) -> Response {
    let mut world = shared.world.lock().unwrap_or_else(|p| p.into_inner());
    let caller = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|token| world.tokens.get(token).cloned());
    let Some(caller) = caller else {
        return google_error(
            StatusCode::UNAUTHORIZED,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
            "UNAUTHENTICATED",
            "authError",
        );
    };
    let Some(rest) = path.strip_prefix("/androidpublisher/v3/applications/") else {
        return google_error(StatusCode::NOT_FOUND, "Not Found", "NOT_FOUND", "notFound");
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let package = segments[0].to_owned();
    if let Some(fault) = world.faults.pop_front() {
        return fault_response(fault);
    }
    let Some(app) = world.apps.get(&package) else {
        return google_error(
            StatusCode::NOT_FOUND,
            "Package not found: ".to_owned().as_str(),
            "NOT_FOUND",
            "applicationNotFound",
        );
    };
    if !app.readers.contains(&caller) {
        return google_error(
            StatusCode::FORBIDDEN,
            "The caller does not have permission",
            "PERMISSION_DENIED",
            "forbidden",
        );
    }
    let tracks = app.tracks.clone();
    let title = app.title.clone();
    match (method.clone(), &segments[1..]) {
        (Method::POST, ["edits"]) => {
            world.next_id += 1;
            let id = format!("{}", 1_000_000 + world.next_id);
            world.open_edits.insert(id.clone(), package);
            axum::Json(json!({"id": id, "expiryTimeSeconds": (chrono::Utc::now().timestamp() + 3600).to_string()}))
                .into_response()
        }
        (Method::DELETE, ["edits", id]) => {
            if world.open_edits.remove(*id).is_some() {
                StatusCode::NO_CONTENT.into_response()
            } else {
                google_error(StatusCode::NOT_FOUND, "Edit not found", "NOT_FOUND", "editNotFound")
            }
        }
        (Method::GET, ["edits", id, "tracks"]) if world.open_edits.contains_key(*id) => {
            axum::Json(json!({"kind": "androidpublisher#tracksListResponse", "tracks": tracks}))
                .into_response()
        }
        (Method::GET, ["edits", id, "listings"]) if world.open_edits.contains_key(*id) => {
            axum::Json(json!({
                "kind": "androidpublisher#listingsListResponse",
                "listings": [{"language": "en-US", "title": title, "shortDescription": "", "fullDescription": ""}],
            }))
            .into_response()
        }
        _ => google_error(StatusCode::NOT_FOUND, "Not Found", "NOT_FOUND", "notFound"),
    }
}
