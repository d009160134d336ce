//! "Is this execution still running?": Step Functions in AWS, the local engine in
//! `runway local` and tests.

use std::fmt;

use async_trait::async_trait;
use aws_sdk_sfn::error::{ProvideErrorMetadata, SdkError};
use runway_asl::{ServiceError, StepFunctions};
use serde::{Deserialize, Serialize};

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
