//! A local Step Functions server on 127.0.0.1:0 and an AWS SDK client pointed at it.
#![allow(dead_code)]

use std::time::Duration;

use aws_sdk_sfn::config::{BehaviorVersion, Credentials, Region};
use runway_asl::{ExecutionDescription, StepFunctions, TaskRegistry};
use runway_clock::SystemClock;

pub struct Server {
    pub endpoint: String,
    pub service: StepFunctions,
    pub client: aws_sdk_sfn::Client,
}

pub async fn start(tasks: TaskRegistry) -> Server {
    let service = StepFunctions::new(SystemClock::shared(), tasks);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(runway_sfn_local::serve(listener, service.clone()));
    let client = client(&endpoint);
    Server {
        endpoint,
        service,
        client,
    }
}

/// An SDK client with static test credentials: requests are SigV4-signed as for real AWS.
pub fn client(endpoint: &str) -> aws_sdk_sfn::Client {
    let config = aws_sdk_sfn::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "runway-tests"))
        .build();
    aws_sdk_sfn::Client::from_conf(config)
}

pub const ROLE: &str = "arn:aws:iam::123456789012:role/test-role";

pub async fn create_machine(server: &Server, name: &str, definition: &str) -> String {
    server
        .client
        .create_state_machine()
        .name(name)
        .definition(definition)
        .role_arn(ROLE)
        .send()
        .await
        .unwrap()
        .state_machine_arn
}

/// Waits (bounded) for an execution to end.
pub async fn finished(server: &Server, execution_arn: &str) -> ExecutionDescription {
    tokio::time::timeout(
        Duration::from_secs(20),
        server.service.await_execution(execution_arn),
    )
    .await
    .expect("the execution did not end within 20 s")
    .unwrap()
}

pub const PASS_MACHINE: &str = r#"{
  "StartAt": "Shape",
  "States": {
    "Shape": {"Type": "Pass", "Parameters": {"doubled.$": "States.MathAdd($.n, $.n)"}, "Next": "Done"},
    "Done": {"Type": "Succeed"}
  }
}"#;

/// Stays RUNNING for an hour of wall time, for stop and idempotency checks.
pub const WAITING_MACHINE: &str = r#"{
  "StartAt": "Hold",
  "States": {"Hold": {"Type": "Wait", "Seconds": 3600, "End": true}}
}"#;

pub const FAIL_MACHINE: &str = r#"{
  "StartAt": "Refuse",
  "States": {"Refuse": {"Type": "Fail", "Error": "Demo.Refused", "Cause": "refused on purpose"}}
}"#;
