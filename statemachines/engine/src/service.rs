//! The Step Functions service: state machines, executions, task tokens and history, with
//! AWS's API semantics. The HTTP API and `runway local` both sit on this.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use runway_clock::SharedClock;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast;

use crate::definition::Definition;
use crate::engine::ExecutionEvent;
use crate::execution::{Launch, start};
use crate::history::HistoryEvent;
use crate::record::ExecutionRecord;
pub use crate::record::{DEFAULT_ACCOUNT, DEFAULT_REGION, ExecutionDescription, ExecutionStatus};
use crate::tasks::{TaskFailure, TaskRegistry, TaskTokens, TokenError};

const DEFAULT_ROLE: &str = "arn:aws:iam::123456789012:role/runway-local-states";

impl std::str::FromStr for ExecutionStatus {
    type Err = ServiceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "RUNNING" => ExecutionStatus::Running,
            "SUCCEEDED" => ExecutionStatus::Succeeded,
            "FAILED" => ExecutionStatus::Failed,
            "TIMED_OUT" => ExecutionStatus::TimedOut,
            "ABORTED" => ExecutionStatus::Aborted,
            other => {
                return Err(ServiceError::ValidationException(format!(
                    "1 validation error detected: Value '{other}' at 'statusFilter' failed to satisfy constraint: Member must satisfy enum value set: [SUCCEEDED, TIMED_OUT, PENDING_REDRIVE, ABORTED, FAILED, RUNNING]"
                )));
            }
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateMachineDescription {
    pub arn: String,
    pub name: String,
    pub definition: String,
    pub role_arn: String,
    /// `STANDARD`.
    pub kind: String,
    /// `ACTIVE`.
    pub status: String,
    pub creation_date: DateTime<Utc>,
}

/// One error per AWS error code of the Step Functions API.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    StateMachineDoesNotExist(String),
    #[error("{0}")]
    StateMachineAlreadyExists(String),
    #[error("{0}")]
    InvalidDefinition(String),
    #[error("{0}")]
    InvalidName(String),
    #[error("{0}")]
    InvalidArn(String),
    #[error("{0}")]
    ExecutionDoesNotExist(String),
    #[error("{0}")]
    ExecutionAlreadyExists(String),
    #[error("{0}")]
    InvalidExecutionInput(String),
    #[error("{0}")]
    InvalidOutput(String),
    #[error("{0}")]
    InvalidToken(String),
    #[error("{0}")]
    TaskDoesNotExist(String),
    #[error("{0}")]
    TaskTimedOut(String),
    #[error("{0}")]
    ValidationException(String),
}

impl ServiceError {
    /// The AWS error code (`__type` of the JSON error response).
    pub fn aws_code(&self) -> &'static str {
        match self {
            ServiceError::StateMachineDoesNotExist(_) => "StateMachineDoesNotExist",
            ServiceError::StateMachineAlreadyExists(_) => "StateMachineAlreadyExists",
            ServiceError::InvalidDefinition(_) => "InvalidDefinition",
            ServiceError::InvalidName(_) => "InvalidName",
            ServiceError::InvalidArn(_) => "InvalidArn",
            ServiceError::ExecutionDoesNotExist(_) => "ExecutionDoesNotExist",
            ServiceError::ExecutionAlreadyExists(_) => "ExecutionAlreadyExists",
            ServiceError::InvalidExecutionInput(_) => "InvalidExecutionInput",
            ServiceError::InvalidOutput(_) => "InvalidOutput",
            ServiceError::InvalidToken(_) => "InvalidToken",
            ServiceError::TaskDoesNotExist(_) => "TaskDoesNotExist",
            ServiceError::TaskTimedOut(_) => "TaskTimedOut",
            ServiceError::ValidationException(_) => "ValidationException",
        }
    }
}

/// Checks a state machine or execution name the way AWS does.
pub fn validate_name(name: &str) -> Result<(), ServiceError> {
    let length = name.chars().count();
    let forbidden = |c: char| {
        c.is_whitespace()
            || "<>{}[]?*\"#%\\^|~`$&,;:/".contains(c)
            || (c as u32) <= 0x1f
            || (0x7f..=0x9f).contains(&(c as u32))
    };
    if length == 0 || length > 80 {
        return Err(ServiceError::InvalidName(format!(
            "Invalid Name: '{name}' (a name must be 1 to 80 characters long)"
        )));
    }
    if let Some(c) = name.chars().find(|c| forbidden(*c)) {
        return Err(ServiceError::InvalidName(format!(
            "Invalid Name: '{name}' (it must not contain white space, brackets, wildcards, control characters or any of \" # % \\ ^ | ~ ` $ & , ; : /; found {c:?})"
        )));
    }
    Ok(())
}

struct MachineRecord {
    description: StateMachineDescription,
    definition: Arc<Definition>,
}

struct Inner {
    clock: SharedClock,
    tasks: TaskRegistry,
    tokens: TaskTokens,
    region: String,
    account: String,
    machines: Mutex<Vec<MachineRecord>>,
    executions: Mutex<Executions>,
    events: broadcast::Sender<ExecutionEvent>,
}

/// Every execution, in start order (for listing) and by ARN: callbacks and describes look one
/// up by ARN, and a day of jobs must not make each lookup walk every execution.
#[derive(Default)]
struct Executions {
    in_order: Vec<Arc<ExecutionRecord>>,
    by_arn: std::collections::HashMap<String, Arc<ExecutionRecord>>,
}

/// A local Step Functions service.
#[derive(Clone)]
pub struct StepFunctions {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for StepFunctions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepFunctions")
            .field("region", &self.inner.region)
            .field("account", &self.inner.account)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving it.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl StepFunctions {
    /// A service in region `us-east-1`, account `123456789012`.
    pub fn new(clock: SharedClock, tasks: TaskRegistry) -> Self {
        let (events, _) = broadcast::channel(4096);
        StepFunctions {
            inner: Arc::new(Inner {
                clock,
                tasks,
                tokens: TaskTokens::new(),
                region: crate::service::DEFAULT_REGION.into(),
                account: DEFAULT_ACCOUNT.into(),
                machines: Mutex::new(Vec::new()),
                executions: Mutex::new(Executions::default()),
                events,
            }),
        }
    }

    /// The registry task resources resolve through.
    pub fn tasks(&self) -> &TaskRegistry {
        &self.inner.tasks
    }

    /// The open task tokens.
    pub fn task_tokens(&self) -> &TaskTokens {
        &self.inner.tokens
    }

    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    fn machine_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:states:{}:{}:stateMachine:{name}",
            self.inner.region, self.inner.account
        )
    }

    pub fn create_state_machine(
        &self,
        name: &str,
        definition: &str,
        role_arn: Option<&str>,
    ) -> Result<StateMachineDescription, ServiceError> {
        validate_name(name)?;
        let parsed = Definition::parse(definition).map_err(|e| {
            ServiceError::InvalidDefinition(format!("Invalid State Machine Definition: '{e}'"))
        })?;
        let role_arn = role_arn.unwrap_or(DEFAULT_ROLE).to_owned();
        let arn = self.machine_arn(name);
        let mut machines = lock(&self.inner.machines);
        if let Some(existing) = machines.iter().find(|m| m.description.arn == arn) {
            if existing.definition.source == parsed.source
                && existing.description.role_arn == role_arn
            {
                return Ok(existing.description.clone());
            }
            return Err(ServiceError::StateMachineAlreadyExists(format!(
                "State Machine Already Exists: '{arn}'"
            )));
        }
        let description = StateMachineDescription {
            arn,
            name: name.to_owned(),
            definition: definition.to_owned(),
            role_arn,
            kind: "STANDARD".into(),
            status: "ACTIVE".into(),
            creation_date: self.inner.clock.now(),
        };
        machines.push(MachineRecord {
            description: description.clone(),
            definition: Arc::new(parsed),
        });
        Ok(description)
    }

    pub fn list_state_machines(&self) -> Vec<StateMachineDescription> {
        lock(&self.inner.machines)
            .iter()
            .map(|m| m.description.clone())
            .collect()
    }

    fn check_arn(&self, arn: &str, kind: &str) -> Result<(), ServiceError> {
        let prefix = format!(
            "arn:aws:states:{}:{}:{kind}:",
            self.inner.region, self.inner.account
        );
        let generic = arn.starts_with("arn:")
            && arn.split(':').count() >= 7
            && arn.contains(&format!(":{kind}:"));
        if arn.starts_with(&prefix) || generic {
            Ok(())
        } else {
            Err(ServiceError::InvalidArn(format!("Invalid Arn: '{arn}'")))
        }
    }

    fn machine(
        &self,
        arn: &str,
    ) -> Result<(StateMachineDescription, Arc<Definition>), ServiceError> {
        self.check_arn(arn, "stateMachine")?;
        lock(&self.inner.machines)
            .iter()
            .find(|m| m.description.arn == arn)
            .map(|m| (m.description.clone(), m.definition.clone()))
            .ok_or_else(|| {
                ServiceError::StateMachineDoesNotExist(format!(
                    "State Machine Does Not Exist: '{arn}'"
                ))
            })
    }

    pub fn describe_state_machine(
        &self,
        arn: &str,
    ) -> Result<StateMachineDescription, ServiceError> {
        self.machine(arn).map(|(d, _)| d)
    }

    /// Starts an execution; must be called within a tokio runtime.
    pub fn start_execution(
        &self,
        state_machine_arn: &str,
        name: Option<&str>,
        input: Option<&str>,
    ) -> Result<ExecutionDescription, ServiceError> {
        let (machine, definition) = self.machine(state_machine_arn)?;
        let name = match name {
            Some(name) => {
                validate_name(name)?;
                name.to_owned()
            }
            None => uuid::Uuid::new_v4().to_string(),
        };
        let input_text = input.unwrap_or("{}");
        let input_value: Value = serde_json::from_str(input_text).map_err(|e| {
            ServiceError::InvalidExecutionInput(format!("Invalid execution input: {e}"))
        })?;
        let execution_arn = format!(
            "arn:aws:states:{}:{}:execution:{}:{name}",
            self.inner.region, self.inner.account, machine.name
        );
        let mut executions = lock(&self.inner.executions);
        if let Some(existing) = executions.by_arn.get(&execution_arn) {
            let description = lock(&existing.description).clone();
            let same_input =
                serde_json::from_str::<Value>(&description.input).ok() == Some(input_value.clone());
            if same_input && description.status == ExecutionStatus::Running {
                return Ok(description);
            }
            return Err(ServiceError::ExecutionAlreadyExists(format!(
                "Execution Already Exists: '{execution_arn}'"
            )));
        }
        let record = start(
            Launch {
                clock: self.inner.clock.clone(),
                tasks: self.inner.tasks.clone(),
                tokens: self.inner.tokens.clone(),
                listener: Some(self.inner.events.clone()),
                region: self.inner.region.clone(),
                state_machine_arn: machine.arn.clone(),
                state_machine_name: machine.name.clone(),
                execution_arn,
                execution_name: name,
                role_arn: machine.role_arn.clone(),
                input: input_value,
                input_text: input_text.to_owned(),
            },
            definition,
        );
        let description = lock(&record.description).clone();
        executions
            .by_arn
            .insert(description.execution_arn.clone(), record.clone());
        executions.in_order.push(record);
        Ok(description)
    }

    fn execution(&self, arn: &str) -> Result<Arc<ExecutionRecord>, ServiceError> {
        self.check_arn(arn, "execution")?;
        lock(&self.inner.executions)
            .by_arn
            .get(arn)
            .cloned()
            .ok_or_else(|| {
                ServiceError::ExecutionDoesNotExist(format!("Execution Does Not Exist: '{arn}'"))
            })
    }

    pub fn describe_execution(&self, arn: &str) -> Result<ExecutionDescription, ServiceError> {
        Ok(lock(&self.execution(arn)?.description).clone())
    }

    /// Executions of a machine, newest first.
    pub fn list_executions(
        &self,
        state_machine_arn: &str,
        status: Option<ExecutionStatus>,
    ) -> Result<Vec<ExecutionDescription>, ServiceError> {
        self.machine(state_machine_arn)?;
        let executions = lock(&self.inner.executions);
        // Filtered before copying: a description carries the execution's input and output.
        let mut out: Vec<ExecutionDescription> = executions
            .in_order
            .iter()
            .filter_map(|e| {
                let description = lock(&e.description);
                let wanted = description.state_machine_arn == state_machine_arn
                    && status.is_none_or(|s| description.status == s);
                wanted.then(|| description.clone())
            })
            .collect();
        out.reverse();
        Ok(out)
    }

    pub fn get_execution_history(
        &self,
        arn: &str,
        reverse_order: bool,
    ) -> Result<Vec<HistoryEvent>, ServiceError> {
        let record = self.execution(arn)?;
        let mut events = lock(&record.shared.history).clone();
        if reverse_order {
            events.reverse();
        }
        Ok(events)
    }

    /// How many events an execution's history holds, without copying them: what a caller
    /// watching for progress compares.
    pub fn history_length(&self, arn: &str) -> Result<usize, ServiceError> {
        let record = self.execution(arn)?;
        let length = lock(&record.shared.history).len();
        Ok(length)
    }

    /// Stops a running execution: it ends ABORTED. Returns the stop date.
    pub fn stop_execution(
        &self,
        arn: &str,
        error: Option<&str>,
        cause: Option<&str>,
    ) -> Result<DateTime<Utc>, ServiceError> {
        let record = self.execution(arn)?;
        crate::execution::abort(&record, error, cause);
        let description = lock(&record.description).clone();
        Ok(description
            .stop_date
            .unwrap_or_else(|| self.inner.clock.now()))
    }

    fn token_error(token: &str, error: TokenError) -> ServiceError {
        match error {
            TokenError::Invalid => ServiceError::InvalidToken(format!("Invalid Token: '{token}'")),
            TokenError::DoesNotExist => {
                ServiceError::TaskDoesNotExist(format!("Task Does Not Exist: '{token}'"))
            }
            TokenError::TimedOut => {
                ServiceError::TaskTimedOut(format!("Task Timed Out: '{token}'"))
            }
        }
    }

    pub fn send_task_success(&self, task_token: &str, output: &str) -> Result<(), ServiceError> {
        let value: Value = serde_json::from_str(output)
            .map_err(|e| ServiceError::InvalidOutput(format!("Invalid Output: {e}")))?;
        self.inner
            .tokens
            .complete(task_token, Ok(value))
            .map_err(|e| Self::token_error(task_token, e))
    }

    pub fn send_task_failure(
        &self,
        task_token: &str,
        error: Option<&str>,
        cause: Option<&str>,
    ) -> Result<(), ServiceError> {
        let failure = TaskFailure {
            error: error.unwrap_or("").to_owned(),
            cause: cause.unwrap_or("").to_owned(),
        };
        self.inner
            .tokens
            .complete(task_token, Err(failure))
            .map_err(|e| Self::token_error(task_token, e))
    }

    pub fn send_task_heartbeat(&self, task_token: &str) -> Result<(), ServiceError> {
        self.inner
            .tokens
            .heartbeat(task_token)
            .map_err(|e| Self::token_error(task_token, e))
    }

    /// Resolves once the execution is no longer RUNNING.
    pub async fn await_execution(&self, arn: &str) -> Result<ExecutionDescription, ServiceError> {
        let record = self.execution(arn)?;
        let mut status = record.status.subscribe();
        // The sender lives in the record we hold, so the channel stays open.
        let _ = status.wait_for(|s| *s != ExecutionStatus::Running).await;
        Ok(lock(&record.description).clone())
    }

    /// Live history events of every execution.
    pub fn subscribe(&self) -> broadcast::Receiver<ExecutionEvent> {
        self.inner.events.subscribe()
    }
}
