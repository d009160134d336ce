//! Check runner: did the runner register with GitHub, and what is it doing?

use runway_store::RunnerState;
use serde_json::{Value, json};

use crate::error::StepError;
use crate::flow::JobFlow;
use crate::input::{CheckRunnerInput, decode};
use crate::step::Step;
use crate::steps::runner_scope;

pub(crate) async fn run(flow: &JobFlow, input: Value) -> Result<Value, StepError> {
    let input: CheckRunnerInput = decode(Step::CheckRunner, input)?;
    let deps = flow.deps();
    let name = &input.runner.runner_name;
    let scope = runner_scope(flow, &input.common);
    let listed = deps
        .github
        .list_runners(&scope, Some(name.as_str()))
        .await
        .map_err(|e| StepError::github(&format!("look up runner {name} on GitHub"), e))?;
    let record = deps
        .store
        .get_runner(name)
        .await
        .map_err(|e| StepError::store("read the runner record", e))?;
    let stored = record.as_ref().map(|r| r.state);
    let (status, reason) = match listed.iter().find(|r| r.name == name.as_str()) {
        Some(runner) if runner.busy => ("busy", format!("runner {name} is running a job")),
        Some(runner) if runner.status == "online" => {
            if stored == Some(RunnerState::Booting) {
                deps.store
                    .set_runner_state(name, RunnerState::Idle, Some(RunnerState::Booting))
                    .await
                    .map_err(|e| StepError::store("record the runner as idle", e))?;
            }
            (
                "idle",
                format!("runner {name} is registered and idle, waiting for a job of the pool"),
            )
        }
        Some(runner) => (
            "never-registered",
            format!(
                "runner {name} was created on GitHub but never came {} (still {}); it is replaced",
                "online", runner.status
            ),
        ),
        None => match stored {
            Some(RunnerState::Busy { job_id }) => (
                "gone",
                format!("runner {name} ran job {job_id} and has left GitHub"),
            ),
            Some(RunnerState::Booting) => (
                "never-registered",
                format!("runner {name} is not registered with GitHub; it is replaced"),
            ),
            Some(RunnerState::Idle) | Some(RunnerState::Gone) | None => {
                ("gone", format!("runner {name} is gone"))
            }
        },
    };
    Ok(json!({"status": status, "reason": reason}))
}
