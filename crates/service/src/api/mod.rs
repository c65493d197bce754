//! The HTTP API (contract section 2) as one axum router, served by `shipwatch-local` and, through
//! `lambda_http`, by the key-api Lambda. Handlers are thin: authenticate, parse, call a service, render.

mod auth;
pub mod body;
mod destinations;
mod history;
mod keys;
mod teams;
pub mod views;

pub use teams::checked_name;

use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::http::{Method, StatusCode};
use axum::routing::{MethodRouter, get, post};
use shipwatch_shared::clock::Clock;

use crate::destinations::DestinationService;
use crate::error::ApiError;
use crate::keys::KeyService;
use crate::ports::{Deliverer, Stores};

/// What `POST /v1/sweeps` got done.
#[derive(Clone, Debug, PartialEq)]
pub enum SweepNow {
    /// The sweep ran here and finished: its report (200).
    Finished(serde_json::Value),
    /// The sweep was handed to shard workers and goes on after the answer (202).
    Started(serde_json::Value),
}

/// Runs one sweep now (`POST /v1/sweeps`).
#[async_trait]
pub trait SweepRunner: Send + Sync {
    async fn sweep_now(&self) -> SweepNow;
}

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiState {
    pub stores: Stores,
    pub keys: KeyService,
    pub clock: Arc<dyn Clock>,
    /// SHA-256 (hex) of the admin token.
    pub admin_token_hash: Arc<str>,
    pub deliverer: Arc<dyn Deliverer>,
    pub sweeps: Arc<dyn SweepRunner>,
    pub allow_private_destinations: bool,
}

impl ApiState {
    fn destinations(&self) -> DestinationService {
        DestinationService::new(
            self.stores.clone(),
            self.deliverer.clone(),
            self.clock.clone(),
            self.allow_private_destinations,
        )
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
        .route("/v1/sweeps", &[Method::POST], post(history::sweep_now))
}

/// Every (method, path template) the router serves.
pub fn served_routes() -> Vec<(Method, &'static str)> {
    routes().served
}

/// The API router with its state.
pub fn router(state: ApiState) -> Router {
    routes()
        .router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn health() -> &'static str {
    "ok"
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route; see docs/openapi.yaml",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method; see docs/openapi.yaml",
    )
}
