//! Running one execution: as a spawned task for the service, or to completion for
//! `runway sfn run` and tests.

use std::sync::{Arc, Mutex};

use runway_clock::SharedClock;
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};

use crate::definition::Definition;
use crate::engine::{ExecutionEvent, Interpreter, Lane, Shared, timestamp_text};
use crate::error::Failure;
use crate::history::{HistoryEvent, not_truncated};
use crate::record::{
    DEFAULT_ACCOUNT, DEFAULT_REGION, ExecutionDescription, ExecutionRecord, ExecutionStatus,
};
use crate::tasks::{TaskRegistry, TaskTokens};

pub(crate) struct Launch {
    pub clock: SharedClock,
    pub tasks: TaskRegistry,
    pub tokens: TaskTokens,
    pub listener: Option<broadcast::Sender<ExecutionEvent>>,
    pub region: String,
    pub state_machine_arn: String,
    pub state_machine_name: String,
    pub execution_arn: String,
    pub execution_name: String,
    pub role_arn: String,
    pub input: Value,
    pub input_text: String,
}

fn prepare(launch: &Launch) -> Arc<Shared> {
    let start_time = launch.clock.now();
    let shared = Arc::new(Shared {
        clock: launch.clock.clone(),
        tasks: launch.tasks.clone(),
        tokens: launch.tokens.clone(),
        history: Mutex::new(Vec::new()),
        listener: launch.listener.clone(),
        execution_arn: launch.execution_arn.clone(),
        region: launch.region.clone(),
        execution_context: json!({
            "Id": launch.execution_arn,
            "Input": launch.input,
            "Name": launch.execution_name,
            "RoleArn": launch.role_arn,
            "StartTime": timestamp_text(start_time),
            "RedriveCount": 0,
        }),
        state_machine_context: json!({
            "Id": launch.state_machine_arn,
            "Name": launch.state_machine_name,
        }),
    });
    let mut lane = Lane::new(shared.clone(), 0);
    lane.emit(
        "ExecutionStarted",
        Some(json!({
            "input": launch.input_text,
            "inputDetails": not_truncated(),
            "roleArn": launch.role_arn,
        })),
    );
    shared
}

fn finished(
    outcome: &Result<Value, Failure>,
    shared: &Shared,
) -> (
    ExecutionStatus,
    Option<String>,
    Option<String>,
    Option<String>,
) {
    match outcome {
        Ok(output) => (
            ExecutionStatus::Succeeded,
            Some(output.to_string()),
            None,
            None,
        ),
        Err(failure) => {
            let timed_out = shared
                .history
                .lock()
                .ok()
                .and_then(|h| h.last().map(|e| e.event_type == "ExecutionTimedOut"))
                .unwrap_or(false);
            let status = if timed_out {
                ExecutionStatus::TimedOut
            } else {
                ExecutionStatus::Failed
            };
            (status, None, failure.error.clone(), failure.cause.clone())
        }
    }
}

/// Starts an execution as a tokio task.
pub(crate) fn start(launch: Launch, definition: Arc<Definition>) -> Arc<ExecutionRecord> {
    let shared = prepare(&launch);
    let description = ExecutionDescription {
        execution_arn: launch.execution_arn.clone(),
        state_machine_arn: launch.state_machine_arn.clone(),
        name: launch.execution_name.clone(),
        status: ExecutionStatus::Running,
        start_date: launch.clock.now(),
        stop_date: None,
        input: launch.input_text.clone(),
        output: None,
        error: None,
        cause: None,
    };
    let (status, _) = watch::channel(ExecutionStatus::Running);
    let record = Arc::new(ExecutionRecord {
        description: Mutex::new(description),
        shared: shared.clone(),
        status,
        abort: Mutex::new(None),
    });
    let task_record = record.clone();
    let input = launch.input;
    let handle = tokio::spawn(async move {
        let interpreter = Interpreter {
            shared: task_record.shared.clone(),
        };
        let outcome = interpreter.run(&definition, input).await;
        let (status, output, error, cause) = finished(&outcome, &task_record.shared);
        let now = task_record.shared.clock.now();
        {
            let mut description = task_record
                .description
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if description.status != ExecutionStatus::Running {
                return;
            }
            description.status = status;
            description.stop_date = Some(now);
            description.output = output;
            description.error = error;
            description.cause = cause;
        }
        task_record.status.send_replace(status);
    });
    if let Ok(mut abort) = record.abort.lock() {
        *abort = Some(handle.abort_handle());
    }
    record
}

/// Stops a running execution (StopExecution): it ends ABORTED.
pub(crate) fn abort(record: &ExecutionRecord, error: Option<&str>, cause: Option<&str>) {
    let now = record.shared.clock.now();
    {
        let mut description = record.description.lock().unwrap_or_else(|p| p.into_inner());
        if description.status != ExecutionStatus::Running {
            return;
        }
        if let Ok(abort) = record.abort.lock()
            && let Some(handle) = abort.as_ref()
        {
            handle.abort();
        }
        description.status = ExecutionStatus::Aborted;
        description.stop_date = Some(now);
        description.error = error.map(str::to_owned);
        description.cause = cause.map(str::to_owned);
    }
    record
        .shared
        .tokens
        .retire_execution(&record.shared.execution_arn);
    let mut details = serde_json::Map::new();
    if let Some(error) = error {
        details.insert("error".into(), json!(error));
    }
    if let Some(cause) = cause {
        details.insert("cause".into(), json!(cause));
    }
    let previous = record.shared.last_event_id();
    record
        .shared
        .record(previous, "ExecutionAborted", Some(Value::Object(details)));
    record.status.send_replace(ExecutionStatus::Aborted);
}

/// Settings of a one-shot run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub clock: SharedClock,
    pub tasks: TaskRegistry,
    /// Tokens of `.waitForTaskToken` tasks; complete them through this handle.
    pub tokens: TaskTokens,
    pub state_machine_name: String,
    pub execution_name: String,
    pub role_arn: String,
    pub region: String,
    pub account: String,
}

impl RunConfig {
    pub fn new(clock: SharedClock, tasks: TaskRegistry) -> Self {
        RunConfig {
            clock,
            tasks,
            tokens: TaskTokens::new(),
            state_machine_name: "StateMachine".into(),
            execution_name: uuid::Uuid::new_v4().to_string(),
            role_arn: format!("arn:aws:iam::{DEFAULT_ACCOUNT}:role/runway-local-states"),
            region: DEFAULT_REGION.into(),
            account: DEFAULT_ACCOUNT.into(),
        }
    }
}

/// How a one-shot run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    pub status: ExecutionStatus,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub history: Vec<HistoryEvent>,
}

/// Runs `definition` on `input` to completion.
pub async fn run(definition: &Definition, input: Value, config: RunConfig) -> RunResult {
    let state_machine_arn = format!(
        "arn:aws:states:{}:{}:stateMachine:{}",
        config.region, config.account, config.state_machine_name
    );
    let execution_arn = format!(
        "arn:aws:states:{}:{}:execution:{}:{}",
        config.region, config.account, config.state_machine_name, config.execution_name
    );
    let launch = Launch {
        clock: config.clock.clone(),
        tasks: config.tasks.clone(),
        tokens: config.tokens.clone(),
        listener: None,
        region: config.region.clone(),
        state_machine_arn,
        state_machine_name: config.state_machine_name.clone(),
        execution_arn,
        execution_name: config.execution_name.clone(),
        role_arn: config.role_arn.clone(),
        input_text: input.to_string(),
        input: input.clone(),
    };
    let shared = prepare(&launch);
    let interpreter = Interpreter {
        shared: shared.clone(),
    };
    let outcome = interpreter.run(definition, input).await;
    let (status, _, error, cause) = finished(&outcome, &shared);
    let history = shared.history.lock().map(|h| h.clone()).unwrap_or_default();
    RunResult {
        status,
        output: outcome.ok(),
        error,
        cause,
        history,
    }
}
