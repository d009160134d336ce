//! Route: which pool runs the job, or whether runway leaves it alone.

use runway_policy_host::{Market, Overrides, RouteDecision, RouterFallback};
use runway_providers::{CapacityPreference, LaunchOverrides};
use serde_json::{Value, json};

use crate::allow_list::check_overrides;
use crate::config::PoolConfig;
use crate::error::StepError;
use crate::flow::JobFlow;
use crate::input::{RouteInput, decode};
use crate::naming::{pool_offers, runner_labels};
use crate::step::Step;
use crate::steps::{policy_job, policy_pool};

pub(crate) async fn run(flow: &JobFlow, input: Value) -> Result<Value, StepError> {
    let input: RouteInput = decode(Step::Route, input)?;
    let common = &input.common;
    let job = &common.input.job;
    let repository = &common.input.repository;
    let config = flow.config();
    let mut refused = None;
    let (decision, fallback) = match &flow.deps().router {
        Some(router) => {
            let now = flow.deps().clock.now();
            let pools: Vec<_> = config.pools.iter().map(policy_pool).collect();
            let started = std::time::Instant::now();
            let decided =
                router.route_or_fallback(&policy_job(common, now), &pools, &config.router_fallback);
            let fallback = decided.is_fallback();
            crate::steps::record_policy(flow, "router", started.elapsed(), fallback, now);
            match within_allow_lists(&config.pools, &decided.decision) {
                Ok(()) => (decided.decision, fallback),
                Err(refusal) => {
                    tracing::warn!(%refusal, "router overrides refused; using the fallback");
                    let decision =
                        refused_fallback(&config.router_fallback, &refusal, &decided.decision);
                    refused = Some(refusal);
                    (decision, true)
                }
            }
        }
        None => (built_in(&config.pools, &job.labels), false),
    };
    let org = common
        .input
        .organization
        .clone()
        .unwrap_or_else(|| repository.owner.clone());
    let mut output = json!({
        "decision": "ignore",
        "pool": null,
        "provider": null,
        "labels": [],
        "overrides": LaunchOverrides::default(),
        "reason": decision.reason(),
        "fallback": fallback,
        "boot_timeout_seconds": 300,
        "idle_timeout_seconds": 300,
        "recheck_after_seconds": 60,
        "org": org,
        "repo": repository.full_name,
        "owner": repository.owner,
        "job_id": job.id,
    });
    if let Some(refusal) = refused {
        output["refused"] = json!(refusal);
    }
    if let RouteDecision::Run {
        pool, overrides, ..
    } = &decision
    {
        let pool = flow.pool(pool)?;
        let provider = flow.provider(&pool.name)?;
        output["decision"] = json!("run");
        output["pool"] = json!(pool.name);
        output["provider"] = json!(provider.kind().to_string());
        output["labels"] = json!(runner_labels(&pool.labels, &job.labels));
        output["overrides"] = json!(launch_overrides(pool, overrides));
        output["boot_timeout_seconds"] = json!(pool.boot_timeout_seconds);
        output["idle_timeout_seconds"] = json!(pool.idle_timeout_seconds);
        output["recheck_after_seconds"] = json!(pool.recheck_after());
    }
    Ok(output)
}

/// The first pool that offers every label the job asks for.
fn built_in(pools: &[PoolConfig], labels: &[String]) -> RouteDecision {
    let asked = labels.join(", ");
    match pools.iter().find(|pool| pool_offers(&pool.labels, labels)) {
        Some(pool) => RouteDecision::Run {
            pool: pool.name.clone(),
            overrides: Overrides::default(),
            reason: format!("labels [{asked}] matched pool {}", pool.name),
        },
        None => RouteDecision::Ignore {
            reason: format!("no pool offers all of the labels [{asked}]"),
        },
    }
}

/// The router's overrides checked against its pool's allow-lists, by the host: the policy
/// cannot widen them. A pool the decision names but the configuration lacks is left to
/// [`JobFlow::pool`] to refuse.
fn within_allow_lists(pools: &[PoolConfig], decision: &RouteDecision) -> Result<(), String> {
    let RouteDecision::Run {
        pool, overrides, ..
    } = decision
    else {
        return Ok(());
    };
    match pools.iter().find(|candidate| &candidate.name == pool) {
        Some(pool) => check_overrides(pool, overrides),
        None => Ok(()),
    }
}

/// What the pool's router fallback decides for a decision whose overrides were refused: the
/// fallback pool with its own settings, or the job left alone. The reason says both why and
/// what the router had said.
fn refused_fallback(
    fallback: &RouterFallback,
    refusal: &str,
    refused: &RouteDecision,
) -> RouteDecision {
    let said = refused.reason();
    match fallback {
        RouterFallback::Pool(pool) => RouteDecision::Run {
            pool: pool.clone(),
            overrides: Overrides::default(),
            reason: format!("{refusal} (router: {said}); fail-open to pool {pool}"),
        },
        RouterFallback::Ignore => RouteDecision::Ignore {
            reason: format!("{refusal} (router: {said}); fail-closed, job not taken"),
        },
    }
}

/// The policy's overrides, else the pool's own settings where it has any.
fn launch_overrides(pool: &PoolConfig, overrides: &Overrides) -> LaunchOverrides {
    LaunchOverrides {
        instance_types: overrides
            .instance_types
            .clone()
            .or_else(|| (!pool.instance_types.is_empty()).then(|| pool.instance_types.clone())),
        image: overrides.image.clone().or_else(|| pool.image.clone()),
        disk_gib: overrides.disk_gib.or(pool.disk_gib),
        capacity: overrides.market.map(|market| match market {
            Market::Spot => CapacityPreference::SpotThenOnDemand,
            Market::OnDemand => CapacityPreference::OnDemand,
        }),
    }
}
