//! shipwatch's application core: records, ports, domain logic, and the services and queries the
//! functions, the HTTP API and the dashboard run. Nothing here knows HTTP routes, statuses or bodies.

pub mod accounts;
pub mod api_tokens;
pub mod auth;
pub mod config;
pub mod destinations;
pub mod domain;
pub mod fanout;
pub mod keys;
pub mod members;
pub mod model;
pub mod names;
pub mod outbox;
pub mod ports;
pub mod push;
pub mod queries;
pub mod rate_budget;
pub mod sweep;
pub mod teams;
pub mod throttle;
