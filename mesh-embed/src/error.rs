//! The crate's error type.

use std::time::Duration;

/// Why embedding failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum EmbedError {
    /// The provider is throttling (HTTP 429, `ThrottlingException`).
    #[error("{provider} is throttling requests")]
    Throttled {
        /// Which model or provider.
        provider: String,
        /// How long it asked to wait, if it said.
        retry_after: Option<Duration>,
    },
    /// The provider rejected the request as invalid (HTTP 400, `ValidationException`).
    #[error("{provider} rejected the request: {message}")]
    Invalid {
        /// Which model or provider.
        provider: String,
        /// What it said.
        message: String,
    },
    /// The provider did not answer in time.
    #[error("{provider} timed out")]
    Timeout {
        /// Which model or provider.
        provider: String,
    },
    /// The provider failed (5xx, model errors, malformed responses).
    #[error("{provider} failed: {message}")]
    Provider {
        /// Which model or provider.
        provider: String,
        /// What went wrong.
        message: String,
        /// Whether trying again may help.
        retryable: bool,
    },
    /// A batch larger than the model takes.
    #[error("{count} texts exceed the batch limit of {max}")]
    BatchTooLarge {
        /// Texts given.
        count: usize,
        /// The model's limit.
        max: usize,
    },
    /// Every provider of a failover chain failed; the last error is the source.
    #[error("all {providers} providers failed")]
    AllProvidersFailed {
        /// How many were tried.
        providers: usize,
        /// The last failure.
        #[source]
        last: Box<EmbedError>,
    },
    /// A wrapper's background task has stopped.
    #[error("the embedder has shut down")]
    Closed,
}

impl EmbedError {
    /// `provider` answered with something that is not what its API documents.
    #[cfg(any(feature = "bedrock", feature = "openai"))]
    pub(crate) fn malformed(provider: &str, what: &str) -> Self {
        Self::Provider {
            provider: provider.to_owned(),
            message: format!("malformed response: {what}"),
            retryable: false,
        }
    }

    /// Whether the same request may succeed later (throttling, timeouts, 5xx).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Throttled { .. } | Self::Timeout { .. } => true,
            Self::Provider { retryable, .. } => *retryable,
            Self::AllProvidersFailed { last, .. } => last.is_retryable(),
            _ => false,
        }
    }

    /// Whether this is throttling.
    pub fn is_throttling(&self) -> bool {
        matches!(self, Self::Throttled { .. })
    }
}
