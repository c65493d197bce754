//! App Store Connect core shared by every shipwatch function: `.p8` credentials, ES256 tokens,
//! the API client and the typed models a monitor reads.

pub mod asc;
pub mod clock;
pub mod credentials;
pub mod google_play;
