//! HTTP delivery of events to destinations (Slack, Discord, Teams, signed webhooks).
//!
//! Destination URLs are user input, so every send is guarded against server-side request forgery:
//! the URL is validated again before each send, redirects are never followed (a 3xx is a failed
//! attempt), proxies from the environment are ignored, and the client's DNS resolver drops
//! loopback, private and other forbidden addresses, so a public name that resolves (or is rebound)
//! to a private address cannot be reached either. Nothing reported or logged contains the URL or
//! the signing secret.

use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use shipwatch_service::domain::destination_url::{is_forbidden_ip, validate_destination_url};
use shipwatch_service::domain::{render, signing};
use shipwatch_service::model::{Destination, DestinationKind, DestinationSecrets, EventRecord};
use shipwatch_service::ports::{Deliverer, DeliveryOutcome};
use shipwatch_shared::clock::{Clock, SystemClock};
use url::Url;

/// `User-Agent` of every delivery.
pub const USER_AGENT: &str = concat!("shipwatch/", env!("CARGO_PKG_VERSION"));

/// Longest part of an error response body kept in the attempt's error (what Slack and Discord
/// answer, e.g. `no_service`, is short and says what is wrong).
const RESPONSE_SNIPPET_CHARS: usize = 120;
const RESPONSE_SNIPPET_READ_BYTES: usize = 1024;

/// Future of a [`HostLookup`].
pub type LookupFuture = Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>>;

/// Resolves a host name to addresses. The system resolver in production; tests plug in their own
/// to make a public-looking name resolve to loopback.
pub trait HostLookup: Send + Sync {
    fn lookup(&self, host: String) -> LookupFuture;
}

/// The operating system's resolver (`getaddrinfo`, through tokio).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemLookup;

impl HostLookup for SystemLookup {
    fn lookup(&self, host: String) -> LookupFuture {
        Box::pin(async move {
            let addresses = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addresses.collect())
        })
    }
}

/// Why the guarded resolver gave no address. Never names the host's URL path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveRefusal {
    #[error(
        "the destination's host name resolves only to loopback, private or reserved addresses, which shipwatch does not send to"
    )]
    OnlyForbiddenAddresses,
    #[error("the destination's host name could not be resolved")]
    NotResolved,
}

/// A DNS resolver that drops every address [`is_forbidden_ip`] refuses (unless private
/// destinations are allowed), so DNS answers cannot lead a delivery into a private network.
#[derive(Clone)]
pub struct GuardedResolver {
    lookup: Arc<dyn HostLookup>,
    allow_private: bool,
}

impl GuardedResolver {
    pub fn new(lookup: Arc<dyn HostLookup>, allow_private: bool) -> Self {
        Self {
            lookup,
            allow_private,
        }
    }

    /// The addresses of `host` shipwatch may connect to; an error if there are none.
    pub async fn resolve_host(&self, host: &str) -> Result<Vec<SocketAddr>, ResolveRefusal> {
        let addresses = self
            .lookup
            .lookup(host.to_owned())
            .await
            .map_err(|_| ResolveRefusal::NotResolved)?;
        if addresses.is_empty() {
            return Err(ResolveRefusal::NotResolved);
        }
        if self.allow_private {
            return Ok(addresses);
        }
        let allowed: Vec<SocketAddr> = addresses
            .into_iter()
            .filter(|address| !is_forbidden_ip(address.ip()))
            .collect();
        if allowed.is_empty() {
            Err(ResolveRefusal::OnlyForbiddenAddresses)
        } else {
            Ok(allowed)
        }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = self.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses = resolver.resolve_host(&host).await?;
            let addresses: reqwest::dns::Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

/// The HTTP client could not be built (TLS set-up).
#[derive(Debug, thiserror::Error)]
#[error("could not set up the HTTP client for deliveries: {0}")]
pub struct DeliverySetupError(String);

/// Sends events over HTTPS with one shared client. See the module documentation for the guards.
#[derive(Clone)]
pub struct HttpDeliverer {
    client: reqwest::Client,
    allow_private: bool,
    timeout: Duration,
    /// Dates webhook signatures (`webhook-timestamp`). Receivers check it against their own
    /// clock, so it is the wall clock in production; tests fix it to check the header.
    signing_clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for HttpDeliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpDeliverer")
            .field("allow_private", &self.allow_private)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpDeliverer {
    /// A deliverer using the system resolver. `allow_private` (development and tests only) lets
    /// deliveries go to http:// and to loopback or private addresses. `timeout` bounds each send.
    pub fn new(allow_private: bool, timeout: Duration) -> Result<Self, DeliverySetupError> {
        Self::with_lookup(allow_private, timeout, Arc::new(SystemLookup))
    }

    /// As [`HttpDeliverer::new`], resolving host names with `lookup`.
    pub fn with_lookup(
        allow_private: bool,
        timeout: Duration,
        lookup: Arc<dyn HostLookup>,
    ) -> Result<Self, DeliverySetupError> {
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve names itself, bypassing the guarded resolver.
            .no_proxy()
            .dns_resolver(GuardedResolver::new(lookup, allow_private))
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|error| DeliverySetupError(error.without_url().to_string()))?;
        Ok(Self {
            client,
            allow_private,
            timeout,
            signing_clock: Arc::new(SystemClock),
        })
    }

    /// Dates webhook signatures with `clock` instead of the wall clock.
    pub fn with_signing_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.signing_clock = clock;
        self
    }

    async fn send(
        &self,
        destination: &Destination,
        secrets: &DestinationSecrets,
        event: &EventRecord,
    ) -> Result<u16, AttemptFailure> {
        let url = validate_destination_url(&secrets.url, self.allow_private)
            .map_err(|error| AttemptFailure::without_status(error.to_string()))?;
        let signed_at = self.signing_clock.now().timestamp();
        let (body, headers) = request_for(destination.kind, secrets, event, signed_at)?;
        let response = self
            .client
            .post(url.clone())
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|error| AttemptFailure::without_status(self.describe_send_error(&error)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(status.as_u16());
        }
        let code = status.as_u16();
        if status.is_redirection() {
            return Err(AttemptFailure {
                status_code: Some(code),
                error: format!(
                    "the destination answered HTTP {code} (a redirect), which shipwatch does not follow: use the final URL"
                ),
            });
        }
        let snippet = read_snippet(response).await;
        let mut error = format!("the destination answered HTTP {code}");
        if let Some(snippet) = snippet.and_then(|text| free_of_secrets(text, &url, secrets)) {
            error.push_str(": ");
            error.push_str(&snippet);
        }
        Err(AttemptFailure {
            status_code: Some(code),
            error,
        })
    }

    /// A short, URL-free description of a failed send.
    fn describe_send_error(&self, error: &reqwest::Error) -> String {
        let mut source: Option<&(dyn StdError + 'static)> = error.source();
        let mut io_kind = None;
        let mut tls_problem = false;
        while let Some(current) = source {
            if let Some(refusal) = current.downcast_ref::<ResolveRefusal>() {
                return refusal.to_string();
            }
            if let Some(io_error) = current.downcast_ref::<io::Error>() {
                io_kind.get_or_insert(io_error.kind());
            }
            let text = current.to_string().to_ascii_lowercase();
            if text.contains("certificate") || text.contains("tls") || text.contains("handshake") {
                tls_problem = true;
            }
            source = current.source();
        }
        if error.is_timeout() {
            return format!(
                "the destination did not answer within {} s",
                self.timeout.as_secs_f64()
            );
        }
        if tls_problem {
            return "the TLS handshake with the destination failed (certificate not accepted)"
                .to_owned();
        }
        if error.is_connect() {
            return match io_kind {
                Some(io::ErrorKind::ConnectionRefused) => {
                    "could not connect to the destination: connection refused".to_owned()
                }
                Some(kind) => format!("could not connect to the destination: {kind}"),
                None => "could not connect to the destination".to_owned(),
            };
        }
        match io_kind {
            Some(kind) => format!("the request to the destination failed: {kind}"),
            None => "the request to the destination failed".to_owned(),
        }
    }
}

#[async_trait]
impl Deliverer for HttpDeliverer {
    async fn deliver(
        &self,
        destination: &Destination,
        secrets: &DestinationSecrets,
        event: &EventRecord,
    ) -> DeliveryOutcome {
        let outcome = match self.send(destination, secrets, event).await {
            Ok(status) => DeliveryOutcome::Delivered {
                http_status: Some(status),
            },
            // Every failure is worth another try: a destination that answers 4xx today (a
            // misconfigured receiver) may be fixed before the schedule runs out.
            Err(failure) => DeliveryOutcome::Failed {
                retryable: true,
                detail: failure.error,
                http_status: failure.status_code,
            },
        };
        tracing::debug!(
            destination = %destination.id,
            event = %event.id,
            kind = destination.kind.as_str(),
            status = outcome.http_status(),
            delivered = outcome.is_delivered(),
            "delivery attempt"
        );
        outcome
    }
}

/// A failed attempt: the status if the destination answered, and a URL-free reason.
struct AttemptFailure {
    status_code: Option<u16>,
    error: String,
}

impl AttemptFailure {
    fn without_status(error: String) -> Self {
        Self {
            status_code: None,
            error,
        }
    }
}

/// The body and headers one destination kind expects.
/// `signed_at` (Unix seconds) dates a webhook's signature.
fn request_for(
    kind: DestinationKind,
    secrets: &DestinationSecrets,
    event: &EventRecord,
    signed_at: i64,
) -> Result<(Vec<u8>, HeaderMap), AttemptFailure> {
    let payload = match kind {
        DestinationKind::Slack => render::slack(event),
        DestinationKind::Discord => render::discord(event),
        DestinationKind::Teams => render::teams(event),
        DestinationKind::Webhook => render::cloud_event(event),
    };
    let body = serde_json::to_vec(&payload).map_err(|_| {
        AttemptFailure::without_status("the event could not be encoded as JSON".to_owned())
    })?;
    let mut headers = HeaderMap::new();
    if kind != DestinationKind::Webhook {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return Ok((body, headers));
    }
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/cloudevents+json"),
    );
    let secret = secrets.signing_secret.as_deref().ok_or_else(|| {
        AttemptFailure::without_status(
            "the webhook destination has no signing secret: create the destination again"
                .to_owned(),
        )
    })?;
    // A fresh timestamp per attempt; the id stays the event id so receivers can deduplicate.
    let timestamp = signed_at;
    let signature = signing::sign(secret, event.id.as_str(), timestamp, &body)
        .map_err(|error| AttemptFailure::without_status(error.to_string()))?;
    let header = |value: String| {
        HeaderValue::try_from(value).map_err(|_| {
            AttemptFailure::without_status("a webhook header could not be encoded".to_owned())
        })
    };
    headers.insert("webhook-id", header(event.id.to_string())?);
    headers.insert("webhook-timestamp", header(timestamp.to_string())?);
    headers.insert("webhook-signature", header(signature)?);
    Ok((body, headers))
}

/// The start of an error response body, on one line, if it reads as text.
async fn read_snippet(mut response: reqwest::Response) -> Option<String> {
    let mut bytes = Vec::new();
    while bytes.len() < RESPONSE_SNIPPET_READ_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    bytes.truncate(RESPONSE_SNIPPET_READ_BYTES);
    let text = String::from_utf8_lossy(&bytes);
    let one_line: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|character| !character.is_control() && *character != '\u{FFFD}')
        .take(RESPONSE_SNIPPET_CHARS)
        .collect();
    (!one_line.is_empty()).then_some(one_line)
}

/// `snippet` unless it repeats any secret part of the destination (a receiver may echo the
/// request line or URL back): the URL's path or query pieces, or the signing secret.
fn free_of_secrets(snippet: String, url: &Url, secrets: &DestinationSecrets) -> Option<String> {
    let lower = snippet.to_ascii_lowercase();
    let mut secret_parts: Vec<String> = url
        .path_segments()
        .into_iter()
        .flatten()
        .chain(url.query().into_iter().flat_map(|query| query.split('&')))
        .filter(|part| part.len() >= 4)
        .map(str::to_ascii_lowercase)
        .collect();
    if let Some(signing_secret) = &secrets.signing_secret {
        secret_parts.push(signing_secret.to_ascii_lowercase());
        if let Some(key) = signing_secret.strip_prefix(signing::SECRET_PREFIX) {
            secret_parts.push(key.to_ascii_lowercase());
        }
    }
    if secret_parts
        .iter()
        .any(|part| lower.contains(part.as_str()))
    {
        None
    } else {
        Some(snippet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_that_echo_the_url_or_secret_are_dropped() {
        let url =
            Url::parse("https://hooks.example.com/services/T0/B0/SECRETPATH?sig=abcdef").unwrap();
        let secrets = DestinationSecrets {
            url: url.to_string(),
            signing_secret: Some("whsec_c2VjcmV0c2VjcmV0".to_owned()),
        };
        let keep = |text: &str| free_of_secrets(text.to_owned(), &url, &secrets);
        assert_eq!(keep("no_service"), Some("no_service".to_owned()));
        assert_eq!(keep("POST /services/T0/B0/secretpath not found"), None);
        assert_eq!(keep("bad sig=abcdef"), None);
        assert_eq!(keep("key c2VjcmV0c2VjcmV0"), None);
    }
}
