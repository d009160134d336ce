//! Executions per second of a 10-state Pass/Choice machine, and the cost of one state
//! transition (a 100-state chain of Pass states, divided by 100).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use runway_asl::{Definition, RunConfig, TaskRegistry, run};
use runway_clock::SystemClock;
use serde_json::{Map, Value, json};

fn ten_state_machine() -> Definition {
    let definition = json!({
        "StartAt": "Start",
        "States": {
            "Start": {"Type": "Pass", "Parameters": {"n.$": "$.n", "label": "job"}, "Next": "Route"},
            "Route": {"Type": "Choice", "Choices": [
                {"Variable": "$.n", "NumericGreaterThan": 10, "Next": "Big"},
                {"And": [{"Variable": "$.label", "StringEquals": "job"}, {"Variable": "$.n", "IsNumeric": true}], "Next": "Small"}
            ], "Default": "Unknown"},
            "Big": {"Type": "Pass", "Result": "big", "ResultPath": "$.size", "Next": "Check"},
            "Small": {"Type": "Pass", "Result": "small", "ResultPath": "$.size", "Next": "Check"},
            "Unknown": {"Type": "Pass", "Result": "unknown", "ResultPath": "$.size", "Next": "Check"},
            "Check": {"Type": "Choice", "Choices": [{"Variable": "$.size", "StringMatches": "*a*", "Next": "Shape"}], "Default": "Shape"},
            "Shape": {"Type": "Pass", "Parameters": {"size.$": "$.size", "n.$": "$.n"}, "Next": "Tag"},
            "Tag": {"Type": "Pass", "Result": {"tagged": true}, "ResultPath": "$.tags", "Next": "Trim"},
            "Trim": {"Type": "Pass", "OutputPath": "$.size", "Next": "Done"},
            "Done": {"Type": "Succeed"}
        }
    });
    Definition::from_value(definition).expect("valid")
}

fn chain(length: usize) -> Definition {
    let mut states = Map::new();
    for i in 0..length {
        let mut state = json!({"Type": "Pass"});
        if i + 1 == length {
            state["End"] = json!(true);
        } else {
            state["Next"] = json!(format!("S{}", i + 1));
        }
        states.insert(format!("S{i}"), state);
    }
    Definition::from_value(json!({"StartAt": "S0", "States": Value::Object(states)}))
        .expect("valid")
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let config = RunConfig::new(SystemClock::shared(), TaskRegistry::new());

    let machine = ten_state_machine();
    let mut group = c.benchmark_group("executions");
    group.throughput(Throughput::Elements(1));
    group.bench_function("ten_state_pass_choice", |b| {
        b.to_async(&runtime)
            .iter(|| run(&machine, json!({"n": 3}), config.clone()));
    });
    group.finish();

    let long = chain(100);
    let mut group = c.benchmark_group("transitions");
    group.throughput(Throughput::Elements(100));
    group.bench_function("pass_chain_100", |b| {
        b.to_async(&runtime)
            .iter(|| run(&long, json!({"payload": {"a": [1, 2, 3]}}), config.clone()));
    });
    group.finish();
}

criterion_group!(engine, benches);
criterion_main!(engine);
