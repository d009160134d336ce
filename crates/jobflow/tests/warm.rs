//! Warm pools on a manual clock: the keeper fills a pool inside its window, jobs adopt warm
//! runners instead of launching, the keeper refills within the pool's ceiling, replaces warm
//! runners past their age, and scales to zero outside the window; teardown and nothing else
//! stops an adopted runner.

mod common;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use common::{Fixture, Options, REPOSITORY, config, linux_pool};
use runway_clock::{Clock, SharedClock, Sleep};
use runway_jobflow::{PoolConfig, Step};
use runway_schedule::{WarmSchedule, WarmWindow};
use runway_store::{ExecutionKey, JobId, PoolName, RunnerName, RunnerRecord, RunnerState};
use serde_json::json;

/// Time that moves only when the test says so.
#[derive(Debug)]
struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    fn at(text: &str) -> Arc<ManualClock> {
        let start = DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc);
        Arc::new(ManualClock(Mutex::new(start)))
    }

    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }

    fn sleep_until(&self, _deadline: DateTime<Utc>) -> Sleep {
        // Nothing here waits on this clock; a retry's pause ends at once.
        Box::pin(std::future::ready(()))
    }
}

/// Two warm runners on weekdays 08:00-17:59 UTC, at most three runners in all.
fn warm_pool() -> PoolConfig {
    let mut pool = linux_pool();
    pool.max_running = 3;
    pool.warm = Some(WarmSchedule {
        windows: vec![WarmWindow::new("* 8-17 * * MON-FRI", "UTC", 2).unwrap()],
        replace_after_seconds: 3600,
        organization: None,
        repository: Some(REPOSITORY.to_owned()),
    });
    pool
}

async fn fixture(clock: &Arc<ManualClock>, pool: PoolConfig) -> Fixture {
    let shared: SharedClock = clock.clone();
    Fixture::start(Options {
        config: config(vec![pool]),
        clock: Some(shared),
        ..Options::default()
    })
    .await
}

async fn live_hosts(fixture: &Fixture) -> Vec<(String, String)> {
    let mut hosts: Vec<(String, String)> = fixture
        .provider
        .owned()
        .await
        .unwrap()
        .into_iter()
        .map(|runner| (runner.runner_name, runner.execution))
        .collect();
    hosts.sort();
    hosts
}

#[tokio::test]
async fn a_warm_pool_is_filled_adopted_refilled_replaced_and_emptied_on_its_schedule() {
    // Monday 2026-12-07, 09:00 UTC: inside the window.
    let clock = ManualClock::at("2026-12-07T09:00:00Z");
    let fixture = fixture(&clock, warm_pool()).await;

    let pass = fixture.flow.keep_warm().await;
    let pool = &pass.pools[0];
    assert_eq!(
        (pool.wanted, pool.ready, pool.launched.len()),
        (2, 2, 2),
        "{pass:?}"
    );
    let hosts = live_hosts(&fixture).await;
    assert_eq!(hosts.len(), 2);
    for (name, owner) in &hosts {
        // Each host carries the warm key named after its runner, and is registered.
        assert_eq!(owner, &format!("warm-{name}"));
        assert!(
            fixture
                .emulator
                .runners()
                .iter()
                .any(|runner| &runner.name == name),
            "{name} is registered with GitHub"
        );
    }
    // A second pass in the same minute has nothing to do.
    let again = fixture.flow.keep_warm().await;
    assert!(again.pools[0].launched.is_empty() && again.pools[0].retired.is_empty());

    // A job adopts the oldest warm runner instead of launching.
    let input = fixture.queue_job(&["self-hosted", "linux"]);
    let state = fixture.routed("job-warm", &input).await;
    let admitted = fixture.run(Step::Admit, state.clone()).await.unwrap();
    assert_eq!(admitted["decision"], "admit", "{admitted}");
    let runner = fixture.run(Step::Provision, state.clone()).await.unwrap();
    assert_eq!(runner["adopted"], true, "{runner}");
    let adopted = runner["runner_name"].as_str().unwrap().to_owned();
    assert!(hosts.iter().any(|(name, _)| name == &adopted), "{runner}");
    assert!(
        runner["reason"]
            .as_str()
            .unwrap()
            .starts_with(&format!("adopted warm runner {adopted} of pool linux")),
        "{runner}"
    );
    let record = fixture
        .store()
        .get_runner(&RunnerName::new(adopted.as_str()).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.execution.as_str(), "job-warm");
    assert_eq!(
        record.launched_by,
        Some(ExecutionKey::warm(&record.runner_name))
    );
    // A retried Provision gets the same runner back, not a second one.
    let retried = fixture.run(Step::Provision, state.clone()).await.unwrap();
    assert_eq!(retried["runner_name"], adopted.as_str());

    // The keeper refills: one job holds a slot and one warm runner is left, so the
    // ceiling of three leaves room for one launch.
    clock.advance(Duration::minutes(1));
    let refill = fixture.flow.keep_warm().await;
    let pool = &refill.pools[0];
    assert_eq!(
        (pool.ready, pool.launched.len(), pool.held_back),
        (2, 1, 0),
        "{refill:?}"
    );
    assert_eq!(live_hosts(&fixture).await.len(), 3);
    // A second job adopts another; the ceiling now holds the refill back (two jobs hold
    // slots, one warm runner is left).
    let second = fixture.queue_job(&["self-hosted", "linux"]);
    let second_state = fixture.routed("job-warm-2", &second).await;
    // Its own pool ceiling (3) has room for a second job.
    assert_eq!(
        fixture
            .run(Step::Admit, second_state.clone())
            .await
            .unwrap()["decision"],
        "admit"
    );
    let second_runner = fixture
        .run(Step::Provision, second_state.clone())
        .await
        .unwrap();
    assert_eq!(second_runner["adopted"], true, "{second_runner}");
    let held = fixture.flow.keep_warm().await;
    assert_eq!(held.pools[0].held_back, 1, "{held:?}");
    assert!(held.pools[0].launched.is_empty(), "{held:?}");

    // An hour later the warm runner left is past replace_after_seconds: replaced.
    clock.advance(Duration::minutes(61));
    let replaced = fixture.flow.keep_warm().await;
    let pool = &replaced.pools[0];
    assert_eq!(pool.retired.len(), 1, "{replaced:?}");
    assert!(
        pool.retired[0].contains("past replace_after_seconds"),
        "{replaced:?}"
    );
    assert_eq!(pool.launched.len(), 1, "{replaced:?}");

    // 18:00: outside the window, the pool scales to zero; adopted runners stay with their
    // jobs.
    clock.advance(Duration::hours(8));
    let evening = fixture.flow.keep_warm().await;
    let pool = &evening.pools[0];
    assert_eq!((pool.wanted, pool.ready), (0, 0), "{evening:?}");
    assert_eq!(pool.retired.len(), 1, "{evening:?}");
    let left = live_hosts(&fixture).await;
    let adopted_names = [
        adopted.clone(),
        second_runner["runner_name"].as_str().unwrap().to_owned(),
    ];
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(
        left.iter().all(|(name, _)| adopted_names.contains(name)),
        "{left:?}"
    );
    let warm_records: Vec<_> = fixture
        .store()
        .runners_of_pool(&PoolName::new("linux").unwrap())
        .await
        .unwrap()
        .into_iter()
        .filter(|record| record.is_unadopted_warm())
        .collect();
    assert!(warm_records.is_empty(), "{warm_records:?}");

    // Teardown stops the adopted runner's host, launched under its warm key.
    let mut teardown = state.clone();
    teardown["runner"] = runner.clone();
    teardown["reason"] = json!("runner finished or idle");
    let torn = fixture.run(Step::Teardown, teardown).await.unwrap();
    assert!(torn.to_string().contains(&adopted), "{torn}");
    let left = live_hosts(&fixture).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_ne!(left[0].0, adopted);

    // Saturday: nothing is launched.
    clock.advance(Duration::days(4));
    let weekend = fixture.flow.keep_warm().await;
    assert!(
        weekend.pools.iter().all(|pool| pool.launched.is_empty()),
        "{weekend:?}"
    );
}

#[tokio::test]
async fn jobs_registered_elsewhere_launch_their_own_and_a_full_pool_keeps_no_warm_runner() {
    let clock = ManualClock::at("2026-12-07T09:00:00Z");
    let mut pool = warm_pool();
    // Warm runners register in another repository than the job's: no adoption.
    if let Some(warm) = pool.warm.as_mut() {
        warm.repository = Some("octo-org/other".to_owned());
    }
    pool.max_running = 1;
    let fixture = fixture(&clock, pool).await;
    let input = fixture.queue_job(&["self-hosted", "linux"]);
    let state = fixture.routed("job-cold", &input).await;
    assert_eq!(
        fixture.run(Step::Admit, state.clone()).await.unwrap()["decision"],
        "admit"
    );
    // The job's slot fills the ceiling of one: the keeper launches nothing.
    let pass = fixture.flow.keep_warm().await;
    assert_eq!(
        (pass.pools[0].wanted, pass.pools[0].held_back),
        (2, 2),
        "{pass:?}"
    );
    assert!(live_hosts(&fixture).await.is_empty());
    let runner = fixture.run(Step::Provision, state).await.unwrap();
    assert!(runner.get("adopted").is_none(), "{runner}");
    assert!(
        runner["reason"]
            .as_str()
            .unwrap()
            .starts_with("launched runner"),
        "{runner}"
    );
}

#[test]
fn a_warm_table_says_where_its_runners_register() {
    let mut pool = warm_pool();
    if let Some(warm) = pool.warm.as_mut() {
        warm.repository = None;
    }
    let problems = config(vec![pool]).problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].path, "pools[0].warm.repository");
    assert!(
        problems[0].message.contains("repository = \"acme/app\""),
        "{problems:?}"
    );
}

/// A warm runner that left is retired without freeing room twice: a busy warm runner and a
/// job's slot fill a ceiling of two, whatever left meanwhile.
#[tokio::test]
async fn a_busy_warm_runner_counts_against_the_ceiling_when_another_left() {
    let clock = ManualClock::at("2026-12-07T09:00:00Z");
    let mut pool = warm_pool();
    pool.max_running = 2;
    let fixture = fixture(&clock, pool).await;
    let input = fixture.queue_job(&["self-hosted", "linux"]);
    let state = fixture.routed("job-slot", &input).await;
    assert_eq!(
        fixture.run(Step::Admit, state).await.unwrap()["decision"],
        "admit"
    );
    for (name, state) in [
        ("runway-w1-0", RunnerState::Busy { job_id: JobId(1) }),
        ("runway-w1-1", RunnerState::Gone),
    ] {
        let runner = RunnerName::new(name).unwrap();
        let now = clock.now();
        fixture
            .store()
            .put_runner(&RunnerRecord {
                execution: ExecutionKey::warm(&runner),
                runner_name: runner,
                launched_by: None,
                pool: PoolName::new("linux").unwrap(),
                provider: "local".into(),
                instance_id: None,
                state,
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
    }
    let pass = fixture.flow.keep_warm().await;
    let pool = &pass.pools[0];
    assert_eq!(pool.retired.len(), 1, "{pass:?}");
    assert!(pool.launched.is_empty(), "{pass:?}");
    assert_eq!(pool.held_back, 2, "{pass:?}");
}
