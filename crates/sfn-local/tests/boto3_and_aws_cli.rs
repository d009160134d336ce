//! The API driven by boto3 and by the aws CLI, the way people poke at Step Functions by hand.
//! Both come from the project's Python tools (`scripts/setup.sh`); no network is used.

mod common;

use std::path::PathBuf;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use runway_asl::{ExecutionStatus, TaskRegistry};
use serde_json::{Value, json};

fn tools() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/venv/bin");
    assert!(
        bin.join("python").exists() && bin.join("aws").exists(),
        "boto3 and the aws CLI are missing from {}: run scripts/setup.sh",
        bin.display()
    );
    bin
}

/// A command with static test credentials and nothing read from the user's AWS set-up.
fn offline(program: PathBuf) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    command
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", env!("CARGO_TARGET_TMPDIR"))
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_PAGER", "")
        .kill_on_drop(true);
    command
}

async fn finish(command: &mut tokio::process::Command) -> Output {
    tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the command did not finish within 60 s")
        .unwrap()
}

fn stdout_json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn aws(endpoint: &str, args: &[&str]) -> Output {
    let mut command = offline(tools().join("aws"));
    command
        .args([
            "stepfunctions",
            "--endpoint-url",
            endpoint,
            "--output",
            "json",
        ])
        .args(args);
    finish(&mut command).await
}

const BOTO3_SCRIPT: &str = r#"
import json, sys, time
import boto3
from botocore.exceptions import ClientError

endpoint, pass_machine, token_machine = sys.argv[1], sys.argv[2], sys.argv[3]
sfn = boto3.client("stepfunctions", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="test", aws_secret_access_key="test")
role = "arn:aws:iam::123456789012:role/test-role"
shaper = sfn.create_state_machine(name="shaper", definition=pass_machine, roleArn=role)["stateMachineArn"]
approver = sfn.create_state_machine(name="approver", definition=token_machine, roleArn=role)["stateMachineArn"]

started = sfn.start_execution(stateMachineArn=shaper, name="from-boto3", input=json.dumps({"n": 4}))
for _ in range(200):
    described = sfn.describe_execution(executionArn=started["executionArn"])
    if described["status"] != "RUNNING":
        break
    time.sleep(0.05)

pages = sfn.get_paginator("get_execution_history").paginate(
    executionArn=started["executionArn"], PaginationConfig={"PageSize": 2})
events = [event for page in pages for event in page["events"]]

try:
    sfn.describe_execution(executionArn="arn:aws:states:us-east-1:123456789012:execution:shaper:nope")
    missing = None
except ClientError as error:
    missing = error.response["Error"]["Code"]

try:
    sfn.create_state_machine(name="broken", definition="{}", roleArn=role)
    invalid = None
except ClientError as error:
    invalid = error.response["Error"]["Code"]

awaiting = sfn.start_execution(stateMachineArn=approver, name="awaiting", input=json.dumps({"job": "boto3"}))
# While it runs, the same name and input start nothing new.
again = sfn.start_execution(stateMachineArn=approver, name="awaiting", input=json.dumps({"job": "boto3"}))
print(json.dumps({
    "same_arn": awaiting["executionArn"] == again["executionArn"],
    "start_date_is_datetime": hasattr(started["startDate"], "timestamp"),
    "status": described["status"],
    "output": json.loads(described["output"]),
    "event_types": [event["type"] for event in events],
    "event_ids": [event["id"] for event in events],
    "machines": sorted(m["name"] for m in sfn.list_state_machines()["stateMachines"]),
    "missing": missing,
    "invalid": invalid,
    "awaiting": awaiting["executionArn"],
}))
"#;

const TOKEN_MACHINE: &str = r#"{
  "StartAt": "AskForApproval",
  "States": {
    "AskForApproval": {
      "Type": "Task",
      "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
      "Parameters": {"FunctionName": "recorder", "Payload": {"token.$": "$$.Task.Token"}},
      "End": true
    }
  }
}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_and_the_aws_cli_drive_the_api() {
    let bin = tools();
    let (sender, mut tokens) = tokio::sync::mpsc::unbounded_channel::<String>();
    let sender = Arc::new(Mutex::new(sender));
    let tasks = TaskRegistry::new().with("recorder", move |request: runway_asl::TaskRequest| {
        let sender = sender.clone();
        async move {
            if let (Ok(sender), Some(token)) = (sender.lock(), request.task_token) {
                let _ = sender.send(token);
            }
            Ok(json!({}))
        }
    });
    let server = start(tasks).await;

    // boto3: machines, an execution, paginated history, error codes, a task waiting for its token.
    let mut python = offline(bin.join("python"));
    python.args([
        "-c",
        BOTO3_SCRIPT,
        &server.endpoint,
        PASS_MACHINE,
        TOKEN_MACHINE,
    ]);
    let seen = stdout_json(&finish(&mut python).await);
    assert_eq!(seen["same_arn"], true, "{seen}");
    assert_eq!(seen["start_date_is_datetime"], true, "{seen}");
    assert_eq!(seen["status"], "SUCCEEDED", "{seen}");
    assert_eq!(seen["output"], json!({"doubled": 8}));
    assert_eq!(
        seen["event_types"],
        json!([
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
            "SucceedStateEntered",
            "SucceedStateExited",
            "ExecutionSucceeded"
        ])
    );
    assert_eq!(seen["event_ids"], json!([1, 2, 3, 4, 5, 6]));
    assert_eq!(seen["machines"], json!(["approver", "shaper"]));
    assert_eq!(seen["missing"], "ExecutionDoesNotExist");
    assert_eq!(seen["invalid"], "InvalidDefinition");

    // The aws CLI completes the task boto3's execution is waiting on.
    let token = tokio::time::timeout(Duration::from_secs(20), tokens.recv())
        .await
        .expect("no task token within 20 s")
        .unwrap();
    let sent = aws(
        &server.endpoint,
        &[
            "send-task-success",
            "--task-token",
            &token,
            "--task-output",
            r#"{"approved": true}"#,
        ],
    )
    .await;
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let awaiting = seen["awaiting"].as_str().unwrap();
    let done = finished(&server, awaiting).await;
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(done.output.as_deref(), Some(r#"{"approved":true}"#));

    // The aws CLI: start, describe, list; and an error as the CLI shows it.
    let machines = stdout_json(&aws(&server.endpoint, &["list-state-machines"]).await);
    let shaper = machines["stateMachines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "shaper")
        .and_then(|m| m["stateMachineArn"].as_str())
        .unwrap()
        .to_owned();
    let started = stdout_json(
        &aws(
            &server.endpoint,
            &[
                "start-execution",
                "--state-machine-arn",
                &shaper,
                "--name",
                "from-cli",
                "--input",
                r#"{"n": 5}"#,
            ],
        )
        .await,
    );
    let execution = started["executionArn"].as_str().unwrap().to_owned();
    assert!(
        execution.ends_with(":execution:shaper:from-cli"),
        "{started}"
    );
    finished(&server, &execution).await;
    let described = stdout_json(
        &aws(
            &server.endpoint,
            &["describe-execution", "--execution-arn", &execution],
        )
        .await,
    );
    assert_eq!(described["status"], "SUCCEEDED");
    assert_eq!(described["output"], r#"{"doubled":10}"#);

    let listed = stdout_json(
        &aws(
            &server.endpoint,
            &[
                "list-executions",
                "--state-machine-arn",
                &shaper,
                "--status-filter",
                "SUCCEEDED",
            ],
        )
        .await,
    );
    let names: Vec<&str> = listed["executions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(names, vec!["from-cli", "from-boto3"]);

    let missing = aws(
        &server.endpoint,
        &[
            "describe-execution",
            "--execution-arn",
            "arn:aws:states:us-east-1:123456789012:execution:shaper:nope",
        ],
    )
    .await;
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("ExecutionDoesNotExist"), "{stderr}");
}
