//! Limits on a request's head (URI and headers), answered in the API's error JSON. They sit well
//! below the HTTP server's own limits (hyper answers a head it cannot hold with a bodiless 414 or
//! 431; `shipwatch-local` raises those, see `crates/local/src/serve.rs`), so every over-long head
//! the service sees gets a machine code and a message.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Longest request target (path and query). The longest real one, a history search, is far
/// shorter.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most header bytes (names and values) in one request.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Most header fields in one request.
pub const MAX_HEADER_COUNT: usize = 100;

/// The middleware: refuses an over-long head before any handler runs.
pub async fn limit_request_head(request: Request, next: Next) -> Response {
    match check(&request) {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

fn check(request: &Request) -> Result<(), ApiError> {
    let uri_bytes = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if uri_bytes > MAX_URI_BYTES {
        return Err(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!(
                "the request URI is {uri_bytes} bytes, over the {MAX_URI_BYTES}-byte limit; send long input in a body"
            ),
        ));
    }
    let headers = request.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADER_COUNT || header_bytes > MAX_HEADER_BYTES {
        return Err(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "the request has {} headers of {header_bytes} bytes; at most {MAX_HEADER_COUNT} headers and {MAX_HEADER_BYTES} bytes are accepted",
                headers.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::HeaderValue;

    use super::*;

    fn request(uri: &str) -> Request {
        Request::builder()
            .uri(uri)
            .body(Body::empty())
            .unwrap_or_default()
    }

    #[test]
    fn ordinary_heads_pass() {
        let mut ok = request("/v1/events?q=rejected&limit=50");
        ok.headers_mut()
            .insert("authorization", HeaderValue::from_static("Bearer abc"));
        assert_eq!(check(&ok), Ok(()));
    }

    #[test]
    fn an_over_long_uri_is_414() {
        let long = format!("/v1/events?q={}", "a".repeat(MAX_URI_BYTES));
        let refused = check(&request(&long)).err();
        assert_eq!(
            refused.map(|e| (e.status, e.code)),
            Some((StatusCode::URI_TOO_LONG, "uri_too_long"))
        );
    }

    #[test]
    fn too_many_or_too_large_headers_are_431() {
        let mut many = request("/healthz");
        for n in 0..=MAX_HEADER_COUNT {
            if let Ok(name) = axum::http::HeaderName::try_from(format!("x-h{n}")) {
                many.headers_mut()
                    .insert(name, HeaderValue::from_static("1"));
            }
        }
        let mut large = request("/healthz");
        if let Ok(value) = HeaderValue::try_from("v".repeat(MAX_HEADER_BYTES)) {
            large.headers_mut().insert("x-large", value);
        }
        for refused in [check(&many), check(&large)] {
            assert_eq!(
                refused.err().map(|e| (e.status, e.code)),
                Some((
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "headers_too_large"
                ))
            );
        }
    }
}
