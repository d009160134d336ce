//! Evaluation errors as AWS Step Functions raises them: JSONata results of the wrong type
//! (`States.QueryEvaluationError`), references to variables no state assigned, the Wait
//! state's path and timestamp errors, and the order in which `Assign` sees variables.

mod common;

use common::{events, execute, seconds_between};
use runway_asl::{ExecutionStatus, RunResult, TaskRegistry};
use serde_json::{Value, json};

const QUERY_EVALUATION_ERROR: &str = "States.QueryEvaluationError";

/// A JSONata machine of one state named `S` (entered at event #2) that ends.
fn jsonata_state(state: Value) -> Value {
    let mut state = state;
    state["End"] = json!(true);
    json!({"QueryLanguage": "JSONata", "StartAt": "S", "States": {"S": state}})
}

fn assert_failed(result: &RunResult, error: &str, cause: &str) {
    assert_eq!(
        result.status,
        ExecutionStatus::Failed,
        "{:?}",
        result.output
    );
    assert_eq!(result.error.as_deref(), Some(error), "{:?}", result.cause);
    assert_eq!(
        result.cause.as_deref(),
        Some(format!("An error occurred while executing the state 'S' (entered at the event id #2). {cause}").as_str())
    );
}

fn map_state(fields: Value) -> Value {
    let mut state = json!({
        "Type": "Map",
        "Items": "{% $states.input.list %}",
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}
    });
    if let (Some(state), Value::Object(fields)) = (state.as_object_mut(), fields) {
        state.extend(fields);
    }
    state
}

#[tokio::test(start_paused = true)]
async fn map_items_that_are_not_an_array_are_a_query_evaluation_error() {
    let machine = jsonata_state(map_state(json!({})));
    let result = execute(
        machine.clone(),
        json!({"list": {"a": 1}}),
        TaskRegistry::new(),
    )
    .await;
    assert_failed(
        &result,
        QUERY_EVALUATION_ERROR,
        "The JSONata expression '$states.input.list' specified for the field 'Items' returned an unexpected result type. Expected 'array', but was 'object' for value: {\"a\":1}",
    );
    let result = execute(machine, json!({"list": "abc"}), TaskRegistry::new()).await;
    assert_failed(
        &result,
        QUERY_EVALUATION_ERROR,
        "The JSONata expression '$states.input.list' specified for the field 'Items' returned an unexpected result type. Expected 'array', but was 'string' for value: \"abc\"",
    );
}

#[tokio::test(start_paused = true)]
async fn a_query_evaluation_error_is_caught_by_name_and_by_states_all() {
    for name in ["States.QueryEvaluationError", "States.ALL"] {
        let mut map = map_state(json!({}));
        map["Catch"] = json!([{"ErrorEquals": [name], "Next": "Caught"}]);
        map["Next"] = json!("Caught");
        let machine = json!({"QueryLanguage": "JSONata", "StartAt": "S", "States": {
            "S": map,
            "Caught": {"Type": "Pass", "Output": "{% $states.input.Error %}", "End": true}
        }});
        let result = execute(machine, json!({"list": 7}), TaskRegistry::new()).await;
        assert_eq!(
            result.status,
            ExecutionStatus::Succeeded,
            "{:?}",
            result.cause
        );
        assert_eq!(result.output, Some(json!(QUERY_EVALUATION_ERROR)));
    }
}

#[tokio::test(start_paused = true)]
async fn wait_seconds_from_jsonata_must_be_an_integer_in_range() {
    let machine = jsonata_state(json!({"Type": "Wait", "Seconds": "{% $states.input.s %}"}));
    let cases = [
        (
            json!(1.5),
            "returned an unexpected result type. Expected 'integer', but was 'number' for value: 1.5",
        ),
        (
            json!("10"),
            "returned an unexpected result type. Expected 'integer', but was 'string' for value: \"10\"",
        ),
        (
            json!(-1),
            "returned an invalid value. Expected an integer from 0 to 99999999, but was: -1",
        ),
    ];
    for (seconds, problem) in cases {
        let result = execute(machine.clone(), json!({"s": seconds}), TaskRegistry::new()).await;
        assert_failed(
            &result,
            QUERY_EVALUATION_ERROR,
            &format!(
                "The JSONata expression '$states.input.s' specified for the field 'Seconds' {problem}"
            ),
        );
    }
    let result = execute(machine, json!({"s": 3}), TaskRegistry::new()).await;
    assert_eq!(result.status, ExecutionStatus::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn wait_timestamp_from_jsonata_must_be_an_iso_8601_string() {
    let machine = jsonata_state(json!({"Type": "Wait", "Timestamp": "{% $states.input.t %}"}));
    let result = execute(
        machine.clone(),
        json!({"t": "tomorrow"}),
        TaskRegistry::new(),
    )
    .await;
    assert_failed(
        &result,
        QUERY_EVALUATION_ERROR,
        "The JSONata expression '$states.input.t' specified for the field 'Timestamp' returned a value that is not a valid ISO-8601 extended offset date-time format string: tomorrow",
    );
    let result = execute(machine, json!({"t": 5}), TaskRegistry::new()).await;
    assert_failed(
        &result,
        QUERY_EVALUATION_ERROR,
        "The JSONata expression '$states.input.t' specified for the field 'Timestamp' returned an unexpected result type. Expected 'string', but was 'number' for value: 5",
    );
}

#[tokio::test(start_paused = true)]
async fn a_wait_timestamp_counts_whole_seconds() {
    // The virtual clock starts at 2026-01-01T00:00:00Z; AWS drops the milliseconds.
    let machine = json!({"StartAt": "S", "States": {
        "S": {"Type": "Wait", "Timestamp": "2026-01-01T00:00:02.900Z", "End": true}
    }});
    let result = execute(machine, json!({}), TaskRegistry::new()).await;
    let entered = events(&result.history, "WaitStateEntered")[0];
    let exited = events(&result.history, "WaitStateExited")[0];
    assert_eq!(seconds_between(entered, exited), 2.0);
}

#[tokio::test(start_paused = true)]
async fn a_choice_condition_that_is_not_boolean_is_a_query_evaluation_error() {
    let machine = json!({"QueryLanguage": "JSONata", "StartAt": "S", "States": {
        "S": {"Type": "Choice", "Choices": [{"Condition": "{% $states.input.n %}", "Next": "Done"}], "Default": "Done"},
        "Done": {"Type": "Succeed"}
    }});
    let result = execute(machine, json!({"n": 1}), TaskRegistry::new()).await;
    assert_failed(
        &result,
        QUERY_EVALUATION_ERROR,
        "The JSONata expression '$states.input.n' specified for the field 'Condition' returned an unexpected result type. Expected 'boolean', but was 'number' for value: 1",
    );
}

#[tokio::test(start_paused = true)]
async fn task_timeouts_from_jsonata_must_be_positive_integers() {
    let tasks = TaskRegistry::new().with("Echo", |request| async move { Ok(request.input) });
    for field in ["TimeoutSeconds", "HeartbeatSeconds"] {
        let mut task = json!({
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Arguments": {"FunctionName": "Echo", "Payload": {}},
            "TimeoutSeconds": 100
        });
        task[field] = json!("{% $states.input.t %}");
        let machine = jsonata_state(task);
        let result = execute(machine.clone(), json!({"t": 0}), tasks.clone()).await;
        assert_failed(
            &result,
            QUERY_EVALUATION_ERROR,
            &format!(
                "The JSONata expression '$states.input.t' specified for the field '{field}' returned an invalid value. Expected an integer from 1 to 99999999, but was: 0"
            ),
        );
        let result = execute(machine, json!({"t": "5"}), tasks.clone()).await;
        assert_failed(
            &result,
            QUERY_EVALUATION_ERROR,
            &format!(
                "The JSONata expression '$states.input.t' specified for the field '{field}' returned an unexpected result type. Expected 'integer', but was 'string' for value: \"5\""
            ),
        );
    }
}

#[tokio::test(start_paused = true)]
async fn map_limits_from_jsonata_must_have_the_right_type() {
    let cases = [
        (
            "MaxConcurrency",
            json!("two"),
            "returned an unexpected result type. Expected 'integer', but was 'string' for value: \"two\"",
        ),
        (
            "ToleratedFailureCount",
            json!(-1),
            "returned an invalid value. Expected an integer of at least 0, but was: -1",
        ),
        (
            "ToleratedFailurePercentage",
            json!(150),
            "returned an invalid value. Expected a number from 0 to 100, but was: 150",
        ),
        (
            "ToleratedFailurePercentage",
            json!(true),
            "returned an unexpected result type. Expected 'number', but was 'boolean' for value: true",
        ),
    ];
    for (field, value, problem) in cases {
        let machine = jsonata_state(map_state(json!({field: "{% $states.input.v %}"})));
        let result = execute(
            machine,
            json!({"list": [1], "v": value}),
            TaskRegistry::new(),
        )
        .await;
        assert_failed(
            &result,
            QUERY_EVALUATION_ERROR,
            &format!(
                "The JSONata expression '$states.input.v' specified for the field '{field}' {problem}"
            ),
        );
    }
}

#[tokio::test(start_paused = true)]
async fn an_undefined_variable_in_jsonata_assign_or_output_fails_the_state() {
    for (field, template) in [
        ("Assign", json!({"x": "{% $undefinedVar %}"})),
        ("Output", json!({"x": "{% $undefinedVar + 1 %}"})),
        ("Output", json!("{% $undefinedVar %}")),
    ] {
        let mut state = json!({"Type": "Pass"});
        state[field] = template.clone();
        let result = execute(jsonata_state(state), json!({}), TaskRegistry::new()).await;
        let expression = match field {
            "Assign" => "$undefinedVar",
            _ if template.is_string() => "$undefinedVar",
            _ => "$undefinedVar + 1",
        };
        assert_failed(
            &result,
            QUERY_EVALUATION_ERROR,
            &format!(
                "The JSONata expression '{expression}' specified for the field '{field}' references the variable '$undefinedVar', which is not defined."
            ),
        );
    }
}

#[tokio::test(start_paused = true)]
async fn assign_reads_the_variables_from_before_the_state() {
    let machine = json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {
        "A": {"Type": "Pass", "Assign": {"a": 1}, "Next": "B"},
        // Every expression sees a = 1: the new a and the new b are not visible yet.
        "B": {"Type": "Pass", "Assign": {"a": "{% $a + 1 %}", "b": "{% $a %}"},
              "Output": {"a": "{% $a %}"}, "Next": "C"},
        "C": {"Type": "Pass", "Output": {"a": "{% $a %}", "b": "{% $b %}", "before": "{% $states.input %}"}, "End": true}
    }});
    let result = execute(machine, json!({}), TaskRegistry::new()).await;
    assert_eq!(
        result.output,
        Some(json!({"a": 2, "b": 1, "before": {"a": 1}})),
        "{:?}",
        result.cause
    );
    // A name assigned in the same Assign is not visible to its neighbours.
    let forward = jsonata_state(json!({"Type": "Pass", "Assign": {"x": 1, "y": "{% $x %}"}}));
    let result = execute(forward, json!({}), TaskRegistry::new()).await;
    assert_failed(
        &result,
        QUERY_EVALUATION_ERROR,
        "The JSONata expression '$x' specified for the field 'Assign' references the variable '$x', which is not defined.",
    );
}

#[tokio::test(start_paused = true)]
async fn jsonata_variables_reach_into_map_iterations_but_not_back_out() {
    let machine = json!({"QueryLanguage": "JSONata", "StartAt": "Set", "States": {
        "Set": {"Type": "Pass", "Assign": {"greeting": "hi"}, "Next": "Each"},
        "Each": {"Type": "Map", "Items": [1], "ItemProcessor": {"StartAt": "Use", "States": {
            "Use": {"Type": "Pass", "Assign": {"inner": 1}, "Output": "{% $greeting %}", "End": true}}},
            "Next": "After"},
        "After": {"Type": "Pass", "Output": "{% $inner %}", "End": true}
    }});
    let result = execute(machine, json!({}), TaskRegistry::new()).await;
    assert_eq!(result.error.as_deref(), Some(QUERY_EVALUATION_ERROR));
    let cause = result.cause.unwrap_or_default();
    assert!(
        cause.contains("'After'") && cause.contains("'$inner'"),
        "{cause}"
    );
}

#[tokio::test(start_paused = true)]
async fn seconds_and_timestamp_paths_to_missing_fields_say_so() {
    for field in ["SecondsPath", "TimestampPath"] {
        let machine = json!({"StartAt": "S", "States": {
            "S": {"Type": "Wait", field: "$.missing", "End": true}
        }});
        let result = execute(machine, json!({"present": 1}), TaskRegistry::new()).await;
        assert_failed(
            &result,
            "States.Runtime",
            &format!("The {field} parameter does not reference an input value: $.missing"),
        );
    }
}

#[tokio::test(start_paused = true)]
async fn seconds_path_values_that_are_not_non_negative_integers_fail() {
    let machine = json!({"StartAt": "S", "States": {
        "S": {"Type": "Wait", "SecondsPath": "$.s", "End": true}
    }});
    let cases = [
        (
            json!("10"),
            "The SecondsPath parameter cannot be parsed as a long value: $.s == 10",
        ),
        (
            json!(2.5),
            "The SecondsPath parameter cannot be parsed as a long value: $.s == 2.5",
        ),
        (
            json!(-3),
            "The SecondsPath parameter references a negative value: $.s == -3",
        ),
    ];
    for (seconds, cause) in cases {
        let result = execute(machine.clone(), json!({"s": seconds}), TaskRegistry::new()).await;
        assert_failed(&result, "States.Runtime", cause);
    }
}

#[tokio::test(start_paused = true)]
async fn task_timeout_paths_to_missing_fields_name_the_path() {
    let tasks = TaskRegistry::new().with("Echo", |request| async move { Ok(request.input) });
    let machine = json!({"StartAt": "S", "States": {"S": {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "Echo", "Payload": {}},
        "TimeoutSecondsPath": "$.timeout", "End": true
    }}});
    let result = execute(machine, json!({}), tasks).await;
    assert_failed(
        &result,
        "States.Runtime",
        "Invalid path '$.timeout' : No results for path: $['timeout']",
    );
}

#[tokio::test(start_paused = true)]
async fn jsonpath_bracket_names_take_escaped_quotes_dots_and_spaces() {
    let machine = json!({"StartAt": "S", "States": {"S": {
        "Type": "Pass",
        "Parameters": {
            "single.$": "$['it\\'s']",
            "double.$": "$[\"say \\\"hi\\\"\"]",
            "dotted.$": "$['a.b']['c d']"
        },
        "End": true
    }}});
    let input = json!({"it's": 1, "say \"hi\"": 2, "a.b": {"c d": 3}});
    let result = execute(machine, input, TaskRegistry::new()).await;
    assert_eq!(
        result.output,
        Some(json!({"single": 1, "double": 2, "dotted": 3})),
        "{:?}",
        result.cause
    );
}
