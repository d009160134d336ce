//! Teardown: every runner an execution launched is removed from GitHub, terminated and
//! recorded as gone. Idempotent. When the runner left without running the execution's own
//! job, the job is read from GitHub: whether it still needs a runner.
//!
//! GitHub first: once GitHub has removed a runner it cannot be handed a job, so terminating
//! its host next kills nothing. GitHub refuses to remove a runner that runs a job (one it took
//! at its idle deadline, before the webhook saying so came): that runner is not terminated.

use std::collections::{BTreeMap, BTreeSet};

use runway_github::{GitHubError, RunnerScope};
use runway_providers::{Provider, ProviderKind, TIME_LIMIT_MARGIN, Terminated};
use runway_store::{ExecutionKey, RunnerName, RunnerRecord, RunnerState};
use serde_json::{Value, json};
use tracing::info;

use crate::error::{RUNNER_BUSY, StepError, TEARDOWN_FAILED};
use crate::flow::JobFlow;
use crate::input::{TeardownInput, decode};
use crate::naming::runner_name;
use crate::step::Step;
use crate::steps::{check_job, runner_scope};

/// What tearing one runner down did.
#[derive(Debug, Clone)]
pub(crate) struct TornDown {
    pub runner_name: String,
    pub stopped: bool,
    pub deregistered: bool,
    /// EC2 warned that it was reclaiming the runner's spot instance.
    pub reclaimed: bool,
    /// Its host's time limit (a Lambda function's timeout) ended it during its job: the
    /// limit, and the host kind.
    pub timed_out: Option<(u64, ProviderKind)>,
}

impl TornDown {
    fn sentence(&self) -> String {
        let deregistered = if self.deregistered {
            "removed from GitHub"
        } else {
            "not registered with GitHub"
        };
        let stopped = if self.stopped {
            "host stopped"
        } else {
            "host already gone"
        };
        let reclaimed = if self.reclaimed {
            " (its spot instance was reclaimed by EC2)"
        } else {
            ""
        };
        let timed_out = match self.timed_out {
            Some((seconds, ProviderKind::Lambda)) => format!(
                " (the Lambda function's timeout ({seconds} s) ended the runner before the job \
                 finished: run longer jobs on a pool of another kind)"
            ),
            Some((seconds, kind)) => format!(
                " ({kind}'s time limit ({seconds} s) ended the runner before the job finished)"
            ),
            None => String::new(),
        };
        format!(
            "{}: {deregistered}, {stopped}{reclaimed}{timed_out}",
            self.runner_name
        )
    }
}

/// What became of one runner.
#[derive(Debug, Clone)]
pub(crate) enum Removal {
    /// Removed from GitHub (or no longer there), terminated and recorded as gone.
    TornDown(TornDown),
    /// GitHub refused to remove it because it runs a job: left running, still recorded as
    /// the execution's.
    Busy { runner_name: String },
}

/// Removes one runner of `execution` in `pool` from GitHub, then terminates it and records it
/// as gone; a runner GitHub shows busy with a job is left alone. `record` is the runner's
/// live record as the caller read it (for what its teardown measures), if it has one.
pub(crate) async fn teardown_one(
    flow: &JobFlow,
    execution: &ExecutionKey,
    scope: &RunnerScope,
    pool: Option<&str>,
    name: &RunnerName,
    record: Option<&RunnerRecord>,
) -> Result<Removal, StepError> {
    let deps = flow.deps();
    let mut deregistered = false;
    let registered = deps
        .github
        .list_runners(scope, Some(name.as_str()))
        .await
        .map_err(|e| StepError::github(&format!("look up runner {name} on GitHub"), e))?;
    for runner in registered.iter().filter(|r| r.name == name.as_str()) {
        match deps.github.delete_runner(scope, runner.id).await {
            Ok(()) => deregistered = true,
            Err(GitHubError::NotFound { .. }) => {}
            // GitHub refuses to delete a runner while it runs a job (422).
            Err(GitHubError::Validation { .. }) => {
                info!(runner = %name, "GitHub shows the runner busy; not terminated");
                return Ok(Removal::Busy {
                    runner_name: name.to_string(),
                });
            }
            Err(e) => {
                return Err(StepError::github(
                    &format!("remove runner {name} from GitHub"),
                    e,
                ));
            }
        }
    }

    // An adopted warm runner's host carries the warm key it was launched under: read the
    // record when the caller has none, to terminate the host by the right owner.
    let read;
    let record = match record {
        Some(record) => Some(record),
        None => {
            read = deps
                .store
                .get_runner(name)
                .await
                .map_err(|e| StepError::store(&format!("read runner {name}'s record"), e))?
                .filter(|record| &record.execution == execution);
            read.as_ref()
        }
    };
    let host_owner = record.map_or(execution, RunnerRecord::host_owner);
    let mut stopped = false;
    let mut timed_out = None;
    let providers: Vec<_> = match pool.and_then(|pool| deps.providers.get(pool)) {
        Some(provider) => vec![provider.clone()],
        // Pool unknown (configuration changed): ask every provider; terminate is idempotent.
        None => deps.providers.values().cloned().collect(),
    };
    for provider in providers {
        let outcome = provider
            .terminate(host_owner.as_str(), name.as_str())
            .await
            .map_err(|e| {
                StepError::provider(&format!("terminate runner {name}"), TEARDOWN_FAILED, e)
            })?;
        stopped |= matches!(outcome, Terminated::Stopped { .. });
        if let Some(record) = record
            && timed_out.is_none()
        {
            timed_out = ended_by_time_limit(flow, provider.as_ref(), record).await;
        }
    }
    let first_teardown = deps
        .store
        .set_runner_torn_down(name)
        .await
        .map_err(|e| StepError::store(&format!("record runner {name} as gone"), e))?;
    info!(runner = %name, stopped, deregistered, "runner torn down");
    if first_teardown && let Some(record) = record {
        record_teardown(flow, record);
    }
    Ok(Removal::TornDown(TornDown {
        runner_name: name.to_string(),
        stopped,
        deregistered,
        reclaimed: record.is_some_and(|record| record.reclaimed_at.is_some()),
        timed_out,
    }))
}

/// Whether `record`'s runner took a job and lived until its host's time limit (less the
/// margin the host stops it at): then the limit ended it, not its job. A limit that cannot be
/// read only loses the sentence.
async fn ended_by_time_limit(
    flow: &JobFlow,
    provider: &dyn Provider,
    record: &RunnerRecord,
) -> Option<(u64, ProviderKind)> {
    record.job_started_at?;
    let limit = match provider.runner_time_limit().await {
        Ok(limit) => limit?,
        Err(error) => {
            tracing::warn!(%error, runner = %record.runner_name, "could not read the runner's \
                time limit");
            return None;
        }
    };
    let ended = record.left_at.unwrap_or_else(|| flow.deps().clock.now());
    let lived = (ended - record.launched_at).to_std().unwrap_or_default();
    (lived >= limit.saturating_sub(TIME_LIMIT_MARGIN)).then(|| (limit.as_secs(), provider.kind()))
}

pub(crate) async fn run(flow: &JobFlow, input: Value) -> Result<Value, StepError> {
    let input: TeardownInput = decode(Step::Teardown, input)?;
    let deps = flow.deps();
    let execution = &input.common.execution;
    let scope = runner_scope(flow, &input.common);
    let route_pool = input.route.as_ref().and_then(|route| route.pool.clone());

    // The given runner, plus whatever the store and the providers know this execution
    // launched: a failure may come after a launch but before its output was recorded.
    let mut runners: BTreeSet<(String, Option<String>)> = BTreeSet::new();
    // The live records read on the way, by name: what each teardown measures.
    let mut records: BTreeMap<String, RunnerRecord> = BTreeMap::new();
    if let Some(runner) = &input.runner {
        runners.insert((runner.runner_name.to_string(), route_pool.clone()));
    }
    let pools: Vec<String> = match &route_pool {
        Some(pool) => vec![pool.clone()],
        None => flow.config().pools.iter().map(|p| p.name.clone()).collect(),
    };
    // Runner names follow from the job and the launch attempt, so the execution's records are
    // read by name: no listing of the pool, whose size grows with the load.
    let job = &input.common.input.job;
    for pool in &pools {
        let attempts = flow
            .config()
            .pools
            .iter()
            .find(|p| &p.name == pool)
            .map_or(1, |p| p.max_replacements.saturating_add(1));
        for attempt in 1..=attempts {
            let name = runner_name(
                &flow.config().github.runner_name_prefix,
                job.id,
                job.run_attempt,
                attempt,
            );
            let Ok(name) = RunnerName::new(name.as_str()) else {
                continue;
            };
            let record = deps
                .store
                .get_runner(&name)
                .await
                .map_err(|e| StepError::store("read the execution's runner records", e))?;
            // A gone runner (its job ended) still has its teardown to measure; only live ones
            // are added to what is torn down.
            if let Some(record) = record.filter(|r| &r.execution == execution) {
                if record.state != RunnerState::Gone {
                    runners.insert((
                        record.runner_name.to_string(),
                        Some(record.pool.to_string()),
                    ));
                }
                records.insert(record.runner_name.to_string(), record);
            }
        }
    }
    for (pool, provider) in &deps.providers {
        if route_pool.as_ref().is_some_and(|p| p != pool) {
            continue;
        }
        let owned = provider
            .owned_by(execution.as_str())
            .await
            .map_err(|e| StepError::provider("list the provider's runners", TEARDOWN_FAILED, e))?;
        for runner in owned
            .into_iter()
            .filter(|r| r.execution == execution.as_str())
        {
            runners.insert((runner.runner_name, Some(pool.clone())));
        }
    }
    // One entry per name: prefer the one that knows its pool.
    let mut by_name: BTreeMap<String, Option<String>> = Default::default();
    for (name, pool) in runners {
        let entry = by_name.entry(name).or_default();
        if entry.is_none() {
            *entry = pool;
        }
    }

    let mut torn = Vec::new();
    let mut busy = Vec::new();
    for (name, pool) in &by_name {
        let name = RunnerName::new(name.as_str())
            .map_err(|e| StepError::bad_input(format!("teardown: {e}")))?;
        let record = records.get(name.as_str());
        match teardown_one(flow, execution, &scope, pool.as_deref(), &name, record).await? {
            Removal::TornDown(done) => torn.push(done),
            Removal::Busy { runner_name } => busy.push(runner_name),
        }
    }
    // The runner branch's teardown (it names its runner and comes from no failure) follows a
    // busy runner until it leaves; the failure path cannot, and says what it left running.
    let following = input
        .error
        .is_none()
        .then_some(input.runner.as_ref())
        .flatten();
    if let Some(runner) = following
        && busy.iter().any(|name| name == runner.runner_name.as_str())
    {
        return Err(StepError::new(
            RUNNER_BUSY,
            format!(
                "GitHub refused to remove runner {}: it is running a job (taken at its idle \
                 deadline, or the webhook saying so is late). It is not terminated; the \
                 execution follows it until it leaves.",
                runner.runner_name
            ),
        ));
    }
    let failed = input
        .error
        .as_ref()
        .and_then(|error| error.get("Error"))
        .and_then(Value::as_str)
        .map(|name| format!(" after {name}"))
        .unwrap_or_default();
    let why = format!("{}{failed}", input.reason.as_deref().unwrap_or("teardown"));
    let sentences: Vec<String> = torn
        .iter()
        .map(TornDown::sentence)
        .chain(busy.iter().map(|name| {
            format!(
                "{name}: GitHub shows it running a job, so it is left to finish it (not terminated)"
            )
        }))
        .collect();
    let summary = if sentences.is_empty() {
        format!("{why}: no runner of this execution was left to tear down")
    } else {
        format!("{why}: {}", sentences.join("; "))
    };
    let mut output = json!({
        "terminated": torn.iter().map(|t| t.runner_name.clone()).collect::<Vec<_>>(),
        "left_running": busy,
        "summary": summary,
    });
    if let Some(status) = &input.runner_status
        && input.error.is_none()
        && !ran_this_job(status, job.id)
    {
        output["job"] = job_after_runner_left(flow, &input).await;
    }
    Ok(output)
}

/// Whether the runner's last status (`runner_status`) says it ran the execution's own job.
fn ran_this_job(status: &Value, job_id: u64) -> bool {
    status.get("job_id").and_then(Value::as_u64) == Some(job_id)
}

/// The execution's job as GitHub has it, once its runner left without running it (it ran
/// another job of the pool, or was torn down idle): whether the job still needs a runner. A
/// failure to ask is an `unknown` status, not a failed teardown: the job is then followed
/// until it ends, which asks again.
async fn job_after_runner_left(flow: &JobFlow, input: &TeardownInput) -> Value {
    match check_job::job_status(flow, &input.common, check_job::Asked::AfterRunnerLeft).await {
        Ok(status) => status,
        Err(error) => json!({
            "status": "unknown",
            "reason": format!("could not read the job from GitHub ({}): {}", error.error, error.cause),
        }),
    }
}

/// How a runner's life was spent: its lifetime, its boot (launch to first job), its job and
/// the rest, paid for idle; and whether it was torn down without ever taking a job.
fn record_teardown(flow: &JobFlow, record: &RunnerRecord) {
    use runway_metrics::{Dimension, Metric, Sample};
    let now = flow.deps().clock.now();
    let lived = (now - record.launched_at).num_milliseconds().max(0) as f64 / 1000.0;
    let ran = record.job_seconds(now).min(lived);
    let pool = record.pool.to_string();
    let mut samples = vec![
        Sample::new(Metric::RunnerLifetimeSeconds, lived, now),
        Sample::new(Metric::RunnerIdleSeconds, lived - ran, now),
    ];
    if let Some(boot) = record.seconds_to_first_job() {
        samples.push(Sample::new(Metric::RunnerBootSeconds, boot, now));
        samples.push(Sample::new(Metric::JobRunSeconds, ran, now));
    }
    if matches!(record.state, RunnerState::Booting | RunnerState::Idle) {
        samples.push(Sample::count(Metric::IdleRunnersTornDown, now));
    }
    for sample in samples {
        crate::steps::measure(flow, sample.by(Dimension::Pool, pool.as_str()));
    }
}
