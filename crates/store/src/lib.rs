//! runway's state: pool slots, admission queues, runner records and job watches.
//!
//! One trait, [`Store`], with two implementations that pass the same contract suite
//! (`tests/contract/`): [`MemoryStore`] for `runway local` and tests, and [`DynamoStore`] for
//! AWS (one table; its item layout is documented in [`dynamo`]).
//!
//! What the store guarantees, whichever implementation:
//! - **Slots.** [`Store::acquire_slot`] counts one running job against its pool, organisation
//!   and repository counters in one atomic step, or not at all: concurrent admissions never
//!   exceed a ceiling, and a retried acquire by the same execution never counts twice.
//!   [`Store::release_slot`] is idempotent and takes back exactly what was counted.
//! - **Queues.** Waiters come out by priority (higher first), then arrival (older first), then
//!   execution key; [`Store::pop_next_waiter`] hands each waiter to exactly one caller.
//! - **Wake-ups happen once.** [`Store::take_job_watch`] and [`Store::take_runner_token_for`]
//!   return a token to exactly one caller.
//! - **A runner event wakes only a wait it answers.** A runner's watch records what its step
//!   waits for ([`RunnerWait`]); [`Store::take_runner_token_for`] hands it out only for an
//!   event that answers it ([`RunnerEvent::answers`]): a runner starting a job never ends a
//!   wait for it to leave.
//! - **Expiry.** Waiters, runner records and job watches carry `expires_at` (kept to whole
//!   seconds); once the store's clock reaches it they read as absent. Slot counters and
//!   holders never expire: an expired holder would leak its count forever. Stale holders
//!   (their execution ended without releasing) are found with [`Store::slot_holders`] and
//!   released by the reaper.

mod error;
mod memory;
mod types;

pub mod dynamo;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use dynamo::{DynamoStore, create_table};
pub use error::{StoreError, error_chain};
pub use memory::MemoryStore;
pub use types::{
    CeilingKind, Ceilings, ExecutionKey, InvalidName, JobId, JobWatch, Load, OrgName, PoolName,
    PutRunner, Release, RepoName, RunnerEvent, RunnerName, RunnerRecord, RunnerState, RunnerWait,
    RunnerWatch, SlotClaim, SlotHolder, SlotOutcome, StateChange, TaskToken, WARM_KEY_PREFIX,
    Waiter,
};

/// runway's state. Use as `Arc<dyn Store>`.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    // ---- Slots ------------------------------------------------------------------------------

    /// Takes a slot for `claim.execution` if no ceiling is reached, atomically across the pool,
    /// organisation and repository counters.
    async fn acquire_slot(&self, claim: &SlotClaim) -> Result<SlotOutcome, StoreError>;

    /// Frees the execution's slot, if it holds one. Idempotent.
    async fn release_slot(&self, execution: &ExecutionKey) -> Result<Release, StoreError>;

    /// The slot an execution holds, if any.
    async fn slot_holder(&self, execution: &ExecutionKey)
    -> Result<Option<SlotHolder>, StoreError>;

    /// Every slot held in a pool, oldest first (for the reaper's stale-slot sweep). On
    /// DynamoDB this reads a global secondary index, which can lag a fresh write by a moment.
    async fn slot_holders(&self, pool: &PoolName) -> Result<Vec<SlotHolder>, StoreError>;

    /// Running counts for the pool, organisation and repository, and the pool's waiting count.
    async fn load(
        &self,
        pool: &PoolName,
        org: &OrgName,
        repo: &RepoName,
    ) -> Result<Load, StoreError>;

    // ---- Admission queues -------------------------------------------------------------------

    /// Parks a waiter, or replaces the same execution's entry in that pool (new token,
    /// priority, arrival or expiry). The position follows the waiter's own priority and
    /// `enqueued_at`, so parking again with the first arrival time keeps the place in line.
    async fn enqueue_waiter(&self, waiter: &Waiter) -> Result<(), StoreError>;

    /// Removes and returns the first live waiter of the pool. Concurrent callers never receive
    /// the same waiter.
    async fn pop_next_waiter(&self, pool: &PoolName) -> Result<Option<Waiter>, StoreError>;

    /// Removes an execution's entry; false when it had none.
    async fn remove_waiter(
        &self,
        pool: &PoolName,
        execution: &ExecutionKey,
    ) -> Result<bool, StoreError>;

    /// The pool's live waiters in queue order.
    async fn waiters(&self, pool: &PoolName) -> Result<Vec<Waiter>, StoreError>;

    /// How many live waiters are ahead of the execution (0 = next), or None when not queued.
    async fn position(
        &self,
        pool: &PoolName,
        execution: &ExecutionKey,
    ) -> Result<Option<u32>, StoreError>;

    // ---- Runners ----------------------------------------------------------------------------

    /// Records a launched runner, unless a live record with that name exists.
    async fn put_runner(&self, record: &RunnerRecord) -> Result<PutRunner, StoreError>;

    async fn get_runner(&self, name: &RunnerName) -> Result<Option<RunnerRecord>, StoreError>;

    /// Moves a runner to `state`, only if it is currently `expected` (when given). `Gone` is
    /// final: nothing leaves it, so a late event cannot revive a runner.
    async fn set_runner_state(
        &self,
        name: &RunnerName,
        state: RunnerState,
        expected: Option<RunnerState>,
    ) -> Result<StateChange, StoreError>;

    /// Records a runner as torn down, hence gone (stamping `left_at` and `torn_down_at` if
    /// unset). True only for the first call on a live record, so that what a teardown
    /// measures counts once whichever retry gets there.
    async fn set_runner_torn_down(&self, name: &RunnerName) -> Result<bool, StoreError>;

    /// Records that the runner's host is being reclaimed (an EC2 spot interruption warning),
    /// stamping `reclaimed_at` if unset. True only for the first call on a live record.
    async fn set_runner_reclaimed(&self, name: &RunnerName) -> Result<bool, StoreError>;

    /// Sets the watch of the step waiting on this runner's events: its token and what it
    /// waits for, replacing any earlier watch. False when no such runner.
    async fn set_runner_token(
        &self,
        name: &RunnerName,
        token: &TaskToken,
        wait: RunnerWait,
    ) -> Result<bool, StoreError>;

    /// Records the host's id of a launched runner (instance id, task ARN, pod name). False
    /// when no live record has that name.
    async fn set_runner_instance(
        &self,
        name: &RunnerName,
        instance_id: &str,
    ) -> Result<bool, StoreError>;

    /// Removes and returns the runner's watch if `event` answers what it waits for
    /// ([`RunnerEvent::answers`]), in one atomic step: one event wakes the waiting step once,
    /// and an event that does not answer the wait leaves it in place. `None` when there is no
    /// watch, or the event does not answer it.
    async fn take_runner_token_for(
        &self,
        name: &RunnerName,
        event: RunnerEvent,
    ) -> Result<Option<RunnerWatch>, StoreError>;

    /// Removes the runner's watch only if it holds `token`: a step completes its own wait,
    /// never the wait of a later step that set its token meanwhile. True when it was removed.
    async fn take_runner_token_of(
        &self,
        name: &RunnerName,
        token: &TaskToken,
    ) -> Result<bool, StoreError>;

    /// Puts back a watch taken for an event that could not be delivered (with what it waits
    /// for), unless a later step set its own meanwhile (that step is the one waiting now).
    /// True when it was put back.
    async fn restore_runner_token(
        &self,
        name: &RunnerName,
        watch: &RunnerWatch,
    ) -> Result<bool, StoreError>;

    /// Hands one of the pool's unadopted warm runners (booting or idle, idle first, then the
    /// oldest) to `execution`, in one conditional write: its `execution` becomes the adopter
    /// and `launched_by` keeps the warm key its host carries. Concurrent adopters never get
    /// the same runner. Idempotent: a runner `execution` adopted already is returned again, so
    /// a retried step does not take a second one. `None` when the pool has none to give.
    async fn adopt_warm_runner(
        &self,
        pool: &PoolName,
        execution: &ExecutionKey,
    ) -> Result<Option<RunnerRecord>, StoreError>;

    /// Deletes the record; false when there was none.
    async fn delete_runner(&self, name: &RunnerName) -> Result<bool, StoreError>;

    /// The pool's live runners, oldest launch first. On DynamoDB this reads a global secondary
    /// index, which can lag a fresh write by a moment.
    async fn runners_of_pool(&self, pool: &PoolName) -> Result<Vec<RunnerRecord>, StoreError>;

    /// How many live runners of `pool` are in `state` (the throttle policy's booting count).
    async fn count_runners(&self, pool: &PoolName, state: RunnerState) -> Result<u32, StoreError> {
        let runners = self.runners_of_pool(pool).await?;
        let count = runners.iter().filter(|r| r.state == state).count();
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    /// Live runners launched before `time`, oldest first (for the reaper). On DynamoDB this
    /// scans the table.
    async fn runners_older_than(
        &self,
        time: DateTime<Utc>,
    ) -> Result<Vec<RunnerRecord>, StoreError>;

    // ---- Job watches ------------------------------------------------------------------------

    /// Records (or replaces) the step waiting for a job's events.
    async fn watch_job(&self, watch: &JobWatch) -> Result<(), StoreError>;

    /// Removes and returns the job's watch: a webhook wakes the waiting step exactly once.
    async fn take_job_watch(&self, job_id: JobId) -> Result<Option<JobWatch>, StoreError>;

    async fn get_job_watch(&self, job_id: JobId) -> Result<Option<JobWatch>, StoreError>;

    /// Removes the job's watch only if it holds `token` (see [`Store::take_runner_token_of`]).
    async fn take_job_watch_of(&self, job_id: JobId, token: &TaskToken)
    -> Result<bool, StoreError>;

    /// Puts back a watch taken for an event that could not be delivered, unless a later step
    /// registered its own meanwhile. True when it was put back.
    async fn restore_job_watch(&self, watch: &JobWatch) -> Result<bool, StoreError>;
}
