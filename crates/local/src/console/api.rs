//! What the console's JSON endpoints answer, built from the engine, the store and the
//! recorded metrics.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use runway_asl::{ExecutionDescription, ExecutionStatus, HistoryEvent};
use runway_jobflow::metrics::{Dimension, Metric, Sample};
use runway_store::{PoolName, RunnerState, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast;

use super::Console;
use super::graph::Path;

/// Most executions one list answer carries (newest first); a bench run starts thousands.
pub const LIST_LIMIT: usize = 500;

/// The query of the executions list; an empty or absent field matches everything.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ExecutionFilter {
    pub status: Option<String>,
    pub pool: Option<String>,
    pub repository: Option<String>,
}

/// One execution as the list shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionSummary {
    pub name: String,
    pub status: String,
    /// The pool the Route step chose; absent before it has, or when no pool takes the job.
    pub pool: Option<String>,
    pub repository: Option<String>,
    pub job: Option<String>,
    pub labels: Vec<String>,
    pub start: String,
    pub stop: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionList {
    pub executions: Vec<ExecutionSummary>,
    /// How many matched, before [`LIST_LIMIT`].
    pub matched: usize,
    pub total: usize,
    /// What the filters offer.
    pub statuses: Vec<&'static str>,
    pub pools: Vec<String>,
    pub repositories: Vec<String>,
}

/// One history event, its details as they are in `GetExecutionHistory`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventView {
    pub id: u64,
    pub previous: u64,
    #[serde(rename = "type")]
    pub kind: String,
    pub at: String,
    pub state: Option<String>,
    pub details: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionDetail {
    pub execution: ExecutionSummary,
    pub input: String,
    pub output: Option<String>,
    pub path: Path,
    pub events: Vec<EventView>,
}

const STATUSES: [ExecutionStatus; 5] = [
    ExecutionStatus::Running,
    ExecutionStatus::Succeeded,
    ExecutionStatus::Failed,
    ExecutionStatus::TimedOut,
    ExecutionStatus::Aborted,
];

fn matches(wanted: Option<&String>, value: Option<&str>) -> bool {
    match wanted.map(|w| w.trim()).filter(|w| !w.is_empty()) {
        None => true,
        Some(wanted) => value.is_some_and(|value| value.eq_ignore_ascii_case(wanted)),
    }
}

/// The pool the Route state chose, read from its output (`$.route.pool`); `None` until the
/// execution has left Route.
fn routed_pool(history: &[HistoryEvent]) -> Option<Option<String>> {
    let exited = history.iter().find(|event| {
        event.event_type.ends_with("StateExited")
            && event.detail().and_then(|d| d["name"].as_str()) == Some("Route")
    })?;
    let output: Value = exited
        .detail()
        .and_then(|d| d["output"].as_str())
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or(Value::Null);
    Some(output["route"]["pool"].as_str().map(str::to_owned))
}

impl Console {
    fn history(&self, arn: &str) -> Vec<HistoryEvent> {
        self.inner
            .service
            .get_execution_history(arn, false)
            .unwrap_or_default()
    }

    /// The execution's pool, from the cache or its history.
    fn pool_of(&self, execution: &ExecutionDescription) -> Option<String> {
        let mut routes = self
            .inner
            .routes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(pool) = routes.get(&execution.name) {
            return pool.clone();
        }
        let pool = routed_pool(&self.history(&execution.execution_arn))?;
        routes.insert(execution.name.clone(), pool.clone());
        pool
    }

    fn summary(&self, execution: &ExecutionDescription) -> ExecutionSummary {
        let input: Value = serde_json::from_str(&execution.input).unwrap_or(Value::Null);
        let text = |pointer: &str| input.pointer(pointer).and_then(Value::as_str);
        ExecutionSummary {
            name: execution.name.clone(),
            status: execution.status.as_str().to_owned(),
            pool: self.pool_of(execution),
            repository: text("/repository/full_name").map(str::to_owned),
            job: text("/job/name").map(str::to_owned),
            labels: input
                .pointer("/job/labels")
                .and_then(Value::as_array)
                .map(|labels| {
                    labels
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            start: execution.start_date.to_rfc3339(),
            stop: execution.stop_date.map(|date| date.to_rfc3339()),
            error: execution.error.clone(),
            cause: execution.cause.clone(),
        }
    }

    /// The job executions matching `filter`, newest first.
    pub fn executions(&self, filter: &ExecutionFilter) -> ExecutionList {
        let all = self
            .inner
            .service
            .list_executions(&self.inner.machine_arn, None)
            .unwrap_or_default();
        let total = all.len();
        let summaries: Vec<ExecutionSummary> = all.iter().map(|e| self.summary(e)).collect();
        let repositories: BTreeSet<String> = summaries
            .iter()
            .filter_map(|s| s.repository.clone())
            .collect();
        let matching: Vec<ExecutionSummary> = summaries
            .into_iter()
            .filter(|s| {
                matches(filter.status.as_ref(), Some(&s.status))
                    && matches(filter.pool.as_ref(), s.pool.as_deref())
                    && matches(filter.repository.as_ref(), s.repository.as_deref())
            })
            .collect();
        ExecutionList {
            matched: matching.len(),
            executions: matching.into_iter().take(LIST_LIMIT).collect(),
            total,
            statuses: STATUSES.iter().map(ExecutionStatus::as_str).collect(),
            pools: self.inner.pools.iter().map(|p| p.name.clone()).collect(),
            repositories: repositories.into_iter().collect(),
        }
    }

    /// Execution ARNs are the machine's with `execution` and the name.
    fn execution_arn(&self, name: &str) -> String {
        format!(
            "{}:{name}",
            self.inner
                .machine_arn
                .replacen(":stateMachine:", ":execution:", 1)
        )
    }

    /// As [`Console::execution`], once the running execution's history has more than `after`
    /// events or `wait` has passed: a page that already shows `after` events is answered
    /// when there is something new to show (long polling), not a second later.
    pub async fn execution_after(
        &self,
        name: &str,
        after: usize,
        wait: Duration,
    ) -> Option<ExecutionDetail> {
        let arn = self.execution_arn(name);
        // Subscribed before looking, so an event recorded in between is not missed.
        let mut events = self.inner.service.subscribe();
        let running =
            self.inner.service.describe_execution(&arn).ok()?.status == ExecutionStatus::Running;
        if running && self.history(&arn).len() <= after {
            let _ = tokio::time::timeout(wait, async {
                loop {
                    match events.recv().await {
                        Ok(event) if event.execution_arn != arn => {}
                        Err(broadcast::error::RecvError::Lagged(_)) | Ok(_) => return,
                        Err(broadcast::error::RecvError::Closed) => {
                            std::future::pending::<()>().await
                        }
                    }
                }
            })
            .await;
        }
        self.execution(name)
    }

    /// One execution by name: where it went, where it is and every event of its history.
    pub fn execution(&self, name: &str) -> Option<ExecutionDetail> {
        let arn = self.execution_arn(name);
        let execution = self.inner.service.describe_execution(&arn).ok()?;
        let history = self.history(&arn);
        let path = Path::of_history(&history, execution.status == ExecutionStatus::Running);
        let events = history
            .iter()
            .map(|event| EventView {
                id: event.id,
                previous: event.previous_event_id,
                kind: event.event_type.clone(),
                at: event.timestamp.to_rfc3339(),
                state: event
                    .detail()
                    .and_then(|d| d["name"].as_str())
                    .filter(|_| event.event_type.contains("State"))
                    .map(str::to_owned),
                details: event.detail().cloned().unwrap_or(Value::Null),
            })
            .collect();
        Some(ExecutionDetail {
            execution: self.summary(&execution),
            input: execution.input.clone(),
            output: execution.output.clone(),
            path,
            events,
        })
    }
}

/// Why the pools could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("the store could not be read: {0}")]
    Store(#[from] StoreError),
    #[error("pool {pool}: {reason}")]
    Pool { pool: String, reason: String },
}

/// A pool as the pools page shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolView {
    pub name: String,
    pub labels: Vec<String>,
    pub provider: String,
    /// The pool ceiling.
    pub max_running: u32,
    pub slots_in_use: usize,
    pub slot_holders: Vec<String>,
    pub queue_depth: usize,
    /// Executions waiting for a slot, next first.
    pub queue: Vec<String>,
    pub oldest_wait_seconds: Option<i64>,
    /// Runner records by state: `booting`, `idle`, `busy`, `gone`.
    pub runners_by_state: BTreeMap<&'static str, usize>,
    pub runners: Vec<RunnerView>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunnerView {
    pub name: String,
    pub state: String,
    pub execution: String,
    pub provider: String,
    pub launched_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolsView {
    pub pools: Vec<PoolView>,
}

fn state_kind(state: &RunnerState) -> &'static str {
    match state {
        RunnerState::Booting => "booting",
        RunnerState::Idle => "idle",
        RunnerState::Busy { .. } => "busy",
        RunnerState::Gone => "gone",
    }
}

impl Console {
    /// Each pool's slots, queue and runners, read from the store now.
    pub async fn pools(&self) -> Result<PoolsView, ConsoleError> {
        let store = &self.inner.store;
        let now = self.inner.service.clock().now();
        let mut pools = Vec::new();
        for summary in &self.inner.pools {
            let pool = PoolName::new(summary.name.clone()).map_err(|error| ConsoleError::Pool {
                pool: summary.name.clone(),
                reason: error.to_string(),
            })?;
            let holders = store.slot_holders(&pool).await?;
            let waiters = store.waiters(&pool).await?;
            let runners = store.runners_of_pool(&pool).await?;
            let mut by_state: BTreeMap<&'static str, usize> =
                ["booting", "idle", "busy", "gone"].map(|s| (s, 0)).into();
            for runner in &runners {
                *by_state.entry(state_kind(&runner.state)).or_default() += 1;
            }
            pools.push(PoolView {
                name: summary.name.clone(),
                labels: summary.labels.clone(),
                provider: summary.provider.to_string(),
                max_running: summary.max_running,
                slots_in_use: holders.len(),
                slot_holders: holders
                    .iter()
                    .map(|h| h.execution.as_str().to_owned())
                    .collect(),
                queue_depth: waiters.len(),
                queue: waiters
                    .iter()
                    .map(|w| w.execution.as_str().to_owned())
                    .collect(),
                oldest_wait_seconds: waiters
                    .iter()
                    .map(|w| w.enqueued_at)
                    .min()
                    .map(|first| (now - first).num_seconds().max(0)),
                runners_by_state: by_state,
                runners: runners
                    .iter()
                    .map(|r| RunnerView {
                        name: r.runner_name.as_str().to_owned(),
                        state: r.state.as_key(),
                        execution: r.execution.as_str().to_owned(),
                        provider: r.provider.clone(),
                        launched_at: r.launched_at.to_rfc3339(),
                    })
                    .collect(),
            });
        }
        Ok(PoolsView { pools })
    }
}

/// The widgets of the stack's CloudWatch dashboard (`template.yaml`, `Dashboard`): their
/// titles and the metrics each draws.
pub const DASHBOARD: [(&str, &[Metric]); 8] = [
    (
        "Job wait, GitHub queued to admitted (s)",
        &[Metric::JobWaitSeconds],
    ),
    (
        "Queue: jobs waiting and the oldest wait (s), by pool",
        &[Metric::QueueDepth, Metric::OldestWaitSeconds],
    ),
    (
        "Launches, fallbacks to on-demand, failures, spot reclaims",
        &[
            Metric::RunnerLaunches,
            Metric::LaunchFallbacks,
            Metric::LaunchFailures,
            Metric::SpotReclaims,
        ],
    ),
    ("Slots in use, by pool", &[Metric::SlotsInUse]),
    (
        "Runner time paid (runner-seconds) and runners torn down idle",
        &[Metric::RunnerLifetimeSeconds, Metric::IdleRunnersTornDown],
    ),
    (
        "Policy decisions (ms, p99) and fallbacks",
        &[Metric::PolicyDecisionMilliseconds, Metric::PolicyFallbacks],
    ),
    (
        "Slot waits, ceilings hit, policy waits and rejected jobs",
        &[
            Metric::SlotWaits,
            Metric::CeilingHits,
            Metric::PolicyWaits,
            Metric::JobsRejected,
        ],
    ),
    (
        "Runner boot to first job and job run (s, p50 and p90), runner-minutes paid idle",
        &[
            Metric::RunnerBootSeconds,
            Metric::JobRunSeconds,
            Metric::RunnerIdleSeconds,
        ],
    ),
];

/// Figures over a set of samples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub count: usize,
    pub sum: f64,
    pub latest: Option<f64>,
    pub max: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
}

impl Stats {
    fn of<'a>(samples: impl Iterator<Item = &'a Sample>) -> Stats {
        let values: Vec<f64> = samples.map(|s| s.value).collect();
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        // Nearest rank, as CloudWatch's percentiles over raw values.
        let percentile = |p: f64| {
            let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
            sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
        };
        Stats {
            count: values.len(),
            sum: values.iter().sum(),
            latest: values.last().copied(),
            max: sorted.last().copied(),
            p50: percentile(50.0),
            p90: percentile(90.0),
            p99: percentile(99.0),
        }
    }
}

/// A metric's figures in all, and split by pool or policy where its samples are.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricView {
    pub name: &'static str,
    pub unit: &'static str,
    pub all: Stats,
    /// `(dimension, value, figures)`, e.g. `("Pool", "linux-x64", …)`.
    pub series: Vec<(&'static str, String, Stats)>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PanelView {
    pub title: &'static str,
    pub metrics: Vec<MetricView>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricsView {
    pub samples: usize,
    pub panels: Vec<PanelView>,
}

/// The dashboard's figures over `samples`.
pub fn metrics_view(samples: &[Sample]) -> MetricsView {
    let panels = DASHBOARD
        .iter()
        .map(|(title, metrics)| PanelView {
            title,
            metrics: metrics
                .iter()
                .map(|&metric| {
                    let of: Vec<&Sample> = samples.iter().filter(|s| s.metric == metric).collect();
                    let mut split: BTreeMap<(&'static str, String), Vec<&Sample>> = BTreeMap::new();
                    for sample in &of {
                        for (dimension, value) in &sample.dimensions {
                            // The dashboard splits by pool and by policy only.
                            if matches!(dimension, Dimension::Pool | Dimension::Policy) {
                                split
                                    .entry((dimension.name(), value.clone()))
                                    .or_default()
                                    .push(sample);
                            }
                        }
                    }
                    MetricView {
                        name: metric.name(),
                        unit: metric.unit().name(),
                        all: Stats::of(of.iter().copied()),
                        series: split
                            .into_iter()
                            .map(|((dimension, value), samples)| {
                                (dimension, value, Stats::of(samples.into_iter()))
                            })
                            .collect(),
                    }
                })
                .collect(),
        })
        .collect();
    MetricsView {
        samples: samples.len(),
        panels,
    }
}

impl Console {
    /// The dashboard's figures over what the job flow and the reaper recorded.
    pub fn metrics(&self) -> MetricsView {
        metrics_view(&self.inner.metrics.samples())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn the_panels_are_the_dashboards_widgets_and_cover_every_metric() {
        let template = include_str!("../../../../template.yaml");
        let dashboard = &template[template.find("DashboardBody").unwrap()..];
        let dashboard = &dashboard[..dashboard.find("Outputs:").unwrap_or(dashboard.len())];
        for (title, _) in DASHBOARD {
            assert!(
                dashboard.contains(&format!("\"title\": \"{title}\"")),
                "{title}"
            );
        }
        for metric in Metric::ALL {
            let on_dashboard = dashboard.contains(&format!("\"{}\"", metric.name()))
                || dashboard.contains(&format!("MetricName=\\\"{}\\\"", metric.name()));
            let in_console = DASHBOARD.iter().any(|(_, m)| m.contains(&metric));
            assert!(on_dashboard, "{} is not on the dashboard", metric.name());
            assert!(in_console, "{} is not in the console", metric.name());
        }
    }

    #[test]
    fn figures_are_split_by_pool_and_policy() {
        let at = Utc::now();
        let samples = vec![
            Sample::new(Metric::QueueDepth, 2.0, at).by(Dimension::Pool, "linux"),
            Sample::new(Metric::QueueDepth, 5.0, at).by(Dimension::Pool, "gpu"),
            Sample::new(Metric::QueueDepth, 1.0, at).by(Dimension::Pool, "linux"),
            Sample::new(Metric::JobWaitSeconds, 4.0, at),
        ];
        let view = metrics_view(&samples);
        assert_eq!(view.samples, 4);
        let depth = view
            .panels
            .iter()
            .flat_map(|p| &p.metrics)
            .find(|m| m.name == "QueueDepth")
            .unwrap();
        assert_eq!(depth.all.count, 3);
        assert_eq!(depth.all.sum, 8.0);
        assert_eq!(depth.all.latest, Some(1.0));
        assert_eq!(depth.all.max, Some(5.0));
        let linux = depth.series.iter().find(|s| s.1 == "linux").unwrap();
        assert_eq!(
            (linux.0, linux.2.count, linux.2.latest),
            ("Pool", 2, Some(1.0))
        );
        let wait = &view.panels[0].metrics[0];
        assert_eq!((wait.all.p50, wait.all.p99), (Some(4.0), Some(4.0)));
        assert!(wait.series.is_empty());
    }
}
