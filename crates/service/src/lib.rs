//! shipwatch's application core: records, ports, domain logic and the services the functions run.

pub mod accounts;
pub mod api;
pub mod auth;
pub mod config;
pub mod destinations;
pub mod domain;
pub mod error;
pub mod fanout;
pub mod keys;
pub mod model;
pub mod outbox;
pub mod ports;
pub mod rate_budget;
pub mod sweep;
