//! Pure domain logic: snapshots of what App Store Connect shows, diffing them into events, routing
//! events to destinations and rendering messages. No I/O here.

pub mod destination_url;
pub mod diff;
pub mod event_data;
pub mod event_labels;
pub mod events;
pub mod observation;
pub mod play_snapshot;
pub mod render;
pub mod routing;
pub mod signing;
pub mod snapshot;
pub mod wording;
