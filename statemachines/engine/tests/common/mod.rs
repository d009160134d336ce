#![allow(dead_code)]

use runway_asl::{Definition, HistoryEvent, RunConfig, RunResult, TaskRegistry, run};
use runway_clock::VirtualClock;
use serde_json::Value;

pub fn definition(value: Value) -> Definition {
    Definition::from_value(value).expect("a valid definition")
}

/// Runs on a virtual clock (call from a paused-time tokio test).
pub async fn execute(def: Value, input: Value, tasks: TaskRegistry) -> RunResult {
    let clock = VirtualClock::new().shared();
    run(&definition(def), input, RunConfig::new(clock, tasks)).await
}

pub fn events<'a>(history: &'a [HistoryEvent], event_type: &str) -> Vec<&'a HistoryEvent> {
    history
        .iter()
        .filter(|e| e.event_type == event_type)
        .collect()
}

pub fn seconds_between(a: &HistoryEvent, b: &HistoryEvent) -> f64 {
    (b.timestamp - a.timestamp).num_milliseconds() as f64 / 1000.0
}
