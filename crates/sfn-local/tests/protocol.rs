//! The AWS JSON 1.0 wire format, checked byte for byte with plain HTTP requests.

mod common;

use std::collections::HashMap;

use common::*;
use runway_asl::TaskRegistry;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    body: Value,
}

async fn send(
    endpoint: &str,
    method: &str,
    target: Option<&str>,
    extra: &[(&str, &str)],
    body: &str,
) -> Reply {
    let address = endpoint.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut request = format!(
        "{method} / HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(target) = target {
        request.push_str(&format!("X-Amz-Target: {target}\r\n"));
    }
    for (name, value) in extra {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap()
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn assert_error(reply: &Reply, code: &str) {
    assert_eq!(reply.status, 400, "{:?}", reply.body);
    assert_eq!(reply.body["__type"], code, "{:?}", reply.body);
    assert!(
        reply.body["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{:?}",
        reply.body
    );
    assert_eq!(
        reply.headers.get("x-amzn-errortype").map(String::as_str),
        Some(code)
    );
    assert_eq!(
        reply.headers.get("content-type").map(String::as_str),
        Some("application/x-amz-json-1.0")
    );
}

#[tokio::test]
async fn signed_requests_are_accepted_without_checking_the_signature() {
    let server = start(TaskRegistry::new()).await;
    let signature = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/states/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=0000000000000000000000000000000000000000000000000000000000000000";
    let reply = send(
        &server.endpoint,
        "POST",
        Some("AWSStepFunctions.ListStateMachines"),
        &[
            ("Authorization", signature),
            ("X-Amz-Date", "20260101T000000Z"),
        ],
        "{}",
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, json!({"stateMachines": []}));
    assert_eq!(
        reply.headers.get("content-type").map(String::as_str),
        Some("application/x-amz-json-1.0")
    );
    assert!(reply.headers.contains_key("x-amzn-requestid"));
}

#[tokio::test]
async fn members_are_named_and_typed_as_on_aws() {
    let server = start(TaskRegistry::new()).await;
    let created = send(
        &server.endpoint,
        "POST",
        Some("AWSStepFunctions.CreateStateMachine"),
        &[],
        &json!({"name": "shaper", "definition": PASS_MACHINE, "roleArn": ROLE}).to_string(),
    )
    .await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let machine = created.body["stateMachineArn"].as_str().unwrap().to_owned();
    assert!(created.body["creationDate"].is_f64(), "{:?}", created.body);

    let started = send(
        &server.endpoint,
        "POST",
        Some("AWSStepFunctions.StartExecution"),
        &[],
        &json!({"stateMachineArn": machine, "name": "run-1", "input": "{\"n\": 2}"}).to_string(),
    )
    .await;
    assert_eq!(started.status, 200, "{:?}", started.body);
    assert!(started.body["startDate"].is_number(), "{:?}", started.body);
    let execution = started.body["executionArn"].as_str().unwrap().to_owned();
    finished(&server, &execution).await;

    let described = send(
        &server.endpoint,
        "POST",
        Some("AWSStepFunctions.DescribeExecution"),
        &[],
        &json!({"executionArn": execution}).to_string(),
    )
    .await;
    let body = described.body.as_object().unwrap();
    for member in [
        "executionArn",
        "stateMachineArn",
        "name",
        "status",
        "startDate",
        "stopDate",
        "input",
        "inputDetails",
        "output",
        "outputDetails",
    ] {
        assert!(
            body.contains_key(member),
            "DescribeExecution lacks {member}: {body:?}"
        );
    }
    assert_eq!(body["status"], "SUCCEEDED");
    assert_eq!(body["output"], "{\"doubled\":4}");
    assert!(!body.contains_key("error"));

    let history = send(
        &server.endpoint,
        "POST",
        Some("AWSStepFunctions.GetExecutionHistory"),
        &[],
        &json!({"executionArn": execution, "maxResults": 1}).to_string(),
    )
    .await;
    let first = &history.body["events"][0];
    assert_eq!(first["type"], "ExecutionStarted");
    assert_eq!(first["id"], 1);
    assert_eq!(first["previousEventId"], 0);
    assert!(first["timestamp"].is_number());
    assert_eq!(first["executionStartedEventDetails"]["input"], "{\"n\": 2}");
    assert!(history.body["nextToken"].is_string());

    let stopped = send(
        &server.endpoint,
        "POST",
        Some("AWSStepFunctions.StopExecution"),
        &[],
        &json!({"executionArn": execution}).to_string(),
    )
    .await;
    assert!(stopped.body["stopDate"].is_number(), "{:?}", stopped.body);
}

#[tokio::test]
async fn unknown_operations_are_refused() {
    let server = start(TaskRegistry::new()).await;
    for target in [
        Some("AWSStepFunctions.CreateActivity"),
        Some("DynamoDB_20120810.ListTables"),
        None,
    ] {
        let reply = send(&server.endpoint, "POST", target, &[], "{}").await;
        assert_error(&reply, "UnknownOperationException");
    }
    let get = send(
        &server.endpoint,
        "GET",
        Some("AWSStepFunctions.ListStateMachines"),
        &[],
        "",
    )
    .await;
    assert_error(&get, "UnknownOperationException");
}

#[tokio::test]
async fn malformed_requests_are_serialization_or_validation_errors() {
    let server = start(TaskRegistry::new()).await;
    let endpoint = &server.endpoint;
    let cases = [
        (
            "AWSStepFunctions.ListStateMachines",
            "{\"maxResults\":",
            "SerializationException",
        ),
        (
            "AWSStepFunctions.ListStateMachines",
            "[1, 2]",
            "SerializationException",
        ),
        (
            "AWSStepFunctions.StartExecution",
            "{\"stateMachineArn\": 5}",
            "SerializationException",
        ),
        (
            "AWSStepFunctions.DescribeExecution",
            "{}",
            "ValidationException",
        ),
        (
            "AWSStepFunctions.CreateStateMachine",
            "{\"name\": \"x\"}",
            "ValidationException",
        ),
        (
            "AWSStepFunctions.SendTaskSuccess",
            "{\"taskToken\": \"t\"}",
            "ValidationException",
        ),
        (
            "AWSStepFunctions.ListStateMachines",
            "{\"maxResults\": 5000}",
            "ValidationException",
        ),
        (
            "AWSStepFunctions.ListStateMachines",
            "{\"nextToken\": \"%%%\"}",
            "InvalidToken",
        ),
    ];
    for (target, body, code) in cases {
        let reply = send(endpoint, "POST", Some(target), &[], body).await;
        assert_error(&reply, code);
    }
    let missing = send(
        endpoint,
        "POST",
        Some("AWSStepFunctions.DescribeExecution"),
        &[],
        "{}",
    )
    .await;
    assert!(
        missing.body["message"]
            .as_str()
            .unwrap()
            .contains("executionArn")
    );

    let machine = create_machine(&server, "shaper", PASS_MACHINE).await;
    let bad_filter = send(
        endpoint,
        "POST",
        Some("AWSStepFunctions.ListExecutions"),
        &[],
        &json!({"stateMachineArn": machine, "statusFilter": "SLEEPING"}).to_string(),
    )
    .await;
    assert_error(&bad_filter, "ValidationException");
    let pending_redrive = send(
        endpoint,
        "POST",
        Some("AWSStepFunctions.ListExecutions"),
        &[],
        &json!({"stateMachineArn": machine, "statusFilter": "PENDING_REDRIVE"}).to_string(),
    )
    .await;
    assert_eq!(pending_redrive.body, json!({"executions": []}));
}
