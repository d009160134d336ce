//! Webhook events to the waiting executions: by job id and, independently, by runner name.

use std::sync::Arc;

use async_trait::async_trait;
use runway_store::{JobId, RunnerName, RunnerState, Store, TaskToken};
use runway_webhook::{ForwardError, JobEventKind, JobEventUpdate, JobEvents};
use serde_json::{Value, json};
use tracing::{Instrument, info, info_span};

use crate::callbacks::{CallbackError, TaskCallbacks};
use crate::flow::JobFlow;

fn store_error(doing: &str, error: runway_store::StoreError) -> ForwardError {
    ForwardError(format!("could not {doing}: {error}"))
}

/// Hands job events to the executions waiting for them, with nothing but the store (the
/// watch and runner records) and the task callbacks. The webhook forwards events through it
/// without the rest of the job flow: no GitHub credential, no policies, no providers.
#[derive(Debug, Clone)]
pub struct JobEventRelay {
    store: Arc<dyn Store>,
    callbacks: Arc<dyn TaskCallbacks>,
}

impl JobEventRelay {
    pub fn new(store: Arc<dyn Store>, callbacks: Arc<dyn TaskCallbacks>) -> JobEventRelay {
        JobEventRelay { store, callbacks }
    }
}

#[async_trait]
impl JobEvents for JobFlow {
    async fn job_event(&self, update: JobEventUpdate) -> Result<(), ForwardError> {
        let deps = self.deps();
        JobEventRelay::new(deps.store.clone(), deps.callbacks.clone())
            .job_event(update)
            .await
    }
}

#[async_trait]
impl JobEvents for JobEventRelay {
    async fn job_event(&self, update: JobEventUpdate) -> Result<(), ForwardError> {
        let span = info_span!(
            "job_event",
            job = update.job_id,
            kind = ?update.kind,
            runner = update.runner_name.as_deref().unwrap_or("-"),
        );
        async move {
            // The job and the runner are followed independently: a failure to wake the
            // runner's watcher must not keep the job's event from its own watcher.
            let runner = match update.runner_name.as_deref() {
                Some(name) => self.runner_event(&update, name).await,
                None => Ok(()),
            };
            let job = self.job_watch_event(&update).await;
            runner.and(job)
        }
        .instrument(span)
        .await
    }
}

impl JobEventRelay {
    async fn runner_event(&self, update: &JobEventUpdate, name: &str) -> Result<(), ForwardError> {
        let Ok(name) = RunnerName::new(name) else {
            return Ok(());
        };
        let store = &self.store;
        let job_id = JobId(update.job_id);
        let (state, output) = match update.kind {
            JobEventKind::Started => (
                RunnerState::Busy { job_id },
                json!({
                    "status": "busy",
                    "job_id": update.job_id,
                    "reason": format!("runner {name} started job {}", update.job_id),
                }),
            ),
            JobEventKind::Completed => (
                RunnerState::Gone,
                json!({
                    "status": "gone",
                    "job_id": update.job_id,
                    "reason": format!(
                        "runner {name} finished job {} ({})",
                        update.job_id,
                        update.conclusion.as_deref().unwrap_or("no conclusion")
                    ),
                }),
            ),
        };
        let change = store
            .set_runner_state(&name, state, None)
            .await
            .map_err(|e| store_error("record the runner's state", e))?;
        if matches!(change, runway_store::StateChange::NotFound) {
            // Not a runner runway launched (or its record expired).
            return Ok(());
        }
        let token = store
            .take_runner_token(&name)
            .await
            .map_err(|e| store_error("take the runner's watch", e))?;
        if let Some(token) = token
            && let Err(error) = self.deliver(&token, output).await
        {
            // Put the token back so a redelivered webhook can complete it, unless the runner's
            // next step set its own meanwhile.
            let _ = store.restore_runner_token(&name, &token).await;
            return Err(error);
        }
        Ok(())
    }

    async fn job_watch_event(&self, update: &JobEventUpdate) -> Result<(), ForwardError> {
        let store = &self.store;
        let job_id = JobId(update.job_id);
        let output = match update.kind {
            JobEventKind::Started => json!({
                "status": "in_progress",
                "runner_name": update.runner_name,
                "reason": format!(
                    "job {} started on {}",
                    update.job_id,
                    update.runner_name.as_deref().unwrap_or("a runner")
                ),
            }),
            JobEventKind::Completed => json!({
                "status": "completed",
                "conclusion": update.conclusion,
                "runner_name": update.runner_name,
                "reason": format!(
                    "job {} completed ({})",
                    update.job_id,
                    update.conclusion.as_deref().unwrap_or("no conclusion")
                ),
            }),
        };
        let Some(watch) = store
            .take_job_watch(job_id)
            .await
            .map_err(|e| store_error("take the job's watch", e))?
        else {
            return Ok(());
        };
        if let Err(error) = self.deliver(&watch.task_token, output).await {
            // Put the watch back for a redelivered webhook, unless the job's next step
            // registered its own meanwhile: overwriting it would leave that step waiting.
            let _ = store.restore_job_watch(&watch).await;
            return Err(error);
        }
        info!(execution = %watch.execution, "job watch completed");
        Ok(())
    }

    async fn deliver(&self, token: &TaskToken, output: Value) -> Result<(), ForwardError> {
        match self
            .callbacks
            .send_task_success(token.as_str(), output)
            .await
        {
            Ok(()) => Ok(()),
            Err(CallbackError::TokenGone(reason)) => {
                info!(%reason, "a waiting task was already gone; skipped");
                Ok(())
            }
            Err(CallbackError::Unavailable(reason)) => Err(ForwardError(format!(
                "could not complete the waiting task: {reason}"
            ))),
        }
    }
}
