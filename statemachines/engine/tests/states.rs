//! Each state type, each Choice operator, Parallel and Map semantics, variables and JSONata.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{events, execute, seconds_between};
use runway_asl::{Definition, ExecutionStatus, TaskFailure, TaskRegistry};
use serde_json::{Value, json};

fn choice_machine(rule: Value) -> Value {
    let mut rule = rule;
    rule["Next"] = json!("Yes");
    json!({"StartAt": "Check", "States": {
        "Check": {"Type": "Choice", "Choices": [rule], "Default": "No"},
        "Yes": {"Type": "Pass", "Result": "yes", "End": true},
        "No": {"Type": "Pass", "Result": "no", "End": true}
    }})
}

async fn decide(rule: Value, input: Value) -> bool {
    let result = execute(
        choice_machine(rule.clone()),
        input.clone(),
        TaskRegistry::new(),
    )
    .await;
    match result.output {
        Some(Value::String(s)) => s == "yes",
        _ => panic!(
            "rule {rule} on {input} failed: {:?} {:?}",
            result.error, result.cause
        ),
    }
}

#[tokio::test(start_paused = true)]
async fn every_choice_operator() {
    let ts = "2026-03-14T01:59:00Z";
    let later = "2026-03-14T02:00:00Z";
    // (rule, input, expected)
    let cases: Vec<(Value, Value, bool)> = vec![
        (
            json!({"Variable": "$.v", "StringEquals": "a"}),
            json!({"v": "a"}),
            true,
        ),
        (
            json!({"Variable": "$.v", "StringEquals": "a"}),
            json!({"v": 1}),
            false,
        ),
        (
            json!({"Variable": "$.v", "StringLessThan": "b"}),
            json!({"v": "a"}),
            true,
        ),
        (
            json!({"Variable": "$.v", "StringGreaterThan": "b"}),
            json!({"v": "a"}),
            false,
        ),
        (
            json!({"Variable": "$.v", "StringLessThanEquals": "a"}),
            json!({"v": "a"}),
            true,
        ),
        (
            json!({"Variable": "$.v", "StringGreaterThanEquals": "a"}),
            json!({"v": "b"}),
            true,
        ),
        (
            json!({"Variable": "$.v", "StringMatches": "log-*.txt"}),
            json!({"v": "log-1.txt"}),
            true,
        ),
        (
            json!({"Variable": "$.v", "StringMatches": "log-\\*"}),
            json!({"v": "log-1"}),
            false,
        ),
        (
            json!({"Variable": "$.v", "StringEqualsPath": "$.w"}),
            json!({"v": "a", "w": "a"}),
            true,
        ),
        (
            json!({"Variable": "$.v", "StringLessThanPath": "$.w"}),
            json!({"v": "a", "w": "b"}),
            true,
        ),
        (
            json!({"Variable": "$.v", "StringGreaterThanPath": "$.w"}),
            json!({"v": "a", "w": "b"}),
            false,
        ),
        (
            json!({"Variable": "$.v", "StringLessThanEqualsPath": "$.w"}),
            json!({"v": "b", "w": "b"}),
            true,
        ),
        (
            json!({"Variable": "$.v", "StringGreaterThanEqualsPath": "$.w"}),
            json!({"v": "c", "w": "b"}),
            true,
        ),
        (
            json!({"Variable": "$.v", "NumericEquals": 1}),
            json!({"v": 1.0}),
            true,
        ),
        (
            json!({"Variable": "$.v", "NumericEquals": 1}),
            json!({"v": "1"}),
            false,
        ),
        (
            json!({"Variable": "$.v", "NumericLessThan": 2}),
            json!({"v": 1.5}),
            true,
        ),
        (
            json!({"Variable": "$.v", "NumericGreaterThan": 2}),
            json!({"v": 1.5}),
            false,
        ),
        (
            json!({"Variable": "$.v", "NumericLessThanEquals": 2}),
            json!({"v": 2}),
            true,
        ),
        (
            json!({"Variable": "$.v", "NumericGreaterThanEquals": 2}),
            json!({"v": 3}),
            true,
        ),
        (
            json!({"Variable": "$.v", "NumericEqualsPath": "$.w"}),
            json!({"v": 3, "w": 3}),
            true,
        ),
        (
            json!({"Variable": "$.v", "NumericLessThanPath": "$.w"}),
            json!({"v": 3, "w": 4}),
            true,
        ),
        (
            json!({"Variable": "$.v", "NumericGreaterThanPath": "$.w"}),
            json!({"v": 3, "w": 4}),
            false,
        ),
        (
            json!({"Variable": "$.v", "NumericLessThanEqualsPath": "$.w"}),
            json!({"v": 4, "w": 4}),
            true,
        ),
        (
            json!({"Variable": "$.v", "NumericGreaterThanEqualsPath": "$.w"}),
            json!({"v": 5, "w": 4}),
            true,
        ),
        (
            json!({"Variable": "$.v", "BooleanEquals": true}),
            json!({"v": true}),
            true,
        ),
        (
            json!({"Variable": "$.v", "BooleanEquals": true}),
            json!({"v": "true"}),
            false,
        ),
        (
            json!({"Variable": "$.v", "BooleanEqualsPath": "$.w"}),
            json!({"v": false, "w": false}),
            true,
        ),
        (
            json!({"Variable": "$.v", "TimestampEquals": ts}),
            json!({"v": ts}),
            true,
        ),
        (
            json!({"Variable": "$.v", "TimestampLessThan": later}),
            json!({"v": ts}),
            true,
        ),
        (
            json!({"Variable": "$.v", "TimestampGreaterThan": later}),
            json!({"v": ts}),
            false,
        ),
        (
            json!({"Variable": "$.v", "TimestampLessThanEquals": ts}),
            json!({"v": ts}),
            true,
        ),
        (
            json!({"Variable": "$.v", "TimestampGreaterThanEquals": ts}),
            json!({"v": later}),
            true,
        ),
        (
            json!({"Variable": "$.v", "TimestampEquals": ts}),
            json!({"v": "not a time"}),
            false,
        ),
        (
            json!({"Variable": "$.v", "TimestampEqualsPath": "$.w"}),
            json!({"v": ts, "w": ts}),
            true,
        ),
        (
            json!({"Variable": "$.v", "TimestampLessThanPath": "$.w"}),
            json!({"v": ts, "w": later}),
            true,
        ),
        (
            json!({"Variable": "$.v", "TimestampGreaterThanPath": "$.w"}),
            json!({"v": later, "w": ts}),
            true,
        ),
        (
            json!({"Variable": "$.v", "TimestampLessThanEqualsPath": "$.w"}),
            json!({"v": later, "w": ts}),
            false,
        ),
        (
            json!({"Variable": "$.v", "TimestampGreaterThanEqualsPath": "$.w"}),
            json!({"v": ts, "w": ts}),
            true,
        ),
        (
            json!({"Variable": "$.v", "IsNull": true}),
            json!({"v": null}),
            true,
        ),
        (
            json!({"Variable": "$.v", "IsNull": false}),
            json!({"v": 0}),
            true,
        ),
        (
            json!({"Variable": "$.v", "IsPresent": true}),
            json!({"v": null}),
            true,
        ),
        (
            json!({"Variable": "$.v", "IsPresent": false}),
            json!({}),
            true,
        ),
        (
            json!({"Variable": "$.v", "IsNumeric": true}),
            json!({"v": 1.5}),
            true,
        ),
        (
            json!({"Variable": "$.v", "IsString": true}),
            json!({"v": "s"}),
            true,
        ),
        (
            json!({"Variable": "$.v", "IsBoolean": true}),
            json!({"v": 1}),
            false,
        ),
        (
            json!({"Variable": "$.v", "IsTimestamp": true}),
            json!({"v": ts}),
            true,
        ),
        (
            json!({"And": [{"Variable": "$.a", "NumericEquals": 1}, {"Variable": "$.b", "NumericEquals": 2}]}),
            json!({"a": 1, "b": 2}),
            true,
        ),
        (
            json!({"And": [{"Variable": "$.a", "NumericEquals": 1}, {"Variable": "$.b", "NumericEquals": 3}]}),
            json!({"a": 1, "b": 2}),
            false,
        ),
        (
            json!({"Or": [{"Variable": "$.a", "NumericEquals": 0}, {"Variable": "$.b", "NumericEquals": 2}]}),
            json!({"a": 1, "b": 2}),
            true,
        ),
        (
            json!({"Not": {"Variable": "$.a", "StringEquals": "x"}}),
            json!({"a": "y"}),
            true,
        ),
    ];
    for (rule, input, expected) in cases {
        assert_eq!(
            decide(rule.clone(), input.clone()).await,
            expected,
            "{rule} on {input}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_choice_on_a_missing_variable_is_a_runtime_error() {
    let result = execute(
        choice_machine(json!({"Variable": "$.missing", "StringEquals": "a"})),
        json!({}),
        TaskRegistry::new(),
    )
    .await;
    assert_eq!(result.error.as_deref(), Some("States.Runtime"));
}

#[tokio::test(start_paused = true)]
async fn no_matching_choice_without_default_fails() {
    let machine = json!({"StartAt": "Check", "States": {
        "Check": {"Type": "Choice", "Choices": [{"Variable": "$.v", "NumericEquals": 1, "Next": "Done"}]},
        "Done": {"Type": "Succeed"}
    }});
    let result = execute(machine, json!({"v": 2}), TaskRegistry::new()).await;
    assert_eq!(result.error.as_deref(), Some("States.NoChoiceMatched"));
}

#[tokio::test(start_paused = true)]
async fn wait_seconds_and_timestamps_use_the_virtual_clock() {
    let machine = json!({"StartAt": "Short", "States": {
        "Short": {"Type": "Wait", "Seconds": 90, "Next": "ByPath"},
        "ByPath": {"Type": "Wait", "SecondsPath": "$.delay", "Next": "Until"},
        "Until": {"Type": "Wait", "TimestampPath": "$.until", "Next": "Done"},
        "Done": {"Type": "Succeed"}
    }});
    let wall = std::time::Instant::now();
    let input = json!({"delay": 3600, "until": "2026-01-02T00:00:00Z"});
    let result = execute(machine, input.clone(), TaskRegistry::new()).await;
    assert_eq!(result.output, Some(input));
    let entered = events(&result.history, "WaitStateEntered");
    let exited = events(&result.history, "WaitStateExited");
    assert_eq!(seconds_between(entered[0], exited[0]), 90.0);
    assert_eq!(seconds_between(entered[1], exited[1]), 3600.0);
    // The clock starts at 2026-01-01T00:00:00Z: the last wait ends a day later.
    assert_eq!(
        exited[2].timestamp.to_rfc3339(),
        "2026-01-02T00:00:00+00:00"
    );
    assert!(wall.elapsed() < Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn wait_rejects_bad_seconds_paths_with_aws_wording() {
    let machine = json!({"StartAt": "WaitState", "States": {
        "WaitState": {"Type": "Wait", "SecondsPath": "$.s", "End": true}
    }});
    let result = execute(machine, json!({"s": -3}), TaskRegistry::new()).await;
    assert_eq!(result.error.as_deref(), Some("States.Runtime"));
    assert_eq!(
        result.cause.as_deref(),
        Some(
            "An error occurred while executing the state 'WaitState' (entered at the event id #2). The SecondsPath parameter references a negative value: $.s == -3"
        )
    );
}

#[tokio::test(start_paused = true)]
async fn fail_with_error_and_cause_paths() {
    let machine = json!({"StartAt": "Stop", "States": {
        "Stop": {"Type": "Fail", "ErrorPath": "$.e", "CausePath": "States.Format('because {}', $.why)"}
    }});
    let result = execute(
        machine,
        json!({"e": "Pool.Full", "why": "no slots"}),
        TaskRegistry::new(),
    )
    .await;
    assert_eq!(result.status, ExecutionStatus::Failed);
    assert_eq!(result.error.as_deref(), Some("Pool.Full"));
    assert_eq!(result.cause.as_deref(), Some("because no slots"));
    assert_eq!(events(&result.history, "ExecutionFailed").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn succeed_passes_its_input_through_paths() {
    let machine = json!({"StartAt": "Done", "States": {
        "Done": {"Type": "Succeed", "InputPath": "$.keep", "OutputPath": "$.x"}
    }});
    let result = execute(machine, json!({"keep": {"x": 5}}), TaskRegistry::new()).await;
    assert_eq!(result.output, Some(json!(5)));
}

#[tokio::test(start_paused = true)]
async fn parallel_collects_branch_outputs_in_order() {
    let machine = json!({"StartAt": "Both", "States": {"Both": {
        "Type": "Parallel",
        "Branches": [
            {"StartAt": "Slow", "States": {"Slow": {"Type": "Wait", "Seconds": 10, "Next": "A"}, "A": {"Type": "Pass", "Result": "a", "End": true}}},
            {"StartAt": "B", "States": {"B": {"Type": "Pass", "Result": "b", "End": true}}}
        ],
        "End": true
    }}});
    let result = execute(machine, json!({}), TaskRegistry::new()).await;
    assert_eq!(result.output, Some(json!(["a", "b"])));
    assert_eq!(events(&result.history, "ParallelStateStarted").len(), 1);
    assert_eq!(events(&result.history, "ParallelStateSucceeded").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failing_branch_cancels_its_siblings() {
    let finished = Arc::new(AtomicUsize::new(0));
    let counter = finished.clone();
    let tasks = TaskRegistry::new().with("Slow", move |_r| {
        let counter = counter.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(600)).await;
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(json!("slow"))
        }
    });
    let machine = json!({"StartAt": "Both", "States": {
        "Both": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "Long", "States": {"Long": {"Type": "Task", "Resource": "Slow", "End": true}}},
                {"StartAt": "Breaks", "States": {"Breaks": {"Type": "Fail", "Error": "Branch.Broke", "Cause": "on purpose"}}}
            ],
            "Catch": [{"ErrorEquals": ["Branch.Broke"], "Next": "Handled"}],
            "End": true
        },
        "Handled": {"Type": "Pass", "End": true}
    }});
    let result = execute(machine, json!({}), tasks).await;
    assert_eq!(
        result.output,
        Some(json!({"Error": "Branch.Broke", "Cause": "on purpose"}))
    );
    assert_eq!(
        finished.load(Ordering::SeqCst),
        0,
        "the slow branch was cancelled"
    );
    assert!(
        events(&result.history, "TaskSucceeded").is_empty()
            && events(&result.history, "LambdaFunctionSucceeded").is_empty()
    );
    assert_eq!(events(&result.history, "ParallelStateFailed").len(), 1);
    let first = result.history.first().unwrap();
    let last = result.history.last().unwrap();
    assert!(seconds_between(first, last) < 600.0);
}

fn map_machine(extra: Value) -> Value {
    let mut state = json!({
        "Type": "Map",
        "ItemsPath": "$.items",
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "INLINE"},
            "StartAt": "Check",
            "States": {
                "Check": {"Type": "Choice", "Choices": [{"Variable": "$.ok", "BooleanEquals": false, "Next": "Broken"}], "Default": "Fine"},
                "Broken": {"Type": "Fail", "Error": "Item.Bad", "Cause": "bad item"},
                "Fine": {"Type": "Pass", "OutputPath": "$.n", "End": true}
            }
        },
        "End": true
    });
    for (k, v) in extra.as_object().unwrap() {
        state[k] = v.clone();
    }
    json!({"StartAt": "Each", "States": {"Each": state}})
}

fn items(bad: usize, total: usize) -> Value {
    let list: Vec<Value> = (0..total)
        .map(|n| json!({"n": n, "ok": n >= bad}))
        .collect();
    json!({"items": list})
}

#[tokio::test(start_paused = true)]
async fn map_runs_each_item_and_keeps_order() {
    let result = execute(map_machine(json!({})), items(0, 4), TaskRegistry::new()).await;
    assert_eq!(result.output, Some(json!([0, 1, 2, 3])));
    assert_eq!(events(&result.history, "MapIterationStarted").len(), 4);
    assert_eq!(
        events(&result.history, "MapStateStarted")[0]
            .detail()
            .unwrap()["length"],
        json!(4)
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_item_fails_the_map_with_its_error() {
    let result = execute(map_machine(json!({})), items(1, 4), TaskRegistry::new()).await;
    assert_eq!(result.error.as_deref(), Some("Item.Bad"));
    assert_eq!(events(&result.history, "MapStateFailed").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn tolerated_failure_count_and_percentage() {
    let within = execute(
        map_machine(json!({"ToleratedFailureCount": 2})),
        items(2, 4),
        TaskRegistry::new(),
    )
    .await;
    assert_eq!(
        within.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        within.cause
    );
    let beyond = execute(
        map_machine(json!({"ToleratedFailureCount": 1})),
        items(2, 4),
        TaskRegistry::new(),
    )
    .await;
    assert_eq!(
        beyond.error.as_deref(),
        Some("States.ExceedToleratedFailureThreshold")
    );
    let percent_ok = execute(
        map_machine(json!({"ToleratedFailurePercentage": 50})),
        items(2, 4),
        TaskRegistry::new(),
    )
    .await;
    assert_eq!(percent_ok.status, ExecutionStatus::Succeeded);
    let percent_over = execute(
        map_machine(json!({"ToleratedFailurePercentagePath": "$.pct"})),
        json!({"items": items(3, 4)["items"], "pct": 50}),
        TaskRegistry::new(),
    )
    .await;
    assert_eq!(
        percent_over.error.as_deref(),
        Some("States.ExceedToleratedFailureThreshold")
    );
}

#[tokio::test(start_paused = true)]
async fn max_concurrency_bounds_running_iterations() {
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (r, p) = (running.clone(), peak.clone());
    let tasks = TaskRegistry::new().with("Work", move |request| {
        let (r, p) = (r.clone(), p.clone());
        async move {
            let now = r.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(5)).await;
            r.fetch_sub(1, Ordering::SeqCst);
            Ok(request.input)
        }
    });
    let machine = json!({"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "MaxConcurrencyPath": "$.limit", "ItemsPath": "$.items",
        "ItemSelector": {"value.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index"},
        "ItemProcessor": {"StartAt": "W", "States": {"W": {"Type": "Task", "Resource": "Work", "End": true}}},
        "End": true
    }}});
    let result = execute(
        machine,
        json!({"limit": 2, "items": ["a", "b", "c", "d", "e"]}),
        tasks,
    )
    .await;
    assert_eq!(peak.load(Ordering::SeqCst), 2);
    let output = result.output.unwrap();
    assert_eq!(output[4], json!({"value": "e", "index": 4}));
}

#[tokio::test(start_paused = true)]
async fn variables_flow_into_map_but_not_back_out() {
    let machine = json!({"StartAt": "Set", "States": {
        "Set": {"Type": "Pass", "Assign": {"greeting": "hi", "count.$": "$.n"}, "Next": "Each"},
        "Each": {
            "Type": "Map", "ItemsPath": "$.items",
            "ItemProcessor": {"StartAt": "Use", "States": {
                "Use": {"Type": "Pass", "Parameters": {"g.$": "$greeting", "item.$": "$"}, "Assign": {"inner": 1}, "End": true}
            }},
            "ResultPath": "$.mapped",
            "Next": "After"
        },
        "After": {"Type": "Pass", "Parameters": {"count.$": "$count", "mapped.$": "$.mapped"}, "End": true}
    }});
    let result = execute(
        machine,
        json!({"n": 3, "items": [1, 2]}),
        TaskRegistry::new(),
    )
    .await;
    assert_eq!(
        result.output,
        Some(json!({"count": 3, "mapped": [{"g": "hi", "item": 1}, {"g": "hi", "item": 2}]}))
    );
    // The inner variable is not visible afterwards.
    let leaking = json!({"StartAt": "Each", "States": {
        "Each": {"Type": "Map", "ItemProcessor": {"StartAt": "Use", "States": {
            "Use": {"Type": "Pass", "Assign": {"inner": 1}, "End": true}}}, "ResultPath": null, "Next": "After"},
        "After": {"Type": "Pass", "Parameters": {"x.$": "$inner"}, "End": true}
    }});
    let result = execute(leaking, json!([1]), TaskRegistry::new()).await;
    assert_eq!(result.error.as_deref(), Some("States.Runtime"));
}

#[test]
fn a_branch_may_not_assign_an_outer_variable() {
    let machine = json!({"StartAt": "Set", "States": {
        "Set": {"Type": "Pass", "Assign": {"x": 1}, "Next": "Each"},
        "Each": {"Type": "Map", "ItemProcessor": {"StartAt": "Use", "States": {
            "Use": {"Type": "Pass", "Assign": {"x": 2}, "End": true}}}, "End": true}
    }});
    let error = Definition::from_value(machine).unwrap_err();
    assert_eq!(error.state.as_deref(), Some("Use"));
    assert_eq!(error.field.as_deref(), Some("Assign"));
}

#[tokio::test(start_paused = true)]
async fn jsonata_states_use_arguments_output_assign_and_conditions() {
    let tasks = TaskRegistry::new().with("Double", |request| async move {
        Ok(json!({"doubled": request.input["n"].as_i64().unwrap_or(0) * 2}))
    });
    let machine = json!({
        "QueryLanguage": "JSONata",
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Arguments": {"FunctionName": "Double", "Payload": {"n": "{% $states.input.n %}"}},
                "Assign": {"result": "{% $states.result.Payload.doubled %}"},
                "Output": "{% $states.input %}",
                "Next": "Big?"
            },
            "Big?": {
                "Type": "Choice",
                "Choices": [{"Condition": "{% $result > 10 %}", "Next": "Big", "Output": {"size": "big", "value": "{% $result %}"}}],
                "Default": "Small"
            },
            "Big": {"Type": "Wait", "Seconds": "{% $result %}", "Next": "Done"},
            "Small": {"Type": "Fail", "Error": "TooSmall", "Cause": "{% 'only ' & $string($result) %}"},
            "Done": {"Type": "Pass", "Output": "{% $merge([$states.input, {'at': $states.context.State.Name}]) %}", "End": true}
        }
    });
    let big = execute(machine.clone(), json!({"n": 6}), tasks.clone()).await;
    assert_eq!(
        big.output,
        Some(json!({"size": "big", "value": 12, "at": "Done"})),
        "{:?}",
        big.cause
    );
    let wait = events(&big.history, "WaitStateEntered")[0];
    let after = events(&big.history, "WaitStateExited")[0];
    assert_eq!(seconds_between(wait, after), 12.0);
    let small = execute(machine, json!({"n": 2}), tasks).await;
    assert_eq!(small.error.as_deref(), Some("TooSmall"));
    assert_eq!(small.cause.as_deref(), Some("only 4"));
}

#[tokio::test(start_paused = true)]
async fn jsonata_map_items_and_item_selector() {
    let machine = json!({
        "QueryLanguage": "JSONata",
        "StartAt": "Each",
        "States": {"Each": {
            "Type": "Map",
            "Items": "{% $states.input.list %}",
            "ItemSelector": {"v": "{% $states.context.Map.Item.Value * 10 %}", "i": "{% $states.context.Map.Item.Index %}"},
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
            "End": true
        }}
    });
    let result = execute(machine, json!({"list": [1, 2]}), TaskRegistry::new()).await;
    assert_eq!(
        result.output,
        Some(json!([{"v": 10, "i": 0}, {"v": 20, "i": 1}]))
    );
}

#[tokio::test(start_paused = true)]
async fn execution_timeout_ends_timed_out() {
    let machine = json!({"TimeoutSeconds": 5, "StartAt": "Long", "States": {
        "Long": {"Type": "Wait", "Seconds": 60, "End": true}
    }});
    let result = execute(machine, json!({}), TaskRegistry::new()).await;
    assert_eq!(result.status, ExecutionStatus::TimedOut);
    assert_eq!(result.error.as_deref(), Some("States.Timeout"));
    assert_eq!(events(&result.history, "ExecutionTimedOut").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn history_ids_chain_and_serialize_like_get_execution_history() {
    let machine = json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}});
    let result = execute(machine, json!({"k": 1}), TaskRegistry::new()).await;
    let types: Vec<&str> = result
        .history
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(
        types,
        vec![
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
            "ExecutionSucceeded"
        ]
    );
    for (i, event) in result.history.iter().enumerate() {
        assert_eq!(event.id, i as u64 + 1);
        assert_eq!(event.previous_event_id, i as u64);
    }
    let started = serde_json::to_value(&result.history[0]).unwrap();
    assert_eq!(started["type"], json!("ExecutionStarted"));
    assert_eq!(started["id"], json!(1));
    assert_eq!(started["previousEventId"], json!(0));
    assert!(started["timestamp"].is_number());
    assert_eq!(
        started["executionStartedEventDetails"]["input"],
        json!("{\"k\":1}")
    );
    assert_eq!(
        started["executionStartedEventDetails"]["inputDetails"],
        json!({"truncated": false})
    );
    assert!(started["executionStartedEventDetails"]["roleArn"].is_string());
    let entered = serde_json::to_value(&result.history[1]).unwrap();
    assert_eq!(entered["stateEnteredEventDetails"]["name"], json!("A"));
    let back: runway_asl::HistoryEvent = serde_json::from_value(entered).unwrap();
    assert_eq!(back, result.history[1]);
}

#[tokio::test(start_paused = true)]
async fn catch_result_path_keeps_the_input_beside_the_error() {
    let tasks = TaskRegistry::new().with("Nope", |_r| async move {
        Err(TaskFailure::new("Nope.Failed", "no"))
    });
    let machine = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "Nope", "Catch": [{"ErrorEquals": ["Nope.Failed"], "ResultPath": "$.failure", "Next": "After"}], "End": true},
        "After": {"Type": "Pass", "End": true}
    }});
    let result = execute(machine, json!({"keep": true}), tasks).await;
    let output = result.output.unwrap();
    assert_eq!(output["keep"], json!(true));
    assert_eq!(output["failure"]["Error"], json!("Nope.Failed"));
}

#[tokio::test(start_paused = true)]
async fn item_batcher_groups_items_into_batches() {
    let machine = json!({"StartAt": "Each", "States": {"Each": {
        "Type": "Map",
        "ItemsPath": "$.items",
        "ItemBatcher": {"MaxItemsPerBatch": 2, "BatchInput": {"source.$": "$.source"}},
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}
        },
        "End": true
    }}});
    let result = execute(
        machine,
        json!({"items": [1, 2, 3], "source": "s"}),
        TaskRegistry::new(),
    )
    .await;
    assert_eq!(
        result.output,
        Some(json!([
            {"BatchInput": {"source": "s"}, "Items": [1, 2]},
            {"BatchInput": {"source": "s"}, "Items": [3]}
        ]))
    );
}

#[tokio::test(start_paused = true)]
async fn an_item_reader_fails_clearly() {
    let machine = json!({"StartAt": "Each", "States": {"Each": {
        "Type": "Map",
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "Parameters": {"Bucket": "b", "Key": "k"}},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                          "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
        "End": true
    }}});
    let result = execute(machine, json!({}), TaskRegistry::new()).await;
    assert_eq!(result.error.as_deref(), Some("States.ItemReaderFailed"));
    assert!(result.cause.unwrap_or_default().contains("S3"));
}

#[tokio::test(start_paused = true)]
async fn outputs_over_256_kib_fail_with_data_limit_exceeded() {
    let machine = json!({"StartAt": "Big", "States": {"Big": {"Type": "Pass", "End": true}}});
    let result = execute(
        machine,
        json!({"blob": "x".repeat(300 * 1024)}),
        TaskRegistry::new(),
    )
    .await;
    assert_eq!(result.error.as_deref(), Some("States.DataLimitExceeded"));
}
