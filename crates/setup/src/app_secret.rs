//! The GitHub App the setup page stored, as the functions read it: the App secret
//! (`{"status":"pending"}` until set up) read again at most every [`APP_SECRET_TTL`], so a
//! function started before setup acts as the App within that time, with no redeploy.
//!
//! - [`AppSecret`]: the cached read;
//! - [`SetupAppGitHub`]: the job flow's GitHub, made from the App's key (every installation
//!   of it served), or a configuration error while setup is pending;
//! - [`AppIntake`]: the webhook, checking deliveries with the App's webhook secret, or
//!   answering 503 `not_set_up` with the setup URL while setup is pending.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use runway_app_setup::{StoreError, StoredApp};
use runway_clock::SharedClock;
use runway_github::{
    ApiUsage, AppCredentials, Credentials, GitHub, GitHubError, InstallationRepository, JitConfig,
    JitConfigRequest, RegistrationToken, RestGitHub, RestGitHubOptions, Runner, RunnerScope,
    WorkflowJob, WorkflowRun,
};
use runway_webhook::{Delivery, Intake, IntakeResponse, WebhookSecrets};
use tokio::sync::Mutex;
use tracing::{info, warn};

use crate::SetupError;

/// How long a read of the App secret is trusted.
pub const APP_SECRET_TTL: Duration = Duration::from_secs(30);

/// The last read of the App secret: when, and what it said.
type LastRead = Arc<Mutex<Option<(Instant, Option<StoredApp>)>>>;
/// The client made for an App, kept while the App is the same.
type ClientFor = Arc<Mutex<Option<(StoredApp, Arc<RestGitHub>)>>>;

/// The App secret, read at most once per `ttl`.
#[derive(Debug, Clone)]
pub struct AppSecret {
    client: aws_sdk_secretsmanager::Client,
    arn: String,
    ttl: Duration,
    cached: LastRead,
}

impl AppSecret {
    pub fn new(client: aws_sdk_secretsmanager::Client, arn: impl Into<String>) -> AppSecret {
        AppSecret::with_ttl(client, arn, APP_SECRET_TTL)
    }

    pub fn with_ttl(
        client: aws_sdk_secretsmanager::Client,
        arn: impl Into<String>,
        ttl: Duration,
    ) -> AppSecret {
        AppSecret {
            client,
            arn: arn.into(),
            ttl,
            cached: Arc::default(),
        }
    }

    pub fn arn(&self) -> &str {
        &self.arn
    }

    /// The App, `None` while setup is pending.
    pub async fn app(&self) -> Result<Option<StoredApp>, SetupError> {
        let mut cached = self.cached.lock().await;
        if let Some((read_at, app)) = cached.as_ref()
            && read_at.elapsed() < self.ttl
        {
            return Ok(app.clone());
        }
        let text = crate::read_secret(&self.client, &self.arn).await?;
        let app = StoredApp::from_json(&text).map_err(|error| SetupError::Secret {
            id: self.arn.clone(),
            reason: error.to_string(),
        })?;
        *cached = Some((Instant::now(), app.clone()));
        Ok(app)
    }
}

impl From<StoreError> for SetupError {
    fn from(error: StoreError) -> SetupError {
        SetupError::Settings(error.to_string())
    }
}

/// What setup pending means to a caller of GitHub.
fn pending(arn: &str) -> GitHubError {
    GitHubError::Config {
        message: format!(
            "runway is not set up yet: the GitHub App secret {arn} is pending; open the stack's \
             SetupUrl output"
        ),
    }
}

/// The job flow's GitHub on the App the setup page made. The client is kept while the App is
/// the same (its installation tokens with it) and made anew when the secret changes.
#[derive(Clone)]
pub struct SetupAppGitHub {
    secret: AppSecret,
    api_url_override: Option<String>,
    clock: SharedClock,
    options: RestGitHubOptions,
    current: ClientFor,
}

impl std::fmt::Debug for SetupAppGitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetupAppGitHub")
            .field("secret", &self.secret.arn)
            .finish_non_exhaustive()
    }
}

impl SetupAppGitHub {
    /// `api_url_override`: the API to call instead of the one the App was made on (tests,
    /// a proxy); `None` keeps the App's.
    pub fn new(
        secret: AppSecret,
        api_url_override: Option<String>,
        clock: SharedClock,
        options: RestGitHubOptions,
    ) -> SetupAppGitHub {
        SetupAppGitHub {
            secret,
            api_url_override,
            clock,
            options,
            current: Arc::default(),
        }
    }

    async fn github(&self) -> Result<Arc<RestGitHub>, GitHubError> {
        let app = self
            .secret
            .app()
            .await
            .map_err(|error| GitHubError::Config {
                message: error.to_string(),
            })?
            .ok_or_else(|| pending(&self.secret.arn))?;
        let mut current = self.current.lock().await;
        if let Some((known, github)) = current.as_ref()
            && *known == app
        {
            return Ok(github.clone());
        }
        let credentials =
            AppCredentials::new(app.app_id.to_string(), app.private_key.as_bytes(), 0)
                .map_err(|error| GitHubError::Config {
                    message: format!("the stored GitHub App's key: {error}"),
                })?
                .serving_any();
        let api_url = self.api_url_override.as_deref().unwrap_or(&app.api_url);
        let github = Arc::new(RestGitHub::with_options(
            api_url,
            Credentials::App(credentials),
            self.clock.clone(),
            self.options.clone(),
        )?);
        info!(app_id = app.app_id, slug = %app.slug, "acting as the GitHub App made by setup");
        *current = Some((app, github.clone()));
        Ok(github)
    }
}

#[async_trait]
impl GitHub for SetupAppGitHub {
    async fn generate_jit_config(
        &self,
        scope: &RunnerScope,
        request: &JitConfigRequest,
    ) -> Result<JitConfig, GitHubError> {
        self.github()
            .await?
            .generate_jit_config(scope, request)
            .await
    }

    async fn registration_token(
        &self,
        scope: &RunnerScope,
    ) -> Result<RegistrationToken, GitHubError> {
        self.github().await?.registration_token(scope).await
    }

    async fn workflow_job(
        &self,
        owner: &str,
        repo: &str,
        job_id: u64,
    ) -> Result<WorkflowJob, GitHubError> {
        self.github().await?.workflow_job(owner, repo, job_id).await
    }

    async fn list_runners(
        &self,
        scope: &RunnerScope,
        name: Option<&str>,
    ) -> Result<Vec<Runner>, GitHubError> {
        self.github().await?.list_runners(scope, name).await
    }

    async fn runner(&self, scope: &RunnerScope, runner_id: u64) -> Result<Runner, GitHubError> {
        self.github().await?.runner(scope, runner_id).await
    }

    async fn delete_runner(&self, scope: &RunnerScope, runner_id: u64) -> Result<(), GitHubError> {
        self.github().await?.delete_runner(scope, runner_id).await
    }

    async fn workflow_runs(
        &self,
        owner: &str,
        repo: &str,
        status: &str,
    ) -> Result<Vec<WorkflowRun>, GitHubError> {
        self.github()
            .await?
            .workflow_runs(owner, repo, status)
            .await
    }

    async fn workflow_run_jobs(
        &self,
        owner: &str,
        repo: &str,
        run_id: u64,
    ) -> Result<Vec<WorkflowJob>, GitHubError> {
        self.github()
            .await?
            .workflow_run_jobs(owner, repo, run_id)
            .await
    }

    async fn installation_repositories(&self) -> Result<Vec<InstallationRepository>, GitHubError> {
        self.github().await?.installation_repositories().await
    }

    async fn installation_for(&self, owner: &str, repo: &str) -> Result<Option<u64>, GitHubError> {
        self.github().await?.installation_for(owner, repo).await
    }

    fn usage(&self) -> ApiUsage {
        self.current
            .try_lock()
            .ok()
            .and_then(|current| current.as_ref().map(|(_, github)| github.usage()))
            .unwrap_or_default()
    }
}

/// Makes the webhook's intake for a webhook secret.
pub type IntakeMaker = Arc<dyn Fn(WebhookSecrets) -> Intake + Send + Sync>;

/// The webhook on the App the setup page made: 503 `not_set_up` while pending, then the
/// intake with the App's webhook secret (made anew when the secret changes).
#[derive(Clone)]
pub struct AppIntake {
    secret: AppSecret,
    make: IntakeMaker,
    current: Arc<Mutex<Option<(String, Intake)>>>,
}

impl std::fmt::Debug for AppIntake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppIntake")
            .field("secret", &self.secret.arn)
            .finish_non_exhaustive()
    }
}

impl AppIntake {
    pub fn new(secret: AppSecret, make: IntakeMaker) -> AppIntake {
        AppIntake {
            secret,
            make,
            current: Arc::default(),
        }
    }

    async fn intake(&self) -> Result<Option<Intake>, SetupError> {
        let Some(app) = self.secret.app().await? else {
            return Ok(None);
        };
        let mut current = self.current.lock().await;
        if let Some((secret, intake)) = current.as_ref()
            && *secret == app.webhook_secret
        {
            return Ok(Some(intake.clone()));
        }
        let secrets = WebhookSecrets::from_stored(&app.webhook_secret).map_err(|error| {
            SetupError::Settings(format!(
                "the webhook secret in {}: {error}",
                self.secret.arn
            ))
        })?;
        let intake = (self.make)(secrets);
        *current = Some((app.webhook_secret.clone(), intake.clone()));
        Ok(Some(intake))
    }

    /// Handles a delivery; `setup_url` is where the answer sends the deployer while setup is
    /// pending.
    pub async fn handle(&self, delivery: Delivery, setup_url: &str) -> IntakeResponse {
        match self.intake().await {
            Ok(Some(intake)) => intake.handle(delivery).await,
            Ok(None) => IntakeResponse::not_set_up(setup_url),
            Err(error) => {
                warn!(%error, "the GitHub App secret cannot be read");
                IntakeResponse::unavailable(&error.to_string())
            }
        }
    }
}
