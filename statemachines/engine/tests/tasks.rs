//! Task states: handler resolution, the lambda:invoke integration, retries and catchers on
//! virtual time, and `.waitForTaskToken`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{definition, events, execute, seconds_between};
use runway_asl::{ExecutionStatus, RunConfig, TaskFailure, TaskRegistry, TokenError, run};
use runway_clock::{Clock, VirtualClock};
use serde_json::{Value, json};
use tokio::sync::mpsc;

fn failing_times(name: &str, failures: usize, error: &str) -> (TaskRegistry, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let error = error.to_owned();
    let tasks = TaskRegistry::new().with(name, move |_request| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let error = error.clone();
        async move {
            if n < failures {
                Err(TaskFailure::new(error, format!("attempt {n} failed")))
            } else {
                Ok(json!({"attempt": n}))
            }
        }
    });
    (tasks, calls)
}

#[tokio::test(start_paused = true)]
async fn retry_intervals_follow_backoff_and_max_delay_on_virtual_time() {
    let (tasks, calls) = failing_times("Flaky", 4, "Flaky.Error");
    let machine = json!({"StartAt": "Call", "States": {"Call": {
        "Type": "Task",
        "Resource": "arn:aws:lambda:us-east-1:123456789012:function:Flaky",
        "Retry": [{"ErrorEquals": ["Flaky.Error"], "IntervalSeconds": 2, "BackoffRate": 3.0, "MaxDelaySeconds": 10, "MaxAttempts": 5}],
        "End": true
    }}});
    let wall = std::time::Instant::now();
    let result = execute(machine, json!({}), tasks).await;
    assert_eq!(
        result.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        result.cause
    );
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    let scheduled = events(&result.history, "LambdaFunctionScheduled");
    assert_eq!(scheduled.len(), 5);
    let gaps: Vec<f64> = scheduled
        .windows(2)
        .map(|w| seconds_between(w[0], w[1]))
        .collect();
    // 2, 2×3 = 6, 2×9 = 18 capped at 10, 54 capped at 10.
    assert_eq!(gaps, vec![2.0, 6.0, 10.0, 10.0]);
    assert!(
        wall.elapsed() < Duration::from_secs(5),
        "retries must take no wall time"
    );
}

#[tokio::test(start_paused = true)]
async fn retries_give_up_after_max_attempts_and_the_catcher_takes_over() {
    let (tasks, calls) = failing_times("Broken", 100, "Broken.Error");
    let machine = json!({"StartAt": "Call", "States": {
        "Call": {
            "Type": "Task",
            "Resource": "Broken",
            "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 2}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Recover"}],
            "End": true
        },
        "Recover": {"Type": "Pass", "End": true}
    }});
    let result = execute(machine, json!({"job": 7}), tasks).await;
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let output = result.output.expect("caught");
    assert_eq!(output["job"], json!(7));
    assert_eq!(output["error"]["Error"], json!("Broken.Error"));
    let cause: Value = serde_json::from_str(output["error"]["Cause"].as_str().unwrap()).unwrap();
    assert_eq!(cause["errorMessage"], json!("attempt 2 failed"));
    assert_eq!(cause["errorType"], json!("Broken.Error"));
}

#[tokio::test(start_paused = true)]
async fn retry_count_is_visible_in_the_context_object() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let tasks = TaskRegistry::new().with("Counter", move |request| {
        let log = log.clone();
        async move {
            let count = request.input["retry"].as_u64().unwrap_or(99);
            log.lock().unwrap().push(count);
            if count < 2 {
                Err(TaskFailure::new("Again", ""))
            } else {
                Ok(json!(count))
            }
        }
    });
    let machine = json!({"StartAt": "Call", "States": {"Call": {
        "Type": "Task", "Resource": "Counter",
        "Parameters": {"retry.$": "$$.State.RetryCount"},
        "Retry": [{"ErrorEquals": ["Again"], "IntervalSeconds": 1}],
        "End": true
    }}});
    let result = execute(machine, json!({}), tasks).await;
    assert_eq!(result.output, Some(json!(2)));
    assert_eq!(*seen.lock().unwrap(), vec![0, 1, 2]);
}

#[tokio::test(start_paused = true)]
async fn full_jitter_never_waits_longer_than_the_backoff() {
    let (tasks, _) = failing_times("Jitter", 3, "E");
    let machine = json!({"StartAt": "Call", "States": {"Call": {
        "Type": "Task", "Resource": "Jitter",
        "Retry": [{"ErrorEquals": ["E"], "IntervalSeconds": 4, "BackoffRate": 2.0, "JitterStrategy": "FULL"}],
        "End": true
    }}});
    let result = execute(machine, json!({}), tasks).await;
    let scheduled = events(&result.history, "LambdaFunctionScheduled");
    let gaps: Vec<f64> = scheduled
        .windows(2)
        .map(|w| seconds_between(w[0], w[1]))
        .collect();
    for (gap, limit) in gaps.iter().zip([4.0, 8.0, 16.0]) {
        assert!(*gap <= limit, "gap {gap} over {limit}");
    }
}

#[tokio::test(start_paused = true)]
async fn states_all_does_not_catch_states_runtime() {
    let machine = json!({"StartAt": "Call", "States": {
        "Call": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "NoSuchFunction", "Payload": {}},
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
            "End": true
        },
        "Caught": {"Type": "Succeed"}
    }});
    let result = execute(machine, json!({}), TaskRegistry::new()).await;
    assert_eq!(result.status, ExecutionStatus::Failed);
    assert_eq!(result.error.as_deref(), Some("States.Runtime"));
    let cause = result.cause.unwrap_or_default();
    assert!(
        cause.contains("arn:aws:states:::lambda:invoke") && cause.contains("NoSuchFunction"),
        "{cause}"
    );
}

#[tokio::test(start_paused = true)]
async fn task_failed_matches_task_errors() {
    let (tasks, _) = failing_times("Boom", 10, "Custom.Error");
    let machine = json!({"StartAt": "Call", "States": {
        "Call": {"Type": "Task", "Resource": "Boom",
                 "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "Caught"}], "End": true},
        "Caught": {"Type": "Pass", "End": true}
    }});
    let result = execute(machine, json!({}), tasks).await;
    assert_eq!(result.status, ExecutionStatus::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn lambda_invoke_resolves_function_arns_and_wraps_the_response() {
    let tasks = TaskRegistry::new().with("Route", |request| async move {
        assert_eq!(request.resource, "arn:aws:states:::lambda:invoke");
        Ok(json!({"pool": "linux", "echo": request.input}))
    });
    let machine = json!({"StartAt": "Route", "States": {"Route": {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {
            "FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:Route:live",
            "Payload": {"job.$": "$.job"}
        },
        "ResultSelector": {"pool.$": "$.Payload.pool", "echo.$": "$.Payload.echo", "status.$": "$.StatusCode", "version.$": "$.ExecutedVersion"},
        "End": true
    }}});
    let result = execute(machine, json!({"job": 42}), tasks).await;
    assert_eq!(
        result.output,
        Some(json!({"pool": "linux", "echo": {"job": 42}, "status": 200, "version": "$LATEST"}))
    );
    let scheduled = events(&result.history, "TaskScheduled");
    let details = scheduled[0].detail().unwrap();
    assert_eq!(details["resourceType"], json!("lambda"));
    assert_eq!(details["resource"], json!("invoke"));
    assert_eq!(details["region"], json!("us-east-1"));
}

#[tokio::test(start_paused = true)]
async fn task_timeout_gives_states_timeout() {
    let tasks = TaskRegistry::new().with("Slow", |_request| async move {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(json!(null))
    });
    let machine = json!({"StartAt": "Call", "States": {"Call": {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "Slow"}, "TimeoutSeconds": 30, "End": true
    }}});
    let result = execute(machine, json!({}), tasks).await;
    assert_eq!(result.error.as_deref(), Some("States.Timeout"));
    let timed_out = events(&result.history, "TaskTimedOut");
    assert_eq!(timed_out.len(), 1);
    let started = events(&result.history, "TaskStarted")[0];
    assert_eq!(seconds_between(started, timed_out[0]), 30.0);
}

/// A registry whose `Park` function hands its task token to the test.
fn parking() -> (TaskRegistry, mpsc::UnboundedReceiver<String>) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let tasks = TaskRegistry::new().with("Park", move |request| {
        let sender = sender.clone();
        async move {
            let token = request.task_token.clone().expect("a token");
            assert_eq!(request.input["token"], json!(token));
            let _ = sender.send(token);
            Ok(json!({"parked": true}))
        }
    });
    (tasks, receiver)
}

fn token_machine(extra: Value) -> Value {
    let mut state = json!({
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName": "${ParkFunctionArn}", "Payload": {"token.$": "$$.Task.Token"}},
        "End": true
    });
    for (k, v) in extra.as_object().unwrap() {
        state[k] = v.clone();
    }
    // The FunctionName as a deployed template writes it, after substitution.
    state["Parameters"]["FunctionName"] =
        json!("arn:aws:lambda:us-east-1:123456789012:function:Park");
    json!({"StartAt": "Wait", "States": {"Wait": state}})
}

async fn start(
    machine: Value,
    tasks: TaskRegistry,
) -> (
    tokio::task::JoinHandle<runway_asl::RunResult>,
    runway_asl::TaskTokens,
    VirtualClock,
) {
    let clock = VirtualClock::new();
    let config = RunConfig::new(clock.clone().shared(), tasks);
    let tokens = config.tokens.clone();
    let def = definition(machine);
    let handle = tokio::spawn(async move { run(&def, json!({}), config).await });
    (handle, tokens, clock)
}

#[tokio::test(start_paused = true)]
async fn wait_for_task_token_succeeds_with_the_sent_output() {
    let (tasks, mut tokens_out) = parking();
    let (handle, tokens, _) = start(token_machine(json!({})), tasks).await;
    let token = tokens_out.recv().await.unwrap();
    tokens.complete(&token, Ok(json!({"done": 1}))).unwrap();
    let result = handle.await.unwrap();
    assert_eq!(result.output, Some(json!({"done": 1})));
    assert_eq!(events(&result.history, "TaskSubmitted").len(), 1);
    assert_eq!(events(&result.history, "TaskSucceeded").len(), 1);
    // The token is spent.
    assert_eq!(
        tokens.complete(&token, Ok(json!(1))),
        Err(TokenError::DoesNotExist)
    );
}

#[tokio::test(start_paused = true)]
async fn wait_for_task_token_fails_with_the_sent_error() {
    let (tasks, mut tokens_out) = parking();
    let (handle, tokens, _) = start(token_machine(json!({})), tasks).await;
    let token = tokens_out.recv().await.unwrap();
    tokens
        .complete(
            &token,
            Err(TaskFailure::new(
                "Runner.Lost",
                "the runner never registered",
            )),
        )
        .unwrap();
    let result = handle.await.unwrap();
    assert_eq!(result.status, ExecutionStatus::Failed);
    assert_eq!(result.error.as_deref(), Some("Runner.Lost"));
    assert_eq!(result.cause.as_deref(), Some("the runner never registered"));
}

#[tokio::test(start_paused = true)]
async fn heartbeats_keep_a_token_task_alive() {
    let (tasks, mut tokens_out) = parking();
    let (handle, tokens, clock) = start(
        token_machine(json!({"HeartbeatSeconds": 10, "TimeoutSeconds": 100})),
        tasks,
    )
    .await;
    let token = tokens_out.recv().await.unwrap();
    for _ in 0..5 {
        clock.sleep(Duration::from_secs(8)).await;
        tokens.heartbeat(&token).unwrap();
    }
    // 40 s in, well past one heartbeat interval.
    tokens.complete(&token, Ok(json!("alive"))).unwrap();
    let result = handle.await.unwrap();
    assert_eq!(result.output, Some(json!("alive")));
}

#[tokio::test(start_paused = true)]
async fn a_missed_heartbeat_times_the_task_out() {
    let (tasks, mut tokens_out) = parking();
    let (handle, tokens, _) = start(
        token_machine(json!({"HeartbeatSeconds": 10, "TimeoutSeconds": 100})),
        tasks,
    )
    .await;
    let token = tokens_out.recv().await.unwrap();
    let result = handle.await.unwrap();
    assert_eq!(result.error.as_deref(), Some("States.HeartbeatTimeout"));
    let submitted = events(&result.history, "TaskSubmitted")[0];
    let timed_out = events(&result.history, "TaskTimedOut")[0];
    assert_eq!(seconds_between(submitted, timed_out), 10.0);
    assert_eq!(tokens.heartbeat(&token), Err(TokenError::TimedOut));
}

#[tokio::test(start_paused = true)]
async fn a_token_task_times_out_despite_heartbeats() {
    let (tasks, mut tokens_out) = parking();
    let (handle, tokens, clock) = start(
        token_machine(json!({"HeartbeatSeconds": 10, "TimeoutSeconds": 25})),
        tasks,
    )
    .await;
    let token = tokens_out.recv().await.unwrap();
    let beating = tokio::spawn(async move {
        for _ in 0..10 {
            clock.sleep(Duration::from_secs(5)).await;
            if tokens.heartbeat(&token).is_err() {
                break;
            }
        }
    });
    let result = handle.await.unwrap();
    beating.await.unwrap();
    assert_eq!(result.error.as_deref(), Some("States.Timeout"));
}

#[tokio::test(start_paused = true)]
async fn a_token_task_failure_can_be_retried_with_a_new_token() {
    let (tasks, mut tokens_out) = parking();
    let machine =
        token_machine(json!({"Retry": [{"ErrorEquals": ["Try.Again"], "IntervalSeconds": 5}]}));
    let (handle, tokens, _) = start(machine, tasks).await;
    let first = tokens_out.recv().await.unwrap();
    tokens
        .complete(&first, Err(TaskFailure::new("Try.Again", "")))
        .unwrap();
    let second = tokens_out.recv().await.unwrap();
    assert_ne!(first, second);
    tokens.complete(&second, Ok(json!(2))).unwrap();
    assert_eq!(handle.await.unwrap().output, Some(json!(2)));
}

#[test]
fn unknown_tokens_are_rejected() {
    let tokens = runway_asl::TaskTokens::new();
    assert_eq!(
        tokens.complete("not-a-token", Ok(json!(1))),
        Err(TokenError::Invalid)
    );
    assert_eq!(tokens.heartbeat("garbage"), Err(TokenError::Invalid));
}

#[test]
fn lambda_function_names_are_taken_from_arns() {
    use runway_asl::tasks::lambda_function_name;
    assert_eq!(
        lambda_function_name("arn:aws:lambda:us-east-1:123456789012:function:Route"),
        "Route"
    );
    assert_eq!(
        lambda_function_name("arn:aws:lambda:us-east-1:123456789012:function:Route:live"),
        "Route"
    );
    assert_eq!(lambda_function_name("123456789012:function:Route"), "Route");
    assert_eq!(lambda_function_name("Route:3"), "Route");
    assert_eq!(lambda_function_name("Route"), "Route");
}
