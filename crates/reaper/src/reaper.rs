//! [`Reaper`]: the sweeps over runway's ports.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use runway_asl::{TaskFailure, TaskRegistry};
use runway_clock::SharedClock;
use runway_github::{GitHub, GitHubError, RunnerScope, WorkflowJob, WorkflowRun};
use runway_jobflow::{JobFlow, RunnerScopeLevel, Step};
use runway_providers::{Provider, Terminated};
use runway_store::{
    JobId, RunnerName, RunnerRecord, RunnerState, SlotHolder, Store, WARM_KEY_PREFIX,
};
use runway_webhook::event::{Installation, Organization, WorkflowJobAction, WorkflowJobEvent};
use runway_webhook::{
    Decision, ExecutionStarter, JobEventKind, JobEventUpdate, JobEvents, JobExecutionInput,
    JobFilter, StartError, StartOutcome, retry_execution_name,
};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{Instrument, info, info_span, warn};

use crate::config::{ReaperConfig, ReaperConfigError, split_repository};
use crate::error::ReapError;
use crate::executions::{ExecutionState, ExecutionStatus, Executions};
use crate::interruption::SpotInterruptionWarning;
use crate::meter::GitHubMeter;
use crate::report::{Sweep, SweepReport};
use crate::retry::{FailureKind, classify};
use crate::verdict::{Verdict, judge};

/// Everything the reaper talks to. `flow` releases slots exactly as the job machine's
/// release step does; the rest are the same parts the job flow was built with.
pub struct ReaperDeps {
    pub flow: JobFlow,
    pub store: Arc<dyn Store>,
    pub github: Arc<dyn GitHub>,
    /// One provider per pool, by pool name (pools may share one).
    pub providers: BTreeMap<String, Arc<dyn Provider>>,
    /// Executions of the job state machine.
    pub executions: Arc<dyn Executions>,
    /// Starts executions of the job state machine, as the webhook intake does (`lost-jobs`).
    pub starter: Arc<dyn ExecutionStarter>,
    /// Which jobs runway takes on: the webhook intake's filter.
    pub job_filter: JobFilter,
    /// The installation a started job's input names when the GitHub client acts by a token,
    /// which knows of none (`runway local` names its emulator's App installation, as the
    /// emulator's webhooks do). With an App, the installation on the repository's owner.
    pub installation_id: Option<u64>,
    pub clock: SharedClock,
}

impl fmt::Debug for ReaperDeps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReaperDeps")
            .field("store", &self.store)
            .field("github", &self.github)
            .field("providers", &self.providers.keys().collect::<Vec<_>>())
            .field("executions", &self.executions)
            .field("starter", &self.starter)
            .field("job_filter", &self.job_filter)
            .field("installation_id", &self.installation_id)
            .finish_non_exhaustive()
    }
}

/// The reaper. Cheap to clone; clones share everything.
#[derive(Debug, Clone)]
pub struct Reaper {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    deps: ReaperDeps,
    config: ReaperConfig,
}

/// The task input: the Parameters of a sweep's Task state.
#[derive(Debug, Deserialize)]
struct SweepInput {
    sweep: String,
    #[serde(default)]
    execution: Option<String>,
}

/// Who owns a host launched under a warm key.
enum WarmOwner {
    /// Not adopted yet: its pool's keeper.
    Keeper,
    /// The execution that adopted it.
    Adopted(String),
}

/// Executions looked up once per sweep.
struct Lookups<'a> {
    executions: &'a dyn Executions,
    known: HashMap<String, ExecutionState>,
}

impl Lookups<'_> {
    /// The reason to reap what `execution` owns, or `None` when it is kept (the reason for
    /// keeping it counted in `report`).
    async fn reap_reason(
        &mut self,
        execution: &str,
        age: Option<chrono::Duration>,
        config: &ReaperConfig,
        report: &mut SweepReport,
    ) -> Result<Option<String>, ReapError> {
        let status = self.status(execution).await?;
        Ok(match judge(execution, status, age, config) {
            Verdict::Keep(reason) => {
                report.keep(reason);
                None
            }
            Verdict::Reap(reason) => Some(reason),
        })
    }

    async fn status(&mut self, execution: &str) -> Result<ExecutionStatus, ReapError> {
        Ok(self.describe(execution).await?.status)
    }

    async fn describe(&mut self, execution: &str) -> Result<ExecutionState, ReapError> {
        if let Some(state) = self.known.get(execution) {
            return Ok(state.clone());
        }
        let state = self.executions.describe(execution).await?;
        self.known.insert(execution.to_owned(), state.clone());
        Ok(state)
    }
}

fn age(now: DateTime<Utc>, since: DateTime<Utc>) -> chrono::Duration {
    now.signed_duration_since(since)
}

impl Reaper {
    pub fn new(deps: ReaperDeps, config: ReaperConfig) -> Result<Reaper, ReaperConfigError> {
        config.validate()?;
        Ok(Reaper {
            inner: Arc::new(Inner { deps, config }),
        })
    }

    pub fn config(&self) -> &ReaperConfig {
        &self.inner.config
    }

    pub(crate) fn deps(&self) -> &ReaperDeps {
        &self.inner.deps
    }

    fn lookups(&self) -> Lookups<'_> {
        Lookups {
            executions: self.deps().executions.as_ref(),
            known: HashMap::new(),
        }
    }

    /// Runs the sweep a Task state names (`{"sweep": "orphan-runners", ...}`), or handles an
    /// EC2 spot interruption warning from EventBridge, and returns its report as JSON.
    pub async fn run(&self, input: Value) -> Result<Value, ReapError> {
        // EventBridge events reach the reap function too: EC2's spot interruption warnings.
        if input.get("detail-type").is_some() {
            let warning = SpotInterruptionWarning::from_event(input)?;
            let report = self.spot_interruption(&warning).await?;
            return serde_json::to_value(&report).map_err(|error| {
                ReapError::Failed(format!("the report could not be encoded: {error}"))
            });
        }
        let input: SweepInput = serde_json::from_value(input).map_err(|error| {
            ReapError::BadInput(format!(
                "the reaper's input is not usable ({error}); it expects {{\"sweep\": \"<name>\"}} \
                 as statemachines/reaper.asl.json passes it"
            ))
        })?;
        let sweep: Sweep = input
            .sweep
            .parse()
            .map_err(|error: crate::report::UnknownSweep| ReapError::BadInput(error.to_string()))?;
        let span = info_span!(
            "sweep",
            sweep = sweep.name(),
            execution = input.execution.as_deref().unwrap_or("-")
        );
        let report = self.sweep(sweep).instrument(span).await?;
        serde_json::to_value(&report)
            .map_err(|error| ReapError::Failed(format!("the report could not be encoded: {error}")))
    }

    /// Runs one sweep.
    pub async fn sweep(&self, sweep: Sweep) -> Result<SweepReport, ReapError> {
        let result = match sweep {
            Sweep::OrphanRunners => self.orphan_runners().await,
            Sweep::OfflineRunners => self.offline_runners().await,
            Sweep::StaleSlots => self.stale_slots().await,
            Sweep::LostJobs => self.lost_jobs().await,
        };
        match &result {
            Ok(report) => info!(summary = %report.summary, "sweep done"),
            Err(error) => warn!(error = error.name(), cause = %error, "sweep failed"),
        }
        result
    }

    /// Registers the reaper with the local engine under `name` (the function name of
    /// `${ReapFunctionArn}`, see [`crate::local_definition`]).
    pub fn register_task(&self, registry: &TaskRegistry, name: &str) {
        let reaper = self.clone();
        registry.register(name.to_owned(), move |request| {
            let reaper = reaper.clone();
            async move {
                reaper
                    .run(request.input)
                    .await
                    .map_err(|error| TaskFailure::new(error.name(), error.to_string()))
            }
        });
    }

    /// Each distinct provider once, with the pools it serves.
    pub(crate) fn distinct_providers(&self) -> Vec<(String, Arc<dyn Provider>)> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (pool, provider) in &self.deps().providers {
            if seen.insert(Arc::as_ptr(provider) as *const () as usize) {
                out.push((pool.clone(), provider.clone()));
            }
        }
        out
    }

    /// Records the runner as gone, if the store still has it live for that execution.
    async fn mark_gone(&self, execution: &str, name: &str) -> Result<bool, ReapError> {
        let Ok(name) = RunnerName::new(name) else {
            return Ok(false);
        };
        let store = self.deps().store.as_ref();
        let record = store
            .get_runner(&name)
            .await
            .map_err(|e| ReapError::store("read a runner record", e))?;
        match record {
            Some(record) if record.execution.as_str() == execution => {
                if record.state == RunnerState::Gone {
                    return Ok(false);
                }
                store
                    .set_runner_state(&name, RunnerState::Gone, None)
                    .await
                    .map_err(|e| ReapError::store("record the runner as gone", e))?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Who owns the warm runner `name` now, by its live record: `None` when it has none (or
    /// it is gone).
    async fn warm_owner(&self, name: &str) -> Result<Option<WarmOwner>, ReapError> {
        let Ok(name) = RunnerName::new(name) else {
            return Ok(None);
        };
        let record = self
            .deps()
            .store
            .get_runner(&name)
            .await
            .map_err(|e| ReapError::store("read a warm runner's record", e))?;
        Ok(match record {
            Some(record) if record.state == RunnerState::Gone => None,
            Some(record) if record.is_unadopted_warm() => Some(WarmOwner::Keeper),
            Some(record) => Some(WarmOwner::Adopted(record.execution.to_string())),
            None => None,
        })
    }

    async fn orphan_runners(&self) -> Result<SweepReport, ReapError> {
        let deps = self.deps();
        let config = self.config();
        let now = deps.clock.now();
        let mut report = SweepReport::new(Sweep::OrphanRunners);
        let mut lookups = self.lookups();
        let mut handled: BTreeSet<(String, String)> = BTreeSet::new();

        'providers: for (pool, provider) in self.distinct_providers() {
            let owned = provider.owned().await.map_err(|e| {
                ReapError::provider(&format!("list the runners of pool {pool}'s provider"), e)
            })?;
            for runner in owned {
                // Providers of several pools may list the same hosts (EC2 lists by tag).
                if !handled.insert((runner.execution.clone(), runner.runner_name.clone())) {
                    continue;
                }
                report.examined += 1;
                // A warm runner's host carries the warm key it was launched under; the store
                // says whether the keeper still owns it or which execution adopted it.
                let mut owner = runner.execution.clone();
                if runner.execution.starts_with(WARM_KEY_PREFIX) {
                    match self.warm_owner(&runner.runner_name).await? {
                        Some(WarmOwner::Keeper) => {
                            report.keep("a warm runner its pool's keeper owns".to_owned());
                            continue;
                        }
                        Some(WarmOwner::Adopted(execution)) => owner = execution,
                        // No live record: an orphan, reaped once past the grace period.
                        None => {}
                    }
                }
                let launched_at = match runner.launched_at {
                    Some(time) => Some(time),
                    None => self.record_launch(&runner.runner_name).await?,
                };
                let Some(reason) = lookups
                    .reap_reason(
                        &owner,
                        launched_at.map(|time| age(now, time)),
                        config,
                        &mut report,
                    )
                    .await?
                else {
                    continue;
                };
                if report.spent() >= config.max_actions_per_sweep {
                    report.truncated = true;
                    break 'providers;
                }
                let target = format!(
                    "runner {} ({} {}) of pool {}",
                    runner.runner_name,
                    runner.provider,
                    runner.instance_id,
                    runner.pool.as_deref().unwrap_or(&pool)
                );
                match provider
                    .terminate(&runner.execution, &runner.runner_name)
                    .await
                {
                    Ok(terminated) => {
                        self.mark_gone(&owner, &runner.runner_name).await?;
                        let verb = match terminated {
                            Terminated::Stopped { .. } => "terminated",
                            Terminated::AlreadyGone => "found already gone",
                        };
                        report.acted(format!("{verb} {target}: {reason}"));
                    }
                    Err(error) if error.is_retryable() => {
                        return Err(ReapError::provider(&format!("terminate {target}"), error));
                    }
                    Err(error) => report.failed(format!("could not terminate {target}: {error}")),
                }
            }
        }

        if !report.truncated {
            self.orphan_records(now, &mut report, &mut lookups, &handled)
                .await?;
        }
        Ok(report.finish("runners", "terminated"))
    }

    async fn record_launch(&self, name: &str) -> Result<Option<DateTime<Utc>>, ReapError> {
        let Ok(name) = RunnerName::new(name) else {
            return Ok(None);
        };
        Ok(self
            .deps()
            .store
            .get_runner(&name)
            .await
            .map_err(|e| ReapError::store("read a runner record", e))?
            .map(|record| record.launched_at))
    }

    /// Runner records of executions that are not running, whose host no provider lists any
    /// more (or was missed): terminated again (idempotent) and recorded as gone.
    async fn orphan_records(
        &self,
        now: DateTime<Utc>,
        report: &mut SweepReport,
        lookups: &mut Lookups<'_>,
        handled: &BTreeSet<(String, String)>,
    ) -> Result<(), ReapError> {
        let deps = self.deps();
        let config = self.config();
        let cutoff =
            now - chrono::Duration::seconds(config.grace_seconds.min(i64::MAX as u64) as i64);
        let records: Vec<RunnerRecord> = deps
            .store
            .runners_older_than(cutoff)
            .await
            .map_err(|e| ReapError::store("list old runner records", e))?;
        for record in records {
            let key = (record.execution.to_string(), record.runner_name.to_string());
            // An unadopted warm runner is its pool keeper's to retire or replace.
            if record.state == RunnerState::Gone
                || handled.contains(&key)
                || record.is_unadopted_warm()
            {
                continue;
            }
            report.examined += 1;
            let Some(reason) = lookups
                .reap_reason(
                    record.execution.as_str(),
                    Some(age(now, record.launched_at)),
                    config,
                    report,
                )
                .await?
            else {
                continue;
            };
            if report.spent() >= config.max_actions_per_sweep {
                report.truncated = true;
                break;
            }
            let target = format!(
                "runner record {} of pool {}",
                record.runner_name, record.pool
            );
            if let Some(provider) = deps.providers.get(record.pool.as_str()) {
                match provider
                    .terminate(record.host_owner().as_str(), record.runner_name.as_str())
                    .await
                {
                    Ok(_) => {}
                    Err(error) if error.is_retryable() => {
                        return Err(ReapError::provider(&format!("terminate {target}"), error));
                    }
                    Err(error) => {
                        report.failed(format!("could not terminate {target}: {error}"));
                        continue;
                    }
                }
            }
            self.mark_gone(record.execution.as_str(), record.runner_name.as_str())
                .await?;
            report.acted(format!(
                "recorded {target} as gone (its host is not running): {reason}"
            ));
        }
        Ok(())
    }

    /// Where to look for runway's registrations: the configured scopes, and the job flow's
    /// enterprise when it registers there.
    fn scopes(&self) -> Vec<RunnerScope> {
        let mut scopes = self.config().github_scopes.clone();
        if let RunnerScopeLevel::Enterprise(slug) = &self.deps().flow.config().github.scope {
            let scope = RunnerScope::enterprise(slug.as_str());
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        scopes
    }

    async fn offline_runners(&self) -> Result<SweepReport, ReapError> {
        let deps = self.deps();
        let config = self.config();
        let now = deps.clock.now();
        // Only names this stack makes: another stack's runners (its names carry its own
        // prefix) are never this reaper's to remove.
        let prefix = deps.flow.config().github.runner_name_prefix.as_str();
        let mut report = SweepReport::new(Sweep::OfflineRunners);
        let mut lookups = self.lookups();
        let meter = GitHubMeter::new(deps.github.as_ref(), config, deps.clock.clone());
        let scopes = self.scopes();

        'scopes: for (index, scope) in scopes.iter().enumerate() {
            let where_ = scope_text(scope);
            // Stops before any request the sweep may not make (its budget, or the reserve
            // kept for provisioning); this scope and the rest are left for the next run.
            let stop_here = |report: &mut SweepReport| match meter.exhausted() {
                Some(reason) => {
                    report.stop(reason, scopes[index..].iter().map(scope_text).collect());
                    true
                }
                None => false,
            };
            if stop_here(&mut report) {
                break 'scopes;
            }
            let runners = deps
                .github
                .list_runners(scope, None)
                .await
                .map_err(|e| ReapError::github(&format!("list the runners of {where_}"), e))?;
            for runner in runners
                .iter()
                .filter(|r| runway_jobflow::naming::is_runner_name_of(prefix, &r.name))
            {
                report.examined += 1;
                if runner.status != "offline" {
                    report.keep("online");
                    continue;
                }
                if runner.busy {
                    report.keep("busy with a job");
                    continue;
                }
                let record = match RunnerName::new(runner.name.as_str()) {
                    Ok(name) => deps
                        .store
                        .get_runner(&name)
                        .await
                        .map_err(|e| ReapError::store("read a runner record", e))?,
                    Err(_) => None,
                };
                let Some(record) = record else {
                    // GitHub itself removes an ephemeral runner that never connects within a
                    // day; without a record no execution can be proven to have ended.
                    report.keep("no runner record names its execution");
                    continue;
                };
                if record.is_unadopted_warm() {
                    // Offline until it connects; its pool's keeper retires it.
                    report.keep("a warm runner its pool's keeper owns");
                    continue;
                }
                let Some(reason) = lookups
                    .reap_reason(
                        record.execution.as_str(),
                        Some(age(now, record.launched_at)),
                        config,
                        &mut report,
                    )
                    .await?
                else {
                    continue;
                };
                if report.spent() >= config.max_actions_per_sweep {
                    report.truncated = true;
                    break 'scopes;
                }
                if stop_here(&mut report) {
                    break 'scopes;
                }
                let target = format!(
                    "offline runner {} (id {}) from {where_}",
                    runner.name, runner.id
                );
                match deps.github.delete_runner(scope, runner.id).await {
                    Ok(()) => report.acted(format!("removed {target}: {reason}")),
                    Err(GitHubError::NotFound { .. }) => {
                        report.acted(format!("found {target} already removed: {reason}"))
                    }
                    Err(error) if error.is_retryable() => {
                        return Err(ReapError::github(&format!("remove {target}"), error));
                    }
                    Err(error) => report.failed(format!("could not remove {target}: {error}")),
                }
            }
        }
        meter.record(&mut report);
        let mut report = report.finish("runway runners", "removed");
        if scopes.is_empty() {
            report.summary = "no GitHub scope to search: list where runway's runners register \
                              in the reaper's github_scopes"
                .to_owned();
        }
        Ok(report)
    }

    async fn stale_slots(&self) -> Result<SweepReport, ReapError> {
        let deps = self.deps();
        let config = self.config();
        let now = deps.clock.now();
        let mut report = SweepReport::new(Sweep::StaleSlots);
        let mut lookups = self.lookups();
        let meter = GitHubMeter::new(deps.github.as_ref(), config, deps.clock.clone());
        let mut job_lookups = config.job_lookups_per_sweep;
        let mut not_looked_up = Vec::new();
        let mut held: BTreeSet<String> = BTreeSet::new();

        'pools: for pool in &deps.flow.config().pools {
            let Ok(name) = runway_store::PoolName::new(pool.name.as_str()) else {
                continue;
            };
            let holders = deps
                .store
                .slot_holders(&name)
                .await
                .map_err(|e| ReapError::store(&format!("list the slots of pool {name}"), e))?;
            self.record_pool_gauges(&name, holders.len(), now).await?;
            for holder in holders {
                report.examined += 1;
                held.insert(holder.execution.to_string());
                let held_for = age(now, holder.acquired_at);
                let status = lookups.status(holder.execution.as_str()).await?;
                if status == ExecutionStatus::Running && held_for.num_seconds() >= grace(config) {
                    // A running execution whose job completed without its webhook holds its
                    // runner and slot until its watches time out: deliver the event it missed.
                    if job_lookups == 0 || meter.exhausted().is_some() {
                        report.keep(crate::verdict::KEEP_RUNNING);
                        not_looked_up.push(holder.execution.to_string());
                        continue;
                    }
                    job_lookups -= 1;
                    if report.spent() >= config.max_actions_per_sweep {
                        report.truncated = true;
                        break 'pools;
                    }
                    self.complete_lost_job(&holder, &mut report).await?;
                    continue;
                }
                let Some(reason) = lookups
                    .reap_reason(
                        holder.execution.as_str(),
                        Some(held_for),
                        config,
                        &mut report,
                    )
                    .await?
                else {
                    continue;
                };
                if report.spent() >= config.max_actions_per_sweep {
                    report.truncated = true;
                    break 'pools;
                }
                let target = format!("the slot of {} in pool {}", holder.execution, holder.pool);
                match deps
                    .flow
                    .run(Step::Release, release_input(&holder, &reason))
                    .await
                {
                    Ok(output) => {
                        let woke = output
                            .get("woke")
                            .and_then(Value::as_str)
                            .map(|next| format!("; woke {next}"))
                            .unwrap_or_default();
                        report.acted(format!("released {target}: {reason}{woke}"));
                    }
                    Err(error) if error.is_transient() => {
                        return Err(ReapError::Transient(format!(
                            "could not release {target}: {}",
                            error.cause
                        )));
                    }
                    Err(error) => report.failed(format!("could not release {target}: {error}")),
                }
            }
        }
        if !report.truncated {
            self.recheck_slotless_waits(
                now,
                &held,
                &mut job_lookups,
                &meter,
                &mut report,
                &mut not_looked_up,
            )
            .await?;
        }
        if !not_looked_up.is_empty() {
            let reason = meter.exhausted().unwrap_or_else(|| {
                format!(
                    "it looked up {} jobs of running executions on GitHub, its bound per sweep \
                     (job_lookups_per_sweep)",
                    config.job_lookups_per_sweep
                )
            });
            report.stop(reason, not_looked_up);
        }
        meter.record(&mut report);
        Ok(report.finish("slots", "released"))
    }

    /// The pool's queue and slots as metrics: how many jobs wait, how long the oldest has
    /// waited, how many slots are held. Read at every `stale-slots` sweep, so an alarm on the
    /// oldest wait fires while the job still waits.
    async fn record_pool_gauges(
        &self,
        pool: &runway_store::PoolName,
        slots: usize,
        now: DateTime<Utc>,
    ) -> Result<(), ReapError> {
        use runway_jobflow::metrics::{Dimension, Metric, Sample};
        let waiters = self
            .deps()
            .store
            .waiters(pool)
            .await
            .map_err(|e| ReapError::store(&format!("list the queue of pool {pool}"), e))?;
        let oldest = waiters
            .iter()
            .map(|waiter| age(now, waiter.enqueued_at).num_milliseconds().max(0))
            .max()
            .unwrap_or(0);
        let metrics = self.deps().flow.metrics();
        let name = pool.to_string();
        for sample in [
            Sample::new(Metric::QueueDepth, waiters.len() as f64, now),
            Sample::new(Metric::OldestWaitSeconds, oldest as f64 / 1000.0, now),
            Sample::new(Metric::SlotsInUse, slots as f64, now),
        ] {
            metrics.record(sample.by(Dimension::Pool, name.as_str()));
        }
        Ok(())
    }

    /// Looks up the job behind the slot of a running execution; when GitHub reports it
    /// completed, hands the execution the `completed` event it missed, as the webhook intake
    /// would have: its job and runner watches wake, it tears its runner down and releases the
    /// slot itself (waking the next waiter).
    async fn complete_lost_job(
        &self,
        holder: &SlotHolder,
        report: &mut SweepReport,
    ) -> Result<(), ReapError> {
        let deps = self.deps();
        let execution = holder.execution.as_str();
        let ids = parse_execution_name(execution);
        let repository = split_repository(holder.repo.as_str());
        let (Some((job_id, repository_id, _)), Some((owner, repo))) = (ids, repository) else {
            report.keep(crate::verdict::KEEP_RUNNING);
            return Ok(());
        };
        let job = match deps.github.workflow_job(owner, repo, job_id).await {
            Ok(job) => job,
            Err(GitHubError::NotFound { .. }) => {
                report.keep(KEEP_JOB_UNKNOWN);
                return Ok(());
            }
            Err(error) => {
                return Err(ReapError::github(
                    &format!("look up job {job_id} of {}", holder.repo),
                    error,
                ));
            }
        };
        if job.status != "completed" {
            report.keep(crate::verdict::KEEP_RUNNING);
            return Ok(());
        }
        let store = deps.store.as_ref();
        let job_watched = store
            .get_job_watch(JobId(job_id))
            .await
            .map_err(|e| ReapError::store("read the job's watch", e))?
            .is_some();
        let runner_watched = match job.runner_name.as_deref().map(RunnerName::new) {
            Some(Ok(name)) => store
                .get_runner(&name)
                .await
                .map_err(|e| ReapError::store("read a runner record", e))?
                .is_some_and(|record| {
                    record.runner_watch.is_some() && record.state != RunnerState::Gone
                }),
            _ => false,
        };
        if !job_watched && !runner_watched {
            // The event reached the store's watch, which handed its token on, but the task
            // never heard (a callback lost on the way): its wait ends only at its timeout.
            // Its watches are run again now, as that timeout's retry would run them.
            let woke = self.recheck_open_waits(execution).await?;
            if woke.is_empty() {
                report.keep(KEEP_NOT_WAITING);
            } else {
                report.acted(format!(
                    "woke execution {execution}, which holds a slot in pool {}: GitHub reports \
                     job {job_id} completed, but its wait for {} heard nothing; run again, \
                     the watch found what it waits for",
                    holder.pool,
                    woke.join(" and ")
                ));
            }
            return Ok(());
        }
        let conclusion = job.conclusion.clone();
        let update = JobEventUpdate {
            kind: JobEventKind::Completed,
            job_id,
            run_id: job.run_id,
            run_attempt: job.run_attempt,
            repository_id,
            repository: holder.repo.as_str().to_owned(),
            runner_name: job.runner_name.clone(),
            runner_id: job.runner_id,
            conclusion: conclusion.clone(),
            delivery_id: None,
        };
        deps.flow.job_event(update).await.map_err(|error| {
            ReapError::Transient(format!(
                "could not hand execution {execution} the completion of job {job_id}: {}",
                error.0
            ))
        })?;
        report.acted(format!(
            "woke execution {execution}, which holds a slot in pool {}: GitHub reports job \
             {job_id} completed ({}) but its webhook never came; the execution tears its \
             runner down and releases the slot",
            holder.pool,
            conclusion.as_deref().unwrap_or("no conclusion")
        ));
        Ok(())
    }

    /// Running executions that hold no slot any more (their runner is torn down and its slot
    /// released) but still wait for their job's events: a lost `in_progress` or `completed`
    /// callback leaves them waiting until the wait's timeout. Their open watches are run
    /// again (each reads the job from GitHub), within the sweep's job look-ups.
    async fn recheck_slotless_waits(
        &self,
        now: DateTime<Utc>,
        held: &BTreeSet<String>,
        job_lookups: &mut u32,
        meter: &GitHubMeter<'_>,
        report: &mut SweepReport,
        not_looked_up: &mut Vec<String>,
    ) -> Result<(), ReapError> {
        let config = self.config();
        let running = self.deps().executions.running().await?;
        for (execution, started) in running {
            if held.contains(&execution) || age(now, started).num_seconds() < grace(config) {
                continue;
            }
            report.examined += 1;
            if *job_lookups == 0 || meter.exhausted().is_some() {
                report.keep(crate::verdict::KEEP_RUNNING);
                not_looked_up.push(execution);
                continue;
            }
            if report.spent() >= config.max_actions_per_sweep {
                report.truncated = true;
                break;
            }
            // Reading the history is a look-up too: the budget bounds both.
            *job_lookups -= 1;
            // Only waits for the job: the runner's waits end with the slot.
            let waits_for_job = self
                .deps()
                .executions
                .open_waits(&execution)
                .await?
                .iter()
                .any(|wait| wait.get("watch").and_then(Value::as_str) == Some("job-completed"));
            if !waits_for_job {
                report.keep(KEEP_NO_SLOT);
                continue;
            }
            let woke = self.recheck_open_waits(&execution).await?;
            if woke.is_empty() {
                report.keep(crate::verdict::KEEP_RUNNING);
            } else {
                report.acted(format!(
                    "woke execution {execution}, which holds no slot and waited for {}: its \
                     watch, run again, found the job's change on GitHub (the event was lost)",
                    woke.join(" and ")
                ));
            }
        }
        Ok(())
    }

    /// Runs the execution's open watches (its waits for a task token, from its history)
    /// again, as re-checks: each asks GitHub and completes its own task when what it waits
    /// for already happened. Returns what the woken waits were waiting for.
    async fn recheck_open_waits(&self, execution: &str) -> Result<Vec<String>, ReapError> {
        let deps = self.deps();
        let waits = deps.executions.open_waits(execution).await?;
        let mut woke = Vec::new();
        for mut payload in waits {
            let Some(watch) = payload
                .get("watch")
                .and_then(Value::as_str)
                .map(str::to_owned)
            else {
                continue;
            };
            if payload.get("execution").and_then(Value::as_str) != Some(execution) {
                continue;
            }
            let recheck = payload.get("recheck").and_then(Value::as_u64).unwrap_or(0);
            payload["recheck"] = json!(recheck.max(1));
            payload["rerun"] = json!(true);
            match deps.flow.run(Step::Watch, payload).await {
                Ok(output) if output["completed_now"] == Value::Bool(true) => {
                    info!(execution, %watch, "re-ran a wait that heard nothing; it woke");
                    woke.push(watch);
                }
                Ok(_) => {}
                Err(error) if error.is_transient() => {
                    return Err(ReapError::Transient(format!(
                        "could not re-run the {watch} watch of execution {execution}: {}",
                        error.cause
                    )));
                }
                Err(error) => {
                    warn!(execution, %watch, %error, "could not re-run a wait");
                }
            }
        }
        Ok(woke)
    }

    /// The repositories `lost-jobs` checks, most recently active first: the configured ones;
    /// else those the webhook intake allows (the listed repositories, and the installation's
    /// repositories of the listed owners); else the installation's repositories active within
    /// `active_within_seconds`. `None` when the sweep may not even list them.
    async fn served_repositories(
        &self,
        meter: &GitHubMeter<'_>,
        report: &mut SweepReport,
    ) -> Result<Option<Vec<String>>, ReapError> {
        let config = self.config();
        let filter = &self.deps().job_filter;
        if !config.repositories.is_empty() {
            return Ok(Some(config.repositories.clone()));
        }
        let owners = filter.allowed_owners();
        let mut chosen: Vec<String> = filter.allowed_repositories().to_vec();
        if !chosen.is_empty() && owners.is_empty() {
            return Ok(Some(chosen));
        }
        if let Some(reason) = meter.exhausted() {
            report.stop(reason, vec!["the installation's repositories".to_owned()]);
            return Ok(None);
        }
        let mut listed = self
            .deps()
            .github
            .installation_repositories()
            .await
            .map_err(|e| {
                ReapError::github(
                    "list the repositories of the GitHub App installation (with a token \
                     instead of an App, list them in the reaper's repositories)",
                    e,
                )
            })?;
        listed.sort_by_key(|repo| std::cmp::Reverse(repo.last_activity()));
        let now = self.deps().clock.now();
        let window = i64::try_from(config.active_within_seconds).unwrap_or(i64::MAX);
        for repo in listed {
            let full_name = &repo.repository.full_name;
            let wanted = if owners.is_empty() {
                let active = repo
                    .last_activity()
                    .is_some_and(|active| age(now, active).num_seconds() <= window);
                if !active {
                    report.keep(KEEP_INACTIVE);
                }
                active
            } else {
                owners
                    .iter()
                    .any(|owner| owner.eq_ignore_ascii_case(&repo.repository.owner.login))
            };
            if wanted && !chosen.iter().any(|c| c.eq_ignore_ascii_case(full_name)) {
                chosen.push(full_name.clone());
            }
        }
        Ok(Some(chosen))
    }

    async fn lost_jobs(&self) -> Result<SweepReport, ReapError> {
        let deps = self.deps();
        let config = self.config();
        let now = deps.clock.now();
        let mut report = SweepReport::new(Sweep::LostJobs);
        let mut lookups = self.lookups();
        let meter = GitHubMeter::new(deps.github.as_ref(), config, deps.clock.clone());
        let Some(repositories) = self.served_repositories(&meter, &mut report).await? else {
            meter.record(&mut report);
            return Ok(report.finish("queued jobs", "started"));
        };

        'repositories: for (index, full_name) in repositories.iter().enumerate() {
            let Some((owner, repo)) = split_repository(full_name) else {
                continue;
            };
            // Stops before any request the sweep may not make; this repository and the rest
            // are left for the next run.
            let stop_here = |report: &mut SweepReport| match meter.exhausted() {
                Some(reason) => {
                    report.stop(reason, repositories[index..].to_vec());
                    true
                }
                None => false,
            };
            let mut runs = Vec::new();
            let mut seen = BTreeSet::new();
            // Queued runs, and runs in progress (a later job of a run is queued while an
            // earlier one runs).
            for status in ["queued", "in_progress"] {
                if stop_here(&mut report) {
                    break 'repositories;
                }
                let listed = deps
                    .github
                    .workflow_runs(owner, repo, status)
                    .await
                    .map_err(|e| {
                        ReapError::github(
                            &format!("list the {status} workflow runs of {full_name}"),
                            e,
                        )
                    })?;
                // A run that changed status between the two lists is listed twice.
                runs.extend(listed.into_iter().filter(|run| seen.insert(run.id)));
            }
            // The installation serving this repository, as its webhooks name it.
            let installation_id = if runs.is_empty() {
                None
            } else {
                deps.github
                    .installation_for(owner, repo)
                    .await
                    .map_err(|e| {
                        ReapError::github(
                            &format!("find the GitHub App installation serving {full_name}"),
                            e,
                        )
                    })?
                    .or(deps.installation_id)
            };
            for run in runs {
                if stop_here(&mut report) {
                    break 'repositories;
                }
                let jobs = deps
                    .github
                    .workflow_run_jobs(owner, repo, run.id)
                    .await
                    .map_err(|e| {
                        ReapError::github(
                            &format!("list the jobs of workflow run {} of {full_name}", run.id),
                            e,
                        )
                    })?;
                for job in jobs.iter().filter(|job| job.status == "queued") {
                    report.examined += 1;
                    let event = queued_event(job, &run, installation_id);
                    let Decision::Start { name, input } =
                        runway_webhook::decide(&deps.job_filter, &event, None)
                    else {
                        report.keep(KEEP_NOT_OURS);
                        continue;
                    };
                    let created = job.created_at.as_deref().and_then(parse_time);
                    match created {
                        Some(created) if age(now, created).num_seconds() >= grace(config) => {}
                        Some(_) => {
                            report.keep(crate::verdict::KEEP_YOUNG);
                            continue;
                        }
                        None => {
                            report.keep(KEEP_NO_TIME);
                            continue;
                        }
                    }
                    let target = format!(
                        "queued job {} ({:?} of run {} in {full_name}, labels [{}])",
                        job.id,
                        job.name,
                        run.id,
                        job.labels.join(", ")
                    );
                    let first = lookups.describe(&name).await?;
                    let start = match first.status {
                        ExecutionStatus::Unknown => Some((
                            name.clone(),
                            encode_input(&name, &input, None)?,
                            "no webhook started one".to_owned(),
                        )),
                        ExecutionStatus::Running => {
                            report.keep(KEEP_STARTED);
                            None
                        }
                        ExecutionStatus::Ended => {
                            self.retry_of(&name, first, &input, &mut lookups, &mut report)
                                .await?
                        }
                    };
                    let Some((name, input, why)) = start else {
                        continue;
                    };
                    if report.spent() >= config.max_actions_per_sweep {
                        report.truncated = true;
                        break 'repositories;
                    }
                    match deps.starter.start_execution(&name, &input).await {
                        Ok(StartOutcome::Started { .. }) => {
                            report.acted(format!("started execution {name} for {target}: {why}"))
                        }
                        // Started since it was looked up (its webhook came late).
                        Ok(StartOutcome::AlreadyExists) => report.keep(KEEP_STARTED),
                        Err(StartError::Unavailable(cause)) => {
                            return Err(ReapError::Transient(format!(
                                "could not start execution {name} for {target}: {cause}"
                            )));
                        }
                        Err(error @ StartError::Rejected(_)) => report.failed(format!(
                            "could not start execution {name} for {target}: {error}"
                        )),
                    }
                }
            }
        }
        meter.record(&mut report);
        let mut report = report.finish("queued jobs", "started");
        if repositories.is_empty() {
            report.summary = format!(
                "no repository to check: none is listed (the reaper's repositories, \
                 RUNWAY_ALLOWED_REPOSITORIES or RUNWAY_ALLOWED_OWNERS) and none of the GitHub \
                 App installation's was active in the last {} s; {}",
                config.active_within_seconds, report.summary
            );
        }
        Ok(report)
    }

    /// For a queued job whose execution `name` ended: the next execution to start (name,
    /// input, why) when the latest one failed for a transient cause and the retries are not
    /// spent; `None` (the reason counted in `report`) otherwise.
    async fn retry_of(
        &self,
        name: &str,
        first: ExecutionState,
        input: &JobExecutionInput,
        lookups: &mut Lookups<'_>,
        report: &mut SweepReport,
    ) -> Result<Option<(String, String, String)>, ReapError> {
        let max_retries = self.config().max_retries;
        let (repository_id, job_id, run_attempt) =
            (input.repository.id, input.job.id, input.job.run_attempt);
        let mut latest = (name.to_owned(), first);
        let mut retries = 0;
        for retry in 1..=max_retries {
            let candidate = retry_execution_name(repository_id, job_id, run_attempt, retry);
            let state = lookups.describe(&candidate).await?;
            if state.status == ExecutionStatus::Unknown {
                break;
            }
            latest = (candidate, state);
            retries = retry;
        }
        let (latest_name, latest) = latest;
        if latest.status == ExecutionStatus::Running {
            report.keep(KEEP_STARTED);
            return Ok(None);
        }
        let Some(failure) = latest.failure else {
            report.keep(KEEP_ENDED);
            return Ok(None);
        };
        let error = match classify(&failure) {
            FailureKind::Permanent(_) => {
                report.keep(KEEP_FAILED_FOR_GOOD);
                return Ok(None);
            }
            FailureKind::Transient(_) if retries >= max_retries => {
                report.keep(KEEP_RETRIES_SPENT);
                return Ok(None);
            }
            FailureKind::Transient(error) => error,
        };
        let retry = retries + 1;
        let retry_name = retry_execution_name(repository_id, job_id, run_attempt, retry);
        let why = format!(
            "execution {latest_name} failed for a transient cause ({error}) and the job is still \
             queued (retry {retry} of {max_retries})"
        );
        let retried = json!({
            "attempt": retry,
            "of": max_retries,
            "after": latest_name,
            "error": failure.error,
            "cause": failure.cause,
            "reason": why,
        });
        let input = encode_input(&retry_name, input, Some(retried))?;
        Ok(Some((retry_name, input, why)))
    }
}

/// A job execution's input as the intake builds it; a retry adds `retry` (why it was started
/// again), which the job flow ignores and the console shows.
fn encode_input(
    name: &str,
    input: &JobExecutionInput,
    retry: Option<Value>,
) -> Result<String, ReapError> {
    let encode_error = |error: serde_json::Error| {
        ReapError::Failed(format!("the input of {name} could not be encoded: {error}"))
    };
    let mut value = serde_json::to_value(input).map_err(encode_error)?;
    if let (Some(retry), Some(object)) = (retry, value.as_object_mut()) {
        object.insert("retry".to_owned(), retry);
    }
    serde_json::to_string(&value).map_err(encode_error)
}

fn scope_text(scope: &RunnerScope) -> String {
    match scope {
        RunnerScope::Repository { owner, repo } => format!("repository {owner}/{repo}"),
        RunnerScope::Organization { org } => format!("organization {org}"),
        RunnerScope::Enterprise { enterprise } => format!("enterprise {enterprise}"),
    }
}

/// `lost-jobs` keeps a queued job for these reasons (and [`crate::verdict::KEEP_YOUNG`]).
const KEEP_STARTED: &str = "it already has an execution";
const KEEP_NOT_OURS: &str = "not for runway's runners (the webhook intake's filter ignores it)";
const KEEP_NO_TIME: &str = "GitHub gives no creation time, so its age is unknown";
const KEEP_ENDED: &str = "its execution ended without failing";
const KEEP_FAILED_FOR_GOOD: &str =
    "its execution failed for a cause retrying cannot help (policy, configuration, GitHub refusal)";
const KEEP_RETRIES_SPENT: &str = "its executions failed and it was started again max_retries times";
const KEEP_INACTIVE: &str = "repository not active within active_within_seconds";
/// `stale-slots` keeps a running execution's slot for these reasons too.
const KEEP_JOB_UNKNOWN: &str = "its job is not found on GitHub";
const KEEP_NO_SLOT: &str = "a running execution that holds no slot and waits for no job event";
const KEEP_NOT_WAITING: &str =
    "its job completed on GitHub, but the execution waits on no job or runner event";

fn grace(config: &ReaperConfig) -> i64 {
    i64::try_from(config.grace_seconds).unwrap_or(i64::MAX)
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

/// The `queued` webhook GitHub sends for `job` of `run`, as far as the REST API tells it: the
/// intake turns it into the execution name and input a delivered webhook would have started.
fn queued_event(
    job: &WorkflowJob,
    run: &WorkflowRun,
    installation_id: Option<u64>,
) -> WorkflowJobEvent {
    let repository = &run.repository;
    WorkflowJobEvent {
        action: WorkflowJobAction::Queued,
        // The REST API and the webhook share one job type; fill what a job read through the
        // API may lack from its run.
        job: WorkflowJob {
            workflow_name: job.workflow_name.clone().or_else(|| run.name.clone()),
            head_branch: job.head_branch.clone().or_else(|| run.head_branch.clone()),
            ..job.clone()
        },
        // The REST API and the webhook share one repository type.
        repository: repository.clone(),
        organization: repository.owner.is_organization().then(|| Organization {
            login: repository.owner.login.clone(),
            id: repository.owner.id,
        }),
        installation: installation_id.map(|id| Installation { id }),
    }
}

/// `job-<job id>-r<repository id>-a<run attempt>` (and its retries' `...-retry<n>`) → (job
/// id, repository id, run attempt).
pub(crate) fn parse_execution_name(name: &str) -> Option<(u64, u64, u32)> {
    let rest = name.strip_prefix("job-")?;
    let (job, rest) = rest.split_once("-r")?;
    let (repo, attempt) = rest.split_once("-a")?;
    let attempt = match attempt.split_once("-retry") {
        Some((attempt, retry)) => {
            retry.parse::<u32>().ok()?;
            attempt
        }
        None => attempt,
    };
    Some((job.parse().ok()?, repo.parse().ok()?, attempt.parse().ok()?))
}

/// The release step's input for a slot whose execution is gone: the slot holder names the
/// pool, organisation and repository; the job's ids come from the execution name.
fn release_input(holder: &SlotHolder, reason: &str) -> Value {
    let (job_id, repository_id, run_attempt) =
        parse_execution_name(holder.execution.as_str()).unwrap_or((0, 0, 1));
    let full_name = holder.repo.as_str();
    let (owner, repo) = full_name
        .split_once('/')
        .unwrap_or((holder.org.as_str(), full_name));
    json!({
        "execution": holder.execution.as_str(),
        "outcome": "failed",
        "input": {
            "job": {
                "id": job_id,
                "run_id": 0,
                "run_attempt": run_attempt,
                "name": "",
                "workflow_name": null,
                "labels": [],
                "head_branch": null,
                "html_url": null,
                "created_at": null,
            },
            "repository": {
                "id": repository_id,
                "owner": owner,
                "name": repo,
                "full_name": full_name,
                "private": null,
            },
            "organization": holder.org.as_str(),
            "installation_id": null,
            "delivery_id": null,
        },
        "error": {
            "Error": "Runway.Reaped",
            "Cause": format!("the reaper released the slot: {reason}"),
        },
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn execution_names_give_the_job_back() {
        assert_eq!(parse_execution_name("job-42-r7-a2"), Some((42, 7, 2)));
        for bad in [
            "",
            "job-",
            "job-x-r1-a1",
            "job-1-r1",
            "run-1-r1-a1",
            "job-1-r1-a",
            "job-1-r1-a1-retry",
            "job-1-r1-a1-retryx",
        ] {
            assert_eq!(parse_execution_name(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn every_execution_name_parses_back(job: u64, repo: u64, attempt: u32, retry: u32) {
            let name = runway_webhook::execution_name(repo, job, attempt);
            prop_assert_eq!(parse_execution_name(&name), Some((job, repo, attempt)));
            let name = retry_execution_name(repo, job, attempt, retry);
            prop_assert_eq!(parse_execution_name(&name), Some((job, repo, attempt)));
        }

        #[test]
        fn parsing_never_panics(name in "\\PC{0,40}") {
            let _ = parse_execution_name(&name);
        }
    }
}
