//! The error a step ends with: a Step Functions error name and a one-sentence cause.

use std::fmt;

use runway_github::GitHubError;
use runway_providers::ProviderError;
use runway_store::StoreError;

/// Retryable: the state machine retries the step with backoff.
pub const TRANSIENT: &str = "Runway.Transient";
/// The step's input is not what the state machine passes.
pub const BAD_INPUT: &str = "Runway.BadInput";
/// The route names a pool that is not configured.
pub const NO_SUCH_POOL: &str = "Runway.NoSuchPool";
/// GitHub refused a request for good (credentials, permissions, validation).
pub const GITHUB_REFUSED: &str = "Runway.GitHubRefused";
/// The job does not exist on GitHub (or the App cannot see it).
pub const JOB_NOT_FOUND: &str = "Runway.JobNotFound";
/// The provider could not launch the runner and retrying will not help.
pub const PROVISION_FAILED: &str = "Runway.ProvisionFailed";
/// Every runner launched for the job failed to register with GitHub.
pub const RUNNER_NEVER_REGISTERED: &str = "Runway.RunnerNeverRegistered";
/// The job is still queued, but the runners the pool allows for it (`max_replacements` + 1)
/// were all launched: each ran another job or never registered.
pub const LAUNCHES_SPENT: &str = "Runway.LaunchesSpent";
/// The store refused a request for good.
pub const STORE_FAILED: &str = "Runway.StoreFailed";
/// The provider could not terminate a runner and retrying will not help.
pub const TEARDOWN_FAILED: &str = "Runway.TeardownFailed";
/// GitHub refused to remove the runner because it runs a job: it is followed, not terminated.
pub const RUNNER_BUSY: &str = "Runway.RunnerBusy";
/// The job waited for a slot longer than its pool allows (`max_wait_seconds`), or was sent
/// back to the queue more often than an execution's history can hold.
pub const WAITED_TOO_LONG: &str = "Runway.WaitedTooLong";

/// A step's failure, as Step Functions shows it: `error` is the name `Retry`/`Catch` match
/// on, `cause` one sentence for the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepError {
    pub error: String,
    pub cause: String,
}

impl StepError {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> StepError {
        StepError {
            error: error.into(),
            cause: cause.into(),
        }
    }

    pub fn transient(cause: impl Into<String>) -> StepError {
        StepError::new(TRANSIENT, cause)
    }

    pub fn bad_input(cause: impl Into<String>) -> StepError {
        StepError::new(BAD_INPUT, cause)
    }

    /// Whether the state machine retries this error.
    pub fn is_transient(&self) -> bool {
        self.error == TRANSIENT
    }

    /// A store failure while `doing` something.
    pub fn store(doing: &str, error: StoreError) -> StepError {
        let name = if error.is_retryable() {
            TRANSIENT
        } else {
            STORE_FAILED
        };
        StepError::new(name, format!("could not {doing}: {error}"))
    }

    /// A GitHub failure while `doing` something: 5xx, 429 and transport failures are
    /// transient, the rest final.
    pub fn github(doing: &str, error: GitHubError) -> StepError {
        let name = if error.is_retryable() {
            TRANSIENT
        } else {
            GITHUB_REFUSED
        };
        StepError::new(name, format!("could not {doing}: {error}"))
    }

    /// A provider failure while `doing` something (`final_name` when it is not retryable).
    pub fn provider(doing: &str, final_name: &str, error: ProviderError) -> StepError {
        let name = if error.is_retryable() {
            TRANSIENT
        } else {
            final_name
        };
        StepError::new(name, format!("could not {doing}: {error}"))
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error, self.cause)
    }
}

impl std::error::Error for StepError {}
