//! A crash and its clean-up, on whatever store and provider a `runway local` system uses:
//! job A takes the pool's only slot and launches a runner; job B waits for the slot; A's
//! execution is then stopped as a crash would stop it, leaving its runner, its GitHub
//! registration and its slot behind. The reaper machine (the real `reaper.asl.json` on the
//! local engine) must clean up A's things, wake B, and leave B's things alone.

#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use runway_asl::{ExecutionDescription, ExecutionStatus as EngineStatus};
use runway_clock::SystemClock;
use runway_github::{Credentials, GitHub, RestGitHub, RetryPolicy, Secret};
use runway_github_emulator::{EmulatorHandle, NewJob, Scope, WebhookTarget};
use runway_local::{LocalSystem, SfnStarter};
use runway_reaper::{
    LOCAL_REAP_FUNCTION, LocalExecutions, Reaper, ReaperConfig, ReaperDeps, local_definition,
};
use runway_store::{ExecutionKey, PoolName, RunnerName, RunnerState};
use runway_webhook::JobFilter;
use serde_json::Value;

/// Generous bound for anything the system does in the background.
pub const WAIT: Duration = Duration::from_secs(60);

pub async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn emulator(system: &LocalSystem) -> &EmulatorHandle {
    system
        .emulator()
        .expect("the system runs the GitHub emulator")
}

/// A GitHub client on the emulator that does not retry, so a 5xx reaches the reaper at once.
pub fn github(system: &LocalSystem) -> Arc<dyn GitHub> {
    let client = RestGitHub::new(
        emulator(system).api_url(),
        Credentials::Token(Secret::new("runway-reaper-test")),
        SystemClock::shared(),
    )
    .unwrap()
    .with_retry_policy(RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    });
    Arc::new(client)
}

pub fn reaper(system: &LocalSystem, config: ReaperConfig) -> Reaper {
    reaper_with(system, config, JobFilter::default())
}

/// A reaper whose idea of the jobs runway takes on is `job_filter` (the intake's allow-lists).
pub fn reaper_with(system: &LocalSystem, config: ReaperConfig, job_filter: JobFilter) -> Reaper {
    Reaper::new(
        ReaperDeps {
            flow: system.flow().clone(),
            store: system.store().clone(),
            github: github(system),
            providers: system.providers().clone(),
            executions: Arc::new(
                LocalExecutions::new(system.service().clone(), system.machine_arn()).unwrap(),
            ),
            starter: Arc::new(SfnStarter::new(
                system.service().clone(),
                system.machine_arn(),
            )),
            job_filter,
            installation_id: Some(installation_id()),
            clock: SystemClock::shared(),
        },
        config,
    )
    .unwrap()
}

/// The App installation the emulator's webhooks carry: `runway local` starts the emulator
/// with the default App.
pub fn installation_id() -> u64 {
    runway_github_emulator::AppConfig::default().installation_id
}

/// Queues a job whose `queued` webhook is lost (no webhook target while it is queued).
pub fn lost_job(system: &LocalSystem, labels: &[&str]) -> u64 {
    let emulator = emulator(system);
    emulator.set_webhook(None);
    let created = emulator.create_job(NewJob::new("octo-org/app", labels));
    emulator.set_webhook(Some(WebhookTarget {
        url: system.webhook_url().to_owned(),
        secret: system.webhook_secret().to_owned(),
    }));
    created.unwrap().job_id
}

/// Acts on anything not running at once; searches `octo-org/app`, where runners register.
pub fn eager() -> ReaperConfig {
    ReaperConfig {
        grace_seconds: 0,
        github_scopes: vec![runway_github::RunnerScope::repository("octo-org", "app")],
        ..ReaperConfig::default()
    }
}

/// Runs `statemachines/reaper.asl.json` once with `reaper` behind `${ReapFunctionArn}`;
/// returns the ended execution and its output.
pub async fn run_reaper_machine(
    system: &LocalSystem,
    reaper: &Reaper,
    run: &str,
) -> (ExecutionDescription, Value) {
    let service = system.service();
    reaper.register_task(service.tasks(), LOCAL_REAP_FUNCTION);
    let machine = service
        .create_state_machine(
            &format!("reaper-{run}"),
            &local_definition(LOCAL_REAP_FUNCTION),
            None,
        )
        .expect("reaper.asl.json is accepted by the engine");
    let started = service
        .start_execution(&machine.arn, Some(run), Some("{}"))
        .unwrap();
    let ended = tokio::time::timeout(WAIT, service.await_execution(&started.execution_arn))
        .await
        .expect("the reaper machine ends")
        .unwrap();
    // What Summarise put out: the execution's output when it succeeds, and still readable in
    // the history when a failed sweep makes it fail.
    let history = service
        .get_execution_history(&started.execution_arn, false)
        .unwrap();
    let output = history
        .iter()
        .filter(|event| event.event_type.ends_with("StateExited"))
        .filter_map(|event| event.details.get("stateExitedEventDetails"))
        .find(|details| details["name"] == "Summarise")
        .and_then(|details| details["output"].as_str())
        .map(|text| serde_json::from_str(text).unwrap())
        .unwrap_or(Value::Null);
    (ended, output)
}

pub fn acted(output: &Value, sweep: &str) -> u64 {
    output["reports"][sweep]["acted"]
        .as_u64()
        .unwrap_or_else(|| panic!("no report of {sweep}: {output:#}"))
}

pub async fn execution_of(system: &LocalSystem, job: u64) -> ExecutionDescription {
    let mut found = None;
    wait_until("the job's execution starts", || {
        found = system.execution_for_job(job);
        std::future::ready(found.is_some())
    })
    .await;
    found.unwrap()
}

/// The runner an execution launched: recorded in the store and listed by its provider.
pub async fn runner_of(system: &LocalSystem, pool: &str, execution: &str) -> String {
    let pool_name = PoolName::new(pool).unwrap();
    let provider = system.providers()[pool].clone();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let records = system.store().runners_of_pool(&pool_name).await.unwrap();
        if let Some(record) = records.iter().find(|r| r.execution.as_str() == execution) {
            let name = record.runner_name.to_string();
            if provider
                .owned()
                .await
                .unwrap()
                .iter()
                .any(|r| r.runner_name == name)
            {
                return name;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: the execution's runner is launched"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn owned_by(system: &LocalSystem, pool: &str, runner: &str) -> bool {
    system.providers()[pool]
        .owned()
        .await
        .unwrap()
        .iter()
        .any(|owned| owned.runner_name == runner)
}

pub fn registered(system: &LocalSystem, runner: &str) -> bool {
    emulator(system).runners().iter().any(|r| r.name == runner)
}

/// The whole scenario. `labels` are the pool's; the pool's `max_running` must be 1.
pub async fn crash_and_reap(system: &LocalSystem, pool: &str, labels: &[&str]) {
    let emulator = emulator(system);
    let store = system.store().clone();
    let pool_name = PoolName::new(pool).unwrap();

    // A takes the only slot and launches a runner, which never connects.
    let job_a = emulator
        .create_job(NewJob::new("octo-org/app", labels))
        .unwrap()
        .job_id;
    let a = execution_of(system, job_a).await;
    let runner_a = runner_of(system, pool, &a.name).await;
    let key_a = ExecutionKey::new(a.name.as_str()).unwrap();
    assert!(store.slot_holder(&key_a).await.unwrap().is_some());
    wait_until("A's runner is registered with GitHub", || {
        std::future::ready(registered(system, &runner_a))
    })
    .await;

    // B waits for the slot.
    let job_b = emulator
        .create_job(NewJob::new("octo-org/app", labels))
        .unwrap()
        .job_id;
    let b = execution_of(system, job_b).await;
    wait_until("B waits in the pool's queue", || {
        let store = store.clone();
        let pool_name = pool_name.clone();
        let b = b.name.clone();
        async move {
            store
                .waiters(&pool_name)
                .await
                .unwrap()
                .iter()
                .any(|w| w.execution.as_str() == b)
        }
    })
    .await;

    // A runner someone else registered, offline, is none of runway's business.
    let foreign = emulator
        .generate_jitconfig(Scope::repository("octo-org", "app"), "build-box-1", labels)
        .unwrap();

    // A crashes: its execution ends without teardown or release.
    system
        .service()
        .stop_execution(&a.execution_arn, Some("Crash"), Some("the test stopped it"))
        .unwrap();
    assert_ne!(
        system
            .service()
            .describe_execution(&a.execution_arn)
            .unwrap()
            .status,
        EngineStatus::Running
    );

    // Within the grace period nothing is touched, though A has ended.
    let patient = reaper(
        system,
        ReaperConfig {
            grace_seconds: 3600,
            ..eager()
        },
    );
    let (ended, output) = run_reaper_machine(system, &patient, "patient").await;
    assert_eq!(ended.status, EngineStatus::Succeeded, "{output:#}");
    for sweep in [
        "orphan_runners",
        "offline_runners",
        "stale_slots",
        "lost_jobs",
    ] {
        assert_eq!(acted(&output, sweep), 0, "{sweep}: {output:#}");
    }
    assert!(owned_by(system, pool, &runner_a).await);

    let eager = reaper(system, eager());
    let (ended, output) = run_reaper_machine(system, &eager, "first").await;
    assert_eq!(ended.status, EngineStatus::Succeeded, "{output:#}");
    let reports = &output["reports"];

    // A's runner is terminated and recorded as gone.
    assert!(!owned_by(system, pool, &runner_a).await, "{output:#}");
    let record = store
        .get_runner(&RunnerName::new(runner_a.as_str()).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.state, RunnerState::Gone);
    let lines = reports["orphan_runners"]["actions"].to_string();
    assert!(
        lines.contains(&runner_a) && lines.contains("has ended"),
        "{lines}"
    );

    // A's registration is removed from GitHub; the foreign runner is not.
    assert!(!registered(system, &runner_a), "{output:#}");
    assert!(registered(system, &foreign.runner_name));
    let lines = reports["offline_runners"]["actions"].to_string();
    assert!(lines.contains(&runner_a), "{lines}");
    assert!(!lines.contains("build-box-1"), "{lines}");

    // A's slot is released and B, the oldest waiter, is woken: B takes the slot and
    // launches its runner, which the reaper leaves alone while B runs.
    assert!(store.slot_holder(&key_a).await.unwrap().is_none());
    let lines = reports["stale_slots"]["actions"].to_string();
    assert!(
        lines.contains(&a.name) && lines.contains(&b.name),
        "{lines}"
    );
    // Both jobs are still queued on GitHub, and both have an execution: none is started.
    assert_eq!(acted(&output, "lost_jobs"), 0, "{output:#}");
    let runner_b = runner_of(system, pool, &b.name).await;
    let key_b = ExecutionKey::new(b.name.as_str()).unwrap();
    assert!(store.slot_holder(&key_b).await.unwrap().is_some());
    wait_until("B's runner is registered with GitHub", || {
        std::future::ready(registered(system, &runner_b))
    })
    .await;

    // A second run finds nothing left to do, and B's things stay.
    let (ended, output) = run_reaper_machine(system, &eager, "second").await;
    assert_eq!(ended.status, EngineStatus::Succeeded, "{output:#}");
    for sweep in [
        "orphan_runners",
        "offline_runners",
        "stale_slots",
        "lost_jobs",
    ] {
        assert_eq!(acted(&output, sweep), 0, "{sweep}: {output:#}");
    }
    assert!(owned_by(system, pool, &runner_b).await);
    assert!(registered(system, &runner_b));
    assert!(store.slot_holder(&key_b).await.unwrap().is_some());
    assert_eq!(
        system
            .service()
            .describe_execution(&b.execution_arn)
            .unwrap()
            .status,
        EngineStatus::Running
    );
    let kept = output["reports"]["orphan_runners"]["kept"].to_string();
    assert!(kept.contains("its execution is running"), "{kept}");
}
