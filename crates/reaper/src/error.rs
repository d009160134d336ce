//! The error a sweep ends with: a Step Functions error name and a cause for the console.

use runway_github::GitHubError;
use runway_providers::ProviderError;
use runway_store::StoreError;

/// Retryable: the reaper machine retries the sweep with backoff (as the job machine does).
pub const TRANSIENT: &str = "Runway.Transient";
/// The sweep's input is not what `statemachines/reaper.asl.json` passes.
pub const BAD_INPUT: &str = "Runway.BadInput";
/// A service refused for good (permissions, configuration).
pub const REAP_FAILED: &str = "Runway.ReapFailed";

/// Why a sweep stopped. What it did before stopping stays done: every sweep is idempotent, so
/// a retry picks up the rest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReapError {
    /// Throttling, a GitHub 5xx, a service that could not be reached: retry later.
    #[error("{0}")]
    Transient(String),
    /// The input names no sweep, or is not a JSON object.
    #[error("{0}")]
    BadInput(String),
    /// A service refused the request; retrying will not help until the setup is fixed.
    #[error("{0}")]
    Failed(String),
}

impl ReapError {
    /// The Step Functions error name `Retry`/`Catch` match on.
    pub fn name(&self) -> &'static str {
        match self {
            ReapError::Transient(_) => TRANSIENT,
            ReapError::BadInput(_) => BAD_INPUT,
            ReapError::Failed(_) => REAP_FAILED,
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, ReapError::Transient(_))
    }

    pub(crate) fn store(doing: &str, error: StoreError) -> ReapError {
        let cause = format!("could not {doing}: {error}");
        if error.is_retryable() {
            ReapError::Transient(cause)
        } else {
            ReapError::Failed(cause)
        }
    }

    pub(crate) fn github(doing: &str, error: GitHubError) -> ReapError {
        let cause = format!("could not {doing}: {error}");
        if error.is_retryable() {
            ReapError::Transient(cause)
        } else {
            ReapError::Failed(cause)
        }
    }

    /// Capacity errors never come from listing or terminating, but are retryable too.
    pub(crate) fn provider(doing: &str, error: ProviderError) -> ReapError {
        let cause = format!("could not {doing}: {error}");
        if error.is_retryable() {
            ReapError::Transient(cause)
        } else {
            ReapError::Failed(cause)
        }
    }
}
