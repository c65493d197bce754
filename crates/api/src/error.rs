//! The HTTP API's error answer: `{"error": {"code": "<snake_case>", "message": "<what to do>"}}`
//! (docs/openapi.yaml), and which status and code each service error answers. The message is the
//! service error's own text.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use shipwatch_service::destinations::DestinationError;
use shipwatch_service::keys::KeyError;
use shipwatch_service::names::InvalidName;
use shipwatch_service::ports::StoreError;
use shipwatch_service::queries::QueryError;
use shipwatch_service::teams::TeamError;

/// An error as the API answers it. Messages never contain secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header (429 answers).
    pub retry_after_seconds: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_seconds: None,
        }
    }

    /// 429 `rate_limited`, with `Retry-After`.
    pub fn rate_limited(message: impl Into<String>, retry_after_seconds: u64) -> Self {
        Self {
            retry_after_seconds: Some(retry_after_seconds),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::bad_request("invalid_request", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send `Authorization: Bearer <token>` with your team token (or the admin token for admin routes)",
        )
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn payload_too_large(limit_bytes: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the request body is larger than {} KiB; a .p8 key file is well under 1 KiB",
                limit_bytes / 1024
            ),
        )
    }

    pub fn store_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "storage is unavailable right now; nothing was changed, try again shortly",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(_) => Self::conflict(
                "conflict",
                "the resource changed while the request ran; try again",
            ),
            StoreError::Unavailable(detail) => {
                tracing::error!(error = %detail, "store unavailable");
                Self::store_unavailable()
            }
            StoreError::Corrupt(detail) => {
                tracing::error!(error = %detail, "corrupt record");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "a stored record could not be read; the operator has been told in the logs",
                )
            }
        }
    }
}

impl From<InvalidName> for ApiError {
    fn from(err: InvalidName) -> Self {
        Self::invalid_request(err.to_string())
    }
}

impl From<TeamError> for ApiError {
    fn from(err: TeamError) -> Self {
        match err {
            TeamError::InvalidName(invalid) => invalid.into(),
            TeamError::Store(store) => store.into(),
        }
    }
}

impl From<KeyError> for ApiError {
    fn from(err: KeyError) -> Self {
        let message = err.to_string();
        match err {
            KeyError::InvalidPrivateKey(_) => Self::bad_request("invalid_private_key", message),
            KeyError::InvalidKeyId(_) => Self::bad_request("invalid_key_id", message),
            KeyError::InvalidIssuerId(_) => Self::bad_request("invalid_issuer_id", message),
            KeyError::KeyIdMismatch { .. } => Self::bad_request("key_id_mismatch", message),
            KeyError::InvalidName => Self::invalid_request(message),
            KeyError::KeyExists { .. } => Self::conflict("key_exists", message),
            KeyError::InvalidServiceAccount(_) => {
                Self::bad_request("invalid_service_account", message)
            }
            KeyError::InvalidPackageName(_) => Self::bad_request("invalid_package_name", message),
            KeyError::ServiceAccountExists { .. } => Self::conflict("key_exists", message),
            KeyError::NotFound => Self::not_found(message),
            KeyError::TooManyValidations {
                retry_after_seconds,
            } => Self::rate_limited(message, retry_after_seconds),
            KeyError::Store(store) => store.into(),
        }
    }
}

impl From<DestinationError> for ApiError {
    fn from(err: DestinationError) -> Self {
        let message = err.to_string();
        match err {
            DestinationError::InvalidType => Self::bad_request("invalid_destination_type", message),
            DestinationError::InvalidName(invalid) => invalid.into(),
            DestinationError::InvalidUrl(_) => {
                Self::bad_request("invalid_destination_url", message)
            }
            DestinationError::Unencodable => Self::invalid_request(message),
            DestinationError::UnknownDestination => {
                Self::bad_request("unknown_destination", message)
            }
            DestinationError::InvalidAppIds => Self::bad_request("invalid_app_ids", message),
            DestinationError::InvalidEventTypes => {
                Self::bad_request("invalid_event_types", message)
            }
            DestinationError::NotFound | DestinationError::WorkflowNotFound => {
                Self::not_found(message)
            }
            DestinationError::TooManyTests {
                retry_after_seconds,
            } => Self::rate_limited(message, retry_after_seconds),
            DestinationError::Store(store) => store.into(),
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(err: QueryError) -> Self {
        let message = err.to_string();
        match err {
            QueryError::InvalidLimit { .. }
            | QueryError::InvalidCursor
            | QueryError::UnknownEventType => Self::invalid_request(message),
            QueryError::Store(store) => store.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after_seconds {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the oversized body is never read: the connection cannot be reused, so
            // say so rather than let a client send its next request into a closing socket.
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        response
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl From<shipwatch_service::push::receiver::ReceiveError> for ApiError {
    fn from(err: shipwatch_service::push::receiver::ReceiveError) -> Self {
        use shipwatch_service::push::receiver::ReceiveError;
        match &err {
            ReceiveError::BadSignature => Self::new(
                StatusCode::UNAUTHORIZED,
                "invalid_signature",
                err.to_string(),
            ),
            ReceiveError::Malformed(_) => Self::invalid_request(err.to_string()),
            ReceiveError::RateLimited => Self::rate_limited(err.to_string(), 60),
            ReceiveError::Store(_) | ReceiveError::Trigger(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "shipwatch could not take the notification now; App Store Connect retries it",
            ),
        }
    }
}
