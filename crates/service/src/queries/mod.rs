//! Read models: what the API (and the dashboard) show, built from the stores in as few calls as
//! the stores allow.

pub mod apps;
pub mod history;
pub mod timeline;

pub use apps::{
    AppsFilter, AppsPage, AppsQuery, CurrentVersion, DEFAULT_APPS_LIMIT, MAX_APPS_LIMIT,
    MonitoredApp, RecentBuild,
};
pub use history::{
    HistoryDelivery, HistoryEvent, HistoryFilter, HistoryPage, HistoryQuery, MAX_EVENTS_LIMIT,
};

use crate::ports::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("limit must be a whole number from 1 to {max}")]
    InvalidLimit { max: u32 },
    #[error("cursor is not one this API returned; start again without it")]
    InvalidCursor,
    #[error(
        "type must be one of the event types of docs/events.md, such as shipwatch.app_version.state_changed"
    )]
    UnknownEventType,
    #[error(transparent)]
    Store(#[from] StoreError),
}
