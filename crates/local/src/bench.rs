//! `runway bench`: how fast the job machine moves jobs on this machine.
//!
//! Everything is real except where runners run: signed `queued` webhooks from the GitHub
//! emulator over HTTP, the webhook intake, the local engine running `statemachines/job.asl.json`,
//! the job flow with the in-memory store and the configured policies, and runners that speak
//! the emulator's runner protocol over HTTP. The runners are tasks in this process
//! ([`InProcessRunners`]) so that the figures are runway's, not process start-up's; with
//! `--runner-processes` each runner is a `runway runner-sim` process instead.
//!
//! Two figures:
//! - **webhook → launch**: jobs one after another; the time from the emulator queueing a job to
//!   the pool's provider being asked to launch its runner (webhook signed and delivered, intake,
//!   execution started, Route, Admit, JIT config, Provision).
//! - **throughput**: a burst of jobs queued at once, until every execution has ended and every
//!   job is completed; jobs per second, state transitions per job, peak memory.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use runway_asl::ExecutionStatus;
use runway_github_emulator::NewJob;
use runway_providers::{
    LaunchRequest, Launched, OwnedRunner, Provider, ProviderError, ProviderKind, Terminated,
};
use serde::Serialize;
use tokio::sync::Notify;

use crate::LocalConfig;
use crate::system::{LocalError, LocalSystem, Supplied};

const REPOSITORY: &str = "octo-org/app";
const POOL: &str = "bench";
const LABELS: [&str; 3] = ["self-hosted", "linux", "x64"];
/// What Step Functions Standard charges for 1,000 state transitions, in US dollars (the
/// published price in most regions, us-east-1 among them).
const STANDARD_PRICE_PER_1000_TRANSITIONS: f64 = 0.025;
/// Jobs run before the latency samples, so connections and caches are warm.
const WARM_UP_JOBS: usize = 20;

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Jobs timed one after another for webhook → launch.
    pub latency_samples: usize,
    /// Jobs queued at once for the throughput run.
    pub jobs: usize,
    /// Run each runner as a `runway runner-sim` process (this binary) rather than a task.
    pub runner_processes: bool,
    /// Longest wait for a burst to finish before the run is called failed.
    pub timeout: Duration,
    /// Where progress lines go while the bench runs (a terminal); none: quiet.
    pub progress: Option<Progress>,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            latency_samples: 300,
            jobs: 1000,
            runner_processes: false,
            timeout: Duration::from_secs(600),
            progress: None,
        }
    }
}

/// Receives a line now and then while a bench runs, so a long run is seen to move.
#[derive(Clone)]
pub struct Progress(Arc<dyn Fn(&str) + Send + Sync>);

impl Progress {
    pub fn new(say: impl Fn(&str) + Send + Sync + 'static) -> Progress {
        Progress(Arc::new(say))
    }

    fn say(&self, line: &str) {
        (self.0)(line);
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

/// How often a progress line is written at most.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Says `line()` when `progress` is set and the last line is older than [`PROGRESS_EVERY`].
pub(crate) fn report_progress(
    progress: Option<&Progress>,
    last: &mut Option<Instant>,
    line: impl FnOnce() -> String,
) {
    let Some(progress) = progress else {
        return;
    };
    if last.is_none_or(|at| at.elapsed() >= PROGRESS_EVERY) {
        progress.say(&line());
        *last = Some(Instant::now());
    }
}

/// Waits until `system` is idle, saying how many executions have ended meanwhile.
pub(crate) async fn wait_until_idle_saying(
    system: &LocalSystem,
    timeout: Duration,
    progress: Option<&Progress>,
    what: &str,
) -> bool {
    let idle = system.wait_until_idle(timeout);
    tokio::pin!(idle);
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    let mut last = None;
    loop {
        tokio::select! {
            finished = &mut idle => return finished,
            _ = tick.tick() => report_progress(progress, &mut last, || {
                let executions = system.executions();
                let ended = executions
                    .iter()
                    .filter(|e| e.status != ExecutionStatus::Running)
                    .count();
                format!("{what}: {ended} of {} executions ended", executions.len())
            }),
        }
    }
}

/// Webhook → launch call, jobs one after another.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyReport {
    pub samples: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// A burst of jobs through the whole machine.
#[derive(Debug, Clone, Serialize)]
pub struct ThroughputReport {
    pub jobs: usize,
    pub seconds: f64,
    pub jobs_per_second: f64,
    pub succeeded: usize,
    /// States entered per execution (what Step Functions Standard bills), mean over the burst.
    pub transitions_per_job: f64,
    /// States entered by the execution with the fewest, by name, in order: the happy path.
    pub happy_path: Vec<String>,
    /// Step function invocations per execution (its `LambdaFunctionScheduled` and
    /// `TaskScheduled` events), mean over the burst; the webhook function's invocations (one
    /// per delivery) come on top.
    pub step_invocations_per_job: f64,
    /// Peak resident memory of this process after the run, in MiB.
    pub peak_rss_mib: Option<f64>,
    /// When the executions ended, in seconds after the burst was queued: whether a slow run
    /// is slow throughout or waits on a few stragglers.
    pub ended_after: EndedAfter,
    /// One execution's start to end, in seconds.
    pub execution_seconds: Spread,
}

/// Seconds after the burst was queued by which a share of the executions had ended.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EndedAfter {
    pub half: f64,
    pub p90: f64,
    pub p99: f64,
    pub all: f64,
}

/// The median, 99th percentile and maximum of a set of durations, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub runners: &'static str,
    pub latency: LatencyReport,
    pub throughput: ThroughputReport,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Local(#[from] LocalError),
    #[error("the emulator refused a job: {0}")]
    Emulator(String),
    #[error("job {job_id} was never launched within {seconds} s; the job machine is stuck")]
    NeverLaunched { job_id: u64, seconds: u64 },
    #[error(
        "{left} of {jobs} executions were still running after {seconds} s, waiting in: {waiting}"
    )]
    Unfinished {
        jobs: usize,
        left: usize,
        seconds: u64,
        waiting: String,
    },
    #[error("{failed} of {jobs} executions did not succeed, e.g. {example}")]
    Failed {
        jobs: usize,
        failed: usize,
        example: String,
    },
}

/// When something first happened to each execution (its launch asked for, say), waited on by
/// job: the bench's executions are named `job-<id>-…`.
#[derive(Debug, Default)]
pub(crate) struct ExecutionTimes {
    first: Mutex<HashMap<String, Instant>>,
    noted: Notify,
}

impl ExecutionTimes {
    /// Notes now for `execution`, unless it was noted before.
    pub(crate) fn note(&self, execution: &str) {
        self.first
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(execution.to_owned())
            .or_insert_with(Instant::now);
        self.noted.notify_waiters();
    }

    fn of_job(&self, job_id: u64) -> Option<Instant> {
        let prefix = format!("job-{job_id}-");
        self.first
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(execution, _)| execution.starts_with(&prefix))
            .map(|(_, at)| *at)
    }

    /// The time noted for the execution of `job_id`, waiting up to `timeout` for it.
    pub(crate) async fn wait_for_job(&self, job_id: u64, timeout: Duration) -> Option<Instant> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let noted = self.noted.notified();
            if let Some(at) = self.of_job(job_id) {
                return Some(at);
            }
            if tokio::time::timeout_at(deadline, noted).await.is_err() {
                return self.of_job(job_id);
            }
        }
    }
}

/// Runs each runner as a task in this process and notes when each launch was asked for.
#[derive(Debug, Default)]
pub struct InProcessRunners {
    url: Mutex<Option<String>>,
    /// The pool its runners are listed under (the bench's own pool when `None`).
    pool: Option<String>,
    launched: ExecutionTimes,
    running: Mutex<BTreeMap<String, (String, tokio::task::AbortHandle)>>,
}

impl InProcessRunners {
    /// Runners reach the emulator at `url` (the JIT config's own URL otherwise).
    pub fn new(url: Option<String>) -> Self {
        InProcessRunners {
            url: Mutex::new(url),
            ..InProcessRunners::default()
        }
    }

    /// Runners of `pool`, reaching the emulator at `url`.
    pub fn for_pool(url: Option<String>, pool: &str) -> Self {
        InProcessRunners {
            url: Mutex::new(url),
            pool: Some(pool.to_owned()),
            ..InProcessRunners::default()
        }
    }

    /// Where runners reach the emulator from now on.
    pub fn set_url(&self, url: Option<String>) {
        *self.url.lock().unwrap_or_else(PoisonError::into_inner) = url;
    }

    /// When the launch for the execution of `job_id` was asked for, waiting up to `timeout`.
    pub(crate) async fn wait_for_launch(&self, job_id: u64, timeout: Duration) -> Option<Instant> {
        self.launched.wait_for_job(job_id, timeout).await
    }
}

/// What launching an in-process runner answers: a task of this process, launched now.
fn in_process_launch(runner_name: String, instance_id: String) -> Launched {
    Launched {
        runner_name,
        provider: ProviderKind::Local,
        instance_id,
        instance_type: None,
        subnet_id: None,
        capacity: None,
        launched_at: chrono::Utc::now(),
    }
}

#[async_trait]
impl Provider for InProcessRunners {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Local
    }

    async fn launch(&self, request: LaunchRequest) -> Result<Launched, ProviderError> {
        self.launched.note(&request.execution);
        // A retried launch (the step died after its first try) finds the runner that try
        // started, as the EC2 and ECS providers find their instance or task: two runners
        // under one name would leave one behind.
        if let Some(instance_id) = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&request.runner_name)
            .filter(|(owner, runner)| *owner == request.execution && !runner.is_finished())
            .map(|(_, runner)| format!("task-{}", runner.id()))
        {
            return Ok(in_process_launch(request.runner_name, instance_id));
        }
        let url = self
            .url
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let jitconfig = request.jit_config.expose().to_owned();
        let runner = tokio::spawn(async move {
            let options = runway_github_emulator::runner::RunnerOptions::new(url, jitconfig);
            if let Err(error) = runway_github_emulator::runner::run(options).await {
                tracing::warn!(%error, "in-process runner stopped");
            }
        });
        let instance_id = format!("task-{}", runner.id());
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                request.runner_name.clone(),
                (request.execution.clone(), runner.abort_handle()),
            );
        Ok(in_process_launch(request.runner_name, instance_id))
    }

    async fn terminate(
        &self,
        execution: &str,
        runner_name: &str,
    ) -> Result<Terminated, ProviderError> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let owned = running
            .get(runner_name)
            .is_some_and(|(owner, _)| owner == execution);
        Ok(match owned.then(|| running.remove(runner_name)).flatten() {
            Some((_, runner)) if !runner.is_finished() => {
                runner.abort();
                Terminated::Stopped {
                    instance_ids: vec![runner_name.to_owned()],
                }
            }
            _ => Terminated::AlreadyGone,
        })
    }

    async fn owned(&self) -> Result<Vec<OwnedRunner>, ProviderError> {
        self.owned_where(None)
    }

    async fn owned_by(&self, execution: &str) -> Result<Vec<OwnedRunner>, ProviderError> {
        self.owned_where(Some(execution))
    }
}

impl InProcessRunners {
    fn owned_where(&self, execution: Option<&str>) -> Result<Vec<OwnedRunner>, ProviderError> {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(running
            .iter()
            .filter(|(_, (owner, runner))| {
                !runner.is_finished() && execution.is_none_or(|e| e == owner)
            })
            .map(|(name, (execution, _))| OwnedRunner {
                provider: ProviderKind::Local,
                execution: execution.clone(),
                runner_name: name.clone(),
                pool: Some(self.pool.clone().unwrap_or_else(|| POOL.to_owned())),
                instance_id: name.clone(),
                launched_at: None,
            })
            .collect())
    }
}

/// The bench's configuration: one pool with no ceiling to speak of, the emulator on port 0, no
/// demo workload, the example policies when they are built.
pub fn bench_config() -> Result<LocalConfig, LocalError> {
    let mut config = LocalConfig::embedded_default()?;
    let text = format!(
        r#"
[listen]
webhook = "127.0.0.1:0"
sfn = "127.0.0.1:0"
emulator = "127.0.0.1:0"

[github]
mode = "emulator"
# GitHub sends deliveries concurrently; so does the emulator here.
delivery_concurrency = 16
repositories = ["{REPOSITORY}"]
organizations = ["octo-org"]

[store]
kind = "memory"

[[pools]]
name = "{POOL}"
labels = {labels:?}
max_running = 100000
max_per_org = 100000
max_per_repo = 100000
boot_timeout_seconds = 120
idle_timeout_seconds = 60
params = {{ "fair-share.org-percent" = "100", "fair-share.repo-percent" = "100" }}
provider = {{ kind = "local" }}
"#,
        labels = LABELS
    );
    let mut bench = LocalConfig::from_toml_str(&text)?;
    // The example policies, found (or not) as the embedded default finds them.
    bench.policies = std::mem::take(&mut config.policies);
    bench.policies_optional = config.policies_optional;
    bench.search_dirs = std::mem::take(&mut config.search_dirs);
    Ok(bench)
}

async fn start(options: &BenchOptions) -> Result<(LocalSystem, Arc<InProcessRunners>), BenchError> {
    let config = bench_config()?;
    let runners = Arc::new(InProcessRunners::default());
    let mut supplied = Supplied::default();
    if !options.runner_processes {
        supplied
            .providers
            .insert(POOL.to_owned(), runners.clone() as Arc<dyn Provider>);
    }
    let system = LocalSystem::start_with(config, supplied).await?;
    *runners.url.lock().unwrap_or_else(PoisonError::into_inner) = system
        .emulator()
        .map(|emulator| emulator.base_url().to_owned());
    Ok((system, runners))
}

fn bench_job() -> NewJob {
    NewJob {
        duration_seconds: 0.0,
        ..NewJob::new(REPOSITORY, &LABELS)
    }
}

pub(crate) fn queue_bench_job(system: &LocalSystem) -> Result<u64, BenchError> {
    let emulator = system
        .emulator()
        .ok_or_else(|| BenchError::Emulator("the bench needs the GitHub emulator".to_owned()))?;
    emulator
        .create_job(bench_job())
        .map(|created| created.job_id)
        .map_err(|error| BenchError::Emulator(error.to_string()))
}

fn percentile(sorted: &[Duration], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() - 1) as f64 * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// Webhook → launch call, jobs one after another. Launch times come from the in-process
/// provider, so this figure needs it (with runner processes it times the execution's start).
pub async fn measure_latency(options: &BenchOptions) -> Result<LatencyReport, BenchError> {
    let (system, runners) = start(&BenchOptions {
        runner_processes: false,
        ..options.clone()
    })
    .await?;
    let timeout = Duration::from_secs(30);
    let mut latencies = Vec::with_capacity(options.latency_samples);
    let mut last_line = None;
    for sample in 0..WARM_UP_JOBS + options.latency_samples {
        report_progress(options.progress.as_ref(), &mut last_line, || {
            format!(
                "webhook → launch: {} of {} jobs",
                sample.saturating_sub(WARM_UP_JOBS),
                options.latency_samples
            )
        });
        let queued = Instant::now();
        let job_id = queue_bench_job(&system)?;
        let launched =
            runners
                .wait_for_launch(job_id, timeout)
                .await
                .ok_or(BenchError::NeverLaunched {
                    job_id,
                    seconds: timeout.as_secs(),
                })?;
        if sample >= WARM_UP_JOBS {
            latencies.push(launched.saturating_duration_since(queued));
        }
    }
    let finished = wait_until_idle_saying(
        &system,
        options.timeout,
        options.progress.as_ref(),
        "webhook → launch, finishing",
    )
    .await;
    let (left, waiting) = unfinished(&system);
    system.shutdown().await;
    if !finished {
        return Err(BenchError::Unfinished {
            jobs: WARM_UP_JOBS + options.latency_samples,
            left,
            seconds: options.timeout.as_secs(),
            waiting,
        });
    }
    Ok(latency_report(latencies))
}

/// Percentiles of `latencies`.
pub(crate) fn latency_report(mut latencies: Vec<Duration>) -> LatencyReport {
    latencies.sort();
    LatencyReport {
        samples: latencies.len(),
        p50_ms: percentile(&latencies, 0.50),
        p95_ms: percentile(&latencies, 0.95),
        p99_ms: percentile(&latencies, 0.99),
        max_ms: latencies
            .last()
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or_default(),
    }
}

/// How many executions are still running, and the states the first few are in.
pub(crate) fn unfinished(system: &LocalSystem) -> (usize, String) {
    let running: Vec<_> = system
        .executions()
        .into_iter()
        .filter(|e| e.status == ExecutionStatus::Running)
        .collect();
    let waiting: Vec<String> = running
        .iter()
        .take(5)
        .map(|execution| {
            let history = system
                .service()
                .get_execution_history(&execution.execution_arn, false)
                .unwrap_or_default();
            let open: Vec<&str> = entered_states(&history)
                .into_iter()
                .filter(|state| {
                    !history.iter().any(|event| {
                        event.event_type.ends_with("StateExited")
                            && state_name(event, "stateExitedEventDetails") == Some(*state)
                    })
                })
                .collect();
            format!("{} ({})", execution.name, open.join(", "))
        })
        .collect();
    let mut report = waiting.join("; ");
    if let Some(github) = github_side(system) {
        report.push_str("; on GitHub: ");
        report.push_str(&github);
    }
    (running.len(), report)
}

/// What GitHub (the emulator) saw of the jobs that did not complete: their status and
/// runner, and each webhook sent for them with the receiver's answer. A stuck execution is
/// either a job that never got a runner or an event that never arrived; this tells which.
fn github_side(system: &LocalSystem) -> Option<String> {
    let emulator = system.emulator()?;
    let deliveries = emulator.deliveries();
    let failed_deliveries = deliveries.iter().filter(|d| !delivered_ok(d)).count();
    let open: Vec<String> = emulator
        .jobs()
        .into_iter()
        .filter(|job| job.status != runway_github_emulator::JobStatus::Completed)
        .take(5)
        .map(|job| {
            let sent: Vec<String> = deliveries
                .iter()
                .filter(|d| d.job_id == job.job_id)
                .map(|d| {
                    format!(
                        "{} {:?} {}{}",
                        d.action,
                        d.outcome,
                        d.response_status.map(|s| s.to_string()).unwrap_or_default(),
                        d.error
                            .as_deref()
                            .map(|e| format!(" ({e})"))
                            .unwrap_or_default()
                    )
                })
                .collect();
            format!(
                "job {} {:?} on {} [{}]",
                job.job_id,
                job.status,
                job.runner_name
                    .as_deref()
                    .or(job.assigned_runner_id.map(|_| "an assigned runner"))
                    .unwrap_or("no runner"),
                sent.join(", ")
            )
        })
        .collect();
    Some(format!(
        "{} webhook deliveries not answered 2xx; jobs not completed: {}",
        failed_deliveries,
        if open.is_empty() {
            "none".to_owned()
        } else {
            open.join("; ")
        }
    ))
}

fn delivered_ok(delivery: &runway_github_emulator::Delivery) -> bool {
    delivery.outcome == runway_github_emulator::DeliveryOutcome::Delivered
        && delivery
            .response_status
            .is_some_and(|status| (200..300).contains(&status))
}

pub(crate) fn state_name<'a>(
    event: &'a runway_asl::HistoryEvent,
    details: &str,
) -> Option<&'a str> {
    event
        .details
        .get(details)
        .and_then(|details| details.get("name"))
        .and_then(|name| name.as_str())
}

/// The states an execution entered, in order.
pub(crate) fn entered_states(history: &[runway_asl::HistoryEvent]) -> Vec<&str> {
    history
        .iter()
        .filter(|event| event.event_type.ends_with("StateEntered"))
        .filter_map(|event| state_name(event, "stateEnteredEventDetails"))
        .collect()
}

/// A burst of `options.jobs` jobs queued at once, to the end of every execution.
pub async fn measure_throughput(options: &BenchOptions) -> Result<ThroughputReport, BenchError> {
    let (system, _runners) = start(options).await?;
    let started = Instant::now();
    let queued_at = chrono::Utc::now();
    for _ in 0..options.jobs {
        queue_bench_job(&system)?;
    }
    let finished = wait_until_idle_saying(
        &system,
        options.timeout,
        options.progress.as_ref(),
        &format!("{} jobs at once", options.jobs),
    )
    .await;
    let seconds = started.elapsed().as_secs_f64();
    if !finished {
        let (left, waiting) = unfinished(&system);
        system.shutdown().await;
        return Err(BenchError::Unfinished {
            jobs: options.jobs,
            left,
            seconds: options.timeout.as_secs(),
            waiting,
        });
    }
    let executions = system.executions();
    let failed: Vec<_> = executions
        .iter()
        .filter(|e| e.status != ExecutionStatus::Succeeded)
        .collect();
    if let Some(example) = failed.first() {
        let report = BenchError::Failed {
            jobs: executions.len(),
            failed: failed.len(),
            example: format!(
                "{} ended {}: {}",
                example.name,
                example.status.as_str(),
                example.cause.as_deref().unwrap_or("no cause given")
            ),
        };
        system.shutdown().await;
        return Err(report);
    }
    let seconds_between = |from: chrono::DateTime<chrono::Utc>,
                           to: chrono::DateTime<chrono::Utc>| {
        (to - from).to_std().unwrap_or_default()
    };
    let mut ended: Vec<Duration> = executions
        .iter()
        .filter_map(|execution| execution.stop_date)
        .map(|stop| seconds_between(queued_at, stop))
        .collect();
    ended.sort_unstable();
    let mut durations: Vec<Duration> = executions
        .iter()
        .filter_map(|execution| Some(seconds_between(execution.start_date, execution.stop_date?)))
        .collect();
    durations.sort_unstable();
    let in_seconds = |sorted: &[Duration], fraction: f64| percentile(sorted, fraction) / 1000.0;
    let ended_after = EndedAfter {
        half: in_seconds(&ended, 0.5),
        p90: in_seconds(&ended, 0.9),
        p99: in_seconds(&ended, 0.99),
        all: in_seconds(&ended, 1.0),
    };
    let execution_seconds = Spread {
        p50: in_seconds(&durations, 0.5),
        p99: in_seconds(&durations, 0.99),
        max: in_seconds(&durations, 1.0),
    };
    let mut transitions = 0usize;
    let mut invocations = 0usize;
    let mut happy_path = Vec::new();
    for execution in &executions {
        let history = system
            .service()
            .get_execution_history(&execution.execution_arn, false)
            .unwrap_or_default();
        let entered: Vec<String> = entered_states(&history)
            .into_iter()
            .map(str::to_owned)
            .collect();
        transitions += entered.len();
        invocations += history
            .iter()
            // A Task naming a function is `LambdaFunctionScheduled`; `lambda:invoke` ones
            // (the waits for a task token) are `TaskScheduled`.
            .filter(|event| {
                matches!(
                    event.event_type.as_str(),
                    "LambdaFunctionScheduled" | "TaskScheduled"
                )
            })
            .count();
        // The shortest: in a burst many runners run another execution's job, whose paths
        // are longer.
        if happy_path.is_empty() || entered.len() < happy_path.len() {
            happy_path = entered;
        }
    }
    let report = ThroughputReport {
        jobs: options.jobs,
        seconds,
        jobs_per_second: options.jobs as f64 / seconds.max(f64::EPSILON),
        succeeded: executions.len(),
        transitions_per_job: transitions as f64 / executions.len().max(1) as f64,
        happy_path,
        step_invocations_per_job: invocations as f64 / executions.len().max(1) as f64,
        peak_rss_mib: peak_rss_mib(),
        ended_after,
        execution_seconds,
    };
    system.shutdown().await;
    Ok(report)
}

/// Both figures.
pub async fn run(options: &BenchOptions) -> Result<BenchReport, BenchError> {
    let latency = measure_latency(options).await?;
    let throughput = measure_throughput(options).await?;
    Ok(BenchReport {
        runners: if options.runner_processes {
            "runner-sim processes"
        } else {
            "in-process runners"
        },
        latency,
        throughput,
    })
}

/// `VmHWM` from `/proc/self/status` (Linux only).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l = &self.latency;
        let t = &self.throughput;
        writeln!(
            f,
            "webhook → launch call, {} jobs one after another: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            l.samples, l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
        )?;
        writeln!(
            f,
            "{} jobs at once through the whole machine ({}): {:.2} s, {:.0} jobs/s, all {} succeeded",
            t.jobs, self.runners, t.seconds, t.jobs_per_second, t.succeeded
        )?;
        let e = &t.ended_after;
        writeln!(
            f,
            "executions ended after: half {:.2} s, 90 % {:.2} s, 99 % {:.2} s, all {:.2} s; one execution: p50 {:.2} s, p99 {:.2} s, max {:.2} s",
            e.half,
            e.p90,
            e.p99,
            e.all,
            t.execution_seconds.p50,
            t.execution_seconds.p99,
            t.execution_seconds.max
        )?;
        writeln!(
            f,
            "state transitions per job: {:.1} (${:.3} per 1,000 jobs on Standard workflows at \
             ${STANDARD_PRICE_PER_1000_TRANSITIONS} per 1,000 transitions); a happy path: {}",
            t.transitions_per_job,
            t.transitions_per_job * STANDARD_PRICE_PER_1000_TRANSITIONS,
            t.happy_path.join(" → ")
        )?;
        writeln!(
            f,
            "step function invocations per job: {:.1} (and one webhook invocation per delivery)",
            t.step_invocations_per_job
        )?;
        if let Some(rss) = t.peak_rss_mib {
            writeln!(f, "peak resident memory: {rss:.0} MiB")?;
        }
        Ok(())
    }
}
