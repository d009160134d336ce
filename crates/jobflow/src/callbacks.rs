//! Completing `.waitForTaskToken` tasks: Step Functions in AWS, the local engine in
//! `runway local`.

use std::fmt;

use async_trait::async_trait;
use aws_sdk_sfn::error::{ProvideErrorMetadata, SdkError};
use runway_asl::{ServiceError, StepFunctions};
use serde_json::Value;

/// Why a task token could not be completed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// The task timed out, is unknown or already completed: skip it.
    #[error("the task token is no longer waiting: {0}")]
    TokenGone(String),
    /// The service could not be reached or failed: retry later.
    #[error("the workflow service is unavailable: {0}")]
    Unavailable(String),
}

/// Completes `.waitForTaskToken` tasks.
#[async_trait]
pub trait TaskCallbacks: Send + Sync + fmt::Debug {
    async fn send_task_success(&self, token: &str, output: Value) -> Result<(), CallbackError>;
    async fn send_task_failure(
        &self,
        token: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), CallbackError>;
}

/// Error codes meaning the token will never be accepted again.
const GONE_CODES: &[&str] = &["TaskTimedOut", "TaskDoesNotExist", "InvalidToken"];

/// [`TaskCallbacks`] over AWS Step Functions (`SendTaskSuccess` / `SendTaskFailure`).
#[derive(Debug, Clone)]
pub struct SfnCallbacks {
    client: aws_sdk_sfn::Client,
}

impl SfnCallbacks {
    pub fn new(client: aws_sdk_sfn::Client) -> SfnCallbacks {
        SfnCallbacks { client }
    }
}

fn from_sdk<E, R>(operation: &str, error: SdkError<E, R>) -> CallbackError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: fmt::Debug,
{
    if let SdkError::ServiceError(context) = &error {
        let service_error = context.err();
        let code = service_error.code().unwrap_or("Unknown");
        let message = service_error.message().unwrap_or_default();
        if GONE_CODES.contains(&code) {
            return CallbackError::TokenGone(format!("{code}: {message}"));
        }
        return CallbackError::Unavailable(format!("{operation} failed: {code}: {message}"));
    }
    let text = runway_store::error_chain(&error);
    CallbackError::Unavailable(format!("{operation} failed: {text}"))
}

#[async_trait]
impl TaskCallbacks for SfnCallbacks {
    async fn send_task_success(&self, token: &str, output: Value) -> Result<(), CallbackError> {
        self.client
            .send_task_success()
            .task_token(token)
            .output(output.to_string())
            .send()
            .await
            .map(|_| ())
            .map_err(|error| from_sdk("SendTaskSuccess", error))
    }

    async fn send_task_failure(
        &self,
        token: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), CallbackError> {
        self.client
            .send_task_failure()
            .task_token(token)
            .error(error)
            .cause(cause)
            .send()
            .await
            .map(|_| ())
            .map_err(|error| from_sdk("SendTaskFailure", error))
    }
}

fn from_service(error: ServiceError) -> CallbackError {
    match error {
        ServiceError::TaskTimedOut(message)
        | ServiceError::TaskDoesNotExist(message)
        | ServiceError::InvalidToken(message) => CallbackError::TokenGone(message),
        other => CallbackError::Unavailable(format!("{}: {other}", other.aws_code())),
    }
}

/// The local engine completes its own tokens.
#[async_trait]
impl TaskCallbacks for StepFunctions {
    async fn send_task_success(&self, token: &str, output: Value) -> Result<(), CallbackError> {
        StepFunctions::send_task_success(self, token, &output.to_string()).map_err(from_service)
    }

    async fn send_task_failure(
        &self,
        token: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), CallbackError> {
        StepFunctions::send_task_failure(self, token, Some(error), Some(cause))
            .map_err(from_service)
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_sfn::error::ErrorMetadata;
    use aws_sdk_sfn::operation::send_task_success::SendTaskSuccessError;

    use super::*;

    fn service_error(code: &str) -> SdkError<SendTaskSuccessError, ()> {
        let metadata = ErrorMetadata::builder()
            .code(code)
            .message("as sent by Step Functions")
            .build();
        SdkError::service_error(SendTaskSuccessError::generic(metadata), ())
    }

    #[test]
    fn tokens_that_will_never_be_accepted_are_gone() {
        for code in GONE_CODES {
            let error = from_sdk("SendTaskSuccess", service_error(code));
            assert!(
                matches!(&error, CallbackError::TokenGone(text) if text.contains(code)),
                "{error:?}"
            );
        }
    }

    #[test]
    fn throttling_and_transport_failures_are_retried_later() {
        let throttled = from_sdk("SendTaskSuccess", service_error("ThrottlingException"));
        assert!(
            matches!(&throttled, CallbackError::Unavailable(text) if text.contains("ThrottlingException")),
            "{throttled:?}"
        );
        let timeout = SdkError::<SendTaskSuccessError, ()>::timeout_error("timed out");
        assert!(matches!(
            from_sdk("SendTaskSuccess", timeout),
            CallbackError::Unavailable(_)
        ));
    }

    #[test]
    fn the_local_engine_maps_its_token_errors_the_same_way() {
        assert!(matches!(
            from_service(ServiceError::TaskTimedOut("t".into())),
            CallbackError::TokenGone(_)
        ));
        assert!(matches!(
            from_service(ServiceError::InvalidToken("t".into())),
            CallbackError::TokenGone(_)
        ));
        assert!(matches!(
            from_service(ServiceError::InvalidOutput("o".into())),
            CallbackError::Unavailable(_)
        ));
    }
}
