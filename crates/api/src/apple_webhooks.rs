//! `POST /v1/push/apple/{key}/{reference}`: App Store Connect's webhook deliveries. The only
//! unauthenticated write route: the body is capped at 64 KiB before anything else, then the
//! signature decides (`push::receiver`); the answer does not wait for the sweep (or feedback read) it asks for.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use shipwatch_service::model::KeyRecordId;
use shipwatch_service::push::receiver::Received;

use crate::ApiState;
use crate::body::read_limited;
use crate::error::ApiError;

pub async fn receive(
    State(state): State<ApiState>,
    Path((key, reference)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    // Push off: there is no webhook whose signature could match, the same 401 as an unknown one.
    let Some(receiver) = state.push_receiver.as_ref() else {
        return Err(shipwatch_service::push::receiver::ReceiveError::BadSignature.into());
    };
    let bytes = read_limited(&headers, body).await?;
    let signature = headers
        .get("x-apple-signature")
        .and_then(|v| v.to_str().ok());
    let outcome = receiver
        .receive(&KeyRecordId(key), &reference, signature, &bytes)
        .await?;
    let result = match outcome {
        Received::SweepRequested { .. } => "sweep_requested",
        Received::FeedbackRequested { .. } => "feedback_requested",
        Received::Ping => "ping",
        Received::Duplicate => "duplicate",
        Received::Ignored { .. } => "ignored",
    };
    Ok((StatusCode::ACCEPTED, Json(json!({ "result": result }))))
}
