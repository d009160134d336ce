//! Forwarding `in_progress` / `completed` events to the job flow.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::event::{WorkflowJobAction, WorkflowJobEvent};

/// A job changed state. The job flow matches it twice, independently: by `job_id` to the
/// execution that follows this job, and by `runner_name` to the execution that launched
/// that runner (runners are fungible: the two need not be the same execution).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobEventUpdate {
    pub kind: JobEventKind,
    pub job_id: u64,
    pub run_id: u64,
    pub run_attempt: u32,
    pub repository_id: u64,
    pub repository: String,
    /// The runner that picked the job up (absent when a job is cancelled before it started).
    pub runner_name: Option<String>,
    pub runner_id: Option<u64>,
    /// `success`, `failure`, `cancelled`, ... for completed jobs.
    pub conclusion: Option<String>,
    pub delivery_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobEventKind {
    /// The job started on `runner_name`.
    Started,
    /// The job finished (or was cancelled).
    Completed,
}

impl JobEventUpdate {
    /// The update for an `in_progress` or `completed` event; `None` for other actions.
    pub fn from_event(event: &WorkflowJobEvent, delivery_id: Option<&str>) -> Option<Self> {
        let kind = match event.action {
            WorkflowJobAction::InProgress => JobEventKind::Started,
            WorkflowJobAction::Completed => JobEventKind::Completed,
            WorkflowJobAction::Queued | WorkflowJobAction::Waiting => return None,
        };
        let job = &event.job;
        Some(JobEventUpdate {
            kind,
            job_id: job.id,
            run_id: job.run_id,
            run_attempt: job.run_attempt,
            repository_id: event.repository.id,
            repository: event.repository.full_name.clone(),
            runner_name: job.runner_name.clone().filter(|name| !name.is_empty()),
            runner_id: job.runner_id,
            conclusion: job.conclusion.clone(),
            delivery_id: delivery_id.map(str::to_owned),
        })
    }
}

/// Why an update could not be handed over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the job event could not be delivered to the job flow: {0}")]
pub struct ForwardError(pub String);

/// Receives job state changes (the port the job flow implements with its store).
#[async_trait]
pub trait JobEvents: Send + Sync + fmt::Debug {
    /// Hands `update` to the executions that follow its job and its runner. An update that
    /// matches no execution (a job runway did not launch a runner for) is not an error.
    async fn job_event(&self, update: JobEventUpdate) -> Result<(), ForwardError>;
}

/// Updates go into a channel, for a process that consumes them itself (`runway local`).
#[async_trait]
impl JobEvents for tokio::sync::mpsc::Sender<JobEventUpdate> {
    async fn job_event(&self, update: JobEventUpdate) -> Result<(), ForwardError> {
        self.send(update)
            .await
            .map_err(|_| ForwardError("the job event consumer has stopped".to_owned()))
    }
}
