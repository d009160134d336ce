//! The in-memory store, for `runway local` and tests. One lock around all state makes every
//! call atomic; nothing is awaited while it is held.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use runway_clock::SharedClock;

use crate::types::{is_live, whole_seconds};
use crate::{
    CeilingKind, ExecutionKey, JobId, JobWatch, Load, OrgName, PoolName, PutRunner, Release,
    RepoName, RunnerEvent, RunnerName, RunnerRecord, RunnerState, RunnerWait, RunnerWatch,
    SlotClaim, SlotHolder, SlotOutcome, StateChange, Store, StoreError, TaskToken, Waiter,
};

#[derive(Debug)]
pub struct MemoryStore {
    clock: SharedClock,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    pool_counts: HashMap<PoolName, u32>,
    org_counts: HashMap<OrgName, u32>,
    repo_counts: HashMap<RepoName, u32>,
    holders: HashMap<ExecutionKey, SlotHolder>,
    queues: HashMap<PoolName, HashMap<ExecutionKey, Waiter>>,
    runners: HashMap<RunnerName, RunnerRecord>,
    watches: HashMap<JobId, JobWatch>,
}

impl MemoryStore {
    pub fn new(clock: SharedClock) -> Self {
        MemoryStore {
            clock,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied change: every method
        // checks first and mutates last.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Runs `change` on the live runner record called `name`, under the lock; false when
    /// there is no such record or `change` declined.
    fn change_live_runner(
        &self,
        name: &RunnerName,
        change: impl FnOnce(&mut RunnerRecord) -> bool,
    ) -> bool {
        let now = self.now();
        self.lock().live_runner(name, now).is_some_and(change)
    }
}

impl State {
    fn live_queue(&mut self, pool: &PoolName, now: DateTime<Utc>) -> Vec<Waiter> {
        let Some(queue) = self.queues.get_mut(pool) else {
            return Vec::new();
        };
        queue.retain(|_, waiter| is_live(waiter.expires_at, now));
        let mut waiters: Vec<Waiter> = queue.values().cloned().collect();
        waiters.sort_by(|a, b| a.queue_order(b));
        waiters
    }

    fn live_runner(&mut self, name: &RunnerName, now: DateTime<Utc>) -> Option<&mut RunnerRecord> {
        if self
            .runners
            .get(name)
            .is_some_and(|record| !is_live(record.expires_at, now))
        {
            self.runners.remove(name);
        }
        self.runners.get_mut(name)
    }

    fn live_watch(&mut self, job_id: JobId, now: DateTime<Utc>) -> Option<&JobWatch> {
        if self
            .watches
            .get(&job_id)
            .is_some_and(|watch| !is_live(watch.expires_at, now))
        {
            self.watches.remove(&job_id);
        }
        self.watches.get(&job_id)
    }
}

fn count<K: std::hash::Hash + Eq>(counts: &HashMap<K, u32>, key: &K) -> u32 {
    counts.get(key).copied().unwrap_or(0)
}

fn decrement<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, u32>, key: &K) {
    if let Some(count) = counts.get_mut(key) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            counts.remove(key);
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn acquire_slot(&self, claim: &SlotClaim) -> Result<SlotOutcome, StoreError> {
        let now = self.now();
        let mut state = self.lock();
        if state.holders.contains_key(&claim.execution) {
            return Ok(SlotOutcome::AlreadyHeld);
        }
        let checks = [
            (
                CeilingKind::Pool,
                Some(claim.ceilings.pool),
                count(&state.pool_counts, &claim.pool),
            ),
            (
                CeilingKind::Org,
                claim.ceilings.org,
                count(&state.org_counts, &claim.org),
            ),
            (
                CeilingKind::Repo,
                claim.ceilings.repo,
                count(&state.repo_counts, &claim.repo),
            ),
        ];
        for (ceiling, limit, current) in checks {
            if let Some(limit) = limit
                && current >= limit
            {
                return Ok(SlotOutcome::Full {
                    ceiling,
                    limit,
                    current,
                });
            }
        }
        *state.pool_counts.entry(claim.pool.clone()).or_default() += 1;
        *state.org_counts.entry(claim.org.clone()).or_default() += 1;
        *state.repo_counts.entry(claim.repo.clone()).or_default() += 1;
        state.holders.insert(
            claim.execution.clone(),
            SlotHolder {
                execution: claim.execution.clone(),
                pool: claim.pool.clone(),
                org: claim.org.clone(),
                repo: claim.repo.clone(),
                acquired_at: now,
            },
        );
        Ok(SlotOutcome::Acquired)
    }

    async fn release_slot(&self, execution: &ExecutionKey) -> Result<Release, StoreError> {
        let mut state = self.lock();
        let Some(holder) = state.holders.remove(execution) else {
            return Ok(Release::NotHeld);
        };
        decrement(&mut state.pool_counts, &holder.pool);
        decrement(&mut state.org_counts, &holder.org);
        decrement(&mut state.repo_counts, &holder.repo);
        Ok(Release::Released)
    }

    async fn slot_holder(
        &self,
        execution: &ExecutionKey,
    ) -> Result<Option<SlotHolder>, StoreError> {
        Ok(self.lock().holders.get(execution).cloned())
    }

    async fn slot_holders(&self, pool: &PoolName) -> Result<Vec<SlotHolder>, StoreError> {
        let state = self.lock();
        let mut holders: Vec<SlotHolder> = state
            .holders
            .values()
            .filter(|holder| &holder.pool == pool)
            .cloned()
            .collect();
        holders.sort_by(|a, b| (a.acquired_at, &a.execution).cmp(&(b.acquired_at, &b.execution)));
        Ok(holders)
    }

    async fn load(
        &self,
        pool: &PoolName,
        org: &OrgName,
        repo: &RepoName,
    ) -> Result<Load, StoreError> {
        let now = self.now();
        let mut state = self.lock();
        let waiting = state.live_queue(pool, now).len();
        Ok(Load {
            pool_running: count(&state.pool_counts, pool),
            org_running: count(&state.org_counts, org),
            repo_running: count(&state.repo_counts, repo),
            pool_waiting: u32::try_from(waiting).unwrap_or(u32::MAX),
        })
    }

    async fn enqueue_waiter(&self, waiter: &Waiter) -> Result<(), StoreError> {
        let mut waiter = waiter.clone();
        waiter.expires_at = whole_seconds(waiter.expires_at);
        self.lock()
            .queues
            .entry(waiter.pool.clone())
            .or_default()
            .insert(waiter.execution.clone(), waiter);
        Ok(())
    }

    async fn pop_next_waiter(&self, pool: &PoolName) -> Result<Option<Waiter>, StoreError> {
        let now = self.now();
        let mut state = self.lock();
        let Some(first) = state.live_queue(pool, now).into_iter().next() else {
            return Ok(None);
        };
        if let Some(queue) = state.queues.get_mut(pool) {
            queue.remove(&first.execution);
        }
        Ok(Some(first))
    }

    async fn remove_waiter(
        &self,
        pool: &PoolName,
        execution: &ExecutionKey,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let mut state = self.lock();
        let removed = state
            .queues
            .get_mut(pool)
            .and_then(|queue| queue.remove(execution));
        Ok(removed.is_some_and(|waiter| is_live(waiter.expires_at, now)))
    }

    async fn waiters(&self, pool: &PoolName) -> Result<Vec<Waiter>, StoreError> {
        let now = self.now();
        Ok(self.lock().live_queue(pool, now))
    }

    async fn position(
        &self,
        pool: &PoolName,
        execution: &ExecutionKey,
    ) -> Result<Option<u32>, StoreError> {
        let now = self.now();
        let queue = self.lock().live_queue(pool, now);
        Ok(queue
            .iter()
            .position(|waiter| &waiter.execution == execution)
            .map(|index| u32::try_from(index).unwrap_or(u32::MAX)))
    }

    async fn put_runner(&self, record: &RunnerRecord) -> Result<PutRunner, StoreError> {
        let now = self.now();
        let mut state = self.lock();
        if let Some(existing) = state.live_runner(&record.runner_name, now) {
            return Ok(PutRunner::Exists {
                existing: Box::new(existing.clone()),
            });
        }
        let mut record = record.clone();
        record.expires_at = whole_seconds(record.expires_at);
        state.runners.insert(record.runner_name.clone(), record);
        Ok(PutRunner::Created)
    }

    async fn get_runner(&self, name: &RunnerName) -> Result<Option<RunnerRecord>, StoreError> {
        let now = self.now();
        Ok(self
            .lock()
            .live_runner(name, now)
            .map(|record| record.clone()))
    }

    async fn set_runner_state(
        &self,
        name: &RunnerName,
        new_state: RunnerState,
        expected: Option<RunnerState>,
    ) -> Result<StateChange, StoreError> {
        let now = self.now();
        let mut state = self.lock();
        let Some(record) = state.live_runner(name, now) else {
            return Ok(StateChange::NotFound);
        };
        let current = record.state;
        let unexpected = expected.is_some_and(|expected| expected != current);
        let leaves_gone = current == RunnerState::Gone && new_state != RunnerState::Gone;
        if unexpected || leaves_gone {
            return Ok(StateChange::Stale { current });
        }
        record.state = new_state;
        match new_state {
            RunnerState::Busy { .. } => {
                record.job_started_at.get_or_insert(now);
            }
            RunnerState::Gone => {
                record.left_at.get_or_insert(now);
            }
            RunnerState::Booting | RunnerState::Idle => {}
        }
        Ok(StateChange::Applied)
    }

    async fn set_runner_torn_down(&self, name: &RunnerName) -> Result<bool, StoreError> {
        let now = self.now();
        Ok(self.change_live_runner(name, |record| {
            record.state = RunnerState::Gone;
            record.left_at.get_or_insert(now);
            let first = record.torn_down_at.is_none();
            record.torn_down_at.get_or_insert(now);
            first
        }))
    }

    async fn set_runner_reclaimed(&self, name: &RunnerName) -> Result<bool, StoreError> {
        let now = self.now();
        Ok(self.change_live_runner(name, |record| {
            let first = record.reclaimed_at.is_none();
            record.reclaimed_at.get_or_insert(now);
            first
        }))
    }

    async fn set_runner_token(
        &self,
        name: &RunnerName,
        token: &TaskToken,
        wait: RunnerWait,
    ) -> Result<bool, StoreError> {
        Ok(self.change_live_runner(name, |record| {
            record.runner_watch = Some(RunnerWatch::new(token.clone(), wait));
            true
        }))
    }

    async fn set_runner_instance(
        &self,
        name: &RunnerName,
        instance_id: &str,
    ) -> Result<bool, StoreError> {
        Ok(self.change_live_runner(name, |record| {
            record.instance_id = Some(instance_id.to_owned());
            true
        }))
    }

    async fn take_runner_token_for(
        &self,
        name: &RunnerName,
        event: RunnerEvent,
    ) -> Result<Option<RunnerWatch>, StoreError> {
        let now = self.now();
        let mut state = self.lock();
        Ok(state.live_runner(name, now).and_then(|record| {
            let answered = record
                .runner_watch
                .as_ref()
                .is_some_and(|watch| event.answers(watch.wait));
            if answered {
                record.runner_watch.take()
            } else {
                None
            }
        }))
    }

    async fn take_runner_token_of(
        &self,
        name: &RunnerName,
        token: &TaskToken,
    ) -> Result<bool, StoreError> {
        Ok(self.change_live_runner(name, |record| {
            let ours = record
                .runner_watch
                .as_ref()
                .is_some_and(|watch| &watch.task_token == token);
            if ours {
                record.runner_watch = None;
            }
            ours
        }))
    }

    async fn restore_runner_token(
        &self,
        name: &RunnerName,
        watch: &RunnerWatch,
    ) -> Result<bool, StoreError> {
        Ok(self.change_live_runner(name, |record| {
            let unset = record.runner_watch.is_none();
            if unset {
                record.runner_watch = Some(watch.clone());
            }
            unset
        }))
    }

    async fn adopt_warm_runner(
        &self,
        pool: &PoolName,
        execution: &ExecutionKey,
    ) -> Result<Option<RunnerRecord>, StoreError> {
        let now = self.now();
        let mut state = self.lock();
        let live = |record: &RunnerRecord| &record.pool == pool && is_live(record.expires_at, now);
        if let Some(adopted) = state.runners.values().find(|record| {
            live(record) && &record.execution == execution && record.launched_by.is_some()
        }) {
            return Ok(Some(adopted.clone()));
        }
        let chosen = state
            .runners
            .values()
            .filter(|record| live(record) && record.is_unadopted_warm())
            .filter(|record| matches!(record.state, RunnerState::Idle | RunnerState::Booting))
            // The name breaks ties between runners launched in one pass: the same state gives
            // the same choice (replays are deterministic).
            .min_by_key(|record| {
                (
                    record.state != RunnerState::Idle,
                    record.launched_at,
                    record.runner_name.clone(),
                )
            })
            .map(|record| record.runner_name.clone());
        let Some(record) = chosen.and_then(|name| state.runners.get_mut(&name)) else {
            return Ok(None);
        };
        record.launched_by = Some(record.execution.clone());
        record.execution = execution.clone();
        Ok(Some(record.clone()))
    }

    async fn delete_runner(&self, name: &RunnerName) -> Result<bool, StoreError> {
        let now = self.now();
        let mut state = self.lock();
        let live = state.live_runner(name, now).is_some();
        state.runners.remove(name);
        Ok(live)
    }

    async fn runners_of_pool(&self, pool: &PoolName) -> Result<Vec<RunnerRecord>, StoreError> {
        let now = self.now();
        let state = self.lock();
        Ok(sorted_runners(state.runners.values().filter(|record| {
            &record.pool == pool && is_live(record.expires_at, now)
        })))
    }

    async fn count_runners(&self, pool: &PoolName, state: RunnerState) -> Result<u32, StoreError> {
        let now = self.now();
        let runners = self.lock();
        let count = runners
            .runners
            .values()
            .filter(|r| &r.pool == pool && r.state == state && is_live(r.expires_at, now))
            .count();
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    async fn runners_older_than(
        &self,
        time: DateTime<Utc>,
    ) -> Result<Vec<RunnerRecord>, StoreError> {
        let now = self.now();
        let state = self.lock();
        Ok(sorted_runners(state.runners.values().filter(|record| {
            record.launched_at < time && is_live(record.expires_at, now)
        })))
    }

    async fn watch_job(&self, watch: &JobWatch) -> Result<(), StoreError> {
        let mut watch = watch.clone();
        watch.expires_at = whole_seconds(watch.expires_at);
        self.lock().watches.insert(watch.job_id, watch);
        Ok(())
    }

    async fn take_job_watch(&self, job_id: JobId) -> Result<Option<JobWatch>, StoreError> {
        let now = self.now();
        let mut state = self.lock();
        let live = state.live_watch(job_id, now).is_some();
        let watch = state.watches.remove(&job_id);
        Ok(watch.filter(|_| live))
    }

    async fn get_job_watch(&self, job_id: JobId) -> Result<Option<JobWatch>, StoreError> {
        let now = self.now();
        Ok(self.lock().live_watch(job_id, now).cloned())
    }

    async fn take_job_watch_of(
        &self,
        job_id: JobId,
        token: &TaskToken,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let mut state = self.lock();
        let ours = state
            .live_watch(job_id, now)
            .is_some_and(|watch| &watch.task_token == token);
        if ours {
            state.watches.remove(&job_id);
        }
        Ok(ours)
    }

    async fn restore_job_watch(&self, watch: &JobWatch) -> Result<bool, StoreError> {
        let now = self.now();
        let mut state = self.lock();
        if state.live_watch(watch.job_id, now).is_some() {
            return Ok(false);
        }
        let mut watch = watch.clone();
        watch.expires_at = whole_seconds(watch.expires_at);
        state.watches.insert(watch.job_id, watch);
        Ok(true)
    }
}

fn sorted_runners<'a>(records: impl Iterator<Item = &'a RunnerRecord>) -> Vec<RunnerRecord> {
    let mut records: Vec<RunnerRecord> = records.cloned().collect();
    records.sort_by(|a, b| (a.launched_at, &a.runner_name).cmp(&(b.launched_at, &b.runner_name)));
    records
}
