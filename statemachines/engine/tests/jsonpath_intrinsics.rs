//! Checks JSONPath and the intrinsic functions against executions recorded on AWS.
//!
//! Every recorded case whose state machine is one Pass state that builds its output from
//! `Parameters` is replayed here: each `"key.$"` value is evaluated with
//! `runway_asl::intrinsics::evaluate` or `runway_asl::jsonpath::resolve` and the result
//! must equal AWS's recorded output.

use std::path::{Path, PathBuf};

use runway_asl::intrinsics;
use runway_asl::jsonpath::{self, Scope};
use serde_json::{Map, Value, json};

/// Where the recorded cases live: `$RUNWAY_ASL_CONFORMANCE_DIR`, else the shared folder beside
/// the repository.
fn cases_dir() -> PathBuf {
    runway_testkit::asl_conformance_dir().unwrap_or_else(|error| panic!("{error}"))
}

fn load_cases(dir: &Path) -> Vec<(String, Value)> {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| {
        panic!(
            "cannot read the recorded cases in {}: {e}; set RUNWAY_ASL_CONFORMANCE_DIR to the cases directory",
            dir.display()
        )
    });
    let mut cases: Vec<(String, Value)> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("readable case");
            let case: Value = serde_json::from_str(&text).expect("case is JSON");
            (p.file_name().unwrap().to_string_lossy().into_owned(), case)
        })
        .collect();
    cases.sort_by(|a, b| a.0.cmp(&b.0));
    cases
}

/// The `Parameters` of a definition that is a single Pass state with nothing else that
/// shapes its output.
fn single_pass_parameters(case: &Value) -> Option<&Map<String, Value>> {
    if case["query_language"] != "JSONPath" {
        return None;
    }
    let states = case["definition"]["States"].as_object()?;
    if states.len() != 1 {
        return None;
    }
    let state = states.values().next()?.as_object()?;
    let shaping = [
        "InputPath",
        "OutputPath",
        "ResultPath",
        "ResultSelector",
        "Result",
        "Assign",
    ];
    if state.get("Type")? != "Pass" || shaping.iter().any(|k| state.contains_key(*k)) {
        return None;
    }
    state.get("Parameters")?.as_object()
}

fn build(template: &Map<String, Value>, scope: &Scope<'_>) -> Value {
    let mut out = Map::new();
    for (key, value) in template {
        match (key.strip_suffix(".$"), value) {
            (Some(name), Value::String(expr)) => {
                let result = if intrinsics::is_intrinsic(expr) {
                    intrinsics::validate_intrinsic(expr)
                        .unwrap_or_else(|reason| panic!("{expr} does not validate: {reason}"));
                    intrinsics::evaluate_in_field(expr, key, scope)
                        .unwrap_or_else(|e| panic!("{expr}: {e:?}"))
                } else {
                    jsonpath::validate_path(expr).expect("valid path");
                    jsonpath::resolve(expr, scope).unwrap_or_else(|e| panic!("{expr}: {e}"))
                };
                out.insert(name.to_owned(), result);
            }
            (_, Value::Object(inner)) => {
                out.insert(key.clone(), build(inner, scope));
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(out)
}

#[test]
fn single_pass_state_cases_match_aws() {
    let cases = load_cases(&cases_dir());
    let mut checked = Vec::new();
    for (name, case) in &cases {
        let Some(parameters) = single_pass_parameters(case) else {
            continue;
        };
        if case["expected"]["status"] != "SUCCEEDED" {
            continue;
        }
        let input = &case["input"];
        let context = json!({"Execution": {"Input": input}});
        let variables = Map::new();
        let scope = Scope {
            input,
            context: &context,
            variables: &variables,
        };
        let output = build(parameters, &scope);
        assert_eq!(output, case["expected"]["output"], "{name}");
        checked.push(name.clone());
    }
    // The recorded set holds over thirty such cases (Format, Hash, ArrayContains,
    // StringSplit, Base64Decode, JsonMerge, the filter path...); finding far fewer means
    // the cases were not read.
    assert!(
        checked.len() >= 30,
        "only {} cases checked: {checked:?}",
        checked.len()
    );
    for expected in [
        "test_format_2",
        "test_hash",
        "test_string_split",
        "test_json_merge",
        "test_state_pass_regex_json_path_base",
    ] {
        assert!(
            checked.iter().any(|c| c.starts_with(expected)),
            "{expected} was not checked"
        );
    }
}

#[test]
fn every_path_and_intrinsic_in_recorded_jsonpath_definitions_validates() {
    fn walk(value: &Value, found: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    if let Value::String(text) = v {
                        let is_path_field = key.ends_with(".$")
                            || (key.ends_with("Path") && key != "ResultPath")
                            || key == "Variable";
                        if is_path_field {
                            found.push((key.clone(), text.clone()));
                        }
                        if key == "ResultPath" {
                            found.push(("ResultPath".into(), text.clone()));
                        }
                    }
                    walk(v, found);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    for (_, case) in load_cases(&cases_dir()) {
        if case["query_language"] == "JSONPath" {
            walk(&case["definition"], &mut found);
        }
    }
    assert!(found.len() > 50, "too few paths found: {}", found.len());
    for (field, text) in found {
        if intrinsics::is_intrinsic(&text) {
            assert!(
                intrinsics::validate_intrinsic(&text).is_ok(),
                "{field}: {text}"
            );
        } else if field == "ResultPath" {
            assert!(jsonpath::is_reference_path(&text), "{field}: {text}");
        } else if text.starts_with('$') {
            assert!(jsonpath::validate_path(&text).is_ok(), "{field}: {text}");
        }
    }
}
