//! Runs every execution recorded on real AWS (shared/asl-conformance/cases) through the
//! engine on virtual time and compares status, output, error and cause.

use std::collections::BTreeMap;
use std::path::PathBuf;

use runway_asl::{Definition, ExecutionStatus, RunConfig, TaskRegistry, run};
use runway_clock::VirtualClock;
use serde_json::Value;

/// Cases the engine is known to get wrong, with the reason for each.
///
/// The recordings replaced every timestamp with the word "date" (see the cases' README:
/// values the recording normalised are left out). For these Timestamp* comparisons the
/// definition and input therefore read `"date"` against `"date"`, and cases with the very
/// same definition and input expect opposite results, so no engine can pass all of them.
/// The engine answers as AWS does for a value that is not a timestamp: no match.
const KNOWN_FAILURES: &[(&str, &str)] = &[
    (
        "test_timestamp_equals.14",
        "timestamps normalised to \"date\" in the recording; test_timestamp_equals.15/16 have the same definition and input and expect the opposite",
    ),
    (
        "test_timestamp_greater_than.2",
        "timestamps normalised to \"date\" in the recording; test_timestamp_greater_than.0/1 have the same definition and input and expect the opposite",
    ),
    (
        "test_timestamp_less_than.1",
        "timestamps normalised to \"date\" in the recording; test_timestamp_less_than.0/2 have the same definition and input and expect the opposite",
    ),
    (
        "test_timestamp_less_than_equals.0",
        "timestamps normalised to \"date\" in the recording; test_timestamp_less_than_equals.2 has the same definition and input and expects the opposite",
    ),
    (
        "test_timestamp_less_than_equals.1",
        "timestamps normalised to \"date\" in the recording; test_timestamp_less_than_equals.2 has the same definition and input and expects the opposite",
    ),
];

const REQUIRED_PASS_RATE: f64 = 0.99;

fn cases_dir() -> PathBuf {
    runway_testkit::asl_conformance_dir().unwrap_or_else(|error| panic!("{error}"))
}

async fn check(case: &Value) -> Result<(), String> {
    let definition = Definition::from_value(case["definition"].clone())
        .map_err(|e| format!("definition rejected: {e}"))?;
    let clock = VirtualClock::new().shared();
    let config = RunConfig::new(clock, TaskRegistry::new());
    let result = run(&definition, case["input"].clone(), config).await;
    let expected = &case["expected"];
    let status = expected["status"].as_str().unwrap_or("");
    let got = match result.status {
        ExecutionStatus::Succeeded => "SUCCEEDED",
        ExecutionStatus::Failed => "FAILED",
        ExecutionStatus::TimedOut => "TIMED_OUT",
        ExecutionStatus::Aborted => "ABORTED",
        ExecutionStatus::Running => "RUNNING",
    };
    if got != status {
        return Err(format!(
            "status {got} (error {:?}, cause {:?}), expected {status}",
            result.error, result.cause
        ));
    }
    if status == "SUCCEEDED" {
        let output = result.output.unwrap_or(Value::Null);
        if output != expected["output"] {
            return Err(format!("output {output}, expected {}", expected["output"]));
        }
    } else {
        let error = result.error.map(Value::String).unwrap_or(Value::Null);
        let cause = result.cause.map(Value::String).unwrap_or(Value::Null);
        if error != expected["error"] || cause != expected["cause"] {
            return Err(format!(
                "error {error} cause {cause}, expected error {} cause {}",
                expected["error"], expected["cause"]
            ));
        }
    }
    Ok(())
}

#[test]
fn recorded_aws_executions_conform() {
    let dir = cases_dir();
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) => panic!(
            "the conformance cases are missing: looked in {} ({e}); set RUNWAY_ASL_CONFORMANCE_DIR to the cases folder",
            dir.display()
        ),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no cases found in {}", dir.display());

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a tokio runtime");
    let mut failures: BTreeMap<String, String> = BTreeMap::new();
    // Cases that share a definition and input but expect different results cannot all be
    // right for any engine (their distinguishing values were normalised away): they are
    // run and reported, but the pass rate is taken over the other cases.
    let mut expectations: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut by_language: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable case");
        let case: Value = serde_json::from_str(&text).expect("valid case JSON");
        let id = case["id"].as_str().unwrap_or_default().to_owned();
        let language = case["query_language"]
            .as_str()
            .unwrap_or("JSONPath")
            .to_owned();
        let key = format!("{}|{}", case["definition"], case["input"]);
        expectations
            .entry(key)
            .or_default()
            .push((id.clone(), case["expected"].to_string()));
        let outcome = runtime.block_on(check(&case));
        let entry = by_language.entry(language).or_default();
        entry.0 += 1;
        match outcome {
            Ok(()) => entry.1 += 1,
            Err(reason) => {
                failures.insert(id, reason);
            }
        }
    }
    let undecidable: Vec<String> = expectations
        .values()
        .filter(|group| group.iter().any(|(_, e)| *e != group[0].1))
        .flat_map(|group| group.iter().map(|(id, _)| id.clone()))
        .collect();
    let total = files.len();
    let passed = total - failures.len();
    let decidable = total - undecidable.len();
    let decidable_failures = failures
        .keys()
        .filter(|id| !undecidable.contains(id))
        .count();
    let rate = (decidable - decidable_failures) as f64 / decidable as f64;
    println!(
        "ASL conformance: {passed}/{total} passed ({:.1}%); {}/{decidable} of the cases whose recording is unambiguous ({:.1}%)",
        passed as f64 * 100.0 / total as f64,
        decidable - decidable_failures,
        rate * 100.0
    );
    println!(
        "  {} cases share a definition and input with a case expecting another result",
        undecidable.len()
    );
    for (language, (count, ok)) in &by_language {
        println!("  {language}: {ok}/{count}");
    }
    for (id, reason) in &failures {
        println!("  FAIL {id}: {reason}");
    }
    let listed: BTreeMap<&str, &str> = KNOWN_FAILURES.iter().copied().collect();
    let unlisted: Vec<&String> = failures
        .keys()
        .filter(|id| !listed.contains_key(id.as_str()))
        .collect();
    let passing_but_listed: Vec<&&str> = listed
        .keys()
        .filter(|id| !failures.contains_key(**id))
        .collect();
    assert!(
        unlisted.is_empty(),
        "cases failing that are not in KNOWN_FAILURES: {unlisted:?}"
    );
    assert!(
        passing_but_listed.is_empty(),
        "cases in KNOWN_FAILURES that pass (or do not exist); remove them: {passing_but_listed:?}"
    );
    assert!(
        rate >= REQUIRED_PASS_RATE,
        "pass rate {:.1}% is below {:.0}%",
        rate * 100.0,
        REQUIRED_PASS_RATE * 100.0
    );
}
