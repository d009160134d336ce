//! A readable live view of jobs moving through the job machine: one line per state entered,
//! with the reason the previous step gave.
//!
//! ```text
//! 12:00:01.250  job-29679449001-r700000001-a1  started       octo-org/app [self-hosted, linux, x64]
//! 12:00:01.262  job-29679449001-r700000001-a1  Admit         pool linux-x64 takes labels …
//! 12:00:04.913  job-29679449001-r700000001-a1  Done          succeeded
//! ```

use std::collections::HashMap;

use runway_asl::ExecutionEvent;
use serde_json::Value;

/// Longest detail shown on a line.
const DETAIL_CHARS: usize = 110;

/// Turns execution events into lines. Remembers, per execution, what the last step said so
/// the next state's line can show it.
#[derive(Debug, Default)]
pub struct EventView {
    last_reason: HashMap<String, String>,
    last_state: HashMap<String, String>,
}

/// `arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME` → `NAME`.
pub fn execution_name(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

fn shorten(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= DETAIL_CHARS {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(DETAIL_CHARS - 1).collect();
    short.push('…');
    short
}

/// What a step's output says about itself: its `reason`, `summary` or `status`.
fn reason_of(output: &Value) -> Option<String> {
    ["reason", "summary"]
        .iter()
        .find_map(|key| output.get(*key).and_then(Value::as_str))
        .map(str::to_owned)
        .or_else(|| {
            output
                .get("status")
                .and_then(Value::as_str)
                .map(|status| format!("status {status}"))
        })
}

fn parse(text: Option<&Value>) -> Value {
    text.and_then(Value::as_str)
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or(Value::Null)
}

impl EventView {
    pub fn new() -> EventView {
        EventView::default()
    }

    /// The line for `event`, if it is one worth showing.
    pub fn line(&mut self, event: &ExecutionEvent) -> Option<String> {
        let execution = execution_name(&event.execution_arn).to_owned();
        let details = event.event.detail().cloned().unwrap_or(Value::Null);
        let kind = event.event.event_type.as_str();
        let (state, detail) = match kind {
            "ExecutionStarted" => {
                let input = parse(details.get("input"));
                let repository = input
                    .pointer("/repository/full_name")
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                let labels: Vec<&str> = input
                    .pointer("/job/labels")
                    .and_then(Value::as_array)
                    .map(|labels| labels.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                (
                    "started".to_owned(),
                    format!("{repository} [{}]", labels.join(", ")),
                )
            }
            "TaskSucceeded" => {
                if let Some(reason) = reason_of(&parse(details.get("output"))) {
                    self.last_reason.insert(execution, reason);
                }
                return None;
            }
            "TaskFailed" | "LambdaFunctionFailed" => {
                let error = details.get("error").and_then(Value::as_str).unwrap_or("");
                let cause = details.get("cause").and_then(Value::as_str).unwrap_or("");
                self.last_reason
                    .insert(execution, format!("{error}: {cause}"));
                return None;
            }
            "TaskTimedOut" => {
                self.last_reason
                    .insert(execution, "timed out (deadline reached)".to_owned());
                return None;
            }
            "ExecutionSucceeded" => {
                let state = self
                    .last_state
                    .remove(&execution)
                    .unwrap_or_else(|| "ended".to_owned());
                self.last_reason.remove(&execution);
                (state, "succeeded".to_owned())
            }
            "ExecutionFailed" => {
                self.last_state.remove(&execution);
                self.last_reason.remove(&execution);
                let error = details.get("error").and_then(Value::as_str).unwrap_or("");
                let cause = details.get("cause").and_then(Value::as_str).unwrap_or("");
                ("FAILED".to_owned(), format!("{error}: {cause}"))
            }
            "ExecutionAborted" | "ExecutionTimedOut" => {
                self.last_state.remove(&execution);
                self.last_reason.remove(&execution);
                let what = if kind == "ExecutionAborted" {
                    "STOPPED"
                } else {
                    "TIMED OUT"
                };
                let cause = details.get("cause").and_then(Value::as_str).unwrap_or("");
                (what.to_owned(), cause.to_owned())
            }
            _ if kind.ends_with("StateEntered") => {
                let name = details
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_owned();
                // A Choice decides instantly and a Pass reshapes: the next Task line says more.
                if kind == "ChoiceStateEntered" || kind == "PassStateEntered" {
                    return None;
                }
                self.last_state.insert(execution.clone(), name.clone());
                let detail = self.last_reason.remove(&execution).unwrap_or_default();
                (name, detail)
            }
            _ => return None,
        };
        let time = event.event.timestamp.format("%H:%M:%S%.3f");
        let line = format!("{time}  {execution}  {state:<26}{}", shorten(&detail));
        Some(line.trim_end().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runway_asl::HistoryEvent;
    use serde_json::json;

    fn event(kind: &str, details: Value) -> ExecutionEvent {
        let mut map = serde_json::Map::new();
        if let Some(key) = runway_asl::history::details_key(kind) {
            map.insert(key.to_owned(), details);
        }
        ExecutionEvent {
            execution_arn: "arn:aws:states:us-east-1:123456789012:execution:job:job-7-r1-a1"
                .to_owned(),
            event: HistoryEvent {
                timestamp: chrono::Utc::now(),
                event_type: kind.to_owned(),
                id: 1,
                previous_event_id: 0,
                details: map,
            },
        }
    }

    #[test]
    fn a_state_line_shows_what_the_previous_step_said() {
        let mut view = EventView::new();
        let started = view
            .line(&event(
                "ExecutionStarted",
                json!({"input": json!({"repository": {"full_name": "octo-org/app"},
                    "job": {"labels": ["self-hosted", "linux"]}}).to_string()}),
            ))
            .unwrap();
        assert!(started.contains("job-7-r1-a1  started"), "{started}");
        assert!(
            started.contains("octo-org/app [self-hosted, linux]"),
            "{started}"
        );

        let route = view
            .line(&event("TaskStateEntered", json!({"name": "Route"})))
            .unwrap();
        assert!(route.ends_with("Route"), "{route}");
        assert_eq!(
            view.line(&event(
                "TaskSucceeded",
                json!({"output": json!({"decision": "run", "reason": "labels matched pool linux"}).to_string()})
            )),
            None
        );
        assert_eq!(
            view.line(&event("ChoiceStateEntered", json!({"name": "IsItOurs"}))),
            None
        );
        let admit = view
            .line(&event("TaskStateEntered", json!({"name": "Admit"})))
            .unwrap();
        assert!(admit.contains("Admit"), "{admit}");
        assert!(admit.ends_with("labels matched pool linux"), "{admit}");

        let done = view
            .line(&event("SucceedStateEntered", json!({"name": "Done"})))
            .unwrap();
        assert!(done.contains("Done"), "{done}");
        let end = view
            .line(&event("ExecutionSucceeded", json!({"output": "{}"})))
            .unwrap();
        assert!(end.contains("Done") && end.ends_with("succeeded"), "{end}");
    }

    #[test]
    fn failures_show_error_and_cause_and_long_details_are_cut() {
        let mut view = EventView::new();
        let failed = view
            .line(&event(
                "ExecutionFailed",
                json!({"error": "Runway.JobFailed", "cause": "x".repeat(300)}),
            ))
            .unwrap();
        assert!(failed.contains("FAILED"), "{failed}");
        assert!(failed.contains("Runway.JobFailed: xxx"), "{failed}");
        assert!(failed.ends_with('…'), "{failed}");
        assert!(failed.chars().count() < 200, "{failed}");
        assert_eq!(view.line(&event("TaskScheduled", json!({}))), None);
    }
}
