//! runway's housekeeping: what a crash, a lost event or a bug left behind is removed on a
//! schedule by `statemachines/reaper.asl.json`, one sweep per branch:
//!
//! - `orphan-runners`: runners a provider still runs (and runner records the store still
//!   holds) whose execution is not running → terminated, recorded as gone;
//! - `offline-runners`: runway's runners GitHub lists as offline whose execution is not
//!   running → removed from GitHub;
//! - `stale-slots`: slots held by executions that are not running → released by the job
//!   machine's own release step, which wakes the oldest waiter; slots held by running
//!   executions whose job GitHub reports completed (a bounded number of look-ups per sweep) →
//!   the execution is handed the `completed` event it missed, as the intake would, so it tears
//!   its runner down and releases the slot itself; when the event did reach the store and
//!   only its callback was lost, the execution's open waits (read from its history) are run
//!   again as their timeouts' retries would run them; so are those of running executions
//!   that hold no slot but still wait for their job's events;
//! - `lost-jobs`: queued jobs (in the configured repositories, those the intake allows, or the
//!   installation's recently active ones) that the webhook intake would take on but that have
//!   no execution, because their webhook was lost → started with the execution name and input
//!   the intake builds ([`runway_webhook::decide`]), through an
//!   [`runway_webhook::ExecutionStarter`]; queued jobs whose execution failed for a transient
//!   cause ([`classify`]) → started again as `<name>-retry<n>`, at most `max_retries` times,
//!   the input saying why.
//!
//! The reap function also takes EC2's spot interruption warnings from EventBridge
//! ([`SpotInterruptionWarning`]): the runner on the instance is recorded as reclaimed and
//! counted.
//!
//! GitHub requests are bounded per sweep (`github_requests_per_sweep`, `304 Not Modified`
//! answers free), and a sweep stops when the rate limit left falls under
//! `rate_limit_reserve`; the report says where it stopped and what is left.
//!
//! Every sweep leaves a running execution's things alone, leaves anything younger than the
//! grace period alone, is idempotent, stops at `max_actions_per_sweep`, and reports throttling,
//! GitHub 5xx and unreachable services as [`ReapError::Transient`] (`Runway.Transient`), which
//! the machine retries. What an execution owns is looked up through [`Executions`]: AWS Step
//! Functions ([`SfnExecutions`]) or the local engine ([`LocalExecutions`]).

mod config;
mod error;
mod executions;
mod interruption;
mod meter;
mod reaper;
mod report;
mod retry;
mod verdict;

pub use config::{
    DEFAULT_ACTIVE_WITHIN_SECONDS, DEFAULT_GITHUB_REQUESTS_PER_SWEEP, DEFAULT_GRACE_SECONDS,
    DEFAULT_JOB_LOOKUPS_PER_SWEEP, DEFAULT_MAX_ACTIONS_PER_SWEEP, DEFAULT_MAX_RETRIES,
    DEFAULT_RATE_LIMIT_RESERVE, DEFAULT_UNKNOWN_EXECUTION_GRACE_SECONDS, MAX_RETRIES_LIMIT,
    ReaperConfig, ReaperConfigError,
};
pub use error::{BAD_INPUT, REAP_FAILED, ReapError, TRANSIENT};
pub use executions::{
    ExecutionFailure, ExecutionState, ExecutionStatus, Executions, LocalExecutions, SfnExecutions,
    execution_arn,
};
pub use interruption::{
    InterruptionReport, SPOT_INTERRUPTION_WARNING, SpotInterruptionDetail, SpotInterruptionWarning,
};
pub use reaper::{Reaper, ReaperDeps};
pub use report::{Sweep, SweepReport, UnknownSweep};
pub use retry::{FailureKind, JOB_FAILED, classify, underlying_error};
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
