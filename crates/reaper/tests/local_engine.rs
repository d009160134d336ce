//! The reaper on `runway local`'s parts: the in-memory store, runners as real local processes,
//! the GitHub emulator, and the local engine running the real job and reaper machines.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::*;
use runway_asl::ExecutionStatus as EngineStatus;
use runway_github_emulator::Faults;
use runway_jobflow::naming::runner_name;
use runway_local::{LocalConfig, LocalSystem};
use runway_providers::{
    JitConfig, LaunchOverrides, LaunchRequest, Launched, Provider, ProviderError,
};
use runway_reaper::{ReapError, ReaperConfig, Sweep};
use runway_webhook::{Decision, JobFilter, decide, execution_name, parse_workflow_job};
use serde_json::{Value, json};

const POOL: &str = "linux";
const LABELS: &[&str] = &["self-hosted", "linux"];

/// One pool with one slot; its runners are `sleep` processes that never connect, so an
/// execution that launched one keeps waiting for it.
async fn system() -> LocalSystem {
    let mut config = LocalConfig::from_toml_str(
        r#"
[github]
mode = "emulator"
repositories = ["octo-org/app"]
organizations = ["octo-org"]

[[pools]]
name = "linux"
labels = ["self-hosted", "linux"]
max_running = 1
boot_timeout_seconds = 600
idle_timeout_seconds = 600
recheck_after_seconds = 600
provider = { kind = "local", command = ["sleep", "300"], grace_seconds = 1 }
"#,
    )
    .unwrap();
    config.listen = runway_local::Listen::any_free_port();
    LocalSystem::start(config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_execution_s_runner_registration_and_slot_are_cleaned_up_and_nothing_else() {
    let system = system().await;
    crash_and_reap(&system, POOL, LABELS).await;
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_5xx_is_a_retryable_error_and_the_retry_succeeds() {
    let system = system().await;
    let reaper = reaper(&system, eager());
    emulator(&system).set_faults(Faults {
        server_errors: 1,
        server_error_status: Some(502),
        ..Faults::default()
    });
    let error = reaper.sweep(Sweep::OfflineRunners).await.unwrap_err();
    assert!(matches!(error, ReapError::Transient(_)), "{error:?}");
    assert_eq!(error.name(), "Runway.Transient");
    assert!(error.to_string().contains("502"), "{error}");
    let report = reaper.sweep(Sweep::OfflineRunners).await.unwrap();
    assert!(report.swept);

    // Through the machine: the Task's Retry absorbs one more 502.
    emulator(&system).set_faults(Faults {
        server_errors: 1,
        server_error_status: Some(503),
        ..Faults::default()
    });
    let (ended, output) = run_reaper_machine(&system, &reaper, "retried").await;
    assert_eq!(ended.status, EngineStatus::Succeeded, "{output:#}");
    assert_eq!(
        output["reports"]["offline_runners"]["swept"],
        json!(true),
        "{output:#}"
    );
    assert_eq!(emulator(&system).faults().server_errors, 0);
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_that_fails_for_good_is_caught_and_the_others_still_finish() {
    let system = system().await;
    let reaper = reaper(
        &system,
        ReaperConfig {
            github_scopes: vec![runway_github::RunnerScope::repository(
                "octo-org", "missing",
            )],
            ..eager()
        },
    );
    let (ended, output) = run_reaper_machine(&system, &reaper, "caught").await;
    // The run fails, so the reaper's alarm sees it, after every sweep had its turn.
    assert_eq!(ended.status, EngineStatus::Failed, "{output:#}");
    assert_eq!(ended.error.as_deref(), Some("Runway.SweepFailed"));
    let offline = &output["reports"]["offline_runners"];
    assert_eq!(offline["swept"], json!(false), "{output:#}");
    assert_eq!(offline["error"], json!("Runway.ReapFailed"), "{output:#}");
    let summary = output["offline_runners"].as_str().unwrap();
    assert!(
        summary.starts_with("not swept") && summary.contains("404"),
        "{summary}"
    );
    assert_eq!(output["reports"]["orphan_runners"]["swept"], json!(true));
    assert_eq!(output["reports"]["stale_slots"]["swept"], json!(true));
    assert_eq!(output["reports"]["lost_jobs"]["swept"], json!(true));
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_stops_at_its_bound_and_unknown_executions_wait_for_their_own_grace() {
    let system = system().await;
    let provider = system.providers()[POOL].clone();
    for n in 1..=2 {
        provider
            .launch(LaunchRequest {
                execution: execution_name(1, 900 + n, 1),
                pool: POOL.into(),
                runner_name: runner_name("runway", 900 + n, 1, 1),
                labels: LABELS.iter().map(|l| l.to_string()).collect(),
                jit_config: JitConfig::new("unused"),
                overrides: LaunchOverrides::default(),
            })
            .await
            .unwrap();
    }

    // No execution of those names exists: kept until older than any execution can run.
    let report = reaper(&system, eager())
        .sweep(Sweep::OrphanRunners)
        .await
        .unwrap();
    assert_eq!(report.acted, 0, "{report:?}");
    assert_eq!(report.kept.values().sum::<u32>(), 2, "{report:?}");

    let bounded = reaper(
        &system,
        ReaperConfig {
            unknown_execution_grace_seconds: 0,
            max_actions_per_sweep: 1,
            ..eager()
        },
    );
    let first = bounded.sweep(Sweep::OrphanRunners).await.unwrap();
    assert_eq!((first.acted, first.truncated), (1, true), "{first:?}");
    assert!(first.summary.contains("next run"), "{}", first.summary);
    let second = bounded.sweep(Sweep::OrphanRunners).await.unwrap();
    assert_eq!((second.acted, second.truncated), (1, false), "{second:?}");
    let third = bounded.sweep(Sweep::OrphanRunners).await.unwrap();
    assert_eq!(third.acted, 0, "{third:?}");
    assert!(provider.owned().await.unwrap().is_empty());
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_a_clear_error() {
    let system = system().await;
    let reaper = reaper(&system, eager());
    for (input, expected) in [
        (
            json!({"sweep": "lost-webhooks"}),
            "expected one of orphan-runners",
        ),
        (json!({"execution": "x"}), "missing field `sweep`"),
        (json!([1]), "expects {\"sweep\""),
    ] {
        let error = reaper.run(input.clone()).await.unwrap_err();
        assert_eq!(error.name(), "Runway.BadInput", "{input}");
        assert!(error.to_string().contains(expected), "{input}: {error}");
    }
    let report = reaper
        .run(json!({"sweep": "stale-slots", "execution": "reaper-run"}))
        .await
        .unwrap();
    assert_eq!(report["sweep"], json!("stale-slots"));
    assert_eq!(report["acted"], json!(0));
    system.shutdown().await;
}

const KEEP_STARTED: &str = "it already has an execution";
const KEEP_YOUNG: &str = "younger than the grace period";

fn kept(report: &runway_reaper::SweepReport, reason: &str) -> u32 {
    report.kept.get(reason).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_webhook_was_lost_is_started_once_as_the_webhook_would_have() {
    let system = system().await;
    let emulator = emulator(&system);
    // A job whose webhook arrived has its execution.
    let delivered = emulator
        .create_job(runway_github_emulator::NewJob::new("octo-org/app", LABELS))
        .unwrap()
        .job_id;
    execution_of(&system, delivered).await;
    // A job whose webhook was lost has none; nor has a job for GitHub's own runners.
    let lost = lost_job(&system, LABELS);
    let hosted = lost_job(&system, &["ubuntu-latest"]);
    assert!(system.execution_for_job(lost).is_none());

    // Within the grace period nothing is started.
    let patient = reaper(
        &system,
        ReaperConfig {
            grace_seconds: 3600,
            ..eager()
        },
    );
    let report = patient.sweep(Sweep::LostJobs).await.unwrap();
    assert_eq!(report.acted, 0, "{report:?}");
    assert_eq!(kept(&report, KEEP_YOUNG), 2, "{report:?}");
    assert!(system.execution_for_job(lost).is_none());

    let eager = reaper(&system, eager());
    let report = eager.sweep(Sweep::LostJobs).await.unwrap();
    assert_eq!(report.acted, 1, "{report:?}");
    assert_eq!(kept(&report, KEEP_STARTED), 1, "{report:?}");
    assert_eq!(report.kept.values().sum::<u32>(), 2, "{report:?}");
    assert!(report.actions[0].contains(&lost.to_string()), "{report:?}");
    assert!(!format!("{report:?}").contains(&hosted.to_string()));
    assert!(report.summary.contains("1 started"), "{}", report.summary);

    // The execution is the one the lost webhook would have started: same name, same input
    // (but for the delivery id, which only a delivery has).
    let started = execution_of(&system, lost).await;
    let webhook = emulator
        .deliveries()
        .into_iter()
        .find(|d| d.job_id == lost && d.action == "queued")
        .unwrap();
    let event = parse_workflow_job(&serde_json::to_vec(&webhook.payload).unwrap()).unwrap();
    let Decision::Start { name, input } = decide(&JobFilter::default(), &event, None) else {
        panic!("the intake would start the lost job");
    };
    assert_eq!(started.name, name);
    let started_input: Value = serde_json::from_str(&started.input).unwrap();
    assert_eq!(started_input, serde_json::to_value(&input).unwrap());
    assert_eq!(started_input["organization"], json!("octo-org"));
    assert_eq!(started_input["installation_id"], json!(installation_id()));
    assert_eq!(system.executions().len(), 2, "one execution per job");

    // A second sweep starts nothing.
    let report = eager.sweep(Sweep::LostJobs).await.unwrap();
    assert_eq!(report.acted, 0, "{report:?}");
    assert_eq!(kept(&report, KEEP_STARTED), 2, "{report:?}");
    assert_eq!(system.executions().len(), 2);
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_jobs_are_started_within_the_bound_and_a_github_5xx_is_retryable() {
    let system = system().await;
    let first = lost_job(&system, LABELS);
    let second = lost_job(&system, LABELS);

    let bounded = reaper(
        &system,
        ReaperConfig {
            max_actions_per_sweep: 1,
            repositories: vec!["octo-org/app".into()],
            ..eager()
        },
    );
    emulator(&system).set_faults(Faults {
        server_errors: 1,
        server_error_status: Some(502),
        ..Faults::default()
    });
    let error = bounded.sweep(Sweep::LostJobs).await.unwrap_err();
    assert!(matches!(error, ReapError::Transient(_)), "{error:?}");
    assert!(error.to_string().contains("502"), "{error}");
    assert!(system.executions().is_empty());

    let report = bounded.sweep(Sweep::LostJobs).await.unwrap();
    assert_eq!((report.acted, report.truncated), (1, true), "{report:?}");
    let report = bounded.sweep(Sweep::LostJobs).await.unwrap();
    assert_eq!((report.acted, report.truncated), (1, false), "{report:?}");
    execution_of(&system, first).await;
    execution_of(&system, second).await;
    let report = bounded.sweep(Sweep::LostJobs).await.unwrap();
    assert_eq!(report.acted, 0, "{report:?}");

    // A repository GitHub does not know is a setup error, not a retry.
    let misconfigured = reaper(
        &system,
        ReaperConfig {
            repositories: vec!["octo-org/missing".into()],
            ..eager()
        },
    );
    let error = misconfigured.sweep(Sweep::LostJobs).await.unwrap_err();
    assert_eq!(error.name(), "Runway.ReapFailed", "{error}");
    system.shutdown().await;
}

// ---- GitHub's rate limit: what lost-jobs checks and what it costs ---------------------------

const KEEP_INACTIVE: &str = "repository not active within active_within_seconds";

/// `repositories` on the emulator, one pool of `max_running` slots whose runners run `command`
/// (a TOML array).
async fn system_of(repositories: &[&str], max_running: u32, command: &str) -> LocalSystem {
    let repositories: Vec<String> = repositories.iter().map(|r| format!("{r:?}")).collect();
    let mut config = LocalConfig::from_toml_str(&format!(
        r#"
[github]
mode = "emulator"
repositories = [{}]
organizations = ["octo-org"]

[[pools]]
name = "linux"
labels = ["self-hosted", "linux"]
max_running = {max_running}
boot_timeout_seconds = 600
idle_timeout_seconds = 600
recheck_after_seconds = 600
provider = {{ kind = "local", command = {command}, grace_seconds = 1 }}
"#,
        repositories.join(", ")
    ))
    .unwrap();
    config.listen = runway_local::Listen::any_free_port();
    LocalSystem::start(config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_jobs_checks_only_active_or_allowed_repositories_and_unchanged_ones_cost_only_304s() {
    let system = system_of(&["octo-org/app", "octo-org/lib"], 1, r#"["sleep", "300"]"#).await;
    let emulator = emulator(&system);
    // lib has had no job for longer than the activity window; app gets one now.
    tokio::time::sleep(std::time::Duration::from_secs(8)).await;
    lost_job(&system, LABELS);
    // The job is younger than the grace period: kept, so no execution talks to GitHub.
    let config = ReaperConfig {
        grace_seconds: 3600,
        active_within_seconds: 5,
        ..eager()
    };
    let reaper = reaper(&system, config.clone());

    let served = emulator.api_usage();
    let first = reaper.sweep(Sweep::LostJobs).await.unwrap();
    let used = emulator.api_usage().since(&served);
    // The installation's repositories, app's queued and in-progress runs, its run's jobs.
    assert_eq!((used.requests, used.not_modified), (4, 0), "{first:#?}");
    assert_eq!(kept(&first, KEEP_YOUNG), 1, "{first:#?}");
    assert_eq!(kept(&first, KEEP_INACTIVE), 1, "{first:#?}");
    assert_eq!((first.github_requests, first.github_not_modified), (4, 0));
    assert_eq!(first.stopped, None);

    // Nothing changed: the same requests, each answered 304, none counted by GitHub.
    let remaining = emulator.rate_limit().remaining;
    let served = emulator.api_usage();
    let second = reaper.sweep(Sweep::LostJobs).await.unwrap();
    let used = emulator.api_usage().since(&served);
    assert_eq!((used.requests, used.not_modified), (4, 4), "{second:#?}");
    assert_eq!(emulator.rate_limit().remaining, remaining);
    assert_eq!((second.github_requests, second.github_not_modified), (4, 4));
    assert_eq!(second.kept, first.kept);
    assert!(
        second
            .summary
            .contains("4 GitHub requests, 4 of them not modified"),
        "{}",
        second.summary
    );

    // The intake's allow-list names the repositories: the installation's are not listed.
    let allowed = reaper_with(
        &system,
        config,
        JobFilter::default().allow_repositories(["octo-org/lib"]),
    );
    let served = emulator.api_usage();
    let report = allowed.sweep(Sweep::LostJobs).await.unwrap();
    let used = emulator.api_usage().since(&served);
    assert_eq!(
        used.requests, 2,
        "lib's queued and in-progress runs: {report:#?}"
    );
    assert_eq!(report.examined, 0, "{report:#?}");
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_jobs_stops_at_its_request_budget_and_at_the_rate_limit_reserve() {
    let system = system_of(&["octo-org/app", "octo-org/lib"], 1, r#"["sleep", "300"]"#).await;
    let emulator = emulator(&system);
    lost_job(&system, LABELS);
    let patient = ReaperConfig {
        grace_seconds: 3600,
        ..eager()
    };

    let budgeted = reaper(
        &system,
        ReaperConfig {
            github_requests_per_sweep: 2,
            ..patient.clone()
        },
    );
    let served = emulator.api_usage();
    let report = budgeted.sweep(Sweep::LostJobs).await.unwrap();
    let used = emulator.api_usage().since(&served);
    // The installation's repositories and app's queued runs; then the budget is spent.
    assert_eq!(used.counted(), 2, "{report:#?}");
    let stopped = report.stopped.as_deref().unwrap_or_default();
    assert!(stopped.contains("github_requests_per_sweep"), "{report:#?}");
    // app (the latest push) comes first and was not finished: both are left.
    assert_eq!(report.left, ["octo-org/app", "octo-org/lib"], "{report:#?}");
    assert!(
        report.summary.contains("stopped early") && report.summary.contains("2 left"),
        "{}",
        report.summary
    );

    // Under the reserve: one request tells the client how much is left, then the sweep stops.
    emulator.set_rate_limit(5000, 999);
    let reserved = reaper(&system, patient.clone());
    let served = emulator.api_usage();
    let report = reserved.sweep(Sweep::LostJobs).await.unwrap();
    let used = emulator.api_usage().since(&served);
    assert_eq!(used.counted(), 1, "{report:#?}");
    let stopped = report.stopped.as_deref().unwrap_or_default();
    assert!(
        stopped.contains("998 of 5000 requests left") && stopped.contains("rate_limit_reserve"),
        "{report:#?}"
    );
    assert_eq!(report.left, ["octo-org/app", "octo-org/lib"], "{report:#?}");

    // Through the machine, the run's summary says so.
    let (ended, output) = run_reaper_machine(&system, &reaper(&system, patient), "reserve").await;
    assert_eq!(ended.status, EngineStatus::Succeeded, "{output:#}");
    assert!(
        output["lost_jobs"].as_str().is_some_and(
            |line| line.contains("stopped early") && line.contains("rate_limit_reserve")
        ),
        "{output:#}"
    );
    system.shutdown().await;
}

/// The offline-runners sweep keeps the same reserve: once GitHub says fewer requests are left
/// than provisioning needs, it lists no further scope and removes nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_runners_stops_at_the_rate_limit_reserve() {
    let system = system().await;
    let emulator = emulator(&system);
    emulator.set_rate_limit(5000, 999);
    let reaper = reaper(
        &system,
        ReaperConfig {
            github_scopes: vec![
                runway_github::RunnerScope::repository("octo-org", "app"),
                runway_github::RunnerScope::organization("octo-org"),
            ],
            ..eager()
        },
    );
    let served = emulator.api_usage();
    let report = reaper.sweep(Sweep::OfflineRunners).await.unwrap();
    let used = emulator.api_usage().since(&served);
    // The first list tells the client how much is left; the organization is not listed.
    assert_eq!(used.counted(), 1, "{report:#?}");
    let stopped = report.stopped.as_deref().unwrap_or_default();
    assert!(
        stopped.contains("998 of 5000 requests left") && stopped.contains("rate_limit_reserve"),
        "{report:#?}"
    );
    assert_eq!(report.left, ["organization octo-org"], "{report:#?}");
    assert_eq!(report.github_requests, 1, "{report:#?}");
    system.shutdown().await;
}

// ---- A lost `completed` event ------------------------------------------------------------------

/// A runner command that leaves its JIT config in `dir` (for the test to run the runner
/// protocol itself) and then waits.
fn jit_writing_command(dir: &std::path::Path) -> String {
    format!(
        r#"["sh", "-c", 'printf %s "$RUNWAY_JITCONFIG" > {}/{{runner}}.jit; exec sleep 300']"#,
        dir.display()
    )
}

async fn jit_config(dir: &std::path::Path, runner: &str) -> String {
    let path = dir.join(format!("{runner}.jit"));
    wait_until("the runner wrote its JIT config", || {
        std::future::ready(std::fs::metadata(&path).is_ok_and(|m| m.len() > 0))
    })
    .await;
    std::fs::read_to_string(&path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_whose_job_completed_without_its_webhook_is_freed_through_its_execution() {
    let dir = tempfile::tempdir().unwrap();
    let system = system_of(&["octo-org/app"], 1, &jit_writing_command(dir.path())).await;
    let emulator = emulator(&system);
    let store = system.store().clone();
    let mut job = runway_github_emulator::NewJob::new("octo-org/app", LABELS);
    job.duration_seconds = 3.0;
    let job_id = emulator.create_job(job).unwrap().job_id;
    let execution = execution_of(&system, job_id).await;
    let runner = runner_of(&system, POOL, &execution.name).await;
    let runner_name = runway_store::RunnerName::new(runner.as_str()).unwrap();
    let jit = jit_config(dir.path(), &runner).await;

    // The runner takes the job; the execution follows it and waits for the runner to leave.
    let url = emulator.base_url().to_owned();
    let run =
        tokio::spawn(
            async move { runway_github_emulator::runner::run_once(Some(&url), &jit).await },
        );
    wait_until("the execution waits for its busy runner to leave", || {
        let store = store.clone();
        let runner_name = runner_name.clone();
        async move {
            store
                .get_runner(&runner_name)
                .await
                .unwrap()
                .is_some_and(|r| {
                    matches!(r.state, runway_store::RunnerState::Busy { .. })
                        && r.runner_watch.is_some()
                })
        }
    })
    .await;
    // The job's `completed` webhook is lost.
    emulator.set_faults(Faults {
        drop_webhooks: 1,
        ..Faults::default()
    });
    let outcome = run.await.unwrap().unwrap();
    assert!(
        matches!(
            outcome,
            runway_github_emulator::runner::RunOutcome::Completed { .. }
        ),
        "{outcome:?}"
    );
    wait_until("the completed webhook is dropped", || {
        std::future::ready(emulator.deliveries().iter().any(|d| {
            d.job_id == job_id
                && d.action == "completed"
                && d.outcome == runway_github_emulator::DeliveryOutcome::Dropped
        }))
    })
    .await;
    let key = runway_store::ExecutionKey::new(execution.name.as_str()).unwrap();
    assert!(store.slot_holder(&key).await.unwrap().is_some());

    // No look-ups allowed: the slot stays, and the report says what was not looked at.
    let blind = reaper(
        &system,
        ReaperConfig {
            job_lookups_per_sweep: 0,
            ..eager()
        },
    );
    let report = blind.sweep(Sweep::StaleSlots).await.unwrap();
    assert_eq!(report.acted, 0, "{report:#?}");
    assert_eq!(
        report.left,
        std::slice::from_ref(&execution.name),
        "{report:#?}"
    );

    let reaper = reaper(&system, eager());
    let report = reaper.sweep(Sweep::StaleSlots).await.unwrap();
    assert_eq!(report.acted, 1, "{report:#?}");
    assert!(
        report.actions[0].contains(&execution.name) && report.actions[0].contains("completed"),
        "{report:#?}"
    );
    // The execution tears its runner down and releases the slot, as after the webhook.
    let ended = tokio::time::timeout(
        WAIT,
        system.service().await_execution(&execution.execution_arn),
    )
    .await
    .expect("the execution ends")
    .unwrap();
    assert_eq!(ended.status, EngineStatus::Succeeded, "{ended:?}");
    assert!(store.slot_holder(&key).await.unwrap().is_none());
    let record = store.get_runner(&runner_name).await.unwrap().unwrap();
    assert_eq!(record.state, runway_store::RunnerState::Gone);
    assert!(!owned_by(&system, POOL, &runner).await);

    let report = reaper.sweep(Sweep::StaleSlots).await.unwrap();
    assert_eq!((report.examined, report.acted), (0, 0), "{report:#?}");
    system.shutdown().await;
}

// ---- A second chance for a job whose execution failed for a transient cause -----------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Launches {
    /// Fail (no capacity) but for the first retry's execution.
    FailFirst,
    /// Always fail for lack of capacity.
    FailAlways,
    /// Fail for good (the pool's configuration).
    Refuse,
}

/// Local runners, except that launches for some jobs fail.
#[derive(Debug)]
struct FlakyLaunches {
    runners: runway_providers::LocalProvider,
    jobs: Arc<Mutex<HashMap<u64, Launches>>>,
}

#[async_trait::async_trait]
impl Provider for FlakyLaunches {
    fn kind(&self) -> runway_providers::ProviderKind {
        self.runners.kind()
    }

    async fn launch(&self, request: LaunchRequest) -> Result<Launched, ProviderError> {
        let job: Option<u64> = request
            .execution
            .strip_prefix("job-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|id| id.parse().ok());
        let mode = job.and_then(|job| self.jobs.lock().unwrap().get(&job).copied());
        let no_capacity = || ProviderError::Capacity {
            tried: vec!["local (the test's flaky host)".into()],
        };
        match mode {
            Some(Launches::FailFirst) if !request.execution.ends_with("-retry1") => {
                Err(no_capacity())
            }
            Some(Launches::FailAlways) => Err(no_capacity()),
            Some(Launches::Refuse) => Err(ProviderError::Config {
                reason: "the test's host refuses this job".into(),
            }),
            _ => self.runners.launch(request).await,
        }
    }

    async fn terminate(
        &self,
        execution: &str,
        runner_name: &str,
    ) -> Result<runway_providers::Terminated, ProviderError> {
        self.runners.terminate(execution, runner_name).await
    }

    async fn owned(&self) -> Result<Vec<runway_providers::OwnedRunner>, ProviderError> {
        self.runners.owned().await
    }
}

fn executions_of(system: &LocalSystem, job: u64) -> Vec<runway_asl::ExecutionDescription> {
    let prefix = format!("job-{job}-r");
    let mut found: Vec<_> = system
        .executions()
        .into_iter()
        .filter(|e| e.name.starts_with(&prefix))
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

async fn all_ended(system: &LocalSystem, jobs: &[u64], count: usize) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(240);
    loop {
        let executions: Vec<_> = jobs
            .iter()
            .flat_map(|job| executions_of(system, *job))
            .collect();
        if executions.len() == count && executions.iter().all(|e| e.status != EngineStatus::Running)
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {count} ended executions: {executions:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transiently_failed_job_is_started_again_within_the_cap_and_a_refused_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let jobs: Arc<Mutex<HashMap<u64, Launches>>> = Arc::default();
    let command = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        format!(
            r#"printf %s "$RUNWAY_JITCONFIG" > {}/{{runner}}.jit; exec sleep 300"#,
            dir.path().display()
        ),
    ];
    let mut runners = runway_providers::LocalConfig::new(command);
    runners.grace = std::time::Duration::from_secs(1);
    let flaky = FlakyLaunches {
        runners: runway_providers::LocalProvider::new(runners).unwrap(),
        jobs: jobs.clone(),
    };
    let mut config = LocalConfig::from_toml_str(
        r#"
[github]
mode = "emulator"
repositories = ["octo-org/app"]
organizations = ["octo-org"]

[[pools]]
name = "linux"
labels = ["self-hosted", "linux"]
max_running = 3
boot_timeout_seconds = 600
idle_timeout_seconds = 600
recheck_after_seconds = 600
provider = { kind = "local", command = ["sleep", "300"], grace_seconds = 1 }
"#,
    )
    .unwrap();
    config.listen = runway_local::Listen::any_free_port();
    let mut providers: std::collections::BTreeMap<String, Arc<dyn Provider>> = Default::default();
    providers.insert(POOL.to_owned(), Arc::new(flaky));
    let system = LocalSystem::start_with(
        config,
        runway_local::Supplied {
            providers,
            ..runway_local::Supplied::default()
        },
    )
    .await
    .unwrap();

    // Three jobs whose webhooks were lost, so their launches are rigged before any starts.
    let recovers = lost_job(&system, LABELS);
    let doomed = lost_job(&system, LABELS);
    let refused = lost_job(&system, LABELS);
    jobs.lock().unwrap().extend([
        (recovers, Launches::FailFirst),
        (doomed, Launches::FailAlways),
        (refused, Launches::Refuse),
    ]);
    let reaper = reaper(
        &system,
        ReaperConfig {
            max_retries: 1,
            ..eager()
        },
    );
    let report = reaper.sweep(Sweep::LostJobs).await.unwrap();
    assert_eq!(report.acted, 3, "{report:#?}");
    all_ended(&system, &[recovers, doomed, refused], 3).await;
    let first = &executions_of(&system, recovers)[0];
    assert_eq!(first.status, EngineStatus::Failed);
    assert!(
        first
            .cause
            .as_deref()
            .unwrap_or_default()
            .contains("(Runway.Transient)"),
        "{first:#?}"
    );
    let refusal = &executions_of(&system, refused)[0];
    assert!(
        refusal
            .cause
            .as_deref()
            .unwrap_or_default()
            .contains("(Runway.ProvisionFailed)"),
        "{refusal:#?}"
    );

    // The transient failures get one more execution each, named and explained as a retry.
    let report = reaper.sweep(Sweep::LostJobs).await.unwrap();
    assert_eq!(report.acted, 2, "{report:#?}");
    assert_eq!(
        kept(
            &report,
            "its execution failed for a cause retrying cannot help (policy, configuration, GitHub refusal)"
        ),
        1,
        "{report:#?}"
    );
    let retry = executions_of(&system, recovers)
        .into_iter()
        .find(|e| e.name.ends_with("-retry1"))
        .expect("a retry execution");
    assert_eq!(retry.name, format!("{}-retry1", first.name));
    let input: Value = serde_json::from_str(&retry.input).unwrap();
    assert_eq!(input["retry"]["after"], json!(first.name));
    assert_eq!(input["retry"]["error"], json!("Runway.JobFailed"));
    assert_eq!(input["retry"]["cause"], json!(first.cause));
    assert_eq!(input["job"]["id"], json!(recovers));

    // The retry launches a runner, which runs the job to its end.
    let runner = runner_of(&system, POOL, &retry.name).await;
    let jit = jit_config(dir.path(), &runner).await;
    let outcome =
        runway_github_emulator::runner::run_once(Some(emulator(&system).base_url()), &jit)
            .await
            .unwrap();
    assert!(
        matches!(
            outcome,
            runway_github_emulator::runner::RunOutcome::Completed { .. }
        ),
        "{outcome:?}"
    );
    all_ended(&system, &[recovers, doomed, refused], 5).await;
    let recovered = executions_of(&system, recovers);
    assert_eq!(
        recovered[1].status,
        EngineStatus::Succeeded,
        "{recovered:#?}"
    );

    // The cap holds: the job that keeps failing gets no third execution.
    let report = reaper.sweep(Sweep::LostJobs).await.unwrap();
    assert_eq!(report.acted, 0, "{report:#?}");
    assert_eq!(
        kept(
            &report,
            "its executions failed and it was started again max_retries times"
        ),
        1,
        "{report:#?}"
    );
    assert_eq!(executions_of(&system, recovers).len(), 2);
    assert_eq!(executions_of(&system, doomed).len(), 2);
    assert_eq!(executions_of(&system, refused).len(), 1);
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_slots_sweep_measures_each_pools_queue_and_slots() {
    use runway_jobflow::metrics::{Dimension, Metric};
    use runway_store::{
        Ceilings, ExecutionKey, OrgName, PoolName, RepoName, SlotClaim, TaskToken, Waiter,
    };
    let system = system().await;
    let store = system.store();
    let pool = PoolName::new(POOL).unwrap();
    let now = chrono::Utc::now();
    store
        .acquire_slot(&SlotClaim {
            execution: ExecutionKey::new(execution_name(1, 801, 1)).unwrap(),
            pool: pool.clone(),
            org: OrgName::new("octo-org").unwrap(),
            repo: RepoName::new("octo-org/app").unwrap(),
            ceilings: Ceilings {
                pool: 10,
                org: None,
                repo: None,
            },
        })
        .await
        .unwrap();
    for (job, waited) in [(802, 90), (803, 30)] {
        store
            .enqueue_waiter(&Waiter {
                pool: pool.clone(),
                execution: ExecutionKey::new(execution_name(1, job, 1)).unwrap(),
                priority: 0,
                enqueued_at: now - chrono::Duration::seconds(waited),
                task_token: TaskToken::new(format!("token-{job}")).unwrap(),
                expires_at: now + chrono::Duration::hours(1),
            })
            .await
            .unwrap();
    }

    reaper(&system, eager())
        .sweep(Sweep::StaleSlots)
        .await
        .unwrap();
    let gauge = |metric: Metric| {
        let samples = system.metrics().of(metric);
        assert_eq!(samples.len(), 1, "{metric:?}: {samples:?}");
        assert_eq!(
            samples[0].dimensions,
            vec![(Dimension::Pool, POOL.to_owned())]
        );
        samples[0].value
    };
    assert_eq!(gauge(Metric::QueueDepth), 2.0);
    assert_eq!(gauge(Metric::SlotsInUse), 1.0);
    let oldest = gauge(Metric::OldestWaitSeconds);
    assert!((90.0..120.0).contains(&oldest), "{oldest}");
    system.shutdown().await;
}
