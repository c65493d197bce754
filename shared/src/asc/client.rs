//! The App Store Connect HTTP client: one pooled connection set and one token cache per process,
//! and per-key sessions that count their requests and remember the last rate-limit report.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use url::Url;

use super::config::AscConfig;
use super::error::{AscError, RateLimit};
use super::jsonapi::{Document, Included, PrimaryData, Resource};
use super::models::*;
use super::token::{AccessToken, TokenCache, TokenError, install_crypto_provider};
use crate::clock::{Clock, SystemClock};
use crate::credentials::ApiCredentials;

/// Page size for `/v1/apps` and `/v1/builds` (the spec's maximum for both).
pub const MAX_PAGE_LIMIT: u32 = 200;
/// The spec's maximum for `limit[appStoreVersions]` when included from `/v1/apps`.
pub const MAX_INCLUDED_VERSIONS: u32 = 50;
/// Guards against a server whose `links.next` never ends.
const MAX_PAGES: usize = 500;

const APP_FIELDS: &str = "name,bundleId,appStoreVersions";
const VERSION_FIELDS: &str =
    "platform,versionString,appVersionState,appStoreState,releaseType,createdDate";
const BUILD_FIELDS: &str = "version,uploadedDate,expired,processingState,preReleaseVersion,buildBetaDetail,betaAppReviewSubmission,app";
const BUILD_INCLUDES: &str = "buildBetaDetail,preReleaseVersion,betaAppReviewSubmission,app";
const PHASED_RELEASE_FIELDS: &str = "phasedReleaseState,startDate,currentDayNumber";
const REVIEW_SUBMISSION_FIELDS: &str = "platform,submittedDate,state,app,appStoreVersionForReview";

struct ClientInner {
    http: reqwest::Client,
    config: AscConfig,
    clock: Arc<dyn Clock>,
    tokens: TokenCache,
}

/// The App Store Connect client. Cheap to clone; build one per process and share it.
#[derive(Clone)]
pub struct AscClient {
    inner: Arc<ClientInner>,
}

impl std::fmt::Debug for AscClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AscClient")
            .field("base_url", &self.inner.config.base_url.as_str())
            .finish_non_exhaustive()
    }
}

impl AscClient {
    pub fn new(config: AscConfig) -> Result<Self, AscError> {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    pub fn with_clock(config: AscConfig, clock: Arc<dyn Clock>) -> Result<Self, AscError> {
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(concat!("shipwatch/", env!("CARGO_PKG_VERSION")))
            // Never carry the bearer token to wherever a redirect points.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| AscError::Client("the HTTP client could not be built".into()))?;
        Ok(Self {
            inner: Arc::new(ClientInner {
                http,
                config,
                clock,
                tokens: TokenCache::default(),
            }),
        })
    }

    pub fn config(&self) -> &AscConfig {
        &self.inner.config
    }

    /// A session calling App Store Connect as the given API key.
    pub fn session(&self, credentials: Arc<ApiCredentials>) -> AscSession {
        AscSession {
            client: self.clone(),
            credentials,
            stats: Arc::new(SessionStats::default()),
        }
    }

    /// The bearer token every request as `credentials` uses: the cached one, signed anew only
    /// when none is cached or it is about to expire (also what the token benchmarks measure).
    pub fn token_for(&self, credentials: &ApiCredentials) -> Result<AccessToken, TokenError> {
        self.inner
            .tokens
            .token_for(credentials, self.inner.clock.as_ref())
    }

    /// How many tokens this client has signed (for tests and metrics).
    pub fn tokens_minted(&self) -> u64 {
        self.inner.tokens.minted()
    }
}

#[derive(Default)]
struct SessionStats {
    requests: AtomicU64,
    last_rate_limit: Mutex<Option<RateLimit>>,
}

/// Calls made as one API key. Clones share the request counter.
#[derive(Clone)]
pub struct AscSession {
    client: AscClient,
    credentials: Arc<ApiCredentials>,
    stats: Arc<SessionStats>,
}

impl std::fmt::Debug for AscSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AscSession")
            .field("key_id", &self.credentials.key_id)
            .field("requests_sent", &self.requests_sent())
            .finish_non_exhaustive()
    }
}

impl AscSession {
    pub fn credentials(&self) -> &ApiCredentials {
        &self.credentials
    }

    /// HTTP requests this session (and its clones) sent.
    pub fn requests_sent(&self) -> u64 {
        self.stats.requests.load(Ordering::Relaxed)
    }

    /// The most recent `X-Rate-Limit` report App Store Connect sent to this session.
    pub fn last_rate_limit(&self) -> Option<RateLimit> {
        *self
            .stats
            .last_rate_limit
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// `GET /v1/apps?fields[apps]=name&limit=1`: the number of apps the key can see.
    pub async fn count_apps(&self) -> Result<u32, AscError> {
        let url = self.endpoint("/v1/apps", &[("fields[apps]", "name"), ("limit", "1")]);
        let document = self.get_document(&url).await?;
        let total = document
            .total()
            .ok_or_else(|| AscError::Decode("`meta.paging.total` is missing".into()))?;
        u32::try_from(total)
            .map_err(|_| AscError::Decode("`meta.paging.total` is too large".into()))
    }

    /// `GET /v1/builds?fields[builds]=version&limit=1`: proves the key's role can read builds.
    pub async fn probe_builds(&self) -> Result<(), AscError> {
        let url = self.endpoint(
            "/v1/builds",
            &[("fields[builds]", "version"), ("limit", "1")],
        );
        self.get_document(&url).await.map(|_| ())
    }

    /// Every app with its App Store versions, following `links.next` to the last page.
    ///
    /// Apple includes at most [`MAX_INCLUDED_VERSIONS`] versions per app; when the relationship
    /// reports more, the app's versions are read completely from `/v1/apps/{id}/appStoreVersions`.
    pub async fn list_apps_with_versions(&self) -> Result<Vec<AppWithVersions>, AscError> {
        let included_limit = MAX_INCLUDED_VERSIONS.to_string();
        let page_limit = MAX_PAGE_LIMIT.to_string();
        let url = self.endpoint(
            "/v1/apps",
            &[
                ("fields[apps]", APP_FIELDS),
                ("fields[appStoreVersions]", VERSION_FIELDS),
                ("include", "appStoreVersions"),
                ("limit", &page_limit),
                ("limit[appStoreVersions]", &included_limit),
            ],
        );
        let (resources, included) = self.get_all_pages(url).await?;
        let mut apps = Vec::with_capacity(resources.len());
        for resource in &resources {
            let app = app_from(resource)?;
            let linked = resource.to_many("appStoreVersions");
            let truncated = resource
                .relationship_total("appStoreVersions")
                .is_some_and(|total| total > linked.len() as u64);
            let versions = if truncated {
                self.list_versions_of(&app.id).await?
            } else {
                linked
                    .iter()
                    .map(|identifier| {
                        included
                            .get(identifier)
                            .ok_or_else(|| {
                                AscError::Decode(format!(
                                    "app {} links version {} that is not included",
                                    app.id, identifier.id
                                ))
                            })
                            .and_then(version_from)
                    })
                    .collect::<Result<Vec<_>, _>>()?
            };
            apps.push(AppWithVersions { app, versions });
        }
        Ok(apps)
    }

    /// `GET /v1/apps/{id}/appStoreVersions`, all pages.
    pub async fn list_versions_of(&self, app_id: &str) -> Result<Vec<AppStoreVersion>, AscError> {
        let page_limit = MAX_PAGE_LIMIT.to_string();
        let mut url = self.endpoint_with_segments(&["v1", "apps", app_id, "appStoreVersions"]);
        url.query_pairs_mut()
            .append_pair("fields[appStoreVersions]", VERSION_FIELDS)
            .append_pair("limit", &page_limit);
        let (resources, _) = self.get_all_pages(url).await?;
        resources.iter().map(version_from).collect()
    }

    /// One page of the newest builds across all apps (`sort=-uploadedDate`), at most 200.
    pub async fn list_recent_builds(&self, limit: u32) -> Result<Vec<BuildWithDetails>, AscError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = limit.min(MAX_PAGE_LIMIT).to_string();
        let url = self.endpoint(
            "/v1/builds",
            &[
                ("sort", "-uploadedDate"),
                ("include", BUILD_INCLUDES),
                ("fields[builds]", BUILD_FIELDS),
                ("fields[preReleaseVersions]", "version,platform"),
                (
                    "fields[buildBetaDetails]",
                    "internalBuildState,externalBuildState",
                ),
                ("fields[betaAppReviewSubmissions]", "betaReviewState"),
                ("fields[apps]", "name,bundleId"),
                ("limit", &limit),
            ],
        );
        let document = self.get_document(&url).await?;
        let (resources, included) = document.into_many()?;
        resources
            .iter()
            .map(|resource| build_from(resource, &included))
            .collect()
    }

    /// `GET /v1/appStoreVersions/{id}/appStoreVersionPhasedRelease`; `None` when the version
    /// has no phased release (Apple answers 404 or `data: null`).
    pub async fn get_phased_release(
        &self,
        version_id: &str,
    ) -> Result<Option<PhasedRelease>, AscError> {
        let mut url = self.endpoint_with_segments(&[
            "v1",
            "appStoreVersions",
            version_id,
            "appStoreVersionPhasedRelease",
        ]);
        url.query_pairs_mut().append_pair(
            "fields[appStoreVersionPhasedReleases]",
            PHASED_RELEASE_FIELDS,
        );
        let document = match self.get_document(&url).await {
            Ok(document) => document,
            Err(AscError::NotFound { .. }) => return Ok(None),
            Err(other) => return Err(other),
        };
        match document.data {
            PrimaryData::One(resource) => phased_release_from(&resource).map(Some),
            PrimaryData::Null => Ok(None),
            PrimaryData::Many(_) => Err(AscError::Decode(
                "expected one phased release, got a list".into(),
            )),
        }
    }

    /// `GET /v1/reviewSubmissions?filter[app]={id}`, all pages.
    pub async fn list_review_submissions(
        &self,
        app_id: &str,
    ) -> Result<Vec<ReviewSubmission>, AscError> {
        let page_limit = MAX_PAGE_LIMIT.to_string();
        let url = self.endpoint(
            "/v1/reviewSubmissions",
            &[
                ("filter[app]", app_id),
                ("fields[reviewSubmissions]", REVIEW_SUBMISSION_FIELDS),
                ("limit", &page_limit),
            ],
        );
        let (resources, _) = self.get_all_pages(url).await?;
        resources
            .iter()
            .map(|resource| review_submission_from(resource, app_id))
            .collect()
    }

    pub(super) fn endpoint(&self, path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.client.inner.config.endpoint(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Builds a path from segments, percent-encoding each (ids come from App Store Connect data).
    pub(super) fn endpoint_with_segments(&self, segments: &[&str]) -> Url {
        let mut url = self.client.inner.config.endpoint("");
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    pub(super) async fn get_all_pages(
        &self,
        first: Url,
    ) -> Result<(Vec<Resource>, Included), AscError> {
        let mut resources = Vec::new();
        let mut included = Included::default();
        let mut visited = HashSet::new();
        let mut next = Some(first);
        while let Some(url) = next.take() {
            if !visited.insert(url.to_string()) || visited.len() > MAX_PAGES {
                return Err(AscError::Decode("pagination does not end".into()));
            }
            let document = self.get_document(&url).await?;
            next = match document.next_link() {
                Some(link) => Some(self.checked_next_link(&url, link)?),
                None => None,
            };
            let (page, page_included) = document.into_many()?;
            resources.extend(page);
            included.extend(page_included);
        }
        Ok((resources, included))
    }

    /// Only follows `links.next` on the configured origin, so the token never leaves it.
    fn checked_next_link(&self, current: &Url, link: &str) -> Result<Url, AscError> {
        let next = current
            .join(link)
            .map_err(|_| AscError::Decode("`links.next` is not a URL".into()))?;
        if next.origin() != self.client.inner.config.base_url.origin() {
            return Err(AscError::Decode(
                "`links.next` points to another host; not following it".into(),
            ));
        }
        Ok(next)
    }

    async fn get_document(&self, url: &Url) -> Result<Document, AscError> {
        self.send_document(reqwest::Method::GET, url, None)
            .await?
            .ok_or_else(|| AscError::Decode("the answer has no body".into()))
    }

    /// One signed request; `Ok(None)` for a success without a body (`204 No Content`).
    pub(super) async fn send_document(
        &self,
        method: reqwest::Method,
        url: &Url,
        body: Option<&serde_json::Value>,
    ) -> Result<Option<Document>, AscError> {
        let inner = &self.client.inner;
        let token = inner
            .tokens
            .token_for(&self.credentials, inner.clock.as_ref())
            .map_err(|e| AscError::Client(e.to_string()))?;
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(path = url.path(), key_id = %self.credentials.key_id, "App Store Connect request");
        let mut request = inner
            .http
            .request(method, url.clone())
            .bearer_auth(token.expose())
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request
            .send()
            .await
            .map_err(|e| AscError::from_transport(&e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let rate_limit = headers
            .get("x-rate-limit")
            .and_then(|v| v.to_str().ok())
            .and_then(RateLimit::parse);
        if rate_limit.is_some() {
            *self
                .stats
                .last_rate_limit
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = rate_limit;
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| AscError::from_transport(&e))?;
        if (200..300).contains(&status) {
            if body.is_empty() {
                return Ok(None);
            }
            return Document::parse(&body).map(Some);
        }
        let retry_after = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, inner.clock.now()));
        let error = AscError::from_response(status, &body, retry_after, rate_limit);
        tracing::debug!(status, code = error.apple_code(), "App Store Connect error");
        Err(error)
    }
}

/// `Retry-After` as delay-seconds or an HTTP date.
fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// Apple sends RFC 3339 dates, sometimes with a `+0000` offset and milliseconds.
pub(crate) fn parse_apple_date(raw: &str) -> Result<DateTime<Utc>, AscError> {
    DateTime::parse_from_rfc3339(raw)
        .or_else(|_| DateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| AscError::Decode(format!("`{raw}` is not a date")))
}

fn optional_date(raw: Option<String>) -> Result<Option<DateTime<Utc>>, AscError> {
    raw.as_deref().map(parse_apple_date).transpose()
}

fn missing(resource: &Resource, attribute: &str) -> AscError {
    AscError::Decode(format!(
        "{} {} has no `{attribute}`",
        resource.kind, resource.id
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AppAttributes {
    name: Option<String>,
    bundle_id: Option<String>,
}

fn app_from(resource: &Resource) -> Result<App, AscError> {
    let attributes: AppAttributes = resource.attributes()?;
    Ok(App {
        id: resource.id.clone(),
        name: attributes.name.ok_or_else(|| missing(resource, "name"))?,
        bundle_id: attributes
            .bundle_id
            .ok_or_else(|| missing(resource, "bundleId"))?,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VersionAttributes {
    platform: Option<Platform>,
    version_string: Option<String>,
    app_version_state: Option<AppVersionState>,
    app_store_state: Option<AppStoreState>,
    release_type: Option<ReleaseType>,
    created_date: Option<String>,
}

fn version_from(resource: &Resource) -> Result<AppStoreVersion, AscError> {
    let attributes: VersionAttributes = resource.attributes()?;
    let state = match (&attributes.app_version_state, &attributes.app_store_state) {
        (Some(state), _) => state.clone(),
        (None, Some(legacy)) => legacy.to_app_version_state(),
        (None, None) => return Err(missing(resource, "appVersionState")),
    };
    Ok(AppStoreVersion {
        id: resource.id.clone(),
        version_string: attributes
            .version_string
            .ok_or_else(|| missing(resource, "versionString"))?,
        platform: attributes
            .platform
            .ok_or_else(|| missing(resource, "platform"))?,
        state,
        app_store_state: attributes.app_store_state,
        release_type: attributes.release_type,
        created_date: optional_date(attributes.created_date)?,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BuildAttributes {
    version: Option<String>,
    uploaded_date: Option<String>,
    expired: Option<bool>,
    processing_state: Option<BuildProcessingState>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PreReleaseVersionAttributes {
    version: Option<String>,
    platform: Option<Platform>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BuildBetaDetailAttributes {
    internal_build_state: Option<InternalBetaState>,
    external_build_state: Option<ExternalBetaState>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BetaAppReviewSubmissionAttributes {
    beta_review_state: Option<BetaReviewState>,
}

fn build_from(resource: &Resource, included: &Included) -> Result<BuildWithDetails, AscError> {
    let attributes: BuildAttributes = resource.attributes()?;
    let app_link = resource
        .to_one("app")
        .ok_or_else(|| missing(resource, "app"))?;
    let app = included.get(app_link).map(app_from).transpose()?;
    let pre_release_version = match resource
        .to_one("preReleaseVersion")
        .and_then(|l| included.get(l))
    {
        Some(pre_release) => {
            let attrs: PreReleaseVersionAttributes = pre_release.attributes()?;
            Some(PreReleaseVersion {
                id: pre_release.id.clone(),
                version: attrs
                    .version
                    .ok_or_else(|| missing(pre_release, "version"))?,
                platform: attrs
                    .platform
                    .ok_or_else(|| missing(pre_release, "platform"))?,
            })
        }
        None => None,
    };
    let beta_detail: Option<BuildBetaDetailAttributes> = resource
        .to_one("buildBetaDetail")
        .and_then(|l| included.get(l))
        .map(Resource::attributes)
        .transpose()?;
    let beta_review: Option<BetaAppReviewSubmissionAttributes> = resource
        .to_one("betaAppReviewSubmission")
        .and_then(|l| included.get(l))
        .map(Resource::attributes)
        .transpose()?;
    let (internal_build_state, external_build_state) = match beta_detail {
        Some(detail) => (detail.internal_build_state, detail.external_build_state),
        None => (None, None),
    };
    Ok(BuildWithDetails {
        id: resource.id.clone(),
        app_id: app_link.id.clone(),
        version: attributes
            .version
            .ok_or_else(|| missing(resource, "version"))?,
        uploaded_date: optional_date(attributes.uploaded_date)?,
        expired: attributes.expired.unwrap_or(false),
        processing_state: attributes
            .processing_state
            .ok_or_else(|| missing(resource, "processingState"))?,
        pre_release_version,
        external_build_state,
        internal_build_state,
        beta_review_state: beta_review.and_then(|r| r.beta_review_state),
        app,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PhasedReleaseAttributes {
    phased_release_state: Option<PhasedReleaseState>,
    start_date: Option<String>,
    current_day_number: Option<u32>,
}

fn phased_release_from(resource: &Resource) -> Result<PhasedRelease, AscError> {
    let attributes: PhasedReleaseAttributes = resource.attributes()?;
    Ok(PhasedRelease {
        id: resource.id.clone(),
        state: attributes
            .phased_release_state
            .ok_or_else(|| missing(resource, "phasedReleaseState"))?,
        current_day_number: attributes.current_day_number,
        start_date: optional_date(attributes.start_date)?,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewSubmissionAttributes {
    platform: Option<Platform>,
    state: Option<ReviewSubmissionState>,
    submitted_date: Option<String>,
}

fn review_submission_from(
    resource: &Resource,
    requested_app_id: &str,
) -> Result<ReviewSubmission, AscError> {
    let attributes: ReviewSubmissionAttributes = resource.attributes()?;
    Ok(ReviewSubmission {
        id: resource.id.clone(),
        app_id: resource
            .to_one("app")
            .map(|l| l.id.clone())
            .unwrap_or_else(|| requested_app_id.to_owned()),
        platform: attributes.platform,
        state: attributes.state,
        submitted_date: optional_date(attributes.submitted_date)?,
        app_store_version_id: resource
            .to_one("appStoreVersionForReview")
            .map(|l| l.id.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apple_dates_in_both_offset_styles_parse() {
        let a = parse_apple_date("2024-03-01T10:00:00-08:00").unwrap();
        let b = parse_apple_date("2024-03-01T18:00:00.000+0000").unwrap();
        assert_eq!(a, b);
        assert!(parse_apple_date("yesterday").is_err());
    }

    #[test]
    fn retry_after_accepts_seconds_and_dates() {
        let now = parse_apple_date("2024-03-01T10:00:00Z").unwrap();
        assert_eq!(parse_retry_after("30", now), Some(Duration::from_secs(30)));
        assert_eq!(
            parse_retry_after("Fri, 01 Mar 2024 10:01:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
