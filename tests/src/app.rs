//! A running shipwatch HTTP API in the test process, wired exactly as `shipwatch-local` wires it
//! (`shipwatch_adapters::wiring::Services`), on the embedded store or on DynamoDB + Secrets Manager
//! served by moto, talking to a fake App Store Connect.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use shipwatch_adapters::wiring::Services;
use shipwatch_api::{ApiState, ApiWiring};
use shipwatch_service::auth::{ADMIN_TOKEN_PREFIX, generate_token, hash_token};
use shipwatch_service::config::Settings;
use shipwatch_service::keys::{InProcessValidation, ValidationTrigger};
use shipwatch_service::ports::Stores;
use shipwatch_shared::asc::AscConfig;
use shipwatch_shared::clock::{Clock, SystemClock};
use tokio::net::TcpListener;

/// Which store adapters back the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Aws,
}

/// Fresh stores of the given kind, isolated from every other test.
pub async fn fresh_stores(backend: Backend, dir: &std::path::Path) -> Stores {
    match backend {
        Backend::Embedded => {
            shipwatch_adapters::embedded::stores(dir).expect("embedded store opens")
        }
        Backend::Aws => crate::moto::moto().await.fresh_stores("api").await,
    }
}

/// The API router over `services`, wired as `shipwatch-local` and key-api wire it.
pub fn api_router(
    services: &Services,
    admin_token_hash: &str,
    validation: Arc<dyn ValidationTrigger>,
) -> axum::Router {
    shipwatch_api::router(
        ApiState::new(ApiWiring {
            stores: services.stores.clone(),
            clock: services.clock.clone(),
            deliverer: services.deliverer.clone(),
            validation,
            sweeps: Arc::new(services.fanout_sweep(services.shard_queue.clone())),
            admin_token_hash: admin_token_hash.to_owned(),
            allow_private_destinations: services.settings.allow_private_destinations,
        })
        .with_push(services.push.clone())
        .with_push_receiver_if(services.push_receiver(services.shard_queue.clone()))
        .with_public_url(services.settings.public_url.clone()),
    )
}

pub struct TestApp {
    pub backend: Backend,
    pub base_url: String,
    pub admin_token: String,
    pub services: Services,
    pub http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
    _data_dir: tempfile::TempDir,
}

/// A team as `POST /v1/teams` returned it.
#[derive(Clone, Debug)]
pub struct TestTeam {
    pub id: String,
    pub token: String,
}

impl TestApp {
    pub async fn start(backend: Backend, asc_base_url: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let stores = fresh_stores(backend, dir.path()).await;
        Self::start_with(backend, stores, asc_base_url, dir, Arc::new(SystemClock)).await
    }

    /// Starts on given stores of kind `backend` (tests wrap real stores to inject faults) and clock.
    pub async fn start_with(
        backend: Backend,
        stores: Stores,
        asc_base_url: &str,
        data_dir: tempfile::TempDir,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self::start_with_settings(
            backend,
            stores,
            asc_base_url,
            data_dir,
            clock,
            &[("SHIPWATCH_ALLOW_PRIVATE_DESTINATIONS", "1")],
        )
        .await
    }

    /// As [`TestApp::start_with`], with exactly the settings `environment` names (besides
    /// `SHIPWATCH_DATA_DIR`); e.g. `&[]` runs as production does, refusing private destinations.
    pub async fn start_with_settings(
        backend: Backend,
        stores: Stores,
        asc_base_url: &str,
        data_dir: tempfile::TempDir,
        clock: Arc<dyn Clock>,
        environment: &[(&str, &str)],
    ) -> Self {
        crate::logs::install();
        let dir = data_dir.path().to_string_lossy().into_owned();
        let settings = Settings::from_lookup(|name| match name {
            "SHIPWATCH_DATA_DIR" => Some(dir.clone()),
            _ => environment
                .iter()
                .find(|(variable, _)| *variable == name)
                .map(|(_, value)| (*value).to_owned()),
        })
        .expect("test settings");
        let asc = AscConfig::new(asc_base_url).expect("fake ASC url");
        let services = Services::assemble(settings, asc, stores, clock).expect("services wire up");
        let admin_token = generate_token(ADMIN_TOKEN_PREFIX);
        let trigger = Arc::new(InProcessValidation::new(services.validator.clone()));
        let router = api_router(&services, &hash_token(&admin_token), trigger);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base_url = format!("http://{}", listener.local_addr().expect("addr"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            backend,
            base_url,
            admin_token,
            services,
            http: reqwest::Client::new(),
            server,
            _data_dir: data_dir,
        }
    }

    /// How many secrets the team has in the secret store, whatever records say (orphan checks).
    pub async fn count_team_secrets(&self, team_id: &str) -> usize {
        match self.backend {
            Backend::Embedded => {
                // Each test app has its own data folder, so every secret file in it counts.
                let dir = self._data_dir.path().join("secrets");
                std::fs::read_dir(&dir)
                    .map(|entries| entries.count())
                    .unwrap_or(0)
            }
            Backend::Aws => {
                let moto = crate::moto::moto().await;
                let client = aws_sdk_secretsmanager::Client::new(&moto.sdk_config());
                let prefix = format!("shipwatch/teams/{team_id}/");
                let mut count = 0;
                let mut next = None;
                loop {
                    let page = client
                        .list_secrets()
                        .set_next_token(next)
                        .send()
                        .await
                        .expect("list_secrets on moto");
                    count += page
                        .secret_list()
                        .iter()
                        .filter(|s| s.name().is_some_and(|n| n.starts_with(&prefix)))
                        .count();
                    next = page.next_token().map(str::to_owned);
                    if next.is_none() {
                        return count;
                    }
                }
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub async fn create_team(&self, name: &str) -> TestTeam {
        let response = self
            .http
            .post(self.url("/v1/teams"))
            .bearer_auth(&self.admin_token)
            .json(&json!({ "name": name }))
            .send()
            .await
            .expect("POST /v1/teams");
        assert_eq!(response.status(), 201, "team creation");
        let body: Value = response.json().await.expect("json");
        TestTeam {
            id: body["id"].as_str().expect("id").to_owned(),
            token: body["token"].as_str().expect("token").to_owned(),
        }
    }

    pub async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET");
        read(response).await
    }

    pub async fn post_json(&self, token: &str, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("POST");
        read(response).await
    }

    /// POSTs `{}` and returns the status with the `Retry-After` seconds, if any.
    pub async fn retry_after(&self, token: &str, path: &str) -> Option<u64> {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .json(&serde_json::json!({}))
            .send()
            .await
            .expect("POST");
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
    }

    pub async fn delete(&self, token: &str, path: &str) -> (u16, Value) {
        let response = self
            .http
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("DELETE");
        read(response).await
    }

    /// Polls `GET /v1/keys/{id}` until `done` holds (validation runs in the background).
    pub async fn wait_for_key(
        &self,
        token: &str,
        id: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (status, key) = self.get(token, &format!("/v1/keys/{id}")).await;
            assert_eq!(status, 200, "GET key: {key}");
            if done(&key) {
                return key;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "key never reached the expected state: {key}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Status and JSON body (`null` when empty).
pub async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}
