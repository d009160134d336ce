//! Admit and wait-for-slot: the throttle policy, the FIFO queue and the hard ceilings.

use chrono::{DateTime, Utc};
use runway_policy_host::{Counts, Load as PolicyLoad, ThrottleDecision};
use runway_store::{
    CeilingKind, ExecutionKey, Load, RunnerState, SlotClaim, SlotOutcome, Store, Waiter,
};
use serde_json::{Value, json};
use tracing::warn;

use crate::config::{MAX_SLOT_WAITS, PoolConfig, RECHECK_BOUNDS};
use crate::error::{StepError, WAITED_TOO_LONG};
use crate::flow::JobFlow;
use crate::input::{Admission, AdmitInput, Routed, WaitInput, decode};
use crate::step::Step;
use crate::steps::check_job;
use crate::steps::{WAITER_MARGIN, instant, policy_job, policy_pool, timestamp, wake};

/// Why a job waits: the policy said so, a ceiling is full, or older jobs wait first.
const WAIT_POLICY: &str = "policy";
const WAIT_CEILING: &str = "ceiling";
const WAIT_QUEUE: &str = "queue";

struct Place {
    priority: i32,
    enqueued_at: DateTime<Utc>,
}

pub(crate) async fn run(flow: &JobFlow, input: Value) -> Result<Value, StepError> {
    let input: AdmitInput = decode(Step::Admit, input)?;
    let routed = input.route.routed(Step::Admit)?;
    let pool = flow.pool(routed.pool.as_str())?;
    let now = flow.deps().clock.now();
    // A job back from the queue keeps its place: its first arrival and its priority.
    let previous: Option<Admission> = input
        .previous_admission()
        .and_then(|value| serde_json::from_value(value).ok())
        .filter(|admission: &Admission| admission.enqueued_at.is_some());
    let mut output = decide(flow, &input, previous.as_ref(), now).await?;
    if output["decision"] == "admit" {
        // Read once the job is admitted, not on every trip through the queue: a job waiting
        // for hours would otherwise read GitHub at each re-check.
        let job = check_job::job_status(flow, &input.common, check_job::Asked::OnAdmission).await?;
        if check_job::needs_no_runner(&job) {
            output["decision"] = json!("not-needed");
            output["reason"] = job["reason"].clone();
        }
        output["job"] = job;
    }
    record_admission(flow, &input, previous.as_ref(), &routed, &output, now);
    let waited = previous.as_ref().map_or(0, |a| a.waits);
    if output["decision"] != "wait" {
        output["waits"] = json!(waited);
        return Ok(output);
    }
    bound_wait(pool, previous.as_ref(), now, output)
}

/// A job that must wait again: the re-check interval doubles (up to its bound), and a job
/// that has waited its pool's `max_wait_seconds`, or been queued [`MAX_SLOT_WAITS`] times,
/// fails instead, so a long wait cannot outgrow the execution's history.
fn bound_wait(
    pool: &PoolConfig,
    previous: Option<&Admission>,
    now: DateTime<Utc>,
    mut output: Value,
) -> Result<Value, StepError> {
    let waits = previous.map_or(0, |a| a.waits).saturating_add(1);
    let why = output["reason"].as_str().unwrap_or_default().to_owned();
    if waits > MAX_SLOT_WAITS {
        return Err(StepError::new(
            WAITED_TOO_LONG,
            format!(
                "the job went back to pool {}'s queue {MAX_SLOT_WAITS} times, as often as one \
                 execution's history allows, and must wait again ({why})",
                pool.name
            ),
        ));
    }
    let enqueued_at = output["enqueued_at"]
        .as_str()
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .map_or(now, |time| time.with_timezone(&Utc));
    let waited = (now - enqueued_at).num_seconds().max(0);
    let left = i64::from(pool.max_wait_seconds) - waited;
    if left <= 0 {
        return Err(StepError::new(
            WAITED_TOO_LONG,
            format!(
                "the job waited {} for a slot in pool {}, its max_wait_seconds ({}), and must \
                 wait again ({why})",
                duration_text(waited),
                pool.name,
                pool.max_wait_seconds
            ),
        ));
    }
    let base = output["recheck_after_seconds"]
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or_else(|| pool.recheck_after());
    let backed_off = previous
        .and_then(|a| a.recheck_after_seconds)
        .map_or(base, |last| last.saturating_mul(2).max(base))
        .min(RECHECK_BOUNDS.1);
    // The last re-check falls on the deadline.
    let recheck = i64::from(backed_off)
        .min(left)
        .max(i64::from(RECHECK_BOUNDS.0));
    output["recheck_after_seconds"] = json!(recheck);
    output["waits"] = json!(waits);
    Ok(output)
}

/// `90061` → "1 d 1 h 1 min"; under a minute, seconds.
fn duration_text(seconds: i64) -> String {
    if seconds < 60 {
        return format!("{seconds} s");
    }
    let (days, hours, minutes) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
    );
    [(days, "d"), (hours, "h"), (minutes, "min")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n} {unit}"))
        .collect::<Vec<_>>()
        .join(" ")
}

async fn decide(
    flow: &JobFlow,
    input: &AdmitInput,
    previous: Option<&Admission>,
    now: DateTime<Utc>,
) -> Result<Value, StepError> {
    let routed = input.route.routed(Step::Admit)?;
    let pool = flow.pool(routed.pool.as_str())?;
    let deps = flow.deps();
    let store = deps.store.as_ref();
    let execution = &input.common.execution;
    let queue = store
        .waiters(&routed.pool)
        .await
        .map_err(|e| StepError::store("read the pool's queue", e))?;
    let own_entry = queue.iter().find(|w| &w.execution == execution);
    let mut place = Place {
        priority: previous
            .map(|a| a.priority)
            .or(own_entry.map(|w| w.priority))
            .unwrap_or(0),
        enqueued_at: previous
            .and_then(|a| a.enqueued_at)
            .or(own_entry.map(|w| w.enqueued_at))
            .unwrap_or(now),
    };
    if own_entry.is_some() {
        store
            .remove_waiter(&routed.pool, execution)
            .await
            .map_err(|e| StepError::store("leave the pool's queue", e))?;
    }
    let load = store
        .load(&routed.pool, &routed.org, &routed.repo)
        .await
        .map_err(|e| StepError::store("read the pool's load", e))?;
    let mut recheck = pool.recheck_after();

    let mut policy_reason = None;
    if let Some(throttle) = &deps.throttle {
        let booting = store
            .count_runners(&routed.pool, RunnerState::Booting)
            .await
            .map_err(|e| StepError::store("count the pool's booting runners", e))?;
        let policy_load = PolicyLoad {
            pool: Counts {
                running: load.pool_running,
                booting,
                waiting: load.pool_waiting,
            },
            org: Counts {
                running: load.org_running,
                ..Counts::default()
            },
            repo: Counts {
                running: load.repo_running,
                ..Counts::default()
            },
            now: instant(now),
        };
        let started = std::time::Instant::now();
        let decided = throttle.decide_or_fallback(
            &policy_job(&input.common, now),
            &policy_pool(pool),
            &policy_load,
            flow.config().throttle_fallback,
        );
        crate::steps::record_policy(
            flow,
            "throttle",
            started.elapsed(),
            decided.is_fallback(),
            now,
        );
        match decided.decision {
            ThrottleDecision::Reject { reason } => {
                return Ok(output(
                    "reject",
                    format!("rejected by the throttle policy: {reason}"),
                    &place,
                    recheck,
                    None,
                    None,
                    &load,
                ));
            }
            ThrottleDecision::Wait {
                priority,
                recheck_after_seconds,
                reason,
            } => {
                place.priority = priority;
                recheck = recheck_after_seconds.clamp(RECHECK_BOUNDS.0, RECHECK_BOUNDS.1);
                let ahead = ahead_of(&queue, execution, &place);
                return Ok(output(
                    "wait",
                    format!("the throttle policy queues the job: {reason}"),
                    &place,
                    recheck,
                    Some(ahead),
                    Some(WAIT_POLICY),
                    &load,
                ));
            }
            ThrottleDecision::Admit { reason } => policy_reason = Some(reason),
        }
    }

    let ahead = ahead_of(&queue, execution, &place);
    if ahead > 0 {
        let jobs = if ahead == 1 { "job waits" } else { "jobs wait" };
        return Ok(output(
            "wait",
            format!(
                "{ahead} older {jobs} for pool {} first (first in, first out)",
                routed.pool
            ),
            &place,
            recheck,
            Some(ahead),
            Some(WAIT_QUEUE),
            &load,
        ));
    }

    let claim = SlotClaim {
        execution: execution.clone(),
        pool: routed.pool.clone(),
        org: routed.org.clone(),
        repo: routed.repo.clone(),
        ceilings: pool.ceilings().to_store(),
    };
    let outcome = store
        .acquire_slot(&claim)
        .await
        .map_err(|e| StepError::store("take a slot in the pool", e))?;
    let policy = policy_reason
        .map(|reason| format!("; the throttle policy admits it: {reason}"))
        .unwrap_or_default();
    let (decision, reason, wait_cause) = match outcome {
        SlotOutcome::Acquired => (
            "admit",
            format!(
                "slot taken in pool {} ({} of {} running before){policy}",
                routed.pool, load.pool_running, pool.max_running
            ),
            None,
        ),
        SlotOutcome::AlreadyHeld => (
            "admit",
            format!(
                "this execution already holds a slot in pool {} (a retried admission){policy}",
                routed.pool
            ),
            None,
        ),
        SlotOutcome::Full {
            ceiling,
            limit,
            current,
        } => (
            "wait",
            full_reason(ceiling, limit, current, &routed),
            Some(WAIT_CEILING),
        ),
    };
    let position = wait_cause.map(|_| ahead);
    Ok(output(
        decision, reason, &place, recheck, position, wait_cause, &load,
    ))
}

fn full_reason(ceiling: CeilingKind, limit: u32, current: u32, routed: &Routed) -> String {
    match ceiling {
        CeilingKind::Pool => format!("pool ceiling {limit} reached: {current} running"),
        CeilingKind::Org => format!(
            "organisation ceiling {limit} reached: {current} running for {}",
            routed.org
        ),
        CeilingKind::Repo => format!(
            "repository ceiling {limit} reached: {current} running for {}",
            routed.repo
        ),
    }
}

/// How many other waiters come before this job in queue order (priority, then arrival,
/// then execution name).
fn ahead_of(queue: &[Waiter], execution: &ExecutionKey, place: &Place) -> u32 {
    let mine = place.enqueued_at.timestamp_millis();
    let count = queue
        .iter()
        .filter(|w| &w.execution != execution)
        .filter(|w| {
            w.priority > place.priority
                || (w.priority == place.priority
                    && (w.enqueued_at.timestamp_millis() < mine
                        || (w.enqueued_at.timestamp_millis() == mine && &w.execution < execution)))
        })
        .count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

fn output(
    decision: &str,
    reason: String,
    place: &Place,
    recheck: u32,
    position: Option<u32>,
    wait_cause: Option<&str>,
    load: &Load,
) -> Value {
    let mut output = json!({
        "decision": decision,
        "reason": reason,
        "priority": place.priority,
        "enqueued_at": timestamp(place.enqueued_at),
        "recheck_after_seconds": recheck,
        "load": load,
    });
    if let Some(position) = position {
        output["position"] = json!(position);
    }
    if let Some(cause) = wait_cause {
        output["waiting_for"] = json!(cause);
    }
    output
}

/// Whether the pool, organisation and repository counts leave room for one more job.
fn has_room(pool: &PoolConfig, load: &Load) -> bool {
    let ceilings = pool.ceilings();
    load.pool_running < ceilings.max_running
        && ceilings
            .max_per_org
            .is_none_or(|max| load.org_running < max)
        && ceilings
            .max_per_repo
            .is_none_or(|max| load.repo_running < max)
}

pub(crate) async fn wait_for_slot(flow: &JobFlow, input: Value) -> Result<Value, StepError> {
    let input: WaitInput = decode(Step::WaitForSlot, input)?;
    let routed = input.route.routed(Step::WaitForSlot)?;
    let pool = flow.pool(routed.pool.as_str())?;
    let deps = flow.deps();
    let store: &dyn Store = deps.store.as_ref();
    let execution = &input.common.execution;
    let now = deps.clock.now();
    let recheck = input
        .admission
        .recheck_after_seconds
        .unwrap_or_else(|| pool.recheck_after())
        .clamp(RECHECK_BOUNDS.0, RECHECK_BOUNDS.1);
    let waiter = Waiter {
        pool: routed.pool.clone(),
        execution: execution.clone(),
        priority: input.admission.priority,
        enqueued_at: input.admission.enqueued_at.unwrap_or(now),
        task_token: input.task_token.clone(),
        expires_at: now + chrono::Duration::seconds(i64::from(recheck)) + WAITER_MARGIN,
    };
    store
        .enqueue_waiter(&waiter)
        .await
        .map_err(|e| StepError::store("join the pool's queue", e))?;
    let position = store
        .position(&routed.pool, execution)
        .await
        .map_err(|e| StepError::store("read the place in the queue", e))?;

    // Lost wake-up guard: a slot freed between admit and now woke nobody (this job was not
    // queued yet). Only for jobs waiting on room, not on the policy's word.
    let waits_for_room = input.admission.decision == "wait" && !is_policy_wait(&input.admission);
    if position == Some(0) && waits_for_room {
        let load = store
            .load(&routed.pool, &routed.org, &routed.repo)
            .await
            .map_err(|e| StepError::store("read the pool's load", e))?;
        if has_room(pool, &load)
            && store
                .remove_waiter(&routed.pool, execution)
                .await
                .map_err(|e| StepError::store("leave the pool's queue", e))?
        {
            let reason = format!(
                "a slot in pool {} was free when the job joined the queue",
                routed.pool
            );
            let woke = wake(
                flow,
                input.task_token.as_str(),
                json!({"woken_by": execution.as_str(), "reason": reason}),
            )
            .await;
            if let Err(error) = woke {
                // The re-check timer admits the job again.
                warn!(%error, "could not wake the job's own wait; it is re-checked later");
            }
            return Ok(json!({"parked": true, "position": 0, "reason": reason}));
        }
    }
    Ok(json!({
        "parked": true,
        "position": position,
        "reason": format!(
            "queued for pool {} at position {}; re-checked after {recheck} s",
            routed.pool,
            position.map(|p| p.to_string()).unwrap_or_else(|| "?".into())
        ),
    }))
}

fn is_policy_wait(admission: &Admission) -> bool {
    admission.waiting_for.as_deref() == Some(WAIT_POLICY)
}

/// What an admission decided, as metrics: an admitted job's wait since GitHub queued it, a trip
/// through the queue, a refusal. Split by pool and organisation.
fn record_admission(
    flow: &JobFlow,
    input: &AdmitInput,
    previous: Option<&Admission>,
    routed: &Routed,
    output: &Value,
    now: DateTime<Utc>,
) {
    use runway_metrics::{Dimension, Metric, Sample};
    let sample = match output["decision"].as_str() {
        Some("admit") => {
            let Some(queued) = crate::steps::queued_at(&input.common) else {
                return;
            };
            let waited = (now - queued).num_milliseconds().max(0);
            Sample::new(Metric::JobWaitSeconds, waited as f64 / 1000.0, now)
        }
        Some("wait") => Sample::count(Metric::SlotWaits, now),
        Some("reject") => Sample::count(Metric::JobsRejected, now),
        _ => return,
    };
    let by_pool_and_org = |sample: Sample| {
        sample
            .by(Dimension::Pool, routed.pool.as_str())
            .by(Dimension::Organization, routed.org.as_str())
    };
    crate::steps::measure(flow, by_pool_and_org(sample));
    // A re-check that finds the same cause is the same wait: counting it again would make a
    // long wait look like many full ceilings.
    let cause = output["waiting_for"].as_str();
    if cause != previous.and_then(|admission| admission.waiting_for.as_deref()) {
        let started = match cause {
            Some(WAIT_CEILING) => Some(Metric::CeilingHits),
            Some(WAIT_POLICY) => Some(Metric::PolicyWaits),
            _ => None,
        };
        if let Some(metric) = started {
            crate::steps::measure(flow, by_pool_and_org(Sample::count(metric, now)));
        }
    }
}
