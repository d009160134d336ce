//! The Step Functions API driven by the AWS SDK for Rust, as production code would call AWS.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sfn::error::ProvideErrorMetadata;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEventType, StateMachineStatus, StateMachineType};
use common::*;
use runway_asl::TaskRegistry;
use serde_json::{Value, json};

fn code<E: ProvideErrorMetadata>(error: &E) -> String {
    error.code().unwrap_or("<no code>").to_owned()
}

fn message<E: ProvideErrorMetadata>(error: &E) -> String {
    error.message().unwrap_or("").to_owned()
}

#[tokio::test]
async fn state_machines_are_created_described_and_listed() {
    let server = start(TaskRegistry::new()).await;
    let arn = create_machine(&server, "shaper", PASS_MACHINE).await;
    assert_eq!(
        arn,
        "arn:aws:states:us-east-1:123456789012:stateMachine:shaper"
    );

    let described = server
        .client
        .describe_state_machine()
        .state_machine_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(described.name(), "shaper");
    assert_eq!(described.definition(), PASS_MACHINE);
    assert_eq!(described.role_arn(), ROLE);
    assert_eq!(described.status(), Some(&StateMachineStatus::Active));
    assert_eq!(described.r#type(), &StateMachineType::Standard);
    assert!(described.creation_date().secs() > 0);

    // Creating the same machine again is idempotent; a different definition is refused.
    assert_eq!(create_machine(&server, "shaper", PASS_MACHINE).await, arn);
    let error = server
        .client
        .create_state_machine()
        .name("shaper")
        .definition(FAIL_MACHINE)
        .role_arn(ROLE)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&error), "StateMachineAlreadyExists");

    create_machine(&server, "refuser", FAIL_MACHINE).await;
    let listed = server.client.list_state_machines().send().await.unwrap();
    let names: Vec<&str> = listed.state_machines().iter().map(|m| m.name()).collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"shaper") && names.contains(&"refuser"));
    assert!(listed.next_token().is_none());

    // Paging one at a time visits both.
    let first = server
        .client
        .list_state_machines()
        .max_results(1)
        .send()
        .await
        .unwrap();
    assert_eq!(first.state_machines().len(), 1);
    let token = first.next_token().expect("a second page").to_owned();
    let second = server
        .client
        .list_state_machines()
        .max_results(1)
        .next_token(token)
        .send()
        .await
        .unwrap();
    assert_eq!(second.state_machines().len(), 1);
    assert_ne!(
        first.state_machines()[0].name(),
        second.state_machines()[0].name()
    );
    assert!(second.next_token().is_none());
}

#[tokio::test]
async fn bad_machines_and_arns_get_the_aws_errors() {
    let server = start(TaskRegistry::new()).await;
    let invalid = server
        .client
        .create_state_machine()
        .name("broken")
        .definition(r#"{"StartAt": "Missing", "States": {"Here": {"Type": "Succeed"}}}"#)
        .role_arn(ROLE)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&invalid), "InvalidDefinition");
    assert!(
        message(&invalid).contains("Missing"),
        "{}",
        message(&invalid)
    );

    let not_json = server
        .client
        .create_state_machine()
        .name("broken")
        .definition("{not json")
        .role_arn(ROLE)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&not_json), "InvalidDefinition");

    let bad_name = server
        .client
        .create_state_machine()
        .name("has space")
        .definition(PASS_MACHINE)
        .role_arn(ROLE)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&bad_name), "InvalidName");

    let missing = server
        .client
        .describe_state_machine()
        .state_machine_arn("arn:aws:states:us-east-1:123456789012:stateMachine:nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&missing), "StateMachineDoesNotExist");

    let garbage = server
        .client
        .describe_state_machine()
        .state_machine_arn("not-an-arn")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&garbage), "InvalidArn");

    let no_execution = server
        .client
        .describe_execution()
        .execution_arn("arn:aws:states:us-east-1:123456789012:execution:nope:run")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&no_execution), "ExecutionDoesNotExist");

    let no_machine = server
        .client
        .start_execution()
        .state_machine_arn("arn:aws:states:us-east-1:123456789012:stateMachine:nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&no_machine), "StateMachineDoesNotExist");

    let express = server
        .client
        .create_state_machine()
        .name("fast")
        .definition(PASS_MACHINE)
        .role_arn(ROLE)
        .r#type(StateMachineType::Express)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&express), "ValidationException");
}

#[tokio::test]
async fn an_execution_runs_and_is_described_listed_and_its_history_paged() {
    let server = start(TaskRegistry::new()).await;
    let machine = create_machine(&server, "shaper", PASS_MACHINE).await;
    let started = server
        .client
        .start_execution()
        .state_machine_arn(&machine)
        .name("first")
        .input(r#"{"n": 21}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        started.execution_arn(),
        "arn:aws:states:us-east-1:123456789012:execution:shaper:first"
    );
    finished(&server, started.execution_arn()).await;

    let described = server
        .client
        .describe_execution()
        .execution_arn(started.execution_arn())
        .send()
        .await
        .unwrap();
    assert_eq!(described.status(), &ExecutionStatus::Succeeded);
    assert_eq!(described.name(), Some("first"));
    assert_eq!(described.state_machine_arn(), machine);
    assert_eq!(described.input(), Some(r#"{"n": 21}"#));
    let output: Value = serde_json::from_str(described.output().unwrap()).unwrap();
    assert_eq!(output, json!({"doubled": 42}));
    assert!(described.stop_date().unwrap().as_nanos() >= described.start_date().as_nanos());
    assert_eq!(described.start_date(), started.start_date());

    let for_execution = server
        .client
        .describe_state_machine_for_execution()
        .execution_arn(started.execution_arn())
        .send()
        .await
        .unwrap();
    assert_eq!(for_execution.state_machine_arn(), machine);
    assert_eq!(for_execution.definition(), PASS_MACHINE);

    let history = server
        .client
        .get_execution_history()
        .execution_arn(started.execution_arn())
        .send()
        .await
        .unwrap();
    let types: Vec<HistoryEventType> = history
        .events()
        .iter()
        .map(|e| e.r#type().clone())
        .collect();
    assert_eq!(
        types,
        vec![
            HistoryEventType::ExecutionStarted,
            HistoryEventType::PassStateEntered,
            HistoryEventType::PassStateExited,
            HistoryEventType::SucceedStateEntered,
            HistoryEventType::SucceedStateExited,
            HistoryEventType::ExecutionSucceeded,
        ]
    );
    let ids: Vec<i64> = history.events().iter().map(|e| e.id()).collect();
    assert_eq!(ids, (1..=6).collect::<Vec<i64>>());
    let started_details = history.events()[0]
        .execution_started_event_details()
        .unwrap();
    assert_eq!(started_details.input(), Some(r#"{"n": 21}"#));
    assert_eq!(started_details.role_arn(), Some(ROLE));
    let entered = history.events()[1].state_entered_event_details().unwrap();
    assert_eq!(entered.name(), "Shape");

    // Reverse order, two at a time: the same events, newest first.
    let mut paged = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = server
            .client
            .get_execution_history()
            .execution_arn(started.execution_arn())
            .reverse_order(true)
            .max_results(2)
            .set_next_token(token.clone())
            .send()
            .await
            .unwrap();
        assert!(page.events().len() <= 2);
        paged.extend(page.events().iter().map(|e| e.id()));
        match page.next_token() {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(paged, (1..=6).rev().collect::<Vec<i64>>());

    // Without execution data, inputs and outputs are left out.
    let lean = server
        .client
        .get_execution_history()
        .execution_arn(started.execution_arn())
        .include_execution_data(false)
        .send()
        .await
        .unwrap();
    assert!(
        lean.events()[0]
            .execution_started_event_details()
            .unwrap()
            .input()
            .is_none()
    );

    // A token from another listing is refused.
    let bad_token = server
        .client
        .get_execution_history()
        .execution_arn(started.execution_arn())
        .next_token("bm90LWEtdG9rZW4")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&bad_token), "InvalidToken");

    let too_many = server
        .client
        .get_execution_history()
        .execution_arn(started.execution_arn())
        .max_results(1001)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&too_many), "ValidationException");
}

#[tokio::test]
async fn executions_are_listed_newest_first_and_filtered_by_status() {
    let server = start(TaskRegistry::new()).await;
    let shaper = create_machine(&server, "shaper", PASS_MACHINE).await;
    let refuser = create_machine(&server, "refuser", FAIL_MACHINE).await;
    for name in ["one", "two", "three"] {
        let arn = server
            .client
            .start_execution()
            .state_machine_arn(&shaper)
            .name(name)
            .input(r#"{"n": 1}"#)
            .send()
            .await
            .unwrap()
            .execution_arn;
        finished(&server, &arn).await;
    }
    let failed = server
        .client
        .start_execution()
        .state_machine_arn(&refuser)
        .send()
        .await
        .unwrap()
        .execution_arn;
    let description = finished(&server, &failed).await;
    assert_eq!(description.error.as_deref(), Some("Demo.Refused"));

    let listed = server
        .client
        .list_executions()
        .state_machine_arn(&shaper)
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = listed.executions().iter().map(|e| e.name()).collect();
    assert_eq!(names, vec!["three", "two", "one"]);
    assert!(
        listed
            .executions()
            .iter()
            .all(|e| e.status() == &ExecutionStatus::Succeeded)
    );
    assert!(listed.executions().iter().all(|e| e.stop_date().is_some()));

    let none_failed = server
        .client
        .list_executions()
        .state_machine_arn(&shaper)
        .status_filter(ExecutionStatus::Failed)
        .send()
        .await
        .unwrap();
    assert!(none_failed.executions().is_empty());

    let failures = server
        .client
        .list_executions()
        .state_machine_arn(&refuser)
        .status_filter(ExecutionStatus::Failed)
        .send()
        .await
        .unwrap();
    assert_eq!(failures.executions().len(), 1);
    assert_eq!(failures.executions()[0].execution_arn(), failed);

    let described = server
        .client
        .describe_execution()
        .execution_arn(&failed)
        .send()
        .await
        .unwrap();
    assert_eq!(described.status(), &ExecutionStatus::Failed);
    assert_eq!(described.error(), Some("Demo.Refused"));
    assert_eq!(described.cause(), Some("refused on purpose"));
    assert!(described.output().is_none());

    let paged = server
        .client
        .list_executions()
        .state_machine_arn(&shaper)
        .max_results(2)
        .send()
        .await
        .unwrap();
    assert_eq!(paged.executions().len(), 2);
    let rest = server
        .client
        .list_executions()
        .state_machine_arn(&shaper)
        .max_results(2)
        .next_token(paged.next_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        rest.executions()
            .iter()
            .map(|e| e.name())
            .collect::<Vec<_>>(),
        vec!["one"]
    );
    assert!(rest.next_token().is_none());

    let unknown_machine = server
        .client
        .list_executions()
        .state_machine_arn("arn:aws:states:us-east-1:123456789012:stateMachine:nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&unknown_machine), "StateMachineDoesNotExist");
}

#[tokio::test]
async fn execution_names_are_idempotent_and_executions_can_be_stopped() {
    let server = start(TaskRegistry::new()).await;
    let machine = create_machine(&server, "holder", WAITING_MACHINE).await;
    let start = |input: &'static str| {
        server
            .client
            .start_execution()
            .state_machine_arn(&machine)
            .name("job-1")
            .input(input)
            .send()
    };
    let first = start(r#"{"job": 1}"#).await.unwrap();
    let again = start(r#"{"job": 1}"#).await.unwrap();
    assert_eq!(first.execution_arn(), again.execution_arn());
    let conflict = start(r#"{"job": 2}"#).await.unwrap_err();
    assert_eq!(code(&conflict), "ExecutionAlreadyExists");

    let running = server
        .client
        .list_executions()
        .state_machine_arn(&machine)
        .status_filter(ExecutionStatus::Running)
        .send()
        .await
        .unwrap();
    assert_eq!(running.executions().len(), 1);

    let stopped = server
        .client
        .stop_execution()
        .execution_arn(first.execution_arn())
        .error("Operator.Stop")
        .cause("no longer needed")
        .send()
        .await
        .unwrap();
    assert!(stopped.stop_date().secs() >= first.start_date().secs());

    let described = server
        .client
        .describe_execution()
        .execution_arn(first.execution_arn())
        .send()
        .await
        .unwrap();
    assert_eq!(described.status(), &ExecutionStatus::Aborted);
    assert_eq!(described.error(), Some("Operator.Stop"));
    assert_eq!(described.cause(), Some("no longer needed"));

    let history = server
        .client
        .get_execution_history()
        .execution_arn(first.execution_arn())
        .reverse_order(true)
        .max_results(1)
        .send()
        .await
        .unwrap();
    let last = &history.events()[0];
    assert_eq!(last.r#type(), &HistoryEventType::ExecutionAborted);
    let details = last.execution_aborted_event_details().unwrap();
    assert_eq!(details.error(), Some("Operator.Stop"));

    // A closed execution's name cannot be reused, whatever the input.
    let reused = start(r#"{"job": 1}"#).await.unwrap_err();
    assert_eq!(code(&reused), "ExecutionAlreadyExists");

    let bad_input = server
        .client
        .start_execution()
        .state_machine_arn(&machine)
        .input("{not json")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&bad_input), "InvalidExecutionInput");
}

const TOKEN_MACHINE: &str = r#"{
  "StartAt": "AskForApproval",
  "States": {
    "AskForApproval": {
      "Type": "Task",
      "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
      "Parameters": {"FunctionName": "recorder", "Payload": {"token.$": "$$.Task.Token", "job.$": "$.job"}},
      "HeartbeatSeconds": 3600,
      "End": true
    }
  }
}"#;

/// A task handler that hands each task token on to the test, as a queue would.
fn recording_registry() -> (
    TaskRegistry,
    tokio::sync::mpsc::UnboundedReceiver<(String, Value)>,
) {
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    let sender = Arc::new(Mutex::new(sender));
    let tasks = TaskRegistry::new().with("recorder", move |request: runway_asl::TaskRequest| {
        let sender = sender.clone();
        async move {
            let token = request.task_token.clone().unwrap_or_default();
            if let Ok(sender) = sender.lock() {
                let _ = sender.send((token, request.input.clone()));
            }
            Ok(json!({"submitted": true}))
        }
    });
    (tasks, receiver)
}

async fn next_token(
    receiver: &mut tokio::sync::mpsc::UnboundedReceiver<(String, Value)>,
) -> (String, Value) {
    tokio::time::timeout(Duration::from_secs(20), receiver.recv())
        .await
        .expect("no task token within 20 s")
        .expect("the recorder is gone")
}

#[tokio::test]
async fn wait_for_task_token_tasks_are_driven_by_send_task_calls() {
    let (tasks, mut tokens) = recording_registry();
    let server = start(tasks).await;
    let machine = create_machine(&server, "approver", TOKEN_MACHINE).await;

    // Success: heartbeat, then the output becomes the execution's output.
    let approved = server
        .client
        .start_execution()
        .state_machine_arn(&machine)
        .input(r#"{"job": "build"}"#)
        .send()
        .await
        .unwrap()
        .execution_arn;
    let (token, payload) = next_token(&mut tokens).await;
    assert_eq!(payload, json!({"token": token, "job": "build"}));
    server
        .client
        .send_task_heartbeat()
        .task_token(&token)
        .send()
        .await
        .unwrap();
    let bad_output = server
        .client
        .send_task_success()
        .task_token(&token)
        .output("{not json")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&bad_output), "InvalidOutput");
    server
        .client
        .send_task_success()
        .task_token(&token)
        .output(r#"{"approved": true}"#)
        .send()
        .await
        .unwrap();
    let done = finished(&server, &approved).await;
    assert_eq!(done.status, runway_asl::ExecutionStatus::Succeeded);
    let output: Value = serde_json::from_str(done.output.as_deref().unwrap()).unwrap();
    assert_eq!(output, json!({"approved": true}));

    // The token is spent now.
    let spent = server
        .client
        .send_task_success()
        .task_token(&token)
        .output("{}")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&spent), "TaskDoesNotExist");
    let spent_heartbeat = server
        .client
        .send_task_heartbeat()
        .task_token(&token)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&spent_heartbeat), "TaskDoesNotExist");

    // Failure: the error and cause end the execution.
    let rejected = server
        .client
        .start_execution()
        .state_machine_arn(&machine)
        .input(r#"{"job": "deploy"}"#)
        .send()
        .await
        .unwrap()
        .execution_arn;
    let (token, _) = next_token(&mut tokens).await;
    server
        .client
        .send_task_failure()
        .task_token(&token)
        .error("Approval.Rejected")
        .cause("not on a Friday")
        .send()
        .await
        .unwrap();
    let done = finished(&server, &rejected).await;
    assert_eq!(done.status, runway_asl::ExecutionStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("Approval.Rejected"));
    assert_eq!(done.cause.as_deref(), Some("not on a Friday"));

    let history = server
        .client
        .get_execution_history()
        .execution_arn(&rejected)
        .send()
        .await
        .unwrap();
    let types: Vec<&HistoryEventType> = history.events().iter().map(|e| e.r#type()).collect();
    assert!(
        types.contains(&&HistoryEventType::TaskSubmitted),
        "{types:?}"
    );
    assert!(types.contains(&&HistoryEventType::TaskFailed), "{types:?}");

    let garbage = server
        .client
        .send_task_heartbeat()
        .task_token("garbage")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&garbage), "InvalidToken");
    let garbage = server
        .client
        .send_task_failure()
        .task_token("garbage")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&garbage), "InvalidToken");
}

#[tokio::test]
async fn stopping_a_waiting_task_retires_its_token() {
    let (tasks, mut tokens) = recording_registry();
    let server = start(tasks).await;
    let machine = create_machine(&server, "approver", TOKEN_MACHINE).await;
    let arn = server
        .client
        .start_execution()
        .state_machine_arn(&machine)
        .input(r#"{"job": "x"}"#)
        .send()
        .await
        .unwrap()
        .execution_arn;
    let (token, _) = next_token(&mut tokens).await;
    server
        .client
        .stop_execution()
        .execution_arn(&arn)
        .send()
        .await
        .unwrap();
    let late = server
        .client
        .send_task_success()
        .task_token(&token)
        .output("{}")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&late), "TaskDoesNotExist");
    let described = server
        .client
        .describe_execution()
        .execution_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(described.status(), &ExecutionStatus::Aborted);
}
