//! Definition parsing and validation: every problem names its state and field.

use proptest::prelude::*;
use runway_asl::Definition;
use runway_asl::choice::string_matches;
use runway_asl::service::validate_name;
use serde_json::json;

fn rejected(definition: serde_json::Value) -> runway_asl::DefinitionError {
    Definition::from_value(definition).expect_err("an invalid definition")
}

#[test]
fn unknown_state_types_are_named() {
    let e = rejected(json!({"StartAt": "A", "States": {"A": {"Type": "Sleep", "End": true}}}));
    assert_eq!(
        (e.state.as_deref(), e.field.as_deref()),
        (Some("A"), Some("Type"))
    );
    assert!(e.to_string().contains("Sleep"));
}

#[test]
fn next_or_end_is_required() {
    let e = rejected(json!({"StartAt": "A", "States": {"A": {"Type": "Pass"}}}));
    assert_eq!(
        (e.state.as_deref(), e.field.as_deref()),
        (Some("A"), Some("Next"))
    );
    let both = rejected(
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "A", "End": true}}}),
    );
    assert_eq!(both.field.as_deref(), Some("End"));
}

#[test]
fn dangling_transitions_are_named() {
    let e = rejected(json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}}));
    assert_eq!(
        (e.state.as_deref(), e.field.as_deref()),
        (Some("A"), Some("Next"))
    );
    let choice = rejected(json!({"StartAt": "C", "States": {"C": {"Type": "Choice",
        "Choices": [{"Variable": "$.x", "IsPresent": true, "Next": "Gone"}], "Default": "C"}}}));
    assert_eq!(choice.field.as_deref(), Some("Choices[0].Next"));
    let start = rejected(json!({"StartAt": "Z", "States": {"A": {"Type": "Succeed"}}}));
    assert_eq!(start.field.as_deref(), Some("StartAt"));
}

#[test]
fn unreachable_states_are_named() {
    let e = rejected(json!({"StartAt": "A", "States": {
        "A": {"Type": "Succeed"},
        "Orphan": {"Type": "Succeed"}
    }}));
    assert_eq!(e.state.as_deref(), Some("Orphan"));
    assert!(e.to_string().contains("unreachable"));
}

#[test]
fn bad_paths_are_named() {
    let e = rejected(
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "InputPath": "data.x", "End": true}}}),
    );
    assert_eq!(
        (e.state.as_deref(), e.field.as_deref()),
        (Some("A"), Some("InputPath"))
    );
    let unbalanced = rejected(
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "ResultPath": "$.a[0", "End": true}}}),
    );
    assert_eq!(unbalanced.field.as_deref(), Some("ResultPath"));
}

#[test]
fn nested_problems_name_the_inner_state() {
    let e = rejected(
        json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true,
        "ItemProcessor": {"StartAt": "Inner", "States": {"Inner": {"Type": "Pass"}}}}}}),
    );
    assert_eq!(
        (e.state.as_deref(), e.field.as_deref()),
        (Some("Inner"), Some("Next"))
    );
}

#[test]
fn field_rules_are_checked() {
    let cases = [
        (
            json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "End": true}}}),
            "Seconds",
        ),
        (
            json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1, "Timestamp": "2026-01-01T00:00:00Z", "End": true}}}),
            "Seconds",
        ),
        (
            json!({"StartAt": "T", "States": {"T": {"Type": "Task", "End": true}}}),
            "Resource",
        ),
        (
            json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "f", "TimeoutSeconds": 10, "HeartbeatSeconds": 10, "End": true}}}),
            "HeartbeatSeconds",
        ),
        (
            json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Retry": [], "End": true}}}),
            "Retry",
        ),
        (
            json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "f", "Retry": [{"ErrorEquals": []}], "End": true}}}),
            "Retry[0].ErrorEquals",
        ),
        (
            json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "f", "Retry": [{"ErrorEquals": ["E"], "BackoffRate": 0.5}], "End": true}}}),
            "Retry[0].BackoffRate",
        ),
        (
            json!({"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [{"Variable": "$.a", "NumericEquals": "1", "Next": "C"}]}}}),
            "Choices[0].NumericEquals",
        ),
        (
            json!({"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [{"Variable": "$.a", "Next": "C"}]}}}),
            "Choices[0]",
        ),
        (
            json!({"StartAt": "S", "States": {"S": {"Type": "Succeed", "Next": "S"}}}),
            "Next",
        ),
        (
            json!({"QueryLanguage": "JSONata", "StartAt": "P", "States": {"P": {"Type": "Pass", "InputPath": "$", "End": true}}}),
            "InputPath",
        ),
    ];
    for (definition, field) in cases {
        let e = rejected(definition.clone());
        assert_eq!(e.field.as_deref(), Some(field), "{definition}: {e}");
    }
}

#[test]
fn malformed_json_is_reported() {
    let e = Definition::parse("{\"StartAt\": ").unwrap_err();
    assert!(e.to_string().contains("not valid JSON"));
}

#[test]
fn a_complete_definition_parses() {
    let text = json!({
        "Comment": "all the state types",
        "StartAt": "Pass",
        "States": {
            "Pass": {"Type": "Pass", "Next": "Task"},
            "Task": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": "f"},
                     "Retry": [{"ErrorEquals": ["States.ALL"], "JitterStrategy": "FULL", "MaxDelaySeconds": 5}],
                     "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Fail"}], "Next": "Choice"},
            "Choice": {"Type": "Choice", "Choices": [{"Not": {"Variable": "$.x", "IsPresent": true}, "Next": "Wait"}], "Default": "Parallel"},
            "Wait": {"Type": "Wait", "SecondsPath": "$.s", "Next": "Parallel"},
            "Parallel": {"Type": "Parallel", "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Succeed"}}}], "Next": "Map"},
            "Map": {"Type": "Map", "Iterator": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": true}}}, "Next": "Succeed"},
            "Succeed": {"Type": "Succeed"},
            "Fail": {"Type": "Fail", "Error": "E", "Cause": "C"}
        }
    })
    .to_string();
    let definition = Definition::parse(&text).unwrap();
    assert_eq!(definition.machine.states.len(), 8);
}

proptest! {
    #[test]
    fn a_pattern_without_stars_matches_only_itself(text in "[a-z.]{0,12}", other in "[a-z.]{0,12}") {
        prop_assert!(string_matches(&text, &text));
        prop_assert_eq!(string_matches(&other, &text), other == text);
    }

    #[test]
    fn a_star_matches_any_infix(prefix in "[a-z]{0,6}", middle in "[a-z*]{0,6}", suffix in "[a-z]{0,6}") {
        let text = format!("{prefix}{middle}{suffix}");
        let pattern = format!("{prefix}*{suffix}");
        prop_assert!(string_matches(&text, &pattern));
    }

    #[test]
    fn escaped_stars_are_literal(prefix in "[a-z]{0,6}", suffix in "[a-z]{1,6}") {
        let pattern = format!("{prefix}\\*");
        let literal = format!("{prefix}*");
        let other = format!("{prefix}{suffix}");
        prop_assert!(string_matches(&literal, &pattern));
        prop_assert!(!string_matches(&other, &pattern));
    }

    #[test]
    fn names_of_safe_characters_are_valid(name in "[A-Za-z0-9_.-]{1,80}") {
        prop_assert!(validate_name(&name).is_ok());
    }

    #[test]
    fn names_with_forbidden_characters_are_invalid(prefix in "[a-z]{0,10}", bad in "[ <>{}\\[\\]?*\"#%\\\\^|~`$&,;:/\t\n]") {
        let name = format!("{prefix}{bad}");
        prop_assert!(validate_name(&name).is_err());
    }

    #[test]
    fn arbitrary_json_never_panics_the_parser(text in ".{0,200}") {
        let _ = Definition::parse(&text);
    }
}

#[test]
fn placeholders_are_substituted() {
    let template = r#"{"StartAt": "Route", "States": {"Route": {"Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "${RouteFunctionArn}"}, "End": true}}}"#;
    let mut values = std::collections::BTreeMap::new();
    values.insert(
        "RouteFunctionArn".to_owned(),
        "arn:aws:lambda:us-east-1:123456789012:function:route".to_owned(),
    );
    let definition = Definition::parse_with_substitutions(template, &values).unwrap();
    assert_eq!(
        definition.source["States"]["Route"]["Parameters"]["FunctionName"],
        json!("arn:aws:lambda:us-east-1:123456789012:function:route")
    );
    let missing = Definition::parse_with_substitutions(template, &Default::default()).unwrap_err();
    assert!(missing.to_string().contains("RouteFunctionArn"));
}

#[test]
fn payload_template_paths_and_intrinsics_are_checked() {
    let bad_path = rejected(json!({"StartAt": "P", "States": {"P": {"Type": "Pass",
        "Parameters": {"nested": {"x.$": "no dollar"}}, "End": true}}}));
    assert_eq!(bad_path.field.as_deref(), Some("Parameters.nested.x.$"));
    let bad_call = rejected(json!({"StartAt": "P", "States": {"P": {"Type": "Pass",
        "Parameters": {"x.$": "States.NoSuchFunction($.a)"}, "End": true}}}));
    assert_eq!(bad_call.field.as_deref(), Some("Parameters.x.$"));
    let not_string = rejected(
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "f",
        "ResultSelector": {"x.$": 1}, "End": true}}}),
    );
    assert_eq!(not_string.field.as_deref(), Some("ResultSelector.x.$"));
}
