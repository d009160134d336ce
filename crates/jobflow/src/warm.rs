//! Warm pools: idle runners kept registered on a schedule, adopted by arriving jobs.
//!
//! The keeper ([`JobFlow::keep_warm`], run every minute by the stack and every few seconds by
//! `runway local`) brings each pool to the count its `warm` windows ask for at this minute:
//! it launches warm runners, owned by a warm key ([`ExecutionKey::warm`]) instead of an
//! execution, and tears down those the schedule no longer wants, those idle past
//! `replace_after_seconds` (to be replaced), and those that ran a job on their own and left.
//! Warm runners count against the pool's ceiling: the keeper launches only into the room the
//! jobs holding slots leave.
//!
//! A job's execution adopts one in Provision ([`adopt`]): one conditional write makes the
//! runner the execution's (its host keeps the warm key, `launched_by`), and the execution
//! follows it exactly as a runner it launched. The next pass refills the pool.

use chrono::{DateTime, Duration, Utc};
use runway_github::RunnerScope;
use runway_providers::LaunchOverrides;
use runway_store::{ExecutionKey, PoolName, RunnerName, RunnerRecord, RunnerState};
use serde::Serialize;
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::config::{PoolConfig, RunnerScopeLevel};
use crate::error::{PROVISION_FAILED, StepError};
use crate::flow::JobFlow;
use crate::steps::provision::{Launch, launch_runner};
use crate::steps::teardown::{Removal, teardown_one};
use crate::steps::timestamp;

/// What one keeper pass did to one pool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WarmPoolReport {
    pub pool: String,
    /// What the schedule asks for now.
    pub wanted: u32,
    /// Warm runners booting or idle after the pass (launches included).
    pub ready: u32,
    /// Launched by this pass.
    pub launched: Vec<String>,
    /// Torn down by this pass, each with why.
    pub retired: Vec<String>,
    /// Launches the pool's ceiling left no room for.
    pub held_back: u32,
    /// What failed (the pass goes on with the next pool).
    pub failed: Vec<String>,
}

/// One keeper pass over every pool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WarmPass {
    pub at: String,
    pub pools: Vec<WarmPoolReport>,
}

impl WarmPass {
    /// The pass as a state output: a line per pool that has or wants warm runners.
    pub fn to_value(&self) -> Value {
        json!({
            "at": self.at,
            "pools": self.pools,
            "summary": self.pools.iter().map(|pool| format!(
                "{}: {} wanted, {} ready, {} launched, {} retired{}",
                pool.pool, pool.wanted, pool.ready, pool.launched.len(), pool.retired.len(),
                if pool.held_back > 0 { format!(", {} held back by the ceiling", pool.held_back) } else { String::new() }
            )).collect::<Vec<_>>(),
        })
    }
}

/// Where a pool's warm runners register, when it can tell without a job.
pub(crate) fn warm_scope(flow: &JobFlow, pool: &PoolConfig) -> Option<RunnerScope> {
    let warm = pool.warm.as_ref()?;
    match &flow.config().github.scope {
        RunnerScopeLevel::Enterprise(slug) => Some(RunnerScope::enterprise(slug.as_str())),
        RunnerScopeLevel::Organization => {
            warm.organization.as_deref().map(RunnerScope::organization)
        }
        RunnerScopeLevel::Repository => {
            let (owner, name) = warm.repository.as_deref()?.split_once('/')?;
            Some(RunnerScope::repository(owner, name))
        }
    }
}

/// Takes over one of the pool's warm runners for `execution`, when the pool keeps warm
/// runners registered where the job's runner would be. Returns Provision's output for it.
pub(crate) async fn adopt(
    flow: &JobFlow,
    pool: &PoolConfig,
    job_scope: &RunnerScope,
    execution: &ExecutionKey,
) -> Result<Option<Value>, StepError> {
    if warm_scope(flow, pool).as_ref() != Some(job_scope) {
        return Ok(None);
    }
    let deps = flow.deps();
    let pool_name = PoolName::new(pool.name.as_str())
        .map_err(|e| StepError::bad_input(format!("provision: {e}")))?;
    let Some(record) = deps
        .store
        .adopt_warm_runner(&pool_name, execution)
        .await
        .map_err(|e| StepError::store("adopt a warm runner", e))?
    else {
        return Ok(None);
    };
    let now = deps.clock.now();
    let age = (now - record.launched_at).num_seconds().max(0);
    info!(runner = %record.runner_name, pool = %pool.name, "warm runner adopted");
    Ok(Some(json!({
        "runner_name": record.runner_name.as_str(),
        "runner_id": null,
        "provider": record.provider,
        "instance_id": record.instance_id,
        "instance_type": null,
        "capacity": null,
        "attempt": 1,
        "launched_at": timestamp(record.launched_at),
        "adopted": true,
        "reason": format!(
            "adopted warm runner {} of pool {} ({}, launched {age} s ago) instead of launching one",
            record.runner_name, pool.name, record.state.as_key()
        ),
    })))
}

impl JobFlow {
    /// One keeper pass: every pool brought to what its warm schedule asks for now.
    pub async fn keep_warm(&self) -> WarmPass {
        let now = self.deps().clock.now();
        let mut pass = WarmPass {
            at: timestamp(now),
            pools: Vec::new(),
        };
        for pool in &self.config().pools {
            let mut report = WarmPoolReport {
                pool: pool.name.clone(),
                ..WarmPoolReport::default()
            };
            if let Err(error) = keep_pool_warm(self, pool, now, &mut report).await {
                warn!(pool = %pool.name, %error, "warm pool pass failed");
                report.failed.push(error.to_string());
            }
            if report
                != (WarmPoolReport {
                    pool: pool.name.clone(),
                    ..WarmPoolReport::default()
                })
            {
                pass.pools.push(report);
            }
        }
        pass
    }
}

async fn keep_pool_warm(
    flow: &JobFlow,
    pool: &PoolConfig,
    now: DateTime<Utc>,
    report: &mut WarmPoolReport,
) -> Result<(), StepError> {
    let deps = flow.deps();
    let pool_name = PoolName::new(pool.name.as_str())
        .map_err(|e| StepError::bad_input(format!("warm pool: {e}")))?;
    let runners = deps
        .store
        .runners_of_pool(&pool_name)
        .await
        .map_err(|e| StepError::store("list the pool's runners", e))?;
    let warm: Vec<&RunnerRecord> = runners.iter().filter(|r| r.is_unadopted_warm()).collect();
    let scope = warm_scope(flow, pool);
    let wanted = match (&pool.warm, &scope) {
        (Some(schedule), Some(_)) => schedule.idle_at(now),
        _ => 0,
    };
    report.wanted = wanted;
    if warm.is_empty() && wanted == 0 {
        return Ok(());
    }
    let replace_after = Duration::seconds(
        pool.warm
            .as_ref()
            .map_or(0, |schedule| i64::from(schedule.replace_after_seconds)),
    );

    // Booting or idle, oldest first: the oldest are the stale ones.
    let mut ready: Vec<&RunnerRecord> = warm
        .iter()
        .copied()
        .filter(|r| matches!(r.state, RunnerState::Booting | RunnerState::Idle))
        .collect();
    ready.sort_by_key(|r| r.launched_at);
    let mut retire: Vec<(&RunnerRecord, String)> = Vec::new();
    for record in warm.iter().filter(|r| r.state == RunnerState::Gone) {
        retire.push((record, "it ran a job and left".to_owned()));
    }
    let (stale, fresh): (Vec<&RunnerRecord>, Vec<&RunnerRecord>) = ready
        .into_iter()
        .partition(|r| pool.warm.is_some() && now - r.launched_at >= replace_after);
    for record in stale {
        retire.push((
            record,
            format!(
                "warm for {} s, past replace_after_seconds ({})",
                (now - record.launched_at).num_seconds(),
                replace_after.num_seconds()
            ),
        ));
    }
    let excess = fresh.len().saturating_sub(wanted as usize);
    // The schedule wants fewer: the youngest go (they are likeliest still booting).
    for record in fresh.iter().rev().take(excess) {
        retire.push((
            record,
            format!("the schedule wants {wanted} warm runners now"),
        ));
    }
    let kept = fresh.len() - excess;
    // Booting or idle warm runners this pass took down (runners that already left are not
    // alive either way).
    let mut retired_alive = 0usize;
    for (record, why) in retire {
        match retire_warm(flow, pool, scope.as_ref(), record).await {
            Ok(true) => {
                retired_alive += usize::from(record.state != RunnerState::Gone);
                report
                    .retired
                    .push(format!("{}: {why}", record.runner_name));
            }
            Ok(false) => {}
            Err(error) => report
                .failed
                .push(format!("retire {}: {error}", record.runner_name)),
        }
    }

    let missing = (wanted as usize).saturating_sub(kept);
    let mut launched_now = 0usize;
    if missing > 0
        && let Some(scope) = &scope
    {
        // Warm runners count against the pool's ceiling, with the jobs holding slots and
        // the warm runners still alive (busy ones included).
        let running = deps
            .store
            .slot_holders(&pool_name)
            .await
            .map_err(|e| StepError::store("count the pool's slots", e))?
            .len();
        let alive = warm
            .iter()
            .filter(|r| r.state != RunnerState::Gone)
            .count()
            .saturating_sub(retired_alive);
        let room = (pool.max_running as usize).saturating_sub(running + alive);
        let launches = missing.min(room);
        report.held_back = u32::try_from(missing - launches).unwrap_or(u32::MAX);
        let provider = flow.provider(&pool.name)?.clone();
        for index in 0..launches {
            let name = warm_runner_name(flow, now, index)?;
            let owner = ExecutionKey::warm(&name);
            let launch = Launch {
                pool,
                provider: &provider,
                scope,
                name: &name,
                owner: &owner,
                labels: &pool.labels,
                overrides: &LaunchOverrides::default(),
            };
            match launch_runner(flow, launch).await {
                Ok((launched, _)) => {
                    launched_now += 1;
                    report.launched.push(format!(
                        "{name} on {} {}",
                        launched.provider, launched.instance_id
                    ));
                }
                Err(error) => {
                    report.failed.push(format!("launch {name}: {error}"));
                    // The record may stand without a host: retire it now, not at its TTL.
                    if let Ok(Some(record)) = deps.store.get_runner(&name).await {
                        let _ = retire_warm(flow, pool, Some(scope), &record).await;
                    }
                    break;
                }
            }
        }
    }
    report.ready = u32::try_from(kept + launched_now).unwrap_or(u32::MAX);
    Ok(())
}

/// Tears down one warm runner the keeper owns: deregistered, terminated, recorded as gone,
/// its record deleted so that its name is not listed again. False when GitHub shows it busy
/// (it took a job meanwhile: it is retired once it leaves).
async fn retire_warm(
    flow: &JobFlow,
    pool: &PoolConfig,
    scope: Option<&RunnerScope>,
    record: &RunnerRecord,
) -> Result<bool, StepError> {
    let fallback;
    let scope = match scope {
        Some(scope) => scope,
        None => {
            // The pool no longer says where its warm runners register: use the scope the
            // configuration implies for an organisation-wide registration, if any.
            fallback = match &flow.config().github.scope {
                RunnerScopeLevel::Enterprise(slug) => RunnerScope::enterprise(slug.as_str()),
                _ => {
                    return Err(StepError::new(
                        PROVISION_FAILED,
                        format!(
                            "warm runner {} of pool {} cannot be removed from GitHub: the pool's \
                             warm table no longer says where its runners register (the reaper \
                             removes it once GitHub lists it offline)",
                            record.runner_name, pool.name
                        ),
                    ));
                }
            };
            &fallback
        }
    };
    let removal = teardown_one(
        flow,
        record.host_owner(),
        scope,
        Some(pool.name.as_str()),
        &record.runner_name,
        Some(record),
    )
    .await?;
    if let Removal::Busy { .. } = removal {
        return Ok(false);
    }
    flow.deps()
        .store
        .delete_runner(&record.runner_name)
        .await
        .map_err(|e| StepError::store("delete a retired warm runner's record", e))?;
    Ok(true)
}

/// A new warm runner's name ([`crate::naming::warm_runner_name`]).
fn warm_runner_name(
    flow: &JobFlow,
    now: DateTime<Utc>,
    index: usize,
) -> Result<RunnerName, StepError> {
    let prefix = &flow.config().github.runner_name_prefix;
    let name = crate::naming::warm_runner_name(prefix, now.timestamp_millis(), index);
    RunnerName::new(name).map_err(|e| StepError::bad_input(format!("warm pool: {e}")))
}
