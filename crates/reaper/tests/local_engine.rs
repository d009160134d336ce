//! The reaper on `runway local`'s parts: the in-memory store, runners as real local processes,
//! the GitHub emulator, and the local engine running the real job and reaper machines.

mod common;

use common::*;
use runway_asl::ExecutionStatus as EngineStatus;
use runway_github_emulator::Faults;
use runway_local::{LocalConfig, LocalSystem};
use runway_providers::{JitConfig, LaunchOverrides, LaunchRequest};
use runway_reaper::{ReapError, ReaperConfig, Sweep};
use runway_webhook::{Decision, JobFilter, decide, parse_workflow_job};
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
                execution: format!("job-90{n}-r1-a1"),
                pool: POOL.into(),
                runner_name: format!("runway-90{n}-a1-1"),
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
