//! App Store Connect failures, classified for callers (key status, retries, user messages).
//!
//! Nothing here ever holds a token or key material: only Apple's error codes and texts,
//! HTTP statuses and transport descriptions without URLs.

use std::time::Duration;

use serde::Deserialize;

/// The error code Apple returns (with 403) when the account holder must accept new agreements.
pub const AGREEMENTS_MISSING_CODE: &str = "FORBIDDEN.REQUIRED_AGREEMENTS_MISSING_OR_EXPIRED";

/// `X-Rate-Limit` as App Store Connect reports it: `user-hour-lim:3600;user-hour-rem:3599;`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct RateLimit {
    pub hourly_limit: u32,
    pub hourly_remaining: u32,
}

impl RateLimit {
    /// Parses the header value; `None` unless both the limit and the remainder are present.
    pub fn parse(header: &str) -> Option<Self> {
        let mut limit = None;
        let mut remaining = None;
        for part in header.split(';') {
            let Some((name, value)) = part.split_once(':') else {
                continue;
            };
            let value = value.trim().parse::<u32>().ok();
            match name.trim() {
                "user-hour-lim" => limit = value,
                "user-hour-rem" => remaining = value,
                _ => {}
            }
        }
        Some(Self {
            hourly_limit: limit?,
            hourly_remaining: remaining?,
        })
    }
}

/// Why a call to App Store Connect failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AscError {
    /// 401: the key was revoked, or the Key ID / Issuer ID do not match the private key.
    #[error(
        "App Store Connect rejected the API key ({code}): check that the key is active and that the Key ID and Issuer ID match the .p8 file"
    )]
    NotAuthorized {
        code: String,
        detail: Option<String>,
    },
    /// 403 for any reason other than agreements: usually the key's role cannot read this resource.
    #[error("App Store Connect denied access ({code}): give the API key the App Manager, Developer or Admin role{}", detail_suffix(.detail))]
    Forbidden {
        code: String,
        detail: Option<String>,
    },
    /// 403 `FORBIDDEN.REQUIRED_AGREEMENTS_MISSING_OR_EXPIRED`.
    #[error("the Account Holder must review and accept the latest agreements in App Store Connect (Business){}", detail_suffix(.detail))]
    AgreementsRequired { detail: Option<String> },
    /// 429.
    #[error("App Store Connect rate limit reached{}", retry_suffix(.retry_after))]
    RateLimited {
        retry_after: Option<Duration>,
        rate_limit: Option<RateLimit>,
    },
    /// 404.
    #[error("App Store Connect could not find the resource ({code}){}", detail_suffix(.detail))]
    NotFound {
        code: String,
        detail: Option<String>,
    },
    /// 400 and other 4xx: the request itself was refused (a bug on our side).
    #[error("App Store Connect refused the request with HTTP {status} ({code}){}", detail_suffix(.detail))]
    BadRequest {
        status: u16,
        code: String,
        detail: Option<String>,
    },
    /// 5xx.
    #[error("App Store Connect is unavailable (HTTP {status}); try again later")]
    Server { status: u16, code: Option<String> },
    #[error("App Store Connect did not answer in time")]
    Timeout,
    #[error("could not reach App Store Connect: {0}")]
    Transport(String),
    #[error("App Store Connect sent a response shipwatch could not read: {0}")]
    Decode(String),
    /// The local client could not be built or a token could not be signed.
    #[error("App Store Connect client error: {0}")]
    Client(String),
}

impl AscError {
    /// Whether trying again later may succeed without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. } | Self::Server { .. } | Self::Timeout | Self::Transport(_)
        )
    }

    /// The first Apple error code, when Apple sent one.
    pub fn apple_code(&self) -> Option<&str> {
        match self {
            Self::NotAuthorized { code, .. }
            | Self::Forbidden { code, .. }
            | Self::NotFound { code, .. }
            | Self::BadRequest { code, .. } => Some(code),
            Self::AgreementsRequired { .. } => Some(AGREEMENTS_MISSING_CODE),
            Self::Server { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn from_transport(error: &reqwest::Error) -> Self {
        if error.is_timeout() {
            return Self::Timeout;
        }
        // Describe by kind only: reqwest's own text may carry the URL.
        let kind = if error.is_connect() {
            "connection failed"
        } else if error.is_request() {
            "request could not be sent"
        } else if error.is_body() || error.is_decode() {
            "response body could not be read"
        } else if error.is_redirect() {
            "too many redirects"
        } else {
            "network error"
        };
        Self::Transport(kind.to_owned())
    }

    /// Classifies a non-success answer from its status, headers and (JSON:API error) body.
    pub(crate) fn from_response(
        status: u16,
        body: &[u8],
        retry_after: Option<Duration>,
        rate_limit: Option<RateLimit>,
    ) -> Self {
        let errors = serde_json::from_slice::<ErrorDocument>(body)
            .map(|doc| doc.errors)
            .unwrap_or_default();
        let first = errors.first();
        let code = first
            .map(|e| e.code.clone())
            .unwrap_or_else(|| default_code(status).to_owned());
        let detail = first.and_then(|e| e.detail.clone().or_else(|| e.title.clone()));
        match status {
            401 => Self::NotAuthorized { code, detail },
            403 => match errors.iter().find(|e| e.code == AGREEMENTS_MISSING_CODE) {
                Some(agreement) => Self::AgreementsRequired {
                    detail: agreement.detail.clone().or_else(|| agreement.title.clone()),
                },
                None => Self::Forbidden { code, detail },
            },
            404 => Self::NotFound { code, detail },
            429 => Self::RateLimited {
                retry_after,
                rate_limit,
            },
            500..=599 => Self::Server {
                status,
                code: first.map(|e| e.code.clone()),
            },
            _ => Self::BadRequest {
                status,
                code,
                detail,
            },
        }
    }
}

fn default_code(status: u16) -> &'static str {
    match status {
        401 => "NOT_AUTHORIZED",
        403 => "FORBIDDEN_ERROR",
        404 => "NOT_FOUND",
        _ => "UNKNOWN",
    }
}

fn detail_suffix(detail: &Option<String>) -> String {
    detail
        .as_deref()
        .map(|d| format!(": {d}"))
        .unwrap_or_default()
}

fn retry_suffix(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(wait) => format!("; retry after {} s", wait.as_secs()),
        None => "; retry later".to_owned(),
    }
}

/// Apple's `ErrorResponse`.
#[derive(Debug, Deserialize)]
struct ErrorDocument {
    #[serde(default)]
    errors: Vec<ResponseError>,
}

/// Apple's `ResponseError` (the fields shipwatch uses).
#[derive(Debug, Deserialize)]
struct ResponseError {
    code: String,
    title: Option<String>,
    detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_header_parses() {
        assert_eq!(
            RateLimit::parse("user-hour-lim:3600;user-hour-rem:3599;"),
            Some(RateLimit {
                hourly_limit: 3600,
                hourly_remaining: 3599
            })
        );
        assert_eq!(
            RateLimit::parse(" user-hour-rem:0 ; user-hour-lim:3500"),
            Some(RateLimit {
                hourly_limit: 3500,
                hourly_remaining: 0
            })
        );
        assert_eq!(RateLimit::parse("user-hour-lim:3600;"), None);
        assert_eq!(RateLimit::parse("garbage"), None);
    }

    #[test]
    fn agreements_code_wins_over_generic_forbidden() {
        let body = br#"{"errors":[{"status":"403","code":"FORBIDDEN.REQUIRED_AGREEMENTS_MISSING_OR_EXPIRED","title":"A required agreement is missing or has expired.","detail":"Sign it."}]}"#;
        assert_eq!(
            AscError::from_response(403, body, None, None),
            AscError::AgreementsRequired {
                detail: Some("Sign it.".into())
            }
        );
        let forbidden = AscError::from_response(403, b"not json", None, None);
        assert!(
            matches!(forbidden, AscError::Forbidden { ref code, .. } if code == "FORBIDDEN_ERROR")
        );
        assert!(!forbidden.is_retryable());
        assert!(AscError::from_response(503, b"", None, None).is_retryable());
    }
}
