//! A local Amazon States Language engine that behaves like AWS Step Functions.
//!
//! It runs any ASL definition and knows nothing of runway's jobs, pools or runners.
//!
//! - [`Definition::parse`] parses and validates a definition.
//! - [`run`] runs one execution to completion (for `runway sfn run` and tests).
//! - [`service::StepFunctions`] is the Step Functions service (state machines, executions,
//!   task tokens, history) behind the HTTP API and `runway local`.
//! - Task resources resolve through a [`TaskRegistry`] of async handlers.

pub mod choice;
pub mod definition;
mod engine;
pub mod error;
mod execution;
pub mod history;
pub mod intrinsics;
pub mod jsonpath;
mod query;
mod record;
pub mod service;
pub mod tasks;

pub use definition::{Definition, DefinitionError, QueryLanguage};
pub use engine::ExecutionEvent;
pub use error::Failure;
pub use execution::{RunConfig, RunResult, run};
pub use history::HistoryEvent;
pub use service::{
    ExecutionDescription, ExecutionStatus, ServiceError, StateMachineDescription, StepFunctions,
};
pub use tasks::{TaskFailure, TaskRegistry, TaskRequest, TaskTokens, TokenError};
