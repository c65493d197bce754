//! shipwatch's application core: records, ports, domain logic and the services the functions run.

pub mod domain;
pub mod model;
pub mod ports;
