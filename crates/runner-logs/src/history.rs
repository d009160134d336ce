//! Which runners served a job, read from its execution's history.

use async_trait::async_trait;
use aws_sdk_sfn::error::ProvideErrorMetadata;
use aws_sdk_sfn::types::HistoryEventType;
use serde::Serialize;
use serde_json::Value;

use crate::RunnerLogError;
use crate::job::JobRef;

/// The states whose output (at `$.runner`) names a runner the execution launched or adopted.
const RUNNER_STATES: [&str; 3] = ["Provision", "ReplaceRunner", "RelaunchForQueuedJob"];

/// Most executions listed while looking for a job's.
const MAX_LISTED_EXECUTIONS: usize = 10_000;

/// A state's output as the history records it when the state exits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateOutput {
    pub state: String,
    /// The state's output document (JSON text).
    pub output: String,
}

/// One runner a job's execution launched or adopted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunnerOfJob {
    pub runner_name: String,
    pub pool: Option<String>,
    /// `ec2`, `ecs`, `eks`, `lambda` or `local`.
    pub provider: Option<String>,
    /// The instance id, task ARN, pod or process that ran it.
    pub instance_id: Option<String>,
    /// The state that launched it (`Provision`, `ReplaceRunner`, `RelaunchForQueuedJob`).
    pub launched_by: String,
    /// It was a warm runner, adopted instead of launched.
    pub adopted: bool,
}

/// The runners an execution's states launched or adopted, in the order they did, each once.
pub fn runners_of_execution(outputs: &[StateOutput]) -> Vec<RunnerOfJob> {
    let mut runners: Vec<RunnerOfJob> = Vec::new();
    for exited in outputs {
        if !RUNNER_STATES.contains(&exited.state.as_str()) {
            continue;
        }
        let Ok(output) = serde_json::from_str::<Value>(&exited.output) else {
            continue;
        };
        let runner = &output["runner"];
        let Some(name) = runner["runner_name"].as_str() else {
            continue;
        };
        if runners.iter().any(|known| known.runner_name == name) {
            continue;
        }
        let text = |value: &Value| value.as_str().map(str::to_owned);
        runners.push(RunnerOfJob {
            runner_name: name.to_owned(),
            pool: text(&output["route"]["pool"]),
            provider: text(&runner["provider"]),
            instance_id: text(&runner["instance_id"]),
            launched_by: exited.state.clone(),
            adopted: runner["adopted"].as_bool().unwrap_or(false),
        });
    }
    runners
}

/// Where job executions are kept: Step Functions, or `runway local`'s engine.
#[async_trait]
pub trait ExecutionHistory: Send + Sync {
    /// The name of the newest execution of `job` (its execution name when it is one).
    async fn find(&self, job: &JobRef) -> Result<Option<String>, RunnerLogError>;

    /// The outputs of the states the execution `name` has exited, in order.
    async fn state_outputs(&self, name: &str) -> Result<Vec<StateOutput>, RunnerLogError>;
}

/// Job executions on AWS Step Functions.
#[derive(Debug, Clone)]
pub struct StepFunctionsHistory {
    client: aws_sdk_sfn::Client,
    state_machine_arn: String,
}

impl StepFunctionsHistory {
    pub fn new(client: aws_sdk_sfn::Client, state_machine_arn: impl Into<String>) -> Self {
        StepFunctionsHistory {
            client,
            state_machine_arn: state_machine_arn.into(),
        }
    }

    /// The executions of the state machine called `name` (a stack's `<stack>-job`, or
    /// `runway local`'s), found by listing the account's state machines.
    pub async fn for_machine_named(
        client: aws_sdk_sfn::Client,
        name: &str,
    ) -> Result<Self, RunnerLogError> {
        let mut token = None;
        loop {
            let page = client
                .list_state_machines()
                .set_next_token(token)
                .send()
                .await
                .map_err(|error| sfn_error("list the state machines".into(), &error))?;
            if let Some(machine) = page
                .state_machines()
                .iter()
                .find(|machine| machine.name() == name)
            {
                return Ok(StepFunctionsHistory::new(
                    client.clone(),
                    machine.state_machine_arn(),
                ));
            }
            match page.next_token() {
                Some(next) => token = Some(next.to_owned()),
                None => {
                    return Err(RunnerLogError::NotFound(format!(
                        "no state machine {name} in this account and region: check the stack \
                         name and AWS_REGION (a runway stack's job machine is <stack>-job)"
                    )));
                }
            }
        }
    }

    /// `arn:...:stateMachine:<name>` → `arn:...:execution:<name>:<execution>`.
    fn execution_arn(&self, execution: &str) -> String {
        format!(
            "{}:{execution}",
            self.state_machine_arn
                .replacen(":stateMachine:", ":execution:", 1)
        )
    }
}

fn sfn_error<E>(action: String, error: &aws_sdk_sfn::error::SdkError<E>) -> RunnerLogError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => aws_sdk_sfn::error::DisplayErrorContext(error).to_string(),
    };
    RunnerLogError::Aws {
        action,
        throttled: error.code() == Some("ThrottlingException"),
        message,
    }
}

#[async_trait]
impl ExecutionHistory for StepFunctionsHistory {
    async fn find(&self, job: &JobRef) -> Result<Option<String>, RunnerLogError> {
        if let JobRef::Execution(name) = job {
            return Ok(Some(name.clone()));
        }
        let mut token = None;
        let mut listed = 0;
        // Newest first: the first match is the job's latest attempt (or retry).
        while listed < MAX_LISTED_EXECUTIONS {
            let page = self
                .client
                .list_executions()
                .state_machine_arn(&self.state_machine_arn)
                .max_results(1000)
                .set_next_token(token)
                .send()
                .await
                .map_err(|error| {
                    sfn_error(
                        format!("list the executions of {}", self.state_machine_arn),
                        &error,
                    )
                })?;
            listed += page.executions().len();
            if let Some(found) = page
                .executions()
                .iter()
                .map(|execution| execution.name())
                .find(|name| job.names(name))
            {
                return Ok(Some(found.to_owned()));
            }
            match page.next_token() {
                Some(next) => token = Some(next.to_owned()),
                None => return Ok(None),
            }
        }
        Ok(None)
    }

    async fn state_outputs(&self, name: &str) -> Result<Vec<StateOutput>, RunnerLogError> {
        let arn = self.execution_arn(name);
        let mut outputs = Vec::new();
        let mut token = None;
        loop {
            let page = match self
                .client
                .get_execution_history()
                .execution_arn(&arn)
                .include_execution_data(true)
                .max_results(1000)
                .set_next_token(token)
                .send()
                .await
            {
                Ok(page) => page,
                Err(error) if error.code() == Some("ExecutionDoesNotExist") => {
                    return Err(RunnerLogError::NotFound(format!(
                        "no execution {name} of {}: check the name (the Step Functions console \
                         lists them) and the stack",
                        self.state_machine_arn
                    )));
                }
                Err(error) => {
                    return Err(sfn_error(format!("read the history of {name}"), &error));
                }
            };
            for event in page.events() {
                if event.r#type() != &HistoryEventType::TaskStateExited {
                    continue;
                }
                if let Some(exited) = event.state_exited_event_details() {
                    outputs.push(StateOutput {
                        state: exited.name().to_owned(),
                        output: exited.output().unwrap_or_default().to_owned(),
                    });
                }
            }
            match page.next_token() {
                Some(next) => token = Some(next.to_owned()),
                None => return Ok(outputs),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn exited(state: &str, output: Value) -> StateOutput {
        StateOutput {
            state: state.into(),
            output: output.to_string(),
        }
    }

    #[test]
    fn runners_come_from_the_launching_states_in_order_each_once() {
        let route = json!({"pool": "linux-x64"});
        let outputs = [
            exited("Route", json!({"route": route})),
            exited(
                "Provision",
                json!({"route": route, "runner": {"runner_name": "ci-7-a1-1",
                    "provider": "ec2", "instance_id": "i-1"}}),
            ),
            exited(
                "CheckRunner",
                json!({"route": route, "runner": {"runner_name": "ci-7-a1-1"}}),
            ),
            exited(
                "ReplaceRunner",
                json!({"route": route, "runner": {"runner_name": "ci-7-a1-2",
                    "provider": "ec2", "instance_id": "i-2"}}),
            ),
            // A retried state exits again with the same runner.
            exited(
                "ReplaceRunner",
                json!({"route": route, "runner": {"runner_name": "ci-7-a1-2"}}),
            ),
            exited(
                "RelaunchForQueuedJob",
                json!({"route": route, "runner": {"runner_name": "ci-w1764950400000-0",
                    "provider": "ec2", "instance_id": "i-3", "adopted": true}}),
            ),
            StateOutput {
                state: "Provision".into(),
                output: "not json".into(),
            },
        ];
        let runners = runners_of_execution(&outputs);
        let names: Vec<_> = runners.iter().map(|r| r.runner_name.as_str()).collect();
        assert_eq!(names, ["ci-7-a1-1", "ci-7-a1-2", "ci-w1764950400000-0"]);
        assert_eq!(runners[0].pool.as_deref(), Some("linux-x64"));
        assert_eq!(runners[1].instance_id.as_deref(), Some("i-2"));
        assert_eq!(runners[1].launched_by, "ReplaceRunner");
        assert!(runners[2].adopted);
    }

    #[test]
    fn execution_arns_follow_the_state_machine() {
        let history = StepFunctionsHistory::new(
            aws_sdk_sfn::Client::from_conf(
                aws_sdk_sfn::Config::builder()
                    .behavior_version(aws_sdk_sfn::config::BehaviorVersion::latest())
                    .build(),
            ),
            "arn:aws:states:eu-west-1:123456789012:stateMachine:JobStateMachine-Ab1",
        );
        assert_eq!(
            history.execution_arn("job-7-r1-a1"),
            "arn:aws:states:eu-west-1:123456789012:execution:JobStateMachine-Ab1:job-7-r1-a1"
        );
    }
}
