//! The AWS JSON 1.0 wire protocol as Step Functions speaks it.
//!
//! Every call is `POST /` with `X-Amz-Target: AWSStepFunctions.<Operation>` and a JSON body;
//! every answer is JSON with `Content-Type: application/x-amz-json-1.0`. Errors are HTTP 400
//! with `{"__type": "<Code>", "message": "..."}` and the code in `x-amzn-ErrorType`, which is
//! where the AWS SDKs and the aws CLI look for them.

use std::borrow::Cow;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The media type of AWS JSON 1.0 requests and responses.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// The service prefix of `X-Amz-Target`.
pub const TARGET_PREFIX: &str = "AWSStepFunctions.";

/// The Step Functions operations this server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    CreateStateMachine,
    ListStateMachines,
    DescribeStateMachine,
    DeleteStateMachine,
    DescribeStateMachineForExecution,
    StartExecution,
    DescribeExecution,
    ListExecutions,
    GetExecutionHistory,
    StopExecution,
    SendTaskSuccess,
    SendTaskFailure,
    SendTaskHeartbeat,
}

impl Operation {
    pub const ALL: [Operation; 13] = [
        Operation::CreateStateMachine,
        Operation::ListStateMachines,
        Operation::DescribeStateMachine,
        Operation::DeleteStateMachine,
        Operation::DescribeStateMachineForExecution,
        Operation::StartExecution,
        Operation::DescribeExecution,
        Operation::ListExecutions,
        Operation::GetExecutionHistory,
        Operation::StopExecution,
        Operation::SendTaskSuccess,
        Operation::SendTaskFailure,
        Operation::SendTaskHeartbeat,
    ];

    /// The operation's name as it appears after `AWSStepFunctions.` in `X-Amz-Target`.
    pub fn name(self) -> &'static str {
        match self {
            Operation::CreateStateMachine => "CreateStateMachine",
            Operation::ListStateMachines => "ListStateMachines",
            Operation::DescribeStateMachine => "DescribeStateMachine",
            Operation::DeleteStateMachine => "DeleteStateMachine",
            Operation::DescribeStateMachineForExecution => "DescribeStateMachineForExecution",
            Operation::StartExecution => "StartExecution",
            Operation::DescribeExecution => "DescribeExecution",
            Operation::ListExecutions => "ListExecutions",
            Operation::GetExecutionHistory => "GetExecutionHistory",
            Operation::StopExecution => "StopExecution",
            Operation::SendTaskSuccess => "SendTaskSuccess",
            Operation::SendTaskFailure => "SendTaskFailure",
            Operation::SendTaskHeartbeat => "SendTaskHeartbeat",
        }
    }

    /// The operation named by an `X-Amz-Target` header value.
    pub fn from_target(target: Option<&str>) -> Result<Operation, ApiError> {
        let Some(target) = target else {
            return Err(ApiError::unknown_operation(
                "missing X-Amz-Target header: expected AWSStepFunctions.<Operation>",
            ));
        };
        let name = target.strip_prefix(TARGET_PREFIX).ok_or_else(|| {
            ApiError::unknown_operation(format!(
                "X-Amz-Target '{target}' is not a Step Functions operation: expected AWSStepFunctions.<Operation>"
            ))
        })?;
        Operation::ALL
            .into_iter()
            .find(|operation| operation.name() == name)
            .ok_or_else(|| {
                ApiError::unknown_operation(format!(
                    "operation '{name}' is not supported by runway's local Step Functions"
                ))
            })
    }
}

/// An error answered in the AWS JSON 1.0 error shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Cow<'static, str>,
    pub message: String,
}

impl ApiError {
    /// A client error (HTTP 400) with the given AWS error code.
    pub fn new(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn unknown_operation(message: impl Into<String>) -> Self {
        Self::new("UnknownOperationException", message)
    }

    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new("SerializationException", message)
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new("ValidationException", message)
    }

    /// A required member that the request left out, worded as AWS words it.
    pub fn missing_member(member: &str) -> Self {
        Self::validation(format!(
            "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
        ))
    }

    pub fn invalid_token(message: impl Into<String>) -> Self {
        Self::new("InvalidToken", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: Cow::Borrowed("InternalFailure"),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "__type")]
    code: &'a str,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&ErrorBody {
            code: &self.code,
            message: &self.message,
        })
        .unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        if let Ok(code) = HeaderValue::from_str(&self.code) {
            headers.insert("x-amzn-ErrorType", code);
        }
        response
    }
}

/// A successful answer: the operation's output shape as JSON.
pub fn json_response<T: Serialize>(output: &T) -> Response {
    match serde_json::to_vec(output) {
        Ok(body) => {
            let mut response = (StatusCode::OK, body).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            response
        }
        Err(error) => {
            ApiError::internal(format!("could not encode the response: {error}")).into_response()
        }
    }
}

/// The value of `X-Amz-Target`, if present and readable.
pub fn target_header(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-amz-target").and_then(|v| v.to_str().ok())
}

/// Decodes a request body into an operation's input shape.
///
/// Bytes that are not a JSON object, and members of the wrong type, are a
/// `SerializationException`, as on AWS. An empty body reads as `{}`.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|error| {
        ApiError::serialization(format!("request body is not valid JSON: {error}"))
    })?;
    if !value.is_object() {
        return Err(ApiError::serialization(
            "request body must be a JSON object",
        ));
    }
    serde_json::from_value(value).map_err(|error| {
        ApiError::serialization(format!(
            "request body does not match the operation's input: {error}"
        ))
    })
}

/// A required member: present, or the AWS ValidationException for a null member.
pub fn required<T>(value: Option<T>, member: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::missing_member(member))
}

/// Step Functions timestamps on the wire: epoch seconds, a number with milliseconds.
pub fn epoch_seconds(time: &DateTime<Utc>) -> f64 {
    time.timestamp_millis() as f64 / 1000.0
}

/// `serde(serialize_with)` for timestamps.
pub fn serialize_timestamp<S: serde::Serializer>(
    time: &DateTime<Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(epoch_seconds(time))
}

/// `serde(serialize_with)` for optional timestamps (used with `skip_serializing_if`).
pub fn serialize_optional_timestamp<S: serde::Serializer>(
    time: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => serializer.serialize_f64(epoch_seconds(time)),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        state_machine_arn: Option<String>,
        max_results: Option<i64>,
    }

    #[test]
    fn every_operation_round_trips_through_its_target() {
        for operation in Operation::ALL {
            let target = format!("AWSStepFunctions.{}", operation.name());
            assert_eq!(Operation::from_target(Some(&target)), Ok(operation));
        }
    }

    #[test]
    fn unknown_or_foreign_targets_are_unknown_operations() {
        for target in [
            None,
            Some("AWSStepFunctions.CreateActivity"),
            Some("DynamoDB_20120810.GetItem"),
            Some("createstatemachine"),
            Some("AWSStepFunctions."),
        ] {
            let error = Operation::from_target(target).unwrap_err();
            assert_eq!(error.code, "UnknownOperationException", "{target:?}");
            assert_eq!(error.status, StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn malformed_bodies_are_serialization_errors() {
        for body in [
            &b"{"[..],
            b"[]",
            b"\"x\"",
            b"not json",
            b"{\"maxResults\": \"ten\"}",
        ] {
            let error = parse_body::<Probe>(body).unwrap_err();
            assert_eq!(error.code, "SerializationException", "{body:?}");
        }
    }

    #[test]
    fn an_empty_body_reads_as_an_empty_object_and_unknown_members_are_ignored() {
        let probe: Probe = parse_body(b"").unwrap();
        assert!(probe.state_machine_arn.is_none());
        let probe: Probe =
            parse_body(br#"{"stateMachineArn": "arn", "maxResults": 3, "extra": true}"#).unwrap();
        assert_eq!(probe.state_machine_arn.as_deref(), Some("arn"));
        assert_eq!(probe.max_results, Some(3));
    }

    #[test]
    fn a_missing_required_member_names_the_member() {
        let error = required::<String>(None, "executionArn").unwrap_err();
        assert_eq!(error.code, "ValidationException");
        assert!(
            error.message.contains("'executionArn'"),
            "{}",
            error.message
        );
    }

    #[test]
    fn timestamps_are_epoch_seconds_with_milliseconds() {
        let time = DateTime::parse_from_rfc3339("2026-01-01T00:00:01.250Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(epoch_seconds(&time), 1_767_225_601.25);
    }

    #[tokio::test]
    async fn errors_carry_the_aws_envelope_and_header() {
        let response = ApiError::new("ExecutionDoesNotExist", "no such execution").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            response.headers()["x-amzn-ErrorType"],
            "ExecutionDoesNotExist"
        );
        assert_eq!(response.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"__type": "ExecutionDoesNotExist", "message": "no such execution"})
        );
    }
}
