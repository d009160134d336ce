//! "Is this execution still running?": Step Functions in AWS, the local engine in
//! `runway local` and tests.

use std::fmt;

use async_trait::async_trait;
use aws_sdk_sfn::error::{ProvideErrorMetadata, SdkError};
use chrono::{DateTime, Utc};
use runway_asl::{ServiceError, StepFunctions};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ReapError;

/// What the workflow service says about one execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    /// Still running (or waiting to be redriven): its things are never touched.
    Running,
    /// Succeeded, failed, timed out or aborted.
    Ended,
    /// The service knows no execution of that name (never started, or past its retention).
    Unknown,
}

/// Why an execution failed, as the workflow service reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionFailure {
    /// The Fail state's (or the service's) error name.
    pub error: String,
    pub cause: String,
    /// The execution ran out its own timeout (rather than reaching a Fail state).
    pub timed_out: bool,
}

/// One execution as the workflow service describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionState {
    pub status: ExecutionStatus,
    /// Set when the execution failed or timed out (not when it succeeded or was stopped).
    pub failure: Option<ExecutionFailure>,
}

impl ExecutionState {
    pub fn of(status: ExecutionStatus) -> ExecutionState {
        ExecutionState {
            status,
            failure: None,
        }
    }
}

/// Looks executions of the job state machine up by name.
#[async_trait]
pub trait Executions: Send + Sync + fmt::Debug {
    async fn describe(&self, execution: &str) -> Result<ExecutionState, ReapError>;

    async fn status(&self, execution: &str) -> Result<ExecutionStatus, ReapError> {
        Ok(self.describe(execution).await?.status)
    }

    /// The payloads of the execution's tasks that wait for their task token now (scheduled,
    /// not yet succeeded, failed or timed out), read from its history. Empty when the service
    /// cannot say.
    async fn open_waits(&self, _execution: &str) -> Result<Vec<Value>, ReapError> {
        Ok(Vec::new())
    }

    /// The running executions of the job state machine (name, start), oldest first. Empty
    /// when the service cannot say.
    async fn running(&self) -> Result<Vec<(String, DateTime<Utc>)>, ReapError> {
        Ok(Vec::new())
    }
}

/// One history event, as much of it as [`open_waits_in`] reads.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TaskEvent {
    pub id: u64,
    pub previous: u64,
    pub kind: String,
    /// `taskScheduledEventDetails.parameters`, for `TaskScheduled`.
    pub parameters: Option<String>,
}

/// The `Payload`s (with a `task_token`) of the `TaskScheduled` events no task end follows in
/// their branch. Events of one branch chain by `previousEventId`, so a task's end is found by
/// following the chain from its scheduling.
pub(crate) fn open_waits_in(events: &[TaskEvent]) -> Vec<Value> {
    let mut next: std::collections::HashMap<u64, Vec<&TaskEvent>> = Default::default();
    for event in events {
        next.entry(event.previous).or_default().push(event);
    }
    let mut open = Vec::new();
    for scheduled in events.iter().filter(|e| e.kind == "TaskScheduled") {
        let mut at = scheduled;
        let ended = loop {
            // Within one task the chain does not fork; a fork means the task is behind us.
            match next.get(&at.id).map(Vec::as_slice) {
                Some([only]) => {
                    if matches!(
                        only.kind.as_str(),
                        "TaskSucceeded" | "TaskFailed" | "TaskTimedOut"
                    ) {
                        break true;
                    }
                    if !only.kind.starts_with("Task") {
                        break true;
                    }
                    at = only;
                }
                Some(_) => break true,
                None => break false,
            }
        };
        if ended {
            continue;
        }
        let payload = scheduled
            .parameters
            .as_deref()
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
            .and_then(|parameters| parameters.get("Payload").cloned());
        if let Some(payload) = payload.filter(|p| p.get("task_token").is_some()) {
            open.push(payload);
        }
    }
    open
}

/// The ARN of execution `name` of the state machine `machine_arn`
/// (`arn:aws:states:R:A:stateMachine:M` → `arn:aws:states:R:A:execution:M:name`), or `None`
/// when either cannot be part of an execution ARN.
pub fn execution_arn(machine_arn: &str, name: &str) -> Option<String> {
    let (head, machine) = machine_arn.split_once(":stateMachine:")?;
    let valid_name = !name.is_empty()
        && name.len() <= 80
        && !name
            .chars()
            .any(|c| c == ':' || c.is_whitespace() || c.is_control());
    if !head.starts_with("arn:") || machine.is_empty() || machine.contains(':') || !valid_name {
        return None;
    }
    Some(format!("{head}:execution:{machine}:{name}"))
}

fn machine_arn_checked(machine_arn: &str) -> Result<String, ReapError> {
    match execution_arn(machine_arn, "probe") {
        Some(_) => Ok(machine_arn.to_owned()),
        None => Err(ReapError::Failed(format!(
            "{machine_arn:?} is not a state machine ARN: give the job state machine's ARN \
             (arn:aws:states:REGION:ACCOUNT:stateMachine:NAME)"
        ))),
    }
}

/// [`Executions`] over AWS Step Functions `DescribeExecution`.
#[derive(Debug, Clone)]
pub struct SfnExecutions {
    client: aws_sdk_sfn::Client,
    machine_arn: String,
}

impl SfnExecutions {
    /// Executions of the job state machine `machine_arn`.
    pub fn new(client: aws_sdk_sfn::Client, machine_arn: &str) -> Result<Self, ReapError> {
        Ok(SfnExecutions {
            client,
            machine_arn: machine_arn_checked(machine_arn)?,
        })
    }
}

/// Error codes that mean "try again later".
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalServerError",
];

/// Classifies a failed AWS call: throttling, 5xx and transport failures are transient.
pub(crate) fn classify_sdk<E, R>(operation: &str, error: &SdkError<E, R>) -> ReapError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: fmt::Debug,
{
    match error {
        SdkError::ServiceError(context) => {
            let code = context.err().code().unwrap_or("Unknown");
            let message = context.err().message().unwrap_or_default();
            let cause = format!("{operation} failed: {code}: {message}");
            if RETRYABLE_CODES.contains(&code) {
                ReapError::Transient(cause)
            } else {
                ReapError::Failed(format!(
                    "{cause}; check that the reaper may call {operation} on the job state machine"
                ))
            }
        }
        // Timeouts, dispatch and response failures: the service may answer next time.
        other => {
            let text = runway_store::error_chain(other);
            ReapError::Transient(format!("{operation} failed: {text}"))
        }
    }
}

#[async_trait]
impl Executions for SfnExecutions {
    async fn describe(&self, execution: &str) -> Result<ExecutionState, ReapError> {
        let Some(arn) = execution_arn(&self.machine_arn, execution) else {
            return Ok(ExecutionState::of(ExecutionStatus::Unknown));
        };
        match self
            .client
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
        {
            Ok(output) => {
                use aws_sdk_sfn::types::ExecutionStatus as Sfn;
                let failure = |timed_out| ExecutionFailure {
                    error: output.error().unwrap_or_default().to_owned(),
                    cause: output.cause().unwrap_or_default().to_owned(),
                    timed_out,
                };
                Ok(match output.status() {
                    Sfn::Running | Sfn::PendingRedrive => {
                        ExecutionState::of(ExecutionStatus::Running)
                    }
                    Sfn::Failed => ExecutionState {
                        status: ExecutionStatus::Ended,
                        failure: Some(failure(false)),
                    },
                    Sfn::TimedOut => ExecutionState {
                        status: ExecutionStatus::Ended,
                        failure: Some(failure(true)),
                    },
                    _ => ExecutionState::of(ExecutionStatus::Ended),
                })
            }
            Err(SdkError::ServiceError(context)) if context.err().is_execution_does_not_exist() => {
                Ok(ExecutionState::of(ExecutionStatus::Unknown))
            }
            Err(error) => Err(classify_sdk("DescribeExecution", &error)),
        }
    }

    async fn open_waits(&self, execution: &str) -> Result<Vec<Value>, ReapError> {
        let Some(arn) = execution_arn(&self.machine_arn, execution) else {
            return Ok(Vec::new());
        };
        let mut events = Vec::new();
        let mut next_token = None;
        loop {
            let page = self
                .client
                .get_execution_history()
                .execution_arn(&arn)
                .include_execution_data(true)
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|error| classify_sdk("GetExecutionHistory", &error))?;
            events.extend(page.events().iter().map(|event| {
                TaskEvent {
                    id: u64::try_from(event.id()).unwrap_or_default(),
                    previous: u64::try_from(event.previous_event_id()).unwrap_or_default(),
                    kind: event.r#type().as_str().to_owned(),
                    parameters: event
                        .task_scheduled_event_details()
                        .map(|details| details.parameters().to_owned()),
                }
            }));
            match page.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                _ => break,
            }
        }
        Ok(open_waits_in(&events))
    }

    async fn running(&self) -> Result<Vec<(String, DateTime<Utc>)>, ReapError> {
        let mut running = Vec::new();
        let mut next_token = None;
        loop {
            let page = self
                .client
                .list_executions()
                .state_machine_arn(&self.machine_arn)
                .status_filter(aws_sdk_sfn::types::ExecutionStatus::Running)
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|error| classify_sdk("ListExecutions", &error))?;
            for execution in page.executions() {
                let started = execution.start_date();
                let started = DateTime::from_timestamp(started.secs(), started.subsec_nanos())
                    .unwrap_or_default();
                running.push((execution.name().to_owned(), started));
            }
            match page.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                _ => break,
            }
        }
        running.sort_by_key(|(_, started)| *started);
        Ok(running)
    }
}

/// [`Executions`] over the local engine.
#[derive(Debug, Clone)]
pub struct LocalExecutions {
    service: StepFunctions,
    machine_arn: String,
}

impl LocalExecutions {
    pub fn new(service: StepFunctions, machine_arn: &str) -> Result<Self, ReapError> {
        Ok(LocalExecutions {
            service,
            machine_arn: machine_arn_checked(machine_arn)?,
        })
    }
}

#[async_trait]
impl Executions for LocalExecutions {
    async fn describe(&self, execution: &str) -> Result<ExecutionState, ReapError> {
        let Some(arn) = execution_arn(&self.machine_arn, execution) else {
            return Ok(ExecutionState::of(ExecutionStatus::Unknown));
        };
        match self.service.describe_execution(&arn) {
            Ok(description) => {
                let failure = |timed_out| ExecutionFailure {
                    error: description.error.clone().unwrap_or_default(),
                    cause: description.cause.clone().unwrap_or_default(),
                    timed_out,
                };
                Ok(match description.status {
                    runway_asl::ExecutionStatus::Running => {
                        ExecutionState::of(ExecutionStatus::Running)
                    }
                    runway_asl::ExecutionStatus::Failed => ExecutionState {
                        status: ExecutionStatus::Ended,
                        failure: Some(failure(false)),
                    },
                    runway_asl::ExecutionStatus::TimedOut => ExecutionState {
                        status: ExecutionStatus::Ended,
                        failure: Some(failure(true)),
                    },
                    _ => ExecutionState::of(ExecutionStatus::Ended),
                })
            }
            Err(ServiceError::ExecutionDoesNotExist(_)) => {
                Ok(ExecutionState::of(ExecutionStatus::Unknown))
            }
            Err(other) => Err(ReapError::Failed(format!(
                "DescribeExecution failed: {}: {other}",
                other.aws_code()
            ))),
        }
    }

    async fn open_waits(&self, execution: &str) -> Result<Vec<Value>, ReapError> {
        let Some(arn) = execution_arn(&self.machine_arn, execution) else {
            return Ok(Vec::new());
        };
        let history = match self.service.get_execution_history(&arn, false) {
            Ok(history) => history,
            Err(ServiceError::ExecutionDoesNotExist(_)) => return Ok(Vec::new()),
            Err(other) => {
                return Err(ReapError::Failed(format!(
                    "GetExecutionHistory failed: {}: {other}",
                    other.aws_code()
                )));
            }
        };
        let events: Vec<TaskEvent> = history
            .iter()
            .map(|event| TaskEvent {
                id: event.id,
                previous: event.previous_event_id,
                kind: event.event_type.clone(),
                parameters: event
                    .details
                    .get("taskScheduledEventDetails")
                    .and_then(|details| details.get("parameters"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            })
            .collect();
        Ok(open_waits_in(&events))
    }

    async fn running(&self) -> Result<Vec<(String, DateTime<Utc>)>, ReapError> {
        let mut running: Vec<(String, DateTime<Utc>)> = self
            .service
            .list_executions(
                &self.machine_arn,
                Some(runway_asl::ExecutionStatus::Running),
            )
            .map_err(|other| {
                ReapError::Failed(format!(
                    "ListExecutions failed: {}: {other}",
                    other.aws_code()
                ))
            })?
            .into_iter()
            .map(|execution| (execution.name, execution.start_date))
            .collect();
        running.sort_by_key(|(_, started)| *started);
        Ok(running)
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_sfn::error::ErrorMetadata;
    use aws_sdk_sfn::operation::describe_execution::DescribeExecutionError;

    use super::*;

    const MACHINE: &str = "arn:aws:states:eu-west-1:123456789012:stateMachine:runway-job";

    #[test]
    fn execution_arns_follow_the_machine_arn() {
        assert_eq!(
            execution_arn(MACHINE, "job-7-r1-a1").as_deref(),
            Some("arn:aws:states:eu-west-1:123456789012:execution:runway-job:job-7-r1-a1")
        );
        assert_eq!(execution_arn(MACHINE, ""), None);
        assert_eq!(execution_arn(MACHINE, "a:b"), None);
        assert_eq!(execution_arn(MACHINE, &"x".repeat(81)), None);
        assert_eq!(execution_arn("runway-job", "job-7-r1-a1"), None);
        assert!(machine_arn_checked("not-an-arn").is_err());
        assert!(machine_arn_checked(MACHINE).is_ok());
    }

    fn service_error(code: &str) -> SdkError<DescribeExecutionError, ()> {
        let metadata = ErrorMetadata::builder()
            .code(code)
            .message("as sent by Step Functions")
            .build();
        SdkError::service_error(DescribeExecutionError::generic(metadata), ())
    }

    fn event(id: u64, previous: u64, kind: &str, payload: Option<Value>) -> TaskEvent {
        TaskEvent {
            id,
            previous,
            kind: kind.to_owned(),
            parameters: payload.map(|p| serde_json::json!({"Payload": p}).to_string()),
        }
    }

    #[test]
    fn open_waits_are_the_scheduled_tasks_no_end_follows_in_their_branch() {
        let job = serde_json::json!({"watch": "job-completed", "task_token": "t-job"});
        let busy = serde_json::json!({"watch": "runner-busy", "task_token": "t-busy"});
        let gone = serde_json::json!({"watch": "runner-gone", "task_token": "t-gone"});
        let events = vec![
            event(1, 0, "ParallelStateStarted", None),
            // Branch 1: the job wait, still open.
            event(2, 1, "TaskStateEntered", None),
            event(3, 2, "TaskScheduled", Some(job.clone())),
            event(4, 3, "TaskStarted", None),
            event(5, 4, "TaskSubmitted", None),
            // Branch 2: the busy wait ended, the gone wait is open.
            event(6, 1, "TaskStateEntered", None),
            event(7, 6, "TaskScheduled", Some(busy)),
            event(8, 7, "TaskStarted", None),
            event(9, 8, "TaskSubmitted", None),
            event(10, 9, "TaskSucceeded", None),
            event(11, 10, "TaskStateExited", None),
            event(12, 11, "TaskStateEntered", None),
            event(13, 12, "TaskScheduled", Some(gone.clone())),
            event(14, 13, "TaskStarted", None),
        ];
        assert_eq!(open_waits_in(&events), vec![job, gone]);
        // A task without a token (a plain Lambda call) is no wait.
        let plain = vec![event(
            1,
            0,
            "TaskScheduled",
            Some(serde_json::json!({"a": 1})),
        )];
        assert!(open_waits_in(&plain).is_empty());
    }

    #[test]
    fn throttling_and_timeouts_are_transient_and_denials_final() {
        let throttled = classify_sdk("DescribeExecution", &service_error("ThrottlingException"));
        assert!(throttled.is_retryable(), "{throttled:?}");
        let timeout = SdkError::<DescribeExecutionError, ()>::timeout_error("timed out");
        assert!(classify_sdk("DescribeExecution", &timeout).is_retryable());
        let denied = classify_sdk("DescribeExecution", &service_error("AccessDeniedException"));
        assert_eq!(denied.name(), crate::error::REAP_FAILED);
        assert!(denied.to_string().contains("AccessDeniedException"));
    }
}
