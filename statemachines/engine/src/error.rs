//! The States Language error names and the failure a state raises.

use serde_json::{Map, Value};

/// Error names AWS Step Functions raises, as they appear in `ErrorEquals` and history.
pub mod names {
    pub const ALL: &str = "States.ALL";
    pub const TASK_FAILED: &str = "States.TaskFailed";
    pub const TIMEOUT: &str = "States.Timeout";
    pub const HEARTBEAT_TIMEOUT: &str = "States.HeartbeatTimeout";
    pub const RUNTIME: &str = "States.Runtime";
    pub const DATA_LIMIT_EXCEEDED: &str = "States.DataLimitExceeded";
    pub const INTRINSIC_FAILURE: &str = "States.IntrinsicFailure";
    pub const BRANCH_FAILED: &str = "States.BranchFailed";
    pub const EXCEED_TOLERATED_FAILURE_THRESHOLD: &str = "States.ExceedToleratedFailureThreshold";
    pub const ITEM_READER_FAILED: &str = "States.ItemReaderFailed";
    pub const NO_CHOICE_MATCHED: &str = "States.NoChoiceMatched";
    pub const PARAMETER_PATH_FAILURE: &str = "States.ParameterPathFailure";
    pub const RESULT_PATH_MATCH_FAILURE: &str = "States.ResultPathMatchFailure";
    pub const QUERY_EVALUATION_ERROR: &str = "States.QueryEvaluationError";
    pub const PERMISSIONS: &str = "States.Permissions";
    pub const RESULT_WRITER_FAILED: &str = "States.ResultWriterFailed";
}

/// A failure raised inside an execution: the `Error` and `Cause` a catcher or the
/// execution's `ExecutionFailed` event sees.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub error: Option<String>,
    pub cause: Option<String>,
}

impl Failure {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Failure {
            error: Some(error.into()),
            cause: Some(cause.into()),
        }
    }

    /// The error name used to match retriers and catchers (`States.ALL` never matches none).
    pub fn name(&self) -> &str {
        self.error.as_deref().unwrap_or("")
    }

    /// The `{"Error": ..., "Cause": ...}` object a catcher passes on.
    pub fn to_output(&self) -> Value {
        let mut map = Map::new();
        if let Some(error) = &self.error {
            map.insert("Error".into(), Value::String(error.clone()));
        }
        if let Some(cause) = &self.cause {
            map.insert("Cause".into(), Value::String(cause.clone()));
        }
        Value::Object(map)
    }

    /// Whether `States.ALL` covers this error: everything but `States.Runtime` and
    /// `States.DataLimitExceeded`, as on AWS.
    pub fn matched_by_all(&self) -> bool {
        !matches!(self.name(), names::RUNTIME | names::DATA_LIMIT_EXCEEDED)
    }

    /// Whether a retrier or catcher with `error_equals` handles this failure.
    pub fn matches(&self, error_equals: &[String]) -> bool {
        error_equals.iter().any(|name| {
            if name == names::ALL {
                self.matched_by_all()
            } else if name == names::TASK_FAILED {
                // States.TaskFailed covers every task error but timeouts, as on AWS.
                name == self.name()
                    || !(self.name().starts_with("States.")
                        && matches!(
                            self.name(),
                            names::TIMEOUT
                                | names::HEARTBEAT_TIMEOUT
                                | names::RUNTIME
                                | names::DATA_LIMIT_EXCEEDED
                        ))
            } else {
                name == self.name()
            }
        })
    }
}

/// Formats a runtime error the way AWS words it, quoting the state and its entered event id.
pub fn state_error(state: &str, entered_event_id: u64, message: impl std::fmt::Display) -> String {
    format!(
        "An error occurred while executing the state '{state}' (entered at the event id #{entered_event_id}). {message}"
    )
}
