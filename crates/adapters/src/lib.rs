//! shipwatch adapters: App Store Connect accounts, the embedded store (SQLite + secret files),
//! DynamoDB + Secrets Manager, the SQS shard queue and HTTP delivery. Each implements ports of
//! `shipwatch_service` (`ports`, `accounts`, `fanout::ShardQueue`). The embedded store is the
//! `embedded` feature (default on; the Lambda functions build without it).

pub mod app_store_connect;
pub mod app_store_connect_webhooks;
pub mod aws;
pub mod delivery;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod google_play;
pub mod log_lines;
pub mod queue;
pub mod store_dispatch;
mod store_support;
pub mod wiring;
