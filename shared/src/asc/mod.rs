//! The App Store Connect API: configuration, tokens, the client and the models it returns.

mod client;
mod config;
mod error;
mod feedback;
mod jsonapi;
pub mod models;
pub mod token;
mod webhooks;

pub use client::{AscClient, AscSession, MAX_INCLUDED_VERSIONS, MAX_PAGE_LIMIT};
pub use config::{AscConfig, BASE_URL_ENV, ConfigError, DEFAULT_BASE_URL};
pub use error::{AGREEMENTS_MISSING_CODE, AscError, RateLimit};
pub use feedback::{FeedbackBuild, FeedbackKind, FeedbackSubmission};
pub use models::*;
pub use token::{AUDIENCE, AccessToken, REFRESH_MARGIN, TOKEN_LIFETIME, TokenError, mint_token};
pub use webhooks::{NewWebhook, Webhook, WebhookChange, WebhookDelivery};
