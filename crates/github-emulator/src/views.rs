//! What the control API and [`crate::EmulatorHandle`] show of jobs and runners.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::matching::Scope;
use crate::shared::Shared;
use crate::state::{Job, JobStatus, RunnerRef, World};

/// A job as the control API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub job_id: u64,
    pub run_id: u64,
    pub run_attempt: u32,
    pub repository: String,
    pub labels: Vec<String>,
    pub status: JobStatus,
    pub conclusion: Option<String>,
    /// The runner that ran (or runs) the job; `None` while queued.
    pub runner_id: Option<u64>,
    pub runner_name: Option<String>,
    /// The idle runner the job was handed to, before it starts.
    pub assigned_runner_id: Option<u64>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub duration_seconds: f64,
}

/// A runner as the control API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunnerView {
    pub id: u64,
    pub name: String,
    pub scope: Scope,
    pub labels: Vec<String>,
    /// `online` or `offline`, as GitHub shows it.
    pub status: String,
    pub busy: bool,
    pub ephemeral: bool,
    pub job_id: Option<u64>,
    pub runner_group_id: u64,
}

pub(crate) fn job_view(job: &Job) -> JobView {
    let RunnerRef { id, name, .. } = job.runner.clone().unwrap_or(RunnerRef {
        id: 0,
        name: String::new(),
        group_id: 0,
        group_name: String::new(),
    });
    let ran = job.runner.is_some();
    JobView {
        job_id: job.id,
        run_id: job.run_id,
        run_attempt: job.run_attempt,
        repository: job.repository.clone(),
        labels: job.labels.clone(),
        status: job.status,
        conclusion: job.conclusion.clone(),
        runner_id: ran.then_some(id),
        runner_name: ran.then_some(name),
        assigned_runner_id: job.assigned_runner,
        created_at: job.created_at,
        started_at: job.started_at,
        completed_at: job.completed_at,
        duration_seconds: job.duration.as_secs_f64(),
    }
}

pub(crate) fn runner_views(world: &World, now: DateTime<Utc>) -> Vec<RunnerView> {
    world
        .runners
        .values()
        .map(|r| RunnerView {
            id: r.id,
            name: r.name.clone(),
            scope: r.scope.clone(),
            labels: r.label_names(),
            status: if r.online(now, world.offline_after) {
                "online".to_string()
            } else {
                "offline".to_string()
            },
            busy: r.job.is_some(),
            ephemeral: r.ephemeral,
            job_id: r.job,
            runner_group_id: r.group_id,
        })
        .collect()
}

pub(crate) fn jobs(shared: &Shared) -> Vec<JobView> {
    shared.read(|world, _| world.jobs.values().map(job_view).collect())
}

pub(crate) fn job(shared: &Shared, id: u64) -> Option<JobView> {
    shared.read(|world, _| world.jobs.get(&id).map(job_view))
}

pub(crate) fn runners(shared: &Shared) -> Vec<RunnerView> {
    shared.read(runner_views)
}
