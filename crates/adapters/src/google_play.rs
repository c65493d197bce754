//! The store-account port over Google Play: OAuth access tokens by the JWT bearer grant (one per
//! service-account key, cached), and the Google Play Developer API (androidpublisher v3).
//!
//! Requests and shapes follow Google's androidpublisher v3 reference: `edits.insert`
//! (`POST /androidpublisher/v3/applications/{packageName}/edits`, answering an `AppEdit` with
//! its `id`) and `edits.delete` (`DELETE .../edits/{editId}`); errors come as
//! `{"error": {"code", "message", "status", "errors": [...]}}`, the token endpoint's as
//! `{"error": "invalid_grant", "error_description": ...}`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::TimeDelta;
use reqwest::StatusCode;
use serde::Deserialize;
use shipwatch_service::accounts::{
    AccountError, AccountSession, AccountSummary, AccountUsage, CredentialError, Credentials,
    PlayCredentials, StoreAccounts,
};
use shipwatch_service::domain::observation::{
    Observation, ObservedPlayApp, ObservedRelease, ObservedTrack,
};
use shipwatch_service::domain::play_snapshot::needs_title;
use shipwatch_service::domain::snapshot::KeySnapshot;
use shipwatch_service::model::{AccountRef, KeyStatusCode, SecretValue};
use shipwatch_shared::clock::Clock;
use shipwatch_shared::google_play::ServiceAccountKey;
use shipwatch_shared::google_play::token::{
    JWT_BEARER_GRANT, OAuthToken, TokenCache, sign_assertion,
};
use zeroize::Zeroizing;

/// Where Google is reached (from `Settings`, read once).
#[derive(Clone, Debug)]
pub struct GooglePlayConfig {
    /// `GOOGLE_OAUTH_TOKEN_URL`: the token endpoint and the assertion's `aud`.
    pub token_url: String,
    /// `GOOGLE_PLAY_API_BASE_URL`, without a trailing slash.
    pub api_base_url: String,
    /// Per request.
    pub timeout: Duration,
}

/// The Google Play adapter of [`StoreAccounts`].
pub struct GooglePlayAccounts {
    http: reqwest::Client,
    config: GooglePlayConfig,
    tokens: Arc<TokenCache>,
    clock: Arc<dyn Clock>,
}

impl GooglePlayAccounts {
    pub fn new(config: GooglePlayConfig, clock: Arc<dyn Clock>) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            // Google's API does not redirect; following one could leak the bearer token.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            http,
            config,
            tokens: Arc::new(TokenCache::new(clock.clone())),
            clock,
        })
    }
}

impl StoreAccounts for GooglePlayAccounts {
    fn credentials(
        &self,
        account: &AccountRef,
        secret: &SecretValue,
    ) -> Result<Credentials, CredentialError> {
        let AccountRef::GooglePlay {
            client_email,
            package_names,
            ..
        } = account
        else {
            return Err(CredentialError("not a Google Play key".into()));
        };
        let key = ServiceAccountKey::from_json(secret.expose().as_bytes())
            .map_err(|e| CredentialError(e.to_string()))?;
        if key.client_email() != client_email {
            return Err(CredentialError(
                "the stored service account is not the key record's".into(),
            ));
        }
        Ok(Credentials::GooglePlay(Arc::new(PlayCredentials {
            key,
            package_names: package_names.clone(),
        })))
    }

    fn session(&self, credentials: &Credentials) -> Box<dyn AccountSession> {
        match credentials {
            Credentials::GooglePlay(play) => Box::new(PlaySession {
                http: self.http.clone(),
                config: self.config.clone(),
                tokens: self.tokens.clone(),
                clock: self.clock.clone(),
                key: Arc::new(play.key.clone()),
                packages: play.package_names.clone(),
                requests: AtomicU64::new(0),
            }),
            other => Box::new(crate::store_dispatch::WrongStore(other.platform())),
        }
    }
}

/// Requests of one validation or sweep of one Google Play key.
struct PlaySession {
    http: reqwest::Client,
    config: GooglePlayConfig,
    tokens: Arc<TokenCache>,
    clock: Arc<dyn Clock>,
    key: Arc<ServiceAccountKey>,
    packages: Vec<String>,
    requests: AtomicU64,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: i64,
}

#[derive(Deserialize)]
struct TokenErrorAnswer {
    error: String,
}

#[derive(Deserialize)]
struct AppEdit {
    id: String,
}

/// `TracksListResponse` of `edits.tracks.list`.
#[derive(Deserialize)]
struct TracksListResponse {
    #[serde(default)]
    tracks: Vec<Track>,
}

#[derive(Deserialize)]
struct Track {
    track: String,
    #[serde(default)]
    releases: Vec<TrackRelease>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TrackRelease {
    name: Option<String>,
    #[serde(default)]
    version_codes: Vec<String>,
    status: Option<String>,
    user_fraction: Option<serde_json::Number>,
}

/// `ListingsListResponse` of `edits.listings.list`.
#[derive(Deserialize)]
struct ListingsListResponse {
    #[serde(default)]
    listings: Vec<Listing>,
}

#[derive(Deserialize)]
struct Listing {
    title: Option<String>,
}

impl PlaySession {
    fn count(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// The key's access token, from the cache or by one exchange.
    async fn token(&self) -> Result<OAuthToken, AccountError> {
        self.tokens
            .get(&self.key, || async {
                let assertion = sign_assertion(&self.key, &self.config.token_url, self.clock.now())
                    .map_err(|e| AccountError::Unavailable(e.to_string()))?;
                let form = Zeroizing::new(
                    url::form_urlencoded::Serializer::new(String::new())
                        .append_pair("grant_type", JWT_BEARER_GRANT)
                        .append_pair("assertion", assertion.as_str())
                        .finish(),
                );
                self.count();
                let answer = self
                    .http
                    .post(&self.config.token_url)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(form.as_str().to_owned())
                    .send()
                    .await
                    .map_err(|e| AccountError::Unavailable(transport(&e)))?;
                let status = answer.status();
                let retry_after = retry_after(&answer);
                let body = answer
                    .bytes()
                    .await
                    .map_err(|e| AccountError::Unavailable(transport(&e)))?;
                if status.is_success() {
                    let token: TokenAnswer = serde_json::from_slice(&body)
                        .map_err(|_| AccountError::Unavailable("unreadable token answer".into()))?;
                    let expires_at = self.clock.now() + TimeDelta::seconds(token.expires_in);
                    return Ok(OAuthToken::new(token.access_token, expires_at));
                }
                match status {
                    StatusCode::TOO_MANY_REQUESTS => Err(AccountError::RateLimited { retry_after }),
                    s if s.is_server_error() => {
                        Err(AccountError::Unavailable(format!("token endpoint {s}")))
                    }
                    // 400/401 with `invalid_grant` (key deleted or disabled), `invalid_client`,
                    // `unauthorized_client`: the credentials are refused.
                    _ => match serde_json::from_slice::<TokenErrorAnswer>(&body) {
                        Ok(err) => {
                            tracing::info!(error = %err.error, "Google refused the grant");
                            Err(AccountError::NotAuthorized)
                        }
                        Err(_) => Err(AccountError::Unavailable(format!(
                            "token endpoint {status}"
                        ))),
                    },
                }
            })
            .await
    }

    fn edits_url(&self, package: &str) -> String {
        format!(
            "{}/androidpublisher/v3/applications/{}/edits",
            self.config.api_base_url,
            urlencode(package)
        )
    }

    /// Sends one API request with the key's token and maps Google's errors.
    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Vec<u8>, AccountError> {
        let token = self.token().await?;
        self.count();
        let answer = request
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(|e| AccountError::Unavailable(transport(&e)))?;
        let status = answer.status();
        let retry_after = retry_after(&answer);
        let body = answer
            .bytes()
            .await
            .map_err(|e| AccountError::Unavailable(transport(&e)))?;
        match status {
            s if s.is_success() => Ok(body.to_vec()),
            StatusCode::UNAUTHORIZED => {
                // The token was refused: the next request exchanges again.
                self.tokens.forget(&self.key).await;
                Err(AccountError::NotAuthorized)
            }
            StatusCode::FORBIDDEN => {
                Err(AccountError::Refused(KeyStatusCode::InsufficientPermission))
            }
            StatusCode::NOT_FOUND => Err(AccountError::Refused(KeyStatusCode::PackageNotFound)),
            StatusCode::TOO_MANY_REQUESTS => Err(AccountError::RateLimited { retry_after }),
            s => Err(AccountError::Unavailable(format!(
                "Google Play answered {s}"
            ))),
        }
    }

    async fn read_edit(
        &self,
        edit_url: &str,
        prev: Option<&KeySnapshot>,
        package: &str,
    ) -> Result<ObservedPlayApp, AccountError> {
        let body = self
            .call(self.http.get(format!("{edit_url}/tracks")))
            .await?;
        let tracks: TracksListResponse = serde_json::from_slice(&body)
            .map_err(|_| AccountError::Unavailable("unreadable tracks list".into()))?;
        let title = if needs_title(prev, package) {
            let body = self
                .call(self.http.get(format!("{edit_url}/listings")))
                .await?;
            let listings: ListingsListResponse = serde_json::from_slice(&body)
                .map_err(|_| AccountError::Unavailable("unreadable listings".into()))?;
            // The default language's listing is not marked in the list: the first with a
            // title stands for it.
            listings
                .listings
                .into_iter()
                .find_map(|l| l.title.filter(|t| !t.is_empty()))
        } else {
            None
        };
        Ok(ObservedPlayApp {
            package_name: package.to_owned(),
            title,
            tracks: tracks
                .tracks
                .into_iter()
                .map(|t| ObservedTrack {
                    track: t.track,
                    releases: t
                        .releases
                        .into_iter()
                        .map(|r| ObservedRelease {
                            name: r.name,
                            version_codes: r.version_codes,
                            status: r.status.unwrap_or_else(|| "statusUnspecified".into()),
                            user_fraction: r.user_fraction,
                        })
                        .collect(),
                })
                .collect(),
        })
    }

    /// `edits.insert` then `edits.delete`: proves the package is readable, leaves nothing.
    async fn probe_package(&self, package: &str) -> Result<(), AccountError> {
        let body = self.call(self.http.post(self.edits_url(package))).await?;
        let edit: AppEdit = serde_json::from_slice(&body)
            .map_err(|_| AccountError::Unavailable("unreadable AppEdit".into()))?;
        let delete = format!("{}/{}", self.edits_url(package), urlencode(&edit.id));
        self.call(self.http.delete(delete)).await?;
        Ok(())
    }
}

#[async_trait]
impl AccountSession for PlaySession {
    /// The token first (a refused grant is `not_authorized`), then each package through an edit
    /// that is deleted again (403 `insufficient_permission`, 404 `package_not_found`).
    async fn validate(&self) -> Result<AccountSummary, AccountError> {
        self.token().await?;
        for package in &self.packages {
            self.probe_package(package).await?;
        }
        Ok(AccountSummary {
            apps_count: u32::try_from(self.packages.len()).unwrap_or(u32::MAX),
        })
    }

    /// Per package: `edits.insert`, `edits.tracks.list`, the default listing's title only when
    /// the snapshot has none (`edits.listings.list`, once per baseline), and `edits.delete`:
    /// 3 requests per package per sweep (4 at baseline), plus one token exchange an hour.
    async fn observe(&self, prev: Option<&KeySnapshot>) -> Result<Observation, AccountError> {
        let mut play_apps = Vec::with_capacity(self.packages.len());
        for package in &self.packages {
            let body = self.call(self.http.post(self.edits_url(package))).await?;
            let edit: AppEdit = serde_json::from_slice(&body)
                .map_err(|_| AccountError::Unavailable("unreadable AppEdit".into()))?;
            let edit_url = format!("{}/{}", self.edits_url(package), urlencode(&edit.id));
            let read = self.read_edit(&edit_url, prev, package).await;
            // The edit is deleted whatever the read gave, so none is left open.
            let deleted = self.call(self.http.delete(&edit_url)).await;
            let app = read?;
            deleted?;
            play_apps.push(app);
        }
        Ok(Observation {
            play_apps,
            ..Observation::default()
        })
    }

    fn usage(&self) -> AccountUsage {
        AccountUsage {
            requests: self.requests.load(Ordering::Relaxed),
            rate_limit: None,
        }
    }
}

fn retry_after(answer: &reqwest::Response) -> Option<Duration> {
    answer
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// A transport error without its URL (which is harmless, but keeps messages short).
fn transport(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timeout".into()
    } else {
        "transport error".into()
    }
}

/// Package names and edit ids are letters, digits, `.` and `_` (package names are checked on
/// upload); anything else is percent-encoded so it cannot change the path.
fn urlencode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}
