//! Runner logs: where what a runner printed is kept once its host is gone, and reading a job's
//! runner logs back.
//!
//! - **Where.** An EC2 runner's boot script ships its boot, hook and runner output to the
//!   CloudWatch Logs group of its pool ([`runner_log_group`]: `/runway/<stack>/runners/<pool>`),
//!   one stream per runner, named after the runner. The provision function makes the group
//!   before the first launch, with the stack's retention ([`RunnerLogGroups`]). ECS runners
//!   write to the stack's `ecs-runners` group through the `awslogs` driver, a stream per task.
//!   `runway local` keeps each local runner's output in a file.
//! - **Which runners ran a job.** The job's execution is its record: the outputs of its
//!   `Provision`, `ReplaceRunner` and `RelaunchForQueuedJob` states name every runner it
//!   launched or adopted, with the pool and host ([`runners_of_execution`]). Its history is
//!   read from Step Functions, or from `runway local`'s console.
//! - **Reading.** [`RunnerLogReader`] reads one runner's lines: from CloudWatch Logs
//!   ([`CloudWatchRunnerLogs`]) or from a directory of `<runner>.log` files
//!   ([`FileRunnerLogs`]).

mod cloudwatch;
mod error;
mod files;
mod history;
mod job;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use cloudwatch::{CloudWatchRunnerLogs, MAX_LINES};
pub use error::RunnerLogError;
pub use files::FileRunnerLogs;
pub use history::{
    ExecutionHistory, RunnerOfJob, StateOutput, StepFunctionsHistory, runners_of_execution,
};
pub use job::{JobLogs, JobRef, RunnerLog, job_logs, local_log_location, stack_log_location};

/// The CloudWatch Logs group of a pool's EC2 runners.
pub fn runner_log_group(stack: &str, pool: &str) -> String {
    format!("/runway/{stack}/runners/{pool}")
}

/// The CloudWatch Logs group of a stack's ECS runners (the template's `EcsRunnerLogGroup`).
pub fn ecs_runner_log_group(stack: &str) -> String {
    format!("/runway/{stack}/ecs-runners")
}

/// The CloudWatch Logs group of a stack's Lambda runners (the template's
/// `LambdaRunnerLogGroup`).
pub fn lambda_runner_log_group(stack: &str) -> String {
    format!("/runway/{stack}/lambda-runner")
}

/// One line a runner (or its boot script) printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// When it was printed (CloudWatch's event time); `None` when the source keeps no time.
    pub timestamp: Option<DateTime<Utc>>,
    pub message: String,
}

/// Where one runner's log is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunnerLogLocation {
    pub group: String,
    pub stream: StreamName,
}

/// A log stream: by its name, or (an ECS task's, `runway/<container>/<task id>`) by how it
/// starts and ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamName {
    Exact(String),
    Matching { prefix: String, suffix: String },
}

impl std::fmt::Display for RunnerLogLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.stream {
            StreamName::Exact(stream) => write!(f, "{} › {stream}", self.group),
            StreamName::Matching { prefix, suffix } => {
                write!(f, "{} › {prefix}*{suffix}", self.group)
            }
        }
    }
}

/// Makes the log groups runners write to, before they boot: a runner's role may write to its
/// pool's group, not create it (nor set how long it is kept).
#[async_trait]
pub trait RunnerLogGroups: Send + Sync + std::fmt::Debug {
    /// Creates `group` with the stack's retention when it does not exist; cheap when it was
    /// made (or found) recently.
    async fn ensure_group(&self, group: &str) -> Result<(), RunnerLogError>;
}

/// Reads one runner's log.
#[async_trait]
pub trait RunnerLogReader: Send + Sync {
    /// The runner's lines, oldest first (at most [`MAX_LINES`], the newest kept); `None` when
    /// the log does not exist (the runner never booted far enough, or the log expired).
    async fn read(
        &self,
        location: &RunnerLogLocation,
    ) -> Result<Option<Vec<LogLine>>, RunnerLogError>;
}
