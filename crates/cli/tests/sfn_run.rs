//! `runway sfn run` and `runway sfn validate`, run as the built binary.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A scratch directory of this test's own.
fn scratch(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("sfn_run")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn runway(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runway"))
        .args(args)
        .env("RUNWAY_LOG", "warn")
        .output()
        .unwrap()
}

/// The one JSON object `runway sfn run` prints.
fn report(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let mut lines = stdout.lines().filter(|l| !l.trim().is_empty());
    let value: Value = serde_json::from_str(lines.next().expect("no output")).unwrap();
    assert!(
        lines.next().is_none(),
        "more than one line on stdout: {stdout}"
    );
    value
}

const CHOOSER: &str = r#"{
  "StartAt": "Pick",
  "States": {
    "Pick": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThan": 10, "Next": "Big"}], "Default": "Small"},
    "Big": {"Type": "Pass", "Parameters": {"size": "big", "n.$": "$.n"}, "End": true},
    "Small": {"Type": "Pass", "Parameters": {"size": "small", "n.$": "$.n"}, "End": true}
  }
}"#;

#[test]
fn a_succeeding_execution_prints_its_output() {
    let dir = scratch("success");
    let definition = write(&dir, "chooser.asl.json", CHOOSER);
    let result = report(&runway(&[
        "sfn",
        "run",
        "--definition",
        definition.to_str().unwrap(),
        "--input",
        r#"{"n": 42}"#,
    ]));
    assert_eq!(
        result,
        json!({"status": "SUCCEEDED", "output": {"size": "big", "n": 42}, "error": null, "cause": null})
    );
    let result = report(&runway(&[
        "sfn",
        "run",
        "--definition",
        definition.to_str().unwrap(),
        "--input",
        r#"{"n": 1}"#,
    ]));
    assert_eq!(result["output"], json!({"size": "small", "n": 1}));
}

#[test]
fn input_can_be_read_from_a_file() {
    let dir = scratch("input_file");
    let definition = write(&dir, "chooser.asl.json", CHOOSER);
    let input = write(&dir, "input.json", r#"{"n": 11}"#);
    let input_arg = format!("@{}", input.display());
    let result = report(&runway(&[
        "sfn",
        "run",
        "--definition",
        definition.to_str().unwrap(),
        "--input",
        &input_arg,
    ]));
    assert_eq!(result["output"], json!({"size": "big", "n": 11}));

    let missing = runway(&[
        "sfn",
        "run",
        "--definition",
        definition.to_str().unwrap(),
        "--input",
        "@/nonexistent/in.json",
    ]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/in.json"));

    let bad = write(&dir, "bad.json", "{not json");
    let bad_arg = format!("@{}", bad.display());
    let invalid = runway(&[
        "sfn",
        "run",
        "--definition",
        definition.to_str().unwrap(),
        "--input",
        &bad_arg,
    ]);
    assert!(!invalid.status.success());
    let stderr = String::from_utf8_lossy(&invalid.stderr);
    assert!(stderr.contains("not valid JSON"), "{stderr}");
    assert!(invalid.stdout.is_empty());
}

#[test]
fn a_fail_state_reports_failed_with_error_and_cause_and_exits_zero() {
    let dir = scratch("fail");
    let definition = write(
        &dir,
        "fail.asl.json",
        r#"{"StartAt": "No", "States": {"No": {"Type": "Fail", "Error": "Demo.Refused", "Cause": "refused on purpose"}}}"#,
    );
    let result = report(&runway(&[
        "sfn",
        "run",
        "--definition",
        definition.to_str().unwrap(),
    ]));
    assert_eq!(
        result,
        json!({"status": "FAILED", "output": null, "error": "Demo.Refused", "cause": "refused on purpose"})
    );
}

#[test]
fn an_invalid_definition_is_refused_naming_the_state_and_field() {
    let dir = scratch("invalid");
    let definition = write(
        &dir,
        "broken.asl.json",
        r#"{"StartAt": "Go", "States": {"Go": {"Type": "Pass", "Next": "Nowhere"}}}"#,
    );
    let output = runway(&["sfn", "run", "--definition", definition.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("broken.asl.json"), "{stderr}");
    assert!(stderr.contains("Nowhere"), "{stderr}");
    assert!(stderr.contains("'Go'"), "{stderr}");

    let validate = runway(&[
        "sfn",
        "validate",
        "--definition",
        definition.to_str().unwrap(),
    ]);
    assert!(!validate.status.success());
    assert!(String::from_utf8_lossy(&validate.stderr).contains("Nowhere"));

    let not_json = write(&dir, "not-json.asl.json", "{\"StartAt\": ");
    let output = runway(&["sfn", "run", "--definition", not_json.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not valid JSON"));

    let missing = runway(&[
        "sfn",
        "run",
        "--definition",
        "/nonexistent/machine.asl.json",
    ]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/machine.asl.json"));
}

#[test]
fn validate_accepts_a_good_definition() {
    let dir = scratch("validate");
    let definition = write(&dir, "chooser.asl.json", CHOOSER);
    let output = runway(&[
        "sfn",
        "validate",
        "--definition",
        definition.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("valid"));
}

#[test]
fn an_hour_long_wait_takes_no_wall_time_on_the_virtual_clock() {
    let dir = scratch("wait");
    let definition = write(
        &dir,
        "wait.asl.json",
        r#"{"StartAt": "Hold", "States": {"Hold": {"Type": "Wait", "Seconds": 3600, "Next": "Done"}, "Done": {"Type": "Succeed"}}}"#,
    );
    let started = Instant::now();
    let output = runway(&[
        "sfn",
        "run",
        "--definition",
        definition.to_str().unwrap(),
        "--input",
        r#"{"k": 1}"#,
        "--history",
    ]);
    let elapsed = started.elapsed();
    let result = report(&output);
    // On the system clock this would take an hour; on the virtual clock it takes milliseconds.
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
    assert_eq!(result["status"], "SUCCEEDED");
    assert_eq!(result["output"], json!({"k": 1}));
    // The history shows the hour passing on the execution's clock.
    let events = result["history"].as_array().unwrap();
    let time = |kind: &str| {
        events
            .iter()
            .find(|e| e["type"] == kind)
            .and_then(|e| e["timestamp"].as_f64())
            .unwrap_or_else(|| panic!("no {kind} in {events:?}"))
    };
    let waited = time("WaitStateExited") - time("WaitStateEntered");
    assert!(
        (waited - 3600.0).abs() < 1.0,
        "waited {waited} s of execution time"
    );
}

#[test]
fn tasks_without_handlers_fail_the_execution_not_the_command() {
    let dir = scratch("task");
    let definition = write(
        &dir,
        "task.asl.json",
        r#"{"StartAt": "Call", "States": {"Call": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:nothing", "End": true}}}"#,
    );
    let result = report(&runway(&[
        "sfn",
        "run",
        "--definition",
        definition.to_str().unwrap(),
    ]));
    assert_eq!(result["status"], "FAILED");
    assert!(result["error"].is_string());
}

#[test]
fn real_time_waits_take_wall_time() {
    let dir = scratch("real_time");
    let definition = write(
        &dir,
        "wait.asl.json",
        r#"{"StartAt": "Hold", "States": {"Hold": {"Type": "Wait", "Seconds": 1, "End": true}}}"#,
    );
    let started = Instant::now();
    let result = report(&runway(&[
        "sfn",
        "run",
        "--definition",
        definition.to_str().unwrap(),
        "--real-time",
    ]));
    assert_eq!(result["status"], "SUCCEEDED");
    assert!(started.elapsed() >= Duration::from_secs(1));
}
