//! Starting one job execution per queued job.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::event::WorkflowJobEvent;

/// Step Functions allows at most 80 characters in an execution name.
pub const MAX_EXECUTION_NAME_LEN: usize = 80;

/// The execution name for one attempt of one job: `job-<job id>-r<repo id>-a<attempt>`.
///
/// The same job always gets the same name, so a redelivered webhook (or the reaper starting a
/// lost job again) cannot start a second execution. Only digits, letters and `-` are used, and
/// the longest possible name (three `u64`/`u32` at their maximum) is 58 characters.
pub fn execution_name(repository_id: u64, job_id: u64, run_attempt: u32) -> String {
    format!("job-{job_id}-r{repository_id}-a{run_attempt}")
}

/// The name of the `retry`th execution started again for the same job attempt after its
/// execution failed for a transient cause: `job-<job id>-r<repo id>-a<attempt>-retry<n>`, at
/// most 74 characters of the same alphabet as [`execution_name`].
pub fn retry_execution_name(
    repository_id: u64,
    job_id: u64,
    run_attempt: u32,
    retry: u32,
) -> String {
    format!(
        "{}-retry{retry}",
        execution_name(repository_id, job_id, run_attempt)
    )
}

/// The input of a job execution: what the job flow needs to know about the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobExecutionInput {
    pub job: JobInput,
    pub repository: RepositoryInput,
    /// The organization login, when the repository belongs to one.
    pub organization: Option<String>,
    /// The GitHub App installation that sent the event, when it came through an App.
    pub installation_id: Option<u64>,
    /// `X-GitHub-Delivery` of the delivery that started the execution.
    pub delivery_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobInput {
    pub id: u64,
    pub run_id: u64,
    pub run_attempt: u32,
    pub name: String,
    pub workflow_name: Option<String>,
    pub labels: Vec<String>,
    pub head_branch: Option<String>,
    pub html_url: Option<String>,
    pub created_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryInput {
    pub id: u64,
    pub owner: String,
    pub name: String,
    pub full_name: String,
    pub private: Option<bool>,
}

impl JobExecutionInput {
    pub fn from_event(event: &WorkflowJobEvent, delivery_id: Option<&str>) -> Self {
        let job = &event.job;
        let repository = &event.repository;
        JobExecutionInput {
            job: JobInput {
                id: job.id,
                run_id: job.run_id,
                run_attempt: job.run_attempt,
                name: job.name.clone(),
                workflow_name: job.workflow_name.clone(),
                labels: job.labels.clone(),
                head_branch: job.head_branch.clone(),
                html_url: job.html_url.clone(),
                created_at: job.created_at.clone(),
            },
            repository: RepositoryInput {
                id: repository.id,
                owner: repository.owner.login.clone(),
                name: repository.name.clone(),
                full_name: repository.full_name.clone(),
                private: repository.private,
            },
            organization: event.organization.as_ref().map(|org| org.login.clone()),
            installation_id: event.installation.as_ref().map(|i| i.id),
            delivery_id: delivery_id.map(str::to_owned),
        }
    }
}

/// The outcome of asking for an execution to start. Both mean "the job is being handled".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    /// A new execution started (or the engine answered idempotently with the existing one).
    Started { execution_id: String },
    /// An execution with this name already exists: a redelivery or a concurrent duplicate.
    AlreadyExists,
}

/// Why an execution could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// The engine refused the request for good (bad ARN, invalid name, no permission...).
    #[error("the job execution could not be started: {0}")]
    Rejected(String),
    /// The engine could not be reached or failed; GitHub's redelivery or the reaper retries.
    #[error("the workflow engine is unavailable: {0}")]
    Unavailable(String),
}

/// Starts job executions by name (the port; Step Functions in AWS, the local engine in
/// `runway local`).
#[async_trait]
pub trait ExecutionStarter: Send + Sync + fmt::Debug {
    /// Starts the execution `name` with `input` (a JSON document). Starting a name that
    /// already exists is not an error: it returns [`StartOutcome::AlreadyExists`].
    async fn start_execution(&self, name: &str, input: &str) -> Result<StartOutcome, StartError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_name_fits_step_functions_rules() {
        let name = execution_name(u64::MAX, u64::MAX, u32::MAX);
        assert!(name.len() <= MAX_EXECUTION_NAME_LEN, "{name}");
        assert!(name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'));
        assert_eq!(execution_name(1, 2, 3), "job-2-r1-a3");
        let retry = retry_execution_name(u64::MAX, u64::MAX, u32::MAX, u32::MAX);
        assert!(retry.len() <= MAX_EXECUTION_NAME_LEN, "{retry}");
        assert!(
            retry
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-')
        );
        assert_eq!(retry_execution_name(1, 2, 3, 1), "job-2-r1-a3-retry1");
    }
}
