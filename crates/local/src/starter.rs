//! Starting job executions on the local Step Functions service.

use async_trait::async_trait;
use runway_asl::{ServiceError, StepFunctions};
use runway_webhook::{ExecutionStarter, StartError, StartOutcome};

/// [`ExecutionStarter`] over the local engine: `StartExecution` of the job machine, named
/// after the job, so a redelivered webhook finds its execution existing.
#[derive(Debug, Clone)]
pub struct SfnStarter {
    service: StepFunctions,
    machine_arn: String,
}

impl SfnStarter {
    pub fn new(service: StepFunctions, machine_arn: impl Into<String>) -> SfnStarter {
        SfnStarter {
            service,
            machine_arn: machine_arn.into(),
        }
    }

    fn execution_arn(&self, name: &str) -> String {
        // arn:aws:states:REGION:ACCOUNT:stateMachine:MACHINE → …:execution:MACHINE:NAME
        format!(
            "{}:{name}",
            self.machine_arn
                .replacen(":stateMachine:", ":execution:", 1)
        )
    }
}

#[async_trait]
impl ExecutionStarter for SfnStarter {
    async fn start_execution(&self, name: &str, input: &str) -> Result<StartOutcome, StartError> {
        // Step Functions answers a repeated start with the same input as a success; the
        // intake wants to know it was a duplicate.
        if self
            .service
            .describe_execution(&self.execution_arn(name))
            .is_ok()
        {
            return Ok(StartOutcome::AlreadyExists);
        }
        match self
            .service
            .start_execution(&self.machine_arn, Some(name), Some(input))
        {
            Ok(execution) => Ok(StartOutcome::Started {
                execution_id: execution.execution_arn,
            }),
            Err(ServiceError::ExecutionAlreadyExists(_)) => Ok(StartOutcome::AlreadyExists),
            Err(error) => Err(StartError::Rejected(format!(
                "{}: {error}",
                error.aws_code()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runway_asl::TaskRegistry;
    use runway_clock::SystemClock;

    const WAIT: &str =
        r#"{"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 30, "End": true}}}"#;

    #[tokio::test]
    async fn starts_once_then_reports_the_existing_execution() {
        let service = StepFunctions::new(SystemClock::shared(), TaskRegistry::new());
        let machine = service.create_state_machine("job", WAIT, None).unwrap();
        let starter = SfnStarter::new(service.clone(), machine.arn.clone());

        let first = starter.start_execution("job-1-r2-a1", r#"{"a": 1}"#).await;
        let Ok(StartOutcome::Started { execution_id }) = first else {
            panic!("{first:?}");
        };
        assert!(
            execution_id.ends_with(":execution:job:job-1-r2-a1"),
            "{execution_id}"
        );
        assert_eq!(
            starter.start_execution("job-1-r2-a1", r#"{"a": 1}"#).await,
            Ok(StartOutcome::AlreadyExists)
        );
        // A different input under the same name is still the same job.
        assert_eq!(
            starter.start_execution("job-1-r2-a1", r#"{"a": 2}"#).await,
            Ok(StartOutcome::AlreadyExists)
        );
        assert_eq!(
            service.list_executions(&machine.arn, None).unwrap().len(),
            1
        );
    }

    #[tokio::test]
    async fn a_bad_name_or_input_is_refused() {
        let service = StepFunctions::new(SystemClock::shared(), TaskRegistry::new());
        let machine = service.create_state_machine("job", WAIT, None).unwrap();
        let starter = SfnStarter::new(service, machine.arn);
        let bad_name = starter.start_execution("no spaces allowed", "{}").await;
        assert!(
            matches!(&bad_name, Err(StartError::Rejected(m)) if m.contains("InvalidName")),
            "{bad_name:?}"
        );
        let bad_input = starter.start_execution("job-2-r2-a1", "not json").await;
        assert!(
            matches!(&bad_input, Err(StartError::Rejected(m)) if m.contains("InvalidExecutionInput")),
            "{bad_input:?}"
        );
    }
}
