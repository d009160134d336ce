//! GitHub REST client for runway: App auth, JIT runner configs, jobs, runners.
//!
//! [`GitHub`] is the port the rest of runway uses; [`RestGitHub`] implements it over the REST
//! API of github.com or GitHub Enterprise Server, through octocrab's client, authenticated as a
//! GitHub App installation (RS256 JWT → installation token, cached per installation until five
//! minutes before it expires) or with a token. An App serving several installations
//! ([`AppCredentials::serving`]) acts, for each request, for the installation on the
//! repository's or organization's owner; [`RestGitHub::for_installation`] acts for one. TLS trusts the system's roots and an optional extra CA bundle
//! ([`RestGitHubOptions::extra_ca_pem`], for a GHES behind an internal CA). Rate limits are honoured (`Retry-After`, `x-ratelimit-reset`), 5xx and transport
//! failures are retried with bounded exponential backoff, and every wait goes through
//! [`runway_clock::Clock`] and stays within the call's deadline ([`RetryPolicy::call_budget`],
//! [`with_call_deadline`]). `GET` answers are remembered by URL with their `ETag` (bounded),
//! so an unchanged resource costs a `304`, which GitHub does not count against the rate
//! limit; [`GitHub::usage`] tells how many requests were made and the rate limit last seen. Tokens and JIT configurations are [`Secret`]s: never logged,
//! redacted by `Debug`.

use std::fmt;

use async_trait::async_trait;

pub mod auth;
mod cache;
mod error;
mod manifest;
mod rest;
mod secret;
mod switch;
mod transport;
mod types;
mod usage;

pub use auth::{AppClaims, AppCredentials, Credentials};
pub use cache::{DEFAULT_CACHE_BYTES, DEFAULT_CACHE_ENTRIES};
pub use error::GitHubError;
pub use manifest::{ConvertedApp, convert_app_manifest};
pub use rest::{API_VERSION, GITHUB_API_URL, RestGitHub, RetryPolicy, enterprise_server_url};
pub use secret::Secret;
pub use switch::SwitchableGitHub;
pub use transport::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, InProcess, InProcessAnswer, RestGitHubOptions,
};
pub use types::{
    Account, AppWebhookConfig, HookDelivery, InstallationRepository, JitConfig, JitConfigRequest,
    RegistrationToken, Repository, Runner, RunnerLabel, RunnerScope, WorkflowJob, WorkflowRun,
};
pub use usage::{ApiUsage, RateLimit, with_call_deadline};

/// What runway asks of GitHub.
#[async_trait]
pub trait GitHub: Send + Sync + fmt::Debug {
    /// Creates a runner and returns its just-in-time configuration
    /// (`POST …/actions/runners/generate-jitconfig`).
    async fn generate_jit_config(
        &self,
        scope: &RunnerScope,
        request: &JitConfigRequest,
    ) -> Result<JitConfig, GitHubError>;

    /// A registration token for `config.sh` (`POST …/actions/runners/registration-token`).
    async fn registration_token(
        &self,
        scope: &RunnerScope,
    ) -> Result<RegistrationToken, GitHubError>;

    /// One workflow job (`GET /repos/{owner}/{repo}/actions/jobs/{job_id}`).
    async fn workflow_job(
        &self,
        owner: &str,
        repo: &str,
        job_id: u64,
    ) -> Result<WorkflowJob, GitHubError>;

    /// The runners of `scope`, all pages, only those named `name` when given.
    async fn list_runners(
        &self,
        scope: &RunnerScope,
        name: Option<&str>,
    ) -> Result<Vec<Runner>, GitHubError>;

    /// One runner (`GET …/actions/runners/{runner_id}`).
    async fn runner(&self, scope: &RunnerScope, runner_id: u64) -> Result<Runner, GitHubError>;

    /// Removes a runner (`DELETE …/actions/runners/{runner_id}`).
    async fn delete_runner(&self, scope: &RunnerScope, runner_id: u64) -> Result<(), GitHubError>;

    /// The repository's workflow runs whose status is `status` (`queued`, `in_progress`, …),
    /// all pages (`GET /repos/{owner}/{repo}/actions/runs?status=`).
    async fn workflow_runs(
        &self,
        owner: &str,
        repo: &str,
        status: &str,
    ) -> Result<Vec<WorkflowRun>, GitHubError>;

    /// The jobs of a run's latest attempt, all pages
    /// (`GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs`).
    async fn workflow_run_jobs(
        &self,
        owner: &str,
        repo: &str,
        run_id: u64,
    ) -> Result<Vec<WorkflowJob>, GitHubError>;

    /// The repositories the App installation may access, all pages
    /// (`GET /installation/repositories`; needs installation credentials).
    async fn installation_repositories(&self) -> Result<Vec<InstallationRepository>, GitHubError>;

    /// The App installation that acts for `owner/repo`'s jobs: with several installations
    /// served, the one on the repository's owner (refused when it is not served). `None`
    /// with a token, which acts for every repository it reaches.
    async fn installation_for(&self, owner: &str, repo: &str) -> Result<Option<u64>, GitHubError>;

    /// Requests sent so far and the rate limit as last seen (nothing, for a client that does
    /// not keep count).
    fn usage(&self) -> ApiUsage {
        ApiUsage::default()
    }
}
