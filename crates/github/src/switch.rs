//! A GitHub whose credentials change while runway runs: `runway local` starts with the
//! emulator's token and moves to the App its setup page made, without a restart.

use std::fmt;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;

use crate::{
    ApiUsage, GitHub, GitHubError, InstallationRepository, JitConfig, JitConfigRequest,
    RegistrationToken, Runner, RunnerScope, WorkflowJob, WorkflowRun,
};

/// Sends each call to the GitHub client set last.
#[derive(Clone)]
pub struct SwitchableGitHub {
    current: Arc<RwLock<Arc<dyn GitHub>>>,
}

impl fmt::Debug for SwitchableGitHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SwitchableGitHub")
            .field(&self.get())
            .finish()
    }
}

impl SwitchableGitHub {
    pub fn new(github: Arc<dyn GitHub>) -> SwitchableGitHub {
        SwitchableGitHub {
            current: Arc::new(RwLock::new(github)),
        }
    }

    /// Calls from now on go to `github` (calls under way finish with the one they started on).
    pub fn set(&self, github: Arc<dyn GitHub>) {
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = github;
    }

    pub fn get(&self) -> Arc<dyn GitHub> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

#[async_trait]
impl GitHub for SwitchableGitHub {
    async fn generate_jit_config(
        &self,
        scope: &RunnerScope,
        request: &JitConfigRequest,
    ) -> Result<JitConfig, GitHubError> {
        self.get().generate_jit_config(scope, request).await
    }

    async fn registration_token(
        &self,
        scope: &RunnerScope,
    ) -> Result<RegistrationToken, GitHubError> {
        self.get().registration_token(scope).await
    }

    async fn workflow_job(
        &self,
        owner: &str,
        repo: &str,
        job_id: u64,
    ) -> Result<WorkflowJob, GitHubError> {
        self.get().workflow_job(owner, repo, job_id).await
    }

    async fn list_runners(
        &self,
        scope: &RunnerScope,
        name: Option<&str>,
    ) -> Result<Vec<Runner>, GitHubError> {
        self.get().list_runners(scope, name).await
    }

    async fn runner(&self, scope: &RunnerScope, runner_id: u64) -> Result<Runner, GitHubError> {
        self.get().runner(scope, runner_id).await
    }

    async fn delete_runner(&self, scope: &RunnerScope, runner_id: u64) -> Result<(), GitHubError> {
        self.get().delete_runner(scope, runner_id).await
    }

    async fn workflow_runs(
        &self,
        owner: &str,
        repo: &str,
        status: &str,
    ) -> Result<Vec<WorkflowRun>, GitHubError> {
        self.get().workflow_runs(owner, repo, status).await
    }

    async fn workflow_run_jobs(
        &self,
        owner: &str,
        repo: &str,
        run_id: u64,
    ) -> Result<Vec<WorkflowJob>, GitHubError> {
        self.get().workflow_run_jobs(owner, repo, run_id).await
    }

    async fn installation_repositories(&self) -> Result<Vec<InstallationRepository>, GitHubError> {
        self.get().installation_repositories().await
    }

    async fn installation_for(&self, owner: &str, repo: &str) -> Result<Option<u64>, GitHubError> {
        self.get().installation_for(owner, repo).await
    }

    fn usage(&self) -> ApiUsage {
        self.get().usage()
    }
}
