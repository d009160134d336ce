//! runway's housekeeping: what a crash, a lost event or a bug left behind is removed on a
//! schedule by `statemachines/reaper.asl.json`, one sweep per branch:
//!
//! - `orphan-runners`: runners a provider still runs (and runner records the store still
//!   holds) whose execution is not running → terminated, recorded as gone;
//! - `offline-runners`: runway's runners GitHub lists as offline whose execution is not
//!   running → removed from GitHub;
//! - `stale-slots`: slots held by executions that are not running → released by the job
//!   machine's own release step, which wakes the oldest waiter;
//! - `lost-jobs`: queued jobs (in the installation's repositories, or the configured ones)
//!   that the webhook intake would take on but that have no execution, because their webhook
//!   was lost → started with the execution name and input the intake builds
//!   ([`runway_webhook::decide`]), through an [`runway_webhook::ExecutionStarter`].
//!
//! Every sweep leaves a running execution's things alone, leaves anything younger than the
//! grace period alone, is idempotent, stops at `max_actions_per_sweep`, and reports throttling,
//! GitHub 5xx and unreachable services as [`ReapError::Transient`] (`Runway.Transient`), which
//! the machine retries. What an execution owns is looked up through [`Executions`]: AWS Step
//! Functions ([`SfnExecutions`]) or the local engine ([`LocalExecutions`]).

mod config;
mod error;
mod executions;
mod reaper;
mod report;
mod verdict;

pub use config::{
    DEFAULT_GRACE_SECONDS, DEFAULT_MAX_ACTIONS_PER_SWEEP, DEFAULT_UNKNOWN_EXECUTION_GRACE_SECONDS,
    ReaperConfig, ReaperConfigError,
};
pub use error::{BAD_INPUT, REAP_FAILED, ReapError, TRANSIENT};
pub use executions::{ExecutionStatus, Executions, LocalExecutions, SfnExecutions, execution_arn};
pub use reaper::{Reaper, ReaperDeps};
pub use report::{Sweep, SweepReport, UnknownSweep};
pub use verdict::{Verdict, judge};

/// `statemachines/reaper.asl.json`.
pub const REAPER_STATE_MACHINE: &str = include_str!("../../../statemachines/reaper.asl.json");
/// The definition's one substitution: the reap function's ARN.
pub const REAP_FUNCTION_SUBSTITUTION: &str = "ReapFunctionArn";
/// The function name the local engine registers the reaper under (see [`local_definition`]).
pub const LOCAL_REAP_FUNCTION: &str = "runway-reap";

/// The reaper machine with `${ReapFunctionArn}` replaced by `function_arn`.
pub fn definition(function_arn: &str) -> String {
    REAPER_STATE_MACHINE.replace(&format!("${{{REAP_FUNCTION_SUBSTITUTION}}}"), function_arn)
}

/// The reaper machine for the local engine, calling the function registered as `name`
/// ([`Reaper::register_task`]).
pub fn local_definition(name: &str) -> String {
    definition(&format!(
        "arn:aws:lambda:us-east-1:000000000000:function:{name}"
    ))
}
