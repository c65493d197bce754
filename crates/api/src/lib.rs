//! The HTTP API (docs/openapi.yaml) as one axum router, served by `shipwatch-local` and, through
//! `lambda_http`, by the key-api Lambda. Handlers are thin: authenticate, parse, call a service or
//! query of `shipwatch-service`, render.

mod apple_webhooks;
mod auth;
pub mod body;
mod dashboard;
mod destinations;
pub mod error;
mod history;
mod keys;
mod keys_google_play;
pub mod request_head;
mod sweeps;
mod teams;
pub mod views;

pub use sweeps::{SweepNow, SweepRunner};

use std::sync::Arc;

use axum::Router;
use axum::http::{Method, StatusCode};
use axum::routing::{MethodRouter, get, post};
use shipwatch_service::api_tokens::ApiTokenService;
use shipwatch_service::destinations::DestinationService;
use shipwatch_service::keys::{KeyService, ValidationTrigger};
use shipwatch_service::members::MemberService;
use shipwatch_service::ports::{Deliverer, Stores};
use shipwatch_service::queries::{AppsQuery, HistoryQuery};
use shipwatch_service::teams::TeamService;
use shipwatch_shared::clock::Clock;

use crate::error::ApiError;

/// What the API is built from; each entry point fills it from its wiring.
pub struct ApiWiring {
    pub stores: Stores,
    pub clock: Arc<dyn Clock>,
    pub deliverer: Arc<dyn Deliverer>,
    /// How key writes get validated: an in-process task locally, the table's stream on AWS.
    pub validation: Arc<dyn ValidationTrigger>,
    /// What `POST /v1/sweeps` runs.
    pub sweeps: Arc<dyn SweepRunner>,
    /// SHA-256 (hex) of the admin token.
    pub admin_token_hash: String,
    /// `SHIPWATCH_ALLOW_PRIVATE_DESTINATIONS`.
    pub allow_private_destinations: bool,
}

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiState {
    teams: TeamService,
    keys: KeyService,
    destinations: DestinationService,
    history: HistoryQuery,
    apps: AppsQuery,
    sweeps: Arc<dyn SweepRunner>,
    admin_token_hash: Arc<str>,
    members: MemberService,
    api_tokens: ApiTokenService,
    /// App Store Connect webhook deliveries (`None`: push off, the route answers 404).
    push_receiver: Option<shipwatch_service::push::receiver::PushReceiver>,
    /// `SHIPWATCH_PUBLIC_URL`: the base of the links shipwatch hands out (invites); `None`: the
    /// request's own host.
    public_url: Option<Arc<str>>,
}

impl ApiState {
    pub fn new(wiring: ApiWiring) -> Self {
        let ApiWiring {
            stores,
            clock,
            deliverer,
            validation,
            sweeps,
            admin_token_hash,
            allow_private_destinations,
        } = wiring;
        Self {
            members: MemberService::new(
                stores.members.clone(),
                stores.sign_in_failures.clone(),
                clock.clone(),
            ),
            api_tokens: ApiTokenService::new(stores.members.clone(), clock.clone()),
            teams: TeamService::new(stores.teams.clone(), stores.members.clone(), clock.clone()),
            keys: KeyService::new(stores.clone(), clock.clone(), validation),
            destinations: DestinationService::new(
                stores.clone(),
                deliverer,
                clock,
                allow_private_destinations,
            ),
            history: HistoryQuery::new(stores.sweeps.clone(), stores.destinations.clone()),
            apps: AppsQuery::new(stores.keys.clone(), stores.sweeps.clone()),
            sweeps,
            admin_token_hash: admin_token_hash.into(),
            push_receiver: None,
            public_url: None,
        }
    }

    /// Links handed out (invite links) start with `public_url` instead of the request's Host
    /// header, which a client chooses and a proxy may rewrite.
    pub fn with_public_url(mut self, public_url: Option<String>) -> Self {
        self.public_url = public_url.map(Into::into);
        self
    }

    /// Serves `POST /v1/push/apple/{key}/{reference}` through `receiver` (`None`: push off).
    pub fn with_push_receiver_if(
        mut self,
        receiver: Option<shipwatch_service::push::receiver::PushReceiver>,
    ) -> Self {
        self.push_receiver = receiver;
        self
    }

    /// Key deletion also deletes the key's App Store Connect webhooks.
    pub fn with_push(mut self, push: shipwatch_service::push::PushService) -> Self {
        self.keys = self.keys.with_push(push);
        self
    }
}

/// Builds the router and, from the same calls, the list of (method, path) it serves, so the OpenAPI
/// document can be checked against what really is routed.
struct Routes {
    router: Router<ApiState>,
    served: Vec<(Method, &'static str)>,
}

impl Routes {
    fn new() -> Self {
        Self {
            router: Router::new(),
            served: Vec::new(),
        }
    }

    fn route(
        mut self,
        path: &'static str,
        methods: &[Method],
        handler: MethodRouter<ApiState>,
    ) -> Self {
        self.served
            .extend(methods.iter().map(|m| (m.clone(), path)));
        self.router = self.router.route(path, handler);
        self
    }
}

fn routes() -> Routes {
    Routes::new()
        .route("/health", &[Method::GET], get(health))
        .route(
            "/v1/push/apple/{key}/{reference}",
            &[Method::POST],
            post(apple_webhooks::receive),
        )
        .route("/v1/teams", &[Method::POST], post(teams::create))
        .route(
            "/v1/keys",
            &[Method::GET, Method::POST],
            get(keys::list).post(keys::create),
        )
        .route(
            "/v1/keys/{id}",
            &[Method::GET, Method::DELETE],
            get(keys::show).delete(keys::delete),
        )
        .route(
            "/v1/keys/{id}/validate",
            &[Method::POST],
            post(keys::validate),
        )
        .route(
            "/v1/destinations",
            &[Method::GET, Method::POST],
            get(destinations::list).post(destinations::create),
        )
        .route(
            "/v1/destinations/{id}",
            &[Method::GET, Method::DELETE],
            get(destinations::show).delete(destinations::delete),
        )
        .route(
            "/v1/destinations/{id}/test",
            &[Method::POST],
            post(destinations::test),
        )
        .route(
            "/v1/workflows",
            &[Method::GET, Method::POST],
            get(destinations::list_workflows).post(destinations::create_workflow),
        )
        .route(
            "/v1/workflows/{id}",
            &[Method::GET, Method::DELETE],
            get(destinations::show_workflow).delete(destinations::delete_workflow),
        )
        .route("/v1/apps", &[Method::GET], get(history::apps))
        .route("/v1/events", &[Method::GET], get(history::events))
        .route("/v1/sweeps", &[Method::POST], post(sweeps::sweep_now))
}

/// Every (method, path template) the router serves.
pub fn served_routes() -> Vec<(Method, &'static str)> {
    routes().served
}

/// The API router with its state.
pub fn router(state: ApiState) -> Router {
    routes()
        .router
        .merge(dashboard::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(axum::middleware::from_fn(request_head::limit_request_head))
        .layer(axum::middleware::from_fn(dashboard::security_headers))
        .layer(
            // One span per request, so every log line of a request can be followed as a unit.
            // The path only: queries may carry search text, headers carry tokens.
            tower_http::trace::TraceLayer::new_for_http().make_span_with(
                |request: &axum::http::Request<axum::body::Body>| {
                    tracing::info_span!(
                        "request",
                        request = %uuid::Uuid::new_v4(),
                        method = %request.method(),
                        path = %dashboard::loggable_path(request.uri().path()),
                    )
                },
            ),
        )
}

async fn health() -> &'static str {
    "ok"
}

async fn not_found(
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    if dashboard::wants_page(&uri, &headers) {
        return dashboard::page::not_found();
    }
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route; see docs/openapi.yaml",
    )
    .into_response()
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method; see docs/openapi.yaml",
    )
}
