//! Why a measurement could not be made.

/// A benchmark failed; the message says which step and why (never key material).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("usage: {0}")]
    Usage(String),
    #[error("{step}: {source}")]
    Io {
        step: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Setup(String),
    /// The run finished but its result is not a valid measurement (e.g. keys were skipped).
    #[error("invalid measurement: {0}")]
    Invalid(String),
}

impl BenchError {
    pub fn io(step: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let step = step.into();
        move |source| Self::Io { step, source }
    }

    pub fn setup(step: &str, cause: impl std::fmt::Display) -> Self {
        Self::Setup(format!("{step}: {cause}"))
    }
}
