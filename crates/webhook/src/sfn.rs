//! [`ExecutionStarter`] on AWS Step Functions.

use async_trait::async_trait;
use aws_sdk_sfn::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sfn::operation::start_execution::StartExecutionError;

use crate::execution::{ExecutionStarter, StartError, StartOutcome};

/// Starts executions of one state machine with `StartExecution`.
///
/// Step Functions (Standard) answers a repeated name in two ways, both success here: with the
/// running execution when name and input are the same (idempotent), and with
/// `ExecutionAlreadyExists` when the input differs or the execution has finished.
#[derive(Debug, Clone)]
pub struct SfnExecutionStarter {
    client: aws_sdk_sfn::Client,
    state_machine_arn: String,
}

impl SfnExecutionStarter {
    pub fn new(client: aws_sdk_sfn::Client, state_machine_arn: impl Into<String>) -> Self {
        SfnExecutionStarter {
            client,
            state_machine_arn: state_machine_arn.into(),
        }
    }
}

#[async_trait]
impl ExecutionStarter for SfnExecutionStarter {
    async fn start_execution(&self, name: &str, input: &str) -> Result<StartOutcome, StartError> {
        let result = self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(name)
            .input(input)
            .send()
            .await;
        match result {
            Ok(output) => Ok(StartOutcome::Started {
                execution_id: output.execution_arn,
            }),
            Err(SdkError::ServiceError(service)) => match service.err() {
                StartExecutionError::ExecutionAlreadyExists(_) => Ok(StartOutcome::AlreadyExists),
                StartExecutionError::ExecutionLimitExceeded(err) => Err(StartError::Unavailable(
                    err.message()
                        .unwrap_or("too many running executions")
                        .to_owned(),
                )),
                err => {
                    let code = err.code().unwrap_or("unknown");
                    let message = err.message().unwrap_or("no message");
                    let text = format!("{code}: {message}");
                    // Throttling and service faults pass; everything else needs a fix.
                    if service.raw().status().is_server_error() || code.contains("Throttl") {
                        Err(StartError::Unavailable(text))
                    } else {
                        Err(StartError::Rejected(text))
                    }
                }
            },
            Err(err) => Err(StartError::Unavailable(format!(
                "Step Functions did not answer: {}",
                aws_sdk_sfn::error::DisplayErrorContext(&err)
            ))),
        }
    }
}
