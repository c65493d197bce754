//! Typed settings, read once from the environment at start-up (the settings table of README.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Which store adapters back the services.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// SQLite + owner-only secret files in `SHIPWATCH_DATA_DIR`.
    Embedded,
    /// DynamoDB (`TABLE_NAME`) + Secrets Manager, endpoints from the standard AWS settings.
    Aws,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("{name} must be set when {because}")]
    Missing {
        name: &'static str,
        because: &'static str,
    },
}

/// Shortest `SHIPWATCH_ADMIN_TOKEN` accepted: the admin token guards team creation and sweeps.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 16;

/// Every setting a shipwatch process reads. The admin token is kept only as a hash.
#[derive(Clone)]
pub struct Settings {
    pub http_addr: SocketAddr,
    pub data_dir: PathBuf,
    /// SHA-256 (hex) of `SHIPWATCH_ADMIN_TOKEN` when set.
    pub admin_token_hash: Option<String>,
    /// Secret id of the admin token in Secrets Manager (`ADMIN_TOKEN_SECRET_ID`, AWS deployments).
    pub admin_token_secret_id: Option<String>,
    pub store: StoreKind,
    pub table_name: Option<String>,
    pub allow_private_destinations: bool,
    pub sweep_interval: Duration,
    /// Keys one sweep reads from App Store Connect at the same time (`SWEEP_CONCURRENCY`).
    pub sweep_concurrency: usize,
    /// Most keys per fanned-out shard, and the most one invocation sweeps inline (`SWEEP_SHARD_SIZE`).
    pub sweep_shard_size: usize,
    /// SQS queue of sweep shards (`SWEEP_QUEUE_URL`); unset: every sweep runs inline.
    pub sweep_queue_url: Option<String>,
    /// shipwatch's share of each key's hourly App Store Connect allowance (`ASC_BUDGET_SHARE`,
    /// percent).
    pub asc_budget: crate::rate_budget::BudgetPolicy,
    pub log_format: LogFormat,
    /// Google's OAuth token endpoint (`GOOGLE_OAUTH_TOKEN_URL`); the uploaded file's `token_uri`
    /// is never followed.
    pub google_oauth_token_url: String,
    /// Root of the Google Play Developer API (`GOOGLE_PLAY_API_BASE_URL`, no trailing slash).
    pub google_play_api_base_url: String,
    /// `SHIPWATCH_PUBLIC_URL`: where App Store Connect reaches the push receiver; unset: push off.
    pub public_url: Option<String>,
}

/// `GOOGLE_OAUTH_TOKEN_URL` when unset.
pub const DEFAULT_GOOGLE_OAUTH_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// `GOOGLE_PLAY_API_BASE_URL` when unset.
pub const DEFAULT_GOOGLE_PLAY_API_BASE_URL: &str = "https://androidpublisher.googleapis.com";

fn http_url(name: &'static str, raw: Option<String>, default: &str) -> Result<String, ConfigError> {
    let url = raw.map_or_else(
        || default.to_owned(),
        |r| r.trim().trim_end_matches('/').to_owned(),
    );
    if url.starts_with("https://") || url.starts_with("http://") {
        Ok(url)
    } else {
        Err(ConfigError::Invalid {
            name,
            reason: format!("expected an http(s) URL, got {url:?}"),
        })
    }
}

/// `SWEEP_CONCURRENCY` when unset: measured in `docs/performance.md` (10,000 keys x 10 apps with
/// 100 ms per request sweep in well under 30 s at this width, far under 256 MB).
pub const DEFAULT_SWEEP_CONCURRENCY: usize = 256;
/// Upper bound of `SWEEP_CONCURRENCY`: beyond it one process only queues more sockets and memory.
pub const MAX_SWEEP_CONCURRENCY: usize = 4096;

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("http_addr", &self.http_addr)
            .field("data_dir", &self.data_dir)
            .field(
                "admin_token",
                &self.admin_token_hash.as_ref().map(|_| "<set>"),
            )
            .field("admin_token_secret_id", &self.admin_token_secret_id)
            .field("store", &self.store)
            .field("table_name", &self.table_name)
            .field(
                "allow_private_destinations",
                &self.allow_private_destinations,
            )
            .field("sweep_interval", &self.sweep_interval)
            .field("sweep_concurrency", &self.sweep_concurrency)
            .field("sweep_shard_size", &self.sweep_shard_size)
            .field("sweep_queue_url", &self.sweep_queue_url)
            .field("asc_budget", &self.asc_budget)
            .field("log_format", &self.log_format)
            .field("google_oauth_token_url", &self.google_oauth_token_url)
            .field("google_play_api_base_url", &self.google_play_api_base_url)
            .field("public_url", &self.public_url)
            .finish()
    }
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (tests pass a map instead of the process environment).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let http_addr = match get("SHIPWATCH_HTTP_ADDR") {
            Some(raw) => raw.trim().parse().map_err(|_| ConfigError::Invalid {
                name: "SHIPWATCH_HTTP_ADDR",
                reason: format!("expected host:port such as 127.0.0.1:3000, got {raw:?}"),
            })?,
            None => SocketAddr::from(([127, 0, 0, 1], 3000)),
        };
        let data_dir =
            PathBuf::from(get("SHIPWATCH_DATA_DIR").unwrap_or_else(|| "./.shipwatch".into()));
        let admin_token_hash = match get("SHIPWATCH_ADMIN_TOKEN") {
            Some(token) if token.trim().chars().count() < MIN_ADMIN_TOKEN_CHARS => {
                return Err(ConfigError::Invalid {
                    name: "SHIPWATCH_ADMIN_TOKEN",
                    reason: format!(
                        "use at least {MIN_ADMIN_TOKEN_CHARS} characters (e.g. `openssl rand -hex 24`), or leave it unset to have one generated"
                    ),
                });
            }
            Some(token) => Some(crate::auth::hash_token(token.trim())),
            None => None,
        };
        let admin_token_secret_id = get("ADMIN_TOKEN_SECRET_ID");
        let store = match get("SHIPWATCH_STORE").as_deref().map(str::trim) {
            None | Some("embedded") => StoreKind::Embedded,
            Some("aws") => StoreKind::Aws,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "SHIPWATCH_STORE",
                    reason: format!("expected `embedded` or `aws`, got {other:?}"),
                });
            }
        };
        let table_name = get("TABLE_NAME");
        if store == StoreKind::Aws && table_name.is_none() {
            return Err(ConfigError::Missing {
                name: "TABLE_NAME",
                because: "SHIPWATCH_STORE=aws",
            });
        }
        let allow_private_destinations =
            match get("SHIPWATCH_ALLOW_PRIVATE_DESTINATIONS").as_deref() {
                None | Some("0") | Some("false") => false,
                Some("1") | Some("true") => true,
                Some(other) => {
                    return Err(ConfigError::Invalid {
                        name: "SHIPWATCH_ALLOW_PRIVATE_DESTINATIONS",
                        reason: format!("expected 1 or 0, got {other:?}"),
                    });
                }
            };
        let sweep_interval = match get("SWEEP_INTERVAL_SECONDS") {
            Some(raw) => match raw.trim().parse::<u64>() {
                Ok(secs) if secs >= 1 => Duration::from_secs(secs),
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "SWEEP_INTERVAL_SECONDS",
                        reason: format!("expected a whole number of seconds >= 1, got {raw:?}"),
                    });
                }
            },
            None => Duration::from_secs(60),
        };
        let sweep_concurrency = match get("SWEEP_CONCURRENCY") {
            Some(raw) => match raw.trim().parse::<usize>() {
                Ok(width) if (1..=MAX_SWEEP_CONCURRENCY).contains(&width) => width,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "SWEEP_CONCURRENCY",
                        reason: format!(
                            "expected a whole number from 1 to {MAX_SWEEP_CONCURRENCY}, got {raw:?}"
                        ),
                    });
                }
            },
            None => DEFAULT_SWEEP_CONCURRENCY,
        };
        let sweep_shard_size = match get("SWEEP_SHARD_SIZE") {
            Some(raw) => match raw.trim().parse::<usize>() {
                Ok(size) if (1..=crate::fanout::MAX_SHARD_SIZE).contains(&size) => size,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "SWEEP_SHARD_SIZE",
                        reason: format!(
                            "expected a whole number from 1 to {}, got {raw:?}",
                            crate::fanout::MAX_SHARD_SIZE
                        ),
                    });
                }
            },
            None => crate::fanout::DEFAULT_SHARD_SIZE,
        };
        let sweep_queue_url = get("SWEEP_QUEUE_URL").map(|url| url.trim().to_owned());
        let asc_budget = match get("ASC_BUDGET_SHARE") {
            Some(raw) => raw
                .trim()
                .trim_end_matches('%')
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(crate::rate_budget::BudgetPolicy::new)
                .ok_or_else(|| ConfigError::Invalid {
                    name: "ASC_BUDGET_SHARE",
                    reason: format!(
                        "expected a percentage above 0 and at most 100, such as 10 or 10%, got {raw:?}"
                    ),
                })?,
            None => crate::rate_budget::BudgetPolicy::default(),
        };
        let log_format = match get("SHIPWATCH_LOG_FORMAT").as_deref() {
            Some("json") => LogFormat::Json,
            Some("text") => LogFormat::Text,
            None if lookup("AWS_LAMBDA_FUNCTION_NAME").is_some() => LogFormat::Json,
            None => LogFormat::Text,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "SHIPWATCH_LOG_FORMAT",
                    reason: format!("expected json or text, got {other:?}"),
                });
            }
        };
        let google_oauth_token_url = http_url(
            "GOOGLE_OAUTH_TOKEN_URL",
            get("GOOGLE_OAUTH_TOKEN_URL"),
            DEFAULT_GOOGLE_OAUTH_TOKEN_URL,
        )?;
        let google_play_api_base_url = http_url(
            "GOOGLE_PLAY_API_BASE_URL",
            get("GOOGLE_PLAY_API_BASE_URL"),
            DEFAULT_GOOGLE_PLAY_API_BASE_URL,
        )?;
        let public_url = match get("SHIPWATCH_PUBLIC_URL") {
            Some(raw) => Some(parse_public_url(&raw)?),
            None => None,
        };
        Ok(Self {
            public_url,
            http_addr,
            data_dir,
            admin_token_hash,
            admin_token_secret_id,
            store,
            table_name,
            allow_private_destinations,
            sweep_interval,
            sweep_concurrency,
            sweep_shard_size,
            sweep_queue_url,
            asc_budget,
            log_format,
            google_oauth_token_url,
            google_play_api_base_url,
        })
    }
}

/// An absolute `https` URL (or `http` on a loopback host, for local tests), without query or
/// fragment, kept without its trailing slash.
fn parse_public_url(raw: &str) -> Result<String, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        name: "SHIPWATCH_PUBLIC_URL",
        reason,
    };
    let url = url::Url::parse(raw.trim()).map_err(|e| {
        invalid(format!(
            "expected an absolute URL such as https://shipwatch.example.com ({e})"
        ))
    })?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(invalid(
            "App Store Connect delivers webhooks over https only: expected an https URL".into(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("expected no query or fragment".into()));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_contract() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.http_addr.to_string(), "127.0.0.1:3000");
        assert_eq!(s.data_dir, PathBuf::from("./.shipwatch"));
        assert_eq!(s.store, StoreKind::Embedded);
        assert_eq!(s.sweep_interval, Duration::from_secs(60));
        assert_eq!(
            s.google_oauth_token_url,
            "https://oauth2.googleapis.com/token"
        );
        assert_eq!(
            s.google_play_api_base_url,
            "https://androidpublisher.googleapis.com"
        );
        assert_eq!(s.sweep_concurrency, DEFAULT_SWEEP_CONCURRENCY);
        assert!(!s.allow_private_destinations);
        assert!(s.admin_token_hash.is_none());
    }

    #[test]
    fn aws_store_needs_a_table() {
        assert_eq!(
            settings(&[("SHIPWATCH_STORE", "aws")]).unwrap_err(),
            ConfigError::Missing {
                name: "TABLE_NAME",
                because: "SHIPWATCH_STORE=aws"
            }
        );
        let s = settings(&[("SHIPWATCH_STORE", "aws"), ("TABLE_NAME", "t")]).unwrap();
        assert_eq!(s.table_name.as_deref(), Some("t"));
    }

    #[test]
    fn bad_values_are_named() {
        for (name, value) in [
            ("SHIPWATCH_HTTP_ADDR", "nope"),
            ("SHIPWATCH_STORE", "postgres"),
            ("SWEEP_INTERVAL_SECONDS", "0"),
            ("SWEEP_CONCURRENCY", "0"),
            ("SWEEP_CONCURRENCY", "4097"),
            ("SWEEP_CONCURRENCY", "many"),
            ("SHIPWATCH_ALLOW_PRIVATE_DESTINATIONS", "yes please"),
        ] {
            let err = settings(&[(name, value)]).unwrap_err();
            assert!(err.to_string().starts_with(name), "{err}");
        }
    }

    #[test]
    fn sweep_concurrency_is_read() {
        assert_eq!(
            settings(&[("SWEEP_CONCURRENCY", " 32 ")])
                .unwrap()
                .sweep_concurrency,
            32
        );
    }

    #[test]
    fn fanout_and_budget_settings_are_read() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.sweep_shard_size, crate::fanout::DEFAULT_SHARD_SIZE);
        assert_eq!(s.sweep_queue_url, None);
        assert_eq!(s.asc_budget.share_percent(), 10.0);
        let s = settings(&[
            ("SWEEP_SHARD_SIZE", "250"),
            (
                "SWEEP_QUEUE_URL",
                "https://sqs.us-east-1.amazonaws.com/123456789012/shards",
            ),
            ("ASC_BUDGET_SHARE", "25%"),
        ])
        .unwrap();
        assert_eq!(s.sweep_shard_size, 250);
        assert_eq!(
            s.sweep_queue_url.as_deref(),
            Some("https://sqs.us-east-1.amazonaws.com/123456789012/shards")
        );
        assert_eq!(s.asc_budget.budget(3600), 900);
        for (name, value) in [
            ("SWEEP_SHARD_SIZE", "0"),
            ("SWEEP_SHARD_SIZE", "5001"),
            ("ASC_BUDGET_SHARE", "0"),
            ("ASC_BUDGET_SHARE", "101"),
            ("ASC_BUDGET_SHARE", "a tenth"),
        ] {
            let err = settings(&[(name, value)]).unwrap_err();
            assert!(err.to_string().starts_with(name), "{err}");
        }
    }

    #[test]
    fn admin_token_is_kept_only_as_a_hash() {
        for short in ["a", "fifteen-chars-x"] {
            let err = settings(&[("SHIPWATCH_ADMIN_TOKEN", short)])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("at least 16 characters"), "{short:?}: {err}");
            assert!(
                short.len() < 2 || !err.contains(short),
                "the message does not echo the token"
            );
        }
        let s = settings(&[("SHIPWATCH_ADMIN_TOKEN", "super-secret-admin")]).unwrap();
        assert_eq!(
            s.admin_token_hash,
            Some(crate::auth::hash_token("super-secret-admin"))
        );
        assert!(!format!("{s:?}").contains("super-secret-admin"));
    }
}
