//! Request and response members of the Step Functions API, named exactly as on the wire.
//!
//! Inputs read every member as optional, so that a missing required member becomes the
//! AWS `ValidationException` (see [`crate::protocol::required`]) rather than a decoding error.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::protocol::{serialize_optional_timestamp, serialize_timestamp};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateStateMachineInput {
    pub name: Option<String>,
    pub definition: Option<String>,
    pub role_arn: Option<String>,
    #[serde(rename = "type")]
    pub machine_type: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateStateMachineOutput {
    pub state_machine_arn: String,
    #[serde(serialize_with = "serialize_timestamp")]
    pub creation_date: DateTime<Utc>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListInput {
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateMachineListItem {
    pub state_machine_arn: String,
    pub name: String,
    #[serde(rename = "type")]
    pub machine_type: &'static str,
    #[serde(serialize_with = "serialize_timestamp")]
    pub creation_date: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListStateMachinesOutput {
    pub state_machines: Vec<StateMachineListItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateMachineArnInput {
    pub state_machine_arn: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggingConfiguration {
    pub level: &'static str,
    pub include_execution_data: bool,
}

impl LoggingConfiguration {
    pub const OFF: LoggingConfiguration = LoggingConfiguration {
        level: "OFF",
        include_execution_data: false,
    };
}

#[derive(Debug, Serialize)]
pub struct TracingConfiguration {
    pub enabled: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeStateMachineOutput {
    pub state_machine_arn: String,
    pub name: String,
    pub status: &'static str,
    pub definition: String,
    pub role_arn: String,
    #[serde(rename = "type")]
    pub machine_type: &'static str,
    #[serde(serialize_with = "serialize_timestamp")]
    pub creation_date: DateTime<Utc>,
    pub logging_configuration: LoggingConfiguration,
    pub tracing_configuration: TracingConfiguration,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeStateMachineForExecutionOutput {
    pub state_machine_arn: String,
    pub name: String,
    pub definition: String,
    pub role_arn: String,
    #[serde(serialize_with = "serialize_timestamp")]
    pub update_date: DateTime<Utc>,
    pub logging_configuration: LoggingConfiguration,
    pub tracing_configuration: TracingConfiguration,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartExecutionInput {
    pub state_machine_arn: Option<String>,
    pub name: Option<String>,
    pub input: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartExecutionOutput {
    pub execution_arn: String,
    #[serde(serialize_with = "serialize_timestamp")]
    pub start_date: DateTime<Utc>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionArnInput {
    pub execution_arn: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DataDetails {
    pub included: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeExecutionOutput {
    pub execution_arn: String,
    pub state_machine_arn: String,
    pub name: String,
    pub status: String,
    #[serde(serialize_with = "serialize_timestamp")]
    pub start_date: DateTime<Utc>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_optional_timestamp"
    )]
    pub stop_date: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    pub input_details: DataDetails,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_details: Option<DataDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    pub redrive_count: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListExecutionsInput {
    pub state_machine_arn: Option<String>,
    pub status_filter: Option<String>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionListItem {
    pub execution_arn: String,
    pub state_machine_arn: String,
    pub name: String,
    pub status: String,
    #[serde(serialize_with = "serialize_timestamp")]
    pub start_date: DateTime<Utc>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_optional_timestamp"
    )]
    pub stop_date: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListExecutionsOutput {
    pub executions: Vec<ExecutionListItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetExecutionHistoryInput {
    pub execution_arn: Option<String>,
    pub max_results: Option<i64>,
    pub reverse_order: Option<bool>,
    pub next_token: Option<String>,
    pub include_execution_data: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetExecutionHistoryOutput {
    pub events: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopExecutionInput {
    pub execution_arn: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StopExecutionOutput {
    #[serde(serialize_with = "serialize_timestamp")]
    pub stop_date: DateTime<Utc>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendTaskSuccessInput {
    pub task_token: Option<String>,
    pub output: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendTaskFailureInput {
    pub task_token: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendTaskHeartbeatInput {
    pub task_token: Option<String>,
}

/// The empty output of operations that answer nothing but success.
#[derive(Debug, Serialize)]
pub struct Empty {}
