//! `/v1/keys`: upload (multipart or JSON), list, show, validate again, delete.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use shipwatch_service::keys::NewKey;
use shipwatch_service::model::KeyRecordId;

use crate::ApiState;
use crate::auth::TeamAuth;
use crate::body::{FormPart, media_type, parse_json, parse_multipart, read_limited};
use crate::error::ApiError;
use crate::views::KeyView;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonUpload {
    /// `app_store_connect` here; Google Play uploads are read by `keys_google_play`.
    #[allow(dead_code)]
    platform: Option<String>,
    private_key: Option<String>,
    issuer_id: Option<String>,
    key_id: Option<String>,
    name: Option<String>,
}

fn missing_private_key() -> ApiError {
    ApiError::bad_request(
        "invalid_private_key",
        "private_key is required: the .p8 file downloaded from App Store Connect",
    )
}

/// The upload in a multipart form's parts (the API's and the dashboard's one path); other parts
/// are ignored.
pub(crate) fn new_key_from_parts(parts: &[FormPart]) -> Result<NewKey, ApiError> {
    let mut new = NewKey {
        name: None,
        key_id: None,
        issuer_id: None,
        private_key: Zeroizing::new(Vec::new()),
        file_name: None,
    };
    let mut has_key = false;
    for part in parts {
        let text = || String::from_utf8_lossy(&part.data).into_owned();
        match part.name.as_str() {
            "private_key" => {
                new.private_key = Zeroizing::new(part.data.to_vec());
                new.file_name = part.file_name.clone();
                has_key = true;
            }
            "issuer_id" => new.issuer_id = Some(text()),
            "key_id" => new.key_id = Some(text()),
            "name" => new.name = Some(text()),
            _ => {}
        }
    }
    if !has_key {
        return Err(missing_private_key());
    }
    Ok(new)
}

async fn new_key_from_request(headers: &HeaderMap, bytes: Bytes) -> Result<NewKey, ApiError> {
    match media_type(headers).as_deref() {
        Some("multipart/form-data") => new_key_from_parts(&parse_multipart(headers, bytes).await?),
        _ => {
            let upload: JsonUpload = parse_json(headers, &bytes)?;
            let private_key = upload.private_key.ok_or_else(missing_private_key)?;
            Ok(NewKey {
                name: upload.name,
                key_id: upload.key_id,
                issuer_id: upload.issuer_id,
                private_key: Zeroizing::new(private_key.into_bytes()),
                file_name: None,
            })
        }
    }
}

pub async fn create(
    State(state): State<ApiState>,
    TeamAuth(team): TeamAuth,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<KeyView>), ApiError> {
    let bytes = read_limited(&headers, body).await?;
    let record = if crate::keys_google_play::is_google_play(&headers, &bytes).await? {
        let new = crate::keys_google_play::new_play_key(&headers, bytes).await?;
        state.keys.upload_google_play(&team, new).await?
    } else {
        let new = new_key_from_request(&headers, bytes).await?;
        state.keys.upload(&team, new).await?
    };
    Ok((StatusCode::ACCEPTED, Json(KeyView::from(&record))))
}

pub async fn list(
    State(state): State<ApiState>,
    TeamAuth(team): TeamAuth,
) -> Result<Json<Value>, ApiError> {
    let keys = state.keys.list(&team).await?;
    let views: Vec<KeyView> = keys.iter().map(KeyView::from).collect();
    Ok(Json(json!({ "keys": views })))
}

pub async fn show(
    State(state): State<ApiState>,
    TeamAuth(team): TeamAuth,
    Path(id): Path<String>,
) -> Result<Json<KeyView>, ApiError> {
    let record = state.keys.get(&team, &KeyRecordId(id)).await?;
    Ok(Json(KeyView::from(&record)))
}

pub async fn validate(
    State(state): State<ApiState>,
    TeamAuth(team): TeamAuth,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<KeyView>), ApiError> {
    let record = state
        .keys
        .request_validation(&team, &KeyRecordId(id))
        .await?;
    Ok((StatusCode::ACCEPTED, Json(KeyView::from(&record))))
}

pub async fn delete(
    State(state): State<ApiState>,
    TeamAuth(team): TeamAuth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.keys.delete(&team, &KeyRecordId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
