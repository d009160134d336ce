//! The Step Functions service layer: state machines, executions, idempotency, tokens, stop.

use std::time::Duration;

use runway_asl::{ExecutionStatus, ServiceError, StepFunctions, TaskRegistry};
use runway_clock::VirtualClock;
use serde_json::{Value, json};
use tokio::sync::mpsc;

const WAITING: &str =
    r#"{"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 60, "End": true}}}"#;
const PASSING: &str = r#"{"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": true}}}"#;

fn service() -> StepFunctions {
    StepFunctions::new(VirtualClock::new().shared(), TaskRegistry::new())
}

#[tokio::test(start_paused = true)]
async fn creating_a_machine_is_idempotent_for_the_same_definition() {
    let sfn = service();
    let first = sfn.create_state_machine("job", PASSING, None).unwrap();
    assert_eq!(
        first.arn,
        "arn:aws:states:us-east-1:123456789012:stateMachine:job"
    );
    assert_eq!(first.kind, "STANDARD");
    assert_eq!(first.status, "ACTIVE");
    let again = sfn.create_state_machine("job", PASSING, None).unwrap();
    assert_eq!(again, first);
    let other = sfn.create_state_machine("job", WAITING, None).unwrap_err();
    assert_eq!(other.aws_code(), "StateMachineAlreadyExists");
    assert_eq!(sfn.list_state_machines().len(), 1);
    assert_eq!(sfn.describe_state_machine(&first.arn).unwrap(), first);
}

#[tokio::test(start_paused = true)]
async fn bad_definitions_names_and_arns_are_rejected() {
    let sfn = service();
    let invalid = sfn
        .create_state_machine(
            "m",
            r#"{"StartAt": "A", "States": {"A": {"Type": "Pass"}}}"#,
            None,
        )
        .unwrap_err();
    assert_eq!(invalid.aws_code(), "InvalidDefinition");
    assert!(
        invalid.to_string().contains("'A'") && invalid.to_string().contains("Next"),
        "{invalid}"
    );
    for name in ["", "has space", "a*b", "x[1]", "tab\there", &"n".repeat(81)] {
        let error = sfn.create_state_machine(name, PASSING, None).unwrap_err();
        assert_eq!(error.aws_code(), "InvalidName", "{name:?}");
    }
    assert_eq!(
        sfn.describe_state_machine("nonsense")
            .unwrap_err()
            .aws_code(),
        "InvalidArn"
    );
    assert_eq!(
        sfn.describe_state_machine("arn:aws:states:us-east-1:123456789012:stateMachine:none")
            .unwrap_err()
            .aws_code(),
        "StateMachineDoesNotExist"
    );
    assert_eq!(
        sfn.describe_execution("arn:aws:states:us-east-1:123456789012:execution:none:x")
            .unwrap_err()
            .aws_code(),
        "ExecutionDoesNotExist"
    );
}

#[tokio::test(start_paused = true)]
async fn executions_run_and_are_described_listed_and_recorded() {
    let sfn = service();
    let machine = sfn
        .create_state_machine("echo", PASSING, Some("arn:aws:iam::123456789012:role/r"))
        .unwrap();
    let started = sfn
        .start_execution(&machine.arn, Some("first"), Some(r#"{"a": 1}"#))
        .unwrap();
    assert_eq!(
        started.execution_arn,
        "arn:aws:states:us-east-1:123456789012:execution:echo:first"
    );
    let done = sfn.await_execution(&started.execution_arn).await.unwrap();
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(
        serde_json::from_str::<Value>(done.output.as_deref().unwrap()).unwrap(),
        json!({"a": 1})
    );
    assert!(done.stop_date.is_some());
    let unnamed = sfn.start_execution(&machine.arn, None, None).unwrap();
    assert_eq!(unnamed.name.len(), 36, "a UUID name");
    sfn.await_execution(&unnamed.execution_arn).await.unwrap();
    let all = sfn.list_executions(&machine.arn, None).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].name, unnamed.name, "newest first");
    let succeeded = sfn
        .list_executions(&machine.arn, Some(ExecutionStatus::Succeeded))
        .unwrap();
    assert_eq!(succeeded.len(), 2);
    let history = sfn
        .get_execution_history(&started.execution_arn, false)
        .unwrap();
    assert_eq!(history.first().unwrap().event_type, "ExecutionStarted");
    assert_eq!(
        history[0].detail().unwrap()["roleArn"],
        json!("arn:aws:iam::123456789012:role/r")
    );
    let reversed = sfn
        .get_execution_history(&started.execution_arn, true)
        .unwrap();
    assert_eq!(reversed.first().unwrap().event_type, "ExecutionSucceeded");
    assert_eq!(
        sfn.history_length(&started.execution_arn).unwrap(),
        history.len()
    );
    assert!(
        sfn.history_length("arn:aws:states:us-east-1:123456789012:execution:x:none")
            .is_err()
    );
}

#[tokio::test(start_paused = true)]
async fn execution_names_are_idempotent_like_aws() {
    let sfn = service();
    let machine = sfn.create_state_machine("nap", WAITING, None).unwrap();
    let first = sfn
        .start_execution(&machine.arn, Some("job-1"), Some(r#"{"job": 1}"#))
        .unwrap();
    // Same name, same input (other key order and spacing), still running: the same execution.
    let again = sfn
        .start_execution(&machine.arn, Some("job-1"), Some(r#"{ "job" : 1 }"#))
        .unwrap();
    assert_eq!(again.execution_arn, first.execution_arn);
    assert_eq!(again.start_date, first.start_date);
    assert_eq!(sfn.list_executions(&machine.arn, None).unwrap().len(), 1);
    // Same name, other input: refused.
    let other = sfn
        .start_execution(&machine.arn, Some("job-1"), Some(r#"{"job": 2}"#))
        .unwrap_err();
    assert_eq!(other.aws_code(), "ExecutionAlreadyExists");
    // Once closed, the name cannot be reused.
    sfn.await_execution(&first.execution_arn).await.unwrap();
    let closed = sfn
        .start_execution(&machine.arn, Some("job-1"), Some(r#"{"job": 1}"#))
        .unwrap_err();
    assert_eq!(closed.aws_code(), "ExecutionAlreadyExists");
}

#[tokio::test(start_paused = true)]
async fn bad_execution_names_and_inputs_are_rejected() {
    let sfn = service();
    let machine = sfn.create_state_machine("m", PASSING, None).unwrap();
    assert_eq!(
        sfn.start_execution(&machine.arn, Some("bad name"), None)
            .unwrap_err()
            .aws_code(),
        "InvalidName"
    );
    assert_eq!(
        sfn.start_execution(&machine.arn, Some("ok"), Some("{not json"))
            .unwrap_err()
            .aws_code(),
        "InvalidExecutionInput"
    );
    assert_eq!(
        sfn.start_execution(
            "arn:aws:states:us-east-1:123456789012:stateMachine:none",
            None,
            None
        )
        .unwrap_err()
        .aws_code(),
        "StateMachineDoesNotExist"
    );
}

#[tokio::test(start_paused = true)]
async fn stopping_an_execution_aborts_it() {
    let sfn = service();
    let machine = sfn.create_state_machine("nap", WAITING, None).unwrap();
    let execution = sfn
        .start_execution(&machine.arn, Some("stopme"), None)
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    sfn.stop_execution(
        &execution.execution_arn,
        Some("Operator.Stop"),
        Some("by hand"),
    )
    .unwrap();
    let done = sfn.await_execution(&execution.execution_arn).await.unwrap();
    assert_eq!(done.status, ExecutionStatus::Aborted);
    assert_eq!(done.error.as_deref(), Some("Operator.Stop"));
    let history = sfn
        .get_execution_history(&execution.execution_arn, false)
        .unwrap();
    let last = history.last().unwrap();
    assert_eq!(last.event_type, "ExecutionAborted");
    // Nothing runs after the stop.
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(
        sfn.get_execution_history(&execution.execution_arn, false)
            .unwrap()
            .len(),
        history.len()
    );
    assert_eq!(
        sfn.list_executions(&machine.arn, Some(ExecutionStatus::Aborted))
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn task_tokens_flow_through_the_service() {
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let tasks = TaskRegistry::new().with("Admit", move |request| {
        let sender = sender.clone();
        async move {
            let _ = sender.send(request.task_token.unwrap_or_default());
            Ok(json!({}))
        }
    });
    let sfn = StepFunctions::new(VirtualClock::new().shared(), tasks);
    let definition = json!({"StartAt": "Admit", "States": {"Admit": {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:Admit", "Payload": {"token.$": "$$.Task.Token"}},
        "HeartbeatSeconds": 30,
        "End": true
    }}});
    let machine = sfn
        .create_state_machine("admit", &definition.to_string(), None)
        .unwrap();
    let mut live = sfn.subscribe();
    let first = sfn.start_execution(&machine.arn, Some("ok"), None).unwrap();
    let token = receiver.recv().await.unwrap();
    assert_eq!(
        sfn.send_task_success(&token, "not json")
            .unwrap_err()
            .aws_code(),
        "InvalidOutput"
    );
    sfn.send_task_heartbeat(&token).unwrap();
    sfn.send_task_success(&token, r#"{"slot": 3}"#).unwrap();
    let done = sfn.await_execution(&first.execution_arn).await.unwrap();
    assert_eq!(done.output.as_deref(), Some(r#"{"slot":3}"#));
    assert_eq!(
        sfn.send_task_success(&token, "{}").unwrap_err().aws_code(),
        "TaskDoesNotExist"
    );
    assert_eq!(
        sfn.send_task_heartbeat("bogus").unwrap_err().aws_code(),
        "InvalidToken"
    );

    let second = sfn
        .start_execution(&machine.arn, Some("fails"), None)
        .unwrap();
    let token = receiver.recv().await.unwrap();
    sfn.send_task_failure(&token, Some("Admit.Rejected"), Some("pool at its ceiling"))
        .unwrap();
    let done = sfn.await_execution(&second.execution_arn).await.unwrap();
    assert_eq!(done.status, ExecutionStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("Admit.Rejected"));

    let third = sfn
        .start_execution(&machine.arn, Some("silent"), None)
        .unwrap();
    let token = receiver.recv().await.unwrap();
    let done = sfn.await_execution(&third.execution_arn).await.unwrap();
    assert_eq!(done.error.as_deref(), Some("States.HeartbeatTimeout"));
    assert_eq!(
        sfn.send_task_success(&token, "{}").unwrap_err().aws_code(),
        "TaskTimedOut"
    );

    let mut seen = 0;
    while let Ok(event) = live.try_recv() {
        assert!(
            event
                .execution_arn
                .starts_with("arn:aws:states:us-east-1:123456789012:execution:admit:")
        );
        seen += 1;
    }
    assert!(seen >= 15, "live events: {seen}");
}

#[test]
fn service_errors_carry_aws_codes() {
    let error = ServiceError::ExecutionAlreadyExists("Execution Already Exists: 'x'".into());
    assert_eq!(error.aws_code(), "ExecutionAlreadyExists");
    assert_eq!(error.to_string(), "Execution Already Exists: 'x'");
    assert_eq!(
        "TIMED_OUT".parse::<ExecutionStatus>().unwrap(),
        ExecutionStatus::TimedOut
    );
    assert_eq!(
        "nope".parse::<ExecutionStatus>().unwrap_err().aws_code(),
        "ValidationException"
    );
}
