//! The reaper on `runway local`'s parts: the in-memory store, runners as real local processes,
//! the GitHub emulator, and the local engine running the real job and reaper machines.

mod common;

use common::*;
use runway_asl::ExecutionStatus as EngineStatus;
use runway_github_emulator::Faults;
use runway_local::{LocalConfig, LocalSystem};
use runway_providers::{JitConfig, LaunchOverrides, LaunchRequest};
use runway_reaper::{ReapError, ReaperConfig, Sweep};
use serde_json::json;

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
