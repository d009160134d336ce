//! Webhook events to the waiting executions: by job id and, independently, by runner name.

use std::sync::Arc;

use async_trait::async_trait;
use runway_store::{
    JobId, JobWatch, RunnerEvent, RunnerName, RunnerState, RunnerWatch, Store, TaskToken,
};
use runway_webhook::{ForwardError, JobEventKind, JobEventUpdate, JobEvents};
use serde_json::{Value, json};
use tracing::{Instrument, info, info_span, warn};

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
        let (state, event, output) = match update.kind {
            JobEventKind::Started => (
                RunnerState::Busy { job_id },
                RunnerEvent::Started,
                json!({
                    "status": "busy",
                    "job_id": update.job_id,
                    "reason": format!("runner {name} started job {}", update.job_id),
                }),
            ),
            JobEventKind::Completed => (
                RunnerState::Gone,
                RunnerEvent::Completed,
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
        // Only a wait this event answers: a runner that starts a job must not end a wait for
        // it to leave (registered when GitHub showed it busy before this webhook came), which
        // would then miss the event that does answer it.
        let watch = store
            .take_runner_token_for(&name, event)
            .await
            .map_err(|e| store_error("take the runner's watch", e))?;
        if let Some(watch) = watch
            && let Err(error) = self.deliver(&watch.task_token, output).await
        {
            // Put the watch back so a redelivered webhook can complete it, unless the runner's
            // next step set its own meanwhile.
            self.put_back_runner_token(&name, &watch, &error).await;
            return Err(error);
        }
        Ok(())
    }

    async fn job_watch_event(&self, update: &JobEventUpdate) -> Result<(), ForwardError> {
        let store = &self.store;
        let job_id = JobId(update.job_id);
        // A job watch waits for the job's end only.
        if update.kind != JobEventKind::Completed {
            return Ok(());
        }
        let output = json!({
            "status": "completed",
            "conclusion": update.conclusion,
            "runner_name": update.runner_name,
            "reason": format!(
                "job {} completed ({})",
                update.job_id,
                update.conclusion.as_deref().unwrap_or("no conclusion")
            ),
        });
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
            self.put_back_job_watch(&watch, &error).await;
            return Err(error);
        }
        info!(execution = %watch.execution, "job watch completed");
        Ok(())
    }

    /// A token that is neither delivered nor put back leaves its execution waiting until its
    /// heartbeat or deadline: say so, with the execution, so the wait can be explained.
    async fn put_back_runner_token(
        &self,
        name: &RunnerName,
        watch: &RunnerWatch,
        undelivered: &ForwardError,
    ) {
        match self.store.restore_runner_token(name, watch).await {
            Ok(true) => info!(runner = %name, "runner watch put back for a redelivered event"),
            Ok(false) => info!(
                runner = %name,
                "runner watch not put back: a later step of its execution waits now"
            ),
            Err(error) => {
                // Only for the log: the record names the execution that waits.
                let execution = match self.store.get_runner(name).await {
                    Ok(Some(record)) => record.execution.to_string(),
                    Ok(None) => "unknown (no runner record)".to_owned(),
                    Err(lookup) => format!("unknown ({lookup})"),
                };
                warn!(
                    runner = %name,
                    %execution,
                    reason = %error,
                    undelivered = %undelivered.0,
                    "could not put back a runner's task token: its execution waits for its \
                     heartbeat or deadline unless the event is delivered again"
                );
            }
        }
    }

    /// See [`JobEventRelay::put_back_runner_token`].
    async fn put_back_job_watch(&self, watch: &JobWatch, undelivered: &ForwardError) {
        match self.store.restore_job_watch(watch).await {
            Ok(true) => info!(
                execution = %watch.execution,
                job = watch.job_id.0,
                "job watch put back for a redelivered event"
            ),
            Ok(false) => info!(
                execution = %watch.execution,
                job = watch.job_id.0,
                "job watch not put back: a later step of its execution waits now"
            ),
            Err(error) => warn!(
                execution = %watch.execution,
                job = watch.job_id.0,
                reason = %error,
                undelivered = %undelivered.0,
                "could not put back a job's task token: its execution waits for its heartbeat \
                 or deadline unless the event is delivered again"
            ),
        }
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

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Mutex;

    use chrono::{DateTime, Duration, Utc};
    use runway_clock::VirtualClock;
    use runway_store::{
        ExecutionKey, Load, MemoryStore, OrgName, PoolName, PutRunner, Release, RepoName,
        RunnerRecord, RunnerWait, SlotClaim, SlotHolder, SlotOutcome, StateChange, StoreError,
        Waiter,
    };

    use super::*;

    /// The memory store, except that putting a token back fails as an unreachable table would.
    #[derive(Debug)]
    struct RestoreFails(MemoryStore);

    fn unreachable(operation: &'static str) -> StoreError {
        StoreError::Unavailable {
            operation,
            reason: "connection reset".into(),
        }
    }

    #[async_trait]
    impl Store for RestoreFails {
        async fn acquire_slot(&self, claim: &SlotClaim) -> Result<SlotOutcome, StoreError> {
            self.0.acquire_slot(claim).await
        }
        async fn release_slot(&self, execution: &ExecutionKey) -> Result<Release, StoreError> {
            self.0.release_slot(execution).await
        }
        async fn slot_holder(
            &self,
            execution: &ExecutionKey,
        ) -> Result<Option<SlotHolder>, StoreError> {
            self.0.slot_holder(execution).await
        }
        async fn slot_holders(&self, pool: &PoolName) -> Result<Vec<SlotHolder>, StoreError> {
            self.0.slot_holders(pool).await
        }
        async fn load(
            &self,
            pool: &PoolName,
            org: &OrgName,
            repo: &RepoName,
        ) -> Result<Load, StoreError> {
            self.0.load(pool, org, repo).await
        }
        async fn enqueue_waiter(&self, waiter: &Waiter) -> Result<(), StoreError> {
            self.0.enqueue_waiter(waiter).await
        }
        async fn pop_next_waiter(&self, pool: &PoolName) -> Result<Option<Waiter>, StoreError> {
            self.0.pop_next_waiter(pool).await
        }
        async fn remove_waiter(
            &self,
            pool: &PoolName,
            execution: &ExecutionKey,
        ) -> Result<bool, StoreError> {
            self.0.remove_waiter(pool, execution).await
        }
        async fn waiters(&self, pool: &PoolName) -> Result<Vec<Waiter>, StoreError> {
            self.0.waiters(pool).await
        }
        async fn position(
            &self,
            pool: &PoolName,
            execution: &ExecutionKey,
        ) -> Result<Option<u32>, StoreError> {
            self.0.position(pool, execution).await
        }
        async fn put_runner(&self, record: &RunnerRecord) -> Result<PutRunner, StoreError> {
            self.0.put_runner(record).await
        }
        async fn get_runner(&self, name: &RunnerName) -> Result<Option<RunnerRecord>, StoreError> {
            self.0.get_runner(name).await
        }
        async fn set_runner_state(
            &self,
            name: &RunnerName,
            state: RunnerState,
            expected: Option<RunnerState>,
        ) -> Result<StateChange, StoreError> {
            self.0.set_runner_state(name, state, expected).await
        }
        async fn set_runner_torn_down(&self, name: &RunnerName) -> Result<bool, StoreError> {
            self.0.set_runner_torn_down(name).await
        }
        async fn set_runner_reclaimed(&self, name: &RunnerName) -> Result<bool, StoreError> {
            self.0.set_runner_reclaimed(name).await
        }
        async fn set_runner_token(
            &self,
            name: &RunnerName,
            token: &TaskToken,
            wait: RunnerWait,
        ) -> Result<bool, StoreError> {
            self.0.set_runner_token(name, token, wait).await
        }
        async fn set_runner_instance(
            &self,
            name: &RunnerName,
            instance_id: &str,
        ) -> Result<bool, StoreError> {
            self.0.set_runner_instance(name, instance_id).await
        }
        async fn take_runner_token_for(
            &self,
            name: &RunnerName,
            event: RunnerEvent,
        ) -> Result<Option<RunnerWatch>, StoreError> {
            self.0.take_runner_token_for(name, event).await
        }
        async fn take_runner_token_of(
            &self,
            name: &RunnerName,
            token: &TaskToken,
        ) -> Result<bool, StoreError> {
            self.0.take_runner_token_of(name, token).await
        }
        async fn restore_runner_token(
            &self,
            _: &RunnerName,
            _: &RunnerWatch,
        ) -> Result<bool, StoreError> {
            Err(unreachable("restore a runner's task token"))
        }
        async fn delete_runner(&self, name: &RunnerName) -> Result<bool, StoreError> {
            self.0.delete_runner(name).await
        }
        async fn adopt_warm_runner(
            &self,
            pool: &PoolName,
            execution: &ExecutionKey,
        ) -> Result<Option<RunnerRecord>, StoreError> {
            self.0.adopt_warm_runner(pool, execution).await
        }
        async fn runners_of_pool(&self, pool: &PoolName) -> Result<Vec<RunnerRecord>, StoreError> {
            self.0.runners_of_pool(pool).await
        }
        async fn runners_older_than(
            &self,
            time: DateTime<Utc>,
        ) -> Result<Vec<RunnerRecord>, StoreError> {
            self.0.runners_older_than(time).await
        }
        async fn watch_job(&self, watch: &JobWatch) -> Result<(), StoreError> {
            self.0.watch_job(watch).await
        }
        async fn take_job_watch(&self, job_id: JobId) -> Result<Option<JobWatch>, StoreError> {
            self.0.take_job_watch(job_id).await
        }
        async fn get_job_watch(&self, job_id: JobId) -> Result<Option<JobWatch>, StoreError> {
            self.0.get_job_watch(job_id).await
        }
        async fn take_job_watch_of(
            &self,
            job_id: JobId,
            token: &TaskToken,
        ) -> Result<bool, StoreError> {
            self.0.take_job_watch_of(job_id, token).await
        }
        async fn restore_job_watch(&self, _: &JobWatch) -> Result<bool, StoreError> {
            Err(unreachable("restore a job's watch"))
        }
    }

    /// Step Functions out of reach: no task can be completed.
    #[derive(Debug)]
    struct Unreachable;

    #[async_trait]
    impl TaskCallbacks for Unreachable {
        async fn send_task_success(&self, _: &str, _: Value) -> Result<(), CallbackError> {
            Err(CallbackError::Unavailable("throttled".into()))
        }
        async fn send_task_failure(&self, _: &str, _: &str, _: &str) -> Result<(), CallbackError> {
            Err(CallbackError::Unavailable("throttled".into()))
        }
    }

    /// What the test's subscriber wrote.
    #[derive(Debug, Clone, Default)]
    struct Logs(Arc<Mutex<Vec<u8>>>);

    impl Write for Logs {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut logs) = self.0.lock() {
                logs.extend_from_slice(bytes);
            }
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Logs {
        fn lines(&self) -> Vec<String> {
            let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
            String::from_utf8_lossy(&bytes)
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    #[tokio::test]
    async fn a_token_that_cannot_be_put_back_is_logged_with_its_execution_and_why() {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);

        let clock = VirtualClock::new().shared();
        let now = clock.now();
        let store = Arc::new(RestoreFails(MemoryStore::new(clock)));
        let runner = RunnerName::new("runway-7-a1-1").unwrap();
        store
            .put_runner(&RunnerRecord {
                runner_name: runner.clone(),
                execution: ExecutionKey::new("job-7-r3-a1").unwrap(),
                launched_by: None,
                pool: PoolName::new("linux").unwrap(),
                provider: "local".into(),
                instance_id: None,
                state: RunnerState::Busy { job_id: JobId(7) },
                runner_watch: None,
                launched_at: now,
                job_started_at: None,
                left_at: None,
                torn_down_at: None,
                reclaimed_at: None,
                expires_at: now + Duration::hours(1),
            })
            .await
            .unwrap();
        assert!(
            store
                .set_runner_token(
                    &runner,
                    &TaskToken::new("runner-token").unwrap(),
                    RunnerWait::Gone
                )
                .await
                .unwrap()
        );
        store
            .watch_job(&JobWatch {
                job_id: JobId(7),
                execution: ExecutionKey::new("job-7-r3-a1").unwrap(),
                task_token: TaskToken::new("job-token").unwrap(),
                expires_at: now + Duration::hours(1),
            })
            .await
            .unwrap();

        let relay = JobEventRelay::new(store.clone(), Arc::new(Unreachable));
        let delivered = relay
            .job_event(JobEventUpdate {
                kind: JobEventKind::Completed,
                job_id: 7,
                run_id: 1,
                run_attempt: 1,
                repository_id: 3,
                repository: "octo-org/app".into(),
                runner_name: Some(runner.to_string()),
                runner_id: Some(1),
                conclusion: Some("success".into()),
                delivery_id: None,
            })
            .await;
        assert!(delivered.is_err(), "the webhook is told to redeliver");

        let lines = logs.lines();
        for what in ["runner's task token", "job's task token"] {
            let line = lines
                .iter()
                .find(|line| line.contains(&format!("could not put back a {what}")))
                .unwrap_or_else(|| panic!("no warning for the {what}: {lines:#?}"));
            assert!(line.contains("WARN"), "{line}");
            assert!(line.contains("execution=job-7-r3-a1"), "{line}");
            assert!(
                line.contains("connection reset"),
                "the store's reason: {line}"
            );
            assert!(line.contains("throttled"), "why it was taken back: {line}");
        }
    }
}
