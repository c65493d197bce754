//! The stylesheet and script, embedded in the binary. Their URLs carry a hash of the content
//! (`?v=`), so they are cached for a year and a new build is fetched at once; an ETag as well.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("assets/app.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/app.js"),
    },
];

fn hashes() -> &'static [String] {
    static HASHES: OnceLock<Vec<String>> = OnceLock::new();
    HASHES.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| shipwatch_service::auth::hash_token(a.body)[..16].to_owned())
            .collect()
    })
}

/// The versioned URL of asset `name`.
pub fn url(name: &str) -> String {
    let hash = ASSETS
        .iter()
        .zip(hashes())
        .find(|(asset, _)| asset.name == name)
        .map(|(_, hash)| hash.as_str())
        .unwrap_or_default();
    format!("/assets/{name}?v={hash}")
}

pub async fn serve(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some((asset, hash)) = ASSETS.iter().zip(hashes()).find(|(a, _)| a.name == name) else {
        return super::page::not_found();
    };
    let etag = format!("\"{hash}\"");
    let cache = [
        (header::ETAG, etag.clone()),
        (
            header::CACHE_CONTROL,
            "public, max-age=31536000, immutable".to_owned(),
        ),
    ];
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag)
    {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    let mut response = (cache, asset.body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    response
}
