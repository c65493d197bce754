//! shipwatch measurements (figures in docs/performance.md): sweep throughput and peak memory against a lean fake App Store
//! Connect, App Store Connect requests per key, DynamoDB requests and capacity units per sweep,
//! Lambda cold start and binary size. Each measurement prints Markdown tables; `./scripts/bench`
//! runs them all (see `docs/performance.md`).

pub mod apps_endpoint;
pub mod cli;
pub mod cold_start;
pub mod dashboard;
pub mod dynamo;
pub mod error;
pub mod fake_asc;
pub mod fixtures;
pub mod memory;
pub mod micro;
pub mod planner;
pub mod play_requests;
pub mod push_feedback;
pub mod push_latency;
pub mod requests;
pub mod sweep;
pub mod table;

pub use error::BenchError;
