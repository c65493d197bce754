//! The integration tests of shipwatch, as one test binary (`cargo test -p shipwatch-tests --test it`;
//! a module path filters, e.g. `--test it sweep_flow::`). One binary links the AWS SDK once instead
//! of once per area.
//!
//! Everything in this process is shared by every module: the log capture of
//! `shipwatch_tests::logs` (installed by the first test that needs it, then holding every module's
//! log lines), the one moto server and its one-request-at-a-time turn (`shipwatch_tests::moto`),
//! and the global tracing subscriber. No test may set environment variables or install another
//! global subscriber or crypto provider; tests isolate themselves with their own data folders,
//! tables, team ids, keys and receivers instead.

mod api_hardening;
mod api_keys;
mod api_notifications;
mod asc_client;
mod asc_credentials;
mod asc_spec;
mod asc_tokens;
mod asc_webhooks;
mod dashboard_browser;
mod dashboard_deletes;
mod dashboard_tokens;
mod delivery_http;
mod delivery_render_golden;
mod delivery_signing;
mod delivery_url_validation;
mod fanout_sqs;
mod google_play;
mod invite_links;
mod lambda_events;
mod openapi_routes;
mod push_api;
mod push_dedupe;
mod push_deliveries;
mod push_feedback;
mod push_new_apps;
mod push_provisioning;
mod push_receiver;
mod rate_budget;
mod store_contract;
mod stream_validation;
mod sweep_commit_conflicts;
mod sweep_flow;
