use std::time::Duration;

/// What went wrong talking to GitHub, typed so callers can decide: retry, wait, give up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitHubError {
    /// 401: the token or App credentials are wrong or expired.
    #[error(
        "GitHub refused the credentials (401): {message}; check the App id, private key or token"
    )]
    Unauthorized { message: String },
    /// 403 that is not a rate limit: the App or token lacks a permission.
    #[error(
        "GitHub denied the request (403): {message}; check the App's permissions (administration, actions)"
    )]
    Forbidden { message: String },
    /// 404: no such repository, organization, job or runner (or no access to it).
    #[error("not found on GitHub (404): {message}")]
    NotFound { message: String },
    /// 409/422: GitHub understood the request and refused it (e.g. a runner name in use).
    #[error("GitHub refused the request ({status}): {message}")]
    Validation { status: u16, message: String },
    /// A primary or secondary rate limit; try again after `retry_after`.
    #[error("GitHub rate limit reached; retry after {retry_after:?}")]
    RateLimited { retry_after: Duration },
    /// 5xx from GitHub, still failing after the retries.
    #[error("GitHub failed with {status}; it may be degraded, try again later")]
    Server { status: u16 },
    /// The request did not complete (connection, timeout, TLS).
    #[error("could not reach GitHub: {message}")]
    Transport { message: String },
    /// Another unexpected answer.
    #[error("unexpected answer from GitHub ({status}): {message}")]
    Unexpected { status: u16, message: String },
    /// The client is set up wrongly (a bad key, a bad base URL).
    #[error("GitHub client configuration: {message}")]
    Config { message: String },
}

impl GitHubError {
    /// Whether the same request may succeed later without any change.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            GitHubError::RateLimited { .. }
                | GitHubError::Server { .. }
                | GitHubError::Transport { .. }
        )
    }

    /// How long to wait before retrying, when GitHub said so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            GitHubError::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}
