//! What a campaign counts: live runners and held slots per pool while it runs (against the
//! pools' ceilings), what is left once it is over, and how each job's execution ended.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use runway_asl::{ExecutionDescription, ExecutionStatus};
use runway_providers::Provider;
use runway_store::{PoolName, Store};
use serde::Serialize;
use tokio::sync::watch;

use super::boot::live_instances;
use crate::system::LocalSystem;

/// How often the sampler counts.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// Where a pool's runners are counted.
#[derive(Clone)]
pub(crate) enum Hosts {
    /// Whatever the pool's provider lists as its own.
    Provider(Arc<dyn Provider>),
    /// Instances tagged with the pool, read from the AWS API directly (not through the proxy).
    Ec2(aws_sdk_ec2::Client),
}

/// One pool as the campaign watches it.
#[derive(Clone)]
pub(crate) struct WatchedPool {
    pub name: String,
    pub max_running: u32,
    pub hosts: Hosts,
}

/// The most a pool held at once.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PoolPeak {
    pub pool: String,
    pub max_running: u32,
    /// Most slots held at once in the store.
    pub peak_slots: u32,
    /// Most runners alive at once (the provider's, or EC2 instances pending or running).
    pub peak_runners: u32,
}

impl PoolPeak {
    /// How many of the two counts went over the ceiling.
    pub fn violations(&self) -> u32 {
        u32::from(self.peak_slots > self.max_running)
            + u32::from(self.peak_runners > self.max_running)
    }
}

/// Live runners of each pool: names (or `instance (runner)`).
pub(crate) async fn live_runners(pools: &[WatchedPool]) -> BTreeMap<String, Vec<String>> {
    let mut by_pool: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut ec2_seen = false;
    for pool in pools {
        by_pool.entry(pool.name.clone()).or_default();
        match &pool.hosts {
            Hosts::Provider(provider) => {
                if let Ok(owned) = provider.owned().await {
                    for runner in owned {
                        let of = runner.pool.clone().unwrap_or_else(|| pool.name.clone());
                        if of == pool.name {
                            by_pool.entry(of).or_default().push(runner.runner_name);
                        }
                    }
                }
            }
            // One look-up serves every EC2 pool.
            Hosts::Ec2(ec2) if !ec2_seen => {
                ec2_seen = true;
                if let Ok(instances) = live_instances(ec2).await {
                    for (id, tags) in instances {
                        let of = tags.get("runway:pool").cloned().unwrap_or_default();
                        let runner = tags.get("runway:runner").cloned().unwrap_or_default();
                        by_pool
                            .entry(of)
                            .or_default()
                            .push(format!("{id} ({runner})"));
                    }
                }
            }
            Hosts::Ec2(_) => {}
        }
    }
    by_pool
}

/// Counts slots and runners of every pool until `stop` turns true; keeps the peaks.
pub(crate) async fn sample_peaks(
    store: Arc<dyn Store>,
    pools: Vec<WatchedPool>,
    peaks: Arc<Mutex<BTreeMap<String, PoolPeak>>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let runners = live_runners(&pools).await;
        for pool in &pools {
            let slots = match PoolName::new(pool.name.as_str()) {
                Ok(name) => store.slot_holders(&name).await.map(|h| h.len()).ok(),
                Err(_) => None,
            };
            let alive = runners.get(&pool.name).map(Vec::len).unwrap_or(0);
            let mut peaks = peaks.lock().unwrap_or_else(PoisonError::into_inner);
            let peak = peaks.entry(pool.name.clone()).or_insert_with(|| PoolPeak {
                pool: pool.name.clone(),
                max_running: pool.max_running,
                peak_slots: 0,
                peak_runners: 0,
            });
            let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
            if let Some(slots) = slots {
                peak.peak_slots = peak.peak_slots.max(count(slots));
            }
            peak.peak_runners = peak.peak_runners.max(count(alive));
        }
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(SAMPLE_EVERY) => {}
            _ = stop.changed() => {}
        }
    }
}

/// A job whose execution failed, and why, in one sentence.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FailedJob {
    pub job_id: Option<u64>,
    pub execution: String,
    pub error: String,
    pub cause: String,
}

/// A job whose execution had not ended when the campaign stopped waiting.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StuckJob {
    pub job_id: Option<u64>,
    pub execution: String,
    pub cause: String,
    /// The execution's last history events, one line each (type, state, output or error), to
    /// tell what it last heard.
    pub last_events: Vec<String>,
}

/// What was left behind once the campaign was over.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Leaks {
    /// Runner hosts still alive: provider runners, EC2 instances pending or running.
    pub hosts: Vec<String>,
    /// Runners still registered with GitHub (the emulator).
    pub github_runners: Vec<String>,
    /// JIT configs still in SSM.
    pub ssm_parameters: Vec<String>,
    /// Slots still held in the store (`pool: execution`).
    pub slots: Vec<String>,
}

/// `job-<id>-r<attempt>…` → the job id.
pub(crate) fn job_id_of(execution: &str) -> Option<u64> {
    execution
        .strip_prefix("job-")?
        .split('-')
        .next()?
        .parse()
        .ok()
}

/// The first sentence of `text`, at most 300 characters.
pub(crate) fn one_sentence(text: &str) -> String {
    let text = text.trim();
    let end = text
        .char_indices()
        .find(|(i, c)| *c == '.' && text[i + 1..].starts_with(' '))
        .map(|(i, _)| i + 1)
        .unwrap_or(text.len());
    let sentence = &text[..end];
    if sentence.chars().count() > 300 {
        let cut: String = sentence.chars().take(297).collect();
        format!("{cut}...")
    } else {
        sentence.to_owned()
    }
}

/// The executions' outcomes: succeeded count, failed and still running ones.
pub(crate) fn outcomes(
    system: &LocalSystem,
    executions: &[ExecutionDescription],
) -> (usize, Vec<FailedJob>, Vec<StuckJob>) {
    let mut done = 0;
    let mut failed = Vec::new();
    let mut stuck = Vec::new();
    for execution in executions {
        match execution.status {
            ExecutionStatus::Succeeded => done += 1,
            ExecutionStatus::Running => {
                let history = system
                    .service()
                    .get_execution_history(&execution.execution_arn, false)
                    .unwrap_or_default();
                let waiting = open_states(&history);
                let last_events = history
                    .iter()
                    .skip(history.len().saturating_sub(LAST_EVENTS))
                    .map(event_line)
                    .collect();
                stuck.push(StuckJob {
                    job_id: job_id_of(&execution.name),
                    execution: execution.name.clone(),
                    cause: format!(
                        "Still running when the campaign stopped waiting, in {}.",
                        if waiting.is_empty() {
                            "an unknown state".to_owned()
                        } else {
                            waiting.join(" and ")
                        }
                    ),
                    last_events,
                });
            }
            _ => {
                let error = execution
                    .error
                    .clone()
                    .unwrap_or_else(|| execution.status.as_str().to_owned());
                let cause = execution
                    .cause
                    .as_deref()
                    .map(one_sentence)
                    .filter(|c| !c.is_empty())
                    .unwrap_or_else(|| {
                        format!("The execution ended {}.", execution.status.as_str())
                    });
                failed.push(FailedJob {
                    job_id: job_id_of(&execution.name),
                    execution: execution.name.clone(),
                    error,
                    cause,
                });
            }
        }
    }
    (done, failed, stuck)
}

/// How many of a stuck execution's last events its report shows.
const LAST_EVENTS: usize = 16;

/// One history event in a line: id, type, the state it names, and what it carried (output,
/// error and cause), cut short.
fn event_line(event: &runway_asl::HistoryEvent) -> String {
    let mut line = format!("{} {}", event.id, event.event_type);
    for details in event.details.values() {
        for key in ["name", "error", "cause", "output", "resourceType"] {
            if let Some(value) = details.get(key) {
                let text = match value {
                    serde_json::Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                let cut: String = text.chars().take(200).collect();
                line.push_str(&format!(" {key}={cut}"));
            }
        }
    }
    line
}

/// The states an execution is in now, innermost: each entered state whose branch of the
/// history has not moved on (no exit of it, no later state entered after it, as a caught error
/// moves on without an exit). A Parallel around open states is left out.
pub(crate) fn open_states(history: &[runway_asl::HistoryEvent]) -> Vec<&str> {
    let mut next: std::collections::HashMap<u64, Vec<&runway_asl::HistoryEvent>> =
        Default::default();
    for event in history {
        next.entry(event.previous_event_id).or_default().push(event);
    }
    let mut open = Vec::new();
    for entered in history
        .iter()
        .filter(|event| event.event_type.ends_with("StateEntered"))
    {
        let Some(name) = crate::bench::state_name(entered, "stateEnteredEventDetails") else {
            continue;
        };
        let mut at = entered;
        let still_in = loop {
            match next.get(&at.id).map(Vec::as_slice) {
                None | Some([]) => break true,
                Some([only]) => {
                    let moved_on = only.event_type.ends_with("StateExited")
                        || only.event_type.ends_with("StateEntered");
                    if moved_on {
                        break false;
                    }
                    at = only;
                }
                // Branches fork from here: a Parallel or Map, never itself the innermost.
                Some(_) => break false,
            }
        };
        if still_in && !open.contains(&name) {
            open.push(name);
        }
    }
    open
}

/// SSM parameters whose names begin with `prefix/`.
pub(crate) async fn ssm_parameters(
    ssm: &aws_sdk_ssm::Client,
    prefix: &str,
) -> Result<Vec<String>, String> {
    let filter = aws_sdk_ssm::types::ParameterStringFilter::builder()
        .key("Name")
        .option("BeginsWith")
        .values(format!("{prefix}/"))
        .build()
        .map_err(|error| error.to_string())?;
    let mut names = Vec::new();
    let mut pages = ssm
        .describe_parameters()
        .parameter_filters(filter)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|error| format!("DescribeParameters failed: {error:?}"))?;
        names.extend(
            page.parameters()
                .iter()
                .filter_map(|p| p.name().map(str::to_owned)),
        );
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_id_is_read_from_the_execution_name() {
        assert_eq!(job_id_of("job-42-r1-abc"), Some(42));
        assert_eq!(job_id_of("sweep-1"), None);
    }

    #[test]
    fn a_cause_is_cut_to_its_first_sentence() {
        assert_eq!(
            one_sentence("The job could not be served: no runner. Details follow."),
            "The job could not be served: no runner."
        );
        assert_eq!(one_sentence("v1.2 broke"), "v1.2 broke");
        assert_eq!(one_sentence(&"x".repeat(400)).chars().count(), 300);
    }

    fn event(id: u64, previous: u64, kind: &str, state: Option<&str>) -> runway_asl::HistoryEvent {
        let mut details = serde_json::Map::new();
        if let Some(state) = state {
            let key = if kind.ends_with("StateEntered") {
                "stateEnteredEventDetails"
            } else {
                "stateExitedEventDetails"
            };
            details.insert(key.to_owned(), serde_json::json!({ "name": state }));
        }
        runway_asl::HistoryEvent {
            timestamp: chrono::Utc::now(),
            event_type: kind.to_owned(),
            id,
            previous_event_id: previous,
            details,
        }
    }

    #[test]
    fn a_state_left_by_a_caught_error_is_not_open_and_one_entered_again_is() {
        // A runner branch: AwaitRunnerGone ends, Teardown fails with a caught error back into
        // AwaitRunnerGone, which waits again.
        let history = vec![
            event(1, 0, "ExecutionStarted", None),
            event(2, 1, "ParallelStateEntered", Some("Follow")),
            event(3, 2, "ParallelStateStarted", None),
            event(4, 3, "TaskStateEntered", Some("AwaitJobStart")),
            event(5, 3, "TaskStateEntered", Some("AwaitRunnerGone")),
            event(6, 5, "TaskScheduled", None),
            event(7, 6, "TaskSucceeded", None),
            event(8, 7, "TaskStateExited", Some("AwaitRunnerGone")),
            event(9, 8, "TaskStateEntered", Some("Teardown")),
            event(10, 9, "TaskScheduled", None),
            event(11, 10, "TaskFailed", None),
            event(12, 11, "TaskStateEntered", Some("AwaitRunnerGone")),
            event(13, 12, "TaskScheduled", None),
            event(14, 4, "TaskScheduled", None),
        ];
        assert_eq!(
            open_states(&history),
            vec!["AwaitJobStart", "AwaitRunnerGone"]
        );
    }
}
