//! The DynamoDB store: one on-demand table, string keys `pk` and `sk`, TTL attribute
//! `expires_at` (epoch seconds).
//!
//! # Item layout
//!
//! | item           | `pk`                      | `sk`                 | other attributes |
//! |----------------|---------------------------|----------------------|------------------|
//! | pool counter   | `SLOT#POOL#<pool>`        | `COUNT`              | `count` (N) |
//! | org counter    | `SLOT#ORG#<org>`          | `COUNT`              | `count` (N) |
//! | repo counter   | `SLOT#REPO#<owner/repo>`  | `COUNT`              | `count` (N) |
//! | slot holder    | `SLOT#HOLDER#<execution>` | `HOLDER`             | `execution`, `pool`, `org`, `repo`, `acquired_at`; `gsi1pk` = `HOLDERS#<pool>`, `gsi1sk` = `<acquired_at>#<execution>` |
//! | waiter         | `QUEUE#<pool>`            | `WAITER#<execution>` | `qpos` (queue position, below), `pool`, `execution`, `priority` (N), `enqueued_at`, `task_token`, `expires_at` |
//! | runner         | `RUNNER#<runner name>`    | `RUNNER`             | `runner_name`, `execution`, `pool`, `provider`, `instance_id`?, `state` (`booting`, `idle`, `busy:<job id>`, `gone`), `runner_token`?, `runner_wait`? (`busy`, `gone`: what the step holding `runner_token` waits for; absent on items written before it was recorded, whose wait any event answers), `launched_at`, `job_started_at`?, `left_at`?, `torn_down_at`? and `reclaimed_at`? (stamped at the first moves to busy and to gone, the first teardown, the first spot interruption warning), `expires_at`; `gsi1pk` = `RUNNERS#<pool>`, `gsi1sk` = `<launched_at>#<runner name>` |
//! | job watch      | `JOB#<job id>`            | `WATCH`              | `job_id` (N), `execution`, `task_token`, `expires_at` |
//!
//! Times other than `expires_at` are RFC 3339 strings in UTC with nine fractional digits, so
//! they sort as text. Counters and slot holders carry no `expires_at`: a holder deleted by TTL
//! would leak its counts forever; the reaper releases stale holders instead.
//!
//! # Indexes
//!
//! - Local secondary index `by_queue_position`: `pk` (HASH), `qpos` (RANGE), all attributes.
//!   `qpos` = `<2147483647 - priority, 10 digits>#<enqueued_at epoch ms, 13 digits>#<execution>`,
//!   so ascending order is the queue order. A local index allows consistent reads, so a waiter
//!   is visible to `pop_next_waiter` as soon as it is enqueued.
//! - Global secondary index `by_pool`: `gsi1pk` (HASH), `gsi1sk` (RANGE), all attributes:
//!   runners and slot holders of one pool, oldest first (eventually consistent).
//!
//! # Atomicity
//!
//! - `acquire_slot` is one `TransactWriteItems`: put the holder if absent, and add one to
//!   the pool, organisation and repository counters, each conditioned on its ceiling
//!   (`attribute_not_exists(count) OR count < limit`). `release_slot` deletes the holder
//!   (conditioned on its existence) and subtracts one from the counters it names, also in one
//!   transaction.
//! - `pop_next_waiter` reads the head of the queue and deletes it on condition that it is
//!   unchanged (same position and token), retrying on a lost race.
//! - `take_job_watch` is a `DeleteItem` returning the old item; `take_runner_token_for` an
//!   `UpdateItem` removing the token and its wait and returning them, conditioned on a wait
//!   the event answers (`runner_wait` absent or one of those values), so a runner's start
//!   never takes the token of a wait for it to leave.
//!
//! DynamoDB deletes expired items lazily, so every read also drops items whose `expires_at`
//! has passed on the store's clock.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{BuildError, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, CancellationReason, Delete,
    GlobalSecondaryIndex, KeySchemaElement, KeyType, LocalSecondaryIndex, Projection,
    ProjectionType, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, ScalarAttributeType,
    Select, TableStatus, TimeToLiveSpecification, TransactWriteItem, Update,
};
use chrono::{DateTime, SecondsFormat, Utc};
use runway_clock::{Backoff, SharedClock};

use crate::error::from_sdk;
use crate::types::whole_seconds;
use crate::{
    CeilingKind, ExecutionKey, JobId, JobWatch, Load, OrgName, PoolName, PutRunner, Release,
    RepoName, RunnerEvent, RunnerName, RunnerRecord, RunnerState, RunnerWait, RunnerWatch,
    SlotClaim, SlotHolder, SlotOutcome, StateChange, Store, StoreError, TaskToken, Waiter,
};

/// The local secondary index ordering each pool's queue.
pub const QUEUE_INDEX: &str = "by_queue_position";
/// The global secondary index listing runners and slot holders by pool.
pub const POOL_INDEX: &str = "by_pool";
/// The TTL attribute (epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// How often a write that lost a race is tried again before giving up with
/// [`StoreError::Contended`].
const MAX_ATTEMPTS: u32 = 20;
/// The pause before trying a contended write again: short (the other writer is done within
/// milliseconds), doubling, jittered so racing writers part.
const CONTENDED_WRITE: Backoff = Backoff::exponential(
    Duration::from_millis(5),
    Duration::from_millis(100),
    MAX_ATTEMPTS as usize,
)
.with_jitter();

type Item = HashMap<String, AttributeValue>;

/// A put's condition: no item under the key, or only one whose TTL has passed (DynamoDB
/// deletes expired items lazily, so they still count as absent).
const ABSENT_OR_EXPIRED: &str = "attribute_not_exists(pk) OR #expires_at <= :now";

/// The store on one DynamoDB table (see the module docs for its layout).
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    clock: SharedClock,
}

impl DynamoStore {
    /// One conditional write to a live runner record: `update` applies only while the record
    /// is live and `also` holds; either reads the strings `values` name (`:value`, ...).
    /// False when the condition failed: no such runner, or `also` did not hold.
    async fn update_live_runner(
        &self,
        name: &RunnerName,
        update: &str,
        also: Option<&str>,
        values: &[(&str, &str)],
        doing: &'static str,
    ) -> Result<bool, StoreError> {
        let mut request = self.live_runner_update(name, update, also);
        for (placeholder, value) in values {
            request = request.expression_attribute_values(*placeholder, s(*value));
        }
        let outcome = request.send().await;
        self.conditional_outcome(doing, outcome)
    }

    /// An `UpdateItem` of the runner record `name` that applies only while the record is live
    /// (and `also` holds, when given); `:now` and `#expires_at` are set.
    fn live_runner_update(
        &self,
        name: &RunnerName,
        update: &str,
        also: Option<&str>,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        let live = "attribute_exists(pk) AND #expires_at > :now";
        let condition = match also {
            Some(also) => format!("{live} AND {also}"),
            None => live.to_owned(),
        };
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Key::runner(name).item()))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_names("#expires_at", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", n(self.now_seconds()))
    }

    /// Applies `update` (which stamps `attribute` with `:at`, now, if unset) to a live runner
    /// record: true when this call stamped it, false when an earlier one had or no live record
    /// is there. `update` may use `#state` and `:gone`.
    async fn stamp_runner_once(
        &self,
        name: &RunnerName,
        attribute: &str,
        update: &str,
        doing: &'static str,
    ) -> Result<bool, StoreError> {
        let mut request = self
            .live_runner_update(name, update, None)
            .expression_attribute_values(":at", s(text_time(self.clock.now())))
            // The item as it was: the stamp on it means an earlier call got there first.
            .return_values(ReturnValue::AllOld);
        if update.contains("#state") {
            request = request
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":gone", s(RunnerState::Gone.as_key()));
        }
        match request.send().await {
            Ok(output) => Ok(!output
                .attributes()
                .is_some_and(|old| old.contains_key(attribute))),
            Err(error) if is_condition_failure(&error) => Ok(false),
            Err(error) => Err(self.sdk_error(doing, error)),
        }
    }

    /// A short, jittered pause on the store's clock before trying a contended write again.
    async fn after_lost_race(&self, attempt: u32) {
        tracing::debug!(
            attempt,
            "a store write lost a race with a concurrent writer; retrying"
        );
        let delay = CONTENDED_WRITE
            .delay(attempt as usize)
            .unwrap_or(CONTENDED_WRITE.max());
        self.clock.sleep(delay).await;
    }

    pub fn new(client: Client, table: impl Into<String>, clock: SharedClock) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            clock,
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn now_seconds(&self) -> i64 {
        self.clock.now().timestamp()
    }

    fn sdk_error<E, R>(&self, operation: &'static str, error: SdkError<E, R>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        from_sdk(operation, &self.table, error)
    }

    /// The outcome of a conditional write: true when it applied, false when its condition
    /// did not hold, an error otherwise.
    fn conditional_outcome<T, E, R>(
        &self,
        operation: &'static str,
        outcome: Result<T, SdkError<E, R>>,
    ) -> Result<bool, StoreError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        match outcome {
            Ok(_) => Ok(true),
            Err(error) if is_condition_failure(&error) => Ok(false),
            Err(error) => Err(self.sdk_error(operation, error)),
        }
    }

    /// Writes `item` unless a live item stands under its key (an expired one is replaced):
    /// true when written, false when a live one is there.
    async fn put_unless_live(
        &self,
        operation: &'static str,
        item: Item,
    ) -> Result<bool, StoreError> {
        let outcome = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(ABSENT_OR_EXPIRED)
            .expression_attribute_names("#expires_at", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", n(self.now_seconds()))
            .send()
            .await;
        self.conditional_outcome(operation, outcome)
    }

    async fn get(&self, operation: &'static str, key: Key) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key.item()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| self.sdk_error(operation, error))?;
        Ok(output.item)
    }

    async fn counter(&self, key: Key) -> Result<u32, StoreError> {
        let item = self.get("read a slot counter", key.clone()).await?;
        match item {
            Some(item) => counter_value(&item, &key),
            None => Ok(0),
        }
    }

    /// Every page of a query, or of a scan when `scan` is set.
    async fn query_all(&self, query: QueryRequest<'_>) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(query.index.map(str::to_string))
                .key_condition_expression(query.key_condition)
                .filter_expression("#expires_at > :now")
                .set_expression_attribute_names(Some(query.names.clone()))
                .set_expression_attribute_values(Some(query.values.clone()))
                .consistent_read(query.consistent)
                .set_select(query.count_only.then_some(Select::Count))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|error| self.sdk_error(query.operation, error))?;
            if query.count_only {
                let count = usize::try_from(page.count).unwrap_or(0);
                items.extend(std::iter::repeat_n(Item::new(), count));
            } else {
                items.extend(page.items.unwrap_or_default());
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }

    async fn queue_page(&self, pool: &PoolName) -> Result<Vec<Item>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(QUEUE_INDEX)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(Key::queue_partition(pool)))
            .consistent_read(true)
            .limit(25)
            .send()
            .await
            .map_err(|error| self.sdk_error("read the admission queue", error))?;
        Ok(output.items.unwrap_or_default())
    }

    /// Deletes a waiter only if it is still the version that was read. True when deleted.
    async fn delete_waiter_if_unchanged(&self, waiter: &Item) -> Result<bool, StoreError> {
        let (Some(pk), Some(sk), Some(qpos), Some(token)) = (
            waiter.get("pk"),
            waiter.get("sk"),
            waiter.get("qpos"),
            waiter.get("task_token"),
        ) else {
            return Err(corrupt(waiter, "a waiter lacks pk, sk, qpos or task_token"));
        };
        let outcome = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", pk.clone())
            .key("sk", sk.clone())
            .condition_expression("qpos = :qpos AND task_token = :token")
            .expression_attribute_values(":qpos", qpos.clone())
            .expression_attribute_values(":token", token.clone())
            .send()
            .await;
        match self.conditional_outcome("take a waiter off the queue", outcome) {
            Err(StoreError::Contended { .. }) => Ok(false),
            other => other,
        }
    }

    async fn read_runner(&self, name: &RunnerName) -> Result<Option<RunnerRecord>, StoreError> {
        let item = self.get("read a runner", Key::runner(name)).await?;
        let now = self.now_seconds();
        match item {
            Some(item) if item_is_live(&item, now) => Ok(Some(runner_from_item(&item)?)),
            _ => Ok(None),
        }
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn acquire_slot(&self, claim: &SlotClaim) -> Result<SlotOutcome, StoreError> {
        const OPERATION: &str = "acquire a slot";
        let holder_key = Key::holder(&claim.execution);
        let acquired_at = self.clock.now();
        let mut holder = holder_key.item();
        holder.insert("execution".into(), s(claim.execution.as_str()));
        holder.insert("pool".into(), s(claim.pool.as_str()));
        holder.insert("org".into(), s(claim.org.as_str()));
        holder.insert("repo".into(), s(claim.repo.as_str()));
        holder.insert("acquired_at".into(), s(text_time(acquired_at)));
        holder.insert("gsi1pk".into(), s(format!("HOLDERS#{}", claim.pool)));
        holder.insert(
            "gsi1sk".into(),
            s(format!("{}#{}", text_time(acquired_at), claim.execution)),
        );
        let counters = [
            (
                CeilingKind::Pool,
                Key::pool_counter(&claim.pool),
                Some(claim.ceilings.pool),
            ),
            (
                CeilingKind::Org,
                Key::org_counter(&claim.org),
                claim.ceilings.org,
            ),
            (
                CeilingKind::Repo,
                Key::repo_counter(&claim.repo),
                claim.ceilings.repo,
            ),
        ];
        let mut items = vec![
            TransactWriteItem::builder()
                .put(built(
                    OPERATION,
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(holder))
                        .condition_expression("attribute_not_exists(pk)")
                        .build(),
                )?)
                .build(),
        ];
        for (_, key, limit) in &counters {
            let mut update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key.item()))
                .update_expression("ADD #count :one")
                .expression_attribute_names("#count", "count")
                .expression_attribute_values(":one", n(1));
            if let Some(limit) = limit {
                // A missing counter is zero, which is below any limit but zero.
                let condition = if *limit == 0 {
                    "attribute_exists(#count) AND #count < :limit"
                } else {
                    "attribute_not_exists(#count) OR #count < :limit"
                };
                update = update
                    .condition_expression(condition)
                    .expression_attribute_values(":limit", n(limit))
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    );
            }
            items.push(
                TransactWriteItem::builder()
                    .update(built(OPERATION, update.build())?)
                    .build(),
            );
        }

        for attempt in 1..=MAX_ATTEMPTS {
            let outcome = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let error = match outcome {
                Ok(_) => return Ok(SlotOutcome::Acquired),
                Err(error) => error,
            };
            let Some(reasons) = cancellation_reasons(&error) else {
                return Err(self.sdk_error(OPERATION, error));
            };
            if reason_is(reasons.first(), "ConditionalCheckFailed") {
                return Ok(SlotOutcome::AlreadyHeld);
            }
            if reasons
                .iter()
                .any(|reason| reason_is(Some(reason), "TransactionConflict"))
            {
                self.after_lost_race(attempt).await;
                continue;
            }
            for (index, (ceiling, key, limit)) in counters.iter().enumerate() {
                let (Some(limit), true) = (
                    limit,
                    reason_is(reasons.get(index + 1), "ConditionalCheckFailed"),
                ) else {
                    continue;
                };
                let returned = reasons[index + 1].item.as_ref();
                let current = match returned {
                    Some(item) => counter_value(item, key)?,
                    None => self.counter(key.clone()).await?,
                };
                return Ok(SlotOutcome::Full {
                    ceiling: *ceiling,
                    limit: *limit,
                    current,
                });
            }
            return Err(self.sdk_error(OPERATION, error));
        }
        Err(StoreError::Contended {
            operation: OPERATION,
            attempts: MAX_ATTEMPTS,
        })
    }

    async fn release_slot(&self, execution: &ExecutionKey) -> Result<Release, StoreError> {
        const OPERATION: &str = "release a slot";
        for attempt in 1..=MAX_ATTEMPTS {
            let Some(holder) = self.slot_holder(execution).await? else {
                return Ok(Release::NotHeld);
            };
            let mut items = vec![
                TransactWriteItem::builder()
                    .delete(built(
                        OPERATION,
                        Delete::builder()
                            .table_name(&self.table)
                            .set_key(Some(Key::holder(execution).item()))
                            // The very holder that was read, so the counters it names are
                            // the ones it took.
                            .condition_expression("acquired_at = :acquired_at")
                            .expression_attribute_values(
                                ":acquired_at",
                                s(text_time(holder.acquired_at)),
                            )
                            .build(),
                    )?)
                    .build(),
            ];
            for key in [
                Key::pool_counter(&holder.pool),
                Key::org_counter(&holder.org),
                Key::repo_counter(&holder.repo),
            ] {
                let update = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key.item()))
                    .update_expression("ADD #count :minus_one")
                    .expression_attribute_names("#count", "count")
                    .expression_attribute_values(":minus_one", n(-1))
                    .build();
                items.push(
                    TransactWriteItem::builder()
                        .update(built(OPERATION, update)?)
                        .build(),
                );
            }
            let outcome = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await;
            let error = match outcome {
                Ok(_) => return Ok(Release::Released),
                Err(error) => error,
            };
            let Some(reasons) = cancellation_reasons(&error) else {
                return Err(self.sdk_error(OPERATION, error));
            };
            // Released (or released and taken again) by a concurrent call: read again.
            if reason_is(reasons.first(), "ConditionalCheckFailed")
                || reasons
                    .iter()
                    .any(|reason| reason_is(Some(reason), "TransactionConflict"))
            {
                self.after_lost_race(attempt).await;
                continue;
            }
            return Err(self.sdk_error(OPERATION, error));
        }
        Err(StoreError::Contended {
            operation: OPERATION,
            attempts: MAX_ATTEMPTS,
        })
    }

    async fn slot_holder(
        &self,
        execution: &ExecutionKey,
    ) -> Result<Option<SlotHolder>, StoreError> {
        let item = self
            .get("read a slot holder", Key::holder(execution))
            .await?;
        item.as_ref().map(holder_from_item).transpose()
    }

    async fn slot_holders(&self, pool: &PoolName) -> Result<Vec<SlotHolder>, StoreError> {
        // Holders never expire; the filter on expires_at would drop them all.
        let mut holders = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(POOL_INDEX)
                .key_condition_expression("gsi1pk = :pk")
                .expression_attribute_values(":pk", s(format!("HOLDERS#{pool}")))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|error| self.sdk_error("list slot holders", error))?;
            for item in page.items.unwrap_or_default() {
                holders.push(holder_from_item(&item)?);
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(holders),
            }
        }
    }

    async fn load(
        &self,
        pool: &PoolName,
        org: &OrgName,
        repo: &RepoName,
    ) -> Result<Load, StoreError> {
        let waiting = self.query_all(QueryRequest::queue(pool, self.now_seconds(), true));
        let (pool_running, org_running, repo_running, waiting) = tokio::try_join!(
            self.counter(Key::pool_counter(pool)),
            self.counter(Key::org_counter(org)),
            self.counter(Key::repo_counter(repo)),
            waiting,
        )?;
        Ok(Load {
            pool_running,
            org_running,
            repo_running,
            pool_waiting: u32::try_from(waiting.len()).unwrap_or(u32::MAX),
        })
    }

    async fn enqueue_waiter(&self, waiter: &Waiter) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(waiter_item(waiter)))
            .send()
            .await
            .map_err(|error| self.sdk_error("enqueue a waiter", error))?;
        Ok(())
    }

    async fn pop_next_waiter(&self, pool: &PoolName) -> Result<Option<Waiter>, StoreError> {
        let mut lost_races = 0;
        loop {
            let page = self.queue_page(pool).await?;
            if page.is_empty() {
                return Ok(None);
            }
            let now = self.now_seconds();
            for item in &page {
                if !item_is_live(item, now) {
                    // Expired: clear it out of the way (DynamoDB's TTL may lag for days).
                    self.delete_waiter_if_unchanged(item).await?;
                    continue;
                }
                let waiter = waiter_from_item(item)?;
                if self.delete_waiter_if_unchanged(item).await? {
                    return Ok(Some(waiter));
                }
                // Popped, removed or parked again by someone else meanwhile: read the head
                // again.
                lost_races += 1;
                if lost_races >= MAX_ATTEMPTS {
                    return Err(StoreError::Contended {
                        operation: "pop the next waiter",
                        attempts: lost_races,
                    });
                }
                self.after_lost_race(lost_races).await;
                break;
            }
        }
    }

    async fn remove_waiter(
        &self,
        pool: &PoolName,
        execution: &ExecutionKey,
    ) -> Result<bool, StoreError> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Key::waiter(pool, execution).item()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|error| self.sdk_error("remove a waiter", error))?;
        let now = self.now_seconds();
        Ok(output
            .attributes
            .is_some_and(|item| item_is_live(&item, now)))
    }

    async fn waiters(&self, pool: &PoolName) -> Result<Vec<Waiter>, StoreError> {
        let items = self
            .query_all(QueryRequest::queue(pool, self.now_seconds(), false))
            .await?;
        items.iter().map(waiter_from_item).collect()
    }

    async fn position(
        &self,
        pool: &PoolName,
        execution: &ExecutionKey,
    ) -> Result<Option<u32>, StoreError> {
        let now = self.now_seconds();
        let Some(item) = self
            .get("read a waiter", Key::waiter(pool, execution))
            .await?
        else {
            return Ok(None);
        };
        if !item_is_live(&item, now) {
            return Ok(None);
        }
        let Some(qpos) = item.get("qpos").cloned() else {
            return Err(corrupt(&item, "a waiter lacks qpos"));
        };
        let mut ahead = QueryRequest::queue(pool, now, true);
        ahead.key_condition = "pk = :pk AND qpos < :qpos";
        ahead.values.insert(":qpos".into(), qpos);
        let count = self.query_all(ahead).await?.len();
        Ok(Some(u32::try_from(count).unwrap_or(u32::MAX)))
    }

    async fn put_runner(&self, record: &RunnerRecord) -> Result<PutRunner, StoreError> {
        const OPERATION: &str = "record a runner";
        for _ in 0..MAX_ATTEMPTS {
            if self.put_unless_live(OPERATION, runner_item(record)).await? {
                return Ok(PutRunner::Created);
            }
            if let Some(existing) = self.read_runner(&record.runner_name).await? {
                return Ok(PutRunner::Exists {
                    existing: Box::new(existing),
                });
            }
            // Expired between the write and the read: try again.
        }
        Err(StoreError::Contended {
            operation: OPERATION,
            attempts: MAX_ATTEMPTS,
        })
    }

    async fn get_runner(&self, name: &RunnerName) -> Result<Option<RunnerRecord>, StoreError> {
        self.read_runner(name).await
    }

    async fn set_runner_state(
        &self,
        name: &RunnerName,
        state: RunnerState,
        expected: Option<RunnerState>,
    ) -> Result<StateChange, StoreError> {
        let mut condition = String::from("attribute_exists(pk) AND #expires_at > :now");
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Key::runner(name).item()))
            .expression_attribute_names("#expires_at", TTL_ATTRIBUTE)
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":now", n(self.now_seconds()))
            .expression_attribute_values(":state", s(state.as_key()));
        // The first move to busy and to gone are stamped once, for the runner's timings.
        let stamped_now = s(text_time(self.clock.now()));
        request = match state {
            RunnerState::Busy { job_id } => request
                .update_expression(
                    "SET #state = :state, job_id = :job_id, \
                     job_started_at = if_not_exists(job_started_at, :at)",
                )
                .expression_attribute_values(":job_id", n(job_id.0))
                .expression_attribute_values(":at", stamped_now),
            RunnerState::Gone => request
                .update_expression(
                    "SET #state = :state, left_at = if_not_exists(left_at, :at) REMOVE job_id",
                )
                .expression_attribute_values(":at", stamped_now),
            RunnerState::Booting | RunnerState::Idle => {
                request.update_expression("SET #state = :state REMOVE job_id")
            }
        };
        if state != RunnerState::Gone {
            condition.push_str(" AND #state <> :gone");
            request = request.expression_attribute_values(":gone", s(RunnerState::Gone.as_key()));
        }
        if let Some(expected) = expected {
            condition.push_str(" AND #state = :expected");
            request = request.expression_attribute_values(":expected", s(expected.as_key()));
        }
        match request.condition_expression(condition).send().await {
            Ok(_) => Ok(StateChange::Applied),
            Err(error) if is_condition_failure(&error) => {
                Ok(match self.read_runner(name).await? {
                    Some(record) => StateChange::Stale {
                        current: record.state,
                    },
                    None => StateChange::NotFound,
                })
            }
            Err(error) => Err(self.sdk_error("change a runner's state", error)),
        }
    }

    async fn set_runner_torn_down(&self, name: &RunnerName) -> Result<bool, StoreError> {
        self.stamp_runner_once(
            name,
            "torn_down_at",
            "SET #state = :gone, left_at = if_not_exists(left_at, :at), \
             torn_down_at = if_not_exists(torn_down_at, :at) REMOVE job_id",
            "record a runner as torn down",
        )
        .await
    }

    async fn set_runner_reclaimed(&self, name: &RunnerName) -> Result<bool, StoreError> {
        self.stamp_runner_once(
            name,
            "reclaimed_at",
            "SET reclaimed_at = if_not_exists(reclaimed_at, :at)",
            "record a runner's host as reclaimed",
        )
        .await
    }

    async fn set_runner_token(
        &self,
        name: &RunnerName,
        token: &TaskToken,
        wait: RunnerWait,
    ) -> Result<bool, StoreError> {
        self.update_live_runner(
            name,
            "SET runner_token = :value, runner_wait = :wait",
            None,
            &[(":value", token.as_str()), (":wait", wait.as_key())],
            "set a runner's task token",
        )
        .await
    }

    async fn set_runner_instance(
        &self,
        name: &RunnerName,
        instance_id: &str,
    ) -> Result<bool, StoreError> {
        self.update_live_runner(
            name,
            "SET instance_id = :value",
            None,
            &[(":value", instance_id)],
            "record a runner's instance",
        )
        .await
    }

    async fn take_runner_token_for(
        &self,
        name: &RunnerName,
        event: RunnerEvent,
    ) -> Result<Option<RunnerWatch>, StoreError> {
        let mut condition = String::from(
            "attribute_exists(pk) AND #expires_at > :now AND attribute_exists(runner_token)",
        );
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Key::runner(name).item()))
            .update_expression("REMOVE runner_token, runner_wait")
            .expression_attribute_names("#expires_at", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", n(self.now_seconds()))
            .return_values(ReturnValue::UpdatedOld);
        // The waits the event answers go into the condition, so the check and the take are
        // one write. They come from `RunnerEvent::answers`, as in the memory store; an item
        // without `runner_wait` (written before waits were recorded) is its `None`.
        let waits = [RunnerWait::Busy, RunnerWait::Gone];
        let answered: Vec<RunnerWait> = waits
            .into_iter()
            .filter(|wait| event.answers(Some(*wait)))
            .collect();
        if answered.len() < waits.len() {
            let mut any_of = Vec::new();
            if event.answers(None) {
                any_of.push("attribute_not_exists(runner_wait)".to_owned());
            }
            for (index, wait) in answered.iter().enumerate() {
                let placeholder = format!(":wait{index}");
                any_of.push(format!("runner_wait = {placeholder}"));
                request = request.expression_attribute_values(placeholder, s(wait.as_key()));
            }
            if any_of.is_empty() {
                return Ok(None);
            }
            condition.push_str(&format!(" AND ({})", any_of.join(" OR ")));
        } else if !event.answers(None) {
            condition.push_str(" AND attribute_exists(runner_wait)");
        }
        match request.condition_expression(condition).send().await {
            Ok(output) => {
                let item = output.attributes.unwrap_or_default();
                runner_watch(&item)
            }
            Err(error) if is_condition_failure(&error) => Ok(None),
            Err(error) => Err(self.sdk_error("take a runner's task token", error)),
        }
    }

    async fn take_runner_token_of(
        &self,
        name: &RunnerName,
        token: &TaskToken,
    ) -> Result<bool, StoreError> {
        self.update_live_runner(
            name,
            "REMOVE runner_token, runner_wait",
            Some("runner_token = :value"),
            &[(":value", token.as_str())],
            "take back a runner's task token",
        )
        .await
    }

    async fn restore_runner_token(
        &self,
        name: &RunnerName,
        watch: &RunnerWatch,
    ) -> Result<bool, StoreError> {
        let token = watch.task_token.as_str();
        let (update, values) = match watch.wait {
            Some(wait) => (
                "SET runner_token = :value, runner_wait = :wait",
                vec![(":value", token), (":wait", wait.as_key())],
            ),
            // Put back as it was taken: without a wait, answered by any event.
            None => (
                "SET runner_token = :value REMOVE runner_wait",
                vec![(":value", token)],
            ),
        };
        self.update_live_runner(
            name,
            update,
            Some("attribute_not_exists(runner_token)"),
            &values,
            "put back a runner's task token",
        )
        .await
    }

    async fn delete_runner(&self, name: &RunnerName) -> Result<bool, StoreError> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Key::runner(name).item()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|error| self.sdk_error("delete a runner", error))?;
        let now = self.now_seconds();
        Ok(output
            .attributes
            .is_some_and(|item| item_is_live(&item, now)))
    }

    async fn adopt_warm_runner(
        &self,
        pool: &PoolName,
        execution: &ExecutionKey,
    ) -> Result<Option<RunnerRecord>, StoreError> {
        // The pool index can lag a write by a moment: a warm runner launched a moment ago may
        // be missed (the execution launches instead), and so may this execution's own
        // adoption on a retry (the reaper then finds the first one by its record).
        let runners = self.runners_of_pool(pool).await?;
        if let Some(adopted) = runners
            .iter()
            .find(|record| &record.execution == execution && record.launched_by.is_some())
        {
            return Ok(Some(adopted.clone()));
        }
        let mut candidates: Vec<&RunnerRecord> = runners
            .iter()
            .filter(|record| record.is_unadopted_warm())
            .filter(|record| matches!(record.state, RunnerState::Idle | RunnerState::Booting))
            .collect();
        candidates.sort_by_key(|record| {
            (
                record.state != RunnerState::Idle,
                record.launched_at,
                record.runner_name.clone(),
            )
        });
        for candidate in candidates {
            let adopted = self
                .live_runner_update(
                    &candidate.runner_name,
                    "SET execution = :adopter, launched_by = :warm",
                    Some("execution = :warm AND (#state = :idle OR #state = :booting)"),
                )
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":adopter", s(execution.as_str()))
                .expression_attribute_values(":warm", s(candidate.execution.as_str()))
                .expression_attribute_values(":idle", s(RunnerState::Idle.as_key()))
                .expression_attribute_values(":booting", s(RunnerState::Booting.as_key()))
                .send()
                .await;
            if self.conditional_outcome("adopt a warm runner", adopted)? {
                let mut record = candidate.clone();
                record.launched_by = Some(record.execution.clone());
                record.execution = execution.clone();
                return Ok(Some(record));
            }
            // Another execution took it, or it started a job or left: try the next.
        }
        Ok(None)
    }

    async fn runners_of_pool(&self, pool: &PoolName) -> Result<Vec<RunnerRecord>, StoreError> {
        let mut request = QueryRequest::new("list a pool's runners", self.now_seconds());
        request.index = Some(POOL_INDEX);
        request.key_condition = "gsi1pk = :pk";
        request
            .values
            .insert(":pk".into(), s(format!("RUNNERS#{pool}")));
        let items = self.query_all(request).await?;
        items.iter().map(runner_from_item).collect()
    }

    async fn runners_older_than(
        &self,
        time: DateTime<Utc>,
    ) -> Result<Vec<RunnerRecord>, StoreError> {
        let mut runners = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(
                    "begins_with(pk, :runner) AND launched_at < :time AND #expires_at > :now",
                )
                .expression_attribute_names("#expires_at", TTL_ATTRIBUTE)
                .expression_attribute_values(":runner", s("RUNNER#"))
                .expression_attribute_values(":time", s(text_time(time)))
                .expression_attribute_values(":now", n(self.now_seconds()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|error| self.sdk_error("list old runners", error))?;
            for item in page.items.unwrap_or_default() {
                runners.push(runner_from_item(&item)?);
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        runners
            .sort_by(|a, b| (a.launched_at, &a.runner_name).cmp(&(b.launched_at, &b.runner_name)));
        Ok(runners)
    }

    async fn watch_job(&self, watch: &JobWatch) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(watch_item(watch)))
            .send()
            .await
            .map_err(|error| self.sdk_error("watch a job", error))?;
        Ok(())
    }

    async fn take_job_watch(&self, job_id: JobId) -> Result<Option<JobWatch>, StoreError> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Key::watch(job_id).item()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|error| self.sdk_error("take a job watch", error))?;
        let now = self.now_seconds();
        match output.attributes {
            Some(item) if item_is_live(&item, now) => Ok(Some(watch_from_item(&item)?)),
            _ => Ok(None),
        }
    }

    async fn get_job_watch(&self, job_id: JobId) -> Result<Option<JobWatch>, StoreError> {
        let item = self.get("read a job watch", Key::watch(job_id)).await?;
        let now = self.now_seconds();
        match item {
            Some(item) if item_is_live(&item, now) => Ok(Some(watch_from_item(&item)?)),
            _ => Ok(None),
        }
    }

    async fn take_job_watch_of(
        &self,
        job_id: JobId,
        token: &TaskToken,
    ) -> Result<bool, StoreError> {
        let outcome = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Key::watch(job_id).item()))
            .condition_expression("#expires_at > :now AND task_token = :token")
            .expression_attribute_names("#expires_at", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", n(self.now_seconds()))
            .expression_attribute_values(":token", s(token.as_str()))
            .send()
            .await;
        self.conditional_outcome("take back a job watch", outcome)
    }

    async fn restore_job_watch(&self, watch: &JobWatch) -> Result<bool, StoreError> {
        self.put_unless_live("put back a job watch", watch_item(watch))
            .await
    }
}

fn watch_item(watch: &JobWatch) -> Item {
    let mut item = Key::watch(watch.job_id).item();
    item.insert("job_id".into(), n(watch.job_id.0));
    item.insert("execution".into(), s(watch.execution.as_str()));
    item.insert("task_token".into(), s(watch.task_token.as_str()));
    item.insert(
        TTL_ATTRIBUTE.into(),
        n(whole_seconds(watch.expires_at).timestamp()),
    );
    item
}

/// Creates the store's table (on-demand, with both indexes and TTL on `expires_at`) and waits
/// until it is active. An existing table is left as it is, apart from enabling TTL.
///
/// The SAM template defines the same table for AWS.
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    const OPERATION: &str = "create the table";
    let attribute = |name: &str| {
        built(
            OPERATION,
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build(),
        )
    };
    let key = |name: &str, kind: KeyType| {
        built(
            OPERATION,
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build(),
        )
    };
    let everything = Projection::builder()
        .projection_type(ProjectionType::All)
        .build();
    let outcome = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk")?)
        .attribute_definitions(attribute("sk")?)
        .attribute_definitions(attribute("qpos")?)
        .attribute_definitions(attribute("gsi1pk")?)
        .attribute_definitions(attribute("gsi1sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .local_secondary_indexes(built(
            OPERATION,
            LocalSecondaryIndex::builder()
                .index_name(QUEUE_INDEX)
                .key_schema(key("pk", KeyType::Hash)?)
                .key_schema(key("qpos", KeyType::Range)?)
                .projection(everything.clone())
                .build(),
        )?)
        .global_secondary_indexes(built(
            OPERATION,
            GlobalSecondaryIndex::builder()
                .index_name(POOL_INDEX)
                .key_schema(key("gsi1pk", KeyType::Hash)?)
                .key_schema(key("gsi1sk", KeyType::Range)?)
                .projection(everything)
                .build(),
        )?)
        .send()
        .await;
    match outcome {
        Ok(_) => {}
        Err(error) if error.code() == Some("ResourceInUseException") => {}
        Err(error) => return Err(from_sdk(OPERATION, table, error)),
    }

    // A new table takes a few seconds to become active on AWS.
    for attempt in 0.. {
        let description = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|error| from_sdk("describe the table", table, error))?;
        let status = description.table.and_then(|table| table.table_status);
        if status == Some(TableStatus::Active) {
            break;
        }
        if attempt >= 120 {
            return Err(StoreError::Unavailable {
                operation: OPERATION,
                reason: format!("table {table} is not active after two minutes"),
            });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    let ttl = built(
        OPERATION,
        TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(TTL_ATTRIBUTE)
            .build(),
    )?;
    let outcome = client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(ttl)
        .send()
        .await;
    match outcome {
        Ok(_) => Ok(()),
        // Already enabled.
        Err(error) if error.code() == Some("ValidationException") => Ok(()),
        Err(error) => Err(from_sdk("enable TTL", table, error)),
    }
}

// ---- Keys and items ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Key {
    pk: String,
    sk: String,
}

impl Key {
    fn new(pk: String, sk: impl Into<String>) -> Key {
        Key { pk, sk: sk.into() }
    }

    fn pool_counter(pool: &PoolName) -> Key {
        Key::new(format!("SLOT#POOL#{pool}"), "COUNT")
    }

    fn org_counter(org: &OrgName) -> Key {
        Key::new(format!("SLOT#ORG#{org}"), "COUNT")
    }

    fn repo_counter(repo: &RepoName) -> Key {
        Key::new(format!("SLOT#REPO#{repo}"), "COUNT")
    }

    fn holder(execution: &ExecutionKey) -> Key {
        Key::new(format!("SLOT#HOLDER#{execution}"), "HOLDER")
    }

    /// The partition holding a pool's waiters.
    fn queue_partition(pool: &PoolName) -> String {
        format!("QUEUE#{pool}")
    }

    fn waiter(pool: &PoolName, execution: &ExecutionKey) -> Key {
        Key::new(Key::queue_partition(pool), format!("WAITER#{execution}"))
    }

    fn runner(name: &RunnerName) -> Key {
        Key::new(format!("RUNNER#{name}"), "RUNNER")
    }

    fn watch(job_id: JobId) -> Key {
        Key::new(format!("JOB#{job_id}"), "WATCH")
    }

    fn item(&self) -> Item {
        HashMap::from([
            ("pk".to_string(), s(self.pk.clone())),
            ("sk".to_string(), s(self.sk.clone())),
        ])
    }
}

/// One query against the table or an index, with the expiry filter built in.
struct QueryRequest<'a> {
    operation: &'static str,
    index: Option<&'a str>,
    key_condition: &'a str,
    names: HashMap<String, String>,
    values: Item,
    consistent: bool,
    count_only: bool,
}

impl<'a> QueryRequest<'a> {
    fn new(operation: &'static str, now: i64) -> Self {
        QueryRequest {
            operation,
            index: None,
            key_condition: "pk = :pk",
            names: HashMap::from([("#expires_at".to_string(), TTL_ATTRIBUTE.to_string())]),
            values: HashMap::from([(":now".to_string(), n(now))]),
            consistent: false,
            count_only: false,
        }
    }

    /// The pool's live waiters, in queue order, read consistently.
    fn queue(pool: &PoolName, now: i64, count_only: bool) -> Self {
        let mut request = QueryRequest::new("read the admission queue", now);
        request.index = Some(QUEUE_INDEX);
        request.consistent = true;
        request.count_only = count_only;
        request
            .values
            .insert(":pk".into(), s(Key::queue_partition(pool)));
        request
    }
}

/// The queue position key: inverted priority, arrival in epoch milliseconds, execution.
fn queue_position(waiter: &Waiter) -> String {
    let inverted_priority = i64::from(i32::MAX) - i64::from(waiter.priority);
    let arrival = waiter
        .enqueued_at
        .timestamp_millis()
        .clamp(0, 9_999_999_999_999);
    format!("{inverted_priority:010}#{arrival:013}#{}", waiter.execution)
}

fn waiter_item(waiter: &Waiter) -> Item {
    let mut item = Key::waiter(&waiter.pool, &waiter.execution).item();
    item.insert("qpos".into(), s(queue_position(waiter)));
    item.insert("pool".into(), s(waiter.pool.as_str()));
    item.insert("execution".into(), s(waiter.execution.as_str()));
    item.insert("priority".into(), n(waiter.priority));
    item.insert("enqueued_at".into(), s(text_time(waiter.enqueued_at)));
    item.insert("task_token".into(), s(waiter.task_token.as_str()));
    item.insert(
        TTL_ATTRIBUTE.into(),
        n(whole_seconds(waiter.expires_at).timestamp()),
    );
    item
}

fn waiter_from_item(item: &Item) -> Result<Waiter, StoreError> {
    Ok(Waiter {
        pool: name(item, "pool")?,
        execution: name(item, "execution")?,
        priority: number(item, "priority")?,
        enqueued_at: time(item, "enqueued_at")?,
        task_token: token(item, "task_token")?,
        expires_at: expiry(item)?,
    })
}

fn runner_item(record: &RunnerRecord) -> Item {
    let mut item = Key::runner(&record.runner_name).item();
    item.insert("runner_name".into(), s(record.runner_name.as_str()));
    item.insert("execution".into(), s(record.execution.as_str()));
    if let Some(launched_by) = &record.launched_by {
        item.insert("launched_by".into(), s(launched_by.as_str()));
    }
    item.insert("pool".into(), s(record.pool.as_str()));
    item.insert("provider".into(), s(record.provider.clone()));
    if let Some(instance_id) = &record.instance_id {
        item.insert("instance_id".into(), s(instance_id.clone()));
    }
    item.insert("state".into(), s(record.state.as_key()));
    if let RunnerState::Busy { job_id } = record.state {
        item.insert("job_id".into(), n(job_id.0));
    }
    if let Some(watch) = &record.runner_watch {
        item.insert("runner_token".into(), s(watch.task_token.as_str()));
        if let Some(wait) = watch.wait {
            item.insert("runner_wait".into(), s(wait.as_key()));
        }
    }
    item.insert("launched_at".into(), s(text_time(record.launched_at)));
    if let Some(at) = record.job_started_at {
        item.insert("job_started_at".into(), s(text_time(at)));
    }
    if let Some(at) = record.left_at {
        item.insert("left_at".into(), s(text_time(at)));
    }
    if let Some(at) = record.torn_down_at {
        item.insert("torn_down_at".into(), s(text_time(at)));
    }
    if let Some(at) = record.reclaimed_at {
        item.insert("reclaimed_at".into(), s(text_time(at)));
    }
    item.insert(
        TTL_ATTRIBUTE.into(),
        n(whole_seconds(record.expires_at).timestamp()),
    );
    item.insert("gsi1pk".into(), s(format!("RUNNERS#{}", record.pool)));
    item.insert(
        "gsi1sk".into(),
        s(format!(
            "{}#{}",
            text_time(record.launched_at),
            record.runner_name
        )),
    );
    item
}

fn runner_from_item(item: &Item) -> Result<RunnerRecord, StoreError> {
    let state_key = string(item, "state")?;
    let state = RunnerState::from_key(state_key)
        .ok_or_else(|| corrupt(item, &format!("unknown runner state {state_key:?}")))?;
    Ok(RunnerRecord {
        runner_name: name(item, "runner_name")?,
        execution: name(item, "execution")?,
        launched_by: match item.get("launched_by") {
            Some(_) => Some(name(item, "launched_by")?),
            None => None,
        },
        pool: name(item, "pool")?,
        provider: string(item, "provider")?.to_string(),
        instance_id: match item.get("instance_id") {
            Some(_) => Some(string(item, "instance_id")?.to_string()),
            None => None,
        },
        state,
        runner_watch: runner_watch(item)?,
        launched_at: time(item, "launched_at")?,
        job_started_at: optional_time(item, "job_started_at")?,
        left_at: optional_time(item, "left_at")?,
        torn_down_at: optional_time(item, "torn_down_at")?,
        reclaimed_at: optional_time(item, "reclaimed_at")?,
        expires_at: expiry(item)?,
    })
}

/// The runner's watch: `runner_token`, and `runner_wait` when the item records it (items
/// written before it was do not: any event answers their wait).
fn runner_watch(item: &Item) -> Result<Option<RunnerWatch>, StoreError> {
    let Some(task_token) = optional_token(item, "runner_token")? else {
        return Ok(None);
    };
    let wait = match item.get("runner_wait") {
        None => None,
        Some(_) => {
            let key = string(item, "runner_wait")?;
            let wait = RunnerWait::from_key(key)
                .ok_or_else(|| corrupt(item, &format!("unknown runner wait {key:?}")))?;
            Some(wait)
        }
    };
    Ok(Some(RunnerWatch { task_token, wait }))
}

fn holder_from_item(item: &Item) -> Result<SlotHolder, StoreError> {
    Ok(SlotHolder {
        execution: name(item, "execution")?,
        pool: name(item, "pool")?,
        org: name(item, "org")?,
        repo: name(item, "repo")?,
        acquired_at: time(item, "acquired_at")?,
    })
}

fn watch_from_item(item: &Item) -> Result<JobWatch, StoreError> {
    Ok(JobWatch {
        job_id: JobId(number(item, "job_id")?),
        execution: name(item, "execution")?,
        task_token: token(item, "task_token")?,
        expires_at: expiry(item)?,
    })
}

fn counter_value(item: &Item, key: &Key) -> Result<u32, StoreError> {
    match item.get("count") {
        None => Ok(0),
        Some(_) => {
            let count: i64 = number(item, "count")?;
            // A negative count would mean a release without an acquire: report it rather
            // than let it admit more jobs than the ceiling.
            u32::try_from(count).map_err(|_| StoreError::Corrupt {
                key: key.pk.clone(),
                reason: format!("slot counter is {count}"),
            })
        }
    }
}

fn item_is_live(item: &Item, now: i64) -> bool {
    match item.get(TTL_ATTRIBUTE).map(AttributeValue::as_n) {
        Some(Ok(seconds)) => seconds.parse::<i64>().is_ok_and(|seconds| seconds > now),
        // Items without an expiry never expire.
        _ => true,
    }
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Fixed-width RFC 3339 in UTC: sorts as text in time order.
fn text_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn item_key(item: &Item) -> String {
    let part = |name: &str| {
        item.get(name)
            .and_then(|value| value.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    format!("{}/{}", part("pk"), part("sk"))
}

fn corrupt(item: &Item, reason: &str) -> StoreError {
    StoreError::Corrupt {
        key: item_key(item),
        reason: reason.to_string(),
    }
}

fn string<'a>(item: &'a Item, attribute: &str) -> Result<&'a str, StoreError> {
    match item.get(attribute).map(AttributeValue::as_s) {
        Some(Ok(value)) => Ok(value),
        Some(Err(_)) => Err(corrupt(item, &format!("{attribute} is not a string"))),
        None => Err(corrupt(item, &format!("{attribute} is missing"))),
    }
}

fn number<T: std::str::FromStr>(item: &Item, attribute: &str) -> Result<T, StoreError> {
    match item.get(attribute).map(AttributeValue::as_n) {
        Some(Ok(value)) => value
            .parse()
            .map_err(|_| corrupt(item, &format!("{attribute} is out of range: {value}"))),
        Some(Err(_)) => Err(corrupt(item, &format!("{attribute} is not a number"))),
        None => Err(corrupt(item, &format!("{attribute} is missing"))),
    }
}

fn name<T>(item: &Item, attribute: &str) -> Result<T, StoreError>
where
    T: std::str::FromStr<Err = crate::InvalidName>,
{
    string(item, attribute)?
        .parse()
        .map_err(|error: crate::InvalidName| corrupt(item, &error.to_string()))
}

fn token(item: &Item, attribute: &str) -> Result<TaskToken, StoreError> {
    TaskToken::new(string(item, attribute)?).map_err(|error| corrupt(item, &error.to_string()))
}

fn optional_token(item: &Item, attribute: &str) -> Result<Option<TaskToken>, StoreError> {
    match item.get(attribute) {
        Some(_) => token(item, attribute).map(Some),
        None => Ok(None),
    }
}

fn time(item: &Item, attribute: &str) -> Result<DateTime<Utc>, StoreError> {
    let text = string(item, attribute)?;
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|error| corrupt(item, &format!("{attribute} {text:?}: {error}")))
}

fn optional_time(item: &Item, attribute: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    match item.get(attribute) {
        Some(_) => time(item, attribute).map(Some),
        None => Ok(None),
    }
}

fn expiry(item: &Item) -> Result<DateTime<Utc>, StoreError> {
    let seconds: i64 = number(item, TTL_ATTRIBUTE)?;
    DateTime::from_timestamp(seconds, 0)
        .ok_or_else(|| corrupt(item, &format!("expires_at {seconds} is out of range")))
}

fn built<T>(operation: &'static str, result: Result<T, BuildError>) -> Result<T, StoreError> {
    result.map_err(|error| StoreError::Rejected {
        operation,
        code: "BuildError".to_string(),
        message: error.to_string(),
    })
}

fn is_condition_failure<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    error.code() == Some("ConditionalCheckFailedException")
}

fn cancellation_reasons<R>(
    error: &SdkError<TransactWriteItemsError, R>,
) -> Option<&[CancellationReason]> {
    match error.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
            Some(cancelled.cancellation_reasons())
        }
        _ => None,
    }
}

fn reason_is(reason: Option<&CancellationReason>, code: &str) -> bool {
    reason.and_then(|reason| reason.code()) == Some(code)
}
