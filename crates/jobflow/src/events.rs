//! Webhook events to the waiting executions: by job id and, independently, by runner name.

use async_trait::async_trait;
use runway_store::{JobId, RunnerName, RunnerState, TaskToken};
use runway_webhook::{ForwardError, JobEventKind, JobEventUpdate, JobEvents};
use serde_json::{Value, json};
use tracing::{Instrument, info, info_span};

use crate::callbacks::CallbackError;
use crate::flow::JobFlow;
use crate::steps::wake;

fn store_error(doing: &str, error: runway_store::StoreError) -> ForwardError {
    ForwardError(format!("could not {doing}: {error}"))
}

#[async_trait]
impl JobEvents for JobFlow {
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

impl JobFlow {
    async fn runner_event(&self, update: &JobEventUpdate, name: &str) -> Result<(), ForwardError> {
        let Ok(name) = RunnerName::new(name) else {
            return Ok(());
        };
        let store = &self.deps().store;
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
        let store = &self.deps().store;
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
        match wake(self, token.as_str(), output).await {
            Ok(_) => Ok(()),
            Err(CallbackError::Unavailable(reason) | CallbackError::TokenGone(reason)) => Err(
                ForwardError(format!("could not complete the waiting task: {reason}")),
            ),
        }
    }
}
