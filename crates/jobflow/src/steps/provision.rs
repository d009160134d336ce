//! Provision: a just-in-time runner configuration from GitHub, a store record, then the
//! launch. The record comes first: the runner's webhooks may arrive before launch returns.

use runway_github::{GitHubError, JitConfigRequest, RunnerScope};
use runway_metrics::{Dimension, Metric, Sample};
use std::sync::Arc;

use runway_providers::{JitConfig, LaunchOverrides, LaunchRequest, Launched, Provider};
use runway_store::{ExecutionKey, PoolName, PutRunner, RunnerName, RunnerRecord, RunnerState};
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::config::PoolConfig;
use crate::error::{LAUNCHES_SPENT, PROVISION_FAILED, RUNNER_NEVER_REGISTERED, StepError};
use crate::flow::JobFlow;
use crate::input::{ProvisionInput, ReplaceReason, decode};
use crate::naming::runner_name;
use crate::step::Step;
use crate::steps::teardown::{Removal, teardown_one};
use crate::steps::{RECORD_TTL, runner_scope, timestamp};

pub(crate) async fn run(flow: &JobFlow, input: Value) -> Result<Value, StepError> {
    let input: ProvisionInput = decode(Step::Provision, input)?;
    let routed = input.route.routed(Step::Provision)?;
    let pool = flow.pool(routed.pool.as_str())?;
    let provider = flow.provider(&pool.name)?.clone();
    let deps = flow.deps();
    let common = &input.common;
    let execution = &common.execution;
    let job = &common.input.job;
    let scope = runner_scope(flow, common);

    let attempt = match &input.replaces {
        Some(old) => {
            let record = deps
                .store
                .get_runner(&old.runner_name)
                .await
                .map_err(|e| StepError::store("read the replaced runner's record", e))?
                .filter(|record| &record.execution == execution);
            let removal = teardown_one(
                flow,
                execution,
                &scope,
                Some(pool.name.as_str()),
                &old.runner_name,
                record.as_ref(),
            )
            .await?;
            if let Removal::Busy { .. } = removal {
                // It came online late and took a job: it is followed, not replaced.
                let mut output = serde_json::to_value(old).map_err(|e| {
                    StepError::bad_input(format!("provision: the replaced runner: {e}"))
                })?;
                output["reason"] = json!(format!(
                    "runner {} registered late and is running a job; it is followed instead of \
                     replaced",
                    old.runner_name
                ));
                return Ok(output);
            }
            old.attempt.max(1).saturating_add(1)
        }
        None => 1,
    };
    let allowed = pool.max_replacements.saturating_add(1);
    if attempt > allowed {
        let last = input
            .replaces
            .as_ref()
            .map(|old| old.runner_name.to_string())
            .unwrap_or_default();
        return Err(match input.because {
            ReplaceReason::NeverRegistered => StepError::new(
                RUNNER_NEVER_REGISTERED,
                format!(
                    "none of the {allowed} runners launched for job {} registered with GitHub \
                     (the last was {last}); check the pool's image, its network access to \
                     GitHub and the runner logs",
                    job.id
                ),
            ),
            ReplaceReason::RanAnotherJob => StepError::new(
                LAUNCHES_SPENT,
                format!(
                    "job {} is still queued, but the {allowed} runners pool {} allows for it \
                     were all launched (the last, {last}, ran another job of the pool); the \
                     slot is released and the job waits for any runner of the pool",
                    job.id, pool.name
                ),
            ),
        });
    }

    let name = runner_name(
        &flow.config().github.runner_name_prefix,
        job.id,
        job.run_attempt,
        attempt,
    );
    let name = RunnerName::new(name.as_str())
        .map_err(|e| StepError::bad_input(format!("provision: {e}")))?;

    let existing = deps
        .store
        .get_runner(&name)
        .await
        .map_err(|e| StepError::store("read the runner record", e))?;
    let existing = match existing {
        // Torn down by an earlier execution for the same job (one that failed and that the
        // reaper started again): the name is free.
        Some(old) if &old.execution != execution && old.state == RunnerState::Gone => {
            deps.store
                .delete_runner(&name)
                .await
                .map_err(|e| StepError::store("free the name of a torn-down runner", e))?;
            None
        }
        other => other,
    };
    // A retried step whose launch went through: report it instead of launching twice.
    if let Some(existing) = existing {
        if &existing.execution != execution {
            return Err(StepError::new(
                PROVISION_FAILED,
                format!(
                    "runner name {name} is already used by execution {}; runner names must be \
                     unique: give each runway installation its own github.runner_name_prefix",
                    existing.execution
                ),
            ));
        }
        let owned = provider
            .owned()
            .await
            .map_err(|e| StepError::provider("list the provider's runners", PROVISION_FAILED, e))?;
        if let Some(running) = owned
            .iter()
            .find(|r| r.execution == execution.as_str() && r.runner_name == name.as_str())
        {
            let runner_id = deps
                .github
                .list_runners(&scope, Some(name.as_str()))
                .await
                .map_err(|e| StepError::github(&format!("look up runner {name}"), e))?
                .into_iter()
                .find(|r| r.name == name.as_str())
                .map(|r| r.id);
            return Ok(json!({
                "runner_name": name.as_str(),
                "runner_id": runner_id,
                "provider": running.provider.to_string(),
                "instance_id": running.instance_id,
                "instance_type": null,
                "capacity": null,
                "attempt": attempt,
                "launched_at": running.launched_at.map(timestamp),
                "reason": format!("runner {name} was already launched by an earlier try of this step"),
            }));
        }
        // Gone from the provider after taking a job: the earlier try's runner ran and left
        // before this try. Launching again under its name would start a second runner that no
        // job waits for; following it finds it gone and checks the job.
        if matches!(existing.state, RunnerState::Busy { .. } | RunnerState::Gone) {
            return Ok(json!({
                "runner_name": name.as_str(),
                "runner_id": null,
                "provider": existing.provider,
                "instance_id": existing.instance_id,
                "instance_type": null,
                "capacity": null,
                "attempt": attempt,
                "launched_at": timestamp(existing.launched_at),
                "reason": format!(
                    "runner {name}, launched by an earlier try of this step, already ran a job ({})",
                    existing.state.as_key()
                ),
            }));
        }
    }

    // A job's first runner: an idle warm runner of the pool, registered where this job's
    // runner would be, is taken over instead of launching one.
    if input.replaces.is_none()
        && let Some(adopted) = crate::warm::adopt(flow, pool, &scope, execution).await?
    {
        return Ok(adopted);
    }
    let (launched, runner_id) = launch_runner(
        flow,
        Launch {
            pool,
            provider: &provider,
            scope: &scope,
            name: &name,
            owner: execution,
            labels: &input.route.labels,
            overrides: &input.route.overrides,
        },
    )
    .await?;
    info!(runner = %name, instance = %launched.instance_id, attempt, "runner launched");
    let replaced = input
        .replaces
        .as_ref()
        .map(|old| format!(", replacing {} which never registered", old.runner_name))
        .unwrap_or_default();
    Ok(json!({
        "runner_name": name.as_str(),
        "runner_id": runner_id,
        "provider": launched.provider.to_string(),
        "instance_id": launched.instance_id,
        "instance_type": launched.instance_type,
        "capacity": launched.capacity.map(|c| c.to_string()),
        "attempt": attempt,
        "launched_at": timestamp(launched.launched_at),
        "reason": format!(
            "launched runner {name} (attempt {attempt}) in pool {} on {} {}{replaced}",
            pool.name, launched.provider, launched.instance_id
        ),
    }))
}

/// What [`launch_runner`] launches: a runner called `name` in `pool`, registered at `scope`
/// with `labels`, owned by `owner` (an execution, or a warm pool's key).
pub(crate) struct Launch<'a> {
    pub pool: &'a PoolConfig,
    pub provider: &'a Arc<dyn Provider>,
    pub scope: &'a RunnerScope,
    pub name: &'a RunnerName,
    pub owner: &'a ExecutionKey,
    pub labels: &'a [String],
    pub overrides: &'a LaunchOverrides,
}

/// A JIT configuration from GitHub, the runner's record, then the launch; the record comes
/// first because the runner's webhooks may arrive before the launch returns. Returns the
/// launch and the runner's GitHub id.
pub(crate) async fn launch_runner(
    flow: &JobFlow,
    launch: Launch<'_>,
) -> Result<(Launched, u64), StepError> {
    let deps = flow.deps();
    let Launch {
        pool,
        provider,
        scope,
        name,
        owner,
        labels,
        overrides,
    } = launch;
    let request = JitConfigRequest {
        name: name.to_string(),
        runner_group_id: flow.config().github.runner_group_id,
        labels: labels.to_vec(),
        work_folder: None,
    };
    let jit = match deps.github.generate_jit_config(scope, &request).await {
        Ok(jit) => jit,
        Err(GitHubError::Validation { .. }) => {
            // The name is taken by a registration an earlier try left behind.
            remove_stale_registration(flow, scope, name).await?;
            deps.github
                .generate_jit_config(scope, &request)
                .await
                .map_err(|e| StepError::github(&format!("get a JIT config for runner {name}"), e))?
        }
        Err(e) => {
            return Err(StepError::github(
                &format!("get a JIT config for runner {name}"),
                e,
            ));
        }
    };

    let now = deps.clock.now();
    let record = RunnerRecord {
        runner_name: name.clone(),
        execution: owner.clone(),
        launched_by: None,
        pool: PoolName::new(pool.name.as_str())
            .map_err(|e| StepError::bad_input(format!("provision: {e}")))?,
        provider: provider.kind().to_string(),
        instance_id: None,
        state: RunnerState::Booting,
        runner_watch: None,
        launched_at: now,
        job_started_at: None,
        left_at: None,
        torn_down_at: None,
        reclaimed_at: None,
        expires_at: now + RECORD_TTL,
    };
    match deps
        .store
        .put_runner(&record)
        .await
        .map_err(|e| StepError::store("record the runner", e))?
    {
        PutRunner::Created => {}
        PutRunner::Exists { existing } if existing.execution == *owner => {
            warn!(runner = %name, "the runner record exists from an earlier try; launching");
        }
        PutRunner::Exists { existing } => {
            return Err(StepError::new(
                PROVISION_FAILED,
                format!(
                    "runner name {name} is already used by execution {}",
                    existing.execution
                ),
            ));
        }
    }

    let launched = provider
        .launch(LaunchRequest {
            execution: owner.to_string(),
            pool: pool.name.clone(),
            runner_name: name.to_string(),
            labels: labels.to_vec(),
            jit_config: JitConfig::new(jit.encoded_jit_config.expose()),
            overrides: overrides.clone(),
        })
        .await
        .map_err(|e| {
            crate::steps::measure(
                flow,
                Sample::count(Metric::LaunchFailures, deps.clock.now())
                    .by(Dimension::Pool, pool.name.as_str()),
            );
            StepError::provider(
                &format!("launch runner {name} in pool {}", pool.name),
                PROVISION_FAILED,
                e,
            )
        })?;
    record_launch(flow, pool, &launched);
    // The record names the instance so that the reaper and operators can find it; the launch
    // stands even if this write fails (teardown finds the instance by its tags).
    if let Err(error) = deps
        .store
        .set_runner_instance(name, &launched.instance_id)
        .await
    {
        warn!(runner = %name, %error, "could not record the runner's instance id");
    }
    Ok((launched, jit.runner.id))
}

/// Deletes GitHub registrations named `name` that no job uses.
async fn remove_stale_registration(
    flow: &JobFlow,
    scope: &RunnerScope,
    name: &RunnerName,
) -> Result<(), StepError> {
    let github = &flow.deps().github;
    let runners = github
        .list_runners(scope, Some(name.as_str()))
        .await
        .map_err(|e| StepError::github(&format!("look up runner {name}"), e))?;
    for runner in runners.iter().filter(|r| r.name == name.as_str()) {
        if runner.busy {
            return Err(StepError::new(
                PROVISION_FAILED,
                format!("runner name {name} is registered on GitHub and busy; it cannot be reused"),
            ));
        }
        match github.delete_runner(scope, runner.id).await {
            Ok(()) | Err(GitHubError::NotFound { .. }) => {}
            Err(e) => {
                return Err(StepError::github(
                    &format!("remove the stale registration of {name}"),
                    e,
                ));
            }
        }
    }
    Ok(())
}

/// A launch, by pool and the market it got; a fallback when it asked for spot and got
/// on-demand.
fn record_launch(flow: &JobFlow, pool: &PoolConfig, launched: &runway_providers::Launched) {
    let now = launched.launched_at;
    let market = launched.capacity.map(|c| c.to_string()).unwrap_or_default();
    crate::steps::measure(
        flow,
        Sample::count(Metric::RunnerLaunches, now)
            .by(Dimension::Pool, pool.name.as_str())
            .by(Dimension::Market, market.as_str()),
    );
    let asked_spot = pool.market == runway_policy_host::Market::Spot;
    if asked_spot && launched.capacity == Some(runway_providers::Capacity::OnDemand) {
        crate::steps::measure(
            flow,
            Sample::count(Metric::LaunchFallbacks, now).by(Dimension::Pool, pool.name.as_str()),
        );
    }
}
