//! Composition root shared by `shipwatch-local` and the Lambda functions: settings -> adapters ->
//! services. Binaries call this, so every entry point is wired the same way; those serving HTTP
//! hand what it built to `shipwatch_api::ApiState::new` (this crate does not link the API).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use shipwatch_service::accounts::StoreAccounts;
use shipwatch_service::auth::{ADMIN_TOKEN_PREFIX, generate_token, hash_token};
use shipwatch_service::config::{ConfigError, LogFormat, Settings, StoreKind};
use shipwatch_service::fanout::{FanoutConfig, FanoutSweep, ShardQueue};
use shipwatch_service::keys::KeyValidator;
use shipwatch_service::model::SecretName;
use shipwatch_service::ports::{Deliverer, StoreError, Stores};
use shipwatch_service::sweep::{SweepConfig, SweepService, key_deadline_for};
use shipwatch_shared::asc::{AscClient, AscConfig, AscError};
use shipwatch_shared::clock::{Clock, SystemClock};

use crate::app_store_connect::{AppStoreConnectAccounts, AscReadPolicy};
use crate::delivery::HttpDeliverer;

#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("App Store Connect settings: {0}")]
    Asc(String),
    #[error("store: {0}")]
    Store(String),
    #[error("delivery client: {0}")]
    Delivery(String),
    #[error("admin token: {0}")]
    AdminToken(String),
}

impl From<StoreError> for WiringError {
    fn from(err: StoreError) -> Self {
        Self::Store(err.to_string())
    }
}

impl From<AscError> for WiringError {
    fn from(err: AscError) -> Self {
        Self::Asc(err.to_string())
    }
}

/// Logs to stderr: JSON in Lambda (CloudWatch parses it), text for people elsewhere. `RUST_LOG`
/// filters, default `info`. Safe to call more than once.
pub fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            // Every enclosing span (sweep id, key, delivery, HTTP request) on each line.
            .with_current_span(false)
            .with_span_list(true)
            .without_time()
            .try_init(),
        // JSON escapes control characters itself; text lines go through the escaping writer.
        LogFormat::Text => builder
            .with_ansi(false)
            .with_writer(crate::log_lines::EscapedStderr)
            .try_init(),
    };
}

/// Everything a shipwatch process runs.
#[derive(Clone)]
pub struct Services {
    pub settings: Settings,
    pub stores: Stores,
    pub clock: Arc<dyn Clock>,
    pub asc: AscClient,
    /// The store-account port's adapters (App Store Connect).
    pub accounts: Arc<dyn StoreAccounts>,
    pub validator: KeyValidator,
    pub deliverer: Arc<dyn Deliverer>,
    pub sweeper: SweepService,
    /// Where scheduled sweeps too big for one invocation send their shards (`SWEEP_QUEUE_URL`).
    pub shard_queue: Option<Arc<dyn ShardQueue>>,
    /// Push webhooks of keys (`SHIPWATCH_PUBLIC_URL`; off without it).
    pub push: shipwatch_service::push::PushService,
    /// Records TestFlight feedback that push announced.
    pub feedback: shipwatch_service::push::feedback::FeedbackService,
}

impl Services {
    /// Reads the environment once, starts logging, builds the adapters.
    pub async fn from_env() -> Result<Self, WiringError> {
        let settings = Settings::from_env()?;
        init_tracing(settings.log_format);
        let asc = AscConfig::from_env().map_err(|e| WiringError::Asc(e.to_string()))?;
        let stores = stores_for(&settings).await?;
        let shard_queue = crate::queue::SqsShardQueue::from_settings(&settings).await;
        let mut services = Self::assemble(settings, asc, stores, Arc::new(SystemClock))?;
        services.shard_queue = shard_queue;
        Ok(services)
    }

    /// Builds the services on given stores (tests pass their own stores, clock and ASC root).
    pub fn assemble(
        settings: Settings,
        asc_config: AscConfig,
        stores: Stores,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, WiringError> {
        let asc = AscClient::with_clock(asc_config, clock.clone())?;
        let deliverer: Arc<dyn Deliverer> = Arc::new(
            HttpDeliverer::new(settings.allow_private_destinations, Duration::from_secs(10))
                .map_err(|e| WiringError::Delivery(e.to_string()))?,
        );
        let app_store_connect: Arc<dyn StoreAccounts> = Arc::new(AppStoreConnectAccounts::new(
            asc.clone(),
            AscReadPolicy::default(),
        ));
        let google_play: Arc<dyn StoreAccounts> = Arc::new(
            crate::google_play::GooglePlayAccounts::new(
                crate::google_play::GooglePlayConfig {
                    token_url: settings.google_oauth_token_url.clone(),
                    api_base_url: settings.google_play_api_base_url.clone(),
                    timeout: Duration::from_secs(10),
                },
                clock.clone(),
            )
            .map_err(|e| WiringError::Delivery(e.to_string()))?,
        );
        let accounts: Arc<dyn StoreAccounts> =
            Arc::new(crate::store_dispatch::StoreAccountsByPlatform {
                app_store_connect,
                google_play,
            });
        let webhooks = Arc::new(crate::app_store_connect_webhooks::AscWebhookAdmin::new(
            asc.clone(),
        ));
        let push = shipwatch_service::push::PushService::new(
            stores.clone(),
            accounts.clone(),
            webhooks.clone(),
            clock.clone(),
            settings.public_url.clone(),
        );
        let feedback = shipwatch_service::push::feedback::FeedbackService::new(
            stores.clone(),
            accounts.clone(),
            webhooks,
            clock.clone(),
        );
        let validator = KeyValidator::new(stores.clone(), accounts.clone(), clock.clone())
            .with_push(push.clone());
        let sweeper = SweepService::new(
            stores.clone(),
            accounts.clone(),
            deliverer.clone(),
            clock.clone(),
            SweepConfig {
                max_concurrent_keys: settings.sweep_concurrency,
                budget: settings.asc_budget,
                key_deadline: key_deadline_for(settings.sweep_interval),
                ..SweepConfig::default()
            },
        )
        .with_validator(validator.clone());
        Ok(Self {
            settings,
            stores,
            clock,
            asc,
            accounts,
            validator,
            deliverer,
            sweeper,
            shard_queue: None,
            push,
            feedback,
        })
    }

    /// The push receiver, or `None` when push is off (no `SHIPWATCH_PUBLIC_URL`): one-key sweeps
    /// go to `queue` as one-key shards when there is one (AWS), else run in this process.
    pub fn push_receiver(
        &self,
        queue: Option<Arc<dyn ShardQueue>>,
    ) -> Option<shipwatch_service::push::receiver::PushReceiver> {
        use shipwatch_service::push::receiver::{
            InProcessKeySweep, KeySweepTrigger, PushReceiver, QueuedKeySweep,
        };
        self.settings.public_url.as_ref()?;
        let trigger: Arc<dyn KeySweepTrigger> = match queue {
            Some(queue) => Arc::new(QueuedKeySweep::new(queue, self.clock.clone())),
            None => Arc::new(InProcessKeySweep::new(
                self.sweeper.clone(),
                self.feedback.clone(),
            )),
        };
        Some(PushReceiver::new(
            self.stores.clone(),
            self.clock.clone(),
            trigger,
        ))
    }

    /// The sweep as the status-sweep function runs it: planned into shards for `queue` when the
    /// keys do not fit in one (`SWEEP_SHARD_SIZE`), otherwise inline.
    pub fn fanout_sweep(&self, queue: Option<Arc<dyn ShardQueue>>) -> FanoutSweep {
        FanoutSweep::new(
            self.sweeper.clone(),
            queue,
            self.clock.clone(),
            FanoutConfig {
                shard_size: self.settings.sweep_shard_size,
                ..FanoutConfig::default()
            },
        )
        .with_feedback(self.feedback.clone())
    }
}

/// The store adapters the settings name.
pub async fn stores_for(settings: &Settings) -> Result<Stores, WiringError> {
    match settings.store {
        #[cfg(feature = "embedded")]
        StoreKind::Embedded => crate::embedded::stores(&settings.data_dir)
            .map_err(|e| WiringError::Store(e.to_string())),
        #[cfg(not(feature = "embedded"))]
        StoreKind::Embedded => Err(WiringError::Config(ConfigError::Invalid {
            name: "SHIPWATCH_STORE",
            reason: "this build has no embedded store (shipwatch-adapters without its `embedded` \
                     feature, as in the Lambda functions); set SHIPWATCH_STORE=aws"
                .into(),
        })),
        StoreKind::Aws => {
            let table = settings
                .table_name
                .as_deref()
                .ok_or_else(|| WiringError::Store("TABLE_NAME is not set".into()))?;
            let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            Ok(crate::aws::aws_stores(&sdk, table).await)
        }
    }
}

/// The admin token's hash, and the token itself when it was generated just now (to print once).
pub struct AdminToken {
    pub hash: String,
    pub generated: Option<String>,
}

/// Where the admin token comes from: `SHIPWATCH_ADMIN_TOKEN`; else, on AWS, the `shipwatch/admin-token`
/// secret; else (locally) a token generated on first start whose hash is kept in the data folder.
pub async fn admin_token(settings: &Settings, stores: &Stores) -> Result<AdminToken, WiringError> {
    if let Some(hash) = &settings.admin_token_hash {
        return Ok(AdminToken {
            hash: hash.clone(),
            generated: None,
        });
    }
    match settings.store {
        StoreKind::Aws => {
            let secret = stores
                .secrets
                .get_secret(&SecretName::admin_token())
                .await?
                .ok_or_else(|| {
                    WiringError::AdminToken(format!(
                        "set SHIPWATCH_ADMIN_TOKEN or create the secret {}",
                        SecretName::admin_token()
                    ))
                })?;
            Ok(AdminToken {
                hash: hash_token(secret.expose().trim()),
                generated: None,
            })
        }
        StoreKind::Embedded => local_admin_token(&settings.data_dir),
    }
}

const ADMIN_HASH_FILE: &str = "admin-token.sha256";

fn local_admin_token(data_dir: &Path) -> Result<AdminToken, WiringError> {
    let path = data_dir.join(ADMIN_HASH_FILE);
    match std::fs::read_to_string(&path) {
        Ok(hash) if hash.trim().len() == 64 => {
            return Ok(AdminToken {
                hash: hash.trim().to_owned(),
                generated: None,
            });
        }
        Ok(_) => {
            return Err(WiringError::AdminToken(format!(
                "{} is damaged; delete it to generate a new admin token",
                path.display()
            )));
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(WiringError::AdminToken(err.to_string())),
    }
    let token = generate_token(ADMIN_TOKEN_PREFIX);
    let hash = hash_token(&token);
    write_private_file(&path, hash.as_bytes())
        .map_err(|e| WiringError::AdminToken(e.to_string()))?;
    Ok(AdminToken {
        hash,
        generated: Some(token),
    })
}

fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}
