//! Where and how patiently the client talks to App Store Connect.

use std::time::Duration;

use url::Url;

/// The production API root.
pub const DEFAULT_BASE_URL: &str = "https://api.appstoreconnect.apple.com";
/// Environment variable overriding the API root (tests point it at a fake on 127.0.0.1).
pub const BASE_URL_ENV: &str = "ASC_API_BASE_URL";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "{BASE_URL_ENV} is not a valid URL; set it to an http(s) URL such as {DEFAULT_BASE_URL}"
    )]
    InvalidBaseUrl,
    #[error("{BASE_URL_ENV} must use http or https, not `{scheme}`")]
    UnsupportedScheme { scheme: String },
}

/// Client settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AscConfig {
    pub base_url: Url,
    pub connect_timeout: Duration,
    /// Upper bound for a whole request, body included.
    pub request_timeout: Duration,
}

impl AscConfig {
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

    /// Settings for the given API root with default timeouts.
    pub fn new(base_url: &str) -> Result<Self, ConfigError> {
        let base_url = Url::parse(base_url.trim()).map_err(|_| ConfigError::InvalidBaseUrl)?;
        match base_url.scheme() {
            "http" | "https" => {}
            other => {
                return Err(ConfigError::UnsupportedScheme {
                    scheme: other.to_owned(),
                });
            }
        }
        if base_url.cannot_be_a_base() || base_url.host().is_none() {
            return Err(ConfigError::InvalidBaseUrl);
        }
        Ok(Self {
            base_url,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
        })
    }

    /// Reads `ASC_API_BASE_URL` (default: Apple's production API).
    pub fn from_env() -> Result<Self, ConfigError> {
        match std::env::var(BASE_URL_ENV) {
            Ok(value) if !value.trim().is_empty() => Self::new(&value),
            _ => Self::new(DEFAULT_BASE_URL),
        }
    }

    pub fn with_timeouts(mut self, connect_timeout: Duration, request_timeout: Duration) -> Self {
        self.connect_timeout = connect_timeout;
        self.request_timeout = request_timeout;
        self
    }

    /// `base_url` joined with an absolute API path such as `/v1/apps`, keeping any path prefix.
    pub(crate) fn endpoint(&self, path: &str) -> Url {
        let mut url = self.base_url.clone();
        let prefix = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{prefix}{path}"));
        url.set_query(None);
        url.set_fragment(None);
        url
    }
}

impl Default for AscConfig {
    fn default() -> Self {
        Self {
            base_url: Url::parse(DEFAULT_BASE_URL).unwrap_or_else(|_| unreachable!()),
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_keeps_prefix_and_rejects_odd_schemes() {
        let config = AscConfig::new("http://127.0.0.1:9999/prefix/").unwrap();
        assert_eq!(
            config.endpoint("/v1/apps").as_str(),
            "http://127.0.0.1:9999/prefix/v1/apps"
        );
        assert_eq!(
            AscConfig::new("ftp://example.com"),
            Err(ConfigError::UnsupportedScheme {
                scheme: "ftp".into()
            })
        );
        assert_eq!(
            AscConfig::new("not a url"),
            Err(ConfigError::InvalidBaseUrl)
        );
        assert_eq!(
            AscConfig::default().base_url.as_str(),
            "https://api.appstoreconnect.apple.com/"
        );
    }
}
