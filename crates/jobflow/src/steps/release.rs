//! Release: frees the execution's slot and wakes the oldest job waiting for one.

use runway_store::{PoolName, Release};
use serde_json::{Value, json};
use tracing::info;

use crate::callbacks::CallbackError;
use crate::error::StepError;
use crate::flow::JobFlow;
use crate::input::{Outcome, ReleaseInput, decode};
use crate::step::Step;
use crate::steps::wake;

pub(crate) async fn run(flow: &JobFlow, input: Value) -> Result<Value, StepError> {
    let input: ReleaseInput = decode(Step::Release, input)?;
    let deps = flow.deps();
    let store = deps.store.as_ref();
    let execution = &input.common.execution;

    let holder = store
        .slot_holder(execution)
        .await
        .map_err(|e| StepError::store("read the slot holder", e))?;
    let released = store
        .release_slot(execution)
        .await
        .map_err(|e| StepError::store("release the slot", e))?;
    // The failure path does not pass the route: the slot holder names the pool.
    let pool = match input.route.as_ref().and_then(|route| route.pool.as_deref()) {
        Some(pool) => Some(pool.to_owned()),
        None => holder.as_ref().map(|h| h.pool.to_string()),
    };
    let pools: Vec<String> = match &pool {
        Some(pool) => vec![pool.clone()],
        None => flow.config().pools.iter().map(|p| p.name.clone()).collect(),
    };
    for name in &pools {
        if let Ok(name) = PoolName::new(name.as_str()) {
            store
                .remove_waiter(&name, execution)
                .await
                .map_err(|e| StepError::store("leave the pool's queue", e))?;
        }
    }

    let mut woke: Option<String> = None;
    if let Some(pool) = pool.as_deref().and_then(|p| PoolName::new(p).ok()) {
        let reason = format!("{execution} freed a slot in pool {pool}");
        loop {
            let Some(waiter) = store
                .pop_next_waiter(&pool)
                .await
                .map_err(|e| StepError::store("take the next waiter", e))?
            else {
                break;
            };
            if &waiter.execution == execution {
                continue;
            }
            let output = json!({"woken_by": execution.as_str(), "reason": reason});
            match wake(flow, waiter.task_token.as_str(), output).await {
                Ok(true) => {
                    info!(woke = %waiter.execution, "woke the next waiter");
                    woke = Some(waiter.execution.to_string());
                    break;
                }
                Ok(false) => continue,
                Err(CallbackError::Unavailable(cause) | CallbackError::TokenGone(cause)) => {
                    // Back in line, in its place; the retry wakes it.
                    store
                        .enqueue_waiter(&waiter)
                        .await
                        .map_err(|e| StepError::store("put the waiter back", e))?;
                    return Err(StepError::transient(format!(
                        "could not wake {}: {cause}",
                        waiter.execution
                    )));
                }
            }
        }
    }

    let slot = match released {
        Release::Released => "released",
        Release::NotHeld => "not-held",
    };
    let pool_text = pool.as_deref().unwrap_or("its pool");
    let freed = match released {
        Release::Released => format!("the slot in {pool_text} is free"),
        Release::NotHeld => "no slot was held".to_owned(),
    };
    let woke_text = match &woke {
        Some(next) => format!("; woke {next}"),
        None => String::new(),
    };
    let summary = match input.outcome {
        Outcome::Done => format!("job done: {freed}{woke_text}"),
        Outcome::RunnerGone => format!(
            "the runner is gone and the job did not run on it: {freed}{woke_text}; the job is \
             followed until it ends"
        ),
        Outcome::Cancelled => {
            format!("the job ended before it needed a runner: {freed}{woke_text}")
        }
        Outcome::Failed => {
            let freed = match released {
                Release::Released => "its slot is free",
                Release::NotHeld => "it held no slot",
            };
            format!(
                "{}. Nothing it started is left running and {freed}.",
                failure_sentence(input.error.as_ref())
            )
        }
    };
    Ok(json!({"slot": slot, "woke": woke, "summary": summary}))
}

/// "The job could not be served: <what failed>", from a caught error (`Error`, `Cause`).
fn failure_sentence(error: Option<&Value>) -> String {
    let name = error
        .and_then(|e| e.get("Error"))
        .and_then(Value::as_str)
        .unwrap_or("an unknown error");
    let cause = error
        .and_then(|e| e.get("Cause"))
        .and_then(Value::as_str)
        .map(readable_cause)
        .unwrap_or_default();
    let cause = cause.trim().trim_end_matches('.');
    if cause.is_empty() {
        format!("The job could not be served ({name})")
    } else {
        format!("The job could not be served ({name}): {cause}")
    }
}

/// A Lambda failure's cause is a JSON document; its `errorMessage` is the sentence.
fn readable_cause(cause: &str) -> String {
    serde_json::from_str::<Value>(cause)
        .ok()
        .and_then(|doc| {
            doc.get("errorMessage")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| cause.to_owned())
}
