//! Execution history events in the shape of Step Functions' `GetExecutionHistory`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};

/// One history event. Serializes to exactly the JSON of a `GetExecutionHistory` event:
/// `{"timestamp": 1767225600.0, "type": "PassStateEntered", "id": 2, "previousEventId": 1,
///   "stateEnteredEventDetails": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEvent {
    #[serde(
        serialize_with = "epoch_seconds",
        deserialize_with = "from_epoch_seconds"
    )]
    pub timestamp: DateTime<Utc>,
    #[serde(rename = "type")]
    pub event_type: String,
    pub id: u64,
    #[serde(rename = "previousEventId")]
    pub previous_event_id: u64,
    /// The one details member of this event type, e.g. `stateEnteredEventDetails`.
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

impl HistoryEvent {
    /// The details object of this event, if it has one.
    pub fn detail(&self) -> Option<&Value> {
        self.details.values().next()
    }
}

fn epoch_seconds<S: Serializer>(time: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    let seconds = time.timestamp() as f64 + f64::from(time.timestamp_subsec_millis()) / 1000.0;
    serializer.serialize_f64(seconds)
}

fn from_epoch_seconds<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<DateTime<Utc>, D::Error> {
    let seconds = f64::deserialize(deserializer)?;
    let millis = (seconds * 1000.0).round() as i64;
    DateTime::<Utc>::from_timestamp_millis(millis)
        .ok_or_else(|| serde::de::Error::custom(format!("timestamp {seconds} is out of range")))
}

/// `{"truncated": false}`, the payload details AWS attaches to inputs and outputs.
pub fn not_truncated() -> Value {
    json!({"truncated": false})
}

/// Builds the details member name AWS uses for an event type.
pub fn details_key(event_type: &str) -> Option<&'static str> {
    Some(match event_type {
        "ExecutionStarted" => "executionStartedEventDetails",
        "ExecutionSucceeded" => "executionSucceededEventDetails",
        "ExecutionFailed" => "executionFailedEventDetails",
        "ExecutionAborted" => "executionAbortedEventDetails",
        "ExecutionTimedOut" => "executionTimedOutEventDetails",
        "TaskScheduled" => "taskScheduledEventDetails",
        "TaskStarted" => "taskStartedEventDetails",
        "TaskSubmitted" => "taskSubmittedEventDetails",
        "TaskSucceeded" => "taskSucceededEventDetails",
        "TaskFailed" => "taskFailedEventDetails",
        "TaskTimedOut" => "taskTimedOutEventDetails",
        "LambdaFunctionScheduled" => "lambdaFunctionScheduledEventDetails",
        "LambdaFunctionSucceeded" => "lambdaFunctionSucceededEventDetails",
        "LambdaFunctionFailed" => "lambdaFunctionFailedEventDetails",
        "LambdaFunctionTimedOut" => "lambdaFunctionTimedOutEventDetails",
        "MapStateStarted" => "mapStateStartedEventDetails",
        "MapIterationStarted"
        | "MapIterationSucceeded"
        | "MapIterationFailed"
        | "MapIterationAborted" => {
            return Some(match event_type {
                "MapIterationStarted" => "mapIterationStartedEventDetails",
                "MapIterationSucceeded" => "mapIterationSucceededEventDetails",
                "MapIterationFailed" => "mapIterationFailedEventDetails",
                _ => "mapIterationAbortedEventDetails",
            });
        }
        "EvaluationFailed" => "evaluationFailedEventDetails",
        t if t.ends_with("StateEntered") => "stateEnteredEventDetails",
        t if t.ends_with("StateExited") => "stateExitedEventDetails",
        _ => return None,
    })
}
