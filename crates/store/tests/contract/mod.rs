//! The contract every `Store` implementation passes: one async fn per behaviour, run by
//! `tests/memory.rs` and `tests/dynamodb.rs` through [`contract_tests!`].
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use runway_clock::{Clock, SharedClock, Sleep};
use runway_store::{
    CeilingKind, Ceilings, ExecutionKey, JobId, JobWatch, Load, OrgName, PoolName, PutRunner,
    Release, RepoName, RunnerEvent, RunnerName, RunnerRecord, RunnerState, RunnerWait, RunnerWatch,
    SlotClaim, SlotOutcome, StateChange, Store, TaskToken, Waiter,
};

type Advance = Box<dyn Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// A fresh, empty store and the means to move its clock.
pub struct Fixture {
    pub store: Arc<dyn Store>,
    clock: SharedClock,
    advance: Advance,
}

impl Fixture {
    pub fn new(store: Arc<dyn Store>, clock: SharedClock, advance: Advance) -> Self {
        Fixture {
            store,
            clock,
            advance,
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub async fn advance(&self, by: Duration) {
        (self.advance)(by).await
    }
}

/// A clock that moves only when told, for stores whose tests cannot pause tokio's time
/// (DynamoDB over HTTP).
#[derive(Debug)]
pub struct SteppedClock {
    now: Mutex<DateTime<Utc>>,
}

impl SteppedClock {
    pub fn new() -> Arc<SteppedClock> {
        let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        Arc::new(SteppedClock {
            now: Mutex::new(start),
        })
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap();
        *now += TimeDelta::from_std(by).unwrap();
    }
}

impl Clock for SteppedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> Sleep {
        let remaining = (deadline - self.now()).to_std().unwrap_or(Duration::ZERO);
        Box::pin(tokio::time::sleep(remaining))
    }
}

/// Generates one `#[test]` per behaviour for a store, given the test attribute and an async
/// fn returning a fresh [`Fixture`].
#[macro_export]
macro_rules! contract_tests {
    (#[$test:meta] $fixture:path) => {
        contract_tests!(@each #[$test] $fixture;
            acquire_counts_once_and_release_is_idempotent,
            every_ceiling_is_enforced_and_reported,
            org_and_repo_counts_span_pools,
            concurrent_acquires_never_exceed_the_ceiling,
            concurrent_acquires_by_one_execution_count_once,
            concurrent_releases_take_back_once,
            load_reports_running_and_waiting,
            slot_holders_list_a_pool_oldest_first,
            waiters_leave_by_priority_then_arrival,
            parking_again_replaces_the_entry,
            concurrent_pops_hand_out_each_waiter_once,
            removed_and_expired_waiters_are_gone,
            runner_records_are_created_once,
            runner_transitions_are_conditional_and_gone_is_final,
            a_runner_records_when_it_first_took_a_job_left_was_torn_down_and_reclaimed,
            runner_tokens_are_taken_once,
            a_runner_event_takes_only_a_wait_it_answers,
            a_step_takes_back_only_its_own_runner_token,
            a_runner_token_is_put_back_only_where_none_was_set,
            runners_are_listed_by_pool_and_age,
            a_warm_runner_is_adopted_once_idle_first,
            concurrent_adopters_never_share_a_warm_runner,
            instances_are_recorded_and_booting_runners_counted,
            expired_runners_read_as_absent,
            job_watches_wake_once,
            concurrent_takes_of_a_job_watch_wake_once,
            a_step_takes_back_only_its_own_job_watch,
            a_job_watch_is_put_back_only_where_none_was_registered,
            expired_job_watches_read_as_absent,
        );
    };
    (@each #[$test:meta] $fixture:path; $($name:ident,)*) => {
        $(
            #[$test]
            async fn $name() {
                let fixture = $fixture().await;
                contract::$name(&fixture).await;
            }
        )*
    };
}

// ---- Builders ---------------------------------------------------------------------------------

pub fn execution(name: &str) -> ExecutionKey {
    ExecutionKey::new(name).unwrap()
}

pub fn pool(name: &str) -> PoolName {
    PoolName::new(name).unwrap()
}

pub fn org(name: &str) -> OrgName {
    OrgName::new(name).unwrap()
}

pub fn repo(name: &str) -> RepoName {
    RepoName::new(name).unwrap()
}

pub fn token(text: &str) -> TaskToken {
    TaskToken::new(text).unwrap()
}

pub fn runner_name(name: &str) -> RunnerName {
    RunnerName::new(name).unwrap()
}

pub fn claim(
    exec: &str,
    pool_name: &str,
    org_name: &str,
    repo_name: &str,
    ceilings: Ceilings,
) -> SlotClaim {
    SlotClaim {
        execution: execution(exec),
        pool: pool(pool_name),
        org: org(org_name),
        repo: repo(repo_name),
        ceilings,
    }
}

pub fn pool_ceiling(limit: u32) -> Ceilings {
    Ceilings {
        pool: limit,
        org: None,
        repo: None,
    }
}

fn seconds(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn after(fixture: &Fixture, secs: i64) -> DateTime<Utc> {
    fixture.now() + TimeDelta::seconds(secs)
}

fn waiter(
    fixture: &Fixture,
    pool_name: &str,
    exec: &str,
    priority: i32,
    arrival_ms: i64,
) -> Waiter {
    Waiter {
        pool: pool(pool_name),
        execution: execution(exec),
        priority,
        enqueued_at: fixture.now() + TimeDelta::milliseconds(arrival_ms),
        task_token: token(&format!("token-{exec}")),
        expires_at: after(fixture, 3600),
    }
}

fn runner(fixture: &Fixture, name: &str, pool_name: &str, launched_secs_ago: i64) -> RunnerRecord {
    RunnerRecord {
        runner_name: runner_name(name),
        execution: execution(&format!("exec-{name}")),
        launched_by: None,
        pool: pool(pool_name),
        provider: "ec2".to_string(),
        instance_id: Some(format!("i-{name}")),
        state: RunnerState::Booting,
        runner_watch: None,
        launched_at: fixture.now() - TimeDelta::seconds(launched_secs_ago),
        job_started_at: None,
        left_at: None,
        torn_down_at: None,
        reclaimed_at: None,
        expires_at: after(fixture, 3600),
    }
}

fn names(waiters: &[Waiter]) -> Vec<String> {
    waiters.iter().map(|w| w.execution.to_string()).collect()
}

// ---- Slots ------------------------------------------------------------------------------------

pub async fn acquire_counts_once_and_release_is_idempotent(fixture: &Fixture) {
    let store = &fixture.store;
    let job = claim("exec-1", "linux", "octo", "octo/app", pool_ceiling(5));
    assert_eq!(
        store.acquire_slot(&job).await.unwrap(),
        SlotOutcome::Acquired
    );
    assert_eq!(
        store.acquire_slot(&job).await.unwrap(),
        SlotOutcome::AlreadyHeld
    );
    let load = store.load(&job.pool, &job.org, &job.repo).await.unwrap();
    assert_eq!(
        (load.pool_running, load.org_running, load.repo_running),
        (1, 1, 1)
    );

    let holder = store.slot_holder(&job.execution).await.unwrap().unwrap();
    assert_eq!(
        (&holder.pool, &holder.org, &holder.repo),
        (&job.pool, &job.org, &job.repo)
    );

    assert_eq!(
        store.release_slot(&job.execution).await.unwrap(),
        Release::Released
    );
    assert_eq!(
        store.release_slot(&job.execution).await.unwrap(),
        Release::NotHeld
    );
    assert_eq!(
        store
            .release_slot(&execution("never-acquired"))
            .await
            .unwrap(),
        Release::NotHeld
    );
    let load = store.load(&job.pool, &job.org, &job.repo).await.unwrap();
    assert_eq!(load, Load::default());
    assert!(store.slot_holder(&job.execution).await.unwrap().is_none());

    // Released slots can be taken again, also by the same execution.
    assert_eq!(
        store.acquire_slot(&job).await.unwrap(),
        SlotOutcome::Acquired
    );
}

pub async fn every_ceiling_is_enforced_and_reported(fixture: &Fixture) {
    let store = &fixture.store;
    let ceilings = Ceilings {
        pool: 3,
        org: Some(2),
        repo: Some(1),
    };
    let first = claim("a", "linux", "octo", "octo/app", ceilings);
    assert_eq!(
        store.acquire_slot(&first).await.unwrap(),
        SlotOutcome::Acquired
    );

    let same_repo = claim("b", "linux", "octo", "octo/app", ceilings);
    assert_eq!(
        store.acquire_slot(&same_repo).await.unwrap(),
        SlotOutcome::Full {
            ceiling: CeilingKind::Repo,
            limit: 1,
            current: 1
        }
    );

    let other_repo = claim("c", "linux", "octo", "octo/lib", ceilings);
    assert_eq!(
        store.acquire_slot(&other_repo).await.unwrap(),
        SlotOutcome::Acquired
    );
    let third_repo = claim("d", "linux", "octo", "octo/web", ceilings);
    assert_eq!(
        store.acquire_slot(&third_repo).await.unwrap(),
        SlotOutcome::Full {
            ceiling: CeilingKind::Org,
            limit: 2,
            current: 2
        }
    );

    let other_org = claim("e", "linux", "acme", "acme/app", ceilings);
    assert_eq!(
        store.acquire_slot(&other_org).await.unwrap(),
        SlotOutcome::Acquired
    );
    let pool_full = claim("f", "linux", "globex", "globex/app", ceilings);
    assert_eq!(
        store.acquire_slot(&pool_full).await.unwrap(),
        SlotOutcome::Full {
            ceiling: CeilingKind::Pool,
            limit: 3,
            current: 3
        }
    );

    // A refused claim counted nothing.
    let load = store
        .load(&pool("linux"), &org("globex"), &repo("globex/app"))
        .await
        .unwrap();
    assert_eq!(
        (load.pool_running, load.org_running, load.repo_running),
        (3, 0, 0)
    );

    // A lowered ceiling refuses even below the current count, and says how full it is.
    let lowered = claim("g", "linux", "globex", "globex/app", pool_ceiling(2));
    assert_eq!(
        store.acquire_slot(&lowered).await.unwrap(),
        SlotOutcome::Full {
            ceiling: CeilingKind::Pool,
            limit: 2,
            current: 3
        }
    );
    let zero = claim("h", "empty", "globex", "globex/app", pool_ceiling(0));
    assert_eq!(
        store.acquire_slot(&zero).await.unwrap(),
        SlotOutcome::Full {
            ceiling: CeilingKind::Pool,
            limit: 0,
            current: 0
        }
    );

    assert_eq!(
        store.release_slot(&first.execution).await.unwrap(),
        Release::Released
    );
    assert_eq!(
        store.acquire_slot(&same_repo).await.unwrap(),
        SlotOutcome::Acquired
    );
}

pub async fn org_and_repo_counts_span_pools(fixture: &Fixture) {
    let store = &fixture.store;
    let ceilings = Ceilings {
        pool: 10,
        org: Some(2),
        repo: None,
    };
    for (exec, pool_name) in [("a", "linux"), ("b", "arm")] {
        let job = claim(exec, pool_name, "octo", "octo/app", ceilings);
        assert_eq!(
            store.acquire_slot(&job).await.unwrap(),
            SlotOutcome::Acquired
        );
    }
    let third = claim("c", "gpu", "octo", "octo/app", ceilings);
    assert!(matches!(
        store.acquire_slot(&third).await.unwrap(),
        SlotOutcome::Full {
            ceiling: CeilingKind::Org,
            ..
        }
    ));
    let load = store
        .load(&pool("linux"), &org("octo"), &repo("octo/app"))
        .await
        .unwrap();
    assert_eq!(
        (load.pool_running, load.org_running, load.repo_running),
        (1, 2, 2)
    );
}

pub async fn concurrent_acquires_never_exceed_the_ceiling(fixture: &Fixture) {
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..50 {
        let store = fixture.store.clone();
        tasks.spawn(async move {
            let job = claim(
                &format!("exec-{index}"),
                "linux",
                "octo",
                &format!("octo/r{}", index % 7),
                pool_ceiling(10),
            );
            store.acquire_slot(&job).await.unwrap()
        });
    }
    let mut acquired = 0;
    while let Some(outcome) = tasks.join_next().await {
        match outcome.unwrap() {
            SlotOutcome::Acquired => acquired += 1,
            SlotOutcome::Full {
                ceiling: CeilingKind::Pool,
                limit: 10,
                current,
            } => assert!(current >= 10, "full at {current} of 10"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(acquired, 10);
    let load = fixture
        .store
        .load(&pool("linux"), &org("octo"), &repo("octo/r0"))
        .await
        .unwrap();
    assert_eq!((load.pool_running, load.org_running), (10, 10));
    assert_eq!(
        fixture
            .store
            .slot_holders(&pool("linux"))
            .await
            .unwrap()
            .len(),
        10
    );
}

pub async fn concurrent_acquires_by_one_execution_count_once(fixture: &Fixture) {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let store = fixture.store.clone();
        tasks.spawn(async move {
            let job = claim("retried", "linux", "octo", "octo/app", pool_ceiling(10));
            store.acquire_slot(&job).await.unwrap()
        });
    }
    let mut outcomes = HashMap::new();
    while let Some(outcome) = tasks.join_next().await {
        *outcomes
            .entry(format!("{:?}", outcome.unwrap()))
            .or_insert(0) += 1;
    }
    assert_eq!(outcomes.get("Acquired"), Some(&1), "{outcomes:?}");
    assert_eq!(outcomes.get("AlreadyHeld"), Some(&19), "{outcomes:?}");
    let load = fixture
        .store
        .load(&pool("linux"), &org("octo"), &repo("octo/app"))
        .await
        .unwrap();
    assert_eq!(
        (load.pool_running, load.org_running, load.repo_running),
        (1, 1, 1)
    );
}

pub async fn concurrent_releases_take_back_once(fixture: &Fixture) {
    let store = &fixture.store;
    for exec in ["a", "b"] {
        let job = claim(exec, "linux", "octo", "octo/app", pool_ceiling(10));
        assert_eq!(
            store.acquire_slot(&job).await.unwrap(),
            SlotOutcome::Acquired
        );
    }
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let store = store.clone();
        tasks.spawn(async move { store.release_slot(&execution("a")).await.unwrap() });
    }
    let mut released = 0;
    while let Some(outcome) = tasks.join_next().await {
        if outcome.unwrap() == Release::Released {
            released += 1;
        }
    }
    assert_eq!(released, 1);
    let load = store
        .load(&pool("linux"), &org("octo"), &repo("octo/app"))
        .await
        .unwrap();
    assert_eq!(
        (load.pool_running, load.org_running, load.repo_running),
        (1, 1, 1)
    );
}

pub async fn load_reports_running_and_waiting(fixture: &Fixture) {
    let store = &fixture.store;
    let job = claim("running", "linux", "octo", "octo/app", pool_ceiling(1));
    store.acquire_slot(&job).await.unwrap();
    for (index, exec) in ["w1", "w2", "w3"].into_iter().enumerate() {
        store
            .enqueue_waiter(&waiter(fixture, "linux", exec, 0, index as i64))
            .await
            .unwrap();
    }
    store
        .enqueue_waiter(&waiter(fixture, "other", "elsewhere", 0, 0))
        .await
        .unwrap();
    let load = store
        .load(&pool("linux"), &org("octo"), &repo("octo/app"))
        .await
        .unwrap();
    assert_eq!(
        load,
        Load {
            pool_running: 1,
            org_running: 1,
            repo_running: 1,
            pool_waiting: 3
        }
    );
    let untouched = store
        .load(&pool("nothing"), &org("nobody"), &repo("nobody/none"))
        .await
        .unwrap();
    assert_eq!(untouched, Load::default());
}

pub async fn slot_holders_list_a_pool_oldest_first(fixture: &Fixture) {
    let store = &fixture.store;
    for exec in ["first", "second"] {
        store
            .acquire_slot(&claim(exec, "linux", "octo", "octo/app", pool_ceiling(5)))
            .await
            .unwrap();
        fixture.advance(seconds(1)).await;
    }
    store
        .acquire_slot(&claim(
            "arm-job",
            "arm",
            "octo",
            "octo/app",
            pool_ceiling(5),
        ))
        .await
        .unwrap();
    let holders = store.slot_holders(&pool("linux")).await.unwrap();
    let order: Vec<String> = holders.iter().map(|h| h.execution.to_string()).collect();
    assert_eq!(order, vec!["first", "second"]);
    assert!(holders[0].acquired_at < holders[1].acquired_at);
    // Holders do not expire: a leaked count is the reaper's to release, not TTL's.
    fixture.advance(seconds(30 * 24 * 3600)).await;
    assert_eq!(store.slot_holders(&pool("linux")).await.unwrap().len(), 2);
    assert!(
        store
            .slot_holder(&execution("first"))
            .await
            .unwrap()
            .is_some()
    );
}

// ---- Admission queues ---------------------------------------------------------------------------

pub async fn waiters_leave_by_priority_then_arrival(fixture: &Fixture) {
    let store = &fixture.store;
    let entries = [
        ("late-normal", 0, 30),
        ("urgent", 10, 50),
        ("early-normal", 0, 10),
        ("low", -5, 0),
        ("tie-b", 0, 20),
        ("tie-a", 0, 20),
        ("most-urgent", i32::MAX, 99),
        ("least", i32::MIN, 0),
    ];
    for (exec, priority, arrival) in entries {
        store
            .enqueue_waiter(&waiter(fixture, "linux", exec, priority, arrival))
            .await
            .unwrap();
    }
    let expected = [
        "most-urgent",
        "urgent",
        "early-normal",
        "tie-a",
        "tie-b",
        "late-normal",
        "low",
        "least",
    ];
    let listed = store.waiters(&pool("linux")).await.unwrap();
    assert_eq!(names(&listed), expected);
    assert_eq!(listed[1], waiter(fixture, "linux", "urgent", 10, 50));
    for (index, exec) in expected.iter().enumerate() {
        assert_eq!(
            store
                .position(&pool("linux"), &execution(exec))
                .await
                .unwrap(),
            Some(index as u32)
        );
    }
    assert_eq!(
        store
            .position(&pool("linux"), &execution("absent"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .position(&pool("arm"), &execution("urgent"))
            .await
            .unwrap(),
        None
    );

    let mut popped = Vec::new();
    while let Some(next) = store.pop_next_waiter(&pool("linux")).await.unwrap() {
        popped.push(next.execution.to_string());
    }
    assert_eq!(popped, expected);
    assert!(store.waiters(&pool("linux")).await.unwrap().is_empty());
    assert!(
        store
            .pop_next_waiter(&pool("never-used"))
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn parking_again_replaces_the_entry(fixture: &Fixture) {
    let store = &fixture.store;
    for (exec, arrival) in [("a", 0), ("b", 10), ("c", 20)] {
        store
            .enqueue_waiter(&waiter(fixture, "linux", exec, 0, arrival))
            .await
            .unwrap();
    }
    // Heartbeat: the same execution parks again with a new token and its first arrival time.
    let mut again = waiter(fixture, "linux", "a", 0, 0);
    again.task_token = token("token-a-second");
    store.enqueue_waiter(&again).await.unwrap();
    let listed = store.waiters(&pool("linux")).await.unwrap();
    assert_eq!(names(&listed), ["a", "b", "c"]);
    assert_eq!(listed[0].task_token, token("token-a-second"));

    // A new priority moves the entry; there is still only one.
    let mut promoted = waiter(fixture, "linux", "c", 5, 20);
    promoted.task_token = token("token-c-second");
    store.enqueue_waiter(&promoted).await.unwrap();
    assert_eq!(
        names(&store.waiters(&pool("linux")).await.unwrap()),
        ["c", "a", "b"]
    );

    let first = store
        .pop_next_waiter(&pool("linux"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.task_token, token("token-c-second"));
    assert_eq!(
        store
            .load(&pool("linux"), &org("o"), &repo("o/r"))
            .await
            .unwrap()
            .pool_waiting,
        2
    );
}

pub async fn concurrent_pops_hand_out_each_waiter_once(fixture: &Fixture) {
    let store = &fixture.store;
    for index in 0..20 {
        store
            .enqueue_waiter(&waiter(
                fixture,
                "linux",
                &format!("w{index:02}"),
                index % 3,
                index as i64,
            ))
            .await
            .unwrap();
    }
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let store = store.clone();
        tasks.spawn(async move { store.pop_next_waiter(&pool("linux")).await.unwrap() });
    }
    let mut popped = Vec::new();
    let mut empty = 0;
    while let Some(outcome) = tasks.join_next().await {
        match outcome.unwrap() {
            Some(next) => popped.push(next.execution.to_string()),
            None => empty += 1,
        }
    }
    let distinct: HashSet<&String> = popped.iter().collect();
    assert_eq!(popped.len(), 20, "{popped:?}");
    assert_eq!(distinct.len(), 20, "a waiter was popped twice: {popped:?}");
    assert_eq!(empty, 10);
}

pub async fn removed_and_expired_waiters_are_gone(fixture: &Fixture) {
    let store = &fixture.store;
    store
        .enqueue_waiter(&waiter(fixture, "linux", "stays", 0, 30))
        .await
        .unwrap();
    store
        .enqueue_waiter(&waiter(fixture, "linux", "removed", 0, 0))
        .await
        .unwrap();
    let mut short = waiter(fixture, "linux", "expires", 9, 0);
    short.expires_at = after(fixture, 60);
    store.enqueue_waiter(&short).await.unwrap();

    assert!(
        store
            .remove_waiter(&pool("linux"), &execution("removed"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .remove_waiter(&pool("linux"), &execution("removed"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .remove_waiter(&pool("arm"), &execution("stays"))
            .await
            .unwrap()
    );
    assert_eq!(
        names(&store.waiters(&pool("linux")).await.unwrap()),
        ["expires", "stays"]
    );

    fixture.advance(seconds(59)).await;
    assert_eq!(
        store
            .position(&pool("linux"), &execution("stays"))
            .await
            .unwrap(),
        Some(1)
    );
    fixture.advance(seconds(1)).await;
    assert_eq!(
        names(&store.waiters(&pool("linux")).await.unwrap()),
        ["stays"]
    );
    assert_eq!(
        store
            .position(&pool("linux"), &execution("stays"))
            .await
            .unwrap(),
        Some(0)
    );
    assert_eq!(
        store
            .position(&pool("linux"), &execution("expires"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .load(&pool("linux"), &org("o"), &repo("o/r"))
            .await
            .unwrap()
            .pool_waiting,
        1
    );
    let next = store
        .pop_next_waiter(&pool("linux"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.execution, execution("stays"));
    assert!(
        store
            .pop_next_waiter(&pool("linux"))
            .await
            .unwrap()
            .is_none()
    );
}

// ---- Runners ----------------------------------------------------------------------------------

pub async fn runner_records_are_created_once(fixture: &Fixture) {
    let store = &fixture.store;
    let record = runner(fixture, "runner-1", "linux", 0);
    assert_eq!(store.put_runner(&record).await.unwrap(), PutRunner::Created);
    assert_eq!(
        store.get_runner(&record.runner_name).await.unwrap(),
        Some(record.clone())
    );

    let mut clash = record.clone();
    clash.execution = execution("someone-else");
    assert_eq!(
        store.put_runner(&clash).await.unwrap(),
        PutRunner::Exists {
            existing: Box::new(record.clone())
        }
    );
    assert_eq!(
        store.get_runner(&record.runner_name).await.unwrap(),
        Some(record.clone())
    );

    assert!(store.delete_runner(&record.runner_name).await.unwrap());
    assert!(!store.delete_runner(&record.runner_name).await.unwrap());
    assert_eq!(store.get_runner(&record.runner_name).await.unwrap(), None);
    assert_eq!(store.put_runner(&clash).await.unwrap(), PutRunner::Created);

    let mut bare = runner(fixture, "runner-2", "linux", 0);
    bare.instance_id = None;
    bare.runner_watch = Some(RunnerWatch::new(token("launch-token"), RunnerWait::Gone));
    bare.state = RunnerState::Busy { job_id: JobId(77) };
    store.put_runner(&bare).await.unwrap();
    assert_eq!(
        store.get_runner(&bare.runner_name).await.unwrap(),
        Some(bare)
    );
    // A watch recorded without its wait, as records written before waits were.
    let mut old = runner(fixture, "runner-3", "linux", 0);
    old.runner_watch = Some(RunnerWatch {
        task_token: token("old-token"),
        wait: None,
    });
    store.put_runner(&old).await.unwrap();
    assert_eq!(store.get_runner(&old.runner_name).await.unwrap(), Some(old));
}

/// The runner's current watch.
async fn watch_of(store: &Arc<dyn Store>, name: &RunnerName) -> Option<RunnerWatch> {
    store.get_runner(name).await.unwrap().unwrap().runner_watch
}

fn watching(name: &str, wait: RunnerWait) -> Option<RunnerWatch> {
    Some(RunnerWatch::new(token(name), wait))
}

pub async fn runner_transitions_are_conditional_and_gone_is_final(fixture: &Fixture) {
    let store = &fixture.store;
    let record = runner(fixture, "runner-1", "linux", 0);
    let name = record.runner_name.clone();
    store.put_runner(&record).await.unwrap();

    let busy = RunnerState::Busy { job_id: JobId(42) };
    // A busy event before the runner was seen idle: refused when idle is expected.
    assert_eq!(
        store
            .set_runner_state(&name, busy, Some(RunnerState::Idle))
            .await
            .unwrap(),
        StateChange::Stale {
            current: RunnerState::Booting
        }
    );
    assert_eq!(
        store
            .set_runner_state(&name, RunnerState::Idle, Some(RunnerState::Booting))
            .await
            .unwrap(),
        StateChange::Applied
    );
    assert_eq!(
        store
            .set_runner_state(&name, busy, Some(RunnerState::Idle))
            .await
            .unwrap(),
        StateChange::Applied
    );
    assert_eq!(
        store
            .set_runner_state(
                &name,
                RunnerState::Gone,
                Some(RunnerState::Busy { job_id: JobId(41) })
            )
            .await
            .unwrap(),
        StateChange::Stale { current: busy }
    );
    assert_eq!(
        store
            .set_runner_state(&name, RunnerState::Gone, Some(busy))
            .await
            .unwrap(),
        StateChange::Applied
    );
    // Gone is final, even without an expected state; going gone again is harmless.
    assert_eq!(
        store
            .set_runner_state(&name, RunnerState::Idle, None)
            .await
            .unwrap(),
        StateChange::Stale {
            current: RunnerState::Gone
        }
    );
    assert_eq!(
        store
            .set_runner_state(&name, RunnerState::Gone, None)
            .await
            .unwrap(),
        StateChange::Applied
    );
    let stored = store.get_runner(&name).await.unwrap().unwrap();
    assert_eq!(stored.state, RunnerState::Gone);
    assert_eq!(stored.instance_id, record.instance_id);
    assert_eq!(
        store
            .set_runner_state(&runner_name("nobody"), RunnerState::Idle, None)
            .await
            .unwrap(),
        StateChange::NotFound
    );
}

pub async fn a_runner_records_when_it_first_took_a_job_left_was_torn_down_and_reclaimed(
    fixture: &Fixture,
) {
    let store = &fixture.store;
    let record = runner(fixture, "runner-timed", "linux", 0);
    let name = record.runner_name.clone();
    let launched = record.launched_at;
    store.put_runner(&record).await.unwrap();
    fixture.advance(Duration::from_secs(20)).await;
    store
        .set_runner_state(&name, RunnerState::Idle, None)
        .await
        .unwrap();
    let stored = store.get_runner(&name).await.unwrap().unwrap();
    assert_eq!((stored.job_started_at, stored.left_at), (None, None));

    fixture.advance(Duration::from_secs(10)).await;
    let busy = RunnerState::Busy { job_id: JobId(7) };
    store.set_runner_state(&name, busy, None).await.unwrap();
    let started = fixture.now();
    fixture.advance(Duration::from_secs(5)).await;
    // A redelivered event keeps the first time.
    store.set_runner_state(&name, busy, None).await.unwrap();
    fixture.advance(Duration::from_secs(60)).await;
    store
        .set_runner_state(&name, RunnerState::Gone, None)
        .await
        .unwrap();
    let left = fixture.now();
    fixture.advance(Duration::from_secs(30)).await;
    store
        .set_runner_state(&name, RunnerState::Gone, None)
        .await
        .unwrap();

    let stored = store.get_runner(&name).await.unwrap().unwrap();
    assert_eq!(stored.job_started_at, Some(started));
    assert_eq!(stored.left_at, Some(left));
    assert_eq!(stored.seconds_to_first_job(), Some(30.0));
    assert_eq!(stored.job_seconds(fixture.now()), 65.0);
    assert_eq!(launched + TimeDelta::seconds(30), started);

    // The first teardown is told it is the first; a retried one is not.
    let torn = fixture.now();
    assert!(store.set_runner_torn_down(&name).await.unwrap());
    fixture.advance(Duration::from_secs(5)).await;
    assert!(!store.set_runner_torn_down(&name).await.unwrap());
    let stored = store.get_runner(&name).await.unwrap().unwrap();
    assert_eq!(stored.torn_down_at, Some(torn));
    assert_eq!(stored.left_at, Some(left), "it left before its teardown");

    // A spot interruption warning is recorded once, even after the teardown.
    let reclaimed = fixture.now();
    assert!(store.set_runner_reclaimed(&name).await.unwrap());
    fixture.advance(Duration::from_secs(5)).await;
    assert!(!store.set_runner_reclaimed(&name).await.unwrap());
    let stored = store.get_runner(&name).await.unwrap().unwrap();
    assert_eq!(stored.reclaimed_at, Some(reclaimed));
    assert_eq!(stored.torn_down_at, Some(torn), "unchanged by the warning");
    assert!(
        !store
            .set_runner_reclaimed(&runner_name("nobody"))
            .await
            .unwrap()
    );

    // A runner torn down without a job leaves at its teardown.
    let idle = runner(fixture, "runner-untimed", "linux", 0);
    store.put_runner(&idle).await.unwrap();
    let torn = fixture.now();
    assert!(store.set_runner_torn_down(&idle.runner_name).await.unwrap());
    let stored = store.get_runner(&idle.runner_name).await.unwrap().unwrap();
    assert_eq!(stored.state, RunnerState::Gone);
    assert_eq!(
        (stored.left_at, stored.torn_down_at),
        (Some(torn), Some(torn))
    );
    assert_eq!(stored.seconds_to_first_job(), None);
    assert!(
        !store
            .set_runner_torn_down(&runner_name("nobody"))
            .await
            .unwrap()
    );
}

pub async fn a_step_takes_back_only_its_own_runner_token(fixture: &Fixture) {
    let store = &fixture.store;
    let record = runner(fixture, "runner-own", "linux", 0);
    let name = record.runner_name.clone();
    store.put_runner(&record).await.unwrap();
    assert!(
        store
            .set_runner_token(&name, &token("wait-gone"), RunnerWait::Gone)
            .await
            .unwrap()
    );
    assert!(
        !store
            .take_runner_token_of(&name, &token("wait-busy"))
            .await
            .unwrap()
    );
    assert_eq!(
        watch_of(store, &name).await,
        watching("wait-gone", RunnerWait::Gone)
    );
    assert!(
        store
            .take_runner_token_of(&name, &token("wait-gone"))
            .await
            .unwrap()
    );
    assert_eq!(watch_of(store, &name).await, None);
    assert!(
        !store
            .take_runner_token_of(&runner_name("nobody"), &token("t"))
            .await
            .unwrap()
    );
}

pub async fn a_runner_token_is_put_back_only_where_none_was_set(fixture: &Fixture) {
    let store = &fixture.store;
    let record = runner(fixture, "runner-restore", "linux", 0);
    let name = record.runner_name.clone();
    store.put_runner(&record).await.unwrap();
    let taken = RunnerWatch::new(token("taken"), RunnerWait::Busy);
    assert!(store.restore_runner_token(&name, &taken).await.unwrap());
    assert_eq!(watch_of(store, &name).await, Some(taken.clone()));
    store
        .take_runner_token_for(&name, RunnerEvent::Started)
        .await
        .unwrap();
    store
        .set_runner_token(&name, &token("next-step"), RunnerWait::Gone)
        .await
        .unwrap();
    assert!(!store.restore_runner_token(&name, &taken).await.unwrap());
    assert_eq!(
        watch_of(store, &name).await,
        watching("next-step", RunnerWait::Gone)
    );
    assert!(
        !store
            .restore_runner_token(&runner_name("nobody"), &taken)
            .await
            .unwrap()
    );
    // A watch put back keeps what it waits for, or that it said nothing (an old record's).
    store
        .take_runner_token_of(&name, &token("next-step"))
        .await
        .unwrap();
    let old = RunnerWatch {
        task_token: token("old"),
        wait: None,
    };
    assert!(store.restore_runner_token(&name, &old).await.unwrap());
    assert_eq!(watch_of(store, &name).await, Some(old.clone()));
    assert_eq!(
        store
            .take_runner_token_for(&name, RunnerEvent::Started)
            .await
            .unwrap(),
        Some(old)
    );
}

pub async fn runner_tokens_are_taken_once(fixture: &Fixture) {
    let store = &fixture.store;
    let record = runner(fixture, "runner-1", "linux", 0);
    let name = record.runner_name.clone();
    store.put_runner(&record).await.unwrap();
    for event in [RunnerEvent::Started, RunnerEvent::Completed] {
        assert_eq!(
            store.take_runner_token_for(&name, event).await.unwrap(),
            None
        );
    }
    for (wait, event) in [
        (RunnerWait::Busy, RunnerEvent::Started),
        (RunnerWait::Gone, RunnerEvent::Completed),
    ] {
        assert!(
            store
                .set_runner_token(&name, &token("wait-idle"), wait)
                .await
                .unwrap()
        );
        assert_eq!(watch_of(store, &name).await, watching("wait-idle", wait));

        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let store = store.clone();
            let name = name.clone();
            tasks.spawn(async move { store.take_runner_token_for(&name, event).await.unwrap() });
        }
        let mut taken = Vec::new();
        while let Some(outcome) = tasks.join_next().await {
            taken.extend(outcome.unwrap());
        }
        assert_eq!(taken, vec![RunnerWatch::new(token("wait-idle"), wait)]);
        assert_eq!(watch_of(store, &name).await, None);
    }
    assert!(
        !store
            .set_runner_token(&runner_name("nobody"), &token("t"), RunnerWait::Busy)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .take_runner_token_for(&runner_name("nobody"), RunnerEvent::Completed)
            .await
            .unwrap(),
        None
    );
}

/// A runner's start answers only a wait for it to become busy; its leaving answers any wait.
/// A wait for it to leave that registered before the webhook saying it started arrived keeps
/// its token for the webhook saying it finished.
pub async fn a_runner_event_takes_only_a_wait_it_answers(fixture: &Fixture) {
    let store = &fixture.store;
    let record = runner(fixture, "runner-waits", "linux", 0);
    let name = record.runner_name.clone();
    store.put_runner(&record).await.unwrap();

    store
        .set_runner_token(&name, &token("wait-gone"), RunnerWait::Gone)
        .await
        .unwrap();
    assert_eq!(
        store
            .take_runner_token_for(&name, RunnerEvent::Started)
            .await
            .unwrap(),
        None,
        "a runner that starts a job has not left"
    );
    assert_eq!(
        watch_of(store, &name).await,
        watching("wait-gone", RunnerWait::Gone)
    );
    assert_eq!(
        store
            .take_runner_token_for(&name, RunnerEvent::Completed)
            .await
            .unwrap(),
        watching("wait-gone", RunnerWait::Gone)
    );

    store
        .set_runner_token(&name, &token("wait-busy"), RunnerWait::Busy)
        .await
        .unwrap();
    assert_eq!(
        store
            .take_runner_token_for(&name, RunnerEvent::Started)
            .await
            .unwrap(),
        watching("wait-busy", RunnerWait::Busy)
    );
    // A runner that finished without being seen busy answers a wait for busy too.
    store
        .set_runner_token(&name, &token("wait-busy-2"), RunnerWait::Busy)
        .await
        .unwrap();
    assert_eq!(
        store
            .take_runner_token_for(&name, RunnerEvent::Completed)
            .await
            .unwrap(),
        watching("wait-busy-2", RunnerWait::Busy)
    );

    // A later wait replaces an earlier one, wait and all.
    store
        .set_runner_token(&name, &token("first"), RunnerWait::Busy)
        .await
        .unwrap();
    store
        .set_runner_token(&name, &token("second"), RunnerWait::Gone)
        .await
        .unwrap();
    assert_eq!(
        store
            .take_runner_token_for(&name, RunnerEvent::Started)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        watch_of(store, &name).await,
        watching("second", RunnerWait::Gone)
    );

    // A record written before waits were recorded: any event answers its wait.
    let mut old = runner(fixture, "runner-old", "linux", 0);
    old.runner_watch = Some(RunnerWatch {
        task_token: token("old-wait"),
        wait: None,
    });
    store.put_runner(&old).await.unwrap();
    assert_eq!(
        store
            .take_runner_token_for(&old.runner_name, RunnerEvent::Started)
            .await
            .unwrap(),
        Some(RunnerWatch {
            task_token: token("old-wait"),
            wait: None,
        })
    );
}

pub async fn runners_are_listed_by_pool_and_age(fixture: &Fixture) {
    let store = &fixture.store;
    for (name, pool_name, age) in [
        ("young", "linux", 10),
        ("old", "linux", 3000),
        ("middle", "linux", 600),
        ("arm-old", "arm", 5000),
    ] {
        store
            .put_runner(&runner(fixture, name, pool_name, age))
            .await
            .unwrap();
    }
    let of_pool: Vec<String> = store
        .runners_of_pool(&pool("linux"))
        .await
        .unwrap()
        .iter()
        .map(|r| r.runner_name.to_string())
        .collect();
    assert_eq!(of_pool, ["old", "middle", "young"]);
    assert!(
        store
            .runners_of_pool(&pool("gpu"))
            .await
            .unwrap()
            .is_empty()
    );

    let older: Vec<String> = store
        .runners_older_than(fixture.now() - TimeDelta::seconds(600))
        .await
        .unwrap()
        .iter()
        .map(|r| r.runner_name.to_string())
        .collect();
    // Strictly older: "middle" launched exactly at the limit.
    assert_eq!(older, ["arm-old", "old"]);
}

fn warm_runner(
    fixture: &Fixture,
    name: &str,
    pool_name: &str,
    state: RunnerState,
    launched_secs_ago: i64,
) -> RunnerRecord {
    let mut record = runner(fixture, name, pool_name, launched_secs_ago);
    record.execution = ExecutionKey::warm(&record.runner_name);
    record.state = state;
    record
}

pub async fn a_warm_runner_is_adopted_once_idle_first(fixture: &Fixture) {
    let store = &fixture.store;
    for record in [
        warm_runner(fixture, "booting-old", "linux", RunnerState::Booting, 900),
        warm_runner(fixture, "idle-young", "linux", RunnerState::Idle, 60),
        warm_runner(fixture, "idle-old", "linux", RunnerState::Idle, 600),
        warm_runner(
            fixture,
            "busy",
            "linux",
            RunnerState::Busy { job_id: JobId(7) },
            1200,
        ),
        warm_runner(fixture, "arm-idle", "arm", RunnerState::Idle, 700),
        // A job's own runner is never adopted.
        runner(fixture, "launched-for-a-job", "linux", 1300),
    ] {
        store.put_runner(&record).await.unwrap();
    }
    let linux = pool("linux");
    let first = execution("job-1");
    let adopted = store
        .adopt_warm_runner(&linux, &first)
        .await
        .unwrap()
        .expect("an idle warm runner");
    assert_eq!(adopted.runner_name.as_str(), "idle-old");
    assert_eq!(adopted.execution, first);
    assert_eq!(
        adopted.launched_by,
        Some(ExecutionKey::warm(&runner_name("idle-old")))
    );
    assert_eq!(adopted.host_owner(), adopted.launched_by.as_ref().unwrap());
    let stored = store
        .get_runner(&runner_name("idle-old"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.execution, stored.launched_by),
        (first.clone(), adopted.launched_by.clone())
    );

    // A retry of the same execution gets the same runner back.
    let again = store
        .adopt_warm_runner(&linux, &first)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.runner_name.as_str(), "idle-old");

    let mut names = Vec::new();
    for adopter in ["job-2", "job-3", "job-4"] {
        let adopted = store
            .adopt_warm_runner(&linux, &execution(adopter))
            .await
            .unwrap();
        names.push(adopted.map_or("none".to_owned(), |r| r.runner_name.to_string()));
    }
    // Idle before booting; busy warm runners and job runners are never handed out.
    assert_eq!(names, ["idle-young", "booting-old", "none"]);
    let arm = store
        .adopt_warm_runner(&pool("arm"), &execution("job-5"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(arm.runner_name.as_str(), "arm-idle");
}

pub async fn concurrent_adopters_never_share_a_warm_runner(fixture: &Fixture) {
    let store = &fixture.store;
    for i in 0..3 {
        store
            .put_runner(&warm_runner(
                fixture,
                &format!("warm-{i}"),
                "linux",
                RunnerState::Idle,
                100 + i,
            ))
            .await
            .unwrap();
    }
    let adopters: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .adopt_warm_runner(&pool("linux"), &execution(&format!("job-{i}")))
                    .await
                    .unwrap()
                    .map(|record| record.runner_name.to_string())
            })
        })
        .collect();
    let mut adopted = Vec::new();
    for adopter in adopters {
        if let Some(name) = adopter.await.unwrap() {
            adopted.push(name);
        }
    }
    adopted.sort();
    assert_eq!(adopted, ["warm-0", "warm-1", "warm-2"]);
}

pub async fn instances_are_recorded_and_booting_runners_counted(fixture: &Fixture) {
    let store = &fixture.store;
    for (name, pool_name) in [("a", "linux"), ("b", "linux"), ("c", "linux"), ("d", "arm")] {
        store
            .put_runner(&runner(fixture, name, pool_name, 5))
            .await
            .unwrap();
    }
    let name = runner_name("b");
    assert!(store.set_runner_instance(&name, "i-0abc").await.unwrap());
    let record = store.get_runner(&name).await.unwrap().unwrap();
    assert_eq!(record.instance_id.as_deref(), Some("i-0abc"));
    assert_eq!(
        record.state,
        RunnerState::Booting,
        "only the instance id changes"
    );
    assert!(
        !store
            .set_runner_instance(&runner_name("nobody"), "i-1")
            .await
            .unwrap()
    );

    assert_eq!(
        store
            .count_runners(&pool("linux"), RunnerState::Booting)
            .await
            .unwrap(),
        3
    );
    store
        .set_runner_state(&name, RunnerState::Idle, Some(RunnerState::Booting))
        .await
        .unwrap();
    assert_eq!(
        store
            .count_runners(&pool("linux"), RunnerState::Booting)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .count_runners(&pool("linux"), RunnerState::Idle)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .count_runners(&pool("gpu"), RunnerState::Booting)
            .await
            .unwrap(),
        0
    );
}

pub async fn expired_runners_read_as_absent(fixture: &Fixture) {
    let store = &fixture.store;
    let mut record = runner(fixture, "short-lived", "linux", 100);
    record.expires_at = after(fixture, 10);
    store.put_runner(&record).await.unwrap();
    assert!(
        store
            .set_runner_token(&record.runner_name, &token("t"), RunnerWait::Gone)
            .await
            .unwrap()
    );
    fixture.advance(seconds(10)).await;

    assert_eq!(store.get_runner(&record.runner_name).await.unwrap(), None);
    assert!(
        store
            .runners_of_pool(&pool("linux"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .runners_older_than(fixture.now())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .set_runner_state(&record.runner_name, RunnerState::Idle, None)
            .await
            .unwrap(),
        StateChange::NotFound
    );
    assert_eq!(
        store
            .take_runner_token_for(&record.runner_name, RunnerEvent::Completed)
            .await
            .unwrap(),
        None
    );
    // An expired name can be used again.
    let mut fresh = runner(fixture, "short-lived", "linux", 0);
    fresh.expires_at = after(fixture, 600);
    assert_eq!(store.put_runner(&fresh).await.unwrap(), PutRunner::Created);
    assert_eq!(
        store.get_runner(&fresh.runner_name).await.unwrap(),
        Some(fresh)
    );
}

// ---- Job watches ------------------------------------------------------------------------------

fn watch(fixture: &Fixture, job: u64, exec: &str, token_text: &str) -> JobWatch {
    JobWatch {
        job_id: JobId(job),
        execution: execution(exec),
        task_token: token(token_text),
        expires_at: after(fixture, 3600),
    }
}

pub async fn job_watches_wake_once(fixture: &Fixture) {
    let store = &fixture.store;
    let first = watch(fixture, 1001, "exec-a", "wait-started");
    store.watch_job(&first).await.unwrap();
    assert_eq!(store.get_job_watch(JobId(1001)).await.unwrap(), Some(first));

    let second = watch(fixture, 1001, "exec-a", "wait-completed");
    store.watch_job(&second).await.unwrap();
    assert_eq!(
        store.take_job_watch(JobId(1001)).await.unwrap(),
        Some(second)
    );
    assert_eq!(store.take_job_watch(JobId(1001)).await.unwrap(), None);
    assert_eq!(store.get_job_watch(JobId(1001)).await.unwrap(), None);
    assert_eq!(store.take_job_watch(JobId(9)).await.unwrap(), None);
}

pub async fn a_step_takes_back_only_its_own_job_watch(fixture: &Fixture) {
    let store = &fixture.store;
    let later = watch(fixture, 2002, "exec-a", "wait-completed");
    store.watch_job(&later).await.unwrap();
    // The step that waited for the start must not take the completion step's watch.
    assert!(
        !store
            .take_job_watch_of(JobId(2002), &token("wait-started"))
            .await
            .unwrap()
    );
    assert_eq!(store.get_job_watch(JobId(2002)).await.unwrap(), Some(later));
    assert!(
        store
            .take_job_watch_of(JobId(2002), &token("wait-completed"))
            .await
            .unwrap()
    );
    assert_eq!(store.get_job_watch(JobId(2002)).await.unwrap(), None);
    assert!(
        !store
            .take_job_watch_of(JobId(2002), &token("wait-completed"))
            .await
            .unwrap()
    );
}

pub async fn a_job_watch_is_put_back_only_where_none_was_registered(fixture: &Fixture) {
    let store = &fixture.store;
    let taken = watch(fixture, 2003, "exec-a", "first-attempt");
    // Nothing registered: the watch goes back.
    assert!(store.restore_job_watch(&taken).await.unwrap());
    assert_eq!(
        store.get_job_watch(JobId(2003)).await.unwrap(),
        Some(taken.clone())
    );
    // A retried step registered its own: the taken one stays out.
    store.take_job_watch(JobId(2003)).await.unwrap();
    let retried = watch(fixture, 2003, "exec-a", "second-attempt");
    store.watch_job(&retried).await.unwrap();
    assert!(!store.restore_job_watch(&taken).await.unwrap());
    assert_eq!(
        store.get_job_watch(JobId(2003)).await.unwrap(),
        Some(retried)
    );
    // An expired watch counts as absent.
    let mut short = watch(fixture, 2004, "exec-a", "expiring");
    short.expires_at = after(fixture, 10);
    store.watch_job(&short).await.unwrap();
    fixture.advance(seconds(11)).await;
    let fresh = watch(fixture, 2004, "exec-a", "restored");
    assert!(store.restore_job_watch(&fresh).await.unwrap());
    assert_eq!(store.get_job_watch(JobId(2004)).await.unwrap(), Some(fresh));
}

pub async fn concurrent_takes_of_a_job_watch_wake_once(fixture: &Fixture) {
    fixture
        .store
        .watch_job(&watch(fixture, u64::MAX, "exec-a", "only-once"))
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let store = fixture.store.clone();
        tasks.spawn(async move { store.take_job_watch(JobId(u64::MAX)).await.unwrap() });
    }
    let mut woken = Vec::new();
    while let Some(outcome) = tasks.join_next().await {
        woken.extend(outcome.unwrap());
    }
    assert_eq!(woken.len(), 1);
    assert_eq!(woken[0].task_token, token("only-once"));
}

pub async fn expired_job_watches_read_as_absent(fixture: &Fixture) {
    let store = &fixture.store;
    let mut short = watch(fixture, 5, "exec-a", "t");
    // Expiry is kept to whole seconds.
    short.expires_at = after(fixture, 30) + TimeDelta::milliseconds(700);
    store.watch_job(&short).await.unwrap();
    assert_eq!(
        store
            .get_job_watch(JobId(5))
            .await
            .unwrap()
            .unwrap()
            .expires_at,
        after(fixture, 30)
    );
    fixture.advance(seconds(30)).await;
    assert_eq!(store.get_job_watch(JobId(5)).await.unwrap(), None);
    assert_eq!(store.take_job_watch(JobId(5)).await.unwrap(), None);
}

// ---- Slot accounting against a model ------------------------------------------------------------

#[derive(Debug, Clone)]
pub enum SlotOp {
    Acquire {
        execution: usize,
        pool: usize,
        org: usize,
        repo: usize,
    },
    Release {
        execution: usize,
    },
}

pub const EXECUTIONS: usize = 8;
const POOLS: [&str; 2] = ["linux", "arm"];
const ORGS: [&str; 2] = ["octo", "acme"];
const REPOS: [&str; 3] = ["x/a", "x/b", "x/c"];

pub fn slot_ops(max_len: usize) -> impl Strategy<Value = Vec<SlotOp>> {
    let op = prop_oneof![
        3 => (0..EXECUTIONS, 0..POOLS.len(), 0..ORGS.len(), 0..REPOS.len()).prop_map(
            |(execution, pool, org, repo)| SlotOp::Acquire { execution, pool, org, repo }
        ),
        2 => (0..EXECUTIONS).prop_map(|execution| SlotOp::Release { execution }),
    ];
    proptest::collection::vec(op, 1..max_len)
}

/// Ceilings: pools 3 and 2, organisation "octo" 2 (acme unlimited), repository "x/a" 1.
pub fn ceilings_for(pool_index: usize, org_index: usize, repo_index: usize) -> Ceilings {
    Ceilings {
        pool: [3, 2][pool_index],
        org: [Some(2), None][org_index],
        repo: [Some(1), None, None][repo_index],
    }
}

/// Runs `ops` against the store and against a plain model, checking every outcome and, after
/// every step, that each counter equals its number of holders and stays within its ceiling.
/// With `every_counter_each_step` unset, each step checks the counters it touched and the
/// last step checks all of them (cheaper over HTTP).
pub async fn slot_accounting_matches_model(
    store: &dyn Store,
    ops: &[SlotOp],
    every_counter_each_step: bool,
) {
    // execution -> (pool, org, repo) indexes of the slot it holds
    let mut holders: BTreeMap<usize, (usize, usize, usize)> = BTreeMap::new();
    for (step, op) in ops.iter().enumerate() {
        let last = step + 1 == ops.len();
        let touched = match *op {
            SlotOp::Acquire {
                pool, org, repo, ..
            } => Some((pool, org, repo)),
            SlotOp::Release { execution } => holders.get(&execution).copied(),
        };
        match *op {
            SlotOp::Acquire {
                execution: exec,
                pool: p,
                org: o,
                repo: r,
            } => {
                let ceilings = ceilings_for(p, o, r);
                let count = |select: &dyn Fn(&(usize, usize, usize)) -> bool| {
                    holders.values().filter(|held| select(held)).count() as u32
                };
                let expected = if holders.contains_key(&exec) {
                    SlotOutcome::AlreadyHeld
                } else {
                    let pool_now = count(&|h| h.0 == p);
                    let org_now = count(&|h| h.1 == o);
                    let repo_now = count(&|h| h.2 == r);
                    if pool_now >= ceilings.pool {
                        SlotOutcome::Full {
                            ceiling: CeilingKind::Pool,
                            limit: ceilings.pool,
                            current: pool_now,
                        }
                    } else if let Some(limit) = ceilings.org.filter(|limit| org_now >= *limit) {
                        SlotOutcome::Full {
                            ceiling: CeilingKind::Org,
                            limit,
                            current: org_now,
                        }
                    } else if let Some(limit) = ceilings.repo.filter(|limit| repo_now >= *limit) {
                        SlotOutcome::Full {
                            ceiling: CeilingKind::Repo,
                            limit,
                            current: repo_now,
                        }
                    } else {
                        SlotOutcome::Acquired
                    }
                };
                let job = claim(&format!("e{exec}"), POOLS[p], ORGS[o], REPOS[r], ceilings);
                let outcome = store.acquire_slot(&job).await.unwrap();
                assert_eq!(outcome, expected, "{op:?} with holders {holders:?}");
                if outcome == SlotOutcome::Acquired {
                    holders.insert(exec, (p, o, r));
                }
            }
            SlotOp::Release { execution: exec } => {
                let expected = if holders.remove(&exec).is_some() {
                    Release::Released
                } else {
                    Release::NotHeld
                };
                let outcome = store
                    .release_slot(&execution(&format!("e{exec}")))
                    .await
                    .unwrap();
                assert_eq!(outcome, expected, "{op:?}");
            }
        }
        for (p, pool_name) in POOLS.iter().enumerate() {
            for (o, org_name) in ORGS.iter().enumerate() {
                for (r, repo_name) in REPOS.iter().enumerate() {
                    if !(every_counter_each_step || last || touched == Some((p, o, r))) {
                        continue;
                    }
                    let load = store
                        .load(&pool(pool_name), &org(org_name), &repo(repo_name))
                        .await
                        .unwrap();
                    let ceilings = ceilings_for(p, o, r);
                    let pools = holders.values().filter(|h| h.0 == p).count() as u32;
                    let orgs = holders.values().filter(|h| h.1 == o).count() as u32;
                    let repos = holders.values().filter(|h| h.2 == r).count() as u32;
                    assert_eq!(
                        (load.pool_running, load.org_running, load.repo_running),
                        (pools, orgs, repos),
                        "after {op:?}"
                    );
                    assert!(load.pool_running <= ceilings.pool);
                    assert!(ceilings.org.is_none_or(|limit| load.org_running <= limit));
                    assert!(ceilings.repo.is_none_or(|limit| load.repo_running <= limit));
                }
            }
        }
    }
    for (p, pool_name) in POOLS.iter().enumerate() {
        let listed = store.slot_holders(&pool(pool_name)).await.unwrap();
        let expected = holders.values().filter(|h| h.0 == p).count();
        assert_eq!(listed.len(), expected);
    }
}
