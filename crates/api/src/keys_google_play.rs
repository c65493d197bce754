//! The Google Play form of `POST /v1/keys` (`platform: google_play`): the service-account JSON
//! key (multipart file part `service_account`, or in JSON the object or its text) and
//! `package_names` (repeated fields or comma-separated; in JSON an array or a string).

use axum::http::HeaderMap;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;
use zeroize::Zeroizing;

use shipwatch_service::keys::NewPlayKey;

use crate::body::{FormPart, media_type, parse_json, parse_multipart};
use crate::error::ApiError;

const PLATFORMS: &str = "platform must be app_store_connect (the default) or google_play";

/// Which store an upload is for. An unreadable JSON body counts as App Store Connect, whose
/// parser then names what is wrong.
pub async fn is_google_play(headers: &HeaderMap, bytes: &Bytes) -> Result<bool, ApiError> {
    let platform = match media_type(headers).as_deref() {
        Some("multipart/form-data") => parse_multipart(headers, bytes.clone())
            .await?
            .into_iter()
            .find(|part| part.name == "platform")
            .map(|part| String::from_utf8_lossy(&part.data).trim().to_owned()),
        _ => {
            #[derive(Deserialize)]
            struct PlatformOnly {
                platform: Option<Value>,
            }
            match serde_json::from_slice::<PlatformOnly>(bytes) {
                Ok(PlatformOnly {
                    platform: Some(Value::String(p)),
                }) => Some(p),
                Ok(PlatformOnly {
                    platform: Some(Value::Null) | None,
                }) => None,
                Ok(_) => return Err(ApiError::invalid_request(PLATFORMS)),
                Err(_) => None,
            }
        }
    };
    match platform.as_deref() {
        None | Some("app_store_connect") => Ok(false),
        Some("google_play") => Ok(true),
        Some(_) => Err(ApiError::invalid_request(PLATFORMS)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonPlayUpload {
    #[allow(dead_code)]
    platform: String,
    service_account: Option<Value>,
    package_names: Option<Value>,
    name: Option<String>,
}

fn missing_service_account() -> ApiError {
    ApiError::bad_request(
        "invalid_service_account",
        "service_account is required: the JSON key file of a Google Cloud service account",
    )
}

fn bad_package_names() -> ApiError {
    ApiError::bad_request(
        "invalid_package_name",
        "package_names must be a list of Android package names or one comma-separated string",
    )
}

/// The Google Play upload in a multipart form's parts (the API's and the dashboard's one path);
/// other parts are ignored. A browser's empty `package_names` field counts as none given.
pub(crate) fn new_play_key_from_parts(parts: &[FormPart]) -> Result<NewPlayKey, ApiError> {
    let mut new = NewPlayKey {
        name: None,
        service_account: Zeroizing::new(Vec::new()),
        package_names: Vec::new(),
    };
    let mut has_file = false;
    for part in parts {
        match part.name.as_str() {
            "service_account" => {
                new.service_account = Zeroizing::new(part.data.to_vec());
                has_file = !part.data.is_empty()
                    || part.file_name.as_deref().is_some_and(|f| !f.is_empty());
            }
            "package_names" => new
                .package_names
                .push(String::from_utf8_lossy(&part.data).into_owned()),
            "name" => new.name = Some(String::from_utf8_lossy(&part.data).into_owned()),
            _ => {}
        }
    }
    if !has_file {
        return Err(missing_service_account());
    }
    Ok(new)
}

/// Reads the Google Play upload from a body already size-limited.
pub async fn new_play_key(headers: &HeaderMap, bytes: Bytes) -> Result<NewPlayKey, ApiError> {
    match media_type(headers).as_deref() {
        Some("multipart/form-data") => {
            new_play_key_from_parts(&parse_multipart(headers, bytes).await?)
        }
        _ => {
            let upload: JsonPlayUpload = parse_json(headers, &bytes)?;
            let service_account = match upload.service_account {
                Some(Value::String(text)) => Zeroizing::new(text.into_bytes()),
                Some(object @ Value::Object(_)) => {
                    Zeroizing::new(Zeroizing::new(object.to_string()).as_bytes().to_vec())
                }
                _ => return Err(missing_service_account()),
            };
            let package_names = match upload.package_names {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::String(text)) => vec![text],
                Some(Value::Array(items)) => items
                    .into_iter()
                    .map(|item| match item {
                        Value::String(text) => Ok(text),
                        _ => Err(bad_package_names()),
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(bad_package_names()),
            };
            Ok(NewPlayKey {
                name: upload.name,
                service_account,
                package_names,
            })
        }
    }
}
