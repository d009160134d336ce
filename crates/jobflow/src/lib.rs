//! The steps of runway's job state machine (`statemachines/job.asl.json`), over runway's
//! ports: the store, GitHub, the providers, the policies and the task callbacks.
//!
//! Each Task state of the machine calls one [`Step`] through [`JobFlow::run`] with its
//! Parameters (or its `lambda:invoke` Payload) and gets back the JSON put at its ResultPath,
//! or a [`StepError`] whose name the machine's `Retry`/`Catch` match on (`Runway.Transient`
//! is retried; every other name is final). The Lambda handlers and the local engine
//! ([`JobFlow::register_tasks`]) run the same code.
//!
//! Webhook `in_progress`/`completed` events reach the waiting executions through
//! `impl runway_webhook::JobEvents for JobFlow`: matched by runner name (the execution that
//! launched the runner waits for it to take a job, then to leave) and, independently, a
//! `completed` event by job id (an execution whose runner left without running its job
//! follows the job to its end), because GitHub gives a queued job to any idle runner with
//! matching labels. The webhook does the same through [`JobEventRelay`], which needs only the
//! store and the callbacks.
//!
//! Every wait-for-event step registers its task token first and then checks whether the event
//! already happened, completing its own token when it did: an event that arrives before the
//! token is registered is never lost, and the store hands each token out once.

pub mod allow_list;
mod callbacks;
mod config;
mod error;
mod events;
mod flow;
mod input;
pub mod naming;
mod step;
mod steps;
mod warm;

/// The states of `statemachines/job.asl.json` a job passes through when all goes well (the
/// runner launched for it runs it): what Standard workflows bill per job.
pub const HAPPY_PATH: [&str; 11] = [
    "Route",
    "IsItOurs",
    "Admit",
    "AdmitDecision",
    "Provision",
    "AwaitRunnerBusy",
    "AwaitRunnerGone",
    "Teardown",
    "RunnerLeft",
    "Release",
    "Done",
];

pub use callbacks::{CallbackError, SfnCallbacks, TaskCallbacks};
pub use config::{
    ConfigError, FlowConfig, JOB_FOLLOW_SECONDS, MAX_RUNNER_NAME_PREFIX, MAX_SLOT_WAITS,
    PoolCeilings, PoolConfig, Problem, RECHECK_BOUNDS, RunnerScopeConfig, RunnerScopeLevel,
    STEP_FUNCTIONS_MAX_SECONDS, WAIT_AND_START_BUDGET_SECONDS,
};
pub use error::StepError;
pub use events::JobEventRelay;
pub use flow::{Deps, JobFlow};
pub use runway_metrics as metrics;
pub use step::{Step, UnknownStep};
pub use warm::{WarmPass, WarmPoolReport};

/// The error names steps fail with.
pub mod errors {
    pub use crate::error::{
        BAD_INPUT, GITHUB_REFUSED, JOB_NOT_FOUND, LAUNCHES_SPENT, NO_SUCH_POOL, PROVISION_FAILED,
        RUNNER_BUSY, RUNNER_NEVER_REGISTERED, STORE_FAILED, TEARDOWN_FAILED, TRANSIENT,
        WAITED_TOO_LONG,
    };
}
