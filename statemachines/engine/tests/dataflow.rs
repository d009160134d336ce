//! The JSONPath data-flow pipeline, checked against the examples of the AWS Step Functions
//! Developer Guide.

mod common;

use common::execute;
use runway_asl::{ExecutionStatus, TaskRegistry};
use serde_json::{Value, json};

fn returning(value: Value) -> TaskRegistry {
    TaskRegistry::new().with("HelloFunction", move |_request| {
        let value = value.clone();
        async move { Ok(value) }
    })
}

fn task_machine(fields: Value) -> Value {
    let mut state = json!({
        "Type": "Task",
        "Resource": "arn:aws:lambda:us-east-1:123456789012:function:HelloFunction",
        "End": true
    });
    for (k, v) in fields.as_object().unwrap() {
        state[k] = v.clone();
    }
    json!({"StartAt": "Hello", "States": {"Hello": state}})
}

// https://docs.aws.amazon.com/step-functions/latest/dg/input-output-inputpath-params.html (InputPath)
#[tokio::test(start_paused = true)]
async fn input_path_selects_part_of_the_input() {
    let input = json!({
        "comment": "Example for InputPath.",
        "dataset1": {"val1": 1, "val2": 2, "val3": 3},
        "dataset2": {"val1": "a", "val2": "b", "val3": "c"}
    });
    let machine = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "InputPath": "$.dataset2", "End": true}}});
    let result = execute(machine, input, TaskRegistry::new()).await;
    assert_eq!(
        result.output,
        Some(json!({"val1": "a", "val2": "b", "val3": "c"}))
    );
}

// https://docs.aws.amazon.com/step-functions/latest/dg/input-output-inputpath-params.html (Parameters, key-value pairs)
#[tokio::test(start_paused = true)]
async fn parameters_select_and_add_values() {
    let input = json!({
        "comment": "Example for Parameters.",
        "product": {
            "details": {"color": "blue", "size": "small", "material": "cotton"},
            "availability": "in stock",
            "sku": "2317",
            "cost": "$23"
        }
    });
    let machine = json!({"StartAt": "P", "States": {"P": {
        "Type": "Pass",
        "Parameters": {
            "comment": "Selecting what I care about.",
            "MyDetails": {
                "size.$": "$.product.details.size",
                "exists.$": "$.product.availability",
                "StaticValue": "foo"
            }
        },
        "End": true
    }}});
    let result = execute(machine, input, TaskRegistry::new()).await;
    assert_eq!(
        result.output,
        Some(json!({
            "comment": "Selecting what I care about.",
            "MyDetails": {"size": "small", "exists": "in stock", "StaticValue": "foo"}
        }))
    );
}

// https://docs.aws.amazon.com/step-functions/latest/dg/input-output-inputpath-params.html (ResultSelector)
#[tokio::test(start_paused = true)]
async fn result_selector_reshapes_the_task_result() {
    let raw = json!({
        "resourceType": "elasticmapreduce",
        "resource": "createCluster.sync",
        "output": {
            "SdkHttpMetadata": {"HttpHeaders": {"Content-Length": "1112"}, "HttpStatusCode": 200},
            "SdkResponseMetadata": {"RequestId": "6b3b9f5d-a466-4a77-89b3-a6c2f2e4a8d6"},
            "ClusterArn": "arn:aws:elasticmapreduce:us-east-1:123456789012:cluster/AKIAIOSFODNN7EXAMPLE",
            "ClusterId": "AKIAIOSFODNN7EXAMPLE"
        }
    });
    let machine = task_machine(json!({
        "ResultSelector": {"ClusterId.$": "$.output.ClusterId", "ResourceType.$": "$.resourceType"},
        "ResultPath": "$.EMROutput"
    }));
    let result = execute(machine, json!({"before": 1}), returning(raw)).await;
    assert_eq!(
        result.output,
        Some(
            json!({"before": 1, "EMROutput": {"ClusterId": "AKIAIOSFODNN7EXAMPLE", "ResourceType": "elasticmapreduce"}})
        )
    );
}

// https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultpath.html
fn resultpath_input() -> Value {
    json!({"comment": "This is a test", "details": "Default example", "who": "Step Functions"})
}

#[tokio::test(start_paused = true)]
async fn result_path_dollar_replaces_the_input() {
    let machine = task_machine(json!({"ResultPath": "$"}));
    let result = execute(
        machine,
        resultpath_input(),
        returning(json!("Hello, Step Functions!")),
    )
    .await;
    assert_eq!(result.output, Some(json!("Hello, Step Functions!")));
}

#[tokio::test(start_paused = true)]
async fn result_path_null_keeps_the_original_input() {
    let machine = task_machine(json!({"ResultPath": null}));
    let result = execute(
        machine,
        resultpath_input(),
        returning(json!("Hello, Step Functions!")),
    )
    .await;
    assert_eq!(result.output, Some(resultpath_input()));
}

#[tokio::test(start_paused = true)]
async fn result_path_includes_the_result_with_the_input() {
    let machine = task_machine(json!({"ResultPath": "$.taskresult"}));
    let result = execute(
        machine,
        resultpath_input(),
        returning(json!("Hello, Step Functions!")),
    )
    .await;
    assert_eq!(
        result.output,
        Some(json!({
            "comment": "This is a test",
            "details": "Default example",
            "who": "Step Functions",
            "taskresult": "Hello, Step Functions!"
        }))
    );
}

#[tokio::test(start_paused = true)]
async fn result_path_into_a_missing_node_creates_it() {
    let machine = task_machine(json!({"ResultPath": "$.strings.lambdaresult"}));
    let input = json!({"comment": "An input comment.", "strings": {"string1": "foo"}});
    let result = execute(machine, input, returning(json!("Hello, Step Functions!"))).await;
    assert_eq!(
        result.output,
        Some(
            json!({"comment": "An input comment.", "strings": {"string1": "foo", "lambdaresult": "Hello, Step Functions!"}})
        )
    );
}

// https://docs.aws.amazon.com/step-functions/latest/dg/input-output-example.html
// InputPath, ResultPath and OutputPath together: ResultPath writes into the raw input.
#[tokio::test(start_paused = true)]
async fn input_result_and_output_paths_together() {
    let input = json!({
        "comment": "An input comment.",
        "data": {"val1": 23, "val2": 17},
        "extra": "foo",
        "lambda": {"who": "AWS Step Functions"}
    });
    let tasks = TaskRegistry::new().with("HelloFunction", |request| async move {
        let who = request.input["who"].as_str().unwrap_or("nobody").to_owned();
        Ok(json!(format!("Hello, {who}!")))
    });
    let machine = task_machine(json!({
        "InputPath": "$.lambda",
        "ResultPath": "$.data.lambdaresult",
        "OutputPath": "$.data"
    }));
    let result = execute(machine, input, tasks).await;
    assert_eq!(
        result.output,
        Some(json!({"val1": 23, "val2": 17, "lambdaresult": "Hello, AWS Step Functions!"}))
    );
}

#[tokio::test(start_paused = true)]
async fn null_input_and_output_paths_give_empty_objects() {
    let machine = json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "InputPath": null, "Next": "B"},
        "B": {"Type": "Pass", "Result": {"x": 1}, "OutputPath": null, "End": true}
    }});
    let result = execute(machine, json!({"a": 1}), TaskRegistry::new()).await;
    assert_eq!(result.output, Some(json!({})));
}

#[tokio::test(start_paused = true)]
async fn parameters_read_the_context_object_and_intrinsics() {
    let machine = json!({"StartAt": "Describe", "States": {"Describe": {
        "Type": "Pass",
        "Parameters": {
            "execution.$": "$$.Execution.Name",
            "state.$": "$$.State.Name",
            "retries.$": "$$.State.RetryCount",
            "machine.$": "$$.StateMachine.Name",
            "input.$": "$$.Execution.Input",
            "greeting.$": "States.Format('Hello, {}!', $.who)"
        },
        "End": true
    }}});
    let result = execute(machine, json!({"who": "runway"}), TaskRegistry::new()).await;
    let output = result.output.expect("output");
    assert_eq!(output["state"], json!("Describe"));
    assert_eq!(output["retries"], json!(0));
    assert_eq!(output["machine"], json!("StateMachine"));
    assert_eq!(output["input"], json!({"who": "runway"}));
    assert_eq!(output["greeting"], json!("Hello, runway!"));
    assert!(output["execution"].as_str().is_some_and(|n| !n.is_empty()));
}

#[tokio::test(start_paused = true)]
async fn a_missing_parameter_path_fails_with_states_runtime() {
    let machine = json!({"StartAt": "P", "States": {"P": {
        "Type": "Pass", "Parameters": {"x.$": "$.missing"}, "End": true
    }}});
    let result = execute(machine, json!({"a": 1}), TaskRegistry::new()).await;
    assert_eq!(result.status, ExecutionStatus::Failed);
    assert_eq!(result.error.as_deref(), Some("States.Runtime"));
    let cause = result.cause.unwrap_or_default();
    assert!(
        cause.contains("'P'") && cause.contains("$.missing"),
        "{cause}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_result_path_into_a_non_object_fails_with_result_path_match_failure() {
    let machine = json!({"StartAt": "P", "States": {"P": {
        "Type": "Pass", "Result": 1, "ResultPath": "$.a.b", "End": true
    }}});
    let result = execute(machine, json!({"a": "text"}), TaskRegistry::new()).await;
    assert_eq!(
        result.error.as_deref(),
        Some("States.ResultPathMatchFailure")
    );
}
