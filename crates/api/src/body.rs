//! Request bodies: a hard size limit before anything is parsed, JSON with specific errors, and the
//! multipart form of key uploads.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest request body accepted: larger ones get 413 (docs/openapi.yaml).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Reads the whole body, answering 413 as soon as it grows past [`MAX_BODY_BYTES`].
pub async fn read_limited(headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(ApiError::payload_too_large(MAX_BODY_BYTES));
    }
    let mut body = body;
    let mut collected = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|_| ApiError::invalid_request("the request body could not be read"))?;
        if let Ok(data) = frame.into_data() {
            if collected.len() + data.len() > MAX_BODY_BYTES {
                return Err(ApiError::payload_too_large(MAX_BODY_BYTES));
            }
            collected.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(collected))
}

/// The media type of the request, lowercased, without parameters.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next()?.trim().to_ascii_lowercase())
}

/// Parses a JSON body into `T`, naming what is wrong.
pub fn parse_json<T: DeserializeOwned>(headers: &HeaderMap, bytes: &[u8]) -> Result<T, ApiError> {
    match media_type(headers).as_deref() {
        Some("application/json") | None => {}
        Some(other) => {
            return Err(ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("send `Content-Type: application/json` (got {other})"),
            ));
        }
    }
    serde_json::from_slice(bytes).map_err(|e| {
        // serde_json's message names the field or position, never echoes string values.
        ApiError::invalid_request(format!("the body is not the JSON this route expects: {e}"))
    })
}

/// A JSON request body, read under the size limit and decoded into `T`; every failure is an
/// [`ApiError`] with its machine code (413, 415 or 400).
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let bytes = read_limited(&parts.headers, body).await?;
        Ok(Self(parse_json(&parts.headers, &bytes)?))
    }
}

/// A query string decoded into `T`; a malformed one (a parameter given twice, a value that does
/// not fit) is a 400 `invalid_request` in the API's error JSON, not axum's plain-text rejection.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query).map(Self).map_err(|e| {
            // serde_urlencoded names the parameter (e.g. "duplicate field `type`"), not values.
            ApiError::invalid_request(format!("the query string is not valid here: {e}"))
        })
    }
}

/// One part of a multipart form.
pub struct FormPart {
    pub name: String,
    pub file_name: Option<String>,
    pub data: Bytes,
}

/// Splits a `multipart/form-data` body (already size-limited) into its parts.
pub async fn parse_multipart(headers: &HeaderMap, bytes: Bytes) -> Result<Vec<FormPart>, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        ApiError::invalid_request("multipart/form-data needs a boundary parameter in Content-Type")
    })?;
    let stream =
        futures_util::stream::once(async move { Ok::<Bytes, std::convert::Infallible>(bytes) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut parts = Vec::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(_) => return Err(ApiError::invalid_request("the multipart body is malformed")),
        };
        let name = field.name().unwrap_or_default().to_owned();
        let file_name = field.file_name().map(str::to_owned);
        let data = field
            .bytes()
            .await
            .map_err(|_| ApiError::invalid_request("the multipart body is malformed"))?;
        parts.push(FormPart {
            name,
            file_name,
            data,
        });
    }
    Ok(parts)
}
