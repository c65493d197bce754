//! shipwatch adapters: the embedded store (SQLite + secret files), DynamoDB + Secrets Manager, and
//! HTTP delivery. Each implements ports of `shipwatch_service::ports`.

pub mod aws;
pub mod delivery;
pub mod embedded;
pub mod queue;
mod store_support;
pub mod wiring;
